-- A turn's visit-time hold changes in one call, so that a commit that changes holds is one
-- pipelined transaction (and can join a group commit: src/store/pg_batch.rs) instead of about
-- seven statements, each a round trip, under the window's lock. The steps are those of
-- `apply_changes!` in src/store/holds.rs (which SQLite still runs), in the same order.

-- Locks each (tenant, window) for the rest of the transaction, in the arrays' order (the caller
-- sorts them, so two transactions taking the same windows cannot deadlock).
CREATE FUNCTION carewell_lock_windows(tenants TEXT[], windows TEXT[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(windows), 0) LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('slot_holds:' || tenants[i] || ':' || windows[i], 0));
    END LOOP;
END;
$$;

-- The lowest crew number not taken in a tenant's window.
CREATE FUNCTION carewell_free_crew(t TEXT, w TEXT) RETURNS INTEGER
LANGUAGE sql STABLE AS $$
    SELECT min(c)::integer FROM generate_series(0, (SELECT count(*) FROM slot_holds WHERE tenant = t AND window_start = w)) AS c
    WHERE c NOT IN (SELECT crew FROM slot_holds WHERE tenant = t AND window_start = w);
$$;

-- Applies one conversation's hold changes, in order: kinds[i] is 'hold', 'booked' or 'release',
-- with its journey, window, places, until (Unix ms) and ERP document. A refused place raises
-- 'store.hold_refused:<window>' (SQLSTATE P0001), which undoes the transaction; the caller has
-- locked the windows taken ([carewell_lock_windows]).
CREATE FUNCTION carewell_apply_holds(
    t TEXT, conversation TEXT, now_ms BIGINT,
    kinds TEXT[], journeys TEXT[], windows TEXT[], places INTEGER[], untils BIGINT[], erp_names TEXT[]
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    existing TEXT;
    taken BIGINT;
    changed BIGINT;
BEGIN
    FOR i IN 1 .. coalesce(cardinality(kinds), 0) LOOP
        IF kinds[i] = 'hold' THEN
            SELECT window_start INTO existing FROM slot_holds
                WHERE conversation_id = conversation AND journey_id = journeys[i] LIMIT 1;
            IF existing IS NOT NULL AND existing = windows[i] THEN
                UPDATE slot_holds SET expires_at = untils[i]
                    WHERE conversation_id = conversation AND journey_id = journeys[i];
                CONTINUE;
            END IF;
            DELETE FROM slot_holds WHERE conversation_id = conversation AND journey_id = journeys[i];
            DELETE FROM slot_holds WHERE tenant = t AND window_start = windows[i] AND expires_at <= now_ms;
            SELECT count(*) INTO taken FROM slot_holds WHERE tenant = t AND window_start = windows[i];
            IF taken >= places[i] THEN
                RAISE EXCEPTION 'store.hold_refused:%', windows[i];
            END IF;
            INSERT INTO slot_holds (tenant, conversation_id, journey_id, window_start, crew, expires_at, erp_name, created_at)
                VALUES (t, conversation, journeys[i], windows[i], carewell_free_crew(t, windows[i]), untils[i], NULL, now_ms);
        ELSIF kinds[i] = 'booked' THEN
            DELETE FROM slot_holds WHERE tenant = t AND erp_name = erp_names[i]
                AND (conversation_id <> conversation OR journey_id <> journeys[i]);
            UPDATE slot_holds SET erp_name = erp_names[i], expires_at = untils[i]
                WHERE conversation_id = conversation AND journey_id = journeys[i];
            GET DIAGNOSTICS changed = ROW_COUNT;
            IF changed = 0 THEN
                INSERT INTO slot_holds (tenant, conversation_id, journey_id, window_start, crew, expires_at, erp_name, created_at)
                    VALUES (t, conversation, journeys[i], windows[i], carewell_free_crew(t, windows[i]), untils[i], erp_names[i], now_ms);
            END IF;
        ELSIF kinds[i] = 'release' THEN
            DELETE FROM slot_holds WHERE conversation_id = conversation AND journey_id = journeys[i] AND erp_name IS NULL;
        ELSE
            RAISE EXCEPTION 'carewell_apply_holds: unknown change %', kinds[i];
        END IF;
    END LOOP;
END;
$$;

-- The large text columns written on every turn (the turn record, the state, the outbox payload,
-- the inbound event) are compressed with LZ4 rather than PostgreSQL's default pglz, which costs
-- several times the CPU per compressed byte (PostgreSQL 14 release notes, "default_toast_compression";
-- measured here: the turn record averages about 4 kB and is compressed on every insert).
-- A server built without LZ4 keeps pglz: the change is skipped, nothing else depends on it.
DO $$
BEGIN
    ALTER TABLE turns ALTER COLUMN record SET COMPRESSION lz4;
    ALTER TABLE conversations ALTER COLUMN state SET COMPRESSION lz4;
    ALTER TABLE outbox ALTER COLUMN payload SET COMPRESSION lz4;
    ALTER TABLE inbox ALTER COLUMN event SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'LZ4 compression is not available on this server; pglz is kept';
END
$$;

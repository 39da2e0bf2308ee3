-- Row-level security, a second wall between tenants behind the store's own filters (see
-- src/store/tenant_wall.rs). Every read or write the store makes for one tenant (the console's
-- and admin API's) runs in a transaction that sets `carewell.tenant` and takes the role
-- `carewell_tenant` with SET LOCAL; these policies then hide every other tenant's rows, even
-- from a query that forgot its filter. The service's own connection (the tables' owner) is not
-- subject to them: the worker and outbox act for every tenant.
--
-- Making the role needs CREATEROLE; without it the migration still passes, the wall stays off
-- and the service logs `store.row_security_off` at start.
DO $$
BEGIN
    -- Several databases of one server may migrate at once (the role is the server's): a
    -- concurrent CREATE is ignored and the role's existence checked after.
    BEGIN
        CREATE ROLE carewell_tenant NOLOGIN;
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'carewell_tenant') THEN
        RAISE NOTICE 'carewell_tenant could not be made; row-level security stays off';
        RETURN;
    END IF;
    IF NOT pg_has_role(current_user, 'carewell_tenant', 'MEMBER') THEN
        EXECUTE format('GRANT carewell_tenant TO %I', current_user);
    END IF;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO carewell_tenant;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO carewell_tenant;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO carewell_tenant;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO carewell_tenant;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'carewell_tenant not set up (%); row-level security stays off', SQLERRM;
END $$;

ALTER TABLE conversations ENABLE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_revisions ENABLE ROW LEVEL SECURITY;
ALTER TABLE knowledge_flags ENABLE ROW LEVEL SECURITY;
ALTER TABLE reply_drafts ENABLE ROW LEVEL SECURITY;
ALTER TABLE daily_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE turns ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE inbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE handoffs ENABLE ROW LEVEL SECURITY;
ALTER TABLE quarantine ENABLE ROW LEVEL SECURITY;
ALTER TABLE slot_holds ENABLE ROW LEVEL SECURITY;

-- Tables that hold the tenant.
CREATE POLICY tenant_wall ON conversations USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON users USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON api_keys USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON audit_log USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON knowledge_items USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON knowledge_revisions USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON knowledge_flags USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON reply_drafts USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON daily_counts USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
-- Tables reached through their conversation: visible when their conversation is (whose own
-- policy above hides every other tenant's).
CREATE POLICY tenant_wall ON turns USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = turns.conversation_id));
CREATE POLICY tenant_wall ON outbox USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = outbox.conversation_id));
CREATE POLICY tenant_wall ON inbox USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = inbox.conversation_id));
CREATE POLICY tenant_wall ON handoffs USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = handoffs.conversation_id));
CREATE POLICY tenant_wall ON quarantine USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = quarantine.conversation_id));
CREATE POLICY tenant_wall ON slot_holds USING (EXISTS (SELECT 1 FROM conversations c WHERE c.id = slot_holds.conversation_id));

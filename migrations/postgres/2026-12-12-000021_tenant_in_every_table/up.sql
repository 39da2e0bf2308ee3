-- Every table holds its tenant (src/tenant). Rows written before are the single business's.
-- Afterwards no tenant column has a default: a write that does not say whose row it is fails
-- instead of landing in the wrong business. Content-named rows (lookup snapshots, flow
-- versions) and poll cursors are per tenant.
ALTER TABLE inbox ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE turns ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE outbox ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE quarantine ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE handoffs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE slot_holds ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
-- Each business has its own crews: a window's places are counted per tenant.
ALTER TABLE slot_holds DROP CONSTRAINT slot_holds_window_start_crew_key;
ALTER TABLE slot_holds ADD CONSTRAINT slot_holds_window_start_crew_key UNIQUE (tenant, window_start, crew);
ALTER TABLE message_statuses ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE web_sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE web_joins ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE poll_cursors ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE poll_cursors DROP CONSTRAINT poll_cursors_pkey;
ALTER TABLE poll_cursors ADD PRIMARY KEY (tenant, name);
ALTER TABLE lookup_snapshots ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE lookup_snapshots DROP CONSTRAINT lookup_snapshots_pkey;
ALTER TABLE lookup_snapshots ADD PRIMARY KEY (tenant, hash);
ALTER TABLE flow_versions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE flow_versions DROP CONSTRAINT flow_versions_pkey;
ALTER TABLE flow_versions ADD PRIMARY KEY (tenant, hash);
CREATE INDEX handoffs_by_tenant ON handoffs (tenant, status, id);
CREATE INDEX quarantine_by_tenant ON quarantine (tenant, id);

ALTER TABLE conversations ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE users ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE api_keys ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE audit_log ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE knowledge_items ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE knowledge_revisions ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE knowledge_flags ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE reply_drafts ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE daily_counts ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE inbox ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE turns ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE outbox ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE quarantine ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE handoffs ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE slot_holds ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE message_statuses ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE web_sessions ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE web_joins ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE sessions ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE poll_cursors ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE lookup_snapshots ALTER COLUMN tenant DROP DEFAULT;
ALTER TABLE flow_versions ALTER COLUMN tenant DROP DEFAULT;

-- The second wall now reads each table's own tenant (cheaper than through the conversation).
DROP POLICY tenant_wall ON turns;
DROP POLICY tenant_wall ON outbox;
DROP POLICY tenant_wall ON inbox;
DROP POLICY tenant_wall ON handoffs;
DROP POLICY tenant_wall ON quarantine;
DROP POLICY tenant_wall ON slot_holds;
CREATE POLICY tenant_wall ON turns USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON outbox USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON inbox USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON handoffs USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON quarantine USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON slot_holds USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
ALTER TABLE message_statuses ENABLE ROW LEVEL SECURITY;
ALTER TABLE web_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE web_joins ENABLE ROW LEVEL SECURITY;
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE poll_cursors ENABLE ROW LEVEL SECURITY;
ALTER TABLE lookup_snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE flow_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_wall ON message_statuses USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON web_sessions USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON web_joins USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON sessions USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON poll_cursors USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON lookup_snapshots USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));
CREATE POLICY tenant_wall ON flow_versions USING (tenant = current_setting('carewell.tenant', true)) WITH CHECK (tenant = current_setting('carewell.tenant', true));

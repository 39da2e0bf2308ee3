-- Every table holds its tenant (src/tenant). Rows written before are the single business's.
-- Content-named rows (lookup snapshots, flow versions) and poll cursors are per tenant (SQLite
-- changes a primary key by rebuilding the table).
ALTER TABLE inbox ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE turns ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE outbox ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE quarantine ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE handoffs ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
-- Each business has its own crews: a window's places are counted per tenant.
CREATE TABLE slot_holds_by_tenant (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    conversation_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    crew INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    erp_name TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (tenant, window_start, crew),
    UNIQUE (conversation_id, journey_id)
);
INSERT INTO slot_holds_by_tenant (id, tenant, conversation_id, journey_id, window_start, crew, expires_at, erp_name, created_at)
    SELECT id, 'default', conversation_id, journey_id, window_start, crew, expires_at, erp_name, created_at FROM slot_holds;
DROP TABLE slot_holds;
ALTER TABLE slot_holds_by_tenant RENAME TO slot_holds;
CREATE INDEX slot_holds_by_expiry ON slot_holds (expires_at);
CREATE INDEX slot_holds_by_document ON slot_holds (erp_name);
ALTER TABLE message_statuses ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE web_sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE web_joins ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX handoffs_by_tenant ON handoffs (tenant, status, id);
CREATE INDEX quarantine_by_tenant ON quarantine (tenant, id);

CREATE TABLE poll_cursors_by_tenant (
    tenant TEXT NOT NULL DEFAULT 'default',
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
INSERT INTO poll_cursors_by_tenant (tenant, name, value, updated_at) SELECT 'default', name, value, updated_at FROM poll_cursors;
DROP TABLE poll_cursors;
ALTER TABLE poll_cursors_by_tenant RENAME TO poll_cursors;

CREATE TABLE lookup_snapshots_by_tenant (
    tenant TEXT NOT NULL DEFAULT 'default',
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, hash)
);
INSERT INTO lookup_snapshots_by_tenant (tenant, hash, body, created_at) SELECT 'default', hash, body, created_at FROM lookup_snapshots;
DROP TABLE lookup_snapshots;
ALTER TABLE lookup_snapshots_by_tenant RENAME TO lookup_snapshots;

CREATE TABLE flow_versions_by_tenant (
    tenant TEXT NOT NULL DEFAULT 'default',
    hash TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, hash)
);
INSERT INTO flow_versions_by_tenant (tenant, hash, flow_id, version, body, created_at) SELECT 'default', hash, flow_id, version, body, created_at FROM flow_versions;
DROP TABLE flow_versions;
ALTER TABLE flow_versions_by_tenant RENAME TO flow_versions;

CREATE TABLE flow_versions_single (
    hash TEXT PRIMARY KEY NOT NULL,
    flow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO flow_versions_single SELECT hash, flow_id, version, body, created_at FROM flow_versions WHERE tenant = 'default';
DROP TABLE flow_versions;
ALTER TABLE flow_versions_single RENAME TO flow_versions;
CREATE TABLE lookup_snapshots_single (
    hash TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO lookup_snapshots_single SELECT hash, body, created_at FROM lookup_snapshots WHERE tenant = 'default';
DROP TABLE lookup_snapshots;
ALTER TABLE lookup_snapshots_single RENAME TO lookup_snapshots;
CREATE TABLE poll_cursors_single (
    name TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO poll_cursors_single SELECT name, value, updated_at FROM poll_cursors WHERE tenant = 'default';
DROP TABLE poll_cursors;
ALTER TABLE poll_cursors_single RENAME TO poll_cursors;
DROP INDEX quarantine_by_tenant;
DROP INDEX handoffs_by_tenant;
ALTER TABLE sessions DROP COLUMN tenant;
ALTER TABLE web_joins DROP COLUMN tenant;
ALTER TABLE web_sessions DROP COLUMN tenant;
ALTER TABLE message_statuses DROP COLUMN tenant;
CREATE TABLE slot_holds_single (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    conversation_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    crew INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    erp_name TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (window_start, crew),
    UNIQUE (conversation_id, journey_id)
);
INSERT INTO slot_holds_single SELECT id, conversation_id, journey_id, window_start, crew, expires_at, erp_name, created_at FROM slot_holds WHERE tenant = 'default';
DROP TABLE slot_holds;
ALTER TABLE slot_holds_single RENAME TO slot_holds;
CREATE INDEX slot_holds_by_expiry ON slot_holds (expires_at);
CREATE INDEX slot_holds_by_document ON slot_holds (erp_name);
ALTER TABLE handoffs DROP COLUMN tenant;
ALTER TABLE quarantine DROP COLUMN tenant;
ALTER TABLE outbox DROP COLUMN tenant;
ALTER TABLE turns DROP COLUMN tenant;
ALTER TABLE inbox DROP COLUMN tenant;

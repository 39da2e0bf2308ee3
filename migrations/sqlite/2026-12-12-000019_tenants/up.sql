-- Tenants (src/tenant): the business a row belongs to. Rows written before tenants existed are
-- the single business's, 'default'. Knowledge item ids and titles are unique per tenant (two
-- businesses may both have a "Full Wash"; SQLite changes a primary key by rebuilding the table);
-- user names stay unique across the installation, so a login names one user and so one tenant.
-- No index on (tenant, updated_at): every turn updates updated_at, and keeping such an index
-- cost about a sixth of SQLite's throughput; an operator's list reads by tenant and sorts.
ALTER TABLE conversations ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE users ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE audit_log ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, at);
CREATE TABLE knowledge_items_by_tenant (
    tenant TEXT NOT NULL DEFAULT 'default',
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    question TEXT,
    also_asked TEXT NOT NULL,
    answer TEXT NOT NULL,
    keywords TEXT NOT NULL,
    category TEXT,
    source TEXT,
    revision BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
);
INSERT INTO knowledge_items_by_tenant (tenant, id, kind, title, question, also_asked, answer, keywords, category, source, revision, updated_at, updated_by)
    SELECT 'default', id, kind, title, question, also_asked, answer, keywords, category, source, revision, updated_at, updated_by FROM knowledge_items;
DROP TABLE knowledge_items;
ALTER TABLE knowledge_items_by_tenant RENAME TO knowledge_items;
CREATE UNIQUE INDEX knowledge_items_by_title ON knowledge_items (tenant, lower(title));
ALTER TABLE knowledge_revisions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
DROP INDEX knowledge_revisions_by_item;
CREATE INDEX knowledge_revisions_by_item ON knowledge_revisions (tenant, item_id, revision);
ALTER TABLE knowledge_flags ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX knowledge_flags_by_tenant ON knowledge_flags (tenant, id);
-- Two businesses' ERPs may both have a ticket ISS-0001: one draft per ticket of each tenant
-- (SQLite drops a column's UNIQUE by rebuilding the table).
CREATE TABLE reply_drafts_by_tenant (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default',
    ticket TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    customer TEXT NOT NULL,
    subject TEXT NOT NULL,
    details TEXT NOT NULL,
    draft TEXT NOT NULL,
    passages TEXT NOT NULL,
    worded_by TEXT NOT NULL,
    ticket_modified TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    reviewed_at BIGINT,
    reviewed_by TEXT,
    final_text TEXT,
    reason TEXT
);
INSERT INTO reply_drafts_by_tenant (id, tenant, ticket, conversation_id, customer, subject, details, draft, passages, worded_by, ticket_modified, status, created_at, reviewed_at, reviewed_by, final_text, reason)
    SELECT id, 'default', ticket, conversation_id, customer, subject, details, draft, passages, worded_by, ticket_modified, status, created_at, reviewed_at, reviewed_by, final_text, reason FROM reply_drafts;
DROP TABLE reply_drafts;
ALTER TABLE reply_drafts_by_tenant RENAME TO reply_drafts;
CREATE UNIQUE INDEX reply_drafts_by_ticket ON reply_drafts (tenant, ticket);
CREATE INDEX reply_drafts_status ON reply_drafts (tenant, status, id);
CREATE INDEX reply_drafts_conversation ON reply_drafts (conversation_id);
-- The dashboard's figures and the quotas' usage, per business.
CREATE TABLE daily_counts_by_tenant (
    tenant TEXT NOT NULL DEFAULT 'default',
    day TEXT NOT NULL,
    flow TEXT NOT NULL,
    metric TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (tenant, day, flow, metric, shard)
);
INSERT INTO daily_counts_by_tenant (tenant, day, flow, metric, shard, n) SELECT 'default', day, flow, metric, shard, n FROM daily_counts;
DROP TABLE daily_counts;
ALTER TABLE daily_counts_by_tenant RENAME TO daily_counts;

-- Tenants (src/tenant): the business a row belongs to. Rows written before tenants existed are
-- the single business's, 'default'. Knowledge item ids and titles are unique per tenant (two
-- businesses may both have a "Full Wash"); user names stay unique across the installation, so
-- a login names one user and so one tenant.
-- No index on (tenant, updated_at): every turn updates updated_at, and keeping such an index
-- cost about a sixth of SQLite's throughput; an operator's list reads by tenant and sorts.
ALTER TABLE conversations ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE users ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE audit_log ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX audit_log_by_tenant ON audit_log (tenant, at);
ALTER TABLE knowledge_items ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE knowledge_items DROP CONSTRAINT knowledge_items_pkey;
ALTER TABLE knowledge_items ADD PRIMARY KEY (tenant, id);
DROP INDEX knowledge_items_by_title;
CREATE UNIQUE INDEX knowledge_items_by_title ON knowledge_items (tenant, lower(title));
ALTER TABLE knowledge_revisions ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
DROP INDEX knowledge_revisions_by_item;
CREATE INDEX knowledge_revisions_by_item ON knowledge_revisions (tenant, item_id, revision);
ALTER TABLE knowledge_flags ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
CREATE INDEX knowledge_flags_by_tenant ON knowledge_flags (tenant, id);
-- Two businesses' ERPs may both have a ticket ISS-0001: one draft per ticket of each tenant.
ALTER TABLE reply_drafts ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE reply_drafts DROP CONSTRAINT reply_drafts_ticket_key;
CREATE UNIQUE INDEX reply_drafts_by_ticket ON reply_drafts (tenant, ticket);
DROP INDEX reply_drafts_status;
CREATE INDEX reply_drafts_status ON reply_drafts (tenant, status, id);
-- The dashboard's figures and the quotas' usage, per business.
ALTER TABLE daily_counts ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
ALTER TABLE daily_counts DROP CONSTRAINT daily_counts_pkey;
ALTER TABLE daily_counts ADD PRIMARY KEY (tenant, day, flow, metric, shard);

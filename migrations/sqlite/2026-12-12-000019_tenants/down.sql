CREATE TABLE daily_counts_single (
    day TEXT NOT NULL,
    flow TEXT NOT NULL,
    metric TEXT NOT NULL,
    shard INTEGER NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (day, flow, metric, shard)
);
INSERT INTO daily_counts_single SELECT day, flow, metric, shard, n FROM daily_counts WHERE tenant = 'default';
DROP TABLE daily_counts;
ALTER TABLE daily_counts_single RENAME TO daily_counts;
CREATE TABLE reply_drafts_single (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ticket TEXT NOT NULL UNIQUE,
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
INSERT INTO reply_drafts_single SELECT id, ticket, conversation_id, customer, subject, details, draft, passages, worded_by, ticket_modified, status, created_at, reviewed_at, reviewed_by, final_text, reason FROM reply_drafts WHERE tenant = 'default';
DROP TABLE reply_drafts;
ALTER TABLE reply_drafts_single RENAME TO reply_drafts;
CREATE INDEX reply_drafts_status ON reply_drafts (status, id);
CREATE INDEX reply_drafts_conversation ON reply_drafts (conversation_id);
DROP INDEX knowledge_flags_by_tenant;
ALTER TABLE knowledge_flags DROP COLUMN tenant;
DROP INDEX knowledge_revisions_by_item;
CREATE INDEX knowledge_revisions_by_item ON knowledge_revisions (item_id, revision);
ALTER TABLE knowledge_revisions DROP COLUMN tenant;
DROP INDEX knowledge_items_by_title;
CREATE TABLE knowledge_items_single (
    id TEXT PRIMARY KEY NOT NULL,
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
    updated_by TEXT NOT NULL
);
INSERT INTO knowledge_items_single SELECT id, kind, title, question, also_asked, answer, keywords, category, source, revision, updated_at, updated_by FROM knowledge_items WHERE tenant = 'default';
DROP TABLE knowledge_items;
ALTER TABLE knowledge_items_single RENAME TO knowledge_items;
CREATE UNIQUE INDEX knowledge_items_by_title ON knowledge_items (lower(title));
DROP INDEX audit_log_by_tenant;
ALTER TABLE audit_log DROP COLUMN tenant;
ALTER TABLE api_keys DROP COLUMN tenant;
ALTER TABLE users DROP COLUMN tenant;
ALTER TABLE conversations DROP COLUMN tenant;

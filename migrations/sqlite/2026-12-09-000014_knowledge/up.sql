-- The knowledge base enquiries are answered from (see src/knowledge/mod.rs): entries (a question,
-- its answer, keywords and category) and uploaded documents (their whole text, split into
-- passages when indexed). Lists are JSON arrays of strings. Titles are unique whatever the case.
-- Every change adds a row to knowledge_revisions (the item as it became, NULL once deleted): its
-- number is the base's revision, which each process compares with the one it indexed.
CREATE TABLE knowledge_items (
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
CREATE UNIQUE INDEX knowledge_items_by_title ON knowledge_items (lower(title));
CREATE TABLE knowledge_revisions (
    revision INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    item_id TEXT NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at BIGINT NOT NULL,
    content TEXT
);
CREATE INDEX knowledge_revisions_by_item ON knowledge_revisions (item_id, revision);

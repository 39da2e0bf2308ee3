DROP TABLE knowledge_revisions;
DROP TABLE knowledge_items;

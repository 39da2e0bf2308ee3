DROP TABLE knowledge_flags;

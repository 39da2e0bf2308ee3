-- Questions a person should review (see src/engine/answers.rs): unanswered, answered unsure, or
-- answered and then called wrong, thumbed down or followed by a hand-off. Written through the
-- outbox once per flagging turn (idempotency_key). A person resolves a group of them by linking
-- an existing item or writing a new one (resolution: the item's id).
CREATE TABLE knowledge_flags (
    id BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    question TEXT NOT NULL,
    reason TEXT NOT NULL,
    passages TEXT NOT NULL,
    evidence TEXT,
    created_at BIGINT NOT NULL,
    resolved_at BIGINT,
    resolved_by TEXT,
    resolution TEXT
);
CREATE INDEX knowledge_flags_open ON knowledge_flags (resolved_at, created_at);

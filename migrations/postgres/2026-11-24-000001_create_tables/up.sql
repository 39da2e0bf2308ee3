-- Inbox: every inbound event, durable before the webhook answers 200. dedup_key is the WhatsApp
-- message id (or erp:<outbox id> for ERP answers), so a repeated delivery changes nothing.
CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    dedup_key TEXT NOT NULL UNIQUE,
    conversation_id TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    event TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    processed_at BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX inbox_pending ON inbox (processed_at, conversation_id, id);

-- One row per conversation (business number and customer): state, optimistic version, lease.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    customer TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    state TEXT NOT NULL,
    version BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_inbound_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX conversations_customer ON conversations (customer);

-- Turns: one record per processed event, with guard results, trace and effects.
CREATE TABLE turns (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    inbox_id BIGINT NOT NULL,
    flow TEXT,
    step_before TEXT NOT NULL,
    step_after TEXT NOT NULL,
    outcome TEXT NOT NULL,
    record TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (conversation_id, seq)
);

-- Outbox: WhatsApp sends and ERP writes, written in the same transaction as the state.
CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error TEXT,
    result TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX outbox_pending ON outbox (status, id);

-- Delivery receipts of our messages, deduplicated by (message, status).
CREATE TABLE message_statuses (
    message_id TEXT NOT NULL,
    status TEXT NOT NULL,
    recipient TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    detail TEXT,
    PRIMARY KEY (message_id, status)
);

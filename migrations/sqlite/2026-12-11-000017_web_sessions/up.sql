-- Website chat sessions (the widget): one per visitor and site, its conversation keyed
-- `web.<site>:<id>`. The token the browser holds is an HMAC of the id (never stored). A session
-- idle for 30 minutes is closed and its token refused.
CREATE TABLE web_sessions (
    id TEXT PRIMARY KEY NOT NULL,
    site TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX web_sessions_open ON web_sessions (closed_at, last_seen_at);

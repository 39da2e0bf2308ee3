-- Codes that carry a website chat over to WhatsApp ("Continue on WhatsApp"): the visitor sends
-- the code from WhatsApp, and the session's conversation moves to that number's conversation.
-- A code is taken once, within a day.
CREATE TABLE web_joins (
    code TEXT PRIMARY KEY NOT NULL,
    session TEXT NOT NULL,
    site TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    joined_by TEXT,
    joined_at BIGINT
);

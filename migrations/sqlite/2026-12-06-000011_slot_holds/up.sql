-- Places held in visit windows against the crews' capacity (business.yaml, visit_slots.capacity).
-- A conversation's journey holds a place in its chosen window while the customer confirms
-- (expires_at, Unix ms, moved on by each of their turns); once the ERP has the booking the row
-- names the document (erp_name) and stays until the visit. One place per (window, crew): a
-- second wall behind the count the turn's commit makes before it takes one.
CREATE TABLE slot_holds (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    conversation_id TEXT NOT NULL,
    journey_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    crew INTEGER NOT NULL,
    expires_at BIGINT NOT NULL,
    erp_name TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (window_start, crew),
    UNIQUE (conversation_id, journey_id)
);
CREATE INDEX slot_holds_by_expiry ON slot_holds (expires_at);
CREATE INDEX slot_holds_by_document ON slot_holds (erp_name);

-- The ERP lookup results a turn's guards used (catalog, open slots, bookings), stored once per
-- content: turn records name them by hash instead of repeating them (they were most of each
-- record). Rows are never updated; the hash is SHA-256 of the JSON body, in hex.
CREATE TABLE lookup_snapshots (
    hash TEXT PRIMARY KEY NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

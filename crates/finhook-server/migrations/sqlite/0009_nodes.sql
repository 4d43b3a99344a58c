-- The shared store's node heartbeats and lease owners (PostgreSQL `0006`), kept in the
-- embedded schema too so that both stay the same; one process owns an embedded store, so
-- nothing here is written.
CREATE TABLE nodes (
    id      TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
);
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;

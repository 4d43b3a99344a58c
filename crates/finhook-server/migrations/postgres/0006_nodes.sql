-- Fast takeover among nodes: each node says it is alive (`nodes.seen_at`, every second),
-- and a lease names its node (`deliveries.claimed_by`), so the leases of a node that went
-- silent are free after a few seconds instead of when they run out.
CREATE TABLE nodes (
    id      TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;

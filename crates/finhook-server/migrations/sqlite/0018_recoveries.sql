-- Bulk recovery (issue 12): a job that re-sends an instance's (or one endpoint's) failed
-- deliveries of a time range, its progress kept here so any node can show it, and resume it.
CREATE TABLE recoveries (
    id          TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL,
    endpoint_id TEXT,
    since       INTEGER NOT NULL,
    until       INTEGER NOT NULL,
    status      TEXT NOT NULL,
    total       INTEGER NOT NULL,
    resent      INTEGER NOT NULL,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    finished_at INTEGER
) STRICT;
CREATE INDEX deliveries_failed ON deliveries (updated_at) WHERE status = 'failed' AND NOT superseded;

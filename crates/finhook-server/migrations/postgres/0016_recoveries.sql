-- Bulk recovery: SQLite's `0018`.
CREATE TABLE recoveries (
    id          TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL,
    endpoint_id TEXT,
    since       BIGINT NOT NULL,
    until       BIGINT NOT NULL,
    status      TEXT NOT NULL,
    total       BIGINT NOT NULL,
    resent      BIGINT NOT NULL,
    error       TEXT,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX deliveries_failed ON deliveries (updated_at) WHERE status = 'failed' AND NOT superseded;

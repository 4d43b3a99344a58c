-- Operational events: SQLite's `0015`.
CREATE TABLE endpoint_failures (
    endpoint_id      TEXT PRIMARY KEY,
    instance_id      BIGINT NOT NULL,
    failing_since    BIGINT NOT NULL,
    failures_in_row  BIGINT NOT NULL,
    last_failed_at   BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error_class TEXT,
    reported         BOOLEAN NOT NULL
);

CREATE TABLE event_outbox (
    id          BIGSERIAL PRIMARY KEY,
    instance_id BIGINT NOT NULL,
    event_type  TEXT NOT NULL,
    key         TEXT NOT NULL,
    endpoint_id TEXT,
    message_id  TEXT,
    at          BIGINT NOT NULL,
    data        TEXT NOT NULL
);

ALTER TABLE endpoints ADD COLUMN auto_disabled_at BIGINT;

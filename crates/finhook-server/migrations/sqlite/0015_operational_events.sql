-- Operational events (issue 11): each endpoint's run of failed attempts since its last
-- success (a row only while it fails; kept by the group commit that records the attempts),
-- the outbox events wait in until they are published as messages, and when an endpoint was
-- disabled for failing too long.
CREATE TABLE endpoint_failures (
    endpoint_id      TEXT PRIMARY KEY,
    instance_id      INTEGER NOT NULL,
    failing_since    INTEGER NOT NULL,
    failures_in_row  INTEGER NOT NULL,
    last_failed_at   INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error_class TEXT,
    -- Whether `endpoint.failing` was queued for this run.
    reported         INTEGER NOT NULL
) STRICT;

CREATE TABLE event_outbox (
    id          INTEGER PRIMARY KEY,
    instance_id INTEGER NOT NULL,
    event_type  TEXT NOT NULL,
    -- The idempotency key the event is published under.
    key         TEXT NOT NULL,
    endpoint_id TEXT,
    message_id  TEXT,
    at          INTEGER NOT NULL,
    data        TEXT NOT NULL
) STRICT;

ALTER TABLE endpoints ADD COLUMN auto_disabled_at INTEGER;

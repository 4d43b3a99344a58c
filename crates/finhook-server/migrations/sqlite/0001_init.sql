-- finhook embedded store, first schema. Times are Unix milliseconds (UTC).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE instances (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    customer_id  TEXT NOT NULL UNIQUE,
    mode         TEXT NOT NULL CHECK (mode IN ('live', 'sandbox')),
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE endpoints (
    id               TEXT PRIMARY KEY,
    instance_id      INTEGER NOT NULL REFERENCES instances (id),
    url              TEXT NOT NULL,
    description      TEXT,
    -- JSON array of ResponseType strings; NULL means every type.
    event_types      TEXT,
    max_attempts     INTEGER NOT NULL,
    interval_seconds INTEGER NOT NULL,
    backoff          TEXT NOT NULL,
    success          TEXT NOT NULL CHECK (success IN ('exactly_200', 'any_2xx')),
    enabled          INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX endpoints_by_instance ON endpoints (instance_id);

-- Signing secrets. The newest row signs; older rows keep signing until expires_at.
CREATE TABLE endpoint_secrets (
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
) STRICT;
CREATE INDEX endpoint_secrets_by_endpoint ON endpoint_secrets (endpoint_id, created_at);

-- One row per accepted callback; the payload is stored once, as the exact bytes received.
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    instance_id     INTEGER NOT NULL REFERENCES instances (id),
    response_type   TEXT NOT NULL,
    login_id        TEXT,
    request_id      TEXT,
    tag             TEXT,
    idempotency_key TEXT,
    body_sha256     TEXT NOT NULL,
    payload         BLOB NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (instance_id, idempotency_key)
) STRICT;
CREATE INDEX messages_by_instance ON messages (instance_id, id);
CREATE INDEX messages_by_login ON messages (instance_id, login_id, id);

-- One message bound for one endpoint. endpoint_id is kept after the endpoint is deleted
-- (its deliveries are cancelled), so history stays readable.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    endpoint_id     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts_made   INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    -- Set while a worker holds the delivery; an expired claim is free to take again.
    claimed_until   INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    attempt_number   INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    latency_ms       INTEGER NOT NULL,
    status_code      INTEGER,
    error_class      TEXT,
    error_detail     TEXT,
    response_excerpt TEXT,
    succeeded        INTEGER NOT NULL
) STRICT;
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, attempt_number);

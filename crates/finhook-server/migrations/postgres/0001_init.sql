-- finhook shared store (PostgreSQL), the same model as the embedded one. Times are Unix
-- milliseconds (UTC) as BIGINT, so both stores share their row mapping.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE instances (
    id                  BIGSERIAL PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE,
    customer_id         TEXT NOT NULL UNIQUE,
    mode                TEXT NOT NULL CHECK (mode IN ('live', 'sandbox')),
    api_key_hash        TEXT NOT NULL UNIQUE,
    created_at          BIGINT NOT NULL,
    sandbox_strict_auth BOOLEAN NOT NULL DEFAULT FALSE,
    sandbox_delay_ms    BIGINT NOT NULL DEFAULT 2000
);

CREATE TABLE endpoints (
    id               TEXT PRIMARY KEY,
    instance_id      BIGINT NOT NULL REFERENCES instances (id),
    url              TEXT NOT NULL,
    description      TEXT,
    event_types      TEXT,
    max_attempts     BIGINT NOT NULL,
    interval_seconds BIGINT NOT NULL,
    backoff          TEXT NOT NULL,
    success          TEXT NOT NULL CHECK (success IN ('exactly_200', 'any_2xx')),
    enabled          BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX endpoints_by_instance ON endpoints (instance_id);

CREATE TABLE endpoint_secrets (
    seq         BIGSERIAL PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX endpoint_secrets_by_endpoint ON endpoint_secrets (endpoint_id, created_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    instance_id     BIGINT NOT NULL REFERENCES instances (id),
    response_type   TEXT NOT NULL,
    login_id        TEXT,
    request_id      TEXT,
    tag             TEXT,
    idempotency_key TEXT,
    body_sha256     TEXT NOT NULL,
    payload         BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (instance_id, idempotency_key)
);
CREATE INDEX messages_by_instance ON messages (instance_id, id);
CREATE INDEX messages_by_login ON messages (instance_id, login_id, id);

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    endpoint_id     TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts_made   BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_message ON deliveries (message_id);
CREATE INDEX deliveries_by_endpoint ON deliveries (endpoint_id, status);

CREATE TABLE attempts (
    id               TEXT PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES deliveries (id),
    attempt_number   BIGINT NOT NULL,
    started_at       BIGINT NOT NULL,
    latency_ms       BIGINT NOT NULL,
    status_code      BIGINT,
    error_class      TEXT,
    error_detail     TEXT,
    response_excerpt TEXT,
    succeeded        BOOLEAN NOT NULL
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, attempt_number);

CREATE TABLE sandbox_logins (
    login_id    TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id),
    institution TEXT NOT NULL,
    username    TEXT NOT NULL,
    tag         TEXT,
    created_at  BIGINT NOT NULL
);

CREATE TABLE sandbox_requests (
    request_id        TEXT PRIMARY KEY,
    instance_id       BIGINT NOT NULL REFERENCES instances (id),
    login_id          TEXT NOT NULL REFERENCES sandbox_logins (login_id),
    state             TEXT NOT NULL CHECK (state IN ('mfa_pending', 'authorized')),
    created_at        BIGINT NOT NULL,
    detail            TEXT,
    ready_at          BIGINT,
    callbacks_pending BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sandbox_requests_pending ON sandbox_requests (callbacks_pending) WHERE callbacks_pending;

CREATE TABLE sandbox_tokens (
    token       TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id),
    expires_at  BIGINT NOT NULL,
    used        BOOLEAN NOT NULL DEFAULT FALSE
);

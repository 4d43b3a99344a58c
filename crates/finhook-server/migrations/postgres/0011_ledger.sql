-- The delivery ledger: SQLite's `0013`. Several nodes record attempts at once; only the
-- transaction that holds a transaction-scoped advisory lock extends the chains, and the
-- others queue their attempts in `ledger_pending` for it.
CREATE TABLE ledger_pending (
    id             BIGSERIAL PRIMARY KEY,
    attempt_id     TEXT NOT NULL,
    instance_id    BIGINT NOT NULL,
    message_id     TEXT NOT NULL,
    body_sha256    TEXT NOT NULL,
    endpoint_url   TEXT NOT NULL,
    attempt_number BIGINT NOT NULL,
    attempted_at   BIGINT NOT NULL,
    status_code    BIGINT,
    error_class    TEXT
);

CREATE TABLE ledger_entries (
    id             BIGSERIAL PRIMARY KEY,
    instance_id    BIGINT NOT NULL,
    seq            BIGINT NOT NULL,
    attempt_id     TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    body_sha256    TEXT NOT NULL,
    endpoint_url   TEXT NOT NULL,
    attempt_number BIGINT NOT NULL,
    attempted_at   BIGINT NOT NULL,
    status_code    BIGINT,
    error_class    TEXT,
    hash           BYTEA NOT NULL
);
CREATE UNIQUE INDEX ledger_entries_by_seq ON ledger_entries (instance_id, seq);

CREATE TABLE ledger_heads (
    instance_id BIGINT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        BYTEA NOT NULL
);

-- The delivery ledger (issue 11): every attempt from this version on becomes an entry of
-- its instance's hash chain, written in the same transaction as its `attempts` row, with
-- every fact it covers copied (retention deletes messages and attempts, never evidence).
-- `ledger_heads` keeps each instance's last link. An entry stores its own hash only: the
-- previous hash is the previous entry's (32 zero bytes before seq 1). No foreign keys:
-- entries outlive the messages, endpoints and attempts they describe. `ledger_pending`
-- holds attempts recorded while another PostgreSQL node held the chains, until they are
-- sealed; on SQLite, with its one writer, it stays empty.
CREATE TABLE ledger_pending (
    id             INTEGER PRIMARY KEY,
    attempt_id     TEXT NOT NULL,
    instance_id    INTEGER NOT NULL,
    message_id     TEXT NOT NULL,
    body_sha256    TEXT NOT NULL,
    endpoint_url   TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    attempted_at   INTEGER NOT NULL,
    status_code    INTEGER,
    error_class    TEXT
) STRICT;

-- A rowid table, appended to, with each instance's order in an index: a table keyed by
-- (instance, seq) instead wrote 30 MB more to disk over a fan-out bench of 40,000
-- deliveries (275-282 MB against 246-251; docs/BENCHMARKS.md, "The delivery ledger").
CREATE TABLE ledger_entries (
    id             INTEGER PRIMARY KEY,
    instance_id    INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    attempt_id     TEXT NOT NULL,
    message_id     TEXT NOT NULL,
    body_sha256    TEXT NOT NULL,
    endpoint_url   TEXT NOT NULL,
    attempt_number INTEGER NOT NULL,
    attempted_at   INTEGER NOT NULL,
    status_code    INTEGER,
    error_class    TEXT,
    hash           BLOB NOT NULL
) STRICT;
CREATE UNIQUE INDEX ledger_entries_by_seq ON ledger_entries (instance_id, seq);

CREATE TABLE ledger_heads (
    instance_id INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL,
    hash        BLOB NOT NULL
) STRICT;

-- finhook's operational events (endpoint.failing, message.attempts_exhausted, ...), for
-- receivers subscribed to them: stored and deduplicated like callbacks, kept apart from the
-- conciliation.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `wh:<webhook-id>`, or `ev:<SHA-256 of the body>` when there is none.
    dedup_key   TEXT NOT NULL UNIQUE,
    webhook_id  TEXT,
    event_type  TEXT NOT NULL,
    instance    TEXT NOT NULL,
    endpoint_id TEXT,
    message_id  TEXT,
    at          INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    forwarded   INTEGER NOT NULL
) STRICT;

-- finhook receiver store. Times are Unix milliseconds (UTC).

-- Every distinct callback received, exactly as it arrived.
CREATE TABLE callbacks (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    -- `wh:<webhook-id>`, or `fl:<LoginId>:<ResponseType>:<RequestId>` when there is none.
    dedup_key     TEXT NOT NULL UNIQUE,
    webhook_id    TEXT,
    response_type TEXT NOT NULL,
    login_id      TEXT,
    request_id    TEXT,
    tag           TEXT,
    received_at   INTEGER NOT NULL,
    body          BLOB NOT NULL,
    -- Whether --forward-to has accepted it (always 1 when there is no forwarding).
    forwarded     INTEGER NOT NULL
) STRICT;
CREATE INDEX callbacks_by_login ON callbacks (login_id, seq);

-- Endpoint health (issue 12): per endpoint and minute (since the epoch), the attempts made,
-- how many succeeded, a latency histogram (upper bounds in ms in the column names) and the
-- minute's last outcome. Each node adds what it saw; kept a day and an hour.
CREATE TABLE endpoint_minutes (
    endpoint_id      TEXT NOT NULL,
    minute           INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    succeeded        INTEGER NOT NULL,
    l5               INTEGER NOT NULL,
    l10              INTEGER NOT NULL,
    l25              INTEGER NOT NULL,
    l50              INTEGER NOT NULL,
    l100             INTEGER NOT NULL,
    l250             INTEGER NOT NULL,
    l500             INTEGER NOT NULL,
    l1000            INTEGER NOT NULL,
    l2500            INTEGER NOT NULL,
    l5000            INTEGER NOT NULL,
    l10000           INTEGER NOT NULL,
    l60000           INTEGER NOT NULL,
    last_at          INTEGER NOT NULL,
    last_status_code INTEGER,
    last_error_class TEXT,
    PRIMARY KEY (endpoint_id, minute)
) STRICT, WITHOUT ROWID;
CREATE INDEX endpoint_minutes_by_minute ON endpoint_minutes (minute);

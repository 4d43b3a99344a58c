-- Where `finhook listen --catch-up-from` stopped reading each finhook feed: the feed's
-- `next_cursor`, so the next start resumes there instead of walking the instance's history.
CREATE TABLE catch_up (
    source     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

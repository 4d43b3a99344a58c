-- Self-service portal links (issue 13): a short-lived link that opens the dashboard scoped
-- to one instance without sharing its key, read-write or read-only. Only the token's
-- SHA-256 is kept; a revoked or expired link opens nothing and ends the sessions it opened.
CREATE TABLE portal_links (
    id          TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    token_hash  TEXT NOT NULL UNIQUE,
    read_only   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    created_by  TEXT NOT NULL
) STRICT;
CREATE INDEX portal_links_by_instance ON portal_links (instance_id, id);

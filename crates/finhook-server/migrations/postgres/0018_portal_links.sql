-- Self-service portal links: SQLite's `0020`.
CREATE TABLE portal_links (
    id          TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id),
    token_hash  TEXT NOT NULL UNIQUE,
    read_only   BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    created_by  TEXT NOT NULL
);
CREATE INDEX portal_links_by_instance ON portal_links (instance_id, id);

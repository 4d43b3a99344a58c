-- The certificate watch: SQLite's `0014`.
ALTER TABLE endpoints ADD COLUMN certificate TEXT;
ALTER TABLE endpoints ADD COLUMN certificate_expires_at BIGINT;

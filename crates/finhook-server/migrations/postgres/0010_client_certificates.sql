-- Mutual TLS: SQLite's `0012`.
ALTER TABLE endpoints ADD COLUMN client_cert_pem TEXT;
ALTER TABLE endpoints ADD COLUMN client_key TEXT;
ALTER TABLE endpoints ADD COLUMN client_cert_subject TEXT;
ALTER TABLE endpoints ADD COLUMN client_cert_expires_at BIGINT;

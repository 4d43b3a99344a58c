-- Asymmetric signatures (Standard Webhooks `v1a`, Ed25519): SQLite's `0011`.
ALTER TABLE endpoints ADD COLUMN signing TEXT NOT NULL DEFAULT 'hmac' CHECK (signing IN ('hmac', 'ed25519'));
CREATE TABLE instance_signing_keys (
    kid         TEXT PRIMARY KEY,
    instance_id BIGINT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    public_key  TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX instance_signing_keys_by_instance ON instance_signing_keys (instance_id, created_at);

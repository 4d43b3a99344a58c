-- Asymmetric signatures (Standard Webhooks `v1a`, Ed25519): an endpoint chooses how its
-- `webhook-signature` is made, and each instance has signing keys whose public halves are
-- published as a JWK set. The newest key without an end signs; older ones keep signing
-- until expires_at (a rotation's overlap). `secret` is the sealed `whsk_` key, `kid` its
-- RFC 7638 thumbprint.
ALTER TABLE endpoints ADD COLUMN signing TEXT NOT NULL DEFAULT 'hmac' CHECK (signing IN ('hmac', 'ed25519'));
CREATE TABLE instance_signing_keys (
    kid         TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    public_key  TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
) STRICT;
CREATE INDEX instance_signing_keys_by_instance ON instance_signing_keys (instance_id, created_at);

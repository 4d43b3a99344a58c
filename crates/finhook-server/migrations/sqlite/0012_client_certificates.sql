-- Mutual TLS: an endpoint's client certificate (PEM, public), its private key (sealed like
-- the secrets, bound to the endpoint id), and what the API shows of the certificate.
ALTER TABLE endpoints ADD COLUMN client_cert_pem TEXT;
ALTER TABLE endpoints ADD COLUMN client_key TEXT;
ALTER TABLE endpoints ADD COLUMN client_cert_subject TEXT;
ALTER TABLE endpoints ADD COLUMN client_cert_expires_at INTEGER;

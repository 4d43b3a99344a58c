-- The certificate watch (issue 11): what the last look at an endpoint's server certificate
-- found (a JSON report), and its expiry apart, for the metrics and the daily check.
ALTER TABLE endpoints ADD COLUMN certificate TEXT;
ALTER TABLE endpoints ADD COLUMN certificate_expires_at INTEGER;

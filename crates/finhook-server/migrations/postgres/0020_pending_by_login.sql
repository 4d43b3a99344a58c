-- An ordered endpoint's next deliveries, found per LoginId: SQLite's `0022`.
ALTER TABLE deliveries ADD COLUMN login_id TEXT;
UPDATE deliveries SET login_id = m.login_id FROM messages m
 WHERE m.id = deliveries.message_id AND deliveries.status = 'pending' AND deliveries.sequence IS NOT NULL;
CREATE INDEX deliveries_pending_by_login ON deliveries (endpoint_id, login_id, sequence) WHERE status = 'pending';

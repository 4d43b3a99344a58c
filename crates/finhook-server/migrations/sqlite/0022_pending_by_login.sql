-- An ordered endpoint's next deliveries, found per LoginId instead of by a walk: each
-- delivery of a callback with a LoginId carries it (the message's, kept beside its
-- `sequence`), and the pending ones are indexed by endpoint, LoginId and sequence, so the
-- first of each LoginId is one index step away whatever its history or queue. (Before,
-- each candidate walked every callback of its LoginId, and a scan every pending delivery:
-- 20,000 callbacks of 20 LoginIds went out at 13/s.) Pending deliveries without a LoginId
-- are in the index too, under NULL: an ordered endpoint takes those in due order.
ALTER TABLE deliveries ADD COLUMN login_id TEXT;
UPDATE deliveries SET login_id = (SELECT m.login_id FROM messages m WHERE m.id = deliveries.message_id)
 WHERE status = 'pending' AND sequence IS NOT NULL;
CREATE INDEX deliveries_pending_by_login ON deliveries (endpoint_id, login_id, sequence) WHERE status = 'pending';

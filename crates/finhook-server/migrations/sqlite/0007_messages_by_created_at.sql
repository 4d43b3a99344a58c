-- The retention sweep finds messages past their time through this index. Without it each
-- sweep (one at start-up, then hourly) read every message, payload included, while holding
-- the one writer: 1.2 s with 10,000 messages, minutes with millions, every ingest waiting.
CREATE INDEX messages_by_created_at ON messages (created_at);

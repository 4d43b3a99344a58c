-- The retention sweep finds messages past their time through this index. Without it each
-- sweep (one at start-up, then hourly) read every message: a scan that grows with history.
CREATE INDEX messages_by_created_at ON messages (created_at);

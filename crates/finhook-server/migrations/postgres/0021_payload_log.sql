-- The columns with which the embedded store names a body kept in its payload log instead
-- of the row (migrations/sqlite/0023_payload_log.sql). A shared store keeps every body in
-- its row, so here they stay NULL; they exist so that both stores read and write messages
-- with the same statements.
ALTER TABLE messages ADD COLUMN payload_segment BIGINT;
ALTER TABLE messages ADD COLUMN payload_offset BIGINT;
ALTER TABLE messages ADD COLUMN payload_length BIGINT;
-- The same index as the embedded store's (empty here), so that both schemas stay one.
CREATE INDEX messages_by_payload_segment ON messages (payload_segment) WHERE payload_segment IS NOT NULL;

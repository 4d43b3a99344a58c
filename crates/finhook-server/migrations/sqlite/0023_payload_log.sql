-- Where a callback's body is when it is not in its row: in the embedded store's payload
-- log, segment files beside the database (src/store/sql/payload_log.rs). Such a row's
-- `payload` is empty. Rows written before keep their body in the row. The index finds the
-- oldest segment still named, below which the retention sweep removes segments.
ALTER TABLE messages ADD COLUMN payload_segment INTEGER;
ALTER TABLE messages ADD COLUMN payload_offset INTEGER;
ALTER TABLE messages ADD COLUMN payload_length INTEGER;
CREATE INDEX messages_by_payload_segment ON messages (payload_segment) WHERE payload_segment IS NOT NULL;

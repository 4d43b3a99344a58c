-- Each instance's stored callback bytes, kept by ingest and the retention sweep in the
-- transactions that add and remove messages: the per-instance storage quota reads it.
ALTER TABLE instances ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET stored_bytes = COALESCE(
    (SELECT SUM(length(m.payload)) FROM messages m WHERE m.instance_id = instances.id), 0);

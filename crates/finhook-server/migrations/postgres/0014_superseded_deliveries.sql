-- Superseded deliveries: SQLite's `0016`.
ALTER TABLE deliveries ADD COLUMN superseded BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE deliveries SET superseded = TRUE
WHERE EXISTS (SELECT 1 FROM deliveries later
              WHERE later.message_id = deliveries.message_id
                AND later.endpoint_id = deliveries.endpoint_id
                AND later.id > deliveries.id);

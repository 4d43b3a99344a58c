-- A message's state at an endpoint is its latest delivery's (issue 12): a redelivery round
-- supersedes the earlier deliveries of the same message to the same endpoint, which stay
-- as history but no longer count as failed (or anything) in lists, filters and metrics.
ALTER TABLE deliveries ADD COLUMN superseded INTEGER NOT NULL DEFAULT 0;
UPDATE deliveries SET superseded = 1
WHERE EXISTS (SELECT 1 FROM deliveries later
              WHERE later.message_id = deliveries.message_id
                AND later.endpoint_id = deliveries.endpoint_id
                AND later.id > deliveries.id);

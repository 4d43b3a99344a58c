-- Ordered delivery per LoginId (issue 13): each delivery's place among the deliveries of
-- its LoginId's callbacks to its endpoint (`webhook-sequence`, gapless, from 1), and the
-- endpoints that want a LoginId's callbacks one at a time in ingest order.
ALTER TABLE deliveries ADD COLUMN sequence INTEGER;
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'login_id'));
-- The last `webhook-sequence` given per instance, LoginId and endpoint: read and moved on
-- once per batch, so numbering costs the same whatever the LoginId's history (counting its
-- deliveries instead cost a batch a walk of every callback of its LoginIds).
CREATE TABLE login_sequences (
    instance_id INTEGER NOT NULL,
    login_id    TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    last        INTEGER NOT NULL,
    PRIMARY KEY (instance_id, login_id, endpoint_id)
) STRICT;

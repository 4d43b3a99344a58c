-- Ordered delivery per LoginId (issue 13): each delivery's place among the deliveries of
-- its LoginId's callbacks to its endpoint (`webhook-sequence`, gapless, from 1), and the
-- endpoints that want a LoginId's callbacks one at a time in ingest order.
ALTER TABLE deliveries ADD COLUMN sequence INTEGER;
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'login_id'));

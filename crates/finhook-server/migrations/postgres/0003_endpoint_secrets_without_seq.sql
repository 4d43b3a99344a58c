-- The secrets of an endpoint are ordered by what they mean (the current one has no end,
-- then newest first), not by insertion order; drop the column only this dialect had, so
-- both migrations describe the same table (the schema test compares the catalogues).
ALTER TABLE endpoint_secrets DROP COLUMN seq;

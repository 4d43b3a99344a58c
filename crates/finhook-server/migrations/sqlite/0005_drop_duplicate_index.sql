-- `customer_id` is declared UNIQUE in 0001, which already indexes it; this second unique
-- index only cost a write per instance. Found by the schema test that compares both dialects.
DROP INDEX instances_by_customer_id;

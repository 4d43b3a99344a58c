-- Callback payloads compressed with lz4 instead of pglz when PostgreSQL stores them out of
-- line (TOAST): pglz_compress was the largest item of PostgreSQL's CPU per callback, and
-- lz4 takes about half the time per 8 KiB row (docs/BENCHMARKS.md). Rows already stored
-- keep their compression. A PostgreSQL built without lz4 keeps pglz.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE messages ALTER COLUMN payload SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'lz4 is not available; payloads stay compressed with pglz';
END
$$;

-- The embedded store writes no claims (its one process keeps them in memory) and never
-- reads them. A file from an earlier build may still hold some; they are cleared once,
-- here, instead of at every start, where the statement walked every delivery ever made
-- while holding the writer (13 s with a million).
UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL;

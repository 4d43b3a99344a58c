-- A connection's callbacks are owed from the moment Authorize answers until all are
-- ingested; a restart resumes the ones still owed.
ALTER TABLE sandbox_requests ADD COLUMN callbacks_pending INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sandbox_requests_pending ON sandbox_requests (callbacks_pending) WHERE callbacks_pending = 1;

-- How many bytes of the receiver's answer were read; the stored excerpt is made valid
-- UTF-8 without NUL (lossy), so the raw size is kept beside it.
ALTER TABLE attempts ADD COLUMN response_bytes BIGINT;

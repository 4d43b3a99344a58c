-- The audit log (issue 12): who (the admin key, or which instance's key; through the API
-- or the dashboard) did what to what, when and from where. Kept as long as messages.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    instance_id INTEGER,
    action      TEXT NOT NULL,
    target      TEXT,
    remote_addr TEXT,
    request_id  TEXT
) STRICT;
CREATE INDEX audit_log_by_instance ON audit_log (instance_id, id);
CREATE INDEX audit_log_by_time ON audit_log (at);

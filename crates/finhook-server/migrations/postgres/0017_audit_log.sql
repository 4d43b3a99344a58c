-- The audit log: SQLite's `0019`.
CREATE TABLE audit_log (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    instance_id BIGINT,
    action      TEXT NOT NULL,
    target      TEXT,
    remote_addr TEXT,
    request_id  TEXT
);
CREATE INDEX audit_log_by_instance ON audit_log (instance_id, id);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- The Flinks-compatible sandbox: per-instance settings, and the logins, requests and
-- authorize tokens of sandbox connections.

ALTER TABLE instances ADD COLUMN sandbox_strict_auth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN sandbox_delay_ms INTEGER NOT NULL DEFAULT 2000;
CREATE UNIQUE INDEX instances_by_customer_id ON instances (customer_id);

CREATE TABLE sandbox_logins (
    login_id    TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    institution TEXT NOT NULL,
    username    TEXT NOT NULL,
    tag         TEXT,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sandbox_requests (
    request_id  TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    login_id    TEXT NOT NULL REFERENCES sandbox_logins (login_id),
    state       TEXT NOT NULL CHECK (state IN ('mfa_pending', 'authorized')),
    created_at  INTEGER NOT NULL,
    -- The GetAccountsDetail options of the first call (JSON), and when its data is ready.
    detail      TEXT,
    ready_at    INTEGER
) STRICT;

CREATE TABLE sandbox_tokens (
    token       TEXT PRIMARY KEY,
    instance_id INTEGER NOT NULL REFERENCES instances (id),
    expires_at  INTEGER NOT NULL,
    used        INTEGER NOT NULL DEFAULT 0
) STRICT;

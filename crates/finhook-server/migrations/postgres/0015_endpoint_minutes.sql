-- Endpoint health: SQLite's `0017`.
CREATE TABLE endpoint_minutes (
    endpoint_id      TEXT NOT NULL,
    minute           BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    succeeded        BIGINT NOT NULL,
    l5               BIGINT NOT NULL,
    l10              BIGINT NOT NULL,
    l25              BIGINT NOT NULL,
    l50              BIGINT NOT NULL,
    l100             BIGINT NOT NULL,
    l250             BIGINT NOT NULL,
    l500             BIGINT NOT NULL,
    l1000            BIGINT NOT NULL,
    l2500            BIGINT NOT NULL,
    l5000            BIGINT NOT NULL,
    l10000           BIGINT NOT NULL,
    l60000           BIGINT NOT NULL,
    last_at          BIGINT NOT NULL,
    last_status_code BIGINT,
    last_error_class TEXT,
    PRIMARY KEY (endpoint_id, minute)
);
CREATE INDEX endpoint_minutes_by_minute ON endpoint_minutes (minute);

-- Ordered delivery per LoginId: SQLite's `0021`.
ALTER TABLE deliveries ADD COLUMN sequence BIGINT;
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'login_id'));
CREATE TABLE login_sequences (
    instance_id BIGINT NOT NULL,
    login_id    TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    last        BIGINT NOT NULL,
    PRIMARY KEY (instance_id, login_id, endpoint_id)
);

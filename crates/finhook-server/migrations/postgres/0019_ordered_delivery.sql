-- Ordered delivery per LoginId: SQLite's `0021`.
ALTER TABLE deliveries ADD COLUMN sequence BIGINT;
ALTER TABLE endpoints ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none' CHECK (ordering IN ('none', 'login_id'));

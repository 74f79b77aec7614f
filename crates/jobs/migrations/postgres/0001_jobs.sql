-- Durable jobs (PostgreSQL). Keep in step with migrations/sqlite/0001_jobs.sql.
CREATE TABLE bdc_jobs (
    id           BIGSERIAL PRIMARY KEY,
    kind         TEXT        NOT NULL,
    payload      JSONB       NOT NULL DEFAULT '{}',
    -- Unique key of the schedule slot this job runs; several schedulers
    -- enqueueing the same slot insert it once.
    slot_key     TEXT        UNIQUE,
    status       TEXT        NOT NULL
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
    attempts     INTEGER     NOT NULL DEFAULT 0,
    max_attempts INTEGER     NOT NULL DEFAULT 3,
    run_at       TIMESTAMPTZ NOT NULL,
    locked_by    TEXT,
    locked_until TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    last_error   TEXT
);
CREATE INDEX bdc_jobs_ready_idx ON bdc_jobs (status, run_at);
CREATE INDEX bdc_jobs_lease_idx ON bdc_jobs (status, locked_until);

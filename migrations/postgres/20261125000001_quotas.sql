-- Quotas per key (NULL: no limit). They live in the database, not in a process, so that every
-- API replica enforces the same numbers.
ALTER TABLE warble_api_keys ADD COLUMN quota_concurrent_jobs BIGINT;
ALTER TABLE warble_api_keys ADD COLUMN quota_audio_seconds_per_day BIGINT;
ALTER TABLE warble_api_keys ADD COLUMN quota_upload_bytes BIGINT;

-- The key that submitted a job: concurrent jobs are counted per key.
ALTER TABLE warble_jobs ADD COLUMN key_id TEXT;
CREATE INDEX warble_jobs_key_status ON warble_jobs (key_id, status);

-- What each key submitted per UTC day. Kept apart from the jobs, so that deleting jobs does
-- not give quota back; the row is also what serialises a key's concurrent submissions.
CREATE TABLE warble_usage (
    key_id        TEXT NOT NULL,
    day           TEXT NOT NULL,                 -- YYYY-MM-DD, UTC
    jobs          BIGINT NOT NULL,
    audio_seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (key_id, day)
);

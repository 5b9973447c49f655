-- Batches (issue 18): many requests in one call. Each request becomes a job (its audio fetched
-- from a URL by the API, or uploaded in the same call); a batch is finished once every request
-- is (its job final, or refused before one was made).
CREATE TABLE warble_batches (
    id                  TEXT PRIMARY KEY,        -- ULID
    tenant              TEXT NOT NULL,
    key_id              TEXT NOT NULL,           -- the key that made it, charged for its jobs
    status              TEXT NOT NULL,           -- in_progress | canceling | completed | canceled
    total               BIGINT NOT NULL,
    idempotency_key     TEXT UNIQUE,             -- the tenant's Idempotency-Key, scoped
    intake_until_ms     BIGINT,                  -- an API's lease while it fetches the URLs
    created_at          TEXT NOT NULL,
    finished_at         TEXT
);
CREATE INDEX warble_batches_tenant ON warble_batches (tenant, id);

-- One row per request, in the order given.
CREATE TABLE warble_batch_requests (
    batch_id        TEXT NOT NULL,
    line            BIGINT NOT NULL,             -- 1-based: the JSONL line, or the file's place
    custom_id       TEXT NOT NULL,
    state           TEXT NOT NULL,               -- pending | submitted | failed | canceled
    audio_url       TEXT,                        -- NULL: an uploaded file
    options         TEXT,                        -- JSON {audio_url, decoder, metadata, callback_url}
    job_id          TEXT,
    error_code      TEXT,
    error_message   TEXT,
    PRIMARY KEY (batch_id, line)
);
CREATE INDEX warble_batch_requests_pending ON warble_batch_requests (state, batch_id);

-- The batch a job belongs to.
ALTER TABLE warble_jobs ADD COLUMN batch_id TEXT;
CREATE INDEX warble_jobs_batch ON warble_jobs (batch_id) WHERE batch_id IS NOT NULL;

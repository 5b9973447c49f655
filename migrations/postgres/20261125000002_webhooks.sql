-- Webhook endpoints, registered per tenant. The secret signs deliveries (HMAC), so it is kept
-- as is; during a rotation the previous one keeps signing too until it expires.
CREATE TABLE warble_webhooks (
    id                   TEXT PRIMARY KEY,       -- ULID
    tenant               TEXT NOT NULL,
    url                  TEXT NOT NULL,
    events               TEXT NOT NULL,          -- ",job.succeeded,job.failed," (for LIKE)
    description          TEXT,
    secret               TEXT NOT NULL,          -- whsec_...
    previous_secret      TEXT,
    previous_expires_at  TIMESTAMPTZ,
    disabled_at          TIMESTAMPTZ,
    disabled_reason      TEXT,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX warble_webhooks_tenant ON warble_webhooks (tenant, id);

-- Each tenant's default secret, which signs callbacks sent to a job's own callback_url.
CREATE TABLE warble_tenant_secrets (
    tenant               TEXT PRIMARY KEY,
    secret               TEXT NOT NULL,
    previous_secret      TEXT,
    previous_expires_at  TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL
);

-- A job's own callback URL (checked at submission and again when sent).
ALTER TABLE warble_jobs ADD COLUMN callback_url TEXT;

-- The outbox: one row per event and destination, written in the transaction that changes the
-- job, so that a crash can neither lose nor invent a callback. The id is the webhook-id,
-- the same on every attempt.
CREATE TABLE warble_deliveries (
    id                TEXT PRIMARY KEY,
    tenant            TEXT NOT NULL,
    webhook_id        TEXT,                      -- NULL: the job's callback_url
    url               TEXT NOT NULL,
    event             TEXT NOT NULL,
    job_id            TEXT NOT NULL,
    payload           TEXT NOT NULL,             -- the exact body sent
    status            TEXT NOT NULL,             -- pending | delivered | failed
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms   BIGINT,                    -- Unix ms; NULL once final
    locked_until_ms   BIGINT,                    -- a dispatcher's lease while it sends
    last_status_code  BIGINT,
    last_error        TEXT,
    last_latency_ms   BIGINT,
    created_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ
);
CREATE INDEX warble_deliveries_due ON warble_deliveries (status, next_attempt_ms);
CREATE INDEX warble_deliveries_webhook ON warble_deliveries (webhook_id, id);
CREATE INDEX warble_deliveries_tenant ON warble_deliveries (tenant, id);

-- API keys. The secret is never stored: only its SHA-256 (hex), and a short prefix that lets
-- people tell their keys apart. A key's tenant owns the jobs it submits; several keys may
-- share a tenant (rotation), and admins see every tenant.
CREATE TABLE warble_api_keys (
    id          TEXT PRIMARY KEY,            -- ULID
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,               -- admin | user
    tenant      TEXT NOT NULL,
    prefix      TEXT NOT NULL,               -- the first characters of the secret
    sha256      TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- The tenant a job belongs to (NULL: submitted before keys existed, visible to admins only).
ALTER TABLE warble_jobs ADD COLUMN tenant TEXT;
CREATE INDEX warble_jobs_tenant_id ON warble_jobs (tenant, id);

-- What admins and key holders did that matters later: keys made and revoked, jobs deleted.
-- Append-only; listed by admins, newest first.
CREATE TABLE warble_audit (
    id      TEXT PRIMARY KEY,                -- ULID: sorts by time
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,                   -- the key id, or "cli" / "startup"
    action  TEXT NOT NULL,                   -- key.create | key.revoke | job.delete
    target  TEXT NOT NULL,                   -- the key or job id
    detail  TEXT NOT NULL                    -- a JSON object
);

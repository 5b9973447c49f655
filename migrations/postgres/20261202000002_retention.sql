-- Retention (issue 19): a tenant's own periods, seconds after a job ends (NULL: the server's
-- default, WARBLE_RETAIN_*), and when each job's audio and transcript were deleted by them.
ALTER TABLE warble_tenants ADD COLUMN retain_audio_secs BIGINT;
ALTER TABLE warble_tenants ADD COLUMN retain_transcript_secs BIGINT;
ALTER TABLE warble_jobs ADD COLUMN audio_deleted_at TIMESTAMPTZ;
ALTER TABLE warble_jobs ADD COLUMN transcript_deleted_at TIMESTAMPTZ;
CREATE INDEX warble_jobs_finished ON warble_jobs (finished_at);

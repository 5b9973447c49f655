-- When a client deleted the job's audio and transcript (`DELETE /v1/jobs/{id}`); NULL while
-- they are kept. The record itself stays, so the job's id keeps answering and says so.
ALTER TABLE warble_jobs ADD COLUMN deleted_at TEXT;

-- A worker may hold several jobs at once (`--concurrency`): its heartbeat lists them all, as
-- a JSON array of job ids, where it named only one before.
ALTER TABLE warble_workers ADD COLUMN current_jobs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE warble_workers DROP COLUMN current_job;

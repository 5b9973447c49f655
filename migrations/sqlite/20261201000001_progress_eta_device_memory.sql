-- When the worker running a job expects to finish it, from its pace so far (issue 17); the API
-- shows it while the job runs.
ALTER TABLE warble_jobs ADD COLUMN estimated_completion_at TEXT;
-- Device memory a worker reported in its last heartbeat, bytes: in use and in all (for a CPU
-- worker, its own resident memory and the machine's).
ALTER TABLE warble_workers ADD COLUMN device_memory_used_bytes BIGINT;
ALTER TABLE warble_workers ADD COLUMN device_memory_total_bytes BIGINT;

-- A delivery whose attempt failed and that waits for the next one is `retrying`, no longer
-- `pending` (which now means never attempted): the default schedule keeps such a delivery
-- open for about 28 hours before it is `failed`, and users look for deliveries in trouble
-- by their status. When the last attempt was made is recorded too; it is NULL for attempts
-- made before this migration, which left no trace of their time.
ALTER TABLE warble_deliveries ADD COLUMN last_attempt_at TEXT;
UPDATE warble_deliveries SET status = 'retrying' WHERE status = 'pending' AND attempts > 0;

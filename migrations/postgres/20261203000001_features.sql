-- Speaker labels and PII redaction (issue 19): what a job asks for beyond the words, as JSON
-- (`warble_jobs::features::Features`); NULL asks for nothing.
ALTER TABLE warble_jobs ADD COLUMN features TEXT;

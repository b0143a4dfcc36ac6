-- The hash of the request a run was created with under an Idempotency-Key,
-- so the same key with another request is refused instead of silently
-- answered with the first run.
ALTER TABLE flywheel_runs ADD COLUMN idempotency_hash TEXT

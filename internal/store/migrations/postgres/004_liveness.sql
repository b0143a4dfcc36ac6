-- Each process publishes, with its heartbeat, the stage jobs it holds and
-- when it took that snapshot, so a job River shows running for a live
-- process that does not hold it (a fetch lost in a database stall) is found.
ALTER TABLE workers ADD COLUMN held_jobs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workers ADD COLUMN held_at TIMESTAMPTZ;

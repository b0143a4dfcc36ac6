-- One row that readiness checks rewrite: a write that fails (a full disk)
-- makes the process not ready.
CREATE TABLE flywheel_probe (
    id INTEGER PRIMARY KEY,
    checked_at TEXT NOT NULL
);

CREATE TABLE online_samples (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    promotion_id          TEXT NOT NULL DEFAULT '',
    workload_id           TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    model                 TEXT NOT NULL,
    at                    DATETIME NOT NULL,
    scores                TEXT NOT NULL DEFAULT '{}',
    production_latency_ms REAL NOT NULL DEFAULT 0,
    candidate_latency_ms  REAL NOT NULL DEFAULT 0,
    error                 TEXT NOT NULL DEFAULT ''
);
CREATE INDEX online_samples_window ON online_samples (workload_id, client_id, model, promotion_id, at DESC, id DESC);
CREATE INDEX online_samples_at ON online_samples (at);

CREATE TABLE datasets (
    run_id      TEXT NOT NULL REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    type        TEXT NOT NULL,
    name        TEXT NOT NULL,
    num_records BIGINT NOT NULL DEFAULT 0,
    nmp_uri     TEXT,
    path        TEXT NOT NULL DEFAULT '',
    position    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, name)
);

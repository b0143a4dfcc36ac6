-- A run's manifest (the records of its datasets, its settings, seed and
-- versions) as JSON, and per candidate the digests of its model and
-- adapter, which later stages fill in one row at a time.
CREATE TABLE run_manifests (
    run_id     TEXT PRIMARY KEY REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    manifest   TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE run_manifest_models (
    run_id         TEXT NOT NULL REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    position       BIGINT NOT NULL,
    name           TEXT NOT NULL,
    digest         TEXT NOT NULL DEFAULT '',
    adapter_id     TEXT NOT NULL DEFAULT '',
    adapter_digest TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, position)
);

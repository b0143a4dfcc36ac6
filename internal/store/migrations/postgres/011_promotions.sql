CREATE TABLE promotions (
    id             TEXT PRIMARY KEY,
    workload_id    TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    job_id         TEXT NOT NULL,
    candidate      TEXT NOT NULL,
    variant        TEXT NOT NULL,
    mode           TEXT NOT NULL,
    canary_percent DOUBLE PRECISION NOT NULL DEFAULT 0,
    endpoint       TEXT NOT NULL DEFAULT '',
    served_model   TEXT NOT NULL DEFAULT '',
    deployment_id  TEXT NOT NULL DEFAULT '',
    icl_prompt     TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL,
    reason         TEXT NOT NULL DEFAULT '',
    created_by     TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL,
    ended_at       TIMESTAMPTZ,
    evidence       TEXT
);
CREATE INDEX promotions_workload ON promotions (workload_id, client_id, created_at);
CREATE UNIQUE INDEX promotions_active ON promotions (workload_id, client_id) WHERE status = 'active'

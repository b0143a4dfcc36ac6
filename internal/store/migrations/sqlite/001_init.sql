CREATE TABLE flywheel_runs (
    id              TEXT PRIMARY KEY,
    workload_id     TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      DATETIME NOT NULL,
    finished_at     DATETIME,
    num_records     INTEGER NOT NULL DEFAULT 0,
    datasets        TEXT NOT NULL DEFAULT '[]',
    error           TEXT,
    spec            TEXT NOT NULL DEFAULT '{}',
    workload_type   TEXT NOT NULL DEFAULT '',
    stats           TEXT,
    recommendation  TEXT,
    idempotency_key TEXT UNIQUE,
    updated_at      DATETIME NOT NULL
);
CREATE INDEX flywheel_runs_started ON flywheel_runs (started_at DESC, id DESC);
CREATE INDEX flywheel_runs_workload ON flywheel_runs (workload_id, started_at DESC);
CREATE INDEX flywheel_runs_status ON flywheel_runs (status);

CREATE TABLE nims (
    id                TEXT PRIMARY KEY,
    flywheel_run_id   TEXT NOT NULL REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    model_name        TEXT NOT NULL,
    position          INTEGER NOT NULL,
    status            TEXT NOT NULL,
    deployment_status TEXT NOT NULL,
    started_at        DATETIME,
    finished_at       DATETIME,
    runtime_seconds   REAL NOT NULL DEFAULT 0,
    error             TEXT,
    UNIQUE (flywheel_run_id, model_name)
);

CREATE TABLE evaluations (
    id              TEXT PRIMARY KEY,
    nim_id          TEXT NOT NULL REFERENCES nims (id) ON DELETE CASCADE,
    eval_type       TEXT NOT NULL,
    scores          TEXT NOT NULL DEFAULT '{}',
    started_at      DATETIME NOT NULL,
    finished_at     DATETIME,
    runtime_seconds REAL NOT NULL DEFAULT 0,
    progress        REAL NOT NULL DEFAULT 0,
    nmp_uri         TEXT,
    mlflow_uri      TEXT,
    job_id          TEXT NOT NULL DEFAULT '',
    error           TEXT,
    details         TEXT,
    summary         TEXT,
    UNIQUE (nim_id, eval_type)
);

CREATE TABLE customizations (
    id               TEXT PRIMARY KEY,
    nim_id           TEXT NOT NULL UNIQUE REFERENCES nims (id) ON DELETE CASCADE,
    job_id           TEXT NOT NULL DEFAULT '',
    workload_id      TEXT NOT NULL,
    base_model       TEXT NOT NULL,
    customized_model TEXT,
    started_at       DATETIME NOT NULL,
    finished_at      DATETIME,
    runtime_seconds  REAL NOT NULL DEFAULT 0,
    progress         REAL NOT NULL DEFAULT 0,
    epochs_completed INTEGER NOT NULL DEFAULT 0,
    steps_completed  INTEGER NOT NULL DEFAULT 0,
    nmp_uri          TEXT,
    error            TEXT,
    losses           TEXT,
    progress_at      DATETIME
);

CREATE TABLE llm_judge_runs (
    id                TEXT PRIMARY KEY,
    flywheel_run_id   TEXT NOT NULL UNIQUE REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    model_name        TEXT NOT NULL,
    deployment_type   TEXT NOT NULL,
    deployment_status TEXT NOT NULL,
    error             TEXT
);

CREATE TABLE stages (
    run_id             TEXT NOT NULL REFERENCES flywheel_runs (id) ON DELETE CASCADE,
    candidate          TEXT NOT NULL DEFAULT '',
    name               TEXT NOT NULL,
    position           INTEGER NOT NULL,
    deps               TEXT NOT NULL DEFAULT '[]',
    status             TEXT NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    job_id             INTEGER NOT NULL DEFAULT 0,
    started_at         DATETIME,
    finished_at        DATETIME,
    error              TEXT,
    output             TEXT,
    progress           REAL NOT NULL DEFAULT 0,
    time_limit_seconds REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, candidate, name)
);
CREATE INDEX stages_status ON stages (status);

CREATE TABLE resources (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL,
    nim_id           TEXT NOT NULL DEFAULT '',
    kind             TEXT NOT NULL,
    platform         TEXT NOT NULL,
    remote_id        TEXT NOT NULL,
    key              TEXT NOT NULL,
    state            TEXT NOT NULL,
    data             TEXT,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expires_at DATETIME,
    created_at       DATETIME NOT NULL,
    released_at      DATETIME,
    error            TEXT,
    UNIQUE (kind, key)
);
CREATE INDEX resources_run ON resources (run_id, state);
CREATE INDEX resources_state ON resources (state);

CREATE TABLE eval_items (
    evaluation_id     TEXT NOT NULL REFERENCES evaluations (id) ON DELETE CASCADE,
    idx               INTEGER NOT NULL,
    tool              TEXT NOT NULL DEFAULT '',
    request           TEXT,
    reference         TEXT,
    prediction        TEXT,
    scores            TEXT NOT NULL DEFAULT '{}',
    error_class       TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    latency_ms        REAL NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (evaluation_id, idx)
);

CREATE TABLE log_records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    workload_id TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    ts          DATETIME NOT NULL,
    request     TEXT NOT NULL,
    response    TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);
CREATE INDEX log_records_newest ON log_records (workload_id, client_id, ts DESC, id DESC);

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   DATETIME NOT NULL,
    heartbeat_at DATETIME NOT NULL
);

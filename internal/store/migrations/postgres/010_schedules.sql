-- Schedules start runs of a workload and client by themselves: on a cron
-- expression and/or on data triggers. generation counts the claims of a
-- schedule: a fire moves it on from the value it read in one conditional
-- UPDATE, so that of two processes only one fires.
CREATE TABLE schedules (
    id               TEXT PRIMARY KEY,
    workload_id      TEXT NOT NULL,
    client_id        TEXT NOT NULL,
    cron             TEXT NOT NULL DEFAULT '',
    min_new_records  INTEGER,
    agreement_below  DOUBLE PRECISION,
    agreement_metric TEXT NOT NULL DEFAULT '',
    enabled          INTEGER NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL,
    created_by       TEXT NOT NULL DEFAULT '',
    last_fired_at    TIMESTAMPTZ,
    last_run_id      TEXT,
    next_fire_at     TIMESTAMPTZ,
    generation       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX schedules_workload ON schedules (workload_id, client_id);

CREATE TABLE schedule_events (
    id          BIGSERIAL PRIMARY KEY,
    schedule_id TEXT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    run_id      TEXT
);
CREATE INDEX schedule_events_schedule ON schedule_events (schedule_id, id);

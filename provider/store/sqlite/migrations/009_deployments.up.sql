-- Deployment settings, one row per stack. settings is the JSON document with every secret
-- value taken out; secrets holds them all, sealed together (secretbox, bound to the stack), and
-- secret_digests their keyed digests by path, so the API can show that a secret is set
-- without ever reading it.
CREATE TABLE deployment_settings (
    org            TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    stack          TEXT    NOT NULL,
    settings       TEXT    NOT NULL,
    secrets        BLOB,
    secret_digests TEXT    NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (org, project, stack)
) WITHOUT ROWID;

-- Deployments: the runner's durable queue. version counts per stack from 1.
CREATE TABLE deployments (
    id               TEXT    PRIMARY KEY,
    org              TEXT    NOT NULL,
    project          TEXT    NOT NULL,
    stack            TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    operation        TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    reason           TEXT    NOT NULL DEFAULT '',
    source           TEXT    NOT NULL DEFAULT '',
    request_id       TEXT    NOT NULL DEFAULT '',
    cause            TEXT    NOT NULL DEFAULT '[]',
    auto_remediate   INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    worker           TEXT    NOT NULL DEFAULT '',
    drift_detected   INTEGER NOT NULL DEFAULT 0,
    resource_changes TEXT    NOT NULL DEFAULT '{}',
    log              TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    started_at       INTEGER NOT NULL DEFAULT 0,
    finished_at      INTEGER NOT NULL DEFAULT 0,
    UNIQUE (org, project, stack, version)
);

CREATE INDEX deployments_waiting ON deployments (created_at) WHERE status = 'not-started';
CREATE INDEX deployments_running ON deployments (worker) WHERE status = 'running';

-- Drift schedules: a cron expression per schedule, and when it next fires.
CREATE TABLE drift_schedules (
    id             TEXT    PRIMARY KEY,
    org            TEXT    NOT NULL,
    project        TEXT    NOT NULL,
    stack          TEXT    NOT NULL,
    schedule_cron  TEXT    NOT NULL,
    auto_remediate INTEGER NOT NULL DEFAULT 0,
    next_run_at    INTEGER NOT NULL,
    last_run_at    INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE INDEX drift_schedules_due ON drift_schedules (next_run_at);
CREATE INDEX drift_schedules_stack ON drift_schedules (org, project, stack);

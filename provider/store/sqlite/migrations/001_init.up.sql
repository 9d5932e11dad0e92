-- Initial schema. Timestamps are unix nanoseconds; 0 means "not set".
-- Scope columns hold '' (never NULL) when unused, so the unique index and equality lookups
-- treat an organization hook as (org, '', '', '').

CREATE TABLE hooks (
    id              INTEGER PRIMARY KEY,
    org             TEXT    NOT NULL,
    project         TEXT    NOT NULL DEFAULT '',
    stack           TEXT    NOT NULL DEFAULT '',
    environment     TEXT    NOT NULL DEFAULT '',
    name            TEXT    NOT NULL,
    display_name    TEXT    NOT NULL DEFAULT '',
    payload_url     TEXT    NOT NULL DEFAULT '',
    active          INTEGER NOT NULL DEFAULT 1,
    format          TEXT    NOT NULL DEFAULT 'raw',
    filters         TEXT    NOT NULL DEFAULT '[]', -- JSON array of filter names
    groups          TEXT    NOT NULL DEFAULT '[]', -- JSON array of group names
    secret_box      BLOB,                          -- secretbox-sealed secret, NULL for none
    secret_sha256   TEXT    NOT NULL DEFAULT '',   -- hex sha256 of the secret, '' for none
    disabled_reason TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Serves uniqueness, HookGet, HookList and HookCandidates: an event looks up the
-- organization's own hooks (org, '', '', '') and those of exactly one stack or environment.
CREATE UNIQUE INDEX hooks_scope_name ON hooks (org, project, stack, environment, name);

CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    filter      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    org         TEXT    NOT NULL,
    project     TEXT    NOT NULL DEFAULT '',
    stack       TEXT    NOT NULL DEFAULT '',
    environment TEXT    NOT NULL DEFAULT '',
    payload     BLOB    NOT NULL,
    cause       TEXT    NOT NULL DEFAULT '[]', -- JSON array of "org/project/stack"
    created_at  INTEGER NOT NULL
);

-- Deliveries belong to their hook: deleting the hook deletes them (and their attempts).
CREATE TABLE deliveries (
    id              TEXT    PRIMARY KEY,
    event_id        TEXT    NOT NULL REFERENCES events (id),
    hook_id         INTEGER NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    filter          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    format          TEXT    NOT NULL,
    body            BLOB    NOT NULL,
    endpoint        TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER NOT NULL DEFAULT 0,
    claimed_by      TEXT    NOT NULL DEFAULT '',
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Claiming reads due work in order from two partial indexes, first attempts and retries, and
-- leases from a third; they stay small because finished deliveries leave them. endpoint is in
-- each so the per-endpoint cap is checked without reading the table.
CREATE INDEX deliveries_first ON deliveries (next_attempt_at, endpoint) WHERE state = 'pending' AND attempts = 0;
CREATE INDEX deliveries_retry ON deliveries (next_attempt_at, endpoint, attempts) WHERE state = 'pending' AND attempts > 0;
CREATE INDEX deliveries_running ON deliveries (lease_until, endpoint) WHERE state = 'running';
CREATE INDEX deliveries_hook ON deliveries (hook_id, state);
CREATE INDEX deliveries_event ON deliveries (event_id);

CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: it is the paging cursor
    delivery_id      TEXT    NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    hook_id          INTEGER NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    filter           TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ns      INTEGER NOT NULL,
    request_url      TEXT    NOT NULL DEFAULT '',
    request_headers  TEXT    NOT NULL DEFAULT '{}', -- JSON object of string arrays
    request_body     BLOB,
    response_code    INTEGER NOT NULL DEFAULT 0,
    response_headers TEXT    NOT NULL DEFAULT '{}',
    response_body    BLOB,
    error            TEXT    NOT NULL DEFAULT ''
);

CREATE INDEX attempts_hook ON attempts (hook_id, id);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Deployment requests outlive the hook that made them: they are the record of what was asked.
CREATE TABLE deployment_requests (
    id         TEXT    PRIMARY KEY,
    org        TEXT    NOT NULL,
    project    TEXT    NOT NULL,
    stack      TEXT    NOT NULL,
    hook_id    INTEGER NOT NULL,
    event_id   TEXT    NOT NULL REFERENCES events (id) DEFERRABLE INITIALLY DEFERRED,
    cause      TEXT    NOT NULL DEFAULT '[]',
    status     TEXT    NOT NULL,
    reason     TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE INDEX deployment_requests_target ON deployment_requests (org, project, stack, created_at);

CREATE TABLE idempotency_keys (
    org        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    response   BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (org, key)
) WITHOUT ROWID;

CREATE TABLE tokens (
    id           TEXT    PRIMARY KEY,
    org          TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    hash         TEXT    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX tokens_org ON tokens (org);

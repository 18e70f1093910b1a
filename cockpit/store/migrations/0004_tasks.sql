-- Cockpit schema 4: the task engine. Tasks (what runs, on what, in which state), the
-- batches they were queued in, each attempt's steps, every log line, and the schedules
-- that queue recurring work. Times are Unix seconds (REAL) read from the database's
-- clock, so leases are judged by one clock whichever host a worker runs on.

CREATE TABLE batches (
    id         INTEGER PRIMARY KEY,
    label      TEXT NOT NULL DEFAULT '',
    queued_by  TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL
);

CREATE TABLE schedules (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 63),
    cron       TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    targets    TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(targets)),
    args       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(args)),
    paused     INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    next_run   REAL,
    last_run   REAL,
    last_batch INTEGER REFERENCES batches (id) ON DELETE SET NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    created_at REAL    NOT NULL
);

CREATE TABLE tasks (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL,
    target_kind      TEXT    NOT NULL
        CHECK (target_kind IN ('server', 'platform', 'site', 'control')),
    target_key       TEXT    NOT NULL,
    -- the server the task runs on ('' for work on the control host): per-server limits
    server           TEXT    NOT NULL DEFAULT '',
    args             TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(args)),
    state            TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN
        ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted', 'unknown')),
    priority         INTEGER NOT NULL DEFAULT 0,
    idempotent       INTEGER NOT NULL CHECK (idempotent IN (0, 1)),
    attempt          INTEGER NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts     INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
    batch_id         INTEGER REFERENCES batches (id) ON DELETE SET NULL,
    schedule_id      INTEGER REFERENCES schedules (id) ON DELETE SET NULL,
    retry_of         INTEGER,
    queued_by        TEXT    NOT NULL DEFAULT '',
    worker           TEXT,
    lease_until      REAL,
    not_before       REAL    NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    step             TEXT    NOT NULL DEFAULT '',
    result           TEXT    NOT NULL DEFAULT '',
    created_at       REAL    NOT NULL,
    started_at       REAL,
    finished_at      REAL
);
-- At most one task running (or of unknown outcome) per site, platform or server: the
-- database refuses the second claim, whatever the claimers believed.
CREATE UNIQUE INDEX tasks_one_running_per_target ON tasks (target_kind, target_key)
    WHERE state IN ('running', 'unknown');
CREATE INDEX tasks_queue ON tasks (priority DESC, id) WHERE state = 'queued';
CREATE INDEX tasks_running_server ON tasks (server) WHERE state = 'running';
CREATE INDEX tasks_running_worker ON tasks (worker) WHERE state = 'running';
CREATE INDEX tasks_state ON tasks (state, id);
CREATE INDEX tasks_batch ON tasks (batch_id, state);
CREATE INDEX tasks_target ON tasks (target_kind, target_key, id);
CREATE INDEX tasks_schedule ON tasks (schedule_id) WHERE state = 'queued';

-- Each attempt's steps: what the log says in words, for progress and for recovery.
CREATE TABLE task_steps (
    task_id     INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN
        ('running', 'succeeded', 'failed', 'cancelled', 'unknown', 'rolled_back', 'rollback_failed')),
    detached    INTEGER NOT NULL DEFAULT 0 CHECK (detached IN (0, 1)),
    -- the attempt whose run dir on the target holds this step's record (resumed steps)
    run_attempt INTEGER NOT NULL,
    started_at  REAL    NOT NULL,
    finished_at REAL,
    detail      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, attempt, idx)
) WITHOUT ROWID;

CREATE TABLE task_logs (
    task_id INTEGER NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    at      REAL    NOT NULL,
    stream  TEXT    NOT NULL CHECK (stream IN ('stdout', 'stderr', 'engine')),
    text    TEXT    NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;

-- The store keeps itself bounded: a nightly prune of old tasks and their logs.
INSERT INTO schedules (name, cron, kind, targets, args, created_by, created_at)
VALUES ('store-retention', '17 3 * * *', 'store.prune', '["store"]', '{}', 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);

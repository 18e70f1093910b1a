-- Cockpit schema 6: statistics and on-call status.
--
-- The latest collection of each server and site (what `cockpit status` reads), time
-- series at two resolutions (per minute, rolled up per hour by the scheduled
-- `stats.rollup` task, each pruned past its retention), per-site monthly traffic for
-- bandwidth quotas, per-site quotas, and the default schedules of the collectors.
-- Times are Unix seconds; a series' `t` is the start of its minute or hour (UTC).

-- The last collection of each server: reached or not, why not, and what it read
-- (load, memory, disks, services, pending reboot, clock offset) as JSON.
CREATE TABLE stat_server_now (
    server_id    INTEGER PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    collected_at REAL    NOT NULL,
    reachable    INTEGER NOT NULL CHECK (reachable IN (0, 1)),
    error        TEXT    NOT NULL DEFAULT '',
    -- when the server was last reached (it keeps its value while unreachable)
    reached_at   REAL,
    data         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(data))
);

-- The last probe and checks of each site. NULL: never measured.
CREATE TABLE stat_site_now (
    site_id        INTEGER PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    probed_at      REAL,
    http_status    INTEGER,
    latency_ms     REAL,
    probe_error    TEXT NOT NULL DEFAULT '',
    -- since when the probe has been failing (NULL while it passes)
    failing_since  REAL,
    tls_checked_at REAL,
    tls_expires_at REAL,
    tls_error      TEXT NOT NULL DEFAULT '',
    disk_at        REAL,
    disk_bytes     INTEGER,
    db_at          REAL,
    db_bytes       INTEGER
);

-- Server gauges per minute (`_m`) and per hour (`_h`: averages and maxima of the minutes).
CREATE TABLE stat_server_m (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    t         INTEGER NOT NULL,
    load1     REAL,
    mem_pct   REAL,
    swap_pct  REAL,
    disk_pct  REAL,  -- the fullest mount
    PRIMARY KEY (server_id, t)
) WITHOUT ROWID;
CREATE INDEX stat_server_m_t ON stat_server_m (t);

CREATE TABLE stat_server_h (
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    t         INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    load1     REAL,
    load1_max REAL,
    mem_pct   REAL,
    swap_pct  REAL,
    disk_pct  REAL,
    PRIMARY KEY (server_id, t)
) WITHOUT ROWID;
CREATE INDEX stat_server_h_t ON stat_server_h (t);

-- Disk and inode use per mount.
CREATE TABLE stat_disk_m (
    server_id  INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    mount      TEXT    NOT NULL,
    t          INTEGER NOT NULL,
    size_mb    REAL    NOT NULL,
    used_mb    REAL    NOT NULL,
    inodes_pct REAL,
    PRIMARY KEY (server_id, mount, t)
) WITHOUT ROWID;
CREATE INDEX stat_disk_m_t ON stat_disk_m (t);

CREATE TABLE stat_disk_h (
    server_id  INTEGER NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    mount      TEXT    NOT NULL,
    t          INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    size_mb    REAL    NOT NULL,
    used_mb    REAL    NOT NULL,
    inodes_pct REAL,
    PRIMARY KEY (server_id, mount, t)
) WITHOUT ROWID;
CREATE INDEX stat_disk_h_t ON stat_disk_h (t);

-- Per site: traffic from the access logs (sums; percentiles of the minute's response
-- times), the probe's latency, and the files' and database's size when measured.
CREATE TABLE stat_site_m (
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    t          INTEGER NOT NULL,
    requests   INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    s2xx       INTEGER NOT NULL DEFAULT 0,
    s3xx       INTEGER NOT NULL DEFAULT 0,
    s4xx       INTEGER NOT NULL DEFAULT 0,
    s5xx       INTEGER NOT NULL DEFAULT 0,
    p50_ms     REAL,
    p95_ms     REAL,
    probe_ms   REAL,
    probe_fail INTEGER,
    disk_bytes INTEGER,
    db_bytes   INTEGER,
    PRIMARY KEY (site_id, t)
) WITHOUT ROWID;
CREATE INDEX stat_site_m_t ON stat_site_m (t);

-- The hour: sums of the traffic; p50 weighted by requests, p95 the worst minute's;
-- the probe's mean latency and failed probes; the largest sizes seen.
CREATE TABLE stat_site_h (
    site_id    INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    t          INTEGER NOT NULL,
    requests   INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0,
    s2xx       INTEGER NOT NULL DEFAULT 0,
    s3xx       INTEGER NOT NULL DEFAULT 0,
    s4xx       INTEGER NOT NULL DEFAULT 0,
    s5xx       INTEGER NOT NULL DEFAULT 0,
    p50_ms     REAL,
    p95_ms     REAL,
    probe_ms   REAL,
    probe_fail INTEGER,
    disk_bytes INTEGER,
    db_bytes   INTEGER,
    PRIMARY KEY (site_id, t)
) WITHOUT ROWID;
CREATE INDEX stat_site_h_t ON stat_site_h (t);

-- Traffic per site and calendar month (UTC, 'YYYY-MM'): what bandwidth quotas count.
CREATE TABLE stat_site_month (
    site_id  INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    month    TEXT    NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    bytes    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (site_id, month)
) WITHOUT ROWID;

-- Hours whose minutes changed since their last rollup ('server', 'disk', 'site').
CREATE TABLE stat_dirty (
    series TEXT    NOT NULL CHECK (series IN ('server', 'disk', 'site')),
    id     INTEGER NOT NULL,
    hour   INTEGER NOT NULL,
    PRIMARY KEY (series, id, hour)
) WITHOUT ROWID;

-- Per-site limits (a client's limits are in its inventory entry). NULL: no limit.
CREATE TABLE site_quotas (
    site_id            INTEGER PRIMARY KEY REFERENCES sites (id) ON DELETE CASCADE,
    disk_mb            INTEGER CHECK (disk_mb >= 0),
    bandwidth_mb_month INTEGER CHECK (bandwidth_mb_month >= 0),
    warn_percent       INTEGER CHECK (warn_percent BETWEEN 1 AND 1000),
    crit_percent       INTEGER CHECK (crit_percent BETWEEN 1 AND 1000)
);

-- The collectors' default schedules (a name already taken is left alone). They first run
-- ten minutes after the store is created or upgraded: time to verify and trust servers
-- before they are polled every minute.
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('watch-collect', '* * * * *', 'stats.collect', '["*"]', '{}',
        (julianday('now') - 2440587.5) * 86400.0 + 600, 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('watch-sites', '7 * * * *', 'stats.sites', '["*"]', '{"deep":true}',
        (julianday('now') - 2440587.5) * 86400.0 + 600, 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('watch-rollup', '*/5 * * * *', 'stats.rollup', '["store"]', '{}',
        (julianday('now') - 2440587.5) * 86400.0 + 600, 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);

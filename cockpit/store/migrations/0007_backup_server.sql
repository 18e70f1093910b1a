-- Cockpit schema 7: where each backup is, why it was made, and their retention.
--
-- A backup stays on the server it was made on when its site moves to another server:
-- the row says which server that is (a server that holds backups cannot leave the
-- inventory before they are deleted). `reason` tells ordinary backups, which the
-- `site.backup-prune` policy thins out, from the safety backups `site.restore` takes
-- and the backup `site.delete` takes, which have retention settings of their own.
--
-- SQLite cannot add a NOT NULL reference to a table: the table is made again.

ALTER TABLE backups RENAME TO backups_v6;

CREATE TABLE backups (
    id        INTEGER PRIMARY KEY,
    site_id   INTEGER NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    server_id INTEGER NOT NULL REFERENCES servers (id) ON DELETE RESTRICT,
    location  TEXT    NOT NULL,
    size      INTEGER NOT NULL CHECK (size >= 0),
    sha256    TEXT    NOT NULL CHECK (length(sha256) = 64),
    created   TEXT    NOT NULL,
    backend   TEXT    NOT NULL DEFAULT 'tar',
    reason    TEXT    NOT NULL DEFAULT 'backup' CHECK (reason IN ('backup', 'safety', 'delete'))
);

-- Rows made before: on the site's current server (where every backup was made and
-- read until now). The tasks named their tar archives after why they made them
-- (`<domain>-<time>-t<task>-safety.tar`, `…-delete.tar`); other backends' rows count
-- as ordinary backups.
INSERT INTO backups (id, site_id, server_id, location, size, sha256, created, backend, reason)
SELECT b.id, b.site_id, p.server_id, b.location, b.size, b.sha256, b.created, b.backend,
       CASE
           WHEN b.backend = 'tar' AND b.location LIKE '%-safety.tar' THEN 'safety'
           WHEN b.backend = 'tar' AND b.location LIKE '%-delete.tar' THEN 'delete'
           ELSE 'backup'
       END
FROM backups_v6 b
JOIN sites s ON s.id = b.site_id
JOIN platforms p ON p.id = s.platform_id;

DROP TABLE backups_v6;

CREATE INDEX backups_site ON backups (site_id, created);
CREATE INDEX backups_server ON backups (server_id);

-- The retention policy's default schedule (a name already taken is left alone): every
-- site's backups, daily at 03:40 local time. With no next run set, the first run is the
-- first 03:40 after a worker sees it, never right after an upgrade.
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('backup-prune', '40 3 * * *', 'site.backup-prune', '["*"]', '{}', NULL, 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);

-- Cockpit schema 9: certificates renewed on a schedule; the on-call check's candidates
-- found from indexes.
--
-- The on-call evaluation asks for the few sites a check could flag: those whose probe is
-- failing and those whose certificate is unreadable or expires soon. Without an index
-- each is a scan of stat_site_now (one row per site); these partial indexes hold only
-- the rows those questions can match.

CREATE INDEX stat_site_now_failing ON stat_site_now (site_id)
    WHERE probed_at IS NOT NULL AND failing_since IS NOT NULL;
CREATE INDEX stat_site_now_tls ON stat_site_now (tls_expires_at)
    WHERE tls_checked_at IS NOT NULL;

-- The default renewal schedule (a name already taken is left alone): every site, daily at
-- 04:17 local time; a site without HTTPS ends at once, a valid certificate is left alone.
-- With no next run set, the first run is the first 04:17 after a worker sees it.
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('cert-renew', '17 4 * * *', 'site.cert-renew', '["*"]', '{}', NULL, 'cockpit',
        (julianday('now') - 2440587.5) * 86400.0);

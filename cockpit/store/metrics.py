"""Queries on statistics: the latest collection of servers and sites, time series, quotas.

Writes come from the collectors (:mod:`cockpit.tasks.stats`), reads from the on-call
status (:mod:`cockpit.status`) and the dashboard (through :mod:`cockpit.core`).

Series are kept at two resolutions. A collector writes per-minute rows (``stat_*_m``)
and marks their hours dirty; the scheduled rollup (:func:`rollup`) recomputes the
dirty hours (``stat_*_h``) from their minutes, then :func:`prune` drops minutes and
hours past their retention, so the store stays bounded whatever the fleet does.
Traffic also adds up per site and calendar month as it arrives (``stat_site_month``):
bandwidth quotas read one row per site.

Times are Unix seconds; a minute's or hour's ``t`` is its start, UTC.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiosqlite

from cockpit.store.rows import dumps

MINUTE: Final = 60
HOUR: Final = 3600

#: Series a dashboard may ask for: scope -> metric -> (minute SQL, hour SQL) expressions.
#: Client and platform series add up their sites' (gauges: mean over the sites).
SERVER_METRICS: Final[Mapping[str, tuple[str, str]]] = {
    "load1": ("load1", "load1"),
    "load1_max": ("load1", "load1_max"),
    "mem_pct": ("mem_pct", "mem_pct"),
    "swap_pct": ("swap_pct", "swap_pct"),
    "disk_pct": ("disk_pct", "disk_pct"),
}
SITE_METRICS: Final[Mapping[str, str]] = {
    "requests": "requests",
    "bytes": "bytes",
    "s2xx": "s2xx",
    "s3xx": "s3xx",
    "s4xx": "s4xx",
    "s5xx": "s5xx",
    "p50_ms": "p50_ms",
    "p95_ms": "p95_ms",
    "probe_ms": "probe_ms",
    "probe_fail": "probe_fail",
    "disk_bytes": "disk_bytes",
    "db_bytes": "db_bytes",
}
#: Site metrics that add up over sites and over time (the others are gauges).
ADDITIVE: Final = frozenset({"requests", "bytes", "s2xx", "s3xx", "s4xx", "s5xx", "probe_fail"})


def minute_of(at: float) -> int:
    return int(at) // MINUTE * MINUTE


def hour_of(at: float) -> int:
    return int(at) // HOUR * HOUR


def month_of(at: float) -> str:
    return datetime.fromtimestamp(int(at), UTC).strftime("%Y-%m")


# ---------------------------------------------------------------------------
# What collectors write
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrafficSample:
    """What one site served in one minute (from its access log)."""

    domain: str
    minute: int
    requests: int
    bytes: int
    s2xx: int = 0
    s3xx: int = 0
    s4xx: int = 0
    s5xx: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SiteProbe:
    """One site's checks from one collection. ``None``: not measured this time."""

    domain: str
    probed: bool = False
    http_status: int | None = None
    latency_ms: float | None = None
    error: str = ""
    tls_checked: bool = False
    tls_expires_at: float | None = None
    tls_error: str = ""
    disk_bytes: int | None = None
    db_bytes: int | None = None

    @property
    def failed(self) -> bool:
        return self.probed and (self.http_status is None or self.http_status >= 500)


async def _server_id(conn: aiosqlite.Connection, name: str) -> int | None:
    async with conn.execute("SELECT id FROM servers WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else None


async def site_ids(conn: aiosqlite.Connection, domains: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(domains))
    out: dict[str, int] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT domain, id FROM sites WHERE domain IN ({marks})"
        async with conn.execute(sql, chunk) as cursor:
            async for domain, id_ in cursor:
                out[str(domain)] = int(id_)
    return out


async def _dirty(conn: aiosqlite.Connection, series: str, rows: Iterable[tuple[int, int]]) -> None:
    await conn.executemany(
        "INSERT OR IGNORE INTO stat_dirty (series, id, hour) VALUES (?, ?, ?)",
        [(series, id_, hour) for id_, hour in set(rows)],
    )


async def record_server(
    conn: aiosqlite.Connection,
    name: str,
    *,
    at: float,
    reachable: bool,
    error: str = "",
    data: Mapping[str, Any] | None = None,
) -> bool:
    """Keep one collection of a server; False when the server is no longer in the store.

    An unreachable server keeps the data of its last good collection (its disks did not
    vanish) and the time it was last reached."""
    server_id = await _server_id(conn, name)
    if server_id is None:
        return False
    if reachable:
        await conn.execute(
            "INSERT INTO stat_server_now (server_id, collected_at, reachable, error, reached_at,"
            " data) VALUES (?, ?, 1, ?, ?, ?) ON CONFLICT (server_id) DO UPDATE SET"
            " collected_at = excluded.collected_at, reachable = 1, error = excluded.error,"
            " reached_at = excluded.reached_at, data = excluded.data",
            (server_id, at, error, at, dumps(dict(data or {}))),
        )
    else:
        await conn.execute(
            "INSERT INTO stat_server_now (server_id, collected_at, reachable, error) "
            "VALUES (?, ?, 0, ?) ON CONFLICT (server_id) DO UPDATE SET"
            " collected_at = excluded.collected_at, reachable = 0, error = excluded.error",
            (server_id, at, error),
        )
        return True
    data = data or {}
    t = minute_of(at)
    disks = [d for d in data.get("disks", ()) if d.get("size_mb")]
    fullest = max((_pct(d["used_mb"], d["size_mb"]) for d in disks), default=None)
    mem_total = data.get("mem_total_mb") or 0
    swap_total = data.get("swap_total_mb") or 0
    mem_pct = (
        _pct(mem_total - data.get("mem_available_mb", mem_total), mem_total) if mem_total else None
    )
    swap_pct = (
        _pct(swap_total - data.get("swap_free_mb", swap_total), swap_total) if swap_total else None
    )
    await conn.execute(
        "INSERT OR REPLACE INTO stat_server_m (server_id, t, load1, mem_pct, swap_pct, disk_pct)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (server_id, t, data.get("load1"), mem_pct, swap_pct, fullest),
    )
    await conn.executemany(
        "INSERT OR REPLACE INTO stat_disk_m (server_id, mount, t, size_mb, used_mb, inodes_pct)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (server_id, d["mount"], t, d["size_mb"], d["used_mb"], d.get("inodes_pct"))
            for d in disks
        ],
    )
    await _dirty(conn, "server", [(server_id, hour_of(at))])
    if disks:
        await _dirty(conn, "disk", [(server_id, hour_of(at))])
    return True


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 2) if whole else 0.0


async def record_site_probes(
    conn: aiosqlite.Connection, probes: Sequence[SiteProbe], *, at: float
) -> int:
    """Keep the checks of sites (only what each probe measured); how many sites matched."""
    ids = await site_ids(conn, (p.domain for p in probes))
    now_rows = []
    minute_rows = []
    t = minute_of(at)
    for p in probes:
        site_id = ids.get(p.domain)
        if site_id is None:
            continue
        now_rows.append(
            (
                site_id,
                at if p.probed else None,
                p.http_status,
                p.latency_ms,
                p.error,
                int(p.probed),
                int(p.failed),
                at if p.tls_checked else None,
                p.tls_expires_at,
                p.tls_error,
                int(p.tls_checked),
                at if p.disk_bytes is not None else None,
                p.disk_bytes,
                at if p.db_bytes is not None else None,
                p.db_bytes,
            )
        )
        if p.probed or p.disk_bytes is not None or p.db_bytes is not None:
            minute_rows.append(
                (
                    site_id,
                    t,
                    p.latency_ms if p.probed and not p.failed else None,
                    int(p.failed) if p.probed else None,
                    p.disk_bytes,
                    p.db_bytes,
                )
            )
    await conn.executemany(
        """
        INSERT INTO stat_site_now (site_id, probed_at, http_status, latency_ms, probe_error,
            failing_since, tls_checked_at, tls_expires_at, tls_error, disk_at, disk_bytes,
            db_at, db_bytes)
        SELECT ?1, ?2, ?3, ?4, ?5, CASE WHEN ?7 THEN ?2 END, ?8, ?9, ?10, ?12, ?13, ?14, ?15
         WHERE 1
        ON CONFLICT (site_id) DO UPDATE SET
            probed_at = CASE WHEN ?6 THEN ?2 ELSE probed_at END,
            http_status = CASE WHEN ?6 THEN ?3 ELSE http_status END,
            latency_ms = CASE WHEN ?6 THEN ?4 ELSE latency_ms END,
            probe_error = CASE WHEN ?6 THEN ?5 ELSE probe_error END,
            failing_since = CASE WHEN NOT ?6 THEN failing_since
                                 WHEN ?7 THEN coalesce(failing_since, ?2) END,
            tls_checked_at = CASE WHEN ?11 THEN ?8 ELSE tls_checked_at END,
            tls_expires_at = CASE WHEN ?11 THEN ?9 ELSE tls_expires_at END,
            tls_error = CASE WHEN ?11 THEN ?10 ELSE tls_error END,
            disk_at = coalesce(?12, disk_at),
            disk_bytes = coalesce(?13, disk_bytes),
            db_at = coalesce(?14, db_at),
            db_bytes = coalesce(?15, db_bytes)
        """,
        now_rows,
    )
    await conn.executemany(
        """
        INSERT INTO stat_site_m (site_id, t, probe_ms, probe_fail, disk_bytes, db_bytes)
        VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (site_id, t) DO UPDATE SET
            probe_ms = coalesce(excluded.probe_ms, probe_ms),
            probe_fail = coalesce(excluded.probe_fail, probe_fail),
            disk_bytes = coalesce(excluded.disk_bytes, disk_bytes),
            db_bytes = coalesce(excluded.db_bytes, db_bytes)
        """,
        minute_rows,
    )
    await _dirty(conn, "site", [(row[0], hour_of(at)) for row in minute_rows])
    return len(now_rows)


async def record_traffic(conn: aiosqlite.Connection, samples: Sequence[TrafficSample]) -> int:
    """Add access-log minutes to their sites (a minute delivered in two parts adds up);
    how many samples matched a site."""
    ids = await site_ids(conn, (s.domain for s in samples))
    rows = []
    months: dict[tuple[int, str], list[int]] = {}
    for s in samples:
        site_id = ids.get(s.domain)
        if site_id is None:
            continue
        rows.append(
            (
                site_id,
                s.minute,
                s.requests,
                s.bytes,
                s.s2xx,
                s.s3xx,
                s.s4xx,
                s.s5xx,
                s.p50_ms,
                s.p95_ms,
            )
        )
        total = months.setdefault((site_id, month_of(s.minute)), [0, 0])
        total[0] += s.requests
        total[1] += s.bytes
    # p50 of two parts of a minute: weighted by requests; p95: the worse part's.
    await conn.executemany(
        """
        INSERT INTO stat_site_m (site_id, t, requests, bytes, s2xx, s3xx, s4xx, s5xx,
            p50_ms, p95_ms)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (site_id, t) DO UPDATE SET
            p50_ms = CASE
                WHEN excluded.p50_ms IS NULL THEN p50_ms
                WHEN p50_ms IS NULL OR requests = 0 THEN excluded.p50_ms
                ELSE (p50_ms * requests + excluded.p50_ms * excluded.requests)
                     / (requests + excluded.requests) END,
            p95_ms = max(coalesce(p95_ms, excluded.p95_ms), coalesce(excluded.p95_ms, p95_ms)),
            requests = requests + excluded.requests,
            bytes = bytes + excluded.bytes,
            s2xx = s2xx + excluded.s2xx,
            s3xx = s3xx + excluded.s3xx,
            s4xx = s4xx + excluded.s4xx,
            s5xx = s5xx + excluded.s5xx
        """,
        rows,
    )
    await conn.executemany(
        "INSERT INTO stat_site_month (site_id, month, requests, bytes) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (site_id, month) DO UPDATE SET requests = requests + excluded.requests,"
        " bytes = bytes + excluded.bytes",
        [(site_id, month, v[0], v[1]) for (site_id, month), v in months.items()],
    )
    await _dirty(conn, "site", [(r[0], hour_of(r[1])) for r in rows])
    return len(rows)


# ---------------------------------------------------------------------------
# Rollup and retention
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollupResult:
    hours: int  # dirty (series, id, hour) recomputed
    minutes_pruned: int
    hours_pruned: int
    months_pruned: int
    tasks_pruned: int


_ROLLUP_SERVER: Final = """
INSERT OR REPLACE INTO stat_server_h (server_id, t, n, load1, load1_max, mem_pct, swap_pct,
    disk_pct)
SELECT d.id, d.hour, count(*), avg(m.load1), max(m.load1), avg(m.mem_pct), avg(m.swap_pct),
       max(m.disk_pct)
  FROM stat_dirty d
  JOIN stat_server_m m ON m.server_id = d.id AND m.t >= d.hour AND m.t < d.hour + 3600
 WHERE d.series = 'server'
 GROUP BY d.id, d.hour
"""

_ROLLUP_DISK: Final = """
INSERT OR REPLACE INTO stat_disk_h (server_id, mount, t, n, size_mb, used_mb, inodes_pct)
SELECT d.id, m.mount, d.hour, count(*), max(m.size_mb), avg(m.used_mb), max(m.inodes_pct)
  FROM stat_dirty d
  JOIN stat_disk_m m ON m.server_id = d.id AND m.t >= d.hour AND m.t < d.hour + 3600
 WHERE d.series = 'disk'
 GROUP BY d.id, m.mount, d.hour
"""

_ROLLUP_SITE: Final = """
INSERT OR REPLACE INTO stat_site_h (site_id, t, requests, bytes, s2xx, s3xx, s4xx, s5xx,
    p50_ms, p95_ms, probe_ms, probe_fail, disk_bytes, db_bytes)
SELECT d.id, d.hour, sum(m.requests), sum(m.bytes), sum(m.s2xx), sum(m.s3xx), sum(m.s4xx),
       sum(m.s5xx),
       sum(m.p50_ms * m.requests) / nullif(sum(CASE WHEN m.p50_ms IS NOT NULL
                                                    THEN m.requests END), 0),
       max(m.p95_ms), avg(m.probe_ms), sum(m.probe_fail), max(m.disk_bytes), max(m.db_bytes)
  FROM stat_dirty d
  JOIN stat_site_m m ON m.site_id = d.id AND m.t >= d.hour AND m.t < d.hour + 3600
 WHERE d.series = 'site'
 GROUP BY d.id, d.hour
"""


async def rollup(conn: aiosqlite.Connection) -> int:
    """Recompute every dirty hour from its minutes (idempotent); how many hours."""
    async with conn.execute("SELECT count(*) FROM stat_dirty") as cursor:
        row = await cursor.fetchone()
    dirty = int(row[0]) if row else 0
    if dirty:
        await conn.execute(_ROLLUP_SERVER)
        await conn.execute(_ROLLUP_DISK)
        await conn.execute(_ROLLUP_SITE)
        await conn.execute("DELETE FROM stat_dirty")
    return dirty


async def prune(
    conn: aiosqlite.Connection,
    *,
    now: float,
    minute_hours: int,
    hour_days: int,
    task_hours: int | None = 1,
) -> RollupResult:
    """Drop minutes older than ``minute_hours`` and hours older than ``hour_days`` (months
    wholly older too), once their hours are rolled up; and the succeeded ``stats.*``
    tasks older than ``task_hours`` (their outcome is the statistics themselves)."""
    minute_cut = int(now) - minute_hours * HOUR
    hour_cut = int(now) - hour_days * 86400
    minutes = hours = 0
    for table, series in (
        ("stat_server_m", "server"),
        ("stat_disk_m", "disk"),
        ("stat_site_m", "site"),
    ):
        id_col = "site_id" if series == "site" else "server_id"
        cursor = await conn.execute(
            f"DELETE FROM {table} WHERE t < ? AND NOT EXISTS (SELECT 1 FROM stat_dirty d"
            f" WHERE d.series = '{series}' AND d.id = {table}.{id_col}"
            f" AND d.hour = {table}.t / 3600 * 3600)",
            (minute_cut,),
        )
        minutes += cursor.rowcount
    for table in ("stat_server_h", "stat_disk_h", "stat_site_h"):
        cursor = await conn.execute(f"DELETE FROM {table} WHERE t < ?", (hour_cut,))
        hours += cursor.rowcount
    cursor = await conn.execute(
        "DELETE FROM stat_site_month WHERE month < ?", (month_of(hour_cut),)
    )
    months = cursor.rowcount
    tasks = 0
    if task_hours is not None:
        cursor = await conn.execute(
            "DELETE FROM tasks WHERE kind LIKE 'stats.%' AND state = 'succeeded'"
            " AND finished_at < ?",
            (now - task_hours * HOUR,),
        )
        tasks = cursor.rowcount
    return RollupResult(0, minutes, hours, months, tasks)


# ---------------------------------------------------------------------------
# Quotas of sites
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteQuota:
    domain: str
    disk_mb: int | None = None
    bandwidth_mb_month: int | None = None
    warn_percent: int | None = None
    crit_percent: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "site": self.domain,
            "disk_mb": self.disk_mb,
            "bandwidth_mb_month": self.bandwidth_mb_month,
            "warn_percent": self.warn_percent,
            "crit_percent": self.crit_percent,
        }


async def set_site_quota(conn: aiosqlite.Connection, quota: SiteQuota) -> bool:
    """Set (or, all limits None, remove) a site's quota; False for no such site."""
    ids = await site_ids(conn, [quota.domain])
    site_id = ids.get(quota.domain)
    if site_id is None:
        return False
    if quota.disk_mb is None and quota.bandwidth_mb_month is None:
        await conn.execute("DELETE FROM site_quotas WHERE site_id = ?", (site_id,))
        return True
    await conn.execute(
        "INSERT OR REPLACE INTO site_quotas (site_id, disk_mb, bandwidth_mb_month, warn_percent,"
        " crit_percent) VALUES (?, ?, ?, ?, ?)",
        (site_id, quota.disk_mb, quota.bandwidth_mb_month, quota.warn_percent, quota.crit_percent),
    )
    return True


async def site_quotas(conn: aiosqlite.Connection) -> list[SiteQuota]:
    sql = (
        "SELECT s.domain, q.disk_mb, q.bandwidth_mb_month, q.warn_percent, q.crit_percent"
        " FROM site_quotas q JOIN sites s ON s.id = q.site_id ORDER BY s.domain"
    )
    async with conn.execute(sql) as cursor:
        return [SiteQuota(*row) async for row in cursor]


# ---------------------------------------------------------------------------
# What the status reads: everything in a few queries
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerNow:
    name: str
    environment: str
    services: tuple[tuple[str, str], ...]  # (kind, type) from the inventory
    collected_at: float | None
    reachable: bool | None
    error: str
    reached_at: float | None
    data: Mapping[str, Any]


async def servers_now(conn: aiosqlite.Connection) -> list[ServerNow]:
    services: dict[int, list[tuple[str, str]]] = {}
    async with conn.execute("SELECT server_id, kind, type FROM services ORDER BY 1, 2, 3") as cur:
        async for server_id, kind, type_ in cur:
            services.setdefault(int(server_id), []).append((str(kind), str(type_)))
    sql = (
        "SELECT s.id, s.name, s.environment, n.collected_at, n.reachable, n.error, n.reached_at,"
        " n.data FROM servers s LEFT JOIN stat_server_now n ON n.server_id = s.id ORDER BY s.name"
    )
    out = []
    async with conn.execute(sql) as cursor:
        async for id_, name, env, collected, reachable, error, reached, data in cursor:
            out.append(
                ServerNow(
                    name=str(name),
                    environment=str(env),
                    services=tuple(services.get(int(id_), ())),
                    collected_at=collected,
                    reachable=None if reachable is None else bool(reachable),
                    error=str(error or ""),
                    reached_at=reached,
                    data=json.loads(data) if data else {},
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class SiteNow:
    id: int
    domain: str
    status: str
    https: str
    client: str | None
    platform: str
    server: str
    probed_at: float | None
    http_status: int | None
    latency_ms: float | None
    probe_error: str
    failing_since: float | None
    tls_checked_at: float | None
    tls_expires_at: float | None
    tls_error: str
    disk_bytes: int | None
    db_bytes: int | None


async def sites_now(conn: aiosqlite.Connection, *, domain: str | None = None) -> list[SiteNow]:
    sql = (
        "SELECT st.id, st.domain, st.status, st.https, c.name, p.name, sv.name, n.probed_at,"
        " n.http_status, n.latency_ms, coalesce(n.probe_error, ''), n.failing_since,"
        " n.tls_checked_at, n.tls_expires_at, coalesce(n.tls_error, ''), n.disk_bytes,"
        " n.db_bytes"
        " FROM sites st JOIN platforms p ON p.id = st.platform_id"
        " JOIN servers sv ON sv.id = p.server_id LEFT JOIN clients c ON c.id = st.client_id"
        " LEFT JOIN stat_site_now n ON n.site_id = st.id"
    )
    args: tuple[object, ...] = ()
    if domain is not None:
        sql += " WHERE st.domain = ?"
        args = (domain,)
    async with conn.execute(sql + " ORDER BY st.domain", args) as cursor:
        return [SiteNow(*row) for row in await cursor.fetchall()]


@dataclass(frozen=True, slots=True)
class DiskTrend:
    """A linear fit of a mount's use over its recent hours: ``slope`` MB per second."""

    server: str
    mount: str
    points: int
    span_s: float
    size_mb: float
    used_mb: float  # the fit's value now
    slope: float | None

    def full_in(self) -> float | None:
        """Seconds until the mount is full at the fitted rate (None: not filling)."""
        if self.slope is None or self.slope <= 0:
            return None
        return max(0.0, (self.size_mb - self.used_mb) / self.slope)


async def disk_trends(
    conn: aiosqlite.Connection, *, now: float, window_s: float, min_span_s: float
) -> list[DiskTrend]:
    """Least-squares fits of used MB against time over the hours of the last ``window_s``
    (sums computed in SQL, times relative to ``now``); fits over less than ``min_span_s``
    have no slope."""
    sql = """
    SELECT s.name, h.mount, count(*), max(h.t) - min(h.t), max(h.size_mb),
           sum(h.t - :now), sum(h.used_mb), sum((h.t - :now) * (h.t - :now)),
           sum((h.t - :now) * h.used_mb)
      FROM stat_disk_h h JOIN servers s ON s.id = h.server_id
     WHERE h.t >= :start
     GROUP BY h.server_id, h.mount
    """
    out = []
    async with conn.execute(sql, {"now": int(now), "start": int(now - window_s)}) as cursor:
        async for name, mount, n, span, size, sx, sy, sxx, sxy in cursor:
            slope = None
            used = sy / n
            denominator = n * sxx - sx * sx
            if n >= 3 and span >= min_span_s and denominator > 0:
                slope = (n * sxy - sx * sy) / denominator
                intercept = (sy - slope * sx) / n
                used = intercept  # the fitted value at x = 0, i.e. now
            out.append(DiskTrend(str(name), str(mount), int(n), float(span), size, used, slope))
    return out


async def month_traffic(conn: aiosqlite.Connection, month: str) -> dict[int, tuple[int, int]]:
    """``{site id: (requests, bytes)}`` of a calendar month."""
    sql = "SELECT site_id, requests, bytes FROM stat_site_month WHERE month = ?"
    async with conn.execute(sql, (month,)) as cursor:
        return {int(s): (int(r), int(b)) async for s, r, b in cursor}


async def client_quotas(conn: aiosqlite.Connection) -> dict[str, dict[str, int]]:
    async with conn.execute("SELECT name, quotas FROM clients") as cursor:
        return {str(name): json.loads(q or "{}") async for name, q in cursor}


@dataclass(frozen=True, slots=True)
class FailedTask:
    id: int
    kind: str
    target: str
    state: str
    result: str
    finished_at: float


async def failed_tasks(conn: aiosqlite.Connection, *, since: float) -> list[FailedTask]:
    """Tasks that ended failed, interrupted or unknown since ``since`` and that no later
    task of the same kind on the same target has made good; the collectors' own tasks
    are left out (what they measure is judged on its own)."""
    sql = """
    SELECT t.id, t.kind, t.target_kind || ':' || t.target_key, t.state, t.result,
           coalesce(t.finished_at, t.created_at)
      FROM tasks t
     WHERE t.state IN ('failed', 'interrupted', 'unknown')
       AND coalesce(t.finished_at, t.created_at) >= ?
       AND t.kind NOT LIKE 'stats.%'
       AND NOT EXISTS (SELECT 1 FROM tasks l
                        WHERE l.target_kind = t.target_kind AND l.target_key = t.target_key
                          AND l.id > t.id AND l.kind = t.kind AND l.state = 'succeeded')
     ORDER BY t.id
    """
    async with conn.execute(sql, (since,)) as cursor:
        return [
            FailedTask(int(a), str(b), str(c), str(d), str(e), float(f))
            async for a, b, c, d, e, f in cursor
        ]


# ---------------------------------------------------------------------------
# What a dashboard reads
# ---------------------------------------------------------------------------


async def server_series(
    conn: aiosqlite.Connection, name: str, metric: str, *, start: int, end: int, hourly: bool
) -> list[tuple[int, float | None]]:
    minute_expr, hour_expr = SERVER_METRICS[metric]
    table, expr = ("stat_server_h", hour_expr) if hourly else ("stat_server_m", minute_expr)
    sql = (
        f"SELECT m.t, m.{expr} FROM {table} m JOIN servers s ON s.id = m.server_id"
        " WHERE s.name = ? AND m.t >= ? AND m.t < ? ORDER BY m.t"
    )
    async with conn.execute(sql, (name, start, end)) as cursor:
        return [(int(t), v) async for t, v in cursor]


async def disk_series(
    conn: aiosqlite.Connection, name: str, mount: str, *, start: int, end: int, hourly: bool
) -> list[tuple[int, float | None]]:
    table = "stat_disk_h" if hourly else "stat_disk_m"
    sql = (
        f"SELECT m.t, 100.0 * m.used_mb / nullif(m.size_mb, 0) FROM {table} m"
        " JOIN servers s ON s.id = m.server_id"
        " WHERE s.name = ? AND m.mount = ? AND m.t >= ? AND m.t < ? ORDER BY m.t"
    )
    async with conn.execute(sql, (name, mount, start, end)) as cursor:
        return [(int(t), v) async for t, v in cursor]


_SITE_GROUP: Final[Mapping[str, str]] = {
    "site": "st.domain = ?",
    "client": "st.client_id = (SELECT id FROM clients WHERE name = ?)",
    "platform": "st.platform_id = (SELECT id FROM platforms WHERE name = ?)",
    "server": "st.platform_id IN (SELECT p.id FROM platforms p JOIN servers s"
    " ON s.id = p.server_id WHERE s.name = ?)",
}


async def site_series(
    conn: aiosqlite.Connection,
    scope: str,
    key: str,
    metric: str,
    *,
    start: int,
    end: int,
    hourly: bool,
) -> list[tuple[int, float | None]]:
    """A site metric of one site, or of a client's, platform's or server's sites (sums
    of additive metrics, means of the others)."""
    column = SITE_METRICS[metric]
    table = "stat_site_h" if hourly else "stat_site_m"
    agg = "sum" if column in ADDITIVE or column in ("disk_bytes", "db_bytes") else "avg"
    if scope != "site" and column in ("p95_ms",):
        agg = "max"
    sql = (
        f"SELECT m.t, {agg}(m.{column}) FROM {table} m JOIN sites st ON st.id = m.site_id"
        f" WHERE {_SITE_GROUP[scope]} AND m.t >= ? AND m.t < ? GROUP BY m.t ORDER BY m.t"
    )
    async with conn.execute(sql, (key, start, end)) as cursor:
        return [(int(t), v) async for t, v in cursor]


@dataclass(frozen=True, slots=True)
class TopRow:
    key: str
    value: float
    detail: str = ""


async def top_sites(
    conn: aiosqlite.Connection, metric: str, *, start: int, end: int, hourly: bool, limit: int
) -> list[TopRow]:
    """The sites with the most of an additive metric (requests, bytes, s5xx…) in a window."""
    column = SITE_METRICS[metric]
    table = "stat_site_h" if hourly else "stat_site_m"
    sql = (
        f"SELECT st.domain, sum(m.{column}) AS v FROM {table} m JOIN sites st ON st.id = m.site_id"
        " WHERE m.t >= ? AND m.t < ? GROUP BY m.site_id HAVING v > 0 ORDER BY v DESC, st.domain"
        " LIMIT ?"
    )
    async with conn.execute(sql, (start, end, limit)) as cursor:
        return [TopRow(str(d), float(v)) async for d, v in cursor]


async def growth_sites(
    conn: aiosqlite.Connection, *, now: int, window_s: int, limit: int
) -> list[TopRow]:
    """The sites whose requests grew most: this window against the one before (hours)."""
    sql = """
    SELECT st.domain,
           sum(CASE WHEN h.t >= :mid THEN h.requests ELSE 0 END) AS recent,
           sum(CASE WHEN h.t < :mid THEN h.requests ELSE 0 END) AS before
      FROM stat_site_h h JOIN sites st ON st.id = h.site_id
     WHERE h.t >= :start AND h.t < :end
     GROUP BY h.site_id
    HAVING recent > before
     ORDER BY recent - before DESC, st.domain
     LIMIT :limit
    """
    args = {"mid": now - window_s, "start": now - 2 * window_s, "end": now, "limit": limit}
    async with conn.execute(sql, args) as cursor:
        return [
            TopRow(str(d), float(r - b), f"{b:,} -> {r:,} requests") async for d, r, b in cursor
        ]


async def servers_with_platforms(conn: aiosqlite.Connection, types: Sequence[str]) -> set[str]:
    """The names of the servers that hold a platform of one of ``types``."""
    marks = ",".join("?" * len(types))
    sql = (
        "SELECT DISTINCT s.name FROM platforms p JOIN servers s ON s.id = p.server_id"
        f" WHERE p.type IN ({marks})"
    )
    async with conn.execute(sql, tuple(types)) as cursor:
        return {str(name) async for (name,) in cursor}


async def month_traffic_of(conn: aiosqlite.Connection, site_id: int, month: str) -> tuple[int, int]:
    """(requests, bytes) of one site in a calendar month."""
    sql = "SELECT requests, bytes FROM stat_site_month WHERE site_id = ? AND month = ?"
    async with conn.execute(sql, (site_id, month)) as cursor:
        row = await cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def last_backup(conn: aiosqlite.Connection, site_id: int) -> float | None:
    """When the site's newest backup was taken (Unix seconds), if it has one."""
    sql = "SELECT max(created) FROM backups WHERE site_id = ?"
    async with conn.execute(sql, (site_id,)) as cursor:
        row = await cursor.fetchone()
    if not row or not row[0]:
        return None
    return datetime.fromisoformat(str(row[0])).timestamp()


async def last_successes(
    conn: aiosqlite.Connection, target_kind: str, key: str
) -> dict[str, float]:
    """``{kind: finished_at}`` of the last succeeded task of each kind on a target."""
    sql = (
        "SELECT kind, max(finished_at) FROM tasks WHERE target_kind = ? AND target_key = ?"
        " AND state = 'succeeded' GROUP BY kind ORDER BY kind"
    )
    async with conn.execute(sql, (target_kind, key)) as cursor:
        return {str(kind): float(at) async for kind, at in cursor if at is not None}


async def fleet_series(
    conn: aiosqlite.Connection, metrics: Sequence[str], *, start: int, end: int, hourly: bool
) -> dict[str, list[tuple[int, float | None]]]:
    """Metrics over the whole fleet, each ``[(t, value)]``: a server gauge averaged over
    the servers (``load1_max``: the highest), a site metric over every site (sums of
    additive metrics and sizes, the worst p95, means of the other gauges).

    The site metrics come from one pass that seeks each site's rows on the primary key
    (site, t): on 10,000 sites that is several times faster than walking the index on
    ``t``, which looks every row up again."""
    out: dict[str, list[tuple[int, float | None]]] = {}
    server = [m for m in metrics if m in SERVER_METRICS]
    site = [m for m in metrics if m in SITE_METRICS and m not in SERVER_METRICS]
    unknown = [m for m in metrics if m not in server and m not in site]
    if unknown:
        raise ValueError(f"no fleet metric {unknown[0]!r}")
    if server:
        table = "stat_server_h" if hourly else "stat_server_m"
        exprs = []
        for metric in server:
            minute_expr, hour_expr = SERVER_METRICS[metric]
            agg = "max" if metric == "load1_max" else "avg"
            exprs.append(f"{agg}({hour_expr if hourly else minute_expr})")
        sql = (
            f"SELECT t, {', '.join(exprs)} FROM {table} WHERE t >= ? AND t < ?"
            " GROUP BY t ORDER BY t"
        )
        async with conn.execute(sql, (start, end)) as cursor:
            rows = list(await cursor.fetchall())
        for i, metric in enumerate(server):
            out[metric] = [(int(row[0]), row[i + 1]) for row in rows]
    if site:
        table = "stat_site_h" if hourly else "stat_site_m"
        exprs = []
        for metric in site:
            column = SITE_METRICS[metric]
            agg = "sum" if column in ADDITIVE or column in ("disk_bytes", "db_bytes") else "avg"
            if column == "p95_ms":
                agg = "max"
            exprs.append(f"{agg}(m.{column})")
        sql = (
            f"SELECT m.t, {', '.join(exprs)} FROM sites st CROSS JOIN {table} m NOT INDEXED"
            " ON m.site_id = st.id AND m.t >= ? AND m.t < ? GROUP BY m.t ORDER BY m.t"
        )
        async with conn.execute(sql, (start, end)) as cursor:
            rows = list(await cursor.fetchall())
        for i, metric in enumerate(site):
            out[metric] = [(int(row[0]), row[i + 1]) for row in rows]
    return out


async def top_sites_by(
    conn: aiosqlite.Connection,
    metrics: Sequence[str],
    *,
    start: int,
    end: int,
    hourly: bool,
    limit: int,
) -> dict[str, list[TopRow]]:
    """:func:`top_sites` of several additive metrics from one pass over the window (a
    seek per site on the primary key, as :func:`fleet_series` does)."""
    columns = [SITE_METRICS[m] for m in metrics]
    table = "stat_site_h" if hourly else "stat_site_m"
    sums = ", ".join(f"sum(m.{c})" for c in columns)
    sql = (
        f"SELECT st.domain, {sums} FROM sites st CROSS JOIN {table} m NOT INDEXED"
        " ON m.site_id = st.id AND m.t >= ? AND m.t < ? GROUP BY st.id"
    )
    async with conn.execute(sql, (start, end)) as cursor:
        rows = list(await cursor.fetchall())
    out: dict[str, list[TopRow]] = {}
    for i, metric in enumerate(metrics):
        ranked = sorted(
            ((str(row[0]), float(row[i + 1])) for row in rows if row[i + 1]),
            key=lambda pair: (-pair[1], pair[0]),
        )
        out[metric] = [TopRow(domain, value) for domain, value in ranked[:limit]]
    return out

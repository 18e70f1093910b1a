"""What a statistics dashboard reads: series over a window, top-N tables, tiles.

The core exposes these (``Cockpit.stats_series``, ``stats_top``, ``stats_tiles``,
``site_stats``); they read the store only.

- A **series** is one metric of a server (``load1``, ``mem_pct``, ``swap_pct``,
  ``disk_pct``, ``disk:/mount``), or of a site, a client's, a platform's or a server's
  sites (``requests``, ``bytes``, ``s2xx``…``s5xx``, ``p50_ms``, ``p95_ms``,
  ``probe_ms``, ``probe_fail``, ``disk_bytes``, ``db_bytes``) over a window (``1h``,
  ``24h``, ``7d`` or seconds): per-minute points while the window fits in the minutes
  kept, per-hour points beyond, grouped into at most ``points`` buckets. Missing
  buckets are 0 for counts and None for gauges.
- **Top-N**: busiest sites (``requests``, ``bytes``), most errors (``s5xx``), fastest
  growth (``growth``: requests over the window against the window before),
  certificates expiring soonest (``certificates``), disks filling soonest (``disks``).
- **Tiles**: per server, client and platform, how many of its sites (and, for a server,
  itself) are OK, WARNING, CRITICAL or UNKNOWN now.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cockpit.config import Config
from cockpit.status.evaluate import Report, State, evaluate, worst
from cockpit.store import Database
from cockpit.store import clients as client_queries
from cockpit.store import metrics as q
from cockpit.store import platforms as platform_queries

__all__ = [
    "SPARKS",
    "TOP",
    "WINDOWS",
    "Board",
    "Charts",
    "Series",
    "Tile",
    "TopRow",
    "board",
    "chart_metrics",
    "charts",
    "parse_window",
    "series",
    "tiles",
    "top",
]

WINDOWS: Final[Mapping[str, int]] = {"1h": 3600, "24h": 86400, "7d": 7 * 86400}
TOP: Final = ("requests", "bytes", "s5xx", "growth", "certificates", "disks")
TopRow = q.TopRow


def parse_window(window: str | int | float) -> int:
    if isinstance(window, int | float) and not isinstance(window, bool):
        seconds = int(window)
    elif isinstance(window, str) and window in WINDOWS:
        seconds = WINDOWS[window]
    elif isinstance(window, str) and window[:-1].isdigit() and window[-1:] in "mhd":
        seconds = int(window[:-1]) * {"m": 60, "h": 3600, "d": 86400}[window[-1]]
    else:
        raise ValueError(f"a window is 1h, 24h, 7d, or N followed by m, h or d: {window!r}")
    if seconds < 60:
        raise ValueError("a window is at least a minute")
    return seconds


@dataclass(frozen=True, slots=True)
class Series:
    scope: str
    key: str
    metric: str
    start: int
    step: int  # seconds per point
    points: list[tuple[int, float | None]] = field(default_factory=list)

    @property
    def values(self) -> list[float | None]:
        return [v for _t, v in self.points]


async def series(
    db: Database,
    config: Config,
    scope: str,
    key: str,
    metric: str,
    window: str | int | float = "1h",
    *,
    points: int = 120,
    now: float | None = None,
    hourly: bool | None = None,
) -> Series:
    """``hourly``: read the hours (True) or the minutes (False); by default the minutes
    while the window fits in the minutes kept. ``scope`` ``fleet`` (any ``key``): a
    server metric averaged over the servers, a site metric over every site."""
    seconds = parse_window(window)
    moment = int(time.time() if now is None else now)
    if hourly is None:
        hourly = seconds > config.stats.minute_hours * q.HOUR
    start, end, base = _span(seconds, moment, hourly)
    async with db.read() as conn:
        if scope == "fleet" and (metric in q.SERVER_METRICS or metric in q.SITE_METRICS):
            fleet = await q.fleet_series(conn, [metric], start=start, end=end, hourly=hourly)
            raw = fleet[metric]
            additive = metric in q.ADDITIVE
        elif scope == "server" and metric.startswith("disk:"):
            raw = await q.disk_series(conn, key, metric[5:], start=start, end=end, hourly=hourly)
            additive = False
        elif scope == "server" and metric in q.SERVER_METRICS:
            raw = await q.server_series(conn, key, metric, start=start, end=end, hourly=hourly)
            additive = False
        elif scope in ("site", "client", "platform", "server") and metric in q.SITE_METRICS:
            raw = await q.site_series(conn, scope, key, metric, start=start, end=end, hourly=hourly)
            additive = metric in q.ADDITIVE
        else:
            known = sorted({*q.SERVER_METRICS, "disk:MOUNT", *q.SITE_METRICS})
            raise ValueError(f"no {scope} metric {metric!r}; known: {', '.join(known)}")
    return _bucketed(scope, key, metric, raw, start, end, base, points, additive=additive)


def _span(seconds: int, moment: int, hourly: bool) -> tuple[int, int, int]:
    """The start and end of a window that ends with the minute (or hour) of ``moment``,
    and the step of the rows read."""
    base = q.HOUR if hourly else q.MINUTE
    end = moment // base * base + base
    return end - seconds // base * base, end, base


def _bucketed(
    scope: str,
    key: str,
    metric: str,
    raw: list[tuple[int, float | None]],
    start: int,
    end: int,
    base: int,
    points: int,
    *,
    additive: bool,
) -> Series:
    """Rows grouped into at most ``points`` buckets: sums of counts (0 when missing),
    means of gauges (None when missing)."""
    count = max(1, (end - start) // base)
    per = max(1, -(-count // max(1, points)))  # base steps per bucket, rounded up
    step = per * base
    buckets: dict[int, list[float]] = {}
    for t, value in raw:
        if value is not None:
            buckets.setdefault(start + (t - start) // step * step, []).append(float(value))
    out: list[tuple[int, float | None]] = []
    for t in range(start, end, step):
        got = buckets.get(t)
        if got is None:
            out.append((t, 0.0 if additive else None))
        else:
            out.append((t, sum(got) if additive else sum(got) / len(got)))
    return Series(scope, key, metric, start, step, out)


async def top(
    db: Database,
    what: str,
    *,
    window: str | int | float = "24h",
    limit: int = 10,
    config: Config,
    now: float | None = None,
    hourly: bool | None = None,
) -> list[q.TopRow]:
    moment = int(time.time() if now is None else now)
    seconds = parse_window(window)
    if hourly is None:
        hourly = seconds > config.stats.minute_hours * q.HOUR
    async with db.read() as conn:
        if what in ("requests", "bytes", "s5xx", "s4xx"):
            return await q.top_sites(
                conn, what, start=moment - seconds, end=moment + 60, hourly=hourly, limit=limit
            )
        if what == "growth":
            return await q.growth_sites(conn, now=moment, window_s=seconds, limit=limit)
        if what == "certificates":
            rows = [
                s
                for s in await q.sites_now(conn)
                if s.tls_expires_at is not None and s.status == "enabled"
            ]
            rows.sort(key=lambda s: (s.tls_expires_at or 0, s.domain))
            return [
                q.TopRow(
                    s.domain, round(((s.tls_expires_at or 0) - moment) / 86400, 2), "days left"
                )
                for s in rows[:limit]
            ]
        if what == "disks":
            trends = await q.disk_trends(conn, now=moment, window_s=7 * 86400, min_span_s=6 * 3600)
            filling = [(t, t.full_in()) for t in trends]
            ranked = sorted(
                ((t, left) for t, left in filling if left is not None), key=lambda x: x[1]
            )
            return [
                q.TopRow(
                    f"{t.server}:{t.mount}",
                    round(left / 86400, 2),
                    f"full in {left / 86400:.1f} days ({100 * t.used_mb / t.size_mb:.0f} % used)"
                    if t.size_mb
                    else "days left",
                )
                for t, left in ranked[:limit]
            ]
    raise ValueError(f"no top-N of {what!r}; known: {', '.join(TOP)}")


@dataclass(slots=True)
class Tile:
    """How many of a server's, client's or platform's things are in each state."""

    kind: str  # server | client | platform
    name: str
    counts: dict[str, int] = field(default_factory=lambda: {s.label: 0 for s in State})

    @property
    def state(self) -> State:
        return worst(s for s in State if self.counts[s.label])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "state": self.state.label, **self.counts}


def tiles(report: Report) -> list[Tile]:
    """Tiles of every server, client and platform from one evaluated report (with every
    site, ``evaluate(sites=True)``, or the counts of sites, ``evaluate(groups=True)``)."""
    if report.groups is None and not report.has_sites:
        raise ValueError("tiles need a report with every site or the counts of sites")
    site_state: dict[str, State] = {}
    server_state: dict[str, State] = {s.name: s.state for s in report.servers}
    for p in report.problems:
        if p.kind == "site":
            site_state[p.subject] = worst((site_state.get(p.subject, State.OK), p.state))
        elif p.kind in ("service", "mount") and p.server is not None:
            server_state[p.server] = worst((server_state.get(p.server, State.OK), p.state))
    out: dict[tuple[str, str], Tile] = {}

    def add(kind: str, name: str, state: State, n: int = 1) -> None:
        tile = out.get((kind, name))
        if tile is None:
            tile = out[(kind, name)] = Tile(kind, name)
        tile.counts[state.label] += n

    for name, state in server_state.items():
        add("server", name, state)
    if report.groups is not None:
        # every site counted OK, then each flagged one moved to its state
        for server, platform, client, n in report.groups:
            for kind, name in _places(server, platform, client):
                add(kind, name, State.OK, n)
        for domain, state in site_state.items():
            for kind, name in _places(*report.places[domain]):
                add(kind, name, state)
                out[(kind, name)].counts[State.OK.label] -= 1
    else:
        for site in report.sites:
            state = site_state.get(site.domain, State.OK)
            add("server", site.server, state)
            add("platform", site.platform, state)
            if site.client is not None:
                add("client", site.client, state)
    order = {"server": 0, "client": 1, "platform": 2}
    return sorted(out.values(), key=lambda t: (order[t.kind], t.name))


def _places(server: str, platform: str, client: str | None) -> list[tuple[str, str]]:
    """The tiles a site counts in."""
    out = [("server", server), ("platform", platform)]
    if client is not None:
        out.append(("client", client))
    return out


@dataclass(frozen=True, slots=True)
class SiteStats:
    """One site now: its last probe and checks, traffic this month, last good backup,
    and the last successful task of each kind."""

    site: q.SiteNow
    month_requests: int
    month_bytes: int
    last_backup: float | None
    last_success: dict[str, float]


async def site_stats(db: Database, domain: str, *, now: float | None = None) -> SiteStats | None:
    moment = time.time() if now is None else now
    async with db.read() as conn:
        rows = await q.sites_now(conn, domain=domain)
        if not rows:
            return None
        site = rows[0]
        month = await q.month_traffic_of(conn, site.id, q.month_of(moment))
        backup = await q.last_backup(conn, site.id)
        success = await q.last_successes(conn, "site", domain)
    return SiteStats(site, month[0], month[1], backup, success)


# ---------------------------------------------------------------------------
# A dashboard's whole screen, and one server's or site's charts
# ---------------------------------------------------------------------------

#: The fleet's sparklines: the fleet series each one draws (load: the servers' mean).
SPARKS: Final = ("load1", "requests", "s5xx", "bytes")


@dataclass(frozen=True, slots=True)
class Board:
    """Everything a dashboard shows, read at one moment: the fleet's state, tiles, the
    fleet's sparklines over the window and the top-N tables."""

    generated_at: float
    window: str
    state: State
    problems: dict[str, int]  # state label -> how many problems
    counts: dict[str, int]  # the report's: servers, servers_reachable, sites…
    tiles: list[Tile]
    sparks: dict[str, Series]  # SPARKS metric -> its fleet series
    tops: dict[str, list[TopRow]]  # TOP name -> its rows
    growth_window: str
    seconds: float = 0.0


async def board(
    db: Database,
    config: Config,
    *,
    window: str = "1h",
    limit: int = 5,
    points: int = 60,
    now: float | None = None,
) -> Board:
    """One dashboard's worth of statistics. Windows over an hour read the hourly rollup
    (a fleet's minutes over a day are millions of rows); growth compares at least a day
    with the day before, certificates and disks do not depend on the window."""
    started = time.perf_counter()
    moment = time.time() if now is None else now
    seconds = parse_window(window)
    hourly = seconds > q.HOUR
    report = await evaluate(db, config, now=moment, sites=False, groups=True)
    start, end, base = _span(seconds, int(moment), hourly)
    traffic = ("requests", "bytes", "s5xx")
    async with db.read() as conn:
        fleet = await q.fleet_series(conn, SPARKS, start=start, end=end, hourly=hourly)
        tops: dict[str, list[TopRow]] = await q.top_sites_by(
            conn,
            traffic,
            start=int(moment) - seconds,
            end=int(moment) + 60,
            hourly=hourly,
            limit=limit,
        )
    sparks = {
        metric: _bucketed(
            "fleet",
            "",
            metric,
            fleet[metric],
            start,
            end,
            base,
            points,
            additive=metric in q.ADDITIVE,
        )
        for metric in SPARKS
    }
    growth_s = max(seconds, WINDOWS["24h"])
    for what in TOP:
        if what not in traffic:
            tops[what] = await top(
                db,
                what,
                window=growth_s if what == "growth" else seconds,
                limit=limit,
                config=config,
                now=moment,
                hourly=hourly,
            )
    by_state = report.by_state()
    return Board(
        generated_at=moment,
        window=window,
        state=report.state,
        problems={state.label: by_state[state] for state in State},
        counts=dict(report.counts),
        tiles=tiles(report),
        sparks=sparks,
        tops=tops,
        growth_window=next((k for k, v in WINDOWS.items() if v == growth_s), f"{growth_s}s"),
        seconds=time.perf_counter() - started,
    )


#: The charts of one server (then each mount's use, then its sites' traffic), of one site,
#: and of a client's or platform's sites.
SERVER_CHARTS: Final = ("load1", "mem_pct", "swap_pct")
TRAFFIC_CHARTS: Final = ("requests", "bytes", "s5xx", "p95_ms")
SITE_CHARTS: Final = (
    "requests",
    "bytes",
    "s4xx",
    "s5xx",
    "p50_ms",
    "p95_ms",
    "probe_ms",
    "disk_bytes",
    "db_bytes",
)


def chart_metrics(scope: str, mounts: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The metrics charted for a ``server`` (with its ``mounts``), ``site``, ``client`` or
    ``platform``."""
    if scope == "server":
        return (*SERVER_CHARTS, *(f"disk:{m}" for m in mounts), *TRAFFIC_CHARTS)
    if scope == "site":
        return SITE_CHARTS
    if scope in ("client", "platform"):
        return (*TRAFFIC_CHARTS, "s4xx", "disk_bytes", "db_bytes")
    raise ValueError(f"no charts of a {scope!r}; a server, site, client or platform has them")


@dataclass(frozen=True, slots=True)
class Charts:
    """One server's, site's, client's or platform's series over a window, and what it is
    now (``found``: whether it is in the store)."""

    scope: str
    key: str
    window: str
    generated_at: float
    found: bool
    series: list[Series]
    server: q.ServerNow | None = None
    site: SiteStats | None = None


async def charts(
    db: Database,
    config: Config,
    scope: str,
    key: str,
    *,
    window: str = "1h",
    points: int = 60,
    now: float | None = None,
) -> Charts:
    """The series :func:`chart_metrics` lists for one entity. A server's own gauges and a
    single site read the minutes while they are kept; sums over many sites read the hourly
    rollup beyond an hour."""
    moment = time.time() if now is None else now
    seconds = parse_window(window)
    chart_metrics(scope)  # refuses an unknown scope before any read
    server: q.ServerNow | None = None
    site: SiteStats | None = None
    mounts: tuple[str, ...] = ()
    if scope == "server":
        async with db.read() as conn:
            server = next((s for s in await q.servers_now(conn) if s.name == key), None)
        found = server is not None
        if server is not None:
            mounts = tuple(str(d["mount"]) for d in server.data.get("disks", ()) if d.get("mount"))
    elif scope == "site":
        site = await site_stats(db, key, now=moment)
        found = site is not None
    else:
        async with db.read() as conn:
            if scope == "client":
                found = await client_queries.get(conn, key) is not None
            else:
                found = await platform_queries.get(conn, key) is not None
    out: list[Series] = []
    if found:
        grouped_hourly = seconds > q.HOUR
        for metric in chart_metrics(scope, mounts):
            many = scope != "site" and metric in q.SITE_METRICS
            out.append(
                await series(
                    db,
                    config,
                    scope,
                    key,
                    metric,
                    seconds,
                    points=points,
                    now=moment,
                    hourly=grouped_hourly if many else None,
                )
            )
    return Charts(scope, key, window, moment, found, out, server, site)

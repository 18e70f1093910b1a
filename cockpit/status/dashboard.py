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
from cockpit.status.evaluate import Report, State, worst
from cockpit.store import Database
from cockpit.store import metrics as q

__all__ = ["WINDOWS", "Series", "Tile", "TopRow", "parse_window", "series", "tiles", "top"]

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
) -> Series:
    seconds = parse_window(window)
    moment = int(time.time() if now is None else now)
    hourly = seconds > config.stats.minute_hours * q.HOUR
    base = q.HOUR if hourly else q.MINUTE
    end = moment // base * base + base
    start = end - seconds // base * base
    async with db.read() as conn:
        if scope == "server" and metric.startswith("disk:"):
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
) -> list[q.TopRow]:
    moment = int(time.time() if now is None else now)
    seconds = parse_window(window)
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
    """Tiles of every server, client and platform from one evaluated report."""
    site_state: dict[str, State] = {}
    server_state: dict[str, State] = {s.name: s.state for s in report.servers}
    for p in report.problems:
        if p.kind == "site":
            site_state[p.subject] = worst((site_state.get(p.subject, State.OK), p.state))
        elif p.kind in ("service", "mount") and p.server is not None:
            server_state[p.server] = worst((server_state.get(p.server, State.OK), p.state))
    out: dict[tuple[str, str], Tile] = {}

    def add(kind: str, name: str, state: State) -> None:
        tile = out.get((kind, name))
        if tile is None:
            tile = out[(kind, name)] = Tile(kind, name)
        tile.counts[state.label] += 1

    for name, state in server_state.items():
        add("server", name, state)
    for site in report.sites:
        state = site_state.get(site.domain, State.OK)
        add("server", site.server, state)
        add("platform", site.platform, state)
        if site.client is not None:
            add("client", site.client, state)
    order = {"server": 0, "client": 1, "platform": 2}
    return sorted(out.values(), key=lambda t: (order[t.kind], t.name))


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

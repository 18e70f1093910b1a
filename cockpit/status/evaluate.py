"""The on-call evaluation: every condition of the fleet, from the store, with its reason.

:func:`evaluate` reads the latest collections, a few aggregates and the failed tasks in
one read snapshot and returns a :class:`Report`: a list of :class:`Problem` (state,
check, subject, reason, and the measured value against its threshold) and the overall
state, as Nagios plugins report it. Conditions (thresholds in the ``status`` section of
the config):

==========================  ========================================================
``server.unreachable``      the last collection could not reach the server: CRITICAL
``server.stale``            no collection for ``stale_minutes`` (or never): UNKNOWN
``server.timeout``          ``--refresh`` got no answer from the server in time:
                            UNKNOWN (CRITICAL stays with ``server.unreachable``)
``service.down``            a web server, database or php-fpm (on a server with PHP
                            platforms) not running: CRITICAL
``service.config``          a web server's config test fails: WARNING
``server.reboot``           a reboot is pending: WARNING
``server.clock``            the clock is off by more than ``clock_warn_ms``/``_crit_ms``
                            beyond the measurement's error (``clock_error_ms``)
``disk.full``               a mount's space over ``disk_warn_percent`` /
                            ``disk_crit_percent``
``disk.inodes``             a mount's inodes over the same thresholds (a check of its
                            own: one series per check and subject in Prometheus)
``disk.filling``            a mount full within ``disk_full_warn_days`` / ``_crit_days``
                            at the rate of a least-squares fit over the last 7 days
``site.probe``              a site answers 5xx or not at all: CRITICAL
``site.certificate``        a certificate expires within ``cert_warn_days`` /
                            ``cert_crit_days`` (or expired, or cannot be read)
``task.failed``             a task failed (interrupted, unknown) since ``--since`` and
                            no later run of it succeeded: WARNING
``quota.bandwidth``,        a site's or client's traffic this month or disk use at
``quota.disk``              ``quota_warn_percent`` / ``quota_crit_percent`` of its
                            limit (a limit may carry its own percentages)
==========================  ========================================================

The overall state is the worst one, ordered OK < WARNING < UNKNOWN < CRITICAL (a check
that cannot tell outranks a known warning, never a known outage). Exit codes are the
Nagios ones: 0, 1, 2, 3.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cockpit.config import Config, StatusSettings
from cockpit.store import Database, oncall
from cockpit.store import metrics as q
from cockpit.textsafe import sanitize_line

__all__ = ["Problem", "Report", "State", "evaluate"]

_PHP_PLATFORMS: Final = ("php", "wordpress", "drupal")
_DAY: Final = 86400.0
_MB: Final = 1024 * 1024


class State(enum.IntEnum):
    """A Nagios state: the value is the plugin's exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3

    @property
    def severity(self) -> int:
        return (0, 1, 3, 2)[self.value]

    @property
    def label(self) -> str:
        return self.name


def worst(states: Iterable[State]) -> State:
    return max(states, key=lambda s: s.severity, default=State.OK)


@dataclass(frozen=True, slots=True)
class Problem:
    state: State
    check: str  # server.unreachable, site.probe, …
    kind: str  # server | site | client | task | mount | service
    subject: str  # the server, site, client name; "server:mount"; the task id
    reason: str
    server: str | None = None  # the server it concerns, when there is one
    value: float | None = None
    threshold: float | None = None
    since: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state.label,
            "check": self.check,
            "kind": self.kind,
            "subject": self.subject,
            "server": self.server,
            "reason": self.reason,
            "value": self.value,
            "threshold": self.threshold,
            "since": _iso(self.since),
        }


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ServerLine:
    """One server's vitals for the summary and the Prometheus exposition."""

    name: str
    state: State
    reachable: bool | None
    collected_at: float | None
    load1: float | None
    cpus: int | None
    mem_pct: float | None
    disks: tuple[tuple[str, float, float | None], ...]  # mount, used %, inodes %
    services: tuple[tuple[str, bool, bool | None], ...]  # name, running, config ok
    clock_offset_ms: float | None
    pending_reboot: bool | None


@dataclass(frozen=True, slots=True)
class SiteLine:
    domain: str
    server: str
    client: str | None
    platform: str
    http_status: int | None
    latency_ms: float | None
    probed_at: float | None
    tls_expires_at: float | None
    bytes_month: int
    requests_month: int
    disk_bytes: int | None
    db_bytes: int | None


@dataclass(frozen=True, slots=True)
class Report:
    generated_at: float
    since: float
    problems: list[Problem]
    servers: list[ServerLine]
    sites: list[SiteLine]
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: Whether :attr:`sites` holds every site (``evaluate(sites=False)`` leaves it empty).
    has_sites: bool = True
    #: ``evaluate(groups=True)``: how many sites each (server, platform, client) holds, and
    #: where each site a site check flagged is: what the tiles count, without every site.
    groups: list[tuple[str, str, str | None, int]] | None = None
    places: dict[str, tuple[str, str, str | None]] = field(default_factory=dict)

    @property
    def state(self) -> State:
        return worst(p.state for p in self.problems)

    @property
    def exit_code(self) -> int:
        return int(self.state.value)

    def by_state(self) -> dict[State, int]:
        out = dict.fromkeys(State, 0)
        for p in self.problems:
            out[p.state] += 1
        return out


def _pct(used: float, size: float) -> float:
    return round(100.0 * used / size, 1) if size else 0.0


def _days(seconds: float) -> str:
    days = seconds / _DAY
    if days < 1:
        return f"{seconds / 3600:.1f} hours"
    return f"{days:.1f} days"


def _level(value: float, warn: float, crit: float) -> State:
    """OK below ``warn``, WARNING from it, CRITICAL from ``crit`` (0 turns a level off)."""
    if crit and value >= crit:
        return State.CRITICAL
    if warn and value >= warn:
        return State.WARNING
    return State.OK


def _servers(
    rows: list[q.ServerNow],
    php_servers: set[str],
    s: StatusSettings,
    now: float,
    timed_out: Mapping[str, str],
) -> tuple[list[Problem], list[ServerLine]]:
    problems: list[Problem] = []
    lines: list[ServerLine] = []
    stale = s.stale_minutes * 60
    for row in rows:
        mine: list[Problem] = []
        data = row.data
        if row.collected_at is None:
            mine.append(
                Problem(
                    State.UNKNOWN,
                    "server.stale",
                    "server",
                    row.name,
                    "no statistics yet: no collection has run",
                    row.name,
                )
            )
        elif row.reachable is False:
            since = f" (last reached {_iso(row.reached_at)})" if row.reached_at else ""
            mine.append(
                Problem(
                    State.CRITICAL,
                    "server.unreachable",
                    "server",
                    row.name,
                    f"unreachable: {sanitize_line(row.error)}{since}",
                    row.name,
                    since=row.reached_at or row.collected_at,
                )
            )
        elif stale and now - row.collected_at > stale:
            age = (now - row.collected_at) / 60
            mine.append(
                Problem(
                    State.UNKNOWN,
                    "server.stale",
                    "server",
                    row.name,
                    f"no statistics for {age:.0f} minutes (the collectors run in "
                    "'cockpit worker'; is one running?)",
                    row.name,
                    value=round(age, 1),
                    threshold=s.stale_minutes,
                    since=row.collected_at,
                )
            )
        if row.name in timed_out and row.reachable is not False:
            shown = (
                f"; the statistics shown are from {_iso(row.collected_at)}"
                if row.collected_at is not None
                else ""
            )
            mine.append(
                Problem(
                    State.UNKNOWN,
                    "server.timeout",
                    "server",
                    row.name,
                    f"the refresh timed out: {sanitize_line(timed_out[row.name])}{shown}",
                    row.name,
                    since=row.collected_at,
                )
            )
        if row.reachable and data:
            for svc in data.get("services", ()):
                name = str(svc.get("name", "?"))
                if not svc.get("running"):
                    if svc.get("kind") == "php" and row.name not in php_servers:
                        continue
                    detail = sanitize_line(str(svc.get("detail", "")))
                    mine.append(
                        Problem(
                            State.CRITICAL,
                            "service.down",
                            "service",
                            f"{row.name}:{name}",
                            f"{name} is not running" + (f" ({detail})" if detail else ""),
                            row.name,
                        )
                    )
                if svc.get("config_ok") is False:
                    detail = sanitize_line(str(svc.get("detail", "")))
                    mine.append(
                        Problem(
                            State.WARNING,
                            "service.config",
                            "service",
                            f"{row.name}:{name}",
                            f"{name}: the config test fails; the next reload will too"
                            + (f" ({detail})" if detail else ""),
                            row.name,
                        )
                    )
            if data.get("pending_reboot"):
                mine.append(
                    Problem(
                        State.WARNING,
                        "server.reboot",
                        "server",
                        row.name,
                        "a reboot is pending",
                        row.name,
                    )
                )
            offset = data.get("clock_offset_ms")
            if offset is not None:
                # the server read its clock somewhere within ±error of the midpoint the
                # offset is taken at (a slow connection widens it): judge the least offset
                # the measurement allows, so that a correct clock never warns
                error = abs(data.get("clock_error_ms") or 0.0)
                least = max(0.0, abs(offset) - error)
                level = _level(least, s.clock_warn_ms, s.clock_crit_ms)
                if level is not State.OK:
                    mine.append(
                        Problem(
                            level,
                            "server.clock",
                            "server",
                            row.name,
                            f"the clock is {offset / 1000:+.1f} s (± {error / 1000:.1f} s) "
                            "off this host's",
                            row.name,
                            value=offset,
                            threshold=s.clock_crit_ms
                            if level is State.CRITICAL
                            else s.clock_warn_ms,
                        )
                    )
            for disk in data.get("disks", ()):
                mount = str(disk.get("mount"))
                used = _pct(disk.get("used_mb", 0), disk.get("size_mb", 0))
                level = _level(used, s.disk_warn_percent, s.disk_crit_percent)
                if level is not State.OK:
                    mine.append(
                        Problem(
                            level,
                            "disk.full",
                            "mount",
                            f"{row.name}:{mount}",
                            f"{mount} is {used:.1f} % full "
                            f"({disk.get('used_mb', 0) / 1024:.1f} of {disk.get('size_mb', 0) / 1024:.1f} GB)",
                            row.name,
                            value=used,
                            threshold=s.disk_crit_percent
                            if level is State.CRITICAL
                            else s.disk_warn_percent,
                        )
                    )
                inodes = disk.get("inodes_pct")
                if inodes is not None:
                    level = _level(inodes, s.disk_warn_percent, s.disk_crit_percent)
                    if level is not State.OK:
                        mine.append(
                            Problem(
                                level,
                                "disk.inodes",
                                "mount",
                                f"{row.name}:{mount}",
                                f"{mount} has used {inodes:.1f} % of its inodes",
                                row.name,
                                value=inodes,
                                threshold=s.disk_crit_percent
                                if level is State.CRITICAL
                                else s.disk_warn_percent,
                            )
                        )
        problems.extend(mine)
        disks = tuple(
            (
                str(d.get("mount")),
                _pct(d.get("used_mb", 0), d.get("size_mb", 0)),
                d.get("inodes_pct"),
            )
            for d in data.get("disks", ())
        )
        mem_total = data.get("mem_total_mb") or 0
        lines.append(
            ServerLine(
                name=row.name,
                state=worst(p.state for p in mine),
                reachable=row.reachable,
                collected_at=row.collected_at,
                load1=data.get("load1"),
                cpus=data.get("cpus"),
                mem_pct=_pct(mem_total - data.get("mem_available_mb", mem_total), mem_total)
                if mem_total
                else None,
                disks=disks,
                services=tuple(
                    (str(v.get("name")), bool(v.get("running")), v.get("config_ok"))
                    for v in data.get("services", ())
                ),
                clock_offset_ms=data.get("clock_offset_ms"),
                pending_reboot=data.get("pending_reboot"),
            )
        )
    return problems, lines


def _trends(trends: list[q.DiskTrend], s: StatusSettings, reported: set[str]) -> list[Problem]:
    problems = []
    for trend in trends:
        left = trend.full_in()
        if left is None:
            continue
        subject = f"{trend.server}:{trend.mount}"
        level = _level(
            -left,
            -s.disk_full_warn_days * _DAY if s.disk_full_warn_days else 0,
            -s.disk_full_crit_days * _DAY if s.disk_full_crit_days else 0,
        )
        if level is State.OK or subject in reported:
            continue
        rate = trend.slope * _DAY / 1024 if trend.slope else 0.0
        problems.append(
            Problem(
                level,
                "disk.filling",
                "mount",
                subject,
                f"{trend.mount} fills up in {_days(left)} at {rate:.2f} GB a day "
                f"(fit over {trend.points} hours)",
                trend.server,
                value=round(left / _DAY, 2),
                threshold=s.disk_full_crit_days
                if level is State.CRITICAL
                else s.disk_full_warn_days,
            )
        )
    return problems


def _sites(rows: list[q.SiteNow], s: StatusSettings, now: float) -> list[Problem]:
    problems = []
    for site in rows:
        if site.status != "enabled":
            continue
        if site.probed_at is not None and site.failing_since is not None:
            what = (
                f"answers HTTP {site.http_status}"
                if site.http_status
                else f"does not answer ({sanitize_line(site.probe_error) or 'no answer'})"
            )
            problems.append(
                Problem(
                    State.CRITICAL,
                    "site.probe",
                    "site",
                    site.domain,
                    f"{what} through {site.server} since {_iso(site.failing_since)}",
                    site.server,
                    value=site.http_status,
                    since=site.failing_since,
                )
            )
        if site.https != "off" and site.tls_checked_at is not None:
            if site.tls_expires_at is None:
                problems.append(
                    Problem(
                        State.WARNING,
                        "site.certificate",
                        "site",
                        site.domain,
                        sanitize_line(site.tls_error) or "no certificate could be read",
                        site.server,
                    )
                )
            else:
                left = site.tls_expires_at - now
                days = left / _DAY
                level = State.OK
                if days < s.cert_crit_days:
                    level = State.CRITICAL
                elif days < s.cert_warn_days:
                    level = State.WARNING
                if level is not State.OK:
                    when = "expired" if left <= 0 else f"expires in {_days(left)}"
                    problems.append(
                        Problem(
                            level,
                            "site.certificate",
                            "site",
                            site.domain,
                            f"its certificate {when} ({_iso(site.tls_expires_at)})",
                            site.server,
                            value=round(days, 2),
                            threshold=s.cert_crit_days
                            if level is State.CRITICAL
                            else s.cert_warn_days,
                        )
                    )
    return problems


def _quota(
    check: str, kind: str, subject: str, what: str, used: float, limit: float, unit: str,
    warn: float, crit: float, server: str | None,
) -> Problem | None:  # fmt: skip
    if not limit:
        return None
    pct = 100.0 * used / limit
    level = _level(pct, warn, crit)
    if level is State.OK:
        return None
    return Problem(
        level,
        check,
        kind,
        subject,
        f"{what} {used:,.0f} of {limit:,.0f} {unit} ({pct:.0f} % of the quota)",
        server,
        value=round(pct, 1),
        threshold=crit if level is State.CRITICAL else warn,
    )


def _site_quotas(
    sites: Iterable[tuple[q.SiteNow, int]],
    site_quotas: list[q.SiteQuota],
    s: StatusSettings,
) -> list[Problem]:
    """Each site's traffic this month (its bytes beside it) and disk use against its
    quota (or the default one)."""
    problems: list[Problem | None] = []
    own = {quota.domain: quota for quota in site_quotas}
    for site, bytes_month in sites:
        traffic = bytes_month / _MB
        disk = ((site.disk_bytes or 0) + (site.db_bytes or 0)) / _MB
        quota = own.get(site.domain)
        bandwidth = (quota.bandwidth_mb_month if quota else None) or s.site_bandwidth_mb_month
        disk_limit = (quota.disk_mb if quota else None) or s.site_disk_mb
        warn = (quota.warn_percent if quota else None) or s.quota_warn_percent
        crit = (quota.crit_percent if quota else None) or s.quota_crit_percent
        problems.append(
            _quota(
                "quota.bandwidth",
                "site",
                site.domain,
                "traffic this month",
                traffic,
                bandwidth,
                "MB",
                warn,
                crit,
                site.server,
            )
        )
        problems.append(
            _quota(
                "quota.disk",
                "site",
                site.domain,
                "files and database use",
                disk,
                disk_limit,
                "MB",
                warn,
                crit,
                site.server,
            )
        )
    return [p for p in problems if p is not None]


def _client_quotas(
    totals: Mapping[str, tuple[int, int]],
    client_quotas: dict[str, dict[str, int]],
    s: StatusSettings,
) -> list[Problem]:
    """Each client's sites' traffic this month and disk use (``totals``: bytes of each)
    against the client's quota."""
    problems: list[Problem | None] = []
    for client, limits in sorted(client_quotas.items()):
        traffic_bytes, disk_bytes = totals.get(client, (0, 0))
        traffic, disk = traffic_bytes / _MB, disk_bytes / _MB
        warn = limits.get("warn_percent") or s.quota_warn_percent
        crit = limits.get("crit_percent") or s.quota_crit_percent
        problems.append(
            _quota(
                "quota.bandwidth",
                "client",
                client,
                "its sites' traffic this month",
                traffic,
                limits.get("bandwidth_mb_month", 0),
                "MB",
                warn,
                crit,
                None,
            )
        )
        problems.append(
            _quota(
                "quota.disk",
                "client",
                client,
                "its sites' files and databases use",
                disk,
                limits.get("disk_mb", 0),
                "MB",
                warn,
                crit,
                None,
            )
        )
    return [p for p in problems if p is not None]


def _floor(limit_mb: float, s: StatusSettings) -> float | None:
    """The bytes from which a site under the default ``limit_mb`` could reach the quota's
    first level (a little below: the check itself decides); None: no such check."""
    levels = [p for p in (s.quota_warn_percent, s.quota_crit_percent) if p]
    if not limit_mb or not levels:
        return None
    return min(levels) / 100 * limit_mb * _MB * 0.999


async def evaluate(
    db: Database,
    config: Config,
    *,
    since: float | None = None,
    now: float | None = None,
    timed_out: Mapping[str, str] | None = None,
    sites: bool = True,
    groups: bool = False,
) -> Report:
    """The fleet's status from the store (no connection to any server).

    ``timed_out`` names the servers a refresh just before could not finish with (and
    why): what the store holds of them is older than asked for, so each is UNKNOWN.

    The site checks read counts, per-client sums and the few sites a check could flag,
    never every site; ``sites`` False leaves out the report's line of every site too
    (what the Prometheus exposition and the tiles need), which is most of the work at
    100,000 sites. ``groups`` True: the counts of sites per server, platform and client
    the tiles need (:attr:`Report.groups`)."""
    started = time.perf_counter()
    moment = time.time() if now is None else now
    s = config.status
    since_at = moment - s.failed_hours * 3600 if since is None else since
    month_key = q.month_of(moment)
    horizon = moment + (max(s.cert_crit_days, s.cert_warn_days, 0) + 1) * _DAY
    site_rows: list[q.SiteNow] = []
    month: dict[int, tuple[int, int]] = {}
    async with db.read() as conn:
        server_rows = await q.servers_now(conn)
        php_servers = await _php_servers(conn)
        site_counts = await oncall.site_counts(conn)
        candidates = await oncall.site_candidates(
            conn,
            month=month_key,
            cert_horizon=horizon,
            bandwidth_floor=_floor(s.site_bandwidth_mb_month, s),
            disk_floor=_floor(s.site_disk_mb, s),
        )
        trends = await q.disk_trends(conn, now=moment, window_s=7 * _DAY, min_span_s=6 * 3600)
        site_quotas = await q.site_quotas(conn)
        client_quotas = await q.client_quotas(conn)
        limited = [
            name
            for name, limits in client_quotas.items()
            if limits.get("bandwidth_mb_month") or limits.get("disk_mb")
        ]
        totals = await oncall.client_totals(conn, month_key, limited)
        failed = await q.failed_tasks(conn, since=since_at)
        if sites:
            site_rows = await q.sites_now(conn)
            month = await q.month_traffic(conn, month_key)
        site_groups = await oncall.site_groups(conn) if groups else None
    problems, server_lines = _servers(server_rows, php_servers, s, moment, timed_out or {})
    full = {p.subject for p in problems if p.check == "disk.full" and p.state is State.CRITICAL}
    unreachable = {p.subject for p in problems if p.check == "server.unreachable"}
    problems += _trends([t for t in trends if t.server not in unreachable], s, full)
    problems += _sites([c.site for c in candidates], s, moment)
    for task in failed:
        problems.append(
            Problem(
                State.WARNING,
                "task.failed",
                "task",
                str(task.id),
                f"{task.kind} on {task.target} ended {task.state}: "
                f"{sanitize_line(task.result)[:200] or 'no result recorded'}",
                since=task.finished_at,
            )
        )
    problems += _site_quotas([(c.site, c.bytes_month) for c in candidates], site_quotas, s)
    problems += _client_quotas(totals, client_quotas, s)
    problems.sort(key=lambda p: (-p.state.severity, p.check, p.subject))
    site_lines = [
        SiteLine(
            domain=r.domain,
            server=r.server,
            client=r.client,
            platform=r.platform,
            http_status=r.http_status,
            latency_ms=r.latency_ms,
            probed_at=r.probed_at,
            tls_expires_at=r.tls_expires_at,
            bytes_month=month.get(r.id, (0, 0))[1],
            requests_month=month.get(r.id, (0, 0))[0],
            disk_bytes=r.disk_bytes,
            db_bytes=r.db_bytes,
        )
        for r in site_rows
    ]
    counts = {
        "servers": len(server_rows),
        "servers_reachable": sum(1 for r in server_rows if r.reachable),
        "sites": site_counts.sites,
        "sites_enabled": site_counts.enabled,
        "sites_probed": site_counts.probed,
        "failed_tasks": len(failed),
    }
    return Report(
        generated_at=moment,
        since=since_at,
        problems=problems,
        servers=server_lines,
        sites=site_lines,
        counts=counts,
        seconds=time.perf_counter() - started,
        has_sites=sites,
        groups=site_groups,
        places={c.site.domain: (c.site.server, c.site.platform, c.site.client) for c in candidates}
        if groups
        else {},
    )


async def _php_servers(conn: Any) -> set[str]:
    return await q.servers_with_platforms(conn, _PHP_PLATFORMS)

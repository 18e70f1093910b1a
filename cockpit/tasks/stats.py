"""Statistics collectors as task kinds, and the rollup that keeps their series bounded.

Kinds (registered under ``cockpit.tasks`` as ``stats``):

- ``stats.server`` (a server): load, CPUs, memory, swap, disks and inodes, services,
  pending reboot, clock offset — one remote script round
  (:mod:`cockpit.backends.stats.server`).
- ``stats.sites`` (a server): every enabled site of the server probed through its web
  server, in one round; with ``deep: true`` also each site's certificate, the disk use
  of its files and its database's size (:mod:`cockpit.backends.stats.sites`).
- ``stats.access`` (a server): the new lines of its sites' access logs, aggregated on the
  server (:mod:`cockpit.backends.stats.collect`): requests, bytes, status classes and
  response-time percentiles per site and minute.
- ``stats.collect`` (a server): the three above in one task (what the default
  per-minute schedule runs: four round trips on one pooled connection).
- ``stats.rollup`` (the store): per-hour rollup of the dirty hours, then retention
  (minutes for ``stats.minute_hours``, hours for ``stats.hour_days``).

A server that cannot be reached is recorded as such (``cockpit status`` says so with
the reason) and the task fails: its outcome is never taken for a good collection. The
collectors run once (no retry): the next minute collects again.

:func:`collect_server_stats` is the same work without the engine, for ``cockpit status
--refresh``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cockpit.backends.stats.collect import AccessLogError, LogSpec, collect_access_log_report
from cockpit.backends.stats.server import collect_server
from cockpit.backends.stats.sites import database_sizes, probe_sites, targets_for
from cockpit.backends.transport import Transport, TransportError
from cockpit.config import Config
from cockpit.engine.context import TaskContext
from cockpit.engine.model import Param, TargetKind
from cockpit.engine.recipes import Step, StepFailed, TaskKind
from cockpit.model import (
    DbEngine,
    Server,
    ServiceKind,
    Site,
    ValidationError,
    derive_db_name,
)
from cockpit.store import Database
from cockpit.store import metrics as metric_queries
from cockpit.store import sites as site_queries
from cockpit.store.metrics import SiteProbe, TrafficSample
from cockpit.store.sites import SiteFilter

__all__ = ["STATS_KINDS", "CollectReport", "collect_server_stats", "rollup_and_prune"]

_ALL: Final = 10_000_000


@dataclass(slots=True)
class CollectReport:
    """What one collection of one server did (for a task's summary or ``--refresh``)."""

    server: str
    reachable: bool | None = None
    error: str = ""
    sites_probed: int = 0
    probe_failures: int = 0
    traffic_samples: int = 0
    unattributed: int = 0
    notes: list[str] = field(default_factory=list)
    #: the collection was still running when the timeout ended it: nothing it read counts
    timed_out: bool = False

    def summary(self) -> str:
        if self.timed_out:
            return f"timed out: {self.error}"
        if self.reachable is False:
            return f"unreachable: {self.error}"
        parts = []
        if self.reachable:
            parts.append("server read")
        if self.sites_probed:
            parts.append(f"{self.sites_probed} sites probed, {self.probe_failures} failing")
        if self.traffic_samples:
            parts.append(f"{self.traffic_samples} site-minutes of traffic")
        return "; ".join(parts + self.notes) or "nothing to collect"


async def _sites_of(db: Database, server: Server) -> list[Site]:
    async with db.read() as conn:
        return await site_queries.page(conn, SiteFilter(server=server.name), limit=_ALL)


async def collect_server_part(
    db: Database, transport: Transport, server: Server, report: CollectReport
) -> None:
    sample = await collect_server(transport, server)
    report.reachable = sample.reachable
    report.error = sample.error
    async with db.write() as conn:
        await metric_queries.record_server(
            conn,
            server.name,
            at=sample.at,
            reachable=sample.reachable,
            error=sample.error,
            data=sample.to_json() if sample.reachable else None,
        )


async def collect_sites_part(
    db: Database,
    transport: Transport,
    server: Server,
    report: CollectReport,
    *,
    deep: bool,
    timeout: float = 10.0,
) -> None:
    sites = await _sites_of(db, server)
    targets, note = targets_for(server, sites, deep=deep)
    if note:
        report.notes.append(note)
    at = time.time()
    probes = await probe_sites(transport, server, targets, timeout=timeout)
    if deep:
        probes = await _with_database_sizes(transport, server, sites, probes, db)
    async with db.write() as conn:
        await metric_queries.record_site_probes(conn, probes, at=at)
    report.sites_probed += sum(1 for p in probes if p.probed)
    report.probe_failures += sum(1 for p in probes if p.failed)


async def _with_database_sizes(
    transport: Transport,
    server: Server,
    sites: Sequence[Site],
    probes: list[SiteProbe],
    db: Database,
) -> list[SiteProbe]:
    """Add the database sizes of the sites whose database lives on ``server``."""
    engines = [s.type for s in server.services if s.kind is ServiceKind.DB]
    if not engines:
        return probes
    sizes = await database_sizes(transport, server)
    # the sites whose database is on this server: theirs by db_server, or hosted here
    # without one named (the platform's server holds it)
    async with db.read() as conn:
        every = await site_queries.list_all(conn)
    here = {s.domain for s in sites}
    on_server = [
        s for s in every if s.db_server == server.name or (s.db_server is None and s.domain in here)
    ]
    by_domain = {p.domain: p for p in probes}
    for site in on_server:
        total = None
        for engine in engines:
            try:
                name = derive_db_name(site.domain, DbEngine(engine))
            except (ValidationError, ValueError):
                continue
            if (engine, name) in sizes:
                total = (total or 0) + sizes[(engine, name)]
        if total is None:
            continue
        old = by_domain.get(site.domain) or SiteProbe(domain=site.domain)
        by_domain[site.domain] = SiteProbe(
            domain=old.domain,
            probed=old.probed,
            http_status=old.http_status,
            latency_ms=old.latency_ms,
            error=old.error,
            tls_checked=old.tls_checked,
            tls_expires_at=old.tls_expires_at,
            tls_error=old.tls_error,
            disk_bytes=old.disk_bytes,
            db_bytes=total,
        )
    return list(by_domain.values())


def _host_map(sites: Sequence[Site]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    exact: dict[str, str] = {}
    wild: list[tuple[str, str]] = []
    for site in sites:
        exact[site.domain] = site.domain
        for alias in site.aliases:
            if alias.startswith("*."):
                wild.append((alias[1:], site.domain))
            else:
                exact[alias] = site.domain
    wild.sort(key=lambda item: -len(item[0]))
    return exact, wild


def _owner(host: str, exact: Mapping[str, str], wild: Sequence[tuple[str, str]]) -> str | None:
    found = exact.get(host)
    if found is not None:
        return found
    for suffix, domain in wild:
        if host.endswith(suffix):
            return domain
    return None


async def collect_access_part(
    db: Database,
    transport: Transport,
    server: Server,
    report: CollectReport,
    *,
    timeout: float = 300.0,
) -> None:
    sites = [s for s in await _sites_of(db, server) if s.status.value != "deleted"]
    log_dir = ""
    for service in server.services:
        if service.kind is ServiceKind.HTTP:
            from cockpit.backends.services import get_service

            try:
                plugin = get_service(service.kind, service.type)(server, service)
            except Exception as exc:  # an unknown or broken plugin: no logs to read
                report.notes.append(f"no access logs: {exc}")
                return
            log_dir = plugin.setting("log_dir")
            break
    if not log_dir or not sites:
        return
    specs = [LogSpec(f"{log_dir}/{s.domain}.access.log") for s in sites]
    try:
        result = await collect_access_log_report(transport, server, specs, timeout=timeout)
    except AccessLogError as exc:
        raise StepFailed(f"access logs: {exc}") from exc
    exact, wild = _host_map(sites)
    samples = []
    for s in result.samples:
        domain = _owner(s.vhost, exact, wild)
        if domain is None:
            report.unattributed += s.requests
            continue
        samples.append(
            TrafficSample(
                domain=domain,
                minute=s.minute,
                requests=s.requests,
                bytes=s.bytes_sent,
                s2xx=s.status_2xx,
                s3xx=s.status_3xx,
                s4xx=s.status_4xx,
                s5xx=s.status_5xx,
                p50_ms=s.p50_ms,
                p95_ms=s.p95_ms,
            )
        )
    # one vhost's several names add up in their site's minute
    async with db.write() as conn:
        report.traffic_samples += await metric_queries.record_traffic(conn, samples)
    if report.unattributed:
        report.notes.append(f"{report.unattributed} requests to hosts that are no site")


async def collect_server_stats(
    db: Database,
    transport: Transport,
    server: Server,
    *,
    sites: bool = True,
    access: bool = True,
    deep: bool = False,
) -> CollectReport:
    """Collect one server's statistics without the engine (``cockpit status --refresh``):
    never raises for an unreachable server or a failed part; the report says."""
    report = CollectReport(server.name)
    await collect_server_part(db, transport, server, report)
    if not report.reachable:
        return report
    parts = []
    if sites:
        parts.append(collect_sites_part(db, transport, server, report, deep=deep))
    if access:
        parts.append(collect_access_part(db, transport, server, report))
    for part in parts:
        try:
            await part
        except (TransportError, StepFailed, AccessLogError) as exc:
            report.notes.append(str(exc)[:300])
    return report


async def rollup_and_prune(
    db: Database, config: Config, *, now: float | None = None
) -> metric_queries.RollupResult:
    """Roll the dirty hours up, then drop what is past retention (one transaction)."""
    moment = time.time() if now is None else now
    settings = config.stats
    async with db.write() as conn:
        hours = await metric_queries.rollup(conn)
        pruned = await metric_queries.prune(
            conn,
            now=moment,
            minute_hours=settings.minute_hours,
            hour_days=settings.hour_days,
            task_hours=settings.task_hours,
        )
    return metric_queries.RollupResult(
        hours, pruned.minutes_pruned, pruned.hours_pruned, pruned.months_pruned, pruned.tasks_pruned
    )


# ---------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------


def _need(ctx: TaskContext) -> tuple[Server, Transport]:
    if ctx.server is None or ctx.transport is None:
        raise StepFailed("a statistics collector needs a server")
    return ctx.server, ctx.transport


def _report(ctx: TaskContext) -> CollectReport:
    report = ctx.state.get("report")
    if not isinstance(report, CollectReport):
        server, _ = _need(ctx)
        report = ctx.state["report"] = CollectReport(server.name)
    return report


async def _server_step(ctx: TaskContext) -> None:
    server, transport = _need(ctx)
    report = _report(ctx)
    await collect_server_part(ctx.db, transport, server, report)
    ctx.summary(report.summary())
    if not report.reachable:
        raise StepFailed(f"{server.name} is unreachable: {report.error}")
    ctx.log(f"read {server.name}: {report.summary()}")


async def _sites_step(ctx: TaskContext) -> None:
    server, transport = _need(ctx)
    report = _report(ctx)
    deep = bool(ctx.args.get("deep", False))
    await collect_sites_part(ctx.db, transport, server, report, deep=deep)
    ctx.log(f"probed {report.sites_probed} sites ({report.probe_failures} failing)")
    ctx.summary(report.summary())


async def _access_step(ctx: TaskContext) -> None:
    server, transport = _need(ctx)
    report = _report(ctx)
    await collect_access_part(ctx.db, transport, server, report)
    ctx.log(f"access logs: {report.traffic_samples} site-minutes")
    ctx.summary(report.summary())


async def _rollup_step(ctx: TaskContext) -> None:
    result = await rollup_and_prune(ctx.db, ctx.config)
    ctx.log(
        f"rolled up {result.hours} hours; pruned {result.minutes_pruned} minute rows, "
        f"{result.hours_pruned} hour rows, {result.months_pruned} month rows and "
        f"{result.tasks_pruned} collector tasks"
    )
    ctx.summary(f"{result.hours} hours rolled up, {result.minutes_pruned} minute rows pruned")


def _check_deep(args: dict[str, Any]) -> dict[str, Any]:
    unknown = set(args) - {"deep"}
    if unknown:
        raise ValidationError("args", f"unknown argument {sorted(unknown)[0]}; valid: deep")
    if "deep" in args and not isinstance(args["deep"], bool):
        raise ValidationError("args.deep", "must be true or false", args["deep"])
    return args


def _check_none(args: dict[str, Any]) -> dict[str, Any]:
    if args:
        raise ValidationError("args", "this kind takes no arguments")
    return args


_DEEP: Final = (Param("deep", "also certificates, disk and database use (slower)", kind="bool"),)

STATS_SERVER: Final = TaskKind(
    name="stats.server",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Read load, memory, disks, services, pending reboot and clock (one round)",
    steps=(Step("server", _server_step),),
    max_attempts=1,
    check_args=_check_none,
    sudo=True,
)

STATS_SITES: Final = TaskKind(
    name="stats.sites",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Probe the server's sites; deep: true adds certificates, disk and database use",
    steps=(Step("sites", _sites_step),),
    max_attempts=1,
    check_args=_check_deep,
    sudo=True,
    params=_DEEP,
)

STATS_ACCESS: Final = TaskKind(
    name="stats.access",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Aggregate the new lines of the server's access logs on the server",
    steps=(Step("access logs", _access_step),),
    max_attempts=1,
    check_args=_check_none,
    sudo=True,
)

STATS_COLLECT: Final = TaskKind(
    name="stats.collect",
    target=TargetKind.SERVER,
    idempotent=True,
    description="Server, site probes and access logs in one task (run every minute)",
    steps=(
        Step("server", _server_step),
        Step("sites", _sites_step),
        Step("access logs", _access_step),
    ),
    max_attempts=1,
    check_args=_check_deep,
    sudo=True,
    params=_DEEP,
)

STATS_ROLLUP: Final = TaskKind(
    name="stats.rollup",
    target=TargetKind.CONTROL,
    idempotent=True,
    description="Roll statistics up per hour and drop what is past retention",
    steps=(Step("rollup", _rollup_step),),
    max_attempts=1,
    check_args=_check_none,
)

STATS_KINDS: Final = (STATS_SERVER, STATS_SITES, STATS_ACCESS, STATS_COLLECT, STATS_ROLLUP)


async def collect_many(
    db: Database,
    servers: Sequence[Server],
    transport_for: Any,
    *,
    timeout: float,
    limit: int = 16,
) -> list[CollectReport]:
    """Collect ``servers`` concurrently (at most ``limit`` at once) within ``timeout``
    seconds in all; a server not done by then keeps its previous statistics and its
    report says it timed out."""
    gate = asyncio.Semaphore(max(1, limit))
    reports: dict[str, CollectReport] = {}

    async def one(server: Server) -> None:
        async with gate:
            transport = transport_for(server)
            reports[server.name] = await collect_server_stats(db, transport, server)

    tasks = [asyncio.create_task(one(s)) for s in servers]
    if tasks:
        done, pending = await asyncio.wait(tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            exc = task.exception()
            if exc is not None and not isinstance(exc, asyncio.CancelledError):
                raise exc
    out = []
    for server in servers:
        report = reports.get(server.name)
        if report is None:
            report = CollectReport(
                server.name, error=f"no answer within {timeout:g} s", timed_out=True
            )
        out.append(report)
    return out

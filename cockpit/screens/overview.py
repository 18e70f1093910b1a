"""The overview: "is anything wrong?" in one list (``0`` or ``:overview``).

It is a list of *findings*, one per line: an area (servers, sites, clients…), what was
counted, how many, how bad, and where ``enter`` takes you (the servers of one
environment, the disabled sites…). A verdict line above sums it up.

Findings come from *sections* (:data:`SECTIONS`): async functions of the core that return
findings. Tasks come first (failed, of unknown outcome, interrupted, queued with no worker
to run them: ``enter`` opens ``:tasks failed``…); statistics plug in as sections when the
core offers them; a section that fails shows as a finding of its own, never as a crash or
a blank.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

from rich.text import Text
from textual.widgets import Static

from cockpit.core import Cockpit, SiteFilter
from cockpit.messages import OpenView, Scope, ViewName
from cockpit.model import SiteStatus
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.servers import env_tone
from cockpit.textsafe import sanitize
from cockpit.widgets.header import environment_tone
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, Tone, cell

__all__ = ["SECTIONS", "Finding", "OverviewScreen", "Section", "collect", "verdict"]

Severity = Literal["bad", "warn", "unknown", "ok", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the overview."""

    area: str
    label: str
    count: int | None
    severity: Severity = "info"
    note: str = ""
    view: ViewName | None = None  # where enter goes
    scope: Scope | None = None
    environment: str | None = None  # the accent of the line

    @property
    def key(self) -> str:
        return f"{self.area}:{self.label}"


#: A section of the overview: the findings of one area.
Section = Callable[[Cockpit], Awaitable[list[Finding]]]

#: Clients with a sites quota that are checked; beyond, the check is skipped (and says so).
QUOTA_CHECK_LIMIT = 200


async def _site_count(cockpit: Cockpit, where: SiteFilter) -> int:
    return (await cockpit.sites_page(where, limit=0)).total


async def servers_section(cockpit: Cockpit) -> list[Finding]:
    servers = await cockpit.servers()
    found = [Finding("servers", "all", len(servers), "info", view="servers")]
    by_env: dict[str, int] = {}
    for server in servers:
        by_env[server.environment] = by_env.get(server.environment, 0) + 1
    for env in sorted(by_env, key=lambda e: (environment_tone(e) != "prod", e)):
        found.append(
            Finding(
                "servers",
                f"env {env}",
                by_env[env],
                "info",
                view="servers",
                scope=Scope("environment", env),
                environment=env,
            )
        )
    health = await cockpit.server_health()
    by_health: dict[str, list[str]] = {}
    for server in servers:
        state = health[server.name].health.value if server.name in health else "unknown"
        by_health.setdefault(state, []).append(server.name)
    notes: dict[str, tuple[Severity, str]] = {
        "unknown": ("unknown", "not checked yet: run 'cockpit server verify'"),
        "ok": ("ok", "the last verify passed"),
        "failed": ("bad", "a check failed: "),
        "unreachable": ("bad", "could not be reached: "),
    }
    for state in ("unreachable", "failed", "unknown", "ok"):
        names = by_health.get(state)
        if not names:
            continue
        severity, note = notes[state]
        if severity == "bad":
            note += ", ".join(sorted(names)[:5]) + (" …" if len(names) > 5 else "")
        found.append(
            Finding("servers", f"health {state}", len(names), severity, note, view="servers")
        )
    return found


async def sites_section(cockpit: Cockpit) -> list[Finding]:
    total = await _site_count(cockpit, SiteFilter())
    found = [Finding("sites", "all", total, "info", view="sites")]
    statuses: tuple[tuple[SiteStatus, Severity], ...] = (
        (SiteStatus.ENABLED, "ok"),
        (SiteStatus.DISABLED, "warn"),
        (SiteStatus.DELETED, "info"),
    )
    for status, severity in statuses:
        count = await _site_count(cockpit, SiteFilter(status=status))
        if count or status is SiteStatus.ENABLED:
            found.append(
                Finding(
                    "sites",
                    status.value,
                    count,
                    severity if count else "info",
                    view="sites",
                    scope=Scope("status", status.value),
                )
            )
    environments = sorted({s.environment for s in await cockpit.servers()})
    for env in sorted(environments, key=lambda e: (environment_tone(e) != "prod", e)):
        count = await _site_count(cockpit, SiteFilter(environment=env))
        if count:
            found.append(
                Finding(
                    "sites",
                    f"env {env}",
                    count,
                    "info",
                    view="sites",
                    scope=Scope("environment", env),
                    environment=env,
                )
            )
    return found


async def platforms_section(cockpit: Cockpit) -> list[Finding]:
    platforms = await cockpit.platforms()
    found = [Finding("platforms", "all", len(platforms), "info", view="platforms")]
    locked = sum(1 for p in platforms if p.locked)
    if locked:
        found.append(
            Finding("platforms", "locked", locked, "info", "no new sites on them", "platforms")
        )
    return found


async def clients_section(cockpit: Cockpit) -> list[Finding]:
    clients = await cockpit.clients()
    found = [Finding("clients", "all", len(clients), "info", view="clients")]
    quoted = [c for c in clients if "sites" in c.quotas]
    if len(quoted) > QUOTA_CHECK_LIMIT:
        found.append(
            Finding(
                "clients",
                "sites quota",
                None,
                "unknown",
                f"not checked: more than {QUOTA_CHECK_LIMIT} clients have a quota",
            )
        )
        return found
    for client in quoted:
        used = await _site_count(cockpit, SiteFilter(client=client.name))
        quota = client.quotas["sites"]
        if used > quota:
            found.append(
                Finding(
                    "clients",
                    f"{client.name} over quota",
                    used,
                    "bad",
                    f"{used:,} sites, quota {quota:,}",
                    view="sites",
                    scope=Scope("client", client.name),
                )
            )
    if quoted and len(found) == 1:
        found.append(
            Finding("clients", "sites quota", len(quoted), "ok", "every client within its quota")
        )
    return found


#: Failed tasks younger than this are a problem; older ones are history.
RECENT_FAILURES = 24 * 3600.0
#: Failed tasks read to tell recent failures from old ones (newest first).
FAILED_LOOKUP = 500


async def tasks_section(cockpit: Cockpit) -> list[Finding]:
    """Failed, unknown and interrupted tasks; what runs and waits; whether a worker runs."""
    from cockpit.engine import TaskState

    engine = cockpit.tasks
    counts = await engine.counts()
    worker = engine.worker_status()
    found: list[Finding] = []
    failed = counts[TaskState.FAILED]
    if failed:
        recent = [
            t
            for t in await engine.tasks(state=TaskState.FAILED, limit=FAILED_LOOKUP)
            if t.finished_at is not None and t.finished_at > time.time() - RECENT_FAILURES
        ]
        note = f"{len(recent):,} in the last 24 h" if recent else "none in the last 24 h"
        if recent:
            newest = recent[0]
            note += f"; newest: {newest.kind} on {newest.target.key}"
        found.append(
            Finding(
                "tasks",
                "failed",
                failed,
                "bad" if recent else "info",
                note,
                view="tasks",
                scope=Scope("state", "failed"),
            )
        )
    notes: tuple[tuple[TaskState, Severity, str], ...] = (
        (TaskState.UNKNOWN, "bad", "outcome unknown: look at the target, then retry"),
        (TaskState.INTERRUPTED, "warn", "a worker died under them: look, then retry"),
        (TaskState.RUNNING, "info", "running now"),
    )
    for state, severity, note in notes:
        if counts[state]:
            found.append(
                Finding(
                    "tasks",
                    state.value,
                    counts[state],
                    severity,
                    note,
                    view="tasks",
                    scope=Scope("state", state.value),
                )
            )
    queued = counts[TaskState.QUEUED]
    if queued:
        severity_q: Severity = "info" if worker.running else "bad"
        note = "waiting for the worker" if worker.running else "no worker runs: they wait"
        found.append(
            Finding(
                "tasks",
                "queued",
                queued,
                severity_q,
                note,
                view="tasks",
                scope=Scope("state", "queued"),
            )
        )
    found.append(
        Finding(
            "tasks",
            "worker",
            None,
            "ok" if worker.running else "info",
            f"runs (pid {worker.pid})" if worker.running else "none runs for this store",
            view="tasks",
        )
    )
    found.insert(0, Finding("tasks", "all", sum(counts.values()), "info", view="tasks"))
    return found


#: The overview's sections, in order. The statistics issue adds disk, TLS expiry and error
#: rates.
SECTIONS: list[Section] = [
    tasks_section,
    servers_section,
    sites_section,
    platforms_section,
    clients_section,
]


async def collect(cockpit: Cockpit, sections: Sequence[Section] | None = None) -> list[Finding]:
    """Every section's findings; a section that fails becomes a finding saying so."""
    found: list[Finding] = []
    for section in sections if sections is not None else SECTIONS:
        try:
            found.extend(await section(cockpit))
        except Exception as exc:
            area = section.__name__.removesuffix("_section")
            detail = str(exc) or type(exc).__name__
            found.append(Finding(area, "cannot check", None, "bad", detail))
    return found


_SEVERITY_TONE: dict[Severity, Tone | None] = {
    "bad": "bad",
    "warn": "warn",
    "unknown": "muted",
    "ok": "good",
    "info": None,
}


def verdict(findings: Sequence[Finding]) -> Text:
    """One line: the problems, the warnings, what is unknown — or that all is well."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    bad = [f for f in findings if f.severity == "bad"]
    warn = [f for f in findings if f.severity == "warn"]
    unknown = [f for f in findings if f.severity == "unknown"]
    if bad:
        text.append(f" ✗ {len(bad)} problem{'s' if len(bad) > 1 else ''}: ", "bold reverse")
        text.append("; ".join(sanitize(f"{f.area} {f.label}") for f in bad))
    elif warn:
        text.append(" ! nothing broken, but: ", "bold")
        text.append("; ".join(sanitize(f"{f.count:,} {f.area} {f.label}") for f in warn))
    else:
        text.append(" ✓ nothing wrong found", "bold")
    if unknown:
        parts = [
            sanitize((f"{f.count:,} " if f.count else "") + f"{f.area} {f.label}") for f in unknown
        ]
        text.append("   · " + "; ".join(parts), "italic")
    return text


COLUMNS: tuple[Column, ...] = (
    Column("area", "Area", width=9, priority=100),
    Column("check", "Check", width=14, max_width=32, flex=1, priority=90),
    Column("count", "Count", width=7, priority=95, align="right"),
    Column("note", "Note", width=10, max_width=48, flex=2, priority=50),
)


def finding_row(finding: Finding) -> Row:
    tone = _SEVERITY_TONE[finding.severity]
    label_tone = env_tone(finding.environment) if finding.environment else None
    count = "-" if finding.count is None else f"{finding.count:,}"
    note = finding.note
    return Row(
        key=finding.key,
        cells=(
            cell(finding.area, "muted"),
            cell(finding.label, label_tone or tone),
            cell(count, tone),
            cell(note),
        ),
        environment=finding.environment,
    )


class OverviewScreen(ResourceScreen):
    """Is anything wrong? Counts by health, environment and status; enter opens the list."""

    VIEW = "overview"
    FILTER_HINT = "text in any column · ~regex · ! excludes · esc clears"

    SECTIONS: ClassVar[Sequence[Section] | None] = None  # None: the module's SECTIONS

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self.findings: dict[str, Finding] = {}

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            found = await collect(self.cockpit, self.SECTIONS)
            self.findings = {f.key: f for f in found}
            self.call_later(self._show_verdict, found)
            return [finding_row(f) for f in found]

        return ListSource(load, COLUMNS)

    def _show_verdict(self, findings: list[Finding]) -> None:
        summary = self.query_one("#summary", Static)
        summary.add_class("-shown")
        summary.update(verdict(findings))

    def open_row(self, row: Row) -> None:
        finding = self.findings.get(row.key)
        if finding is not None and finding.view is not None:
            self.post_message(OpenView(finding.view, scope=finding.scope))

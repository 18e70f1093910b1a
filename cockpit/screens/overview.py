"""The overview: "is anything wrong?" in one list. The app opens on it (``0``,
``:overview``).

It is a list of *findings*, one per line: a state (``✗ bad``, ``! warn``, ``? unknown``,
``✓ ok``, ``· info``), an area (tasks, servers, services, disks, sites, clients…), what was
counted, how many, a note, and where ``enter`` takes you (the failed tasks, the servers of
one environment, the sites failing their probe…). Problems come first; a verdict line
above sums them up, and a line of keys leads to the dashboard and to every list.

Findings come from *sections* (:data:`SECTIONS`): async functions of the core that return
findings. Tasks come first (failed, of unknown outcome, interrupted, queued with no worker
to run them, and whether a worker runs), then the on-call status (``cockpit status``'s
evaluation, through :meth:`Cockpit.status`: unreachable servers, services down, sites
failing their probe, certificates, disks, failed tasks not re-run, quotas), then counts of
the inventory. A section that fails shows as a finding of its own, never as a crash or a
blank.

The overview paints at once, each section's line saying it is being checked (``… reading``,
and the verdict starts with ``… checking``: not yet known is neither a problem nor all
well). The sections are then read in a worker, one after the other (the tasks, which need
the task engine the app makes at start in a thread, after the inventory; a *slow* one, as
the on-call evaluation is, last), and each one's findings are shown as soon as
they are in: the other lines do not wait for the slow one; keys work meanwhile. The
overview reads them again every :attr:`OverviewScreen.POLL_SECONDS` while it is the
current view (spaced out when a read is slow), and replaces only the lines that changed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final, Literal

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from cockpit.core import Cockpit, SiteFilter
from cockpit.messages import OpenView, Scope, ViewName
from cockpit.model import SiteStatus
from cockpit.screens.resource import Fresh, ResourceScreen
from cockpit.textsafe import sanitize
from cockpit.widgets.header import env_tone, environment_tone
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, Tone, cell

if TYPE_CHECKING:
    from cockpit.status.evaluate import Problem

__all__ = [
    "SECTIONS",
    "STATUS_CHECKS",
    "Finding",
    "OverviewScreen",
    "Section",
    "collect",
    "problem_target",
    "read_section",
    "status_section",
    "verdict",
]

Severity = Literal["bad", "warn", "unknown", "ok", "info"]

#: The order findings are listed in: problems first.
SEVERITY_RANK: Final[dict[Severity, int]] = {"bad": 0, "warn": 1, "unknown": 2, "ok": 3, "info": 4}
#: How a severity reads in the State column (glyph and word: meaning never rests on colour).
SEVERITY_TEXT: Final[dict[Severity, str]] = {
    "bad": "✗ bad",
    "warn": "! warn",
    "unknown": "? unknown",
    "ok": "✓ ok",
    "info": "· info",
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the overview.

    ``enter`` opens ``view`` (narrowed to ``scope``, or the detail of ``key``); a finding of
    the on-call status (``check``) opens its one subject, or the list of its ``problems``.
    """

    area: str
    label: str
    count: int | None
    severity: Severity = "info"
    note: str = ""
    view: ViewName | None = None  # where enter goes
    scope: Scope | None = None
    environment: str | None = None  # the accent of the line
    detail: str | None = None  # the key of a detail view (a task's id, a site's domain)
    check: str | None = None  # an on-call check (``site.probe``)
    problems: tuple[Problem, ...] = field(default=(), compare=False)
    pending: bool = False  # a section still being read

    @property
    def key(self) -> str:
        return f"{self.area}:{self.label}"

    def target(self) -> OpenView | None:
        """What ``enter`` on this finding opens (None: nothing)."""
        if len(self.problems) == 1:
            return problem_target(self.problems[0])
        if self.check is not None:
            return OpenView("problems", scope=Scope("check", self.check))
        if self.view is not None:
            return OpenView(self.view, scope=self.scope, key=self.detail)
        return None


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
            Finding(
                "servers",
                f"health {state}",
                len(names),
                severity,
                note,
                view="servers",
                scope=Scope("health", state),
            )
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
    from cockpit.engine import Engine, TaskState

    def made() -> Engine:
        return cockpit.tasks

    # The engine is made on first use, importing every task plugin (half a second or
    # more, as the app does at start in a thread of its own): off the event loop.
    engine = await asyncio.to_thread(made)
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


# -- the on-call status ---------------------------------------------------------------------

#: How each check of ``cockpit status`` reads in the overview: its area and label (in the
#: order lines of the same severity are listed).
STATUS_CHECKS: Final[dict[str, tuple[str, str]]] = {
    "server.unreachable": ("servers", "unreachable"),
    "service.down": ("services", "down"),
    "site.probe": ("sites", "probe failing"),
    "task.failed": ("tasks", "failed, not re-run"),
    "disk.full": ("disks", "full"),
    "disk.filling": ("disks", "filling up"),
    "disk.inodes": ("disks", "inodes"),
    "site.certificate": ("sites", "certificate"),
    "service.config": ("services", "config test fails"),
    "server.reboot": ("servers", "reboot pending"),
    "server.clock": ("servers", "clock off"),
    "server.stale": ("servers", "no statistics"),
    "server.timeout": ("servers", "timed out"),
    "quota.bandwidth": ("quotas", "bandwidth"),
    "quota.disk": ("quotas", "disk"),
}

_CHECK_ORDER: Final = {check: n for n, check in enumerate(STATUS_CHECKS)}

#: A Nagios state of ``cockpit status`` as an overview severity.
_STATE_SEVERITY: Final[dict[str, Severity]] = {
    "CRITICAL": "bad",
    "WARNING": "warn",
    "UNKNOWN": "unknown",
    "OK": "ok",
}


def now() -> float:
    """The moment the on-call status is evaluated at (pinned by snapshots)."""
    return time.time()


def _subject(problem: Problem) -> str:
    return f"task {problem.subject}" if problem.kind == "task" else problem.subject


def problem_target(problem: Problem) -> OpenView | None:
    """Where a problem of the on-call status leads: its server's detail, its site's, its
    task's, its client's sites."""
    kind = problem.kind
    if kind == "site":
        return OpenView("site", key=problem.subject)
    if kind == "task":
        return OpenView("task", key=problem.subject) if problem.subject.isdigit() else None
    if kind == "client":
        return OpenView("sites", scope=Scope("client", problem.subject))
    if kind in ("server", "service", "mount"):
        server = problem.server or problem.subject.partition(":")[0]
        return OpenView("platforms", scope=Scope("server", server)) if server else None
    return None


async def status_section(cockpit: Cockpit) -> list[Finding]:
    """What ``cockpit status`` finds, one line per check: how many, the worst state, the
    first subject and why."""
    report = await cockpit.status(now=now(), sites=False)
    by_check: dict[str, list[Problem]] = {}
    for problem in report.problems:  # (worst first)
        by_check.setdefault(problem.check, []).append(problem)
    found: list[Finding] = []
    for check, problems in by_check.items():
        area, label = STATUS_CHECKS.get(check, (problems[0].kind, check))
        severity = min(
            (_STATE_SEVERITY.get(p.state.name, "unknown") for p in problems),
            key=SEVERITY_RANK.__getitem__,
        )
        first = problems[0]
        note = f"{_subject(first)}: {first.reason}"
        if len(problems) > 1:
            note += f" (+{len(problems) - 1:,} more)"
        found.append(
            Finding(
                area, label, len(problems), severity, note, check=check, problems=tuple(problems)
            )
        )
    if not found:
        found.append(
            Finding("status", "on-call check", None, "ok", "cockpit status finds nothing wrong")
        )
    return sorted(
        found, key=lambda f: (SEVERITY_RANK[f.severity], _CHECK_ORDER.get(f.check or "", 99))
    )


#: The evaluation is the costliest read (every check of the fleet): it is read after the
#: other sections (see :func:`slow`).
status_section.slow = True  # type: ignore[attr-defined]


def slow(section: Section) -> bool:
    """Whether a section is slow to read (it sets ``slow = True`` on itself): the overview
    reads it after the others, so their lines do not wait for it."""
    return bool(getattr(section, "slow", False))


#: The tasks need the task engine, which the app makes at start in a thread (importing
#: every task plugin): they are read after the inventory, which does not wait for it.
tasks_section.engine = True  # type: ignore[attr-defined]


def reading_rank(section: Section) -> int:
    """When a section is read: the inventory first, then what needs the task engine, then
    the slow ones (their lines show in the order of :data:`SECTIONS` all the same)."""
    return 2 if slow(section) else 1 if getattr(section, "engine", False) else 0


#: The overview's sections, in order. Statistics plug in here as the core offers them.
SECTIONS: list[Section] = [
    tasks_section,
    status_section,
    servers_section,
    sites_section,
    platforms_section,
    clients_section,
]


def section_area(section: Section) -> str:
    return getattr(section, "__name__", "section").removesuffix("_section")


async def read_section(cockpit: Cockpit, section: Section) -> list[Finding]:
    """A section's findings; a section that fails is a finding saying so."""
    try:
        return await section(cockpit)
    except Exception as exc:
        detail = str(exc) or type(exc).__name__
        return [Finding(section_area(section), "cannot check", None, "bad", detail)]


async def collect(cockpit: Cockpit, sections: Sequence[Section] | None = None) -> list[Finding]:
    """Every section's findings; a section that fails becomes a finding saying so."""
    found: list[Finding] = []
    for section in sections if sections is not None else SECTIONS:
        found.extend(await read_section(cockpit, section))
    return found


def pending(section: Section) -> Finding:
    """The line of a section not read yet."""
    area = section_area(section)
    what = "the on-call status" if area == "status" else area
    return Finding(area, "checking…", None, "unknown", f"reading {what}", pending=True)


_SEVERITY_TONE: dict[Severity, Tone | None] = {
    "bad": "bad",
    "warn": "warn",
    "unknown": "muted",
    "ok": "good",
    "info": None,
}


def verdict(findings: Sequence[Finding]) -> Text:
    """One line: the problems, the warnings, what is unknown — or that all is well.

    While a section is being read the line starts by saying so, and says what is known
    "so far": a section not read yet is neither a problem nor all well."""
    text = Text(no_wrap=True, overflow="ellipsis", end="")
    checking = [f for f in findings if f.pending]
    findings = [f for f in findings if not f.pending]
    bad = [f for f in findings if f.severity == "bad"]
    warn = [f for f in findings if f.severity == "warn"]
    unknown = [f for f in findings if f.severity == "unknown"]
    so_far = " so far" if checking else ""
    if checking:
        text.append(" … checking " + ", ".join(f.area for f in checking) + "…", "bold italic")
        if bad or warn:
            text.append("  ")
    if bad:
        many = "s" if len(bad) > 1 else ""
        text.append(f" ✗ {len(bad)} problem{many}{so_far}: ", "bold reverse")
        text.append("; ".join(sanitize(f"{f.area} {f.label}") for f in bad))
    elif warn:
        text.append(f" ! nothing broken{so_far}, but: ", "bold")
        text.append("; ".join(_counted(f) for f in warn))
    elif not checking:
        text.append(" ✓ nothing wrong found", "bold")
    if bad and warn:
        text.append("   ! " + "; ".join(_counted(f) for f in warn))
    if unknown:
        text.append("   · " + "; ".join(_counted(f) for f in unknown), "italic")
    return text


def _counted(finding: Finding) -> str:
    count = f"{finding.count:,} " if finding.count else ""
    return sanitize(f"{count}{finding.area} {finding.label}")


COLUMNS: tuple[Column, ...] = (
    Column("severity", "State", width=9, priority=97, sort="severity"),
    Column("area", "Area", width=8, max_width=10, priority=100, sort="area"),
    Column("check", "Check", width=12, max_width=24, flex=1, priority=90, sort="check"),
    Column("count", "Count", width=6, priority=95, align="right", sort="count"),
    Column("note", "Note", width=10, max_width=80, flex=3, priority=50, sort="note"),
)


def finding_row(finding: Finding, position: int = 0) -> Row:
    """A finding as a row; ``position`` keeps the sections' order within a severity."""
    tone = _SEVERITY_TONE[finding.severity]
    label_tone = env_tone(finding.environment) if finding.environment else None
    count = "-" if finding.count is None else f"{finding.count:,}"
    rank = SEVERITY_RANK[finding.severity]
    return Row(
        key=finding.key,
        cells=(
            cell("… reading" if finding.pending else SEVERITY_TEXT[finding.severity], tone),
            cell(finding.area, "muted"),
            cell(finding.label, label_tone or tone),
            cell(count, tone),
            cell(finding.note),
        ),
        environment=finding.environment,
        order=(
            ("severity", rank * 1_000_000 + position),
            ("count", -1 if finding.count is None else finding.count),
        ),
    )


#: The views the line of keys under the verdict leads to, by binding id.
VIEW_KEYS: Final = (
    "view.dashboard",
    "view.servers",
    "view.platforms",
    "view.sites",
    "view.clients",
    "view.backups",
    "view.tasks",
    "view.schedules",
)


class OverviewScreen(ResourceScreen):
    """Is anything wrong? Problems first, then counts by health, environment and status;
    ``enter`` opens what a line counts."""

    VIEW = "overview"
    FILTER_HINT = "text in any column · ~regex · ! excludes · esc clears"
    DEFAULT_SORT = "severity"
    #: Seconds between two reads of the sections while the overview is the current view.
    POLL_SECONDS: ClassVar[float] = 10.0
    #: A slow read spaces the next ones out (ten times what it took), up to this.
    MAX_POLL_SECONDS: ClassVar[float] = 120.0

    SECTIONS: ClassVar[Sequence[Section] | None] = None  # None: the module's SECTIONS

    DEFAULT_CSS = """
    OverviewScreen > #view-keys {
        height: auto;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    class SectionRead(Message):
        """One section's findings are in (``index`` -1: every section was read)."""

        def __init__(self, index: int, findings: list[Finding]) -> None:
            self.index = index
            self.findings = findings
            super().__init__()

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self.sections: list[Section] = list(
            self.SECTIONS if self.SECTIONS is not None else SECTIONS
        )
        self.results: list[list[Finding] | None] = [None] * len(self.sections)
        #: The findings shown, by key.
        self.findings: dict[str, Finding] = {}
        #: How many times every section was read.
        self.reads = 0
        self._next_read = 0.0
        self._reader: Worker[None] | None = None
        self._read_on_resume = False

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            yield widget
            if widget.id == "summary":
                yield Static("", id="view-keys", markup=False)

    def current(self) -> list[Finding]:
        """What is known now: each section's findings, or a line saying it is being read."""
        found: list[Finding] = []
        for section, result in zip(self.sections, self.results, strict=True):
            found.extend(result if result is not None else [pending(section)])
        return found

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            return [finding_row(f, n) for n, f in enumerate(self.current())]

        return ListSource(load, COLUMNS)

    def on_mount(self) -> None:
        super().on_mount()
        self._show(self.current())
        self.query_one("#view-keys", Static).update(self.view_keys())
        # the first frame (every section "checking…") is painted before any is read
        self.call_after_refresh(self._first_read)
        self.set_interval(self.POLL_SECONDS, self._tick)

    def on_screen_suspend(self) -> None:
        """Another view on top: a read under way is stopped (it would hold the store's
        reader from the view on top), and made again when the overview is back."""
        reader = self._reader
        if reader is not None and reader.state in (WorkerState.PENDING, WorkerState.RUNNING):
            reader.cancel()
            self._read_on_resume = True

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.query_one("#view-keys", Static).update(self.view_keys())
        if self._read_on_resume:
            self._read_on_resume = False
            self.read()

    def view_keys(self) -> Text:
        """``8 dashboard  1 servers  2 platforms…``, from the bindings in force (a keymap
        override shows as it is)."""
        bound: dict[str, str] = {}
        for active in self.active_bindings.values():
            binding = active.binding
            if binding.id in VIEW_KEYS and binding.id not in bound:
                bound[binding.id] = self.app.get_key_display(binding)
        text = Text(end="")
        for binding_id in VIEW_KEYS:
            if binding_id in bound:
                if text:
                    text.append("  ")
                text.append(f" {bound[binding_id]} ", "bold reverse")
                text.append(" " + binding_id.removeprefix("view."))
        if text:
            text.append("   ")
        text.append(" : ", "bold reverse")
        text.append(" command")
        return text

    # -- reading the sections ----------------------------------------------------------------

    def _first_read(self) -> None:
        if self.is_current:
            self.read()
        else:
            self._read_on_resume = True

    def _tick(self) -> None:
        if not self.is_current or time.monotonic() < self._next_read:
            return
        self.read()

    def read(self) -> None:
        """Read every section again (unless a read is under way: never two at once)."""
        reader = self._reader
        if reader is not None and reader.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return
        self._reader = self._read_sections()

    @work(name="reading the overview", group="overview", exit_on_error=False)
    async def _read_sections(self) -> None:
        started = time.monotonic()
        order = sorted(range(len(self.sections)), key=lambda i: reading_rank(self.sections[i]))
        for index in order:
            found = await read_section(self.cockpit, self.sections[index])
            self.post_message(self.SectionRead(index, found))
        took = time.monotonic() - started
        wait = min(self.MAX_POLL_SECONDS, took * 10) - self.POLL_SECONDS
        self._next_read = time.monotonic() + max(0.0, wait)
        self.post_message(self.SectionRead(-1, []))

    def on_overview_screen_section_read(self, message: OverviewScreen.SectionRead) -> None:
        message.stop()
        if message.index < 0:
            self.reads += 1
            return
        self.results[message.index] = message.findings
        found = self.current()
        self._show(found)
        self.apply_fresh(Fresh([finding_row(f, n) for n, f in enumerate(found)], complete=True))

    def _show(self, found: Iterable[Finding]) -> None:
        found = list(found)
        self.findings = {f.key: f for f in found}
        summary = self.query_one("#summary", Static)
        summary.add_class("-shown")
        summary.update(verdict(found))

    def action_refresh(self) -> None:
        self._next_read = 0.0
        self.read()

    def open_row(self, row: Row) -> None:
        finding = self.findings.get(row.key)
        target = finding.target() if finding is not None else None
        if target is not None:
            self.post_message(target)

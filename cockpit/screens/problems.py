"""The problems of the on-call status, one per line: what the overview's lines count when
they count more than one (``enter`` on ``sites probe failing`` lists the sites failing
their probe).

Each problem is read from :meth:`Cockpit.status` (the evaluation ``cockpit status`` runs:
from the store, no connection to any server): its state, the check, the subject, its
server, why, and since when. ``enter`` opens the subject (a site's detail, a server's, a
task's, a client's sites). The list is read again every :attr:`ProblemsScreen.LIVE_SECONDS`
while it is the current view (less often when the evaluation is slow) and replaces only
the lines that changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from rich.text import Text

from cockpit.messages import Scope
from cockpit.screens import overview
from cockpit.screens.overview import SEVERITY_RANK, STATUS_CHECKS, problem_target
from cockpit.screens.resource import ResourceScreen, ScopeSummary
from cockpit.screens.servers import env_tone
from cockpit.screens.tasks import clock
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, Tone, cell

if TYPE_CHECKING:
    from cockpit.status.evaluate import Problem

__all__ = ["ProblemsScreen", "problem_key", "problem_row"]

COLUMNS: tuple[Column, ...] = (
    Column("state", "State", width=10, priority=100, sort="state"),
    Column("check", "Check", width=12, max_width=20, priority=60, sort="check"),
    Column("subject", "Subject", width=14, max_width=40, flex=1, priority=95, sort="subject"),
    Column("server", "Server", width=6, max_width=16, priority=70, sort="server"),
    Column("reason", "Reason", width=12, flex=3, priority=90, sort="reason"),
    Column("since", "Since", width=14, priority=40, sort="since"),
)

_STATE: Final[dict[str, tuple[str, Tone | None, int]]] = {
    "CRITICAL": ("✗ CRITICAL", "bad", SEVERITY_RANK["bad"]),
    "WARNING": ("! WARNING", "warn", SEVERITY_RANK["warn"]),
    "UNKNOWN": ("? UNKNOWN", "muted", SEVERITY_RANK["unknown"]),
    "OK": ("✓ OK", "good", SEVERITY_RANK["ok"]),
}


def problem_key(problem: Problem) -> str:
    return f"{problem.check} {problem.kind} {problem.subject}"


def problem_row(problem: Problem, environment: str | None = None, position: int = 0) -> Row:
    """A problem as a row; ``position`` keeps the evaluation's order within a state."""
    text, tone, rank = _STATE.get(problem.state.name, ("? UNKNOWN", "muted", 2))
    subject = f"task {problem.subject}" if problem.kind == "task" else problem.subject
    env = env_tone(environment) if environment else None
    return Row(
        key=problem_key(problem),
        cells=(
            cell(text, tone),
            cell(problem.check, "muted"),
            cell(subject),
            cell(problem.server or "-", env if problem.server else "muted"),
            cell(problem.reason),
            cell(clock(problem.since), "muted"),
        ),
        environment=environment,
        order=(("state", rank * 1_000_000 + position), ("since", problem.since or 0.0)),
    )


class ProblemsScreen(ResourceScreen):
    """The on-call status's problems, all or those of one check (``site.probe``)."""

    VIEW = "problems"
    DEFAULT_SORT = "state"
    FILTER_HINT = "text in any column · ~regex · ! excludes · esc clears"
    LIVE_SECONDS = 10.0

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self.problems: dict[str, Problem] = {}
        #: When the problems shown were evaluated (None: not yet).
        self.evaluated_at: float | None = None

    @property
    def noun(self) -> str:
        if self.scope is not None:
            area, label = STATUS_CHECKS.get(self.scope.name, ("", self.scope.name))
            return f"problems: {area} {label}".rstrip()
        return "problems"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        check = self.scope.name if self.scope is not None else None

        async def load() -> list[Row]:
            report = await self.cockpit.status(now=overview.now(), sites=False)
            envs = {s.name: s.environment for s in await self.cockpit.servers()}
            problems = [p for p in report.problems if check is None or p.check == check]
            self.problems = {problem_key(p): p for p in problems}
            self.evaluated_at = report.generated_at
            return [
                problem_row(p, envs.get(p.server) if p.server else None, n)
                for n, p in enumerate(problems)
            ]

        return ListSource(load, COLUMNS)

    async def summary(self) -> ScopeSummary | None:
        scope = self.scope
        if scope is None:
            return None
        area, label = STATUS_CHECKS.get(scope.name, ("", scope.name))
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{area} {label}".strip(), "bold")
        text.append(f"  ({sanitize(scope.name)}, as 'cockpit status' reports it)")
        return ScopeSummary(text)

    def open_row(self, row: Row) -> None:
        problem = self.problems.get(row.key)
        target = problem_target(problem) if problem is not None else None
        if target is not None:
            self.post_message(target)

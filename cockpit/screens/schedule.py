"""A schedule's detail view (``enter`` on the schedules list, ``:schedule NAME``): its cron
line and what it means, the kind it queues, on which targets, with which arguments,
whether it is paused, when it runs next, who made it, and its last runs (the batches it
queued, with how their tasks went).

``p`` pauses or resumes it (the engine's ``pause_schedule``, as ``cockpit schedule
pause`` does), ``b`` opens the batch it queued last; ``tab`` goes to its last runs, where
``enter`` opens one; vim keys scroll the detail. (The engine has no "run now": a schedule
runs when its cron line says.)

The last runs are the batches among the newest tasks of the schedule's kind that it
queued (:data:`TASKS_SEARCHED`): the engine keeps no list of a schedule's batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from rich.console import RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from cockpit.engine import Batch, Schedule, TaskState
from cockpit.messages import OpenView
from cockpit.screens.backup import Sheet
from cockpit.screens.base import changing
from cockpit.screens.detail import DetailScreen
from cockpit.screens.tasks import clock
from cockpit.store import NotFoundError
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, ListSource, ResourceTable, Row, cell
from cockpit.widgets.scrolling import scroll_bindings

__all__ = ["Run", "ScheduleDetail", "ScheduleScreen", "cron_meaning", "render_schedule"]

#: How many of its last runs the view shows.
RUNS: Final = 8
#: The newest tasks of the schedule's kind searched for its batches.
TASKS_SEARCHED: Final = 500

_DAYS: Final = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

RUN_COLUMNS: Final = (
    Column("batch", "Batch", width=6, priority=100, align="right"),
    Column("queued", "Queued", width=14, priority=90),
    Column("tasks", "Tasks", width=6, priority=80, align="right"),
    Column("ok", "Ok", width=6, priority=70, align="right"),
    Column("failed", "Failed", width=6, priority=75, align="right"),
    Column("left", "Left", width=6, priority=60, align="right"),
    Column("label", "Label", width=10, flex=1, priority=40),
)

_BAD: Final = (TaskState.FAILED, TaskState.INTERRUPTED, TaskState.UNKNOWN)
_LEFT: Final = (TaskState.QUEUED, TaskState.RUNNING)


def _number(field: str, low: int, high: int) -> int | None:
    return int(field) if field.isascii() and field.isdigit() and low <= int(field) <= high else None


def cron_meaning(cron: str) -> str | None:
    """A plain reading of the common cron lines (``0 3 * * *``: every day at 03:00), or
    None for one this does not read (the line itself says it then)."""
    fields = cron.split()
    if len(fields) != 5:
        return None
    minute, hour, dom, month, dow = fields
    if month != "*":
        return None
    if minute.startswith("*/") and hour == dom == dow == "*":
        every = _number(minute[2:], 1, 59)
        return f"every {every} minutes" if every is not None else None
    m = _number(minute, 0, 59)
    if m is None:
        return None
    if hour == "*" and dom == dow == "*":
        return f"every hour at minute {m}"
    h = _number(hour, 0, 23)
    if h is None:
        return None
    at = f"{h:02d}:{m:02d}"
    if dom == "*" and dow == "*":
        return f"every day at {at}"
    if dom == "*":
        day = _number(dow, 0, 7)
        return f"every {_DAYS[day % 7]} at {at}" if day is not None else None
    if dow == "*":
        date = _number(dom, 1, 31)
        return f"on day {date} of every month at {at}" if date is not None else None
    return None


@dataclass(frozen=True, slots=True)
class Run:
    """A batch the schedule queued, and how many of its tasks are in each state."""

    batch: Batch
    counts: dict[TaskState, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, *states: TaskState) -> int:
        return sum(self.counts.get(s, 0) for s in states)


@dataclass(frozen=True, slots=True)
class ScheduleDetail:
    schedule: Schedule | None
    runs: Sequence[Run] = ()


def run_row(run: Run) -> Row:
    failed = run.count(*_BAD)
    return Row(
        key=str(run.batch.id),
        cells=(
            cell(str(run.batch.id)),
            cell(clock(run.batch.created_at)),
            cell(f"{run.total:,}"),
            cell(f"{run.count(TaskState.SUCCEEDED):,}", "good"),
            cell(f"{failed:,}", "bad" if failed else "muted"),
            cell(f"{run.count(*_LEFT):,}", "warn" if run.count(*_LEFT) else "muted"),
            cell(run.batch.label, "muted"),
        ),
    )


def render_schedule(name: str, detail: ScheduleDetail) -> RenderableType:
    """The detail (stored values are sanitised, never read as markup)."""
    schedule = detail.schedule
    if schedule is None:
        return Text(f"No schedule {sanitize(name)} in the store (removed meanwhile?)", "italic")
    sheet = Sheet()
    heading, field = sheet.heading, sheet.field

    heading(f"Schedule {schedule.name}")
    meaning = cron_meaning(schedule.cron)
    field("Cron", schedule.cron + (f"  ({meaning}, local time)" if meaning else ""), "bold")
    field("Kind", schedule.kind)
    for n, target in enumerate(schedule.targets):
        field(f"Targets ({len(schedule.targets)})" if n == 0 else "", target)
    if not schedule.targets:
        field("Targets", "none")
    if schedule.args:
        for n, (key, value) in enumerate(sorted(schedule.args.items())):
            shown = value if isinstance(value, str) else json.dumps(value)
            field("Args" if n == 0 else "", f"{key}={shown}")
    else:
        field("Args", "none")
    field(
        "State",
        "paused" if schedule.paused else "active",
        "bold reverse" if schedule.paused else "",
    )
    field("Next run", "- (paused)" if schedule.paused else clock(schedule.next_run))
    field("Last run", clock(schedule.last_run))
    field("By", schedule.created_by or "-")

    heading(f"Last runs ({len(detail.runs)})")
    if not detail.runs:
        sheet.note("it has not run yet")
    else:
        sheet.note("tab: the list below · enter opens a batch", "dim")
    return sheet.render()


class ScheduleScreen(DetailScreen[ScheduleDetail]):
    """One schedule, read in a worker when the view opens (and on ctrl+r)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("schedule"),
        Binding("p", "toggle_pause", "Pause/resume", id="schedule.pause"),
        Binding("b", "open_batch", "Last batch", id="schedule.batch"),
    ]

    DEFAULT_CSS = """
    ScheduleScreen #detail {
        height: 2fr;
        border: round $primary;
        border-title-color: $text-primary;
        &.-paused { border: round $warning; }
    }
    ScheduleScreen #body { padding: 0 1; }
    ScheduleScreen #runs {
        height: 1fr;
        max-height: 12;
        border: round $primary 60%;
        border-title-color: $text-primary;
        &:focus { border: round $primary; }
    }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.schedule_name = name

    @property
    def view_key(self) -> str:
        return f"schedule={self.schedule_name}"

    @property
    def crumb(self) -> str:
        return f"schedule {sanitize(self.schedule_name)}"

    @property
    def shown(self) -> Schedule | None:
        return self.detail.schedule if self.detail is not None else None

    def compose_below(self) -> ComposeResult:
        async def runs() -> list[Row]:
            return [run_row(r) for r in self.detail.runs] if self.detail else []

        yield ResourceTable(
            RUN_COLUMNS,
            ListSource(runs, RUN_COLUMNS),
            noun="runs",
            empty_text="no batch queued by this schedule",
            id="runs",
        )

    def mounted(self) -> None:
        self.query_one("#runs").border_title = Text("last runs")

    @work(name="loading the schedule", group="schedule-detail", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        engine = self.cockpit.tasks
        schedules = await engine.schedules()
        schedule = next((s for s in schedules if s.name == self.schedule_name), None)
        if schedule is None:
            self.post_message(self.Loaded(ScheduleDetail(None)))
            return
        ids: dict[int, None] = {}
        for task in await engine.tasks(kind=schedule.kind, limit=TASKS_SEARCHED):
            if task.schedule_id == schedule.id and task.batch_id is not None:
                ids.setdefault(task.batch_id, None)
        if schedule.last_batch is not None:
            ids.setdefault(schedule.last_batch, None)
        runs: list[Run] = []
        for batch_id in sorted(ids, reverse=True)[:RUNS]:
            batch = await self.cockpit.batch_info(batch_id)
            if batch is not None:
                runs.append(Run(batch, await engine.batch_counts(batch_id)))
        self.post_message(self.Loaded(ScheduleDetail(schedule, runs)))

    def on_screen_resume(self) -> None:
        """Back from a batch: its counts (and the schedule) read again."""
        super().on_screen_resume()
        if self.detail is not None:
            self.load()

    def render_detail(self, detail: ScheduleDetail) -> RenderableType:
        return render_schedule(self.schedule_name, detail)

    def detail_shown(self, detail: ScheduleDetail) -> None:
        schedule = detail.schedule
        self.query_one("#detail").set_class(schedule is not None and schedule.paused, "-paused")
        self.query_one("#runs", ResourceTable).reload()

    @on(ResourceTable.Selected, "#runs")
    def _run_chosen(self, event: ResourceTable.Selected) -> None:
        event.stop()
        self.post_message(OpenView("batch", key=event.row.key))

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        schedule = self.shown
        if action == "toggle_pause":
            return schedule is not None
        if action == "open_batch":
            return schedule is not None and schedule.last_batch is not None
        return super().check_action(action, parameters)

    def action_open_batch(self) -> None:
        schedule = self.shown
        if schedule is not None and schedule.last_batch is not None:
            self.post_message(OpenView("batch", key=str(schedule.last_batch)))

    @changing("pausing or resuming a schedule")
    def action_toggle_pause(self) -> None:
        schedule = self.shown
        if schedule is not None:
            self.set_paused(schedule.name, not schedule.paused)

    @work(name="pausing the schedule", group="schedule-action", exit_on_error=False)
    async def set_paused(self, name: str, paused: bool) -> None:
        try:
            await self.cockpit.tasks.pause_schedule(name, paused)
        except NotFoundError as exc:
            self.notify(str(exc), title="Schedule", severity="warning", markup=False)
        else:
            what = "paused" if paused else "resumed"
            self.notify(f"schedule {name} {what}", title="Schedule", markup=False)
        self.load()

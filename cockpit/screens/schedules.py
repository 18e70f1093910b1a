"""The schedules view (``7``, ``:schedules``): recurring tasks in cron syntax.

``p`` pauses or resumes the schedule under the cursor, ``d`` removes it (after a
confirmation), ``enter`` opens its detail (its last runs among them). Adding a schedule is done with
``cockpit schedule add`` (a cron line and selectors are easier to type there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType

from cockpit.engine import Schedule
from cockpit.messages import OpenView, Scope
from cockpit.screens.base import changing
from cockpit.screens.confirm import ConfirmTaskScreen, Danger, TaskConfirmation
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.tasks import clock
from cockpit.store import NotFoundError
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, cell

__all__ = ["SchedulesScreen", "schedule_row"]

COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", width=10, max_width=30, priority=100, sort="name"),
    Column("cron", "Cron", width=11, max_width=20, priority=90, sort="cron"),
    Column("kind", "Kind", width=11, max_width=24, priority=85, sort="kind"),
    Column("targets", "Targets", width=8, max_width=40, flex=2, priority=70, sort="targets"),
    Column("state", "State", width=6, priority=95, sort="state"),
    Column("next", "Next run", width=14, priority=80, sort="next"),
    Column("last", "Last run", width=14, priority=50, sort="last"),
    Column("by", "By", width=6, max_width=16, priority=40, sort="by"),
)


def schedule_row(schedule: Schedule) -> Row:
    targets = " ".join(schedule.targets)
    return Row(
        key=schedule.name,
        cells=(
            cell(schedule.name),
            cell(schedule.cron),
            cell(schedule.kind),
            cell(targets),
            cell("paused" if schedule.paused else "active", "warn" if schedule.paused else "good"),
            cell("-" if schedule.paused else clock(schedule.next_run)),
            cell(clock(schedule.last_run), "muted"),
            cell(schedule.created_by or "-", "muted"),
        ),
    )


class SchedulesScreen(ResourceScreen):
    """Every schedule: its cron line, kind, targets, whether it is paused, when it runs."""

    VIEW = "schedules"
    DEFAULT_SORT = "name"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("p", "toggle_pause", "Pause/resume", id="schedules.pause"),
        Binding("d", "remove", "Remove", id="schedules.remove"),
    ]

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self.schedules: dict[str, Schedule] = {}

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            schedules = await self.cockpit.tasks.schedules()
            self.schedules = {s.name: s for s in schedules}
            return [schedule_row(s) for s in schedules]

        return ListSource(load, COLUMNS)

    def on_screen_resume(self) -> None:
        """Back from a schedule's detail (paused there?): the list is read again."""
        super().on_screen_resume()
        if self.is_mounted and self.table.row_count is not None:
            self.table.reload()

    def current_schedule(self) -> Schedule | None:
        row = self.table.current_row
        return self.schedules.get(row.key) if row is not None else None

    def open_row(self, row: Row) -> None:
        if row.key in self.schedules:
            self.post_message(OpenView("schedule", key=row.key))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_pause", "remove"):
            if self.typing():
                return False
            if self.is_mounted and self.table.row_count == 0:
                return None
        return super().check_action(action, parameters)

    @changing("pausing or resuming a schedule")
    def action_toggle_pause(self) -> None:
        schedule = self.current_schedule()
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
        self.table.reload()

    @changing("removing a schedule")
    def action_remove(self) -> None:
        schedule = self.current_schedule()
        if schedule is None:
            return
        request = TaskConfirmation(
            "remove schedule",
            1,
            noun="schedules",
            danger=Danger.CAUTION,
            description=(
                f"{schedule.name}: {schedule.kind} at '{schedule.cron}' on "
                f"{' '.join(schedule.targets)}. Tasks it queued stay."
            ),
            targets=[schedule.name],
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.remove_schedule(schedule.name)

        self.app.push_screen(ConfirmTaskScreen(request), answered)

    @work(name="removing the schedule", group="schedule-action", exit_on_error=False)
    async def remove_schedule(self, name: str) -> None:
        try:
            await self.cockpit.tasks.remove_schedule(name)
        except NotFoundError as exc:
            self.notify(str(exc), title="Schedule", severity="warning", markup=False)
        else:
            self.notify(f"schedule {name} removed", title="Schedule", markup=False)
        self.table.reload()

"""A batch's progress: its tasks with their states, live, and the counts above them
("287 ok, 3 failed, 10 running").

Opened after a batch is queued from a list (and by ``b`` on a task, ``:batch ID``).
``enter`` (or ``l``) opens the log of the task under the cursor, ``L`` the merged log of
the whole batch, ``d`` the task's detail; ``c`` cancels the task under the cursor, ``C`` cancels the rest
of the batch (every task still queued or running, after a confirmation), ``R`` queues
the failed ones again (a retry is a new task in the same batch: the failed task stays
failed and the counts say how many retries there are).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from cockpit.engine import Batch, Task, TaskError, TaskState
from cockpit.messages import OpenView
from cockpit.screens.base import changing
from cockpit.screens.confirm import ConfirmTaskScreen, Danger, TaskConfirmation
from cockpit.screens.tasks import COLUMNS, TaskListScreen, clock, open_batch_log, open_task_log
from cockpit.store import NotFoundError
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, Row

__all__ = ["RETRYABLE", "BatchScreen"]

#: The states ``R`` queues again: failed, and interrupted by a dead worker.
RETRYABLE = (TaskState.FAILED, TaskState.INTERRUPTED)
#: Newest tasks of a batch looked at for retries (retries are the newest tasks of a batch).
RETRY_LOOKUP = 200


class BatchScreen(TaskListScreen):
    """The tasks of one batch, live."""

    VIEW = "batch"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("C", "cancel_batch", "Cancel rest", id="batch.cancel"),
        Binding("R", "retry_failed", "Retry failed", id="batch.retry"),
        Binding("L", "batch_log", "Batch log", id="batch.log"),
        Binding("d", "open_task", "Detail", id="batch.detail"),
    ]

    def __init__(self, batch_id: int, *, filter_text: str | None = None) -> None:
        super().__init__(filter_text=filter_text)
        self._batch_id = batch_id
        self.batch_record: Batch | None = None
        self._retries = 0
        self._retries_at = -1

    @property
    def batch_id(self) -> int:
        return self._batch_id

    @property
    def view_key(self) -> str:
        return f"batch={self._batch_id}"

    @property
    def crumb(self) -> str:
        return f"batch {self._batch_id}"

    @property
    def noun(self) -> str:
        return "tasks in this batch"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def open_row(self, row: Row) -> None:
        """``enter``: the task's log, followed live."""
        if row.key.isdigit():
            open_task_log(self, int(row.key))

    def action_batch_log(self) -> None:
        open_batch_log(self, self._batch_id)

    def action_open_task(self) -> None:
        row = self.table.current_row
        if row is not None:
            self.post_message(OpenView("task", key=row.key))

    async def poll_extra(self, counts: Mapping[TaskState, int]) -> object:
        """The batch itself (once) and how many of its tasks are retries (read again only
        when the batch grew: a retry adds a task)."""
        engine = self.cockpit.tasks
        if self.batch_record is None:
            self.batch_record = await self.cockpit.batch_info(self._batch_id)
        total = sum(counts.values())
        if total != self._retries_at:
            newest = await engine.tasks(batch=self._batch_id, limit=RETRY_LOOKUP)
            self._retries = sum(1 for task in newest if task.retry_of is not None)
            self._retries_at = total
        return self._retries

    def summary_line(self, counts: Mapping[TaskState, int], extra: object) -> Text:
        batch = self.batch_record
        line = Text(no_wrap=True, overflow="ellipsis", end="")
        if batch is None:
            line.append(f"no batch {self._batch_id} in the store", "italic")
            return line
        line.append(sanitize(batch.label), "bold")
        line.append(f" by {sanitize(batch.queued_by)} at {clock(batch.created_at)}\n")
        line.append_text(super().summary_line(counts, None))
        retries = extra if isinstance(extra, int) else 0
        if retries:
            more = "+" if retries >= RETRY_LOOKUP else ""
            line.append(f"  · {retries}{more} retries")
        total = sum(counts.values())
        done = total - counts.get(TaskState.QUEUED, 0) - counts.get(TaskState.RUNNING, 0)
        if total:
            line.append(f"  · {done * 100 // total}% done", "bold" if done == total else "")
        return line

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_batch":
            return False
        counts = self.counts or {}
        if action == "cancel_batch":
            active = counts.get(TaskState.QUEUED, 0) + counts.get(TaskState.RUNNING, 0)
            return None if not active else not self.typing()
        if action == "retry_failed":
            failed = sum(counts.get(state, 0) for state in RETRYABLE)
            return None if not failed else not self.typing()
        return super().check_action(action, parameters)

    def on_task_list_screen_polled(self, message: TaskListScreen.Polled) -> None:
        before = self.counts
        super().on_task_list_screen_polled(message)
        if before is None or _active(before) != _active(message.counts):
            self.refresh_bindings()

    @changing("cancelling the rest of a batch")
    def action_cancel_batch(self) -> None:
        counts = self.counts or {}
        active = counts.get(TaskState.QUEUED, 0) + counts.get(TaskState.RUNNING, 0)
        request = TaskConfirmation(
            "cancel",
            active,
            noun="tasks",
            danger=Danger.CAUTION,
            description=(
                "Queued tasks leave the queue; running ones are stopped and rolled back by "
                "their worker."
            ),
            targets=self._active_targets,
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel_rest()

        self.app.push_screen(ConfirmTaskScreen(request), answered)

    async def _active_targets(self) -> Sequence[str]:
        tasks = await self._tasks_in((TaskState.QUEUED, TaskState.RUNNING))
        return [f"{t.id} {t.kind} {t.target.key} ({t.state.value})" for t in tasks]

    async def _tasks_in(self, states: Sequence[TaskState]) -> list[Task]:
        return await self.cockpit.tasks.tasks(state=list(states), batch=self._batch_id, limit=-1)

    @work(name="cancelling the batch", group="task-action", exit_on_error=False)
    async def cancel_rest(self) -> None:
        tasks = await self._tasks_in((TaskState.QUEUED, TaskState.RUNNING))
        cancelled, asked = await self.cockpit.cancel_tasks([t.id for t in tasks])
        self.notify(
            f"batch {self._batch_id}: {cancelled} cancelled, {asked} running asked to stop",
            title="Cancel",
            markup=False,
        )
        self.poll()

    @changing("retrying failed tasks")
    def action_retry_failed(self) -> None:
        counts = self.counts or {}
        failed = sum(counts.get(state, 0) for state in RETRYABLE)
        request = TaskConfirmation(
            "retry",
            failed,
            noun="failed tasks",
            danger=Danger.CAUTION,
            description="Each failed or interrupted task is queued again as a new task.",
            targets=self._failed_targets,
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self.retry_failed()

        self.app.push_screen(ConfirmTaskScreen(request), answered)

    async def _failed_targets(self) -> Sequence[str]:
        return [f"{t.id} {t.kind} {t.target.key}" for t in await self._retryable()]

    async def _retryable(self) -> list[Task]:
        """The failed tasks of the batch that have not been retried yet."""
        tasks = await self._tasks_in(RETRYABLE)
        retried = {
            t.retry_of
            for t in await self.cockpit.tasks.tasks(batch=self._batch_id, limit=-1)
            if t.retry_of is not None
        }
        return [t for t in tasks if t.id not in retried]

    @work(name="retrying failed tasks", group="task-action", exit_on_error=False)
    async def retry_failed(self) -> None:
        queued = 0
        problems: list[str] = []
        for task in await self._retryable():
            try:
                await self.cockpit.tasks.retry(task.id)
                queued += 1
            except (TaskError, NotFoundError) as exc:
                problems.append(str(exc))
        self.cockpit_app.ensure_worker()
        note = f"batch {self._batch_id}: {queued} tasks queued again"
        if problems:
            note += f"; {len(problems)} not: {problems[0]}"
        self.notify(
            note, title="Retry", markup=False, severity="warning" if problems else "information"
        )
        self.poll()


def _active(counts: Mapping[TaskState, int]) -> tuple[bool, bool]:
    active = counts.get(TaskState.QUEUED, 0) + counts.get(TaskState.RUNNING, 0)
    failed = sum(counts.get(state, 0) for state in RETRYABLE)
    return bool(active), bool(failed)

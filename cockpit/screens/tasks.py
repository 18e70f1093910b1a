"""The tasks view (``6``, ``:tasks``, ``:tasks failed``), the audit trail (``:audit``), and
what they share with a batch's progress view: task rows, a paged source, the live refresh.

Tasks are listed newest first, a page at a time from the core (a batch of 100,000 tasks
costs one page per screenful). A ``/`` filter or a sort by another column than the id
works on the newest :attr:`TaskSource.WINDOW` tasks of the list, in memory, and the
summary says so.

The list is *live*: every :attr:`TaskListScreen.POLL_SECONDS` the view asks the core for
the state of the tasks on screen and for the counts by state (two small reads). A row
whose task changed state is read again and replaced in place; the list is read again
only when tasks were added or removed, or left the state the list is narrowed to.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from cockpit.engine import FINAL_STATES, Task, TaskError, TaskState
from cockpit.messages import OpenView, Scope, ScopeKind
from cockpit.screens.base import ViewScreen, changing
from cockpit.screens.resource import ResourceScreen
from cockpit.store import NotFoundError
from cockpit.widgets.resource_table import Cell, Column, Query, ResourceTable, Row, Tone, cell

if TYPE_CHECKING:
    from cockpit.core import Cockpit

__all__ = [
    "STATE_TONE",
    "AuditScreen",
    "TaskListScreen",
    "TaskSource",
    "TasksScreen",
    "counts_text",
    "now",
    "task_row",
]


def now() -> float:
    """The clock durations of running tasks are measured against (pinned by snapshots)."""
    return time.time()


STATE_TONE: Final[Mapping[TaskState, Tone | None]] = {
    TaskState.QUEUED: "muted",
    TaskState.RUNNING: "accent",
    TaskState.SUCCEEDED: "good",
    TaskState.FAILED: "bad",
    TaskState.CANCELLED: "warn",
    TaskState.INTERRUPTED: "bad",
    TaskState.UNKNOWN: "bad",
}

#: The order states are counted in ("287 ok, 3 failed, 10 running"), and their words.
COUNT_ORDER: Final = (
    (TaskState.SUCCEEDED, "ok"),
    (TaskState.FAILED, "failed"),
    (TaskState.INTERRUPTED, "interrupted"),
    (TaskState.UNKNOWN, "unknown"),
    (TaskState.CANCELLED, "cancelled"),
    (TaskState.RUNNING, "running"),
    (TaskState.QUEUED, "queued"),
)


def counts_text(counts: Mapping[TaskState, int]) -> str:
    """``287 ok, 3 failed, 10 running`` (states with no task left out)."""
    parts = [f"{counts.get(state, 0):,} {word}" for state, word in COUNT_ORDER if counts.get(state)]
    return ", ".join(parts) or "none"


def counts_line(counts: Mapping[TaskState, int], what: str = "tasks") -> Text:
    """The counts as a styled line: failures in bold, nothing made up."""
    total = sum(counts.values())
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(f"{total:,} {what if total != 1 else what.removesuffix('s')}", "bold")
    out.append(": ")
    first = True
    for state, word in COUNT_ORDER:
        n = counts.get(state, 0)
        if not n:
            continue
        if not first:
            out.append(", ")
        first = False
        bad = state in (TaskState.FAILED, TaskState.INTERRUPTED, TaskState.UNKNOWN)
        out.append(f"{n:,} {word}", "bold" if bad else "")
    if first:
        out.append("none", "italic")
    return out


def clock(at: float | None) -> str:
    """A moment in local time, to the second (``05-01 03:00:12``); ``-`` for none."""
    if at is None:
        return "-"
    return datetime.fromtimestamp(at).strftime("%m-%d %H:%M:%S")


def seconds_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def took(task: Task) -> str:
    """How long the task ran (or has been running); ``-`` before it started."""
    if task.started_at is None:
        return "-"
    end = task.finished_at if task.finished_at is not None else now()
    return seconds_text(max(0.0, end - task.started_at))


def outcome(task: Task) -> str:
    """What a task is doing or how it ended, in a few words."""
    if task.state is TaskState.RUNNING:
        if task.cancel_requested:
            return "cancelling…"
        return f"step {task.step}" if task.step else "starting"
    if task.state is TaskState.QUEUED:
        if task.not_before > now():
            return f"waiting until {clock(task.not_before)}" + (
                f" ({task.result})" if task.result else ""
            )
        return "waiting for a worker"
    return task.result or "-"


def _cells(task: Task) -> dict[str, Cell]:
    tone = STATE_TONE.get(task.state)
    return {
        "id": cell(task.id, "muted"),
        "state": cell(task.state.value, tone),
        "kind": cell(task.kind),
        "target": cell(task.target.key),
        "server": cell(task.server or "-", "muted"),
        "by": cell(task.queued_by or "-"),
        "queued": cell(clock(task.created_at), "muted"),
        "took": cell(took(task)),
        "batch": cell(task.batch_id if task.batch_id is not None else "-", "muted"),
        "result": cell(outcome(task), "bad" if tone == "bad" else None),
    }


def task_row(task: Task, columns: Sequence[Column]) -> Row:
    """A task as a row of ``columns`` (its key: the task id)."""
    cells = _cells(task)
    return Row(key=str(task.id), cells=tuple(cells[c.key] for c in columns))


COLUMNS: tuple[Column, ...] = (
    Column("id", "ID", width=4, priority=80, align="right", sort="id"),
    Column("state", "State", width=9, priority=100, sort="state"),
    Column("kind", "Kind", width=11, max_width=24, priority=95, sort="kind"),
    Column("target", "Target", width=14, max_width=40, flex=2, priority=90, sort="target"),
    Column("server", "Server", width=6, max_width=16, priority=30, sort="server"),
    Column("by", "By", width=6, max_width=16, priority=78, sort="by"),
    Column("queued", "Queued", width=14, priority=60, sort="queued"),
    Column("took", "Took", width=6, priority=65, align="right", sort="took"),
    Column("result", "Result", width=10, max_width=60, flex=3, priority=75),
)

AUDIT_COLUMNS: tuple[Column, ...] = (
    Column("queued", "Queued", width=14, priority=100, sort="queued"),
    Column("by", "By", width=6, max_width=20, priority=95, sort="by"),
    Column("kind", "Kind", width=11, max_width=24, priority=90, sort="kind"),
    Column("target", "Target", width=14, max_width=40, flex=2, priority=85, sort="target"),
    Column("state", "State", width=9, priority=80, sort="state"),
    Column("batch", "Batch", width=5, priority=50, align="right", sort="batch"),
    Column("id", "ID", width=4, priority=60, align="right", sort="id"),
    Column("result", "Result", width=10, max_width=60, flex=2, priority=40),
)

_STATE_RANK: Final = {state: n for n, (state, _word) in enumerate(COUNT_ORDER)}

_SORT_KEYS: Final[dict[str, Callable[[Task], Any]]] = {
    "id": lambda t: t.id,
    "state": lambda t: (_STATE_RANK.get(t.state, 99), -t.id),
    "kind": lambda t: (t.kind, -t.id),
    "target": lambda t: (t.target.key, -t.id),
    "server": lambda t: (t.server, -t.id),
    "by": lambda t: (t.queued_by, -t.id),
    "queued": lambda t: (t.created_at, t.id),
    "took": lambda t: (t.duration if t.duration is not None else -1.0, t.id),
    "batch": lambda t: (t.batch_id or 0, t.id),
}


def open_task_log(screen: ViewScreen, task_id: int) -> None:
    """Open a task's log view (followed live while the task runs)."""
    from cockpit.screens.log import LogScreen

    screen.cockpit_app.show_view(LogScreen.for_task(task_id))


def open_batch_log(screen: ViewScreen, batch_id: int) -> None:
    """Open the merged log of a batch's tasks (each line prefixed with its task)."""
    from cockpit.screens.log import LogScreen

    screen.cockpit_app.show_view(LogScreen.for_batch(batch_id))


class TaskSource:
    """Tasks from the core, newest first, narrowed to states and/or one batch.

    With no filter and the id order it pages through the store; a filter or another
    order works on the newest :attr:`WINDOW` tasks, in memory.
    """

    WINDOW: ClassVar[int] = 10_000
    #: Tasks remembered by key (rows handed out), at most.
    REMEMBER: ClassVar[int] = 20_000

    def __init__(
        self,
        cockpit: Cockpit,
        columns: Sequence[Column],
        *,
        states: Sequence[TaskState] = (),
        batch: int | None = None,
    ) -> None:
        self.cockpit = cockpit
        self.columns = tuple(columns)
        self.states = tuple(states)
        self.batch = batch
        #: The tasks of the rows handed out, by row key.
        self.tasks: OrderedDict[str, Task] = OrderedDict()
        #: How many tasks the list had (all states in scope) when it was last read.
        self.store_total: int | None = None
        #: Whether the last fetch worked on the window (a filter or another order).
        self.windowed = False
        self._window: list[Task] | None = None
        self._last: tuple[Query, list[Task]] | None = None

    def invalidate(self) -> None:
        self._window = None
        self._last = None

    def paged(self, query: Query) -> bool:
        return not query.text and query.sort in (None, "id")

    def row(self, task: Task) -> Row:
        return task_row(task, self.columns)

    def remember(self, tasks: Sequence[Task]) -> None:
        for task in tasks:
            key = str(task.id)
            self.tasks[key] = task
            self.tasks.move_to_end(key)
        while len(self.tasks) > self.REMEMBER:
            self.tasks.popitem(last=False)

    async def counts(self) -> dict[TaskState, int]:
        """How many tasks of the list's batch (or of all) are in each state."""
        engine = self.cockpit.tasks
        if self.batch is not None:
            return await engine.batch_counts(self.batch)
        return await engine.counts()

    def total_of(self, counts: Mapping[TaskState, int]) -> int:
        if not self.states:
            return sum(counts.values())
        return sum(counts.get(state, 0) for state in self.states)

    async def _read(self, limit: int, offset: int) -> list[Task]:
        return await self.cockpit.tasks.tasks(
            state=list(self.states) or None, batch=self.batch, limit=limit, offset=offset
        )

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        total = self.total_of(await self.counts())
        self.store_total = total
        self.windowed = not self.paged(query)
        if not self.windowed:
            if query.descending or query.sort is None:
                tasks = await self._read(limit, offset)
            else:  # oldest first: the same pages, read from the other end
                start = max(0, total - offset - limit)
                tasks = list(reversed(await self._read(max(0, total - offset - start), start)))
            self.remember(tasks)
            return [self.row(t) for t in tasks], total
        if self._window is None:
            self._window = await self._read(self.WINDOW, 0)
            self._last = None
        if self._last is None or self._last[0] != query:
            self._last = (query, self._select(query, self._window))
        chosen = self._last[1]
        page = chosen[offset : offset + limit]
        self.remember(page)
        return [self.row(t) for t in page], len(chosen)

    def _haystack(self, task: Task) -> str:
        return " ".join(c.text for c in self.row(task).cells)

    def _select(self, query: Query, tasks: list[Task]) -> list[Task]:
        chosen = [t for t in tasks if query.matches(self._haystack(t))] if query.text else tasks
        key = _SORT_KEYS.get(query.sort or "id", _SORT_KEYS["id"])
        return sorted(chosen, key=key, reverse=query.descending)

    def matches(self, query: Query, key: str) -> bool:
        task = self.tasks.get(key)
        return task is not None and query.matches(self._haystack(task))


class TaskListScreen(ResourceScreen):
    """A live list of tasks: a paged source, the counts above it, row-level refresh."""

    DEFAULT_SORT = "id"
    DEFAULT_DESCENDING = True
    #: Seconds between two looks at the store.
    POLL_SECONDS: ClassVar[float] = 1.0
    MAX_POLL_SECONDS: ClassVar[float] = 5.0
    FILTER_HINT = "text in any column (newest 10,000 tasks) · ~regex · ! excludes · esc clears"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_task", "Cancel task", id="tasks.cancel"),
        Binding("r", "retry_task", "Retry task", id="tasks.retry"),
        Binding("b", "open_batch", "Batch", id="tasks.batch"),
        Binding("l", "open_log", "Log", id="tasks.log"),
    ]

    class Polled(Message):
        """What one look at the store found (posted by :meth:`TaskListScreen.poll`)."""

        def __init__(
            self,
            counts: dict[TaskState, int],
            changed: list[Task],
            gone: int,
            extra: object = None,
        ) -> None:
            self.counts = counts
            self.changed = changed
            self.gone = gone
            self.extra = extra
            super().__init__()

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self.task_source: TaskSource | None = None
        self.counts: dict[TaskState, int] | None = None
        #: How many looks at the store replaced rows in place, and how many read the list
        #: again (for tests and the curious).
        self.row_refreshes = 0
        self.list_reloads = 0
        self._shown_actions: tuple[bool | None, ...] = ()
        self._next_poll = 0.0
        self._poll_worker: Worker[None] | None = None
        self._poll_again = False

    # -- what subclasses provide ---------------------------------------------------------

    @property
    def scope_states(self) -> tuple[TaskState, ...]:
        if self.scope is not None and self.scope.kind == "state":
            return (TaskState(self.scope.name),)
        return ()

    @property
    def batch_id(self) -> int | None:
        return None

    def summary_line(self, counts: Mapping[TaskState, int], extra: object) -> Text:
        line = counts_line(counts)
        if self.scope_states:
            line.append(f"  · showing {self.scope.name if self.scope else ''}", "bold")
        source = self.task_source
        if source is not None and source.windowed:
            line.append(f"  · filter and sort over the newest {TaskSource.WINDOW:,}", "italic")
        worker = self.cockpit_app.worker_running
        if worker is False and counts.get(TaskState.QUEUED):
            line.append("  · no worker runs: queued tasks wait", "bold")
        return line

    async def poll_extra(self, counts: Mapping[TaskState, int]) -> object:
        """More to read on a look at the store (a batch's retries), given the counts."""
        return None

    # -- the list ----------------------------------------------------------------------------

    def source(self) -> TaskSource:
        self.task_source = TaskSource(
            self.cockpit, self.columns(), states=self.scope_states, batch=self.batch_id
        )
        return self.task_source

    def open_row(self, row: Row) -> None:
        self.post_message(OpenView("task", key=row.key))

    def on_mount(self) -> None:
        super().on_mount()
        self.set_interval(self.POLL_SECONDS, self._tick)
        self.poll()

    def current_task(self) -> Task | None:
        row = self.table.current_row
        if row is None or self.task_source is None:
            return None
        return self.task_source.tasks.get(row.key)

    # -- live ------------------------------------------------------------------------------

    def _tick(self) -> None:
        table = self.table
        if not self.is_current or table.row_count is None or table.is_loading:
            return
        if time.monotonic() < self._next_poll:
            return  # the last look was slow (a big store, a busy disk): look less often
        self.poll()

    def poll(self) -> None:
        """Look at the store now, or right after the look in flight (never two at once, and
        never one cancelled half-way)."""
        running = self._poll_worker
        if running is not None and running.state in (WorkerState.PENDING, WorkerState.RUNNING):
            self._poll_again = True
            return
        self._poll_again = False
        self._poll_worker = self._poll()

    @work(name="reading tasks", group="task-poll", exit_on_error=False)
    async def _poll(self) -> None:
        """One look at the store: the states of the tasks on screen, the counts."""
        source = self.task_source
        if source is None:
            return
        started = time.monotonic()
        keys = [row.key for row in self.table.visible_rows()]
        ids = [int(key) for key in keys if key.isdigit()]
        states = await self.cockpit.task_states(ids) if ids else {}
        counts = await source.counts()
        changed: list[Task] = []
        for task_id in ids:
            known = source.tasks.get(str(task_id))
            state = states.get(task_id)
            if known is None or state is None:
                continue
            if state is not known.state or state is TaskState.RUNNING:
                # A running task moves from step to step (and may be asked to cancel).
                fresh = await self.cockpit.tasks.task(task_id)
                if fresh is not None and fresh != known:
                    changed.append(fresh)
        gone = sum(1 for task_id in ids if task_id not in states)
        # A look that takes a tenth of the interval or more spaces the next ones out (up
        # to MAX_POLL_SECONDS apart): a huge store or a busy disk is not read non-stop.
        took_s = time.monotonic() - started
        wait = min(self.MAX_POLL_SECONDS, took_s * 10) - self.POLL_SECONDS
        self._next_poll = time.monotonic() + max(0.0, wait)
        extra = await self.poll_extra(counts)
        self.post_message(self.Polled(counts, changed, gone, extra))

    def on_task_list_screen_polled(self, message: TaskListScreen.Polled) -> None:
        message.stop()
        source = self.task_source
        if source is None or not self.is_mounted:
            return
        self.counts = message.counts
        table = self.table
        total = source.total_of(message.counts)
        scope = self.scope_states
        left = any(scope and task.state not in scope for task in message.changed)
        if source.store_total is not None and (total != source.store_total or message.gone or left):
            if not source.windowed and table.cursor_index > 0 and total > source.store_total:
                query = table.row_query
                if query.sort in (None, "id") and query.descending:
                    # New tasks went on top: the cursor stays on the task it was on.
                    table.cursor_index += total - source.store_total
            source.store_total = total
            self.list_reloads += 1
            table.reload()
        else:
            source.remember(message.changed)
            running = [
                task
                for row in table.visible_rows()
                if (task := source.tasks.get(row.key)) is not None
                and task.state is TaskState.RUNNING
            ]
            fresh = {task.id: task for task in [*running, *message.changed]}
            if message.changed:
                self.row_refreshes += 1
            table.update_rows([source.row(task) for task in fresh.values()])
        self._show_summary(self.summary_line(message.counts, message.extra))
        self._update_title()
        if self._poll_again:
            self.call_later(self.poll)

    def _show_summary(self, text: Text) -> None:
        summary = self.query_one("#summary", Static)
        summary.add_class("-shown")
        summary.update(text)

    def action_refresh(self) -> None:
        super().action_refresh()
        self.poll()

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("cancel_task", "retry_task", "open_batch", "open_log"):
            if self.typing():
                return False
            task = self.current_task() if self.is_mounted else None
            if task is None:
                return False
            if action == "cancel_task" and task.state not in (
                TaskState.QUEUED,
                TaskState.RUNNING,
            ):
                return False
            if action == "retry_task" and task.state not in FINAL_STATES:
                return False
            if action == "open_batch" and task.batch_id is None:
                return False
        return super().check_action(action, parameters)

    def _task_actions(self) -> tuple[bool | None, ...]:
        return tuple(
            self.check_action(action, ()) for action in ("cancel_task", "retry_task", "open_batch")
        )

    @on(ResourceTable.Highlighted)
    def _task_highlighted(self, event: ResourceTable.Highlighted) -> None:
        actions = self._task_actions()
        if actions != self._shown_actions:
            self._shown_actions = actions
            self.refresh_bindings()

    @changing("cancelling a task")
    def action_cancel_task(self) -> None:
        task = self.current_task()
        if task is not None:
            self.cancel_task(task.id)

    @changing("retrying a task")
    def action_retry_task(self) -> None:
        task = self.current_task()
        if task is not None:
            self.retry_task(task.id)

    def action_open_batch(self) -> None:
        task = self.current_task()
        if task is not None and task.batch_id is not None:
            self.post_message(OpenView("batch", key=str(task.batch_id)))

    def action_open_log(self) -> None:
        """The log of the task under the cursor, followed live."""
        task = self.current_task()
        if task is not None:
            open_task_log(self, task.id)

    @work(name="cancelling the task", group="task-action", exit_on_error=False)
    async def cancel_task(self, task_id: int) -> None:
        try:
            task = await self.cockpit.tasks.cancel(task_id)
        except (TaskError, NotFoundError) as exc:
            self.notify(str(exc), title="Cancel", severity="warning", markup=False)
            return
        done = "cancelled" if task.state is TaskState.CANCELLED else "asked to stop"
        self.notify(f"task {task_id} {done}", title="Cancel", markup=False)
        self.poll()

    @work(name="retrying the task", group="task-action", exit_on_error=False)
    async def retry_task(self, task_id: int) -> None:
        try:
            task = await self.cockpit.tasks.retry(task_id)
        except (TaskError, NotFoundError) as exc:
            self.notify(str(exc), title="Retry", severity="warning", markup=False)
            return
        self.cockpit_app.ensure_worker()
        self.notify(f"task {task_id} queued again as task {task.id}", title="Retry", markup=False)
        self.poll()


class TasksScreen(TaskListScreen):
    """Every task, or those in one state (``:tasks failed``), newest first."""

    VIEW = "tasks"
    SCOPES: ClassVar[tuple[ScopeKind, ...]] = ("state",)

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    @property
    def noun(self) -> str:
        return f"{self.scope.name} tasks" if self.scope is not None else "tasks"


class AuditScreen(TaskListScreen):
    """Who queued what, newest first (``:audit [WHO]`` filters on a name)."""

    VIEW = "audit"

    def columns(self) -> Sequence[Column]:
        return AUDIT_COLUMNS

    @property
    def noun(self) -> str:
        return "tasks queued"

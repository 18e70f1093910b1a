"""One task's detail: what, on which target, who queued it, its attempts and its steps
(each with its duration and outcome), its summary. Live while the task runs.

``l`` opens its log (followed live), ``c`` cancels it, ``r`` retries it, ``b`` opens its
batch, ``t`` its target (a site's detail, a server's, a platform's sites); vim keys scroll.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from cockpit.engine import Batch, StepRecord, StepState, TargetKind, Task, TaskError, TaskState
from cockpit.messages import OpenView, Scope
from cockpit.screens.base import changing
from cockpit.screens.detail import DetailScreen
from cockpit.screens.tasks import STATE_TONE, clock, open_task_log, outcome, seconds_text, took
from cockpit.store import NotFoundError
from cockpit.textsafe import sanitize
from cockpit.widgets.scrolling import scroll_bindings

__all__ = ["TaskDetail", "TaskScreen", "render_task"]

_TONE_STYLE = {"good": "bold", "bad": "bold reverse", "warn": "bold", "accent": "bold"}

_STEP_MARK = {
    StepState.RUNNING: "…",
    StepState.SUCCEEDED: "✓",
    StepState.FAILED: "✗",
    StepState.CANCELLED: "-",
    StepState.UNKNOWN: "?",
    StepState.ROLLED_BACK: "↺",
    StepState.ROLLBACK_FAILED: "✗",
}


@dataclass(frozen=True, slots=True)
class TaskDetail:
    task: Task | None
    steps: Sequence[StepRecord] = ()
    batch: Batch | None = None
    retried_by: Sequence[Task] = ()
    batch_size: int | None = None


def _step_took(step: StepRecord) -> str:
    from cockpit.screens import tasks

    end = step.finished_at if step.finished_at is not None else tasks.now()
    return seconds_text(max(0.0, end - step.started_at))


def render_task(task_id: int, detail: TaskDetail) -> Text:
    """The detail as plain text (stored values are never read as markup)."""
    out = Text(no_wrap=False)
    task = detail.task
    if task is None:
        out.append(f"No task {task_id} in the store (pruned meanwhile?)\n", "italic")
        return out

    def heading(title: str) -> None:
        out.append(f"{chr(10) if out.plain else ''}{title}\n", "bold underline")

    def field(label: str, value: str, style: str = "") -> None:
        out.append(f" {label:<11}", "bold")
        out.append(sanitize(value) + "\n", style)

    heading(f"Task {task.id}")
    field("Kind", task.kind, "bold")
    tone = STATE_TONE.get(task.state)
    state = task.state.value + (" (cancel asked)" if task.cancel_requested else "")
    field("State", state, _TONE_STYLE.get(tone or "", ""))
    field("Summary", outcome(task))
    field("Target", f"{task.target.kind} {task.target.key}")
    field("Server", task.server or "(the control host)")
    if task.args:
        field("Args", json.dumps(dict(task.args), sort_keys=True))

    heading("Queued")
    field("By", task.queued_by or "-", "bold")
    field("At", clock(task.created_at))
    batch = detail.batch
    if batch is not None:
        size = f" ({detail.batch_size:,} tasks)" if detail.batch_size is not None else ""
        field("Batch", f"{batch.id}  {batch.label}{size}")
    elif task.batch_id is not None:
        field("Batch", str(task.batch_id))
    if task.schedule_id is not None:
        field("Schedule", str(task.schedule_id))
    if task.retry_of is not None:
        field("Retry of", f"task {task.retry_of}")
    for retry in detail.retried_by:
        field("Retried as", f"task {retry.id} ({retry.state.value}, by {retry.queued_by})")

    heading("Run")
    field("Attempts", f"{task.attempt} of {task.max_attempts}")
    field("Started", clock(task.started_at))
    field("Finished", clock(task.finished_at))
    field("Took", took(task))
    if task.worker:
        field("Worker", task.worker)
    field("Idempotent", "yes" if task.idempotent else "no: never re-run blindly")

    attempts = sorted({s.attempt for s in detail.steps})
    heading(f"Steps ({len(attempts)} attempt{'s' if len(attempts) != 1 else ''})")
    if not detail.steps:
        out.append("   none started yet\n", "italic")
    for attempt in attempts:
        if len(attempts) > 1:
            out.append(f"  attempt {attempt}\n", "bold")
        for step in (s for s in detail.steps if s.attempt == attempt):
            mark = _STEP_MARK.get(step.state, " ")
            bad = step.state in (StepState.FAILED, StepState.ROLLBACK_FAILED, StepState.UNKNOWN)
            out.append(f"   {mark} ", "bold")
            out.append(sanitize(f"{step.idx + 1}. {step.name}"), "bold")
            out.append(f"  {step.state.value}", "bold reverse" if bad else "")
            out.append(f"  {_step_took(step)}")
            if step.detached:
                out.append("  (detached)", "dim")
            out.append("\n")
            if step.detail:
                out.append(f"      {sanitize(step.detail)}\n", "dim")
    return out


class TaskScreen(DetailScreen[TaskDetail]):
    """One task, read when the view opens and again every second while it runs."""

    POLL_SECONDS: ClassVar[float] = 1.0

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("task"),
        Binding("c", "cancel_task", "Cancel", id="task.cancel"),
        Binding("r", "retry_task", "Retry", id="task.retry"),
        Binding("b", "open_batch", "Batch", id="task.batch"),
        Binding("t", "open_target", "Target", id="task.target"),
        Binding("l", "open_log", "Log", id="task.log"),
    ]

    DEFAULT_CSS = """
    TaskScreen #detail { border: round $primary; border-title-color: $text-primary; }
    TaskScreen #detail.-failed { border: round $error; }
    TaskScreen #body { padding: 0 1; }
    """

    def __init__(self, task_id: int) -> None:
        super().__init__()
        self.task_id = task_id
        self._loading: Worker[None] | None = None

    @property
    def view_key(self) -> str:
        return f"task={self.task_id}"

    @property
    def crumb(self) -> str:
        return f"task {self.task_id}"

    @property
    def shown_task(self) -> Task | None:
        return self.detail.task if self.detail is not None else None

    def mounted(self) -> None:
        self.set_interval(self.POLL_SECONDS, self._tick)

    def _tick(self) -> None:
        task = self.shown_task
        loading = self._loading is not None and self._loading.state in (
            WorkerState.PENDING,
            WorkerState.RUNNING,
        )
        if self.is_current and not loading and (task is None or not task.state.final):
            self._loading = self.load()

    @work(name="loading the task", group="task-detail", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        engine = self.cockpit.tasks
        task = await engine.task(self.task_id)
        if task is None:
            self.post_message(self.Loaded(TaskDetail(None)))
            return
        steps = await engine.steps(self.task_id)
        batch = batch_size = None
        if task.batch_id is not None:
            batch = await self.cockpit.batch_info(task.batch_id)
            batch_size = sum((await engine.batch_counts(task.batch_id)).values())
        retried: list[Task] = []
        if task.state.final:
            later = await engine.tasks(target=task.target.key, kind=task.kind, limit=20)
            retried = [t for t in later if t.retry_of == task.id]
        self.post_message(self.Loaded(TaskDetail(task, steps, batch, retried, batch_size)))

    def render_detail(self, detail: TaskDetail) -> RenderableType:
        return render_task(self.task_id, detail)

    def detail_shown(self, detail: TaskDetail) -> None:
        task = detail.task
        bad = task is not None and STATE_TONE.get(task.state) == "bad"
        self.query_one("#detail").set_class(bad, "-failed")

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        task = self.shown_task
        if action in ("cancel_task", "retry_task", "open_batch", "open_target"):
            if task is None:
                return False
            if action == "cancel_task" and task.state not in (
                TaskState.QUEUED,
                TaskState.RUNNING,
            ):
                return False
            if action == "retry_task" and not task.state.final:
                return False
            if action == "open_batch" and task.batch_id is None:
                return False
            if action == "open_target" and task.target.kind is TargetKind.CONTROL:
                return False
        return super().check_action(action, parameters)

    @changing("cancelling a task")
    def action_cancel_task(self) -> None:
        self.cancel_task()

    @changing("retrying a task")
    def action_retry_task(self) -> None:
        self.retry_task()

    def action_open_batch(self) -> None:
        task = self.shown_task
        if task is not None and task.batch_id is not None:
            self.post_message(OpenView("batch", key=str(task.batch_id)))

    def action_open_log(self) -> None:
        open_task_log(self, self.task_id)

    def action_open_target(self) -> None:
        task = self.shown_task
        if task is None:
            return
        kind, key = task.target.kind, task.target.key
        if kind is TargetKind.SITE:
            self.post_message(OpenView("site", key=key))
        elif kind is TargetKind.SERVER:
            self.post_message(OpenView("platforms", scope=Scope("server", key)))
        elif kind is TargetKind.PLATFORM:
            self.post_message(OpenView("sites", scope=Scope("platform", key)))

    @work(name="cancelling the task", group="task-action", exit_on_error=False)
    async def cancel_task(self) -> None:
        try:
            task = await self.cockpit.tasks.cancel(self.task_id)
        except (TaskError, NotFoundError) as exc:
            self.notify(str(exc), title="Cancel", severity="warning", markup=False)
            return
        done = "cancelled" if task.state is TaskState.CANCELLED else "asked to stop"
        self.notify(f"task {self.task_id} {done}", title="Cancel", markup=False)
        self.load()

    @work(name="retrying the task", group="task-action", exit_on_error=False)
    async def retry_task(self) -> None:
        try:
            task = await self.cockpit.tasks.retry(self.task_id)
        except (TaskError, NotFoundError) as exc:
            self.notify(str(exc), title="Retry", severity="warning", markup=False)
            return
        self.cockpit_app.ensure_worker()
        self.notify(f"queued again as task {task.id}", title="Retry", markup=False)
        self.post_message(OpenView("task", key=str(task.id)))

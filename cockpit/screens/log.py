"""The log view: one task's log followed live, or the merged logs of a batch.

Open it with ``:log 42`` or ``:log batch 7``, or from another view::

    self.app.push_screen(LogScreen.for_task(task_id))
    self.app.push_screen(LogScreen.for_batch(batch_id))

(:meth:`cockpit.app.CockpitApp.show_view` does the same, going back to the view when it
is already open.)

A task's log is read from the store through the core (``Cockpit.tasks``): its last
lines (as many as the view holds), then :meth:`~cockpit.engine.Engine.follow_log` until
the task ends. A batch's tasks are read together: each task's last lines, merged by
time, then every round the lines of the tasks still running (a task that is queued has
none; one that has ended is read to its last line, once), each line prefixed with its
task's target.

Above the log, the task (kind, target, state, step, attempt, result) or the batch (its
tasks by state) is read again every second until it ends. ``/`` searches, ``&`` filters,
``s`` saves the whole log from the store (not only what the view holds) to a file,
written atomically; the view's own keys are in :class:`~cockpit.widgets.log_view.LogView`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static

from cockpit.engine import Batch, LogLine, Task, TaskState
from cockpit.fileio import write_atomic
from cockpit.screens.base import ViewScreen
from cockpit.textsafe import sanitize
from cockpit.widgets.log_view import DEFAULT_MAX_LINES, Grep, LogView, safe_text
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import FilterError, Query

__all__ = ["LogScreen", "render_batch", "render_task"]

LogKind = Literal["task", "batch"]

#: How each state shows (a glyph, so it reads without colour) and its style.
_STATE_LOOK: dict[TaskState, tuple[str, str]] = {
    TaskState.QUEUED: ("○", "dim"),
    TaskState.RUNNING: ("●", "bold"),
    TaskState.SUCCEEDED: ("✓", "bold green"),
    TaskState.FAILED: ("✗", "bold red"),
    TaskState.CANCELLED: ("⊘", "yellow"),
    TaskState.INTERRUPTED: ("!", "bold yellow"),
    TaskState.UNKNOWN: ("?", "bold yellow"),
}

#: Lines read from the store per query.
_PAGE = 5000


def render_task(task: Task, steps: Sequence[str] = ()) -> Text:
    """One line about a task: id, kind, target, state, step, attempt, result."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"task {task.id} ", "bold")
    out.append(sanitize(f"{task.kind} on {task.target}"))
    glyph, style = _STATE_LOOK.get(task.state, ("?", ""))
    out.append("  ")
    out.append(f"{glyph} {task.state.value}", style)
    if task.state is TaskState.RUNNING and task.step:
        where = f" {steps.index(task.step) + 1}/{len(steps)}" if task.step in steps else ""
        out.append(sanitize(f"  step{where} {task.step}"))
    if task.max_attempts > 1:
        out.append(f"  attempt {task.attempt}/{task.max_attempts}", "dim")
    if task.state.final and task.result:
        out.append("  ")
        out.append(sanitize(task.result).replace("\n", " "), style)
    return out


def render_batch(batch: Batch, counts: dict[TaskState, int]) -> Text:
    """One line about a batch: id, label, its tasks by state."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"batch {batch.id} ", "bold")
    out.append(sanitize(batch.label))
    total = sum(counts.values())
    out.append(f"  {total:,} task{'' if total == 1 else 's'}:")
    order = (
        TaskState.RUNNING,
        TaskState.QUEUED,
        TaskState.SUCCEEDED,
        TaskState.FAILED,
        TaskState.CANCELLED,
        TaskState.INTERRUPTED,
        TaskState.UNKNOWN,
    )
    shown = [state for state in order if counts.get(state)]
    for n, state in enumerate(shown):
        glyph, style = _STATE_LOOK[state]
        out.append("," if n else "")
        out.append(f" {glyph} {counts[state]:,} {state.value}", style)
    return out


def _labels(tasks: Sequence[Task]) -> dict[int, str]:
    """Each task's prefix in a merged view: its target's key (with the task id when two
    tasks of the batch share a target: a retry)."""
    seen: dict[str, int] = {}
    for task in tasks:
        seen[task.target.key] = seen.get(task.target.key, 0) + 1
    return {
        t.id: sanitize(t.target.key if seen[t.target.key] == 1 else f"{t.target.key}#{t.id}")
        for t in tasks
    }


class LogScreen(ViewScreen):
    """The log of one task (:meth:`for_task`) or the merged logs of a batch (:meth:`for_batch`)."""

    AUTO_FOCUS = "#log"

    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority bindings, like the lists' "/": what is typed right after goes to the bar.
        Binding("slash", "search", "Search", priority=True, id="log.search"),
        Binding("ampersand", "filter", "Filter", priority=True, id="log.filter"),
        Binding("s", "save", "Save", id="log.save"),
    ]

    DEFAULT_CSS = """
    LogScreen {
        & > LogView {
            border: round $primary 60%;
            border-title-color: $text-primary;
            border-title-style: bold;
            border-subtitle-color: $text-muted;
            &:focus { border: round $primary; }
        }
        & > #log-summary {
            height: 1;
            padding: 0 1;
            background: $panel;
            color: $foreground;
        }
    }
    """

    #: Seconds between two reads of the task's (or batch's) state.
    STATE_POLL: ClassVar[float] = 1.0

    class Summary(Message):
        """The task or batch was read again (for the line above the log)."""

        def __init__(self, text: Text, ended: bool) -> None:
            self.text = text
            self.ended = ended
            super().__init__()

    def __init__(
        self,
        kind: LogKind,
        ident: int,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        poll: float = 0.2,
    ) -> None:
        super().__init__()
        self.kind: LogKind = kind
        self.ident = ident
        self.max_lines = max_lines
        self.poll = poll
        self.opened = False  # the first lines are in (or the log cannot be read)
        self.ended = False
        #: How many tasks the batch has, as last read (a retry adds one).
        self.batch_size = 0
        self._save_confirm: Path | None = None

    @classmethod
    def for_task(cls, task_id: int, *, max_lines: int = DEFAULT_MAX_LINES) -> LogScreen:
        """The log of task ``task_id``, followed until the task ends."""
        return cls("task", task_id, max_lines=max_lines)

    @classmethod
    def for_batch(cls, batch_id: int, *, max_lines: int = DEFAULT_MAX_LINES) -> LogScreen:
        """The logs of every task of batch ``batch_id``, merged, each line prefixed with its
        task's target; followed until every task has ended."""
        return cls("batch", batch_id, max_lines=max_lines)

    # -- the view ------------------------------------------------------------------------

    @property
    def view_key(self) -> str:
        return f"log:{self.kind}={self.ident}"

    @property
    def crumb(self) -> str:
        return f"log #{self.ident}" if self.kind == "task" else f"log batch {self.ident}"

    @property
    def log_view(self) -> LogView:
        return self.query_one("#log", LogView)

    def main_widget(self) -> Widget | None:
        return self.log_view

    def ready_for_keys(self) -> bool:
        return super().ready_for_keys() and self.opened

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(Text(" reading…", "italic"), id="log-summary")
        empty = "no log lines yet" if self.kind == "task" else "no log lines in this batch yet"
        yield LogView(max_lines=self.max_lines, empty_text=empty, id="log")
        yield PromptBar(
            "/",
            placeholder="search: text · ~regex · enter jumps · n/N next/previous · esc clears",
            id="search-bar",
        )
        yield PromptBar(
            "&",
            placeholder="filter: text · ~regex · ! keeps the others · +/- context · esc clears",
            id="filter-bar",
        )
        yield PromptBar(">", placeholder="save the whole log to this file", id="save-bar")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        view = self.log_view
        what = f"task {self.ident}" if self.kind == "task" else f"batch {self.ident}"
        view.border_title = Text(f"log of {what}")
        view.border_subtitle = Text(view.status_text())
        if self.kind == "task":
            self._follow_task()
        else:
            self._follow_batch()
        self.set_interval(self.STATE_POLL, self._poll_state)

    @on(LogView.Changed, "#log")
    def _view_changed(self, event: LogView.Changed) -> None:
        event.stop()
        event.view.border_subtitle = Text(event.view.status_text())  # typed text: not markup

    def on_log_screen_summary(self, message: LogScreen.Summary) -> None:
        self.query_one("#log-summary", Static).update(message.text)
        if message.ended:
            self.ended = True  # no more reads of its state

    def action_refresh(self) -> None:
        self._poll_state()

    # -- reading the log -----------------------------------------------------------------

    @work(name="following the log", group="log-follow", exclusive=True, exit_on_error=False)
    async def _follow_task(self) -> None:
        engine = self.cockpit.tasks
        view = self.log_view
        try:
            task = await engine.task(self.ident)
            if task is None:
                view.set_message(f"no task {self.ident} in the store")
                view.live = False
                self.post_message(self.Summary(Text(f"no task {self.ident}", "italic"), True))
                return
            self._post_task(task)
            tail = await engine.log_tail(self.ident, self.max_lines)
            if tail:
                view.note_skipped(tail[0].seq - 1)
                view.write_lines(tail)
                view.flush(everything=True)
        except Exception as exc:
            view.set_message(f"cannot read the log: {exc}")
            raise
        finally:
            self.opened = True
        if task.state.final:  # read before its lines: they are all in
            view.live = False
            return
        after = tail[-1].seq if tail else 0
        async for lines in engine.follow_log(self.ident, after=after, poll=self.poll):
            view.write_lines(lines)
        view.live = False
        self._poll_state()

    @work(name="following the batch", group="log-follow", exclusive=True, exit_on_error=False)
    async def _follow_batch(self) -> None:
        engine = self.cockpit.tasks
        view = self.log_view
        try:
            batch = await engine.batch(self.ident)
            if batch is None:
                view.set_message(f"no batch {self.ident} in the store")
                view.live = False
                self.post_message(self.Summary(Text(f"no batch {self.ident}", "italic"), True))
                return
            tasks = await engine.tasks(batch=self.ident, limit=-1)
            self.post_message(self.Summary(render_batch(batch, _count(tasks)), False))
            view.set_sources(_labels(tasks))
            # Each task's last lines, a share of the window each, merged by time.
            share = max(200, -(-self.max_lines // max(1, len(tasks))))
            last: dict[int, int] = {}
            done: set[int] = set()
            merged: list[LogLine] = []
            skipped = 0
            for task in tasks:
                if task.state is TaskState.QUEUED:
                    continue
                tail = await engine.log_tail(task.id, share)
                if tail:
                    skipped += tail[0].seq - 1
                    last[task.id] = tail[-1].seq
                    merged.extend(tail)
                if task.state.final:
                    done.add(task.id)
            merged.sort(key=_by_time)
            if len(merged) > self.max_lines:
                skipped += len(merged) - self.max_lines
                merged = merged[-self.max_lines :]
            view.note_skipped(skipped)
            view.write_lines(merged)
            view.flush(everything=True)
        except Exception as exc:
            view.set_message(f"cannot read the logs: {exc}")
            raise
        finally:
            self.opened = True
        known = {t.id for t in tasks}
        pending = known - done
        wait = self.poll
        while pending:
            # The state first, then the lines: a task found ended has all its lines in.
            active = {
                t.id: t
                for t in await engine.tasks(
                    batch=self.ident, state=(TaskState.QUEUED, TaskState.RUNNING), limit=-1
                )
            }
            if any(i not in known for i in active) or self.batch_size > len(known):
                everything = await engine.tasks(batch=self.ident, limit=-1)  # retries joined
                view.set_sources(_labels(everything))
                known = {t.id for t in everything}
                pending = known - done
            round_lines: list[LogLine] = []
            for task_id in sorted(pending):
                now = active.get(task_id)
                if now is not None and now.state is TaskState.QUEUED:
                    continue
                while True:
                    lines = await engine.log(task_id, after=last.get(task_id, 0), limit=_PAGE)
                    if lines:
                        last[task_id] = lines[-1].seq
                        round_lines.extend(lines)
                    if len(lines) < _PAGE:
                        break
                if now is None:  # no longer queued or running: ended, read to its end
                    done.add(task_id)
            pending -= done
            round_lines.sort(key=_by_time)
            view.write_lines(round_lines)
            if round_lines:
                wait = self.poll
            elif pending:
                await asyncio.sleep(wait)
                wait = min(1.0, wait * 1.5)
        view.live = False
        self._poll_state()

    def _post_task(self, task: Task) -> None:
        try:
            steps = self.cockpit.tasks.kind(task.kind).steps
        except Exception:  # a kind this process does not know (a plugin's): no step count
            steps = ()
        self.post_message(self.Summary(render_task(task, steps), task.state.final))

    def _poll_state(self) -> None:
        if not self.ended:
            self._read_state()

    @work(name="reading the task", group="log-state", exclusive=True, exit_on_error=False)
    async def _read_state(self) -> None:
        engine = self.cockpit.tasks
        if self.kind == "task":
            task = await engine.task(self.ident)
            if task is not None:
                self._post_task(task)
            return
        batch = await engine.batch(self.ident)
        if batch is not None:
            counts = await engine.batch_counts(self.ident)
            self.batch_size = sum(counts.values())
            ended = all(state.final or not n for state, n in counts.items())
            self.post_message(self.Summary(render_batch(batch, counts), ended))

    # -- search, filter ------------------------------------------------------------------

    def _bar(self, name: str) -> PromptBar:
        return self.query_one(f"#{name}-bar", PromptBar)

    def action_search(self) -> None:
        self._bar("search").open()

    def action_filter(self) -> None:
        self._bar("filter").open()

    @on(Input.Changed, "#search-bar Input")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply_search(event.input.value)

    def apply_search(self, text: str) -> bool:
        """Highlight ``text`` (``~regex`` too); False (flagged in the bar) when invalid."""
        bar = self._bar("search")
        if bar.input.value != text:
            with bar.input.prevent(Input.Changed):
                bar.input.value = text
        view = self.log_view
        before = bool(view.search_text)
        try:
            view.set_search(text)
        except FilterError as exc:
            bar.set_note(str(exc), error=True)
            return False
        bar.set_note(f"{view.match_count:,} matches" if text else None)
        if bool(view.search_text) != before:
            self.refresh_bindings()  # n/N, and esc clearing it (not on every keystroke)
        return True

    @on(PromptBar.Submitted, "#search-bar")
    def _search_submitted(self, event: PromptBar.Submitted) -> None:
        event.stop()
        self._leave_prompt(event.bar, keep_visible=bool(event.value))
        found = event.value and event.bar.error is None
        if found and not self.log_view.jump_to_match(from_top=True):
            self.notify(f"no line matches {event.value!r}", title="Search", markup=False)

    @on(PromptBar.Cancelled, "#search-bar")
    def _search_cancelled(self, event: PromptBar.Cancelled) -> None:
        event.stop()
        self.apply_search("")
        self._leave_prompt(event.bar)

    @on(Input.Changed, "#filter-bar Input")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply_filter(event.input.value)

    def apply_filter(self, text: str, context: int | None = None) -> bool:
        """Show only the lines ``text`` keeps (``!`` inverts, ``~regex``), with ``context``
        lines around each; False (flagged in the bar) when it cannot be applied."""
        bar = self._bar("filter")
        if bar.input.value != text:
            with bar.input.prevent(Input.Changed):
                bar.input.value = text
        view = self.log_view
        before = bool(view.filter_text)
        try:
            view.set_filter(text, context)
        except FilterError as exc:
            bar.set_note(str(exc), error=True)
            return False
        if bool(view.filter_text) != before:
            self.refresh_bindings()  # +/-, and esc clearing it
        bar.set_note(None)
        bar.set_class(bool(text) or self.focused is bar.input, "-active")
        return True

    @on(PromptBar.Submitted, "#filter-bar")
    def _filter_submitted(self, event: PromptBar.Submitted) -> None:
        event.stop()
        self._leave_prompt(event.bar, keep_visible=bool(event.value))

    @on(PromptBar.Cancelled, "#filter-bar")
    def _filter_cancelled(self, event: PromptBar.Cancelled) -> None:
        event.stop()
        self.apply_filter("")
        self._leave_prompt(event.bar)

    # -- saving --------------------------------------------------------------------------

    def default_save_name(self) -> str:
        return f"{self.kind}-{self.ident}.log"

    def action_save(self) -> None:
        bar = self._bar("save")
        if not bar.input.value:
            bar.input.value = self.default_save_name()
        self._save_confirm = None
        bar.set_note("enter saves · esc cancels")
        bar.open()

    @on(PromptBar.Submitted, "#save-bar")
    def _save_submitted(self, event: PromptBar.Submitted) -> None:
        event.stop()
        bar = event.bar
        raw = event.value.strip()
        if not raw:
            self._leave_prompt(bar)
            return
        path = Path(raw).expanduser()
        if not path.is_absolute():
            path = Path.cwd() / path
        problem = None
        if path.is_dir():
            problem = f"{path} is a directory"
        elif not path.parent.is_dir():
            problem = f"no directory {path.parent}"
        if problem is not None:
            bar.set_note(problem, error=True)
            return
        if path.exists() and self._save_confirm != path:
            self._save_confirm = path
            bar.set_note(f"{path.name} exists: enter again replaces it", error=True)
            return
        self._save_confirm = None
        bar.set_note(None)
        self._leave_prompt(bar)
        self.save_to(path)

    @on(PromptBar.Cancelled, "#save-bar")
    def _save_cancelled(self, event: PromptBar.Cancelled) -> None:
        event.stop()
        event.bar.set_note(None)
        self._save_confirm = None
        self._leave_prompt(event.bar)

    @work(name="saving the log", group="log-save", exclusive=True, exit_on_error=False)
    async def save_to(self, path: Path) -> int:
        """Write the whole log (from the store), as the view shows it: the filter and its
        context applied, times and sources when shown. Returns the lines written."""
        view = self.log_view
        query = Query.from_filter(view.filter_text)
        lines = await self._whole_log()
        kept = Grep.select(lines, lambda line: query.matches(safe_text(line.text)), view.context)
        out = [
            view.format_entry(safe_text(line.text), line.at, view.source_of(line.task_id))
            for line in kept
        ]
        data = ("\n".join(out) + "\n" if out else "").encode("utf-8")
        await asyncio.to_thread(write_atomic, path, data)
        noun = "line" if len(out) == 1 else "lines"
        self.notify(f"saved {len(out):,} {noun} to {path}", title="Save", markup=False)
        return len(out)

    async def _whole_log(self) -> list[LogLine]:
        engine = self.cockpit.tasks
        if self.kind == "task":
            ids = [self.ident]
        else:
            batch = await engine.batch(self.ident)
            ids = list(batch.task_ids) if batch is not None else []
        out: list[LogLine] = []
        for task_id in ids:
            seq = 0
            while True:
                lines = await engine.log(task_id, after=seq, limit=_PAGE)
                out.extend(lines)
                if len(lines) < _PAGE:
                    break
                seq = lines[-1].seq
        if len(ids) > 1:
            out.sort(key=_by_time)
        return out

    # -- keys ----------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("search", "filter", "save"):
            return not self.typing()
        if action == "back" and self.is_mounted:
            view = self.log_view
            if view.search_text or view.filter_text:
                return True
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Clear the search, then the filter, then go back to the previous view."""
        view = self.log_view
        if view.search_text:
            self.apply_search("")
            self._bar("search").close()
        elif view.filter_text:
            self.apply_filter("")
            self._bar("filter").close()
        else:
            super().action_back()


def _by_time(line: LogLine) -> tuple[float, int, int]:
    return (line.at, line.task_id, line.seq)


def _count(tasks: Sequence[Task]) -> dict[TaskState, int]:
    counts = dict.fromkeys(TaskState, 0)
    for task in tasks:
        counts[task.state] += 1
    return counts

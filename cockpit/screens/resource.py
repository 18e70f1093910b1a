"""A resource list view: the header, an optional summary of what the list is narrowed to,
a :class:`ResourceTable`, a filter bar, the footer.

Subclasses say which columns, where the rows come from, what ``enter`` opens and, for a
scoped list (a server's platforms, a platform's sites), what the summary shows. The
filter (``/``: ``text``, ``~regex``, ``!`` inverts) is remembered per view for the session;
a filter that cannot be applied (a broken regex) is flagged in the bar and the list keeps
the last good one.

A *live* list (:attr:`ResourceScreen.LIVE_SECONDS`) looks at its rows again while it is
the current view (:meth:`ResourceScreen.fresh_rows`: the servers after a verify recorded
their health, the sites on screen after a task changed their status) and replaces only
the rows that changed; the list is read again only when rows came or went, or when a
changed row would move (its sorted column changed) or leave the list (its filter or scope
no longer holds).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from cockpit.messages import OpenView, Scope, ScopeKind, ViewName
from cockpit.screens.base import ViewScreen
from cockpit.widgets.header import environment_tone
from cockpit.widgets.marks import Selection
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import (
    Column,
    FilterError,
    ListSource,
    Query,
    ResourceTable,
    Row,
    RowSource,
)

__all__ = ["Fresh", "ResourceScreen", "ScopeSummary"]


@dataclass(frozen=True, slots=True)
class ScopeSummary:
    """What a scoped list shows above its rows, and the environment it belongs to."""

    text: Text
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class Fresh:
    """Rows read again by a live list (:meth:`ResourceScreen.fresh_rows`).

    ``complete``: ``rows`` is the whole list (a key missing from it is a row gone, a new
    key a row added); else they are the rows asked about, ``gone`` those no longer there.
    """

    rows: Sequence[Row]
    complete: bool = False
    gone: bool = False


class ResourceScreen(ViewScreen):
    """A list of one kind of resource, possibly narrowed to a scope (a server's platforms)."""

    VIEW: ClassVar[ViewName]
    AUTO_FOCUS = "#table"
    #: What the filter bar says before anything is typed.
    FILTER_HINT: ClassVar[str] = (
        "text · ~regex · !text or !~regex excludes · enter keeps · esc clears"
    )
    #: The sort the list starts with (a column's ``sort`` key).
    DEFAULT_SORT: ClassVar[str | None] = None
    DEFAULT_DESCENDING: ClassVar[bool] = False
    #: Whether rows can be marked (rows that are task targets: servers, platforms, sites).
    MARKABLE: ClassVar[bool] = False
    #: The scopes ``:VIEW WORD`` accepts (``:sites prod``), in the order a bare word is tried.
    SCOPES: ClassVar[tuple[ScopeKind, ...]] = ()

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding: it runs before the next key is dispatched, so what is typed
        # right after "/" goes into the filter.
        Binding("slash", "filter", "Filter", priority=True, id="view.filter"),
    ]

    DEFAULT_CSS = """
    ResourceScreen {
        & > ResourceTable {
            border: round $primary 60%;
            border-title-color: $text-primary;
            border-title-style: bold;
            border-subtitle-color: $text-muted;
            &:focus { border: round $primary; }
            &.-env-prod { border: round $error 70%; &:focus { border: round $error; } }
            &.-env-staging { border: round $warning 70%; &:focus { border: round $warning; } }
        }
        & > #summary {
            height: auto;
            max-height: 8;
            padding: 0 1;
            background: $panel;
            color: $foreground;
            text-wrap: nowrap;
            text-overflow: ellipsis;
            display: none;
            &.-shown { display: block; }
        }
    }
    """

    #: Seconds between two looks at the rows of a live list (None: not live).
    LIVE_SECONDS: ClassVar[float | None] = None
    #: A slow look spaces the next ones out (ten times what it took), up to this.
    MAX_LIVE_SECONDS: ClassVar[float] = 30.0

    class SummaryLoaded(Message):
        def __init__(self, summary: ScopeSummary | None) -> None:
            self.summary = summary
            super().__init__()

    class RowsRead(Message):
        """What a look at a live list's rows found (posted by its worker)."""

        def __init__(self, fresh: Fresh | None, generation: int) -> None:
            self.fresh = fresh
            self.generation = generation
            super().__init__()

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__()
        self.scope = scope
        self._initial_filter = filter_text
        #: The environment of the scope (a prod server's platforms): the list's accent.
        self.scope_environment: str | None = None
        #: How many looks replaced rows in place, and how many read the list again (for
        #: tests and the curious).
        self.row_refreshes = 0
        self.list_reloads = 0
        self._next_look = 0.0
        self._look_worker: Worker[None] | None = None

    # -- what subclasses provide ---------------------------------------------------------

    def columns(self) -> Sequence[Column]:
        raise NotImplementedError

    def source(self) -> RowSource:
        raise NotImplementedError

    def open_row(self, row: Row) -> None:
        """``enter`` on a row (drill down)."""

    async def summary(self) -> ScopeSummary | None:
        """What the list is narrowed to, shown above it (read in a worker)."""
        return None

    async def fresh_rows(self, shown: Sequence[Row]) -> Fresh | None:
        """A live list's rows read again: by default, for a list held in memory, the whole
        list from its source. ``shown`` are the rows on screen (a paged list reads those)."""
        source = self.table.source
        if isinstance(source, ListSource):
            return Fresh(await source.read(), complete=True)
        return None

    def keeps(self, row: Row) -> bool:
        """Whether ``row``, changed, still belongs in the list (its filter, its scope)."""
        return self.table.row_query.matches(row.haystack)

    def filter_problem(self, query: Query) -> str | None:
        """Why ``query`` cannot be applied to this list (None: it can)."""
        try:
            query.check()
        except FilterError as exc:
            return str(exc)
        return None

    @property
    def noun(self) -> str:
        return self.VIEW

    # -- composition ---------------------------------------------------------------------

    @property
    def view_key(self) -> str:
        return (
            self.VIEW if self.scope is None else f"{self.VIEW}@{self.scope.kind}={self.scope.name}"
        )

    @property
    def crumb(self) -> str:
        return self.VIEW if self.scope is None else f"{self.VIEW}@{self.scope.name}"

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def filter_bar(self) -> PromptBar:
        return self.query_one("#filter-bar", PromptBar)

    def main_widget(self) -> Widget | None:
        return self.table

    def ready_for_keys(self) -> bool:
        """Once the first rows (or an error) are in: keys move over and mark real rows."""
        if not super().ready_for_keys():
            return False
        table = self.table
        return table.row_count is not None or table.error is not None

    def compose(self) -> ComposeResult:
        remembered = self.cockpit_app.view_filters.get(self.view_key, "")
        text = self._initial_filter if self._initial_filter is not None else remembered
        query = Query.from_filter(text, sort=self.DEFAULT_SORT, descending=self.DEFAULT_DESCENDING)
        problem = self.filter_problem(query)
        if problem is not None:
            query = Query(sort=self.DEFAULT_SORT, descending=self.DEFAULT_DESCENDING)
        self.cockpit_app.view_filters[self.view_key] = text
        yield from self.compose_header()
        yield Static("", id="summary", markup=False)
        yield ResourceTable(
            self.columns(),
            self.source(),
            query=query,
            empty_text=f"no {self.noun}",
            noun=self.noun,
            markable=self.MARKABLE,
            id="table",
        )
        bar = PromptBar("/", value=text, placeholder=self.FILTER_HINT, id="filter-bar")
        bar.set_class(bool(text), "-active")
        yield bar
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._update_title()
        if problem := self.filter_problem(Query.from_filter(self.filter_bar.input.value)):
            self.filter_bar.set_note(problem, error=True)
        if self.has_summary:
            self.load_summary()
        if self.LIVE_SECONDS is not None:
            self.set_interval(self.LIVE_SECONDS, self._live_tick)

    @property
    def has_summary(self) -> bool:
        return self.scope is not None and type(self).summary is not ResourceScreen.summary

    # -- live rows ----------------------------------------------------------------------------

    def _live_tick(self) -> None:
        table = self.table
        if not self.is_current or table.row_count is None or table.is_loading:
            return
        if time.monotonic() < self._next_look:
            return  # the last look was slow: look less often
        running = self._look_worker
        if running is not None and running.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return  # never two at once, never one cancelled half-way
        self._look_worker = self.look()

    @work(name="reading the rows again", group="live-rows", exit_on_error=False)
    async def look(self) -> None:
        """Read the rows again (and the summary of a scoped list); replace what changed."""
        started = time.monotonic()
        generation = self.table.generation
        fresh = await self.fresh_rows(self.table.visible_rows())
        summary = await self.summary() if self.has_summary else None
        took = time.monotonic() - started
        assert self.LIVE_SECONDS is not None
        wait = min(self.MAX_LIVE_SECONDS, took * 10) - self.LIVE_SECONDS
        self._next_look = time.monotonic() + max(0.0, wait)
        if self.has_summary:
            self.post_message(self.SummaryLoaded(summary))
        self.post_message(self.RowsRead(fresh, generation))

    def on_resource_screen_rows_read(self, message: ResourceScreen.RowsRead) -> None:
        message.stop()
        if message.fresh is None or not self.is_mounted:
            return
        if message.generation != self.table.generation:
            return  # the list was read again meanwhile: the look is stale
        self.apply_fresh(message.fresh)

    def apply_fresh(self, fresh: Fresh) -> None:
        """Replace the rows that changed; read the list again only when it must."""
        table = self.table
        source = table.source
        if fresh.complete and isinstance(source, ListSource):
            held = source.held()
            if held is None:
                return
            if set(held) != {row.key for row in fresh.rows}:
                self._reload_list()
                return
            before: dict[str, Row] = held
        else:
            if fresh.gone:
                self._reload_list()
                return
            before = {row.key: row for row in table.visible_rows()}
        changed = [row for row in fresh.rows if row.key in before and before[row.key] != row]
        if not changed:
            return
        query = table.row_query
        index = next(
            (i for i, c in enumerate(self.columns()) if c.sort and c.sort == query.sort), None
        )
        sort = query.sort or ""
        for row in changed:
            old = before[row.key]
            moved = index is not None and old.sort_value(sort, index) != row.sort_value(sort, index)
            if moved or not self.keeps(row):
                self._reload_list()
                return
        if isinstance(source, ListSource):
            source.update(changed)
        table.update_rows(changed)
        self.row_refreshes += 1

    def _reload_list(self) -> None:
        self.list_reloads += 1
        self.table.reload()
        self._update_title()

    # -- the summary -------------------------------------------------------------------------

    @work(name="loading the summary", group="resource-summary", exclusive=True, exit_on_error=False)
    async def load_summary(self) -> None:
        self.post_message(self.SummaryLoaded(await self.summary()))

    def on_resource_screen_summary_loaded(self, message: ResourceScreen.SummaryLoaded) -> None:
        summary = message.summary
        widget = self.query_one("#summary", Static)
        widget.set_class(summary is not None, "-shown")
        widget.update(summary.text if summary is not None else "")
        env = summary.environment if summary is not None else None
        self.scope_environment = env
        tone = environment_tone(env) if env else None
        self.table.set_class(tone == "prod", "-env-prod")
        self.table.set_class(tone == "staging", "-env-staging")
        if env and not self.table.row_count:
            self.set_environment(env)

    # -- title, position, environment, marks ----------------------------------------------

    def _update_title(self) -> None:
        table = self.table
        count = "…" if table.row_count is None else f"{table.row_count:,}"
        title = f"{self.crumb} [{count}]"
        filt = table.row_query.filter_text
        if filt:
            title += f" /{filt}"
        table.border_title = Text(title)
        position = ""
        if table.row_count:
            position = f"{table.cursor_index + 1:,} of {table.row_count:,}"
        marked = table.marks.count
        if table.range_anchor is not None:
            span = abs(table.cursor_index - table.range_anchor) + 1
            position = f"range of {span:,} (v marks, esc cancels) · {position}"
        elif marked:
            position = f"{marked:,} marked · {position}"
        table.border_subtitle = position

    @on(ResourceTable.Loaded)
    def _loaded(self, event: ResourceTable.Loaded) -> None:
        self._update_title()
        if not event.total:
            self.set_environment(self.scope_environment)

    @on(ResourceTable.Highlighted)
    def _highlighted(self, event: ResourceTable.Highlighted) -> None:
        self.set_environment(event.row.environment or self.scope_environment)
        self._update_title()

    @on(ResourceTable.MarksChanged)
    def _marks_changed(self, event: ResourceTable.MarksChanged) -> None:
        self.set_marked(event.count)
        self._update_title()

    @on(ResourceTable.Selected)
    def _selected(self, event: ResourceTable.Selected) -> None:
        self.open_row(event.row)

    def open_view(
        self, view: ViewName, *, scope: Scope | None = None, key: str | None = None
    ) -> None:
        self.post_message(OpenView(view, scope=scope, key=key))

    @property
    def selection(self) -> Selection:
        """What an action applies to: the marks (the cursor row when nothing is marked)."""
        table = self.table
        if table.marks:
            return table.marks.selection()
        row = table.current_row
        return Selection(keys=(row.key,), count=1) if row is not None else Selection(keys=())

    # -- filter ----------------------------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self.table.row_query.filter_text

    def apply_filter(self, text: str) -> bool:
        """Filter the list (``text``, ``~regex``, ``!`` inverts) and remember it for this view.

        A filter that cannot be applied is flagged in the bar; the list keeps the last good
        filter. Returns whether the filter was applied.
        """
        before = self.cockpit_app.view_filters.get(self.view_key, "")
        self.cockpit_app.view_filters[self.view_key] = text
        bar = self.filter_bar
        field = bar.input
        if field.value != text:
            with field.prevent(Input.Changed):
                field.value = text
        bar.set_class(bool(text) or self.focused is field, "-active")
        q = self.table.row_query
        query = Query.from_filter(text, sort=q.sort, descending=q.descending)
        problem = self.filter_problem(query)
        bar.set_note(problem, error=True)
        if problem is None:
            self.table.set_query(query)
        self._update_title()
        if bool(before) != bool(text):  # "esc" clears the filter or goes back
            self.refresh_bindings()  # (the footer is rebuilt: not on every keystroke)
        return problem is None

    def action_filter(self) -> None:
        self.filter_bar.open()

    @on(Input.Changed, "#filter-bar Input")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        # The field's value now, not the event's: keys typed fast may have changed it
        # since, and writing an older value back would move the cursor under the typist.
        self.apply_filter(event.input.value)

    @on(PromptBar.Submitted, "#filter-bar")
    def _filter_submitted(self, event: PromptBar.Submitted) -> None:
        """``enter``: keep the filter (shown under the list), back to the list."""
        event.stop()
        self._leave_prompt(event.bar, keep_visible=bool(event.value))

    @on(PromptBar.Cancelled, "#filter-bar")
    def _filter_cancelled(self, event: PromptBar.Cancelled) -> None:
        """``esc`` in the filter: clear it, back to the list."""
        event.stop()
        self.apply_filter("")
        self._leave_prompt(event.bar)

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            return not self.typing()
        if action == "back" and self.is_mounted and self.filter_bar.input.value:
            return True
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Clear the filter first, then go back to the previous view."""
        if self.filter_bar.input.value:
            self.apply_filter("")
            self.filter_bar.close()
        else:
            super().action_back()

    def action_refresh(self) -> None:
        self.table.reload()
        self._update_title()
        if self.has_summary:
            self.load_summary()

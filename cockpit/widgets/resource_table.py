"""A line-API table for resource lists of any length (100,000 sites and more).

:class:`ResourceTable` is a :class:`~textual.scroll_view.ScrollView` that renders only
the rows on screen (``render_line``), never one widget per row. Rows come from a
:class:`RowSource` one page at a time (``page_size`` rows, 200 by default): the table
asks for the pages the viewport needs as it scrolls, keeps a bounded LRU cache of
them, and knows the list's length from each answer, so the scrollbar is right before
most rows were ever read.

Loading runs in named async workers (group ``"resource-table"``), one at a time: a
burst of filter keystrokes costs at most the query in flight plus the latest one,
never a queue of stale ones. Each worker ends by posting :class:`ResourceTable.PageLoaded`;
a failure is shown in the table and re-posted as :class:`cockpit.messages.WorkerFailed`
for the app's central handler.

Cells are plain text that has gone through :func:`cockpit.textsafe.sanitize`, never
Rich markup; meaning is carried by a :data:`Tone` the table maps to its component
classes, so themes (and NO_COLOR) decide how it looks.

A filter (:class:`Query`) is a substring, or ``~regex``, either inverted by a leading
``!``. A markable table keeps :class:`~cockpit.widgets.marks.MarkSet` marks (``space``,
``v``, shift+arrows, ``*``, ``u``) and draws them as a glyph in the first cell.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import ClassVar, Literal, Protocol

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState

from cockpit.messages import WorkerFailed
from cockpit.textsafe import sanitize
from cockpit.widgets.marks import MarkSet, collect_keys

__all__ = [
    "Cell",
    "Column",
    "FilterError",
    "ListSource",
    "Query",
    "ResourceTable",
    "Row",
    "RowSource",
    "Tone",
    "cell",
    "compile_filter",
]

#: What a cell means, mapped to a component class (``resource-table--tone-<tone>``).
Tone = Literal["prod", "staging", "env", "good", "warn", "bad", "muted", "accent"]
TONES: tuple[Tone, ...] = ("prod", "staging", "env", "good", "warn", "bad", "muted", "accent")

#: Drawn in the first cell of a marked row, and of a row in a pending ``v`` range (so
#: marks show without colour too).
MARK_GLYPH = "●"
RANGE_GLYPH = "○"


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell: plain text (already sanitised) and what it means."""

    text: str
    tone: Tone | None = None


def cell(value: object, tone: Tone | None = None) -> Cell:
    """A cell from any value: stored or remote text is sanitised, never markup."""
    text = "" if value is None else str(value)
    return Cell(sanitize(text).replace("\n", " "), tone)


@dataclass(frozen=True, slots=True)
class Row:
    """One row: a stable key (the entity's name), its cells and its environment.

    ``order`` gives, for a column's ``sort`` key, the value to sort by when the cell's
    text does not sort right (a count, a severity); other columns sort by their text.
    """

    key: str
    cells: tuple[Cell, ...]
    environment: str | None = None
    tone: Tone | None = None  # for the whole row (a deleted site is muted)
    order: tuple[tuple[str, int | float | str], ...] = ()

    def sort_value(self, sort: str, index: int) -> tuple[int, int | float | str]:
        """What the row sorts by for the column ``index`` whose sort key is ``sort``."""
        for key, value in self.order:
            if key == sort:
                return (0, value) if isinstance(value, str) else (1, value)
        text = self.cells[index].text.lower() if index < len(self.cells) else ""
        return (0, text)

    @property
    def haystack(self) -> str:
        """What a filter matches against: every cell's text."""
        return " ".join(c.text for c in self.cells)


@dataclass(frozen=True, slots=True)
class Column:
    """A column: ``width`` is the least it gets, ``flex`` shares what is left.

    When the table is too narrow, columns with the lowest ``priority`` are dropped
    first. ``sort`` is the key the source sorts by (``None``: not sortable).
    """

    key: str
    label: str
    width: int = 8
    max_width: int | None = None
    flex: int = 0
    priority: int = 0
    align: Literal["left", "right"] = "left"
    sort: str | None = None


class FilterError(ValueError):
    """A filter that cannot be applied: an invalid regular expression."""


@lru_cache(maxsize=64)
def compile_filter(text: str, regex: bool) -> Callable[[str], bool]:
    """A case-insensitive test for ``text`` in a string: a substring or, with ``regex``,
    a regular expression searched anywhere (``re.search``). Raises :class:`FilterError`."""
    if regex:
        try:
            pattern = re.compile(text, re.IGNORECASE)
        except re.error as exc:
            raise FilterError(f"invalid regular expression: {exc}") from None
        return lambda hay: pattern.search(hay) is not None
    needle = text.lower()
    return lambda hay: needle in hay.lower()


@dataclass(frozen=True, slots=True)
class Query:
    """What the rows are narrowed to and ordered by."""

    text: str = ""
    invert: bool = False
    sort: str | None = None
    descending: bool = False
    regex: bool = False

    @classmethod
    def from_filter(cls, raw: str, *, sort: str | None = None, descending: bool = False) -> Query:
        """A filter as typed: ``text`` (a substring), ``~regex`` (a regular expression),
        either after ``!`` for the rows that do *not* match (``!text``, ``!~regex``)."""
        invert = raw.startswith("!")
        body = raw[1:] if invert else raw
        regex = body.startswith("~")
        if regex:
            body = body[1:]
        return cls(body, invert, sort, descending, regex)

    @property
    def filter_text(self) -> str:
        """The filter as the user typed it."""
        if not self.text:
            return ""
        return ("!" if self.invert else "") + ("~" if self.regex else "") + self.text

    def check(self) -> None:
        """Raise :class:`FilterError` when the filter cannot be applied."""
        if self.text:
            compile_filter(self.text, self.regex)

    def matches(self, haystack: str) -> bool:
        """Whether a row whose text is ``haystack`` passes the filter."""
        if not self.text:
            return True
        return compile_filter(self.text, self.regex)(haystack) != self.invert


class RowSource(Protocol):
    """Where a table's rows come from."""

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        """Rows ``offset`` … ``offset + limit`` of the list for ``query``, and its length."""
        ...

    def invalidate(self) -> None:
        """Forget anything cached: the next fetch reads fresh data."""
        ...

    def matches(self, query: Query, key: str) -> bool:
        """Whether the row ``key`` is in the list of ``query`` (its filter; for marks)."""
        ...


class ListSource:
    """A source for lists small enough to hold (servers, platforms, clients).

    ``load`` is called once (again after :meth:`invalidate`); filtering and sorting
    happen in memory, on every cell of a row.
    """

    def __init__(self, load: Callable[[], Awaitable[Sequence[Row]]], columns: Sequence[Column]):
        self._load = load
        self._columns = list(columns)
        self._rows: list[Row] | None = None
        self._haystacks: list[str] = []
        self._by_key: dict[str, str] = {}
        self._last: tuple[Query, list[Row]] | None = None
        self._invalidations = 0

    def invalidate(self) -> None:
        self._rows = None
        self._last = None
        self._invalidations += 1

    async def read(self) -> list[Row]:
        """Every row, read again from where they come from (nothing cached is changed)."""
        return list(await self._load())

    def held(self) -> dict[str, Row] | None:
        """Every row held, by key (None before the first read)."""
        return None if self._rows is None else {row.key: row for row in self._rows}

    def update(self, rows: Sequence[Row]) -> None:
        """Replace the rows held that have the keys of ``rows`` (a row-level refresh)."""
        if self._rows is None or not rows:
            return
        fresh = {row.key: row for row in rows}
        self._set_rows([fresh.get(row.key, row) for row in self._rows])

    def _set_rows(self, rows: list[Row]) -> None:
        self._rows = rows
        self._haystacks = [row.haystack for row in rows]
        self._by_key = {row.key: hay for row, hay in zip(rows, self._haystacks, strict=True)}
        self._last = None

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        while self._rows is None:
            invalidations = self._invalidations
            rows = list(await self._load())
            # Invalidated while reading (a reload after a change): these rows may predate
            # the change, and must not be held for the reads after it.
            if invalidations == self._invalidations:
                self._set_rows(rows)
        if self._last is None or self._last[0] != query:
            self._last = (query, self._select(query))
        rows = self._last[1]
        return rows[offset : offset + limit], len(rows)

    def matches(self, query: Query, key: str) -> bool:
        hay = self._by_key.get(key)
        return hay is not None and query.matches(hay)

    def _select(self, query: Query) -> list[Row]:
        assert self._rows is not None
        if query.text:
            rows = [
                row
                for row, hay in zip(self._rows, self._haystacks, strict=True)
                if query.matches(hay)
            ]
        else:
            rows = list(self._rows)
        if query.sort is not None:
            sort = query.sort
            index = next((i for i, c in enumerate(self._columns) if c.sort == sort), None)
            if index is not None:
                rows.sort(
                    key=lambda r: (r.sort_value(sort, index), r.key), reverse=query.descending
                )
        return rows


@dataclass(slots=True)
class _Placed:
    column: Column
    index: int
    x: int
    width: int


@dataclass(slots=True)
class _Load:
    generation: int
    page: int
    worker: Worker[None] | None = field(default=None)


class ResourceTable(ScrollView, can_focus=True):
    """A virtual table: a header row, then only the visible rows of a paged source."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="table.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="table.up"),
        Binding("g,home", "cursor_top", "Top", show=False, id="table.top"),
        Binding("G,end", "cursor_bottom", "Bottom", show=False, id="table.bottom"),
        Binding("ctrl+d", "half_page_down", "Half page down", show=False, id="table.half_down"),
        Binding("ctrl+u", "half_page_up", "Half page up", show=False, id="table.half_up"),
        Binding("pagedown,ctrl+f", "page_down", "Page down", show=False, id="table.page_down"),
        Binding("pageup", "page_up", "Page up", show=False, id="table.page_up"),
        Binding("enter", "select", "Open", id="table.open"),
        Binding("o", "sort_next", "Sort", id="table.sort"),
        Binding("O", "sort_reverse", "Reverse sort", show=False, id="table.sort_reverse"),
        # Marks (lists whose rows are task targets: servers, platforms, sites).
        Binding("space", "toggle_mark", "Mark", id="table.mark"),
        Binding("v", "range_mark", "Mark range", show=False, id="table.mark_range"),
        Binding("shift+down", "mark_move(1)", "Mark down", show=False, id="table.mark_down"),
        Binding("shift+up", "mark_move(-1)", "Mark up", show=False, id="table.mark_up"),
        Binding("asterisk", "mark_all", "Mark all", show=False, id="table.mark_all"),
        Binding("u", "clear_marks", "Unmark all", show=False, id="table.unmark_all"),
        Binding("escape", "cancel_range", "Cancel range", show=False, id="table.cancel_range"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "resource-table--header",
        "resource-table--header-sorted",
        "resource-table--cursor",
        "resource-table--cursor-blurred",
        "resource-table--placeholder",
        "resource-table--message",
        "resource-table--marked",
        "resource-table--mark",
        "resource-table--range",
        *(f"resource-table--tone-{tone}" for tone in TONES),
    }

    DEFAULT_CSS = """
    ResourceTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        height: 1fr;
        & > .resource-table--header { color: $text-muted; background: $panel; text-style: bold; }
        & > .resource-table--header-sorted { color: $text-accent; background: $panel; text-style: bold; }
        & > .resource-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .resource-table--cursor-blurred {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .resource-table--placeholder { color: $text-disabled; }
        & > .resource-table--message { color: $text-muted; text-style: italic; }
        & > .resource-table--marked { background: $accent 25%; }
        & > .resource-table--mark { color: $text-accent; text-style: bold; }
        & > .resource-table--range { background: $secondary 25%; }
        & > .resource-table--tone-prod { color: $text-error; text-style: bold; }
        & > .resource-table--tone-staging { color: $text-warning; }
        & > .resource-table--tone-env { color: $text-success; }
        & > .resource-table--tone-good { color: $text-success; }
        & > .resource-table--tone-warn { color: $text-warning; }
        & > .resource-table--tone-bad { color: $text-error; text-style: bold; }
        & > .resource-table--tone-muted { color: $text-muted; }
        & > .resource-table--tone-accent { color: $text-accent; }
    }
    """

    HEADER_HEIGHT: ClassVar[int] = 1

    class PageLoaded(Message):
        """A page the table asked for has arrived (posted by its loading worker)."""

        def __init__(self, generation: int, page: int, rows: Sequence[Row], total: int) -> None:
            self.generation = generation
            self.page = page
            self.rows = rows
            self.total = total
            super().__init__()

    class _TableMessage(Message):
        """A message about this table (``control`` is the table, for ``on(…, "#id")``)."""

        def __init__(self, table: ResourceTable) -> None:
            self.table = table
            super().__init__()

        @property
        def control(self) -> ResourceTable:
            return self.table

    class Loaded(_TableMessage):
        """The first page of a query arrived: the table knows how many rows match."""

        def __init__(self, table: ResourceTable, total: int) -> None:
            self.total = total
            super().__init__(table)

    class _RowMessage(_TableMessage):
        def __init__(self, table: ResourceTable, index: int, row: Row) -> None:
            self.index = index
            self.row = row
            super().__init__(table)

    class Highlighted(_RowMessage):
        """The cursor is on a (loaded) row."""

    class MarksChanged(_TableMessage):
        """Rows were marked or unmarked; ``count`` are marked now."""

        def __init__(self, table: ResourceTable, count: int) -> None:
            self.count = count
            super().__init__(table)

    class Selected(_RowMessage):
        """A row was chosen (``enter`` or a double click)."""

    def __init__(
        self,
        columns: Sequence[Column],
        source: RowSource,
        *,
        query: Query | None = None,
        page_size: int = 200,
        max_pages: int = 50,
        empty_text: str = "nothing to show",
        noun: str = "rows",
        markable: bool = False,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.columns: list[Column] = list(columns)
        self.source = source
        self.row_query = query or Query()
        self.page_size = max(1, page_size)
        self.max_pages = max(2, max_pages)
        self.empty_text = empty_text
        self.noun = noun
        self.cursor_index = 0
        self.row_count: int | None = None  # None until the first page of a query arrives
        self.error: str | None = None
        self._generation = 0
        self._page_cache: OrderedDict[int, Sequence[Row]] = OrderedDict()
        self._cache_stale = False
        self._wanted: set[int] = set()
        self._loading: _Load | None = None
        self._reported_loaded = False
        self._highlighted_key: str | None = None
        self._placed: list[_Placed] = []
        self._placed_for: tuple[int, int] | None = None
        self._rt_styles: dict[str, Style] = {}
        self.markable = markable
        self.marks = MarkSet(self._matches)
        #: Where ``v`` started a range (None: no range pending).
        self.range_anchor: int | None = None
        #: How many pages were asked of the source, and how many times the list was read
        #: again (:meth:`reload`): a row-level refresh changes neither.
        self.pages_read = 0
        self.reloads = 0

    def _matches(self, query: Query, key: str) -> bool:
        return self.source.matches(query, key)

    # -- public API -------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped on every new query or refresh; a page of an older one is dropped."""
        return self._generation

    @property
    def is_loading(self) -> bool:
        return self._loading is not None or bool(self._wanted)

    @property
    def current_row(self) -> Row | None:
        return self.row_at(self.cursor_index)

    def row_at(self, index: int) -> Row | None:
        """The row at ``index`` if its page is loaded (and current), else None."""
        if self._cache_stale or index < 0:
            return None
        page = self._page_cache.get(index // self.page_size)
        if page is None:
            return None
        offset = index % self.page_size
        return page[offset] if offset < len(page) else None

    def set_query(self, query: Query) -> None:
        """Show the rows of ``query``: back to the top, old rows kept until new ones arrive."""
        if query == self.row_query:
            return
        self.row_query = query
        self._restart(keep_position=False)

    def set_filter(self, raw: str) -> None:
        """Filter as typed (``text`` or ``!text``), keeping the sort order."""
        q = self.row_query
        self.set_query(Query.from_filter(raw, sort=q.sort, descending=q.descending))

    def sort_by(self, key: str | None, descending: bool | None = None) -> None:
        """Sort by the column whose ``sort`` is ``key``; the same key again flips the order."""
        q = self.row_query
        if descending is None:
            descending = (not q.descending) if key == q.sort and key is not None else False
        self.set_query(replace(q, sort=key, descending=descending))

    def reload(self) -> None:
        """Read the rows again from the source (keeping the cursor where it is)."""
        self.reloads += 1
        self.source.invalidate()
        self._restart(keep_position=True)

    def visible_rows(self) -> list[Row]:
        """The loaded rows on screen now (for a live view that polls only what is seen)."""
        if self.row_count is None or self._cache_stale:
            return []
        top = max(0, round(self.scroll_y))
        rows = (self.row_at(i) for i in range(top, min(self.row_count, top + self._body_height)))
        return [row for row in rows if row is not None]

    def update_rows(self, rows: Sequence[Row]) -> int:
        """Replace the loaded rows that have the keys of ``rows`` (a row-level refresh: the
        list is not read again); how many were replaced. Rows not loaded are left alone."""
        if not rows or self._cache_stale:
            return 0
        fresh = {row.key: row for row in rows}
        replaced = 0
        for number, page in list(self._page_cache.items()):
            if not any(row.key in fresh for row in page):
                continue
            new_page = [fresh.get(row.key, row) for row in page]
            replaced += sum(1 for row in page if row.key in fresh)
            self._page_cache[number] = new_page
        if replaced:
            self.refresh()
            row = self.current_row
            if row is not None and row.key in fresh:
                self.post_message(self.Highlighted(self, self.cursor_index, row))
        return replaced

    def move_cursor(self, index: int) -> None:
        total = self.row_count or 0
        index = max(0, min(index, total - 1)) if total else 0
        if index != self.cursor_index:
            self.cursor_index = index
            self.refresh()
        self._scroll_to_cursor()
        self._post_highlight()

    # -- loading ----------------------------------------------------------------------

    def on_mount(self) -> None:
        self._restart(keep_position=False)

    def _restart(self, *, keep_position: bool) -> None:
        self._generation += 1
        self._cache_stale = bool(self._page_cache)
        self._wanted.clear()
        self._reported_loaded = False
        self._highlighted_key = None
        self.error = None
        if not keep_position:
            self.cursor_index = 0
            self.range_anchor = None  # positions in another list mean nothing
            self.scroll_to(y=0, animate=False, immediate=True)
        self._want(self.cursor_index // self.page_size)
        for page in self._visible_pages():
            self._want(page)
        self.refresh()

    def _visible_pages(self) -> range:
        top = max(0, round(self.scroll_y))
        bottom = top + max(1, self.size.height - self.HEADER_HEIGHT)
        return range(top // self.page_size, bottom // self.page_size + 1)

    def _want(self, page: int) -> None:
        if page < 0 or self.error is not None:
            return
        if (
            self.row_count is not None
            and not self._cache_stale
            and page * self.page_size >= max(self.row_count, 1)
        ):
            return
        if page in self._page_cache and not self._cache_stale:
            self._page_cache.move_to_end(page)
            return
        if self._loading is not None and (self._loading.generation, self._loading.page) == (
            self._generation,
            page,
        ):
            return
        if page not in self._wanted:
            self._wanted.add(page)
            self.call_later(self._pump)

    def _pump(self) -> None:
        if self._loading is not None or not self._wanted or not self.is_mounted:
            return
        centre = (round(self.scroll_y) + self.size.height // 2) // self.page_size
        page = min(self._wanted, key=lambda p: (abs(p - centre), p))
        self._wanted.discard(page)
        load = _Load(self._generation, page)
        self._loading = load
        load.worker = self._load_page(load.generation, page, self.row_query)

    @work(group="resource-table", exit_on_error=False, description="load a page of rows")
    async def _load_page(self, generation: int, page: int, query: Query) -> None:
        self.pages_read += 1
        rows, total = await self.source.fetch(query, page * self.page_size, self.page_size)
        self.post_message(self.PageLoaded(generation, page, rows, total))

    def on_resource_table_page_loaded(self, message: ResourceTable.PageLoaded) -> None:
        message.stop()
        self._loading = None  # one load at a time: this was it
        if message.generation != self._generation:
            self._pump()  # a stale answer (the query changed meanwhile): dropped
            return
        if self._cache_stale:
            self._page_cache.clear()
            self._cache_stale = False
        self._page_cache[message.page] = list(message.rows)
        self._page_cache.move_to_end(message.page)
        self._evict()
        self._set_count(message.total)
        if not self._reported_loaded:
            self._reported_loaded = True
            if self.marks.bulk is not None and self.marks.bulk.total != message.total:
                before = self.marks.count
                self.marks.update_total(self.row_query, message.total)
                if self.marks.count != before:
                    self._marks_changed()
            self.post_message(self.Loaded(self, message.total))
        self._post_highlight()
        self.refresh()
        self._pump()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        load = self._loading
        if load is None or event.worker is not load.worker:
            return
        if event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._loading = None
            self._wanted.clear()
            if event.state is WorkerState.ERROR and load.generation == self._generation:
                error = event.worker.error
                self.error = str(error) or type(error).__name__
                self.refresh()
                self.post_message(WorkerFailed.from_worker(event.worker, f"loading {self.noun}"))

    def _evict(self) -> None:
        keep = set(self._visible_pages())
        while len(self._page_cache) > self.max_pages:
            for page in self._page_cache:
                if page not in keep:
                    del self._page_cache[page]
                    break
            else:
                break

    def _set_count(self, total: int) -> None:
        changed = total != self.row_count
        self.row_count = total
        if self.cursor_index >= total:
            self.cursor_index = max(0, total - 1)
        if changed:
            self._update_virtual_size()
            self._scroll_to_cursor()

    @property
    def _view_width(self) -> int:
        """The width rows are laid out in: the content without the scrollbar."""
        return self.scrollable_content_region.width or self.size.width

    def _update_virtual_size(self) -> None:
        rows = self.row_count or 0
        self.virtual_size = Size(self._view_width, rows + self.HEADER_HEIGHT)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._placed_for = None
        self._scroll_to_cursor()

    # -- cursor and keys --------------------------------------------------------------

    @property
    def _body_height(self) -> int:
        return max(1, self.size.height - self.HEADER_HEIGHT)

    def _scroll_to_cursor(self) -> None:
        top = round(self.scroll_y)
        height = self._body_height
        if self.cursor_index < top:
            self.scroll_to(y=self.cursor_index, animate=False, immediate=True)
        elif self.cursor_index >= top + height:
            self.scroll_to(y=self.cursor_index - height + 1, animate=False, immediate=True)

    def _post_highlight(self) -> None:
        row = self.current_row
        if row is not None and row.key != self._highlighted_key:
            self._highlighted_key = row.key
            self.post_message(self.Highlighted(self, self.cursor_index, row))

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_index + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_index - 1)

    def action_cursor_top(self) -> None:
        self.move_cursor(0)

    def action_cursor_bottom(self) -> None:
        self.move_cursor((self.row_count or 1) - 1)

    def _page_by(self, rows: int) -> None:
        self.scroll_to(y=round(self.scroll_y) + rows, animate=False, immediate=True)
        self.move_cursor(self.cursor_index + rows)

    def action_half_page_down(self) -> None:
        self._page_by(max(1, self._body_height // 2))

    def action_half_page_up(self) -> None:
        self._page_by(-max(1, self._body_height // 2))

    def action_page_down(self) -> None:
        self._page_by(self._body_height)

    def action_page_up(self) -> None:
        self._page_by(-self._body_height)

    def action_select(self) -> None:
        row = self.current_row
        if row is not None:
            self.post_message(self.Selected(self, self.cursor_index, row))

    # -- marks ------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_mark", "range_mark", "mark_move", "mark_all", "clear_marks"):
            return self.markable
        if action == "cancel_range":
            return self.range_anchor is not None
        return True

    def _marks_changed(self) -> None:
        self.refresh()
        self.post_message(self.MarksChanged(self, self.marks.count))

    def action_toggle_mark(self) -> None:
        """``space``: mark the cursor row (or unmark it); with a range pending, mark the range."""
        if self.range_anchor is not None:
            self.action_range_mark()
            return
        row = self.current_row
        if row is None:
            return
        self.marks.toggle(row.key)
        self._marks_changed()

    def action_range_mark(self) -> None:
        """``v``: start a range at the cursor; ``v`` again marks every row in between."""
        if self.range_anchor is None:
            if self.row_count:
                self.range_anchor = self.cursor_index
                self.refresh_bindings()
                self._marks_changed()
            return
        start, stop = sorted((self.range_anchor, self.cursor_index))
        self.range_anchor = None
        self.refresh_bindings()
        self.mark_range(start, stop + 1)

    def action_cancel_range(self) -> None:
        self.range_anchor = None
        self.refresh_bindings()
        self._marks_changed()

    def action_mark_move(self, step: int) -> None:
        """shift+down / shift+up: mark the cursor row and the one it moves to."""
        before = self.cursor_index
        self.move_cursor(before + step)
        start, stop = sorted((before, self.cursor_index))
        self.mark_range(start, stop + 1)

    def action_mark_all(self) -> None:
        """``*``: mark every row the filter lets through (stored as the filter, not the rows)."""
        if self.row_count is None:
            return
        if self.marks.needs_materialising(self.row_query):
            self._materialise_then_mark_all(self.row_query, self.row_count, self.generation)
            return
        self.marks.mark_all(self.row_query, self.row_count)
        self._marks_changed()

    def action_clear_marks(self) -> None:
        if self.marks or self.range_anchor is not None:
            self.marks.clear()
            self.range_anchor = None
            self.refresh_bindings()
            self._marks_changed()

    def mark_range(self, start: int, stop: int) -> None:
        """Mark rows ``start`` … ``stop`` (exclusive) of the current list."""
        keys: list[str] = []
        for index in range(start, stop):
            row = self.row_at(index)
            if row is None:  # not loaded: read the keys from the source
                self._mark_range_from_source(self.row_query, start, stop, self.generation)
                return
            keys.append(row.key)
        self.marks.mark(keys)
        self._marks_changed()

    @work(group="resource-table-marks", exit_on_error=False, description="marking a range")
    async def _mark_range_from_source(
        self, query: Query, start: int, stop: int, generation: int
    ) -> None:
        keys = await collect_keys(self.source, query, start, stop)
        if generation == self._generation:
            self.marks.mark(keys)
            self._marks_changed()

    @work(group="resource-table-marks", exit_on_error=False, description="marking all")
    async def _materialise_then_mark_all(self, query: Query, total: int, generation: int) -> None:
        bulk = self.marks.bulk
        if bulk is not None:
            self.marks.materialise(await collect_keys(self.source, bulk.query))
        if generation == self._generation and self.marks.bulk is None:
            self.marks.mark_all(query, total)
        self._marks_changed()

    def action_sort_next(self) -> None:
        keys = [c.sort for c in self._placed_columns() if c.sort is not None]
        if not keys:
            return
        current = self.row_query.sort
        nxt = keys[(keys.index(current) + 1) % len(keys)] if current in keys else keys[0]
        self.sort_by(nxt, descending=False)

    def action_sort_reverse(self) -> None:
        q = self.row_query
        self.sort_by(q.sort or self._default_sort(), descending=not q.descending)

    def _default_sort(self) -> str | None:
        return next((c.sort for c in self.columns if c.sort is not None), None)

    def _placed_columns(self) -> list[Column]:
        return [p.column for p in self._layout(self._view_width)]

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y < self.HEADER_HEIGHT:
            for placed in self._layout(self._view_width):
                if placed.x <= offset.x < placed.x + placed.width + 1 and placed.column.sort:
                    self.sort_by(placed.column.sort)
                    break
            return
        index = round(self.scroll_y) + offset.y - self.HEADER_HEIGHT
        if 0 <= index < (self.row_count or 0):
            self.move_cursor(index)
            if event.chain >= 2:
                self.action_select()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        for page in self._visible_pages():
            self._want(page)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- rendering --------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._rt_styles.clear()
        super().notify_style_update()

    def _tone(self, tone: str) -> Style:
        """A tone's colour and text style, without a background: laid over any row."""
        key = f"tone-{tone}/fg"
        style = self._rt_styles.get(key)
        if style is None:
            full = self._style(f"tone-{tone}")
            style = Style(
                color=full.color,
                bold=full.bold,
                dim=full.dim,
                italic=full.italic,
                underline=full.underline,
                reverse=full.reverse,
                strike=full.strike,
            )
            self._rt_styles[key] = style
        return style

    def _style(self, name: str) -> Style:
        style = self._rt_styles.get(name)
        if style is None:
            style = self.get_component_rich_style(f"resource-table--{name}")
            self._rt_styles[name] = style
        return style

    def _layout(self, width: int) -> list[_Placed]:
        key = (width, self._layout_rows_key())
        if self._placed_for == key:
            return self._placed
        self._placed = self._compute_layout(width)
        self._placed_for = key
        return self._placed

    def _layout_rows_key(self) -> int:
        # Content-sized columns only when every row is known (a short list).
        if self._complete_rows() is None:
            return -1
        return self._generation * 1_000_003 + (self.row_count or 0)

    def _complete_rows(self) -> Sequence[Row] | None:
        if self.row_count is None or self.row_count > self.page_size or self._cache_stale:
            return None
        return self._page_cache.get(0)

    def _compute_layout(self, width: int) -> list[_Placed]:
        rows = self._complete_rows()
        natural: list[int] = []
        for i, col in enumerate(self.columns):
            label = cell_len(col.label) + (1 if col.sort else 0)  # room for ▲/▼
            want = max(col.width, label)
            if rows:
                content = max(
                    (cell_len(r.cells[i].text) for r in rows if i < len(r.cells)), default=0
                )
                want = max(want, content)
            if col.max_width is not None:
                want = min(want, max(col.max_width, col.width, label))
            natural.append(want)
        avail = max(1, width - 1)  # one cell of left padding
        order = sorted(range(len(self.columns)), key=lambda i: (-self.columns[i].priority, i))
        chosen: set[int] = set()
        used = 0
        for i in order:
            sep = 1 if chosen else 0
            need = natural[i] + sep
            if chosen and used + need > avail:
                # A flexible column may shrink to what is left, down to its least width.
                col = self.columns[i]
                least = max(col.width, cell_len(col.label) + (1 if col.sort else 0))
                room = avail - used - sep
                if col.flex <= 0 or room < least:
                    continue
                natural[i] = room
                need = room + sep
            chosen.add(i)
            used += need
        indices = sorted(chosen)
        widths = {i: natural[i] for i in indices}
        spare = avail - used
        if spare > 0:
            self._share(spare, indices, widths)
        elif spare < 0 and indices:
            widths[indices[0]] = max(1, widths[indices[0]] + spare)
        placed: list[_Placed] = []
        x = 1
        for i in indices:
            placed.append(_Placed(self.columns[i], i, x, widths[i]))
            x += widths[i] + 1
        return placed

    def _share(self, spare: int, indices: list[int], widths: dict[int, int]) -> None:
        """Give ``spare`` cells to the flexible columns by weight, up to their ``max_width``."""

        def room(i: int) -> int:
            limit = self.columns[i].max_width
            return spare if limit is None else limit - widths[i]

        while spare > 0:
            growable = [i for i in indices if self.columns[i].flex > 0 and room(i) > 0]
            if not growable:
                return
            weight = sum(self.columns[i].flex for i in growable)
            given = 0
            for n, i in enumerate(growable):
                col = self.columns[i]
                share = (spare - given) if n == len(growable) - 1 else spare * col.flex // weight
                share = min(share, room(i))
                widths[i] += share
                given += share
            if given == 0:
                return
            spare -= given

    @staticmethod
    def _fit(text: str, width: int, align: str) -> str:
        if width <= 0:
            return ""
        if cell_len(text) > width:
            return set_cell_size(text, width - 1) + "…" if width > 1 else "…"
        pad = " " * (width - cell_len(text))
        return pad + text if align == "right" else text + pad

    def render_line(self, y: int) -> Strip:
        width = self._view_width
        base = self.rich_style
        if y < self.HEADER_HEIGHT:
            return self._render_header(width, base)
        index = round(self.scroll_y) + y - self.HEADER_HEIGHT
        total = self.row_count
        message: str | None = None
        if self.error is not None:
            message = f"cannot load: {self.error}" if y == self.HEADER_HEIGHT else None
        elif total is None:
            message = "loading…" if y == self.HEADER_HEIGHT else None
        elif total == 0:
            message = self.empty_text if y == self.HEADER_HEIGHT else None
        elif index >= total:
            return Strip.blank(width, base)
        if message is not None:
            text = " " + sanitize(message)
            return Strip([Segment(self._fit(text, width, "left"), base + self._style("message"))])
        if total is None or index >= total:
            return Strip.blank(width, base)
        row = self.row_at(index)
        stale_row: Row | None = None
        if row is None:
            self._want(index // self.page_size)
            if self._cache_stale:
                page = self._page_cache.get(index // self.page_size)
                offset = index % self.page_size
                if page is not None and offset < len(page):
                    stale_row = page[offset]
        shown = row or stale_row
        is_cursor = index == self.cursor_index
        row_style = base
        anchor = self.range_anchor
        in_range = anchor is not None and min(anchor, self.cursor_index) <= index <= max(
            anchor, self.cursor_index
        )
        marked = shown is not None and bool(self.marks) and self.marks.is_marked(shown.key)
        if in_range:
            row_style = base + self._style("range")
        elif marked:
            row_style = base + self._style("marked")
        if is_cursor:
            row_style = base + self._style("cursor" if self.has_focus else "cursor-blurred")
        if shown is None:
            text = self._fit(" …", width, "left")
            style = row_style if is_cursor else base + self._style("placeholder")
            return Strip([Segment(text, style)], width)
        glyph = MARK_GLYPH if marked else RANGE_GLYPH if in_range else " "
        return self._render_row(shown, width, base, row_style, is_cursor, glyph)

    def _render_header(self, width: int, base: Style) -> Strip:
        header = base + self._style("header")
        sorted_style = base + self._style("header-sorted")
        segments = [Segment(" ", header)]
        x = 1
        q = self.row_query
        for placed in self._layout(width):
            label = placed.column.label.upper()
            style = header
            if placed.column.sort is not None and placed.column.sort == q.sort:
                label = f"{label}{'▼' if q.descending else '▲'}"
                style = sorted_style
            if placed.x > x:
                segments.append(Segment(" " * (placed.x - x), header))
            segments.append(Segment(self._fit(label, placed.width, placed.column.align), style))
            x = placed.x + placed.width
        if x < width:
            segments.append(Segment(" " * (width - x), header))
        return Strip(segments).crop(0, width)

    def _render_row(
        self,
        row: Row,
        width: int,
        base: Style,
        row_style: Style,
        is_cursor: bool,
        glyph: str = " ",
    ) -> Strip:
        mark_style = row_style if glyph == " " else row_style + self._style("mark")
        segments = [Segment(glyph, mark_style)]
        x = 1
        whole = self._tone(row.tone) if row.tone else None
        for placed in self._layout(width):
            c = row.cells[placed.index] if placed.index < len(row.cells) else Cell("")
            style = row_style
            tone = c.tone or row.tone
            if tone is not None:
                tone_style = self._tone(tone) if c.tone else whole
                if tone_style is not None:
                    # On the cursor row the cursor's colours win; the tone keeps its text style.
                    style = (
                        row_style + Style(bold=tone_style.bold, underline=tone_style.underline)
                        if is_cursor
                        else row_style + tone_style
                    )
            if placed.x > x:
                segments.append(Segment(" " * (placed.x - x), row_style))
            segments.append(Segment(self._fit(c.text, placed.width, placed.column.align), style))
            x = placed.x + placed.width
        if x < width:
            segments.append(Segment(" " * (width - x), row_style))
        return Strip(segments).crop(0, width)

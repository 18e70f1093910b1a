"""A line-API log view: follows a task's log live, with search, filter, wrap and a bounded
window.

:class:`LogView` is a :class:`~textual.scroll_view.ScrollView` that renders only the
rows on screen (``render_line``); it never mounts a widget per line. Lines arrive with
:meth:`LogView.write_lines` (any number, from any coroutine of the app's loop) and wait
in a buffer that is flushed into the view at most every :attr:`LogView.FLUSH_INTERVAL`
(50 ms): one refresh per flush, never one per line. A flush that has more than
:attr:`LogView.FLUSH_CHUNK` lines to take does the rest on the next turn of the loop, so
keys keep being answered during a flood.

Memory is bounded: the view holds at most ``max_lines`` lines (and at most
``max_line_chars`` characters of one line). When more arrive, the oldest fall out of the
window and are counted as *dropped*; the first row then says how many, and the status
says ``N dropped``. The view never reads them back: the store keeps the whole log, and
the screen that owns the view saves it from there.

Every line is sanitised (:func:`cockpit.textsafe.sanitize_line`) before it is kept, and
drawn as plain segments, never as Rich markup: an escape sequence or ``[bold]`` in a
remote line shows as text. A one-cell gutter tells the streams apart without colour
(``!`` stderr, ``›`` the engine's own lines, ``▶`` a step starting).

Filters and searches use the lists' grammar (``text``, ``~regex``; a filter takes a
leading ``!`` to keep the lines that do *not* match) and are case-insensitive. A filter
keeps ``context`` lines around each match, like ``grep -C``.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import ClassVar, Final, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from cockpit.engine import LogLine, LogStream
from cockpit.textsafe import sanitize_line
from cockpit.widgets.resource_table import FilterError, Query, compile_filter

__all__ = [
    "DEFAULT_MAX_LINES",
    "Grep",
    "LogView",
    "compile_search",
    "format_time",
    "is_heading",
    "safe_text",
]

#: Lines a view keeps in memory by default (the store keeps the whole log).
DEFAULT_MAX_LINES: Final = 100_000
#: Characters of one line a view keeps (a longer line is cut, saying by how much).
DEFAULT_MAX_LINE_CHARS: Final = 10_000
#: Widest source prefix of a merged view (longer names are cut with "…").
MAX_SOURCE_WIDTH: Final = 24

_STDOUT: Final = LogStream.STDOUT
_STDERR: Final = LogStream.STDERR
_ENGINE: Final = LogStream.ENGINE

#: The engine's lines that open a section of the log: a step or a rollback starting.
_HEADING: Final = re.compile(r"(?:step \d+/\d+ .+|rollback of .+): started\Z")

_HEADING_GLYPH: Final = "▶"


def safe_text(text: str) -> str:
    """``text`` as one plain line: escape sequences gone, controls made visible.

    Printable text (the common case) passes as it is: :func:`str.isprintable` is false
    for every character the sanitiser would touch (C0/C1 controls, ESC, tabs, newlines,
    bidi overrides), so the regular expressions run only on lines that need them.
    """
    return text if text.isprintable() else sanitize_line(text)


def is_heading(stream: str, text: str) -> bool:
    """Whether an engine line opens a step (``step 2/3 dump: started``) or a rollback."""
    return stream == _ENGINE and text.endswith(": started") and _HEADING.match(text) is not None


_TIME_CACHE: dict[int, str] = {}


def format_time(at: float) -> str:
    """``HH:MM:SS.mmm`` in local time."""
    second = int(at)
    head = _TIME_CACHE.get(second)
    if head is None:
        if len(_TIME_CACHE) > 4096:
            _TIME_CACHE.clear()
        head = _TIME_CACHE[second] = time.strftime("%H:%M:%S", time.localtime(second))
    return f"{head}.{int((at - second) * 1000):03d}"


TIME_WIDTH: Final = len("00:00:00.000 ")


def compile_search(raw: str) -> re.Pattern[str] | None:
    """A search as typed (``text`` or ``~regex``, any case); None for an empty one.
    Raises :class:`FilterError` for an invalid regular expression."""
    if not raw:
        return None
    if raw.startswith("~"):
        body = raw[1:]
        if not body:
            return None
        try:
            pattern = re.compile(body, re.IGNORECASE)
        except re.error as exc:
            raise FilterError(f"invalid regular expression: {exc}") from None
        if pattern.search("") is not None:
            raise FilterError("the expression matches the empty string")
        return pattern
    return re.compile(re.escape(raw), re.IGNORECASE)


def _line_test(query: Query) -> Callable[[str], bool]:
    """``query.matches`` as one function, compiled once (it runs on every line)."""
    if not query.text:
        return lambda text: True
    test = compile_filter(query.text, query.regex)
    if query.invert:
        return lambda text: not test(text)
    return test


T = TypeVar("T")


class Grep:
    """Which lines a filter keeps, fed one line at a time, in order: the lines that pass
    and up to ``context`` lines before and after each (as ``grep -C`` does).

    :meth:`feed` returns the indices to keep now: the context before the line (never one
    kept already, never one before ``first``), then the line itself. The view feeds its
    window; a save feeds the whole log from the store.
    """

    __slots__ = ("_after", "_last", "context")

    def __init__(self, context: int = 0) -> None:
        self.context = max(0, context)
        self._after = 0
        self._last = -1

    def feed(self, index: int, passes: bool, first: int = 0) -> range:
        if passes:
            start = max(self._last + 1, index - self.context, first)
            self._last = index
            self._after = self.context
            return range(start, index + 1)
        if self._after > 0:
            self._after -= 1
            self._last = index
            return range(index, index + 1)
        return range(0)

    @classmethod
    def select(
        cls, items: Iterable[T], passes: Callable[[T], bool], context: int = 0
    ) -> Iterator[T]:
        """The items a filter keeps (with their context), in order."""
        grep = cls(context)
        recent: list[T] = []  # the last ``context`` items, for the context before a match
        for index, item in enumerate(items):
            kept = grep.feed(index, passes(item))
            for i in kept:
                yield item if i == index else recent[len(recent) - (index - i)]
            if context:
                recent.append(item)
                if len(recent) > context:
                    del recent[0]


#: One line of the window, as a plain tuple (cheap to make; holding only atoms, the
#: garbage collector stops tracking it): sanitised text, its width in cells, time,
#: stream code, source prefix, task id, sequence number, whether it is a heading.
_Entry = tuple[str, int, float, int, str, int, int, bool]
_TEXT: Final = 0
_CELLS: Final = 1
_AT: Final = 2
_STREAM: Final = 3
_SOURCE: Final = 4
_IS_HEADING: Final = 7
_OUT: Final = 0
_ERR: Final = 1
_ENG: Final = 2
_STREAM_CODE: Final = {_STDOUT: _OUT, _STDERR: _ERR, _ENGINE: _ENG}
_GUTTER_OF: Final = {_OUT: " ", _ERR: "!", _ENG: "›"}


class LogView(ScrollView, can_focus=True):
    """The lines of one task's log, or of several merged (with a source prefix each)."""

    #: Seconds lines wait in the buffer at most before they are drawn.
    FLUSH_INTERVAL: ClassVar[float] = 0.05
    #: Lines one flush takes at most; the rest go on the next turn of the event loop.
    FLUSH_CHUNK: ClassVar[int] = 5_000
    #: Most context lines a filter may keep around a match.
    MAX_CONTEXT: ClassVar[int] = 99

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll_by(1)", "Down", show=False, id="log.down"),
        Binding("k,up", "scroll_by(-1)", "Up", show=False, id="log.up"),
        Binding("g,home", "top", "Top", show=False, id="log.top"),
        Binding("G,end", "bottom", "Bottom (follow)", show=False, id="log.bottom"),
        Binding("ctrl+d", "page(0.5)", "Half page down", show=False, id="log.half_down"),
        Binding("ctrl+u", "page(-0.5)", "Half page up", show=False, id="log.half_up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="log.page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="log.page_up"),
        Binding("h,left", "sideways(-8)", "Left", show=False, id="log.left"),
        Binding("l,right", "sideways(8)", "Right", show=False, id="log.right"),
        Binding("f", "toggle_follow", "Follow", id="log.follow"),
        Binding("n", "next_match", "Next match", show=False, id="log.next_match"),
        Binding("N", "previous_match", "Previous match", show=False, id="log.previous_match"),
        Binding("w", "toggle_wrap", "Wrap", show=False, id="log.wrap"),
        Binding("t", "toggle_timestamps", "Times", show=False, id="log.timestamps"),
        Binding("plus", "context(1)", "More context", show=False, id="log.more_context"),
        Binding("minus", "context(-1)", "Less context", show=False, id="log.less_context"),
        Binding("y", "copy", "Copy", show=False, id="log.copy"),
        Binding("Y", "copy_all", "Copy all", show=False, id="log.copy_all"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "log-view--stderr",
        "log-view--engine",
        "log-view--heading",
        "log-view--gutter",
        "log-view--gutter-stderr",
        "log-view--time",
        "log-view--source",
        "log-view--match",
        "log-view--match-current",
        "log-view--context",
        "log-view--banner",
        "log-view--message",
    }

    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $foreground;
        height: 1fr;
        overflow-y: auto;
        overflow-x: auto;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 1;
        & > .log-view--stderr { color: $text-error; }
        & > .log-view--engine { color: $text-muted; }
        & > .log-view--heading { color: $text-accent; text-style: bold; }
        & > .log-view--gutter { color: $text-muted; }
        & > .log-view--gutter-stderr { color: $text-error; text-style: bold; }
        & > .log-view--time { color: $text-muted; }
        & > .log-view--source { color: $text-secondary; }
        & > .log-view--match { text-style: reverse; }
        & > .log-view--match-current { color: $text-warning; text-style: bold reverse underline; }
        & > .log-view--context { text-style: dim; }
        & > .log-view--banner { color: $text-muted; text-style: italic; }
        & > .log-view--message { color: $text-muted; text-style: italic; }
    }
    """

    #: Most bytes ``Y`` puts on the clipboard (terminals cap OSC 52 payloads).
    MAX_COPY_BYTES: ClassVar[int] = 1 << 20

    class Changed(Message):
        """What the view shows changed (lines in, follow, filter, search…): for a status."""

        def __init__(self, view: LogView) -> None:
            self.view = view
            super().__init__()

        @property
        def control(self) -> LogView:
            return self.view

    def __init__(
        self,
        *,
        max_lines: int = DEFAULT_MAX_LINES,
        max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
        sources: Mapping[int, str] | None = None,
        empty_text: str = "no log lines yet",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.max_lines = max(1, max_lines)
        self.max_line_chars = max(16, max_line_chars)
        self.empty_text = empty_text
        #: A message shown instead of the lines (the log cannot be read…), or None.
        self.message: str | None = None
        self._sources: dict[int, str] = dict(sources or {})
        self._source_width = 0
        self._update_source_width()
        # the window: _lines[i] is line number _base + i of everything written
        self._lines: list[_Entry] = []
        self._base = 0
        self._pending: list[_Entry] = []
        self._flush_timer: Timer | None = None
        self._flush_soon = False
        self._received = 0
        self._skipped = 0  # lines of the log never loaded (before the window)
        self._overflowed = 0  # lines that came faster than the window could take them
        self._max_cells = 0
        # modes
        self._follow = True
        self._live = True
        self._wrap = False
        self._timestamps = False
        self._new_while_paused = 0
        # filter: the absolute numbers of the lines shown, or None for every line
        self._query = Query()
        self._ctx_lines = 0
        self._grep = Grep(0)
        self._shown: list[int] | None = None
        # search: the absolute numbers of the shown lines that match, and the current one
        self._search_raw = ""
        self._search: re.Pattern[str] | None = None
        self._matches: list[int] = []
        self._current: int | None = None
        # wrap: _ends[k] = rows through shown item k, counted from the first item ever
        self._ends: list[int] = []
        self._ends_base = 0
        self._wrap_width = 0
        self._rewrap_due = False
        # rendering
        self._styles: dict[str, Style] = {}
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self._cache_key: tuple[object, ...] = ()

    # -- what the view shows -------------------------------------------------------------

    @property
    def received(self) -> int:
        """Lines written to the view since it opened (drawn, dropped or still waiting)."""
        return self._received

    @property
    def dropped(self) -> int:
        """Lines of the log the view does not hold: never loaded, or fallen out of the window."""
        return self._skipped + self._overflowed + self._base

    @property
    def overflowed(self) -> int:
        """Lines that came faster than the view took them and were never drawn (counted
        in :attr:`dropped` too)."""
        return self._overflowed

    @property
    def line_count(self) -> int:
        """Lines in the window."""
        return len(self._lines)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def shown_count(self) -> int:
        """Lines shown: the window, or what the filter keeps of it."""
        return len(self._lines) if self._shown is None else len(self._shown)

    @property
    def following(self) -> bool:
        return self._follow

    @property
    def live(self) -> bool:
        """Whether more lines may come (the task has not ended)."""
        return self._live

    @live.setter
    def live(self, value: bool) -> None:
        if value != self._live:
            self._live = value
            self._changed()

    @property
    def wrap(self) -> bool:
        return self._wrap

    @property
    def timestamps(self) -> bool:
        return self._timestamps

    @property
    def filter_text(self) -> str:
        return self._query.filter_text

    @property
    def context(self) -> int:
        return self._ctx_lines

    @property
    def search_text(self) -> str:
        return self._search_raw

    @property
    def match_count(self) -> int:
        return len(self._matches)

    @property
    def current_match(self) -> int | None:
        """Which match is current (0-based), or None."""
        if self._current is None:
            return None
        i = bisect_left(self._matches, self._current)
        return i if i < len(self._matches) and self._matches[i] == self._current else None

    @property
    def new_while_paused(self) -> int:
        return self._new_while_paused

    def set_sources(self, sources: Mapping[int, str]) -> None:
        """The source prefix of each task's lines (a merged view); new tasks may be added."""
        self._sources.update(sources)
        if self._update_source_width():
            self._relayout()

    def _update_source_width(self) -> bool:
        width = min(MAX_SOURCE_WIDTH, max((cell_len(s) for s in self._sources.values()), default=0))
        changed = width != self._source_width
        self._source_width = width
        return changed

    def source_of(self, task_id: int) -> str:
        """The prefix of a task's lines ("" in a single task's view)."""
        return self._sources.get(task_id, "")

    def note_skipped(self, count: int) -> None:
        """``count`` lines of the log come before what is written here and are not loaded."""
        self._skipped = max(0, count)
        self._relayout()

    def set_message(self, message: str | None) -> None:
        self.message = message
        self.refresh()
        self._changed()

    def status_text(self) -> str:
        """One line: follow state, counts, filter, search, modes."""
        parts: list[str] = []
        if not self._live:
            parts.append("■ ended")
        elif self._follow:
            parts.append("● following")
        else:
            new = f" +{self._new_while_paused:,} new" if self._new_while_paused else ""
            parts.append(f"‖ paused{new}")
        parts.append(f"{len(self._lines):,} lines")
        if self.dropped:
            parts.append(f"{self.dropped:,} dropped")
        if self._query.text:
            around = f" ±{self._ctx_lines}" if self._ctx_lines else ""
            parts.append(f"&{self._query.filter_text}{around}: {self.shown_count:,}")
        if self._search is not None:
            current = self.current_match
            where = f"{current + 1:,}/" if current is not None else ""
            parts.append(f"/{self._search_raw} {where}{len(self._matches):,}")
        modes = [m for m, on in (("wrap", self._wrap), ("time", self._timestamps)) if on]
        if modes:
            parts.append(" ".join(modes))
        return " · ".join(parts)

    def _changed(self) -> None:
        self.post_message(self.Changed(self))

    # -- writing -------------------------------------------------------------------------

    def write_lines(self, lines: Sequence[LogLine]) -> None:
        """Add lines (raw, as read from the store); drawn at the next flush.

        Each line is sanitised and made a window entry now, so the caller's objects die
        young (a flood of them surviving into the garbage collector's oldest generation
        makes full collections long and frequent: pauses of a tenth of a second).
        """
        if not lines:
            return
        self._pending.extend(self._entries(lines))
        self._received += len(lines)
        if self._flush_timer is None and not self._flush_soon and self.is_mounted:
            self._flush_timer = self.set_timer(self.FLUSH_INTERVAL, self._flush_due)

    def _flush_due(self) -> None:
        self._flush_timer = None
        self.flush()

    def flush(self, *, everything: bool = False) -> None:
        """Take the waiting lines into the window now: at most :attr:`FLUSH_CHUNK` (the
        rest on the next turn of the event loop), or ``everything`` (a log opening)."""
        self._flush_soon = False
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        pending = self._pending
        if not pending:
            return
        # Lines beyond the window's size would only fall out again: count them dropped.
        excess = len(pending) - self.max_lines
        if excess > 0:
            self._overflowed += excess
            del pending[:excess]
        size = len(pending) if everything else self.FLUSH_CHUNK
        take = pending[:size]
        del pending[:size]
        self._ingest(take)
        if pending:
            self._flush_soon = True
            self.call_later(self.flush)

    def _entries(self, lines: Sequence[LogLine]) -> list[_Entry]:
        """Window entries for ``lines``: sanitised, cut to ``max_line_chars``, measured."""
        out: list[_Entry] = []
        append = out.append
        source_of = self._sources.get
        limit = self.max_line_chars
        widest = self._max_cells
        codes = _STREAM_CODE
        heading = _HEADING.match
        for line in lines:
            text = line.text
            if not text.isprintable():
                text = sanitize_line(text)
            if len(text) > limit:
                text = f"{text[:limit]}… ({len(text) - limit:,} more characters)"
            cells = len(text) if text.isascii() else cell_len(text)
            if cells > widest:
                widest = cells
            code = codes.get(line.stream, _OUT)
            append(
                (
                    text,
                    cells,
                    line.at,
                    code,
                    source_of(line.task_id, ""),
                    line.task_id,
                    line.seq,
                    code == _ENG and text.endswith(": started") and heading(text) is not None,
                )
            )
        self._max_cells = widest
        return out

    def _ingest(self, new: list[_Entry]) -> None:
        entries = self._lines
        start = self._base + len(entries)
        first_item = self.shown_count
        banner_before = self._banner_rows
        entries.extend(new)
        if not self._follow:
            self._new_while_paused += len(new)
        if self._shown is not None:
            self._filter_from(start)  # (finds the search's matches, counts wrapped rows)
        else:
            self._search_from(start)
            if self._wrap:
                self._wrap_from(first_item)
        rows_gone = self._prune()
        self._update_size()
        if self._follow:
            self._scroll_to_end()
        else:
            # The lines on screen stay where they are (while they are in the window).
            shift = self._banner_rows - banner_before - rows_gone
            if shift:
                self.scroll_to(
                    y=max(0, self.scroll_y + shift), animate=False, immediate=True, force=True
                )
        self.refresh()
        self._changed()

    def _prune(self) -> int:
        """Keep at most ``max_lines`` lines: the oldest fall out of the window.
        Returns how many rows went from the top."""
        excess = len(self._lines) - self.max_lines
        if excess <= 0:
            return 0
        del self._lines[:excess]
        self._base += excess
        base = self._base
        items_gone = excess
        if self._shown is not None:
            items_gone = bisect_left(self._shown, base)
            del self._shown[:items_gone]
        if self._matches:
            del self._matches[: bisect_left(self._matches, base)]
        if self._current is not None and self._current < base:
            self._current = None
        if self._wrap and items_gone:
            before = self._ends_base
            self._ends_base = self._ends[items_gone - 1]
            del self._ends[:items_gone]
            return self._ends_base - before
        return items_gone

    # -- items and rows ------------------------------------------------------------------
    #
    # An *item* is a line shown (the window, or what the filter keeps of it), numbered
    # from 0; a *row* is a line of the screen (an item spans several rows when wrapped).
    # Row 0 is a banner when lines were dropped.

    def _item_abs(self, k: int) -> int:
        return self._shown[k] if self._shown is not None else self._base + k

    def _entry_at(self, absolute: int) -> _Entry:
        return self._lines[absolute - self._base]

    def _item_of_abs(self, absolute: int) -> int | None:
        if self._shown is None:
            k = absolute - self._base
            return k if 0 <= k < len(self._lines) else None
        k = bisect_left(self._shown, absolute)
        return k if k < len(self._shown) and self._shown[k] == absolute else None

    @property
    def _banner_rows(self) -> int:
        return 1 if self.dropped else 0

    def _prefix_width(self) -> int:
        width = 1  # the gutter
        if self._timestamps:
            width += TIME_WIDTH
        if self._source_width:
            width += self._source_width + 1
        return width

    def _text_width(self) -> int:
        return max(1, self.scrollable_content_region.width - self._prefix_width())

    def _item_rows(self) -> int:
        if self._wrap:
            return (self._ends[-1] - self._ends_base) if self._ends else 0
        return self.shown_count

    def _row_start(self, k: int) -> int:
        """The first row of item ``k`` (not counting the banner)."""
        if not self._wrap:
            return k
        return (self._ends[k - 1] if k > 0 else self._ends_base) - self._ends_base

    def _locate(self, row: int) -> tuple[int, int]:
        """The item on row ``row`` (banner excluded) and the row within it."""
        if not self._wrap:
            return row, 0
        k = bisect_right(self._ends, row + self._ends_base)
        return k, row - self._row_start(k)

    def _wrap_from(self, k: int) -> None:
        """Count the rows of items ``k`` onwards (wrapping at the current width)."""
        width = self._wrap_width = self._text_width()
        ends = self._ends
        del ends[k:]
        total = ends[-1] if ends else self._ends_base
        shown = self._shown
        lines = self._lines
        base = self._base
        count = self.shown_count
        for i in range(k, count):
            cells = lines[(shown[i] if shown is not None else base + i) - base][_CELLS]
            total += (cells - 1) // width + 1 if cells else 1
            ends.append(total)

    def _update_size(self) -> None:
        rows = self._banner_rows + self._item_rows()
        # wrapped: nothing to scroll sideways (and no horizontal scrollbar)
        width = 0 if self._wrap else self._prefix_width() + self._max_cells
        self.virtual_size = Size(width, rows)

    def _relayout(self) -> None:
        """Recount rows after what changes them (wrap, width, prefixes, the filter)."""
        if self._wrap:
            self._ends.clear()
            self._ends_base = 0
            self._wrap_from(0)
        self._update_size()
        if self._follow:
            self._scroll_to_end()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        if self._follow:
            self.call_after_refresh(self._follow_end)
        self._rewrap()

    def _rewrap(self) -> None:
        """Wrap again when the width for text changed (a resize, a scrollbar coming or
        going), keeping the top line on screen."""
        self._rewrap_due = False
        if self._wrap and self._text_width() != self._wrap_width:
            top = self._top_item()
            self._relayout()
            if not self._follow and top is not None:
                self._scroll_to_item(top, where="top")

    # -- scrolling -------------------------------------------------------------------

    def _scroll_to_end(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def _follow_end(self) -> None:
        if self._follow:
            self._scroll_to_end()

    def _top_item(self) -> int | None:
        row = round(self.scroll_y) - self._banner_rows
        if self.shown_count == 0:
            return None
        return min(self._locate(max(0, row))[0], self.shown_count - 1)

    def _scroll_to_item(self, k: int, *, where: str = "third") -> None:
        height = max(1, self.scrollable_content_region.height)
        row = self._banner_rows + self._row_start(k)
        if where == "third":
            row -= height // 3
        self.scroll_to(y=max(0, row), animate=False, immediate=True, force=True)

    def pause(self) -> None:
        """Stop following: the view stays where it is while lines keep arriving."""
        if self._follow:
            self._follow = False
            self._new_while_paused = 0
            self._changed()

    def resume(self) -> None:
        """Follow again, from the bottom."""
        self._new_while_paused = 0
        self._follow = True
        self._scroll_to_end()
        self._changed()

    def action_toggle_follow(self) -> None:
        if self._follow:
            self.pause()
        else:
            self.resume()

    def action_scroll_by(self, rows: int) -> None:
        if rows < 0:
            self.pause()
        self.scroll_to(y=self.scroll_y + rows, animate=False, immediate=True, force=True)

    def action_page(self, pages: float) -> None:
        height = max(1, self.scrollable_content_region.height)
        self.action_scroll_by(int(pages * height) or (1 if pages > 0 else -1))

    def action_top(self) -> None:
        self.pause()
        self.scroll_to(y=0, animate=False, immediate=True, force=True)

    def action_bottom(self) -> None:
        self.resume()

    def action_sideways(self, cells: int) -> None:
        if not self._wrap:
            self.scroll_to(
                x=max(0, self.scroll_x + cells), animate=False, immediate=True, force=True
            )

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.pause()

    def on_mount(self) -> None:
        if self._pending and self._flush_timer is None:
            self._flush_timer = self.set_timer(self.FLUSH_INTERVAL, self._flush_due)

    # -- modes -----------------------------------------------------------------------

    def action_toggle_wrap(self) -> None:
        self.set_wrap(not self._wrap)

    def set_wrap(self, wrap: bool) -> None:
        if wrap == self._wrap:
            return
        top = self._top_item()
        self._wrap = wrap
        self._ends.clear()
        self._ends_base = 0
        self.scroll_to(x=0, animate=False, immediate=True, force=True)
        self._relayout()
        if not self._follow and top is not None:
            self._scroll_to_item(top, where="top")
        self._changed()

    def action_toggle_timestamps(self) -> None:
        self.set_timestamps(not self._timestamps)

    def set_timestamps(self, timestamps: bool) -> None:
        if timestamps == self._timestamps:
            return
        top = self._top_item()
        self._timestamps = timestamps
        self._relayout()
        if not self._follow and top is not None:
            self._scroll_to_item(top, where="top")
        self._changed()

    # -- filter ----------------------------------------------------------------------

    def set_filter(self, raw: str, context: int | None = None) -> None:
        """Show only the lines ``raw`` keeps (``text``, ``~regex``, ``!`` inverts) and
        ``context`` lines around each. Raises :class:`FilterError` (and keeps the last
        good filter) when it cannot be applied."""
        query = Query.from_filter(raw)
        query.check()
        if context is not None:
            self._ctx_lines = min(self.MAX_CONTEXT, max(0, context))
        self._query = query
        self._refilter()

    def set_context(self, context: int) -> None:
        context = min(self.MAX_CONTEXT, max(0, context))
        if context != self._ctx_lines:
            self._ctx_lines = context
            if self._query.text:
                self._refilter()
            else:
                self._changed()

    def action_context(self, step: int) -> None:
        self.set_context(self._ctx_lines + step)

    def _refilter(self) -> None:
        top = self._top_item()
        anchor = self._item_abs(top) if top is not None else None
        if self._query.text:
            self._shown = []
            self._grep = Grep(self._ctx_lines)
            self._filter_from(self._base)
        else:
            self._shown = None
            self._search_from(self._base, reset=True)
        self._relayout()
        if not self._follow and anchor is not None:
            self._scroll_near(anchor)
        self._changed()

    def _scroll_near(self, absolute: int) -> None:
        """Show the item for line ``absolute``, or the first one after it."""
        if self._shown is None:
            k = max(0, absolute - self._base)
        else:
            k = bisect_left(self._shown, absolute)
        if self.shown_count:
            self._scroll_to_item(min(k, self.shown_count - 1), where="top")

    def _filter_from(self, start: int) -> None:
        """Run the filter over lines ``start`` onwards (absolute numbers), in order."""
        shown = self._shown
        assert shown is not None
        passes = _line_test(self._query)
        grep = self._grep
        base = self._base
        lines = self._lines
        search = self._search
        matches = self._matches
        if start == base:
            matches.clear()
        first_new = len(shown)
        for absolute in range(start, base + len(lines)):
            for kept in grep.feed(absolute, passes(lines[absolute - base][_TEXT]), base):
                shown.append(kept)
        if search is not None:
            for kept in shown[first_new:]:
                if search.search(lines[kept - base][_TEXT]) is not None:
                    matches.append(kept)
        if self._wrap:
            self._wrap_from(first_new)

    def _search_from(self, start: int, *, reset: bool = False) -> None:
        """Find the search's matches among the shown lines from ``start`` onwards."""
        if reset:
            self._matches.clear()
        search = self._search
        if search is None:
            return
        base = self._base
        lines = self._lines
        matches = self._matches
        if self._shown is None:
            for absolute in range(start, base + len(lines)):
                if search.search(lines[absolute - base][_TEXT]) is not None:
                    matches.append(absolute)
        else:
            for absolute in self._shown[bisect_left(self._shown, start) :]:
                if search.search(lines[absolute - base][_TEXT]) is not None:
                    matches.append(absolute)

    # -- search ----------------------------------------------------------------------

    def set_search(self, raw: str) -> None:
        """Highlight ``raw`` (``text`` or ``~regex``) and count its matches; raises
        :class:`FilterError` when it cannot be applied (the last good search stays)."""
        pattern = compile_search(raw)
        self._search_raw = raw if pattern is not None else ""
        self._search = pattern
        self._current = None
        self._search_from(self._base, reset=True)
        self.refresh()
        self._changed()

    def jump_to_match(self, *, forward: bool = True, from_top: bool = False) -> bool:
        """Make the next (or previous) match current and show it; False when there is none.

        From the current match, or (with none, or ``from_top``) from the top of the screen.
        Past the last match it goes round to the first (and back).
        """
        matches = self._matches
        if not matches:
            return False
        if self._current is not None and not from_top:
            here = self._current
            i = bisect_right(matches, here) if forward else bisect_left(matches, here) - 1
        else:
            top = self._top_item()
            here = self._item_abs(top) if top is not None else self._base
            i = bisect_left(matches, here) if forward else bisect_left(matches, here) - 1
        i %= len(matches)
        self._current = matches[i]
        self.pause()
        k = self._item_of_abs(self._current)
        if k is not None:
            self._scroll_to_item(k)
        self.refresh()
        self._changed()
        return True

    def action_next_match(self) -> None:
        self.jump_to_match(forward=True)

    def action_previous_match(self) -> None:
        self.jump_to_match(forward=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_match", "previous_match"):
            return self._search is not None
        if action == "context":
            return bool(self._query.text)
        return True

    # -- text out --------------------------------------------------------------------

    def format_entry(self, text: str, at: float, source: str) -> str:
        """A line as copied or saved: its time (when shown), its source, its text."""
        head = format_time(at) + " " if self._timestamps else ""
        if self._source_width:
            head += f"{source:<{self._source_width}} "
        return head + text

    def shown_lines(self) -> list[str]:
        """Every line shown (the filter applied), as :meth:`format_entry` writes them."""
        count = self.shown_count
        out = []
        for k in range(count):
            entry = self._entry_at(self._item_abs(k))
            out.append(self.format_entry(entry[_TEXT], entry[_AT], entry[_SOURCE]))
        return out

    def screen_lines(self) -> list[str]:
        """The lines on screen (each once, however many rows it wraps to)."""
        height = max(1, self.scrollable_content_region.height)
        first = round(self.scroll_y) - self._banner_rows
        seen: list[str] = []
        last_item = -1
        for row in range(max(0, first), first + height):
            k, _ = self._locate(row)
            if k >= self.shown_count:
                break
            if k != last_item:
                entry = self._entry_at(self._item_abs(k))
                seen.append(self.format_entry(entry[_TEXT], entry[_AT], entry[_SOURCE]))
                last_item = k
        return seen

    def action_copy(self) -> None:
        """``y``: the lines on screen to the clipboard (OSC 52)."""
        self._copy(self.screen_lines(), "on screen")

    def action_copy_all(self) -> None:
        """``Y``: every line shown (the filter applied) to the clipboard."""
        self._copy(self.shown_lines(), "shown")

    def _copy(self, lines: list[str], what: str) -> None:
        if not lines:
            self.notify("nothing to copy", title="Copy", severity="warning", markup=False)
            return
        text = "\n".join(lines) + "\n"
        size = len(text.encode("utf-8"))
        if size > self.MAX_COPY_BYTES:
            self.notify(
                f"{len(lines):,} lines ({size // 1024:,} KiB) are too many for the clipboard "
                f"(at most {self.MAX_COPY_BYTES // 1024:,} KiB): filter them, or save them with s",
                title="Copy",
                severity="warning",
                markup=False,
            )
            return
        self.app.copy_to_clipboard(text)
        noun = "line" if len(lines) == 1 else "lines"
        self.notify(
            f"copied {len(lines):,} {noun} {what} to the clipboard (OSC 52)",
            title="Copy",
            markup=False,
        )

    # -- rendering -------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._styles.clear()
        self._cache.clear()
        super().notify_style_update()

    def on_focus(self) -> None:
        self.refresh()

    def _style(self, name: str) -> Style:
        style = self._styles.get(name)
        if style is None:
            style = self._styles[name] = self.get_component_rich_style(f"log-view--{name}")
        return style

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if self._wrap and not self._rewrap_due and self._text_width() != self._wrap_width:
            self._rewrap_due = True  # (drawn as counted until then: nothing is lost)
            self.call_after_refresh(self._rewrap)
        key = (
            round(self.scroll_x),
            width,
            self._wrap,
            self._timestamps,
            self._source_width,
            self._search_raw,
            self._current,
            self._query,
            self._ctx_lines,
        )
        if key != self._cache_key:
            self._cache.clear()
            self._cache_key = key
        row = round(self.scroll_y) + y
        if self._banner_rows:
            if row == 0:
                return self._message_strip(self._banner_text(), width, base, "banner")
            row -= 1
        count = self.shown_count
        if count == 0:
            if row == 0:
                text = self.message or (
                    "no line passes the filter" if self._query.text else self.empty_text
                )
                return self._message_strip(text, width, base, "message")
            return Strip.blank(width, base)
        k, sub = self._locate(row)
        if k >= count or row < 0:
            return Strip.blank(width, base)
        absolute = self._item_abs(k)
        cached = self._cache.get((absolute, sub))
        if cached is not None:
            return cached
        strip = self._render_item(absolute, sub, width, base)
        self._cache[(absolute, sub)] = strip
        return strip

    def _banner_text(self) -> str:
        return (
            f"── {self.dropped:,} earlier lines dropped (this view keeps {self.max_lines:,}; "
            "s saves them all) ──"
        )

    def _message_strip(self, text: str, width: int, base: Style, style: str) -> Strip:
        return Strip([Segment(" " + text, base + self._style(style))]).crop_extend(0, width, base)

    def _render_item(self, absolute: int, sub: int, width: int, base: Style) -> Strip:
        entry = self._entry_at(absolute)
        stream = entry[_STREAM]
        if entry[_IS_HEADING]:
            text_style = base + self._style("heading")
        elif stream == _ERR:
            text_style = base + self._style("stderr")
        elif stream == _ENG:
            text_style = base + self._style("engine")
        else:
            text_style = base
        if self._shown is not None and self._ctx_lines and not self._query.matches(entry[_TEXT]):
            text_style += self._style("context")
        prefix_width = self._prefix_width()
        segments: list[Segment] = []
        if sub == 0:
            glyph = _HEADING_GLYPH if entry[_IS_HEADING] else _GUTTER_OF[stream]
            gutter = "gutter-stderr" if stream == _ERR else "gutter"
            segments.append(Segment(glyph, base + self._style(gutter)))
            if self._timestamps:
                segments.append(Segment(format_time(entry[_AT]) + " ", base + self._style("time")))
            if self._source_width:
                source = entry[_SOURCE]
                if cell_len(source) > self._source_width:
                    source = source[: self._source_width - 1] + "…"
                pad = self._source_width - cell_len(source)
                segments.append(Segment(source + " " * (pad + 1), base + self._style("source")))
        else:
            segments.append(Segment(" " * prefix_width, base))
        text = Strip(self._text_segments(entry[_TEXT], absolute, text_style), entry[_CELLS])
        avail = self._wrap_width if self._wrap else max(1, width - prefix_width)
        start = sub * avail if self._wrap else round(self.scroll_x)
        text = text.crop_extend(start, start + avail, base)
        return Strip([*segments, *text]).crop_extend(0, width, base)

    def _text_segments(self, text: str, absolute: int, style: Style) -> list[Segment]:
        search = self._search
        if search is None or not text:
            return [Segment(text, style)]
        spans = [m.span() for m in search.finditer(text) if m.end() > m.start()]
        if not spans:
            return [Segment(text, style)]
        mark = style + self._style("match-current" if absolute == self._current else "match")
        out: list[Segment] = []
        at = 0
        for start, end in spans:
            if start > at:
                out.append(Segment(text[at:start], style))
            out.append(Segment(text[start:end], mark))
            at = end
        if at < len(text):
            out.append(Segment(text[at:], style))
        return out

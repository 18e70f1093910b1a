"""Tiles: one small box per server, client or platform with how many of its things are
OK, WARNING, CRITICAL or UNKNOWN, laid out in rows that wrap to the width.

:class:`TileGrid` is a line-API :class:`~textual.scroll_view.ScrollView`: it renders the
lines on screen only, never one widget per tile, so a fleet of hundreds of servers costs
nothing more than the lines shown. A cursor moves over the tiles (arrows or vim keys:
``h`` ``j`` ``k`` ``l``, ``g`` ``G``, ctrl+d and ctrl+u by half the rows on screen);
``enter`` posts :class:`TileGrid.Selected`.

Each tile says its state in a glyph and words (``✗``, ``crit``…), so it reads without
colour; its border takes the state's colour where there is colour. Names are sanitised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cockpit.textsafe import sanitize

__all__ = ["STATES", "TileGrid", "TileItem", "tile_counts_text"]

#: The states a tile counts, in the order it shows them, with their short word and glyph.
STATES: Final = (
    ("OK", "ok", "✓"),
    ("WARNING", "warn", "!"),
    ("CRITICAL", "crit", "✗"),
    ("UNKNOWN", "unkn", "?"),
)
_GLYPH: Final = {state: glyph for state, _word, glyph in STATES}
_CLASS: Final = {"OK": "ok", "WARNING": "warn", "CRITICAL": "crit", "UNKNOWN": "unknown"}


@dataclass(frozen=True, slots=True)
class TileItem:
    """One tile: a server, client or platform, its worst state and its counts by state."""

    kind: str
    name: str
    state: str  # OK | WARNING | CRITICAL | UNKNOWN
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"


def tile_counts_text(counts: Mapping[str, int]) -> str:
    """``197 ok 2 warn 1 crit``: OK always, the other states when there is any."""
    parts = [
        f"{counts.get(state, 0):,} {word}"
        for state, word, _glyph in STATES
        if state == "OK" or counts.get(state, 0)
    ]
    return " ".join(parts)


def _fit(text: str, width: int) -> str:
    """``text`` cut (with an ellipsis) or padded to exactly ``width`` cells."""
    if width <= 0:
        return ""
    if cell_len(text) > width:
        return set_cell_size(text, width - 1) + "…" if width > 1 else "…"
    return text + " " * (width - cell_len(text))


class TileGrid(ScrollView, can_focus=True):
    """Tiles in rows that wrap to the width; a cursor; ``enter`` opens the tile."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("l,right", "move(1)", "Right", show=False, id="tiles.right"),
        Binding("h,left", "move(-1)", "Left", show=False, id="tiles.left"),
        Binding("j,down", "move_row(1)", "Down", show=False, id="tiles.down"),
        Binding("k,up", "move_row(-1)", "Up", show=False, id="tiles.up"),
        Binding("g,home", "move_to(0)", "First", show=False, id="tiles.first"),
        Binding("G,end", "move_to(-1)", "Last", show=False, id="tiles.last"),
        Binding("ctrl+d", "half_page(1)", "Half page down", show=False, id="tiles.half_down"),
        Binding("ctrl+u", "half_page(-1)", "Half page up", show=False, id="tiles.half_up"),
        Binding("enter", "select", "Open", id="tiles.open"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "tiles--ok",
        "tiles--warn",
        "tiles--crit",
        "tiles--unknown",
        "tiles--name",
        "tiles--kind",
        "tiles--cursor",
        "tiles--cursor-blurred",
        "tiles--message",
    }

    DEFAULT_CSS = """
    TileGrid {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        scrollbar-size-vertical: 1;
        height: auto;
        & > .tiles--ok { color: $text-success; }
        & > .tiles--warn { color: $text-warning; text-style: bold; }
        & > .tiles--crit { color: $text-error; text-style: bold; }
        & > .tiles--unknown { color: $text-muted; }
        & > .tiles--name { text-style: bold; }
        & > .tiles--kind { color: $text-muted; }
        & > .tiles--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .tiles--cursor-blurred {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .tiles--message { color: $text-muted; text-style: italic; }
        &:nocolor > .tiles--cursor { text-style: bold reverse; }
        &:nocolor > .tiles--cursor-blurred { text-style: underline; }
    }
    """

    #: Lines of one tile (top border, counts, bottom border), and the least width of one.
    TILE_HEIGHT: ClassVar[int] = 3
    MIN_TILE_WIDTH: ClassVar[int] = 24
    GAP: ClassVar[int] = 1

    class _TileMessage(Message):
        def __init__(self, grid: TileGrid, index: int, item: TileItem) -> None:
            self.grid = grid
            self.index = index
            self.item = item
            super().__init__()

        @property
        def control(self) -> TileGrid:
            return self.grid

    class Selected(_TileMessage):
        """A tile was chosen (``enter`` or a click)."""

    class Highlighted(_TileMessage):
        """The cursor moved onto a tile."""

    def __init__(
        self,
        *,
        empty_text: str = "nothing to show",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.items: list[TileItem] = []
        self.loaded = False
        self.cursor_index = 0
        self.empty_text = empty_text
        self._tile_styles: dict[str, Style] = {}

    # -- data -------------------------------------------------------------------------

    def set_tiles(self, items: Sequence[TileItem]) -> None:
        """Show ``items``; the cursor stays on the tile it was on when it is still there."""
        current = self.current_item
        self.items = list(items)
        self.loaded = True
        index = 0
        if current is not None:
            index = next((i for i, t in enumerate(self.items) if t.key == current.key), 0)
        self.cursor_index = min(index, max(0, len(self.items) - 1))
        self._update_virtual_size()
        self._scroll_to_cursor()
        self.refresh()

    @property
    def current_item(self) -> TileItem | None:
        if 0 <= self.cursor_index < len(self.items):
            return self.items[self.cursor_index]
        return None

    # -- geometry ---------------------------------------------------------------------

    @property
    def _view_width(self) -> int:
        return self.scrollable_content_region.width or self.size.width

    @property
    def tile_width(self) -> int:
        """Wide enough for the longest counts line (and a short name), within the view."""
        want = self.MIN_TILE_WIDTH
        for item in self.items:
            want = max(want, cell_len(tile_counts_text(item.counts)) + 4)
        return max(8, min(want, self._view_width))

    @property
    def per_row(self) -> int:
        width = self._view_width
        return max(1, (width + self.GAP) // (self.tile_width + self.GAP))

    @property
    def rows(self) -> int:
        return -(-len(self.items) // self.per_row) if self.items else 0

    def wanted_height(self) -> int:
        """Lines that show every tile (at least one line for the empty text)."""
        return max(1, self.rows * self.TILE_HEIGHT)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._view_width, self.wanted_height())

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._scroll_to_cursor()

    def _scroll_to_cursor(self) -> None:
        if not self.items:
            return
        top_line = self.cursor_index // self.per_row * self.TILE_HEIGHT
        bottom_line = top_line + self.TILE_HEIGHT
        height = max(1, self.scrollable_content_region.height or self.size.height)
        y = round(self.scroll_y)
        if top_line < y:
            self.scroll_to(y=top_line, animate=False, immediate=True)
        elif bottom_line > y + height:
            self.scroll_to(y=bottom_line - height, animate=False, immediate=True)

    # -- keys -------------------------------------------------------------------------

    def move_cursor(self, index: int) -> None:
        if not self.items:
            return
        index = max(0, min(index, len(self.items) - 1))
        if index != self.cursor_index:
            self.cursor_index = index
            self.refresh()
            item = self.items[index]
            self.post_message(self.Highlighted(self, index, item))
        self._scroll_to_cursor()

    def action_move(self, step: int) -> None:
        self.move_cursor(self.cursor_index + step)

    def action_move_row(self, step: int) -> None:
        target = self.cursor_index + step * self.per_row
        if 0 <= target < len(self.items) or step < 0:
            self.move_cursor(target)
        elif self.cursor_index // self.per_row < self.rows - 1:
            self.move_cursor(len(self.items) - 1)  # the last row is short: its last tile

    @property
    def half_page_rows(self) -> int:
        """Rows of tiles that ctrl+d and ctrl+u move by: half of those on screen, at least
        one."""
        height = self.scrollable_content_region.height or self.size.height
        return max(1, height // self.TILE_HEIGHT // 2)

    def action_half_page(self, direction: int) -> None:
        self.action_move_row(direction * self.half_page_rows)

    def action_move_to(self, index: int) -> None:
        self.move_cursor(index if index >= 0 else len(self.items) - 1)

    def action_select(self) -> None:
        item = self.current_item
        if item is not None:
            self.post_message(self.Selected(self, self.cursor_index, item))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or not self.items:
            return
        row = (offset.y + round(self.scroll_y)) // self.TILE_HEIGHT
        column = offset.x // (self.tile_width + self.GAP)
        if column >= self.per_row:
            return
        index = row * self.per_row + column
        if index < len(self.items):
            self.move_cursor(index)
            if event.chain > 1:
                self.action_select()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- rendering --------------------------------------------------------------------

    def notify_style_update(self) -> None:
        self._tile_styles.clear()
        super().notify_style_update()

    def _style(self, name: str) -> Style:
        style = self._tile_styles.get(name)
        if style is None:
            style = self.get_component_rich_style(f"tiles--{name}")
            self._tile_styles[name] = style
        return style

    def render_line(self, y: int) -> Strip:
        width = self._view_width
        base = self.rich_style
        if not self.items:
            if y == 0:
                text = " loading…" if not self.loaded else " " + sanitize(self.empty_text)
                return Strip([Segment(_fit(text, width), base + self._style("message"))])
            return Strip.blank(width, base)
        line = round(self.scroll_y) + y
        row, part = divmod(line, self.TILE_HEIGHT)
        per_row = self.per_row
        tile_width = self.tile_width
        segments: list[Segment] = []
        x = 0
        for column in range(per_row):
            index = row * per_row + column
            if index >= len(self.items):
                break
            if column:
                segments.append(Segment(" " * self.GAP, base))
                x += self.GAP
            segments.extend(self._tile_line(self.items[index], index, part, tile_width, base))
            x += tile_width
        if x < width:
            segments.append(Segment(" " * (width - x), base))
        return Strip(segments).crop(0, width)

    def _tile_line(
        self, item: TileItem, index: int, part: int, width: int, base: Style
    ) -> list[Segment]:
        state = _CLASS.get(item.state, "unknown")
        border = base + self._style(state)
        inner = width - 2
        cursor = index == self.cursor_index
        body = base
        if cursor:
            body = base + self._style("cursor" if self.has_focus else "cursor-blurred")
        if part == 0:
            glyph = _GLYPH.get(item.state, "?")
            name = sanitize(item.name).replace("\n", " ")
            title = _fit(f" {glyph} {name} ", max(1, inner - 1))
            fill = inner - 1 - cell_len(title)
            name_style = body + self._style("name") if cursor else border
            return [
                Segment("╭─", border),
                Segment(title, name_style),
                Segment("─" * max(0, fill) + "╮", border),
            ]
        if part == 1:
            text = _fit(" " + tile_counts_text(item.counts), inner)
            return [Segment("│", border), Segment(text, body), Segment("│", border)]
        kind = _fit(f" {item.kind} ", max(1, inner - 1))
        fill = inner - 1 - cell_len(kind)
        return [
            Segment("╰" + "─" * max(0, fill), border),
            Segment(kind, base + self._style("kind")),
            Segment("─╯", border),
        ]

"""The statistics dashboard (``:dash``, ``:stats``, ``8``): what the fleet is doing now.

From the top: the status line (the fleet's worst state, its problems by state, the
window, the refresh interval or ``PAUSED``, when it was read); the fleet's sparklines
over the window (servers' mean load, requests, 5xx, bandwidth); one tile per server,
client and platform with how many of its things are OK, WARNING, CRITICAL, UNKNOWN; and
the top-N tables: busiest sites, bandwidth, most 5xx, fastest growth, certificates
expiring soonest, disks filling soonest ("full in N days").

``enter`` on a tile or a row opens its charts (:mod:`cockpit.screens.stats`); ``tab``
moves between the tiles and the tables. ``w`` switches the window (1 h, 24 h, 7 d), ``+``
and ``-`` the refresh interval, ``p`` pauses. Everything comes from one core call,
:meth:`cockpit.core.Cockpit.stats_board`, in a named worker: the screen never waits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from cockpit.screens import stats
from cockpit.screens.stats import LiveScreen, StatsScreen, open_screen, step_text, value_text
from cockpit.widgets.resource_table import Column, ListSource, ResourceTable, Row, Tone, cell
from cockpit.widgets.tiles import TileGrid, TileItem

if TYPE_CHECKING:
    from cockpit.status.dashboard import Board, Series, TopRow

__all__ = ["TOPS", "DashboardScreen", "board_status", "top_rows"]

#: The fleet's sparklines, in order: (metric, label).
SPARKS: Final = (
    ("load1", "load"),
    ("requests", "requests"),
    ("s5xx", "5xx"),
    ("bytes", "bandwidth"),
)

#: The top-N tables: (what the core calls it, title, what the value column says).
TOPS: Final = (
    ("requests", "busiest sites", "Requests"),
    ("bytes", "bandwidth", "Bytes"),
    ("s5xx", "most 5xx", "5xx"),
    ("growth", "fastest growth", "More"),
    ("certificates", "certificates expiring", "Days"),
    ("disks", "disks filling", "Full in"),
)

_STATE_TEXT: Final = {
    "OK": ("✓ OK", "bold"),
    "WARNING": ("! WARNING", "bold reverse"),
    "CRITICAL": ("✗ CRITICAL", "bold reverse"),
    "UNKNOWN": ("? UNKNOWN", "bold"),
}


def board_status(board: Board) -> Text:
    """The start of the status line: the fleet's state and its problems by state."""
    text, style = _STATE_TEXT.get(board.state.label, ("?", "bold"))
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    out.append(f" {text} ", style)
    parts = [
        f"{board.problems.get(state, 0):,} {word}"
        for state, word in (("CRITICAL", "crit"), ("WARNING", "warn"), ("UNKNOWN", "unkn"))
        if board.problems.get(state, 0)
    ]
    out.append(" " + (" · ".join(parts) if parts else "no problem") + " │ ")
    return out


def _columns(value_label: str, name_label: str) -> tuple[Column, ...]:
    return (
        Column("name", name_label, width=10, max_width=40, flex=2, priority=100),
        Column("value", value_label, width=8, max_width=12, priority=90, align="right"),
        Column("detail", "", width=8, max_width=48, flex=1, priority=40),
    )


def top_rows(what: str, rows: Sequence[TopRow], *, warn_days: float, crit_days: float) -> list[Row]:
    """The rows of one top-N table; keys say what ``enter`` opens (``site:…``,
    ``server:…``). ``warn_days``/``crit_days``: the thresholds that tone certificates and
    disks (the status config's)."""
    out: list[Row] = []
    for top in rows:
        tone: Tone | None = None
        if what in ("certificates", "disks"):
            tone = "bad" if top.value < crit_days else "warn" if top.value < warn_days else None
        if what == "disks":
            server, _, mount = top.key.partition(":")
            key = f"server:{server}:{mount}"
            value = f"{top.value:.1f} d"
            detail = top.detail
        elif what == "certificates":
            key = f"site:{top.key}"
            value = "expired" if top.value <= 0 else f"{top.value:.1f}"
            detail = ""
        elif what == "growth":
            key = f"site:{top.key}"
            value = f"+{value_text('requests', top.value)}"
            detail = top.detail
        else:
            key = f"site:{top.key}"
            value = value_text(what, top.value) if what == "bytes" else f"{top.value:,.0f}"
            detail = top.detail
        out.append(Row(key=key, cells=(cell(top.key), cell(value, tone), cell(detail, "muted"))))
    return out


def spark_text(series: Series) -> Text:
    """Next to a sparkline: the last value and the peak (per step for counts)."""
    known = [v for v in series.values if v is not None]
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    if not known or (series.metric != "load1" and not any(known)):
        out.append(" no data", "italic")
        return out
    last = next(v for v in reversed(series.values) if v is not None)
    out.append(f" {value_text(series.metric, last)}", "bold")
    out.append(f" peak {value_text(series.metric, max(known))}")
    return out


class DashboardScreen(LiveScreen):
    """Tiles, sparklines and top-N tables of the whole fleet, read again every few
    seconds."""

    AUTO_FOCUS = "#tiles"

    DEFAULT_CSS = """
    DashboardScreen > #board {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    DashboardScreen #sparks {
        height: auto;
        border: round $primary 60%;
        border-title-color: $text-primary;
        border-title-style: bold;
        padding: 0 1 0 0;
    }
    DashboardScreen .spark-row { height: 1; }
    DashboardScreen .spark-label { width: 11; padding: 0 0 0 1; text-style: bold; }
    DashboardScreen .spark-value { width: 24; }
    DashboardScreen Sparkline { width: 1fr; height: 1; }
    DashboardScreen #spark-s5xx > .sparkline--max-color { color: $error; }
    DashboardScreen #spark-s5xx > .sparkline--min-color { color: $error 30%; }
    DashboardScreen #tiles {
        height: auto;
        max-height: 11;
        border: round $primary 60%;
        border-title-color: $text-primary;
        border-title-style: bold;
        &:focus { border: round $primary; }
    }
    DashboardScreen #tops {
        layout: grid;
        grid-size: 2;
        grid-rows: 8;
        grid-gutter: 0 1;
        height: auto;
        &.-wide { grid-size: 3; }
    }
    DashboardScreen #tops > ResourceTable {
        height: 8;
        border: round $primary 60%;
        border-title-color: $text-primary;
        border-title-style: bold;
        &:focus { border: round $primary; }
    }
    """

    #: From this width the top-N tables go three to a row.
    WIDE: ClassVar[int] = 150
    #: From this height the tiles may take more lines before they scroll.
    TALL: ClassVar[int] = 40
    #: Rows of each top-N table, and points of each sparkline.
    LIMIT: ClassVar[int] = 5
    POINTS: ClassVar[int] = 60

    def __init__(self, *, window: str = "1h", interval: int = 10) -> None:
        super().__init__(window=window, interval=interval)
        self.board: Board | None = None

    @property
    def view_key(self) -> str:
        return "dashboard"

    @property
    def crumb(self) -> str:
        return "dashboard"

    def main_widget(self) -> Widget | None:
        return self.query_one("#tiles", TileGrid)

    def ready_for_keys(self) -> bool:
        return super().ready_for_keys() and (self.board is not None or self.error is not None)

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield from self.compose_status()
        with VerticalScroll(id="board"):
            with Vertical(id="sparks"):
                for metric, label in SPARKS:
                    with Horizontal(classes="spark-row"):
                        yield Static(label, classes="spark-label", markup=False)
                        yield Sparkline([], id=f"spark-{metric}")
                        yield Static("", id=f"spark-value-{metric}", classes="spark-value")
            yield TileGrid(empty_text="no server, client or platform", id="tiles")
            with Grid(id="tops"):
                for what, _title, value_label in TOPS:
                    name_label = "Mount" if what == "disks" else "Site"
                    columns = _columns(value_label, name_label)
                    yield ResourceTable(
                        columns,
                        ListSource(self._top_loader(what), columns),
                        empty_text="none",
                        noun=what,
                        id=f"top-{what}",
                    )
        yield from self.compose_footer()

    def _top_loader(self, what: str) -> Any:
        async def load() -> list[Row]:
            board = self.board
            if board is None:
                return []
            status = self.cockpit.config.status
            if what == "disks":
                warn, crit = status.disk_full_warn_days, status.disk_full_crit_days
            else:
                warn, crit = status.cert_warn_days, status.cert_crit_days
            return top_rows(what, board.tops.get(what, []), warn_days=warn, crit_days=crit)

        return load

    def on_mount(self) -> None:
        self._titles()
        self._fit(self.app.size.width, self.app.size.height)
        # LiveScreen.on_mount starts the clock: Textual calls it after this one.

    def on_resize(self, event: Any) -> None:
        self._fit(event.size.width, event.size.height)

    def _fit(self, width: int, height: int) -> None:
        for tops in self.query("#tops"):
            tops.set_class(width >= self.WIDE, "-wide")
        for tiles in self.query("#tiles"):
            tiles.styles.max_height = 20 if height >= self.TALL else 11

    def _titles(self) -> None:
        board = self.board
        window = self.window
        step = ""
        if board is not None and board.sparks:
            first = next(iter(board.sparks.values()))
            step = f" · per {step_text(first.step)}"
        self.query_one("#sparks").border_title = Text(f"fleet · last {window}{step}")
        self.query_one("#tiles", TileGrid).border_title = Text("servers · clients · platforms")
        growth = board.growth_window if board is not None else "24h"
        for what, title, _label in TOPS:
            table = self.query_one(f"#top-{what}", ResourceTable)
            if what in ("requests", "bytes", "s5xx"):
                table.border_title = Text(f"{title} ({window})")
            elif what == "growth":
                table.border_title = Text(f"{title} ({growth} vs the {growth} before)")
            else:
                table.border_title = Text(title)

    def status_prefix(self) -> Text:
        return board_status(self.board) if self.board is not None else Text("")

    @work(name="reading the dashboard", group="dashboard", exclusive=True, exit_on_error=False)
    async def read(self) -> None:
        window = self.window
        board = await self.cockpit.stats_board(
            window, limit=self.LIMIT, points=self.POINTS, now=stats.now()
        )
        self.post_message(self.Loaded(board, window))

    def show(self, data: Any) -> None:
        board: Board = data
        first = self.board is None
        self.board = board
        for metric, _label in SPARKS:
            series = board.sparks.get(metric)
            spark = self.query_one(f"#spark-{metric}", Sparkline)
            value = self.query_one(f"#spark-value-{metric}", Static)
            if series is None:
                spark.data = []
                value.update(Text(" no data", "italic"))
                continue
            spark.data = [v if v is not None else 0.0 for v in series.values]
            value.update(spark_text(series))
        self.query_one("#tiles", TileGrid).set_tiles(
            [TileItem(t.kind, t.name, t.state.label, dict(t.counts)) for t in board.tiles]
        )
        for what, _title, _label in TOPS:
            self.query_one(f"#top-{what}", ResourceTable).reload()
        self._titles()
        if first:  # focusing the tiles before they had a height may have scrolled down
            self.call_after_refresh(self._top_of_board)

    def _top_of_board(self) -> None:
        self.query_one("#board", VerticalScroll).scroll_home(animate=False, immediate=True)

    def window_changed(self) -> None:
        self._titles()

    # -- drilling down ----------------------------------------------------------------------

    def _open_stats(self, scope: str, key: str) -> None:
        open_screen(self.app, StatsScreen(scope, key, window=self.window, interval=self.interval))

    @on(TileGrid.Selected, "#tiles")
    def _tile_selected(self, event: TileGrid.Selected) -> None:
        event.stop()
        self._open_stats(event.item.kind, event.item.name)

    @on(ResourceTable.Selected)
    def _row_selected(self, event: ResourceTable.Selected) -> None:
        event.stop()
        kind, _, rest = event.row.key.partition(":")
        if kind == "server":
            self._open_stats("server", rest.partition(":")[0])
        elif kind == "site":
            self._open_stats("site", rest)

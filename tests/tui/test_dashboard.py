"""The statistics dashboard and the charts of one server or site, driven with Pilot over a
store filled with a week of real series (see statskit), plus SVG snapshots at 80x24 and
160x50. The clock of the statistics screens is pinned to statskit.NOW, except where the
real collectors run on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.segment import Segment
from statskit import DB1_ERROR, NOW
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static
from tuikit import screen_text, settle, site_domain

from cockpit.app import CockpitApp, known_binding_ids, make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.screens.dashboard import DashboardScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.stats import LiveScreen, StatsScreen
from cockpit.store import metrics
from cockpit.widgets.chart import Chart, ChartData, bar_columns
from cockpit.widgets.resource_table import ResourceTable
from cockpit.widgets.tiles import TileGrid

SIZE = (120, 40)
SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]
SnapCompare = Callable[..., bool]


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")


# -- helpers --------------------------------------------------------------------------------


async def until(pilot: Pilot[Any], check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (the app running) until ``check()`` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the screen")
        await pilot.pause(0.05)


async def dashboard(pilot: Pilot[Any]) -> DashboardScreen:
    await settle(pilot)
    await pilot.press("8")
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.reads > 0)
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, DashboardScreen)
    return screen


async def charts(pilot: Pilot[Any], reads: int = 1) -> StatsScreen:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, StatsScreen) and app.screen.reads >= reads)
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, StatsScreen)
    return screen


def top_keys(screen: DashboardScreen, what: str) -> list[str]:
    table = screen.query_one(f"#top-{what}", ResourceTable)
    return [row.key for row in table.visible_rows()]


def top_cells(screen: DashboardScreen, what: str) -> list[tuple[str, ...]]:
    table = screen.query_one(f"#top-{what}", ResourceTable)
    return [tuple(c.text for c in row.cells) for row in table.visible_rows()]


def tile_counts(screen: DashboardScreen) -> dict[str, dict[str, int]]:
    grid = screen.query_one("#tiles", TileGrid)
    return {t.key: {state: n for state, n in t.counts.items() if n} for t in grid.items}


async def type_command(pilot: Pilot[Any], line: str) -> None:
    await pilot.press("colon", *line, "enter")


# -- the dashboard --------------------------------------------------------------------------


async def test_tiles_count_each_thing_by_state(oncall_cockpit: Cockpit) -> None:
    """Each server counts itself and its sites, each client and platform its sites: the
    states statskit built (web1's disk, web2's reboot, db1 unreachable, localhost never
    collected, sites 1 and 4 down, certificates of 5, 2 and 7 expiring)."""
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(pilot)
        assert tile_counts(screen) == {
            "server:db1": {"CRITICAL": 1},
            "server:localhost": {"UNKNOWN": 1},
            "server:web1": {"OK": 197, "WARNING": 2, "CRITICAL": 2},
            "server:web2": {"OK": 98, "WARNING": 2, "CRITICAL": 1},
            "client:acme": {"OK": 100},
            "client:globex": {"OK": 97, "WARNING": 1, "CRITICAL": 2},
            "platform:drupal-10": {"OK": 97, "WARNING": 1, "CRITICAL": 2},
            "platform:static": {"OK": 98, "WARNING": 1, "CRITICAL": 1},
            "platform:wp-6-5": {"OK": 100},
        }
        text = screen_text(app)
        assert "✗ web1" in text and "197 ok 2 warn 2 crit" in text
        assert "? localhost" in text and "0 ok 1 unkn" in text
        assert "✓ acme" in text and "100 ok" in text
        status = text.splitlines()[1]
        assert "✗ CRITICAL" in status and "4 crit · 5 warn · 1 unkn" in status
        assert "window 1h" in status and "every 10 s" in status and "at 12:00:30" in status


async def test_sparklines_show_the_fleet(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(pilot)
        requests = screen.query_one("#spark-requests", Sparkline)
        # Every minute of the last hour: 120 + 60 + 40 + 30 + 20 + 5 requests.
        assert list(requests.data or []) == [275.0] * 60
        errors = screen.query_one("#spark-s5xx", Sparkline)
        assert list(errors.data or []) == [11.0] * 60
        load = list(screen.query_one("#spark-load1", Sparkline).data or [])
        assert len(load) == 60 and load[-1] == pytest.approx((1.5 + 0.4) / 2)
        value = screen.query_one("#spark-value-requests", Static)
        assert "275 peak 275" in str(value.render())
        assert "fleet · last 1h · per min" in screen_text(app)


async def test_top_tables_rank_the_sites(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await dashboard(pilot)
        assert top_keys(screen, "requests") == [f"site:{site_domain(n)}" for n in (3, 6, 1, 9, 2)]
        assert top_cells(screen, "requests")[0][:2] == (site_domain(3), "7,200")
        assert top_keys(screen, "bytes")[0] == f"site:{site_domain(3)}"
        assert top_cells(screen, "s5xx") == [
            (site_domain(1), "600", ""),
            (site_domain(3), "60", ""),
        ]
        # Site 2 went from 5 to 20 requests a minute a day ago; the others are steady.
        assert top_keys(screen, "growth") == [f"site:{site_domain(2)}"]
        assert top_keys(screen, "certificates") == [
            f"site:{site_domain(n)}" for n in (5, 2, 7, 1, 4)
        ]
        assert [c[1] for c in top_cells(screen, "certificates")][:3] == ["2.0", "10.0", "12.0"]
        [disk] = top_cells(screen, "disks")
        assert disk[0] == "web1:/var" and disk[1] == "2.5 d" and "92 % used" in disk[2]
        text = screen_text(app)
        assert "busiest sites (1h)" in text and "disks filling" in text


async def test_enter_drills_down_to_charts(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(pilot)
        grid = screen.query_one("#tiles", TileGrid)
        assert app.focused is grid and grid.current_item is not None
        assert grid.current_item.key == "server:db1"
        await pilot.press("l", "l", "enter")  # db1, localhost, web1
        stats = await charts(pilot)
        assert (stats.scope, stats.key, stats.window) == ("server", "web1", "1h")
        assert stats.charts is not None and stats.charts.found
        metrics_shown = [s.metric for s in stats.charts.series]
        assert metrics_shown[:5] == ["load1", "mem_pct", "swap_pct", "disk:/", "disk:/var"]
        assert "overview › dashboard › stats@web1" in screen_text(app).splitlines()[0]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        # tab: the first top-N table (the busiest sites); the third row is site 1.
        await pilot.press("tab", "j", "j", "enter")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("site", site_domain(1))
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        # The disks table: enter opens the server of the mount.
        screen.query_one("#top-disks", ResourceTable).focus()
        await pilot.press("enter")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("server", "web1")
        # A client tile opens its sites' traffic.
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
        grid.focus()
        await pilot.press("g", *"lllll")  # db1 localhost web1 web2 acme globex
        assert grid.current_item is not None and grid.current_item.key == "client:globex"
        await pilot.press("enter")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("client", "globex")
        assert stats.charts is not None
        requests = next(s for s in stats.charts.series if s.metric == "requests")
        assert requests.values[-1] == 40 + 5  # globex's sites with traffic: 1 and 10


async def test_window_switches_between_hour_day_and_week(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_command(pilot, "stats web1")
        stats = await charts(pilot)
        load = stats.query_one("#chart-0", Chart)
        assert isinstance(load.data, ChartData) and load.data.step == 60
        assert len(load.data.points) == 60
        await pilot.press("w")
        stats = await charts(pilot, reads=2)
        assert stats.window == "24h" and stats.charts is not None
        assert stats.charts.window == "24h"
        load = stats.query_one("#chart-0", Chart)
        assert load.data is not None and load.data.step == 24 * 60  # minutes, 60 buckets
        requests = next(s for s in stats.charts.series if s.metric == "requests")
        assert requests.step == 3600  # the server's sites: hours
        await pilot.press("w")
        stats = await charts(pilot, reads=3)
        assert stats.window == "7d"
        load = stats.query_one("#chart-0", Chart)
        assert load.data is not None and load.data.step == 3 * 3600
        assert "window 7d" in screen_text(app)
        assert "05-01" in screen_text(app)  # the axis reaches a week back
        await pilot.press("W")
        stats = await charts(pilot, reads=4)
        assert stats.window == "24h"


async def test_dashboard_window_changes_the_tables(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await dashboard(pilot)
        await pilot.press("w")
        await until(pilot, lambda: screen.board is not None and screen.board.window == "24h")
        await settle(pilot)
        text = screen_text(app)
        assert "busiest sites (24h)" in text and "fleet · last 24h · per h" in text
        # A day of site 3: 23 full hours and the current hour's first minute.
        assert top_cells(screen, "requests")[0][:2] == (site_domain(3), f"{(23 * 60 + 1) * 120:,}")


async def test_refresh_interval_pause_and_ctrl_r(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await dashboard(pilot)
        await pilot.press("minus", "minus", "minus")  # 10 → 5 → 2 → 1 s
        assert screen.interval == 1
        assert "every 1 s" in screen_text(app).splitlines()[1]
        minute = int(NOW) // 60 * 60

        async def traffic(n: int, requests: int) -> None:
            sample = metrics.TrafficSample(site_domain(n), minute, requests, requests * 1000)
            async with oncall_cockpit.db.write() as conn:
                assert await metrics.record_traffic(conn, [sample]) == 1

        await traffic(9, 10_000)
        reads = screen.reads
        await until(pilot, lambda: screen.reads > reads, timeout=5)  # the timer read again
        await settle(pilot)
        assert top_keys(screen, "requests")[0] == f"site:{site_domain(9)}"
        clocks = [t for t in screen._timers if t.name == "stats refresh" and t._task is not None]
        assert len(clocks) == 1  # changing the interval replaced the clock

        await pilot.press("p")
        assert screen.paused and "PAUSED" in screen_text(app).splitlines()[1]
        await traffic(10, 50_000)
        reads = screen.reads
        await pilot.pause(2.5)
        await settle(pilot)
        assert screen.reads == reads  # paused: nothing read
        assert top_keys(screen, "requests")[0] == f"site:{site_domain(9)}"

        await pilot.press("ctrl+r")  # reads once, still paused
        await until(pilot, lambda: screen.reads == reads + 1)
        await settle(pilot)
        assert screen.paused
        assert top_keys(screen, "requests")[0] == f"site:{site_domain(10)}"

        await pilot.press("p")
        await until(pilot, lambda: screen.reads >= reads + 2)
        assert not screen.paused and "PAUSED" not in screen_text(app).splitlines()[1]
        await pilot.press("plus", "plus")
        assert screen.interval == 5
        assert "every 5 s" in screen_text(app).splitlines()[1]


async def test_commands_open_the_dashboard_and_charts(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_command(pilot, "dash")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await type_command(pilot, "ov")
        await until(pilot, lambda: isinstance(app.screen, OverviewScreen))
        await type_command(pilot, "stats")
        await until(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await type_command(pilot, f"stats {site_domain(1)}")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("site", site_domain(1))
        await type_command(pilot, "stats platform=static")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("platform", "static")
        await type_command(pilot, "stats nosuch.example")
        await until(pilot, lambda: any("nosuch" in n.message for n in app._notifications))
        assert any(
            "no server, platform, client or site named 'nosuch.example'" in n.message
            for n in app._notifications
        )
        assert isinstance(app.screen, StatsScreen) and app.screen.key == "static"


async def test_site_detail_and_servers_list_open_charts(oncall_cockpit: Cockpit) -> None:
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("1")  # the servers list: the cursor is on db1
        await settle(pilot)
        assert "overview › servers" in screen_text(app).splitlines()[0]
        await pilot.press("S")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("server", "db1")
        await pilot.press("escape")
        await settle(pilot)
        await type_command(pilot, f"s /{site_domain(1)}")
        await settle(pilot)
        await pilot.press("enter", "enter")
        await until(pilot, lambda: isinstance(app.screen, SiteScreen))
        await settle(pilot)
        await pilot.press("S")
        stats = await charts(pilot)
        assert (stats.scope, stats.key) == ("site", site_domain(1))
        summary = str(stats.query_one("#stats-summary", Static).render())
        assert "HTTP 503" in summary and "last backup 05-02 03:00:00" in summary
        # d: the detail of what is charted; the site's detail is already open: back to it.
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, SiteScreen))


async def test_remote_text_is_sanitised(oncall_cockpit: Cockpit) -> None:
    """db1's error came from the network with escape sequences: they never reach the screen."""
    assert "\x1b" in DB1_ERROR
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await type_command(pilot, "stats db1")
        stats = await charts(pilot)
        summary = stats.query_one("#stats-summary", Static)
        rendered = str(summary.render())
        assert "UNREACHABLE" in rendered and "Connection refused!" in rendered
        assert "\x1b" not in rendered and "owned" not in rendered
        assert "owned" not in screen_text(app)


async def test_no_color_and_mono_keep_meaning(
    oncall_store: Path, oncall_clock: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without colour the states read as words and glyphs, the cursor as reverse video."""
    monkeypatch.setenv("NO_COLOR", "1")
    cockpit = await Cockpit.open(Config(store=oncall_store))
    try:
        app = make_app(cockpit, theme="cockpit-mono")
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.no_color
            screen = await dashboard(pilot)
            grid = screen.query_one("#tiles", TileGrid)
            first_tile: list[Segment] = list(grid.render_line(1))
            body = next(s for s in first_tile if "ok" in s.text)
            assert body.style is not None and body.style.reverse
            text = screen_text(app)
            assert "✗ db1" in text and "✗ CRITICAL" in text and "1 crit" in text
    finally:
        await cockpit.close()


async def test_works_at_80x24(oncall_cockpit: Cockpit) -> None:
    """At 80x24 three tiles fit a row and the board scrolls to the tables."""
    app = make_app(oncall_cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await dashboard(pilot)
        grid = screen.query_one("#tiles", TileGrid)
        assert grid.per_row == 3 and grid.rows == 3
        await pilot.press("G")
        assert grid.current_item is not None and grid.current_item.key == "platform:wp-6-5"
        table = screen.query_one("#top-disks", ResourceTable)
        table.focus()
        await settle(pilot)
        assert table.region.y + table.region.height <= 24 and table.region.y >= 0
        assert "web1:/var" in screen_text(app)


async def test_ctrl_d_and_ctrl_u_move_the_tiles_by_half_a_page(oncall_cockpit: Cockpit) -> None:
    """ctrl+d and ctrl+u move the cursor by half the rows of tiles on screen (at least one),
    in the same column, stopping on the last tile and the first."""
    app = make_app(oncall_cockpit)
    async with app.run_test(size=(60, 40)) as pilot:
        screen = await dashboard(pilot)
        grid = screen.query_one("#tiles", TileGrid)
        # two tiles a row, five rows, all on screen (15 lines): half a page is 2 rows
        assert (grid.per_row, grid.rows) == (2, 5)
        assert grid.scrollable_content_region.height == 15 and grid.half_page_rows == 2
        assert grid.cursor_index == 0
        await pilot.press("l", "ctrl+d")
        assert grid.cursor_index == 1 + 2 * 2
        await pilot.press("ctrl+d")  # two rows more is past the end: the last tile
        assert grid.cursor_index == 8
        await pilot.press("ctrl+u")
        assert grid.cursor_index == 4
        await pilot.press("ctrl+u")
        assert grid.cursor_index == 0
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        # three a row, three rows, three on screen: half a page is one row
        assert (grid.per_row, grid.rows, grid.half_page_rows) == (3, 3, 1)
        await pilot.press("ctrl+d")
        assert grid.cursor_index == 3
        await pilot.press("ctrl+d", "ctrl+d")
        assert grid.cursor_index == 6
        await pilot.press("ctrl+u")
        assert grid.cursor_index == 3
        assert grid.current_item is not None and grid.current_item.key == "server:web2"


async def test_dashboard_of_this_machine_collected_for_real(
    fresh_cockpit: Cockpit,
) -> None:
    """The real collectors on ``localhost`` (a new store's own server), then the board at
    the real time: its tile counts it, its load is drawn."""
    reports = await fresh_cockpit.refresh_stats(timeout=60)
    assert [(r.server, r.reachable) for r in reports] == [("localhost", True)]
    app = make_app(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await dashboard(pilot)
        [tile] = screen.query_one("#tiles", TileGrid).items
        assert tile.key == "server:localhost" and sum(tile.counts.values()) == 1
        assert screen.board is not None and screen.board.counts["servers_reachable"] == 1
        load = screen.board.sparks["load1"]
        assert sum(v is not None for v in load.values) == 1  # one collection, one minute
        value = str(screen.query_one("#spark-value-load1", Static).render())
        assert "no data" not in value


# -- pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["1h", "24h", "7d"])
async def test_board_agrees_with_the_per_server_and_top_queries(
    oncall_cockpit: Cockpit, window: str
) -> None:
    """The board reads the fleet in one pass per table; the store's older queries (one
    per metric, by server) must give the same numbers."""
    from cockpit.status.dashboard import series, top

    db, config = oncall_cockpit.db, oncall_cockpit.config
    board = await oncall_cockpit.stats_board(window, now=NOW)
    hourly = window != "1h"
    for what in ("requests", "bytes", "s5xx"):
        expected = await top(
            db, what, window=window, limit=5, config=config, now=NOW, hourly=hourly
        )
        assert board.tops[what] == expected, what
        fleet = board.sparks[what]
        per_server = [
            await series(
                db, config, "server", name, what, window, points=60, now=NOW, hourly=hourly
            )
            for name in ("web1", "web2")
        ]
        assert fleet.step == per_server[0].step
        summed = [a + b for a, b in zip(per_server[0].values, per_server[1].values, strict=True)]
        assert fleet.values == summed, what
    assert sum(board.sparks["requests"].values) > 0


async def test_stats_completes_names() -> None:
    from cockpit.screens.command import CommandSuggester, Names

    names = Names(servers=frozenset({"web1"}), platforms=frozenset({"wp-6-5"}))
    suggester = CommandSuggester(lambda: names)
    assert await suggester.get_suggestion("sta") == "stats"
    assert await suggester.get_suggestion("stats we") == "stats web1"
    assert await suggester.get_suggestion("dash wp") == "dash wp-6-5"


def test_bar_columns_spread_and_average() -> None:
    assert bar_columns([1.0, 2.0], 4) == [1.0, 1.0, 2.0, 2.0]
    assert bar_columns([1.0, 3.0, None, None], 2) == [2.0, None]
    assert bar_columns([1.0, None, 5.0], 1) == [3.0]
    assert bar_columns([], 3) == []


def test_bindings_have_ids_and_spare_tmux_keys() -> None:
    keys: set[str] = set()
    ids: set[str] = set()
    for cls in (DashboardScreen, StatsScreen, LiveScreen, TileGrid, CockpitApp, SiteScreen):
        for binding in cls.__dict__.get("BINDINGS", ()):
            assert isinstance(binding, Binding) and binding.id, binding
            keys.update(k.strip() for k in binding.key.split(","))
            ids.add(binding.id)
    assert not {"ctrl+a", "ctrl+b"} & keys
    assert {"view.dashboard", "stats.window", "stats.pause", "tiles.open", "site.stats"} <= ids
    assert {"stats.slower", "stats.faster", "stats.detail", "servers.stats"} <= known_binding_ids()


# -- snapshots ------------------------------------------------------------------------------


def keys(*pressed: str, reads: int = 1) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)
        app = pilot.app
        await until(pilot, lambda: isinstance(app.screen, LiveScreen) and app.screen.reads >= reads)
        await settle(pilot)
        await pilot.pause(0.1)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_snapshot(
    snap_compare: SnapCompare,
    oncall_cockpit_sync: Cockpit,
    size: tuple[int, int],
    fixed_version: None,
) -> None:
    app = make_app(oncall_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("8"))


def test_dashboard_mono_snapshot(
    snap_compare: SnapCompare, oncall_cockpit_sync: Cockpit, fixed_version: None
) -> None:
    app = make_app(oncall_cockpit_sync, theme="cockpit-mono")
    assert snap_compare(app, terminal_size=(80, 24), run_before=keys("8", "p"))


@pytest.mark.parametrize("size", SIZES)
def test_server_charts_snapshot(
    snap_compare: SnapCompare,
    oncall_cockpit_sync: Cockpit,
    size: tuple[int, int],
    fixed_version: None,
) -> None:
    app = make_app(oncall_cockpit_sync)
    pressed = ("8", "l", "l", "enter", "w")
    assert snap_compare(app, terminal_size=size, run_before=keys(*pressed, reads=2))


@pytest.mark.parametrize("size", SIZES)
def test_site_charts_snapshot(
    snap_compare: SnapCompare,
    oncall_cockpit_sync: Cockpit,
    size: tuple[int, int],
    fixed_version: None,
) -> None:
    app = make_app(oncall_cockpit_sync)
    pressed = ("colon", *f"stats {site_domain(1)}", "enter")
    assert snap_compare(app, terminal_size=size, run_before=keys(*pressed))

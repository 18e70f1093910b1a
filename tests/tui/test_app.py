"""The TUI driven like a user drives it: keys in, screen and state out (Textual's Pilot)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from textual import events
from textual.app import App, ComposeResult
from tuikit import screen_text, settle

from cockpit.app import known_binding_ids, make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.messages import Scope, WorkerFailed
from cockpit.model import Server
from cockpit.screens.backups import BackupsScreen
from cockpit.screens.clients import ClientsScreen
from cockpit.screens.dashboard import DashboardScreen
from cockpit.screens.help import HelpScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.sites import SitesScreen
from cockpit.screens.tasks import TasksScreen
from cockpit.themes import ThemeError
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.resource_table import (
    Column,
    ListSource,
    Query,
    ResourceTable,
    Row,
    cell,
)

SIZE = (80, 24)


def table_of(app: App[Any]) -> ResourceTable:
    return app.screen.query_one(ResourceTable)


def keys_of(app: App[Any]) -> list[str]:
    table = table_of(app)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


async def command(pilot: Any, line: str) -> None:
    await pilot.press("colon")
    await pilot.pause()
    assert pilot.app.screen.focused is pilot.app.screen.command_bar.input
    await pilot.press(*line, "enter")
    await settle(pilot)


def type_fast(app: App[Any], keys: str) -> None:
    """Post key events back to back, without waiting (a fast typist, a paste, tmux)."""
    names = {":": "colon", "/": "slash", "\r": "enter", "!": "exclamation_mark", " ": "space"}
    for char in keys:
        key = names.get(char, char)
        app.post_message(events.Key(key, None if key == "enter" else char))


# -- the embedded default --------------------------------------------------------------


async def test_opens_on_the_overview_and_1_lists_localhost(fresh_cockpit: Cockpit) -> None:
    app = make_app(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)  # is anything wrong? first
        text = screen_text(app)
        assert "Cockpit 0.1.0" in text
        assert "~/.local/share/cockpit/cockpit.db" in text
        assert app.screen.query_one(CockpitHeader).crumbs == ("overview",)
        assert "nothing broken" in text or "nothing wrong" in text
        assert " 8  dashboard " in text and " 1  servers " in text  # keys to go on
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(app.screen, ServersScreen)
        assert keys_of(app) == ["localhost"]
        text = screen_text(app)
        assert "localhost" in text
        assert "127.0.0.1:22" in text
        assert "local" in text
        assert "unknown" in text  # no health check has run: shown as such, never invented
        header = app.screen.query_one(CockpitHeader)
        assert header.environment == "local"
        assert header.crumbs == ("overview", "servers")


async def test_another_start_view_can_be_asked_for(fresh_cockpit: Cockpit) -> None:
    app = make_app(fresh_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert [type(s) for s in app.screen_stack] == [ServersScreen]
    with pytest.raises(ValueError, match="no view 'nope' to start on; views: audit, backups"):
        make_app(fresh_cockpit, start_view="nope")


async def test_the_header_shows_the_environment_of_the_cursor_row(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert keys_of(app) == ["db1", "localhost", "web1", "web2"]
        header = app.screen.query_one(CockpitHeader)
        assert header.environment == "prod"
        await pilot.press("j")
        await settle(pilot)
        assert header.environment == "local"
        await pilot.press("G")
        await settle(pilot)
        assert header.environment == "staging"
        assert " staging " in screen_text(app).splitlines()[0]


# -- views and the command prompt ----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "screen"),
    [
        ("sites", SitesScreen),
        ("s", SitesScreen),
        ("platforms", PlatformsScreen),
        ("pf", PlatformsScreen),
        ("clients", ClientsScreen),
        ("srv", ServersScreen),
    ],
)
async def test_command_prompt_opens_views_by_name_and_alias(
    fleet_cockpit: Cockpit, line: str, screen: type[ResourceScreen]
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, line)
        assert type(app.screen) is screen
        assert (table_of(app).row_count or 0) > 0


async def test_sites_then_esc_goes_back_and_breadcrumbs_follow(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "sites")
        assert isinstance(app.screen, SitesScreen)
        assert table_of(app).row_count == 300
        text = screen_text(app)
        assert "overview › sites" in text
        assert "sites [300]" in text
        assert "alpha-000000.example.com" in text
        await pilot.press("enter")
        await settle(pilot)
        assert "overview › sites › alpha-000000.example.com" in screen_text(app)
        await pilot.press("escape", "escape")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        assert app.screen.query_one(CockpitHeader).crumbs == ("overview",)
        await pilot.press("escape")  # nothing below the first view: stays
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)


async def test_opening_a_view_already_open_goes_back_to_it(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "sites")
        await command(pilot, "pf")
        assert [type(s) for s in app.screen_stack] == [
            OverviewScreen,
            SitesScreen,
            PlatformsScreen,
        ]
        await command(pilot, "s")
        assert [type(s) for s in app.screen_stack] == [OverviewScreen, SitesScreen]
        await command(pilot, "ov")
        assert [type(s) for s in app.screen_stack] == [OverviewScreen]


async def test_unknown_command_is_an_error_listing_the_commands(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "nope")
        assert isinstance(app.screen, OverviewScreen)
        messages = [n.message for n in app._notifications]
        assert any("unknown command 'nope'" in m and "sites (s, site)" in m for m in messages)


async def test_command_prompt_completes_and_cancels(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon", "p", "l", "a", "tab", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.focused is app.screen.table
        await pilot.press("colon", "x", "escape")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert not app.screen.command_bar.is_open
        assert app.screen.focused is app.screen.table


async def test_keys_typed_fast_after_colon_and_slash_land_in_the_prompt(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        type_fast(app, ":sites\r")
        await settle_keys(pilot)
        assert isinstance(app.screen, SitesScreen)
        type_fast(app, "/golf-00001")  # no "o" (sort) or "g" (top) reached the list
        await settle_keys(pilot)
        assert keys_of(app) == ["golf-000014.example.com"]
        assert table_of(app).row_query.sort == "domain"


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """A thread burning CPU (it holds the GIL by turns): the app's loop runs slowly."""
    stop = threading.Event()

    def burn() -> None:
        while not stop.is_set():
            sum(range(10_000))

    thread = threading.Thread(target=burn, name="busy-cpu", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def stall_view(app: App[Any], slow: bool, seconds: float = 0.6) -> None:
    """With ``slow``, the view is busy for ``seconds`` (a handler awaiting something, as
    any of them may on a loaded machine): keys typed now reach it only after that."""
    if slow:
        app.screen.call_later(asyncio.sleep, seconds)


SPEEDS = [pytest.param(False, id="idle"), pytest.param(True, id="slowed")]


async def settle_keys(pilot: Any, timeout: float = 30.0) -> None:
    """Wait until the keys typed have all done what they do, then until the app settles
    (:func:`settle` alone may see an idle loop while keys wait for a busy view)."""
    waited = 0.0
    while pilot.app.keys_pending:
        assert waited < timeout, "the keys typed did not settle"
        await pilot.pause(0.02)
        waited += 0.02
    await settle(pilot)


@pytest.mark.parametrize("slow", SPEEDS)
async def test_keys_typed_fast_after_enter_or_esc_in_a_prompt_go_to_the_list(
    fleet_cockpit: Cockpit, request: pytest.FixtureRequest, slow: bool
) -> None:
    if slow:
        request.getfixturevalue("busy_cpu")
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        table = table_of(app)
        stall_view(app, slow)
        type_fast(app, "/web\rj")  # filter, keep it, then down: j is not filter text
        await settle_keys(pilot)
        assert table.row_query.filter_text == "web"
        assert keys_of(app) == ["web1", "web2"]
        assert table.cursor_index == 1
        assert table.has_focus
        type_fast(app, "gg")
        app.post_message(events.Key("escape", None))  # clears the kept filter
        await settle_keys(pilot)
        assert table.row_query.filter_text == ""
        stall_view(app, slow)
        type_fast(app, "/db")
        app.post_message(events.Key("escape", None))  # leaves the bar, clearing it
        type_fast(app, "G")
        await settle_keys(pilot)
        # G went to the list, not into the bar: the filter is gone and the list has the
        # focus. (Where the cursor ends races the reload that clearing the filter starts.)
        assert table.row_query.filter_text == ""
        assert not app.screen.filter_bar.input.value
        assert table.has_focus
        type_fast(app, "gg")
        await settle_keys(pilot)
        assert table.cursor_index == 0
        stall_view(app, slow)
        type_fast(app, ":x")
        app.post_message(events.Key("escape", None))  # leaves the command line
        type_fast(app, "j")
        await settle_keys(pilot)
        assert not app.screen.command_bar.is_open
        assert not app.screen.command_bar.input.value
        assert table.has_focus
        assert table.cursor_index == 1  # j moved down, it was not typed after "x"
        stall_view(app, slow)
        type_fast(app, "/web\rG")  # filter, keep it, then to the last row
        await settle_keys(pilot)
        assert table.row_query.filter_text == "web"
        assert keys_of(app) == ["web1", "web2"]
        assert table.cursor_index == 1
        assert table.has_focus


async def test_keys_held_behind_a_stuck_key_go_to_the_list_in_order(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    app.KEY_SETTLE_LIMIT = 0.3  # the safety net, reached while the view is busy
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        table = table_of(app)
        stall_view(app, True, seconds=1.5)
        type_fast(app, "/web\rkG")
        await pilot.pause(0.8)  # the net fired, the enter is still on its way
        assert app.screen.filter_bar.input.value == "web"  # k and G were not typed in it
        await settle_keys(pilot)
        assert table.row_query.filter_text == "web"
        assert keys_of(app) == ["web1", "web2"]
        assert table.cursor_index == 1  # k then G, in order, on the list
        assert table.has_focus
        assert not app.keys_pending
        type_fast(app, "k")
        await settle_keys(pilot)
        assert table.cursor_index == 0  # and keys settle again as usual


@pytest.mark.parametrize("slow", SPEEDS)
async def test_keys_typed_fast_after_a_command_go_to_the_view_it_opens(
    fleet_cockpit: Cockpit,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    slow: bool,
) -> None:
    if slow:
        request.getfixturevalue("busy_cpu")
        real_servers = fleet_cockpit.servers

        async def slow_servers() -> list[Server]:
            await asyncio.sleep(0.5)  # a slow disk: ":sites golf" reads the names first
            return await real_servers()

        monkeypatch.setattr(fleet_cockpit, "servers", slow_servers)
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        servers = table_of(app)
        stall_view(app, slow)
        type_fast(app, ":sites\rj")  # a view pushed: j moves down in it
        await settle_keys(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert table_of(app).cursor_index == 1
        assert table_of(app).has_focus
        assert servers.cursor_index == 0
        type_fast(app, "1")
        await settle_keys(pilot)
        assert isinstance(app.screen, ServersScreen)
        stall_view(app, slow)
        type_fast(app, ":sites golf\rj")  # opened from a worker (it reads names first)
        await settle_keys(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert table_of(app).row_query.filter_text == "golf"
        assert len(keys_of(app)) > 2
        assert all("golf" in key for key in keys_of(app))
        assert table_of(app).cursor_index == 1
        assert servers.cursor_index == 0


async def test_sites_command_takes_a_filter(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "sites golf-00000")
        assert isinstance(app.screen, SitesScreen)
        assert keys_of(app) == ["golf-000006.example.com"]


async def test_q_and_colon_q_quit(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon", "q", "enter")
        await pilot.pause()
    assert app.return_code == 0


async def test_ctrl_c_quits(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0


async def test_number_keys_switch_views(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        pressed = (
            ("1", ServersScreen),
            ("3", SitesScreen),
            ("2", PlatformsScreen),
            ("4", ClientsScreen),
            ("5", BackupsScreen),
            ("6", TasksScreen),
            ("7", SchedulesScreen),
            ("8", DashboardScreen),
        )
        for key, screen in pressed:
            await pilot.press(key)
            await settle(pilot)
            assert type(app.screen) is screen
        await pilot.press("1")
        await settle(pilot)
        assert [type(s) for s in app.screen_stack] == [OverviewScreen, ServersScreen]
        await pilot.press("0")
        await settle(pilot)
        assert [type(s) for s in app.screen_stack] == [OverviewScreen]


# -- drilling down -------------------------------------------------------------------------


async def test_enter_drills_down_from_server_to_platform_to_site(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")  # db1, localhost, web1
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope == Scope("server", "web1")
        assert keys_of(app) == ["drupal-10", "wp-6-5"]
        await pilot.press("j", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert app.screen.scope == Scope("platform", "wp-6-5")
        assert table_of(app).row_count == 100
        first = keys_of(app)[0]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        text = screen_text(app)
        assert "servers › platforms@web1 › sites@wp-6-5 › " + first in text
        assert "wordpress 6.5.2" in text
        assert "Backups (0)" in text
        await pilot.press("escape", "escape", "escape")
        await settle(pilot)
        assert isinstance(app.screen, ServersScreen)


# -- filtering -----------------------------------------------------------------------------


async def test_slash_filters_the_current_list(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", "w", "e", "b")
        await settle(pilot)
        assert keys_of(app) == ["web1", "web2"]
        assert "servers [2] /web" in screen_text(app)
        await pilot.press("enter")  # keeps the filter, back to the list
        await settle(pilot)
        assert table_of(app).has_focus
        assert keys_of(app) == ["web1", "web2"]
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert keys_of(app) == ["db1", "localhost", "web1", "web2"]


async def test_bang_inverts_the_filter(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", "exclamation_mark", "w", "e", "b")
        await settle(pilot)
        assert keys_of(app) == ["db1", "localhost"]
        await pilot.press("escape")  # in the bar: clears it and leaves it
        await settle(pilot)
        assert keys_of(app) == ["db1", "localhost", "web1", "web2"]
        assert table_of(app).has_focus


async def test_sites_filter_on_the_domain(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("slash", *"hotel-0002")
        await settle(pilot)
        keys = keys_of(app)
        assert keys and all("hotel-0002" in k for k in keys)
        assert table_of(app).row_query == Query("hotel-0002", sort="domain")


async def test_inverted_site_filter_lists_the_other_sites(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("slash", "exclamation_mark", *"hotel")
        await settle(pilot)
        assert app.screen.filter_bar.error is None
        from cockpit.core import SiteFilter

        hotels = (await fleet_cockpit.sites_page(SiteFilter(text="hotel"), limit=0)).total
        assert 0 < hotels < 300
        assert table_of(app).row_count == 300 - hotels
        assert not app._notifications
        await pilot.press(*["backspace"] * 6)  # "!hotel" erased: every site again
        await settle(pilot)
        assert app.screen.filter_bar.error is None
        assert table_of(app).row_count == 300


async def test_filters_are_remembered_per_view(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"echo", "enter")
        await settle(pilot)
        echo = table_of(app).row_count
        assert echo is not None and 0 < echo < 300
        await pilot.press("0")  # back to the overview: the sites view is closed
        await settle(pilot)
        assert [type(s) for s in app.screen_stack] == [OverviewScreen]
        await pilot.press("1", "slash", *"web", "enter")  # the servers: a filter of their own
        await settle(pilot)
        assert table_of(app).row_count == 2
        await pilot.press("3")
        await settle(pilot)
        assert table_of(app).row_count == echo
        assert f"sites [{echo}] /echo" in screen_text(app)
        await pilot.press("0", "1")  # a new servers view: its own filter again
        await settle(pilot)
        assert keys_of(app) == ["web1", "web2"]
        assert app.view_filters == {"overview": "", "sites": "echo", "servers": "web"}


# -- moving and sorting ----------------------------------------------------------------------


async def test_vim_keys_move_the_cursor(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = table_of(app)
        body = table.scrollable_content_region.height - 1
        await pilot.press("j", "j", "j", "k")
        assert table.cursor_index == 2
        await pilot.press("G")
        await settle(pilot)
        assert table.cursor_index == 299
        assert table.current_row is not None
        assert table.current_row.key in screen_text(app)
        await pilot.press("g")
        assert table.cursor_index == 0
        await pilot.press("ctrl+d")
        assert table.cursor_index == body // 2
        await pilot.press("ctrl+u")
        assert table.cursor_index == 0
        await pilot.press("pagedown")
        assert table.cursor_index == body
        assert "1 of 300" not in screen_text(app)


async def test_o_sorts_by_the_next_column_and_shift_o_reverses(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = table_of(app)
        assert "DOMAIN▲" in screen_text(app)
        await pilot.press("O")
        await settle(pilot)
        assert table.row_query.descending
        assert "DOMAIN▼" in screen_text(app)
        assert keys_of(app)[0] == "hotel-000295.example.com"
        await pilot.press("o")
        await settle(pilot)
        assert table.row_query.sort == "server"
        assert "SERVER▲" in screen_text(app)
        first = table.row_at(0)
        assert first is not None and first.cells[1].text == "web1"


async def test_clicking_a_header_sorts(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = table_of(app)
        # The ENV header of the servers view: find its column on screen.
        line = screen_text(app).splitlines()[2]
        await pilot.click(ResourceTable, offset=(line.index("ENV"), 1))  # y 0 is the border
        await settle(pilot)
        assert table.row_query.sort == "environment"
        assert keys_of(app) == ["localhost", "db1", "web1", "web2"]


# -- help, keymap, read-only -------------------------------------------------------------


async def test_question_mark_shows_the_keys_of_the_current_view(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        ids = {e.binding_id for e in app.screen.entries}
        assert {"view.filter", "view.back", "table.bottom", "table.sort", "app.quit"} <= ids
        groups = [e.group for e in app.screen.entries]
        assert groups.index("View") < groups.index("List") < groups.index("Global")
        text = screen_text(app)
        assert "Keys of sites" in text
        assert "Filter" in text and "view.filter" in text
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)


async def test_keymap_override_takes_effect(fleet_cockpit: Cockpit) -> None:
    app = make_app(
        fleet_cockpit, start_view="servers", keymap={"view.sites": "f5", "table.down": "n"}
    )
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")  # no longer bound
        await settle(pilot)
        assert isinstance(app.screen, ServersScreen)
        await pilot.press("n")
        assert table_of(app).cursor_index == 1
        await pilot.press("f5")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        down = next(e for e in app.screen.entries if e.binding_id == "table.down")
        assert down.keys == ("n",)


async def test_keymap_from_the_config_and_unknown_ids_warn(store_path: Any) -> None:
    cockpit = await Cockpit.open(
        Config(store=store_path, keymap={"view.clients": "c", "no.such": "x"})
    )
    try:
        app = make_app(cockpit)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            await pilot.press("c")
            await settle(pilot)
            assert isinstance(app.screen, ClientsScreen)
            assert any("unknown binding id no.such" in n.message for n in app._notifications)
    finally:
        await cockpit.close()


def test_the_keymap_knows_the_ids_of_every_view() -> None:
    known = known_binding_ids()
    assert {"view.sites", "table.bottom", "app.help", "view.overview", "table.mark"} <= known
    assert {"table.mark_all", "confirm.yes", "site.server", "help.half_down"} <= known
    assert {"view.dashboard", "log.follow", "servers.stats"} <= known


async def test_read_only_is_visible(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.read_only
        assert "READ-ONLY" in screen_text(app).splitlines()[0]


async def test_read_only_from_the_config(store_path: Any) -> None:
    cockpit = await Cockpit.open(Config(store=store_path, read_only=True))
    try:
        app = make_app(cockpit)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert "READ-ONLY" in screen_text(app)
    finally:
        await cockpit.close()


async def test_not_read_only_by_default(fresh_cockpit: Cockpit) -> None:
    app = make_app(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert "READ-ONLY" not in screen_text(app)


# -- themes in the app --------------------------------------------------------------------


def test_bad_theme_name_is_an_error_listing_the_valid_names(fresh_cockpit: Cockpit) -> None:
    with pytest.raises(ThemeError) as info:
        make_app(fresh_cockpit, theme="no-such-theme")
    message = str(info.value)
    assert "no-such-theme" in message
    for name in ("cockpit-dark", "cockpit-light", "cockpit-mono", "textual-dark"):
        assert name in message


@pytest.mark.parametrize("theme", ["cockpit-dark", "cockpit-light", "cockpit-mono", "nord"])
async def test_every_theme_renders(fleet_cockpit: Cockpit, theme: str) -> None:
    app = make_app(fleet_cockpit, theme=theme)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == theme
        await pilot.press("3")
        await settle(pilot)
        assert "alpha-000000.example.com" in screen_text(app)


async def test_theme_command_switches_and_refuses_unknown(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.theme == "cockpit-dark"
        await command(pilot, "theme cockpit-light")
        assert app.theme == "cockpit-light"
        await command(pilot, "theme nope")
        assert app.theme == "cockpit-light"
        assert any("valid themes: cockpit-dark" in n.message for n in app._notifications)


async def test_no_color_works(fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fleet_cockpit)
    assert app.no_color
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "G")
        await settle(pilot)
        assert "hotel-000295.example.com" in screen_text(app)


# -- errors in workers ---------------------------------------------------------------------


async def test_a_failing_core_call_is_a_notification_not_a_crash(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = fleet_cockpit.servers

    async def broken() -> list[Server]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the store went away")
        return await real()

    monkeypatch.setattr(fleet_cockpit, "servers", broken)
    failures: list[WorkerFailed] = []
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE, message_hook=lambda m: _collect(m, failures)) as pilot:
        await settle(pilot)
        assert app.is_running
        assert "cannot load: the store went away" in screen_text(app)
        # (the hook sees the message at each node it bubbles through: count it once)
        unique = {id(f): f.summary for f in failures}
        assert list(unique.values()) == ["loading servers failed: the store went away"]
        assert any("the store went away" in n.message for n in app._notifications)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert keys_of(app) == ["db1", "localhost", "web1", "web2"]


def _collect(message: object, into: list[WorkerFailed]) -> None:
    if isinstance(message, WorkerFailed):
        into.append(message)


# -- the table on its own ------------------------------------------------------------------


class TableApp(App[None]):
    def __init__(self, rows: list[Row], columns: list[Column]) -> None:
        super().__init__()
        self.rows = rows
        self.columns = columns

    def compose(self) -> ComposeResult:
        async def load() -> list[Row]:
            return self.rows

        yield ResourceTable(self.columns, ListSource(load, self.columns))


async def test_stored_text_is_plain_text_never_markup_or_escapes() -> None:
    columns = [Column("name", "Name", width=30, flex=1)]
    rows = [
        Row("a", (cell("[bold red]not markup[/]"),)),
        Row("b", (cell("evil\x1b]0;title\x07name\x1b[2J"),)),
        Row("c", (cell("line\nbreak\ttab"),)),
    ]
    app = TableApp(rows, columns)
    async with app.run_test(size=(60, 8)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "[bold red]not markup[/]" in text
        assert "evilname" in text
        assert "\x1b" not in text
        assert "line break" in text


async def test_narrow_terminals_drop_low_priority_columns(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        header = screen_text(app).splitlines()[2]
        assert "DOMAIN" in header and "STATUS" in header and "ALIASES" not in header
        await pilot.resize_terminal(160, 50)
        await settle(pilot)
        header = screen_text(app).splitlines()[2]
        assert "ALIASES" in header
        assert "www.alpha-000000.example.com" in screen_text(app)


async def test_a_failing_detail_load_is_a_notification(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(domain: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(fleet_cockpit, "site", broken)
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        assert app.is_running
        assert any(n.message == "loading the site failed: disk on fire" for n in app._notifications)


async def test_the_theme_comes_from_the_config_unless_given(store_path: Any) -> None:
    cockpit = await Cockpit.open(Config(store=store_path, theme="cockpit-light"))
    try:
        assert make_app(cockpit).theme == "cockpit-light"
        assert make_app(cockpit, theme="cockpit-mono").theme == "cockpit-mono"
    finally:
        await cockpit.close()

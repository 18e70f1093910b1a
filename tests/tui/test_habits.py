"""What every view does alike: its keys (no ctrl+a or ctrl+b, an id for the keymap on
every binding, ``?`` listing them), vim keys, a sort indicator on every list, and the
environment's accent (production in red) on servers, their sites and the header."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rich.color import Color
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.widgets import Input
from tuikit import screen_text, settle

import cockpit.app
import cockpit.screens
import cockpit.widgets
from cockpit.app import CockpitApp, known_binding_ids, make_app
from cockpit.core import Cockpit
from cockpit.messages import Scope
from cockpit.screens.base import ViewScreen
from cockpit.screens.help import HelpScreen
from cockpit.screens.resource import ResourceScreen
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.resource_table import ResourceTable

Tasks = tuple[Cockpit, dict[str, int]]
SIZE = (120, 30)
VIM_KEYS = frozenset({"j", "k", "g", "G", "ctrl+d", "ctrl+u"})


def cockpit_classes() -> list[type[DOMNode]]:
    """Every screen, widget and the app, as defined in Cockpit's modules."""
    modules = [cockpit.app]
    for package in (cockpit.screens, cockpit.widgets):
        for info in pkgutil.iter_modules(package.__path__):
            modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    found: dict[str, type[DOMNode]] = {}
    for module in modules:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, DOMNode)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


def keys_of(binding: Binding) -> set[str]:
    return {key.strip() for key in binding.key.split(",")}


def test_no_binding_uses_ctrl_a_or_ctrl_b_and_each_has_an_id_the_keymap_knows() -> None:
    classes = cockpit_classes()
    names = {cls.__name__ for cls in classes}
    # (the discovery finds what it must: a test that finds nothing cannot fail)
    assert {"CockpitApp", "ServersScreen", "LogScreen", "DashboardScreen", "LogView"} <= names
    assert {"ProblemsScreen", "HelpScreen", "ResourceTable", "TileGrid", "PromptBar"} <= names
    known = known_binding_ids()
    seen = 0
    for cls in classes:
        for klass in cls.__mro__:
            if not klass.__module__.startswith("cockpit"):
                continue
            for binding in klass.__dict__.get("BINDINGS", ()):
                assert isinstance(binding, Binding), f"{klass.__name__}: {binding!r}"
                seen += 1
                where = f"{klass.__qualname__} {binding.key} → {binding.action}"
                assert not {"ctrl+a", "ctrl+b"} & keys_of(binding), where
                assert binding.id, f"{where}: no id to remap it by"
                assert binding.id in known, f"{where}: {binding.id} is not in the keymap"
    assert seen > 80


# -- every view ---------------------------------------------------------------------------------


async def command(pilot: Any, line: str) -> None:
    await pilot.press("colon", *line, "enter")
    await settle(pilot)


def opener(*steps: str | tuple[str, ...]) -> Callable[[Any], Awaitable[None]]:
    """Keys (a str) and command lines (a 1-tuple) that open a view from the overview."""

    async def run(pilot: Any) -> None:
        for step in steps:
            if isinstance(step, tuple):
                await command(pilot, step[0])
            else:
                await pilot.press(step)
                await settle(pilot)

    return run


async def open_problems(pilot: Any) -> None:
    pilot.app.open_view("problems", scope=Scope("check", "server.stale"))
    await settle(pilot)


VIEWS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "overview": opener(),
    "servers": opener("1"),
    "server detail": opener("1", "j", "j", "enter"),
    "platforms": opener("2"),
    "platform's sites": opener("2", "enter"),
    "sites": opener("3"),
    "site detail": opener(("s /bravo-000001",), "enter"),
    "clients": opener("4"),
    "backups": opener("5"),
    "tasks": opener("6"),
    "task detail": opener("6", "G", "enter"),
    "schedules": opener("7"),
    "backup detail": opener("5", "enter"),
    "schedule detail": opener("7", "enter"),
    "dashboard": opener("8"),
    "audit": opener(("audit",)),
    "batch": opener(("batch 2",)),
    "problems": open_problems,
    "log": opener(("log 3",)),
    "charts": opener(("stats web1",)),
}

#: Views whose vim keys act on something else than a list or a scrolled detail (the tiles,
#: the log): their own tests drive them; here they must be bound.
OWN_MOVES = frozenset({"dashboard", "log", "charts"})


@pytest.fixture
async def every_view_cockpit(tasks_cockpit: Tasks) -> Tasks:
    cockpit, batches = tasks_cockpit
    await cockpit.tasks.add_schedule("nightly", "0 3 * * *", "server.ping", ["*"])
    await cockpit.tasks.add_schedule("hourly", "0 * * * *", "server.ping", ["web1"])
    return cockpit, batches


@pytest.mark.parametrize("view", list(VIEWS))
async def test_every_view_has_vim_keys_a_generated_help_and_no_ctrl_a_or_b(
    every_view_cockpit: Tasks, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cockpit, _batches = every_view_cockpit
    monkeypatch.setattr(CockpitApp, "WORKER_POLL_SECONDS", 3600.0)
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await VIEWS[view](pilot)
        screen = app.screen
        assert isinstance(screen, ViewScreen), f"{view}: {screen!r}"
        active = screen.active_bindings
        assert not {"ctrl+a", "ctrl+b"} & set(active), view
        assert set(active) >= VIM_KEYS, f"{view}: {sorted(VIM_KEYS - set(active))}"
        bound = {
            b.binding.id
            for b in active.values()
            if b.enabled and b.binding.id and not b.binding.system
        }
        # ?: the keys of this view, generated from its bindings.
        await pilot.press("question_mark")
        await settle(pilot)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen), view
        assert help_screen.title_text == f"Keys of {screen.crumb}"
        listed = {e.binding_id for e in help_screen.entries if e.binding_id}
        assert listed == bound, view
        assert {"app.help", "app.command", "view.overview"} <= listed
        text = screen_text(app)
        assert f"Keys of {screen.crumb}" in text
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        if view in OWN_MOVES:
            return
        if isinstance(screen, ResourceScreen):
            await lists_move_and_show_their_sort(pilot, screen, view)
        else:
            await details_scroll(pilot, screen, view)


async def lists_move_and_show_their_sort(pilot: Any, screen: ResourceScreen, view: str) -> None:
    table = screen.table
    header = "".join(segment.text for segment in table.render_line(0))
    assert "▲" in header or "▼" in header, f"{view}: no sort indicator in {header!r}"
    total = table.row_count or 0
    assert total >= 2, f"{view}: {total} rows"
    half = max(1, (table.scrollable_content_region.height - 1) // 2)
    for key, expected in (
        ("j", 1),
        ("k", 0),
        ("G", total - 1),
        ("g", 0),
        ("ctrl+d", min(half, total - 1)),
        ("ctrl+u", 0),
    ):
        await pilot.press(key)
        await settle(pilot)
        assert table.cursor_index == expected, f"{view}: {key}"
    assert pilot.app.screen is screen
    await pilot.press("o")  # the next column: the indicator moves
    await settle(pilot)
    assert table.row_query.sort is not None
    column = next(c for c in table.columns if c.sort == table.row_query.sort)
    header = "".join(segment.text for segment in table.render_line(0))
    assert f"{column.label.upper()}▲" in header or f"{column.label.upper()}▼" in header, view


async def details_scroll(pilot: Any, screen: ViewScreen, view: str) -> None:
    await pilot.resize_terminal(80, 12)
    await settle(pilot)
    scroller = screen.query_one(VerticalScroll)
    assert scroller.max_scroll_y > 2, f"{view}: too short to scroll"
    for key, check in (
        ("j", lambda y: y == 1),
        ("k", lambda y: y == 0),
        ("G", lambda y: y == scroller.max_scroll_y),
        ("g", lambda y: y == 0),
        ("ctrl+d", lambda y: y > 1),
        ("ctrl+u", lambda y: y == 0),
    ):
        await pilot.press(key)
        await settle(pilot)
        assert check(scroller.scroll_y), f"{view}: {key} → {scroller.scroll_y}"


# -- the environment's accent ------------------------------------------------------------------


def reddish(color: Color | None) -> bool:
    assert color is not None
    red, green, blue = color.get_truecolor()
    return red > 150 and red > 1.5 * green and red > 1.5 * blue


async def test_production_is_red_on_servers_their_sites_and_the_header(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.screen.query_one(ResourceTable)
        rows = {r.key: r for r in (table.row_at(i) for i in range(4)) if r}
        env = next(i for i, c in enumerate(table.columns) if c.key == "environment")
        assert {k for k, r in rows.items() if r.cells[env].tone == "prod"} == {"db1", "web1"}
        assert rows["web2"].cells[env].tone == "staging"
        assert reddish(table.get_component_rich_style("resource-table--tone-prod").color)
        header = app.screen.query_one(CockpitHeader)
        assert header.environment == "prod"  # the cursor is on db1
        assert reddish(header.get_component_rich_style("header--env-prod").bgcolor)
        # A prod server's sites: a red border, the server and environment cells in red.
        await pilot.press("colon", *"sites web1", "enter")
        await settle(pilot)
        sites = app.screen
        assert isinstance(sites, ResourceScreen) and sites.scope == Scope("server", "web1")
        assert sites.table.has_class("-env-prod")
        assert reddish(sites.table.styles.border_top[1].rich_color)
        first = sites.table.row_at(0)
        assert first is not None and first.environment == "prod"
        assert first.cells[1].tone == "prod" and first.cells[2].tone == "prod"
        assert header is not sites.query_one(CockpitHeader)
        assert sites.query_one(CockpitHeader).environment == "prod"
        assert " prod " in screen_text(app).splitlines()[0]
        # A staging server's: amber, not red.
        await pilot.press("colon", *"sites web2", "enter")
        await settle(pilot)
        assert app.screen.query_one(ResourceTable).has_class("-env-staging")
        assert app.screen.query_one(CockpitHeader).environment == "staging"


async def test_prod_reads_without_colour(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR: production is bold and underlined, the cursor reversed."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.no_color
        table = app.screen.query_one(ResourceTable)
        prod = table.get_component_rich_style("resource-table--tone-prod")
        assert prod.bold and prod.underline
        assert table.get_component_rich_style("resource-table--cursor").reverse
        text = screen_text(app)
        assert "db1" in text and "prod" in text
        lines = text.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert not isinstance(app.focused, Input)

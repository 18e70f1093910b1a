"""The ``:`` command line: arguments (scope and /filter), aliases, completion, the task views."""

from __future__ import annotations

from typing import Any

import pytest
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.messages import Scope
from cockpit.screens.batch import BatchScreen
from cockpit.screens.command import (
    CommandError,
    CommandSuggester,
    Names,
    parse_command,
    resolve_view_arguments,
)
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.sites import SitesScreen
from cockpit.screens.tasks import AuditScreen, TasksScreen
from cockpit.widgets.resource_table import ResourceTable

SIZE = (80, 24)

NAMES = Names(
    environments=frozenset({"prod", "staging", "local"}),
    servers=frozenset({"web1", "web2", "db1"}),
    platforms=frozenset({"wp-6-5", "static"}),
    clients=frozenset({"acme"}),
    themes=("cockpit-dark", "cockpit-light"),
)
SITE_SCOPES = SitesScreen.SCOPES


def resolve(line: str) -> tuple[Scope | None, str | None]:
    parsed = parse_command(line)
    assert parsed is not None
    return resolve_view_arguments(parsed.name, SITE_SCOPES, parsed, NAMES)


@pytest.mark.parametrize(
    ("line", "scope", "filt"),
    [
        ("sites", None, None),
        ("s prod /wp", Scope("environment", "prod"), "wp"),
        ("site disabled", Scope("status", "disabled"), None),
        ("sites web1", Scope("server", "web1"), None),
        ("sites wp-6-5 /!~^a", Scope("platform", "wp-6-5"), "!~^a"),
        ("sites client=acme", Scope("client", "acme"), None),
        ("sites env=staging /x y", Scope("environment", "staging"), "x y"),
        ("sites golf", None, "golf"),  # names nothing: the filter
        ("sites /prod", None, "prod"),  # after "/" it is always the filter
    ],
)
def test_view_arguments_resolve_to_a_scope_and_a_filter(
    line: str, scope: Scope | None, filt: str | None
) -> None:
    assert resolve(line) == (scope, filt)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("sites prod staging", "one scope at a time"),
        ("sites env=qa", "no environment 'qa'; environments: local, prod, staging"),
        ("sites colour=red", ":sites takes status=NAME, env=NAME"),
        ("sites golf /x", "'golf' names nothing"),
        ("help me", ":help takes no argument"),
        ("nope", "unknown command 'nope'"),
    ],
)
def test_bad_arguments_are_errors_that_say_what_is_valid(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        resolve(line)


@pytest.mark.parametrize(
    ("value", "suggestion"),
    [
        ("si", "sites"),
        ("pl", "platforms"),
        ("ov", "overview"),
        ("sites pr", "sites prod"),
        ("sites dis", "sites disabled"),
        ("pf we", "pf web1"),
        ("sites env=st", "sites env=staging"),
        ("theme cockpit-l", "theme cockpit-light"),
        ("tasks fa", "tasks failed"),
        ("sites /pr", None),
        ("nope x", None),
    ],
)
async def test_completion_follows_commands_and_the_inventory(
    value: str, suggestion: str | None
) -> None:
    kinds = {
        "sites": SITE_SCOPES,
        "pf": PlatformsScreen.SCOPES,
        "platforms": PlatformsScreen.SCOPES,
    }
    suggester = CommandSuggester(lambda: NAMES, lambda view: kinds.get(view, ()))
    assert await suggester.get_suggestion(value) == suggestion


async def command(pilot: Any, line: str) -> None:
    await pilot.press("colon")
    await pilot.press(*line, "enter")
    await settle(pilot)


def keys_of(app: Any) -> list[str]:
    table = app.screen.query_one(ResourceTable)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


async def test_commands_with_scopes_and_filters_open_narrowed_views(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "sites staging /alpha")
        screen = app.screen
        assert isinstance(screen, SitesScreen)
        assert screen.scope == Scope("environment", "staging")
        keys = keys_of(app)
        assert keys and all(k.startswith("alpha-") for k in keys)
        # staging is web2, whose only platform is "static": every third site.
        assert len(keys) == sum(1 for n in range(300) if n % 8 == 0 and n % 3 == 2)
        text = screen_text(app)
        assert "sites@staging [" in text and "/alpha" in text
        assert "environment staging  servers: web2" in text

        await command(pilot, "s disabled")
        assert app.screen.scope == Scope("status", "disabled")  # type: ignore[attr-defined]
        assert len(keys_of(app)) == sum(1 for n in range(300) if n % 17 == 0)

        await command(pilot, "srv prod")
        assert isinstance(app.screen, ServersScreen)
        assert keys_of(app) == ["db1", "web1"]

        await command(pilot, "pf web2")
        assert isinstance(app.screen, PlatformsScreen)
        assert keys_of(app) == ["static"]

        await command(pilot, "sites env=nowhere")
        assert isinstance(app.screen, PlatformsScreen)
        assert any("no environment 'nowhere'" in n.message for n in app._notifications)

        await command(pilot, "ov")
        assert isinstance(app.screen, OverviewScreen)


async def test_tasks_commands_open_the_task_views(
    tasks_cockpit: tuple[Cockpit, dict[str, int]],
) -> None:
    cockpit, batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "tasks failed")
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        assert screen.scope == Scope("state", "failed")
        assert keys_of(app) == ["18", "17"]
        await command(pilot, "t running /alpha")
        assert isinstance(app.screen, TasksScreen)
        assert app.screen.scope == Scope("state", "running")
        assert keys_of(app) == ["19"]
        await command(pilot, "t nonsense")  # a word that names no state is the filter
        assert isinstance(app.screen, TasksScreen) and app.screen.scope is None
        assert app.screen.filter_text == "nonsense"
        await command(pilot, "t state=nope")
        assert any("no state 'nope'" in n.message for n in app._notifications)
        await command(pilot, f"batch {batches['ping']}")
        assert isinstance(app.screen, BatchScreen)
        assert app.screen.batch_id == batches["ping"]
        await command(pilot, "batch seven")
        assert any(":batch takes a batch id" in n.message for n in app._notifications)
        await command(pilot, "audit bob")
        assert isinstance(app.screen, AuditScreen)
        assert keys_of(app) == ["2", "1"]
        await command(pilot, "sched")
        assert isinstance(app.screen, SchedulesScreen)
        assert "store-retention" in keys_of(app)  # the nightly retention of a new store


async def test_tab_completes_a_scope_from_the_inventory(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon")
        await settle(pilot)  # the names are read when the prompt opens
        await pilot.press(*"pf we", "tab")
        await settle(pilot)
        assert app.screen.query_one("#command-bar Input").value in ("pf web1", "pf web2")  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope is not None and app.screen.scope.kind == "server"


async def test_a_command_whose_names_cannot_be_read_is_an_error_not_a_crash(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)

        async def broken() -> list[Any]:
            raise RuntimeError("the store went away")

        monkeypatch.setattr(fleet_cockpit, "clients", broken)
        await command(pilot, "sites prod")
        assert app.is_running
        assert isinstance(app.screen, OverviewScreen)
        messages = [n.message for n in app._notifications]
        assert messages == ["reading names failed: the store went away"]

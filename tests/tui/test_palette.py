"""ctrl+p: the command palette with entity and action providers."""

from __future__ import annotations

from typing import Any

from textual.command import CommandInput, CommandList, CommandPalette
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.messages import Scope
from cockpit.screens.dashboard import DashboardScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.problems import ProblemsScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.sites import SitesScreen

SIZE = (80, 24)


async def palette(pilot: Any, query: str) -> str:
    """Open the palette, type ``query``, wait for the hits; the screen as text."""
    await pilot.press("ctrl+p")
    await settle(pilot)
    assert isinstance(pilot.app.screen, CommandPalette)
    pilot.app.screen.query_one(CommandInput).value = query  # one search, not one per key
    hits = pilot.app.screen.query_one(CommandList)
    for _ in range(100):  # the palette gathers hits in the background
        await pilot.pause(0.05)
        if hits.option_count and hits.highlighted is not None:
            break
    await settle(pilot)
    return screen_text(pilot.app)


async def test_the_palette_jumps_to_servers_platforms_clients_and_sites(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = await palette(pilot, "server web2")
        assert "server web2" in text and "staging · 10.0.0.12" in text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope == Scope("server", "web2")

        text = await palette(pilot, "golf-000014")  # a site, searched in the store
        assert "site golf-000014.example.com" in text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        assert app.screen.domain == "golf-000014.example.com"

        await palette(pilot, "client globex")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert app.screen.scope == Scope("client", "globex")


async def test_the_palette_runs_actions(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await palette(pilot, "view dashboard")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        await palette(pilot, "view problems")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ProblemsScreen) and app.screen.scope is None
        assert app.screen.table.row_count == 4  # no statistics yet on the four servers
        await palette(pilot, "view overview")
        await pilot.press("enter")
        await settle(pilot)
        assert [type(s) for s in app.screen_stack] == [OverviewScreen]
        await palette(pilot, "theme cockpit-light")
        await pilot.press("enter")
        await settle(pilot)
        assert app.theme == "cockpit-light"
        await pilot.press("3")
        await settle(pilot)
        text = await palette(pilot, "mark all")
        assert "mark every row" in text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert app.screen.table.marks.count == 300
        await palette(pilot, "clear marks")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen.table.marks.count == 0

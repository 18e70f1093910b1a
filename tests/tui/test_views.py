"""The detail views, the overview, the backups list, read-only guards and vim keys in them."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.messages import Scope
from cockpit.model import Server
from cockpit.screens.backup import BackupScreen
from cockpit.screens.backups import BackupsScreen
from cockpit.screens.base import changing
from cockpit.screens.help import HelpScreen
from cockpit.screens.overview import Finding, OverviewScreen, collect, verdict
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.problems import ProblemsScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.sites import SitesScreen
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.resource_table import ResourceTable

SIZE = (80, 24)


def table_of(app: Any) -> ResourceTable:
    return app.screen.query_one(ResourceTable)


def keys_of(app: Any) -> list[str]:
    table = table_of(app)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


# -- the overview --------------------------------------------------------------------------


async def test_the_overview_says_what_is_wrong_and_enter_opens_it(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)  # the first view
        # globex has a quota of 50 sites and holds 100: the one problem, on top.
        assert "✗ 1 problem: clients globex over quota" in screen_text(app)
        line = str(screen.query_one("#summary", Static).render())
        assert "! 18 sites disabled" in line
        assert "4 servers no statistics" in line and "4 servers health unknown" in line
        keys = keys_of(app)
        assert keys[0] == "clients:globex over quota"
        assert keys[1] == "sites:disabled"
        for key in ("servers:health unknown", "servers:no statistics", "sites:env prod"):
            assert key in keys
        assert "tasks:worker" in keys and screen.findings["tasks:worker"].note == (
            "none runs for this store"
        )
        assert screen.findings["sites:disabled"].count == sum(1 for n in range(300) if n % 17 == 0)
        assert screen.findings["servers:env prod"].count == 2
        # The on-call status: no collection has run yet, every server is "no statistics".
        stale = screen.findings["servers:no statistics"]
        assert stale.severity == "unknown" and stale.check == "server.stale"
        assert [p.subject for p in stale.problems] == ["db1", "localhost", "web1", "web2"]
        # enter on "sites disabled" opens the disabled sites.
        table = table_of(app)
        table.move_cursor(keys.index("sites:disabled"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert app.screen.scope == Scope("status", "disabled")
        assert table_of(app).row_count == screen.findings["sites:disabled"].count
        # "servers health unknown" opens the servers of that health.
        await pilot.press("escape")
        await settle(pilot)
        table_of(app).move_cursor(keys.index("servers:health unknown"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ServersScreen)
        assert app.screen.scope == Scope("health", "unknown")
        assert keys_of(app) == ["db1", "localhost", "web1", "web2"]
        assert "overview › servers@unknown" in screen_text(app)
        # "servers no statistics" lists its four problems; enter on one opens its server.
        await pilot.press("escape")
        await settle(pilot)
        table_of(app).move_cursor(keys.index("servers:no statistics"))
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ProblemsScreen)
        assert app.screen.scope == Scope("check", "server.stale")
        assert len(keys_of(app)) == 4
        await pilot.press("G", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope == Scope("server", "web2")


async def test_a_failing_overview_section_is_a_finding_not_a_crash(fleet_cockpit: Cockpit) -> None:
    async def broken(cockpit: Cockpit) -> list[Finding]:
        raise RuntimeError("disk on fire")

    broken.__name__ = "disks_section"
    found = await collect(fleet_cockpit, [broken])
    assert found == [Finding("disks", "cannot check", None, "bad", "disk on fire")]
    assert "✗ 1 problem: disks cannot check" in verdict(found).plain
    assert "✓ nothing wrong found" in verdict([Finding("a", "b", 1, "ok")]).plain


# -- detail views ----------------------------------------------------------------------------


async def test_a_servers_detail_shows_its_services_health_and_platforms(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "j", "enter")  # web1
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PlatformsScreen) and screen.scope == Scope("server", "web1")
        text = screen_text(app)
        assert "server    web1  10.0.0.11:22  ssh as deploy  env prod" in text
        assert (
            "services  db mysql · http nginx" in text or "services  http nginx · db mysql" in text
        )
        assert "health    unknown: not checked yet" in text
        assert keys_of(app) == ["drupal-10", "wp-6-5"]
        # A prod server's detail carries the prod accent, even on an empty list.
        assert table_of(app).has_class("-env-prod")
        assert screen.query_one(CockpitHeader).environment == "prod"


async def test_a_platforms_and_a_clients_sites_say_what_they_are_narrowed_to(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2", "j", "enter")  # static, on web2 (staging), locked
        await settle(pilot)
        assert app.screen.scope == Scope("platform", "static")  # type: ignore[attr-defined]
        text = screen_text(app)
        assert "platform static  static  on web2 (staging)  locked: no new sites" in text
        assert "root /var/lib/cockpit/static" in text
        assert table_of(app).has_class("-env-staging")
        await pilot.press("4", "j", "enter")  # globex: 100 sites, quota 50
        await settle(pilot)
        assert app.screen.scope == Scope("client", "globex")  # type: ignore[attr-defined]
        text = screen_text(app)
        assert "client globex  it@globex.example" in text
        assert "sites 100 of a quota of 50  over quota" in text
        assert table_of(app).row_count == 100


async def test_a_sites_detail_shows_database_aliases_backups_and_jumps(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=(80, 40)) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"s /bravo-000001", "enter")  # (no reload per key)
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SiteScreen) and screen.domain == "bravo-000001.example.com"
        text = screen_text(app)
        assert "Where" in text and "Database" in text
        assert "db1  (pgsql; prod, db1.example.net:22)" in text
        assert "Backups (2)" in text
        backups = [line for line in text.splitlines() if " 03:00 " in line]
        assert "2024-05-02 03:00" in backups[0] and "restic" in backups[0]  # newest first
        assert "46.0 MiB" in backups[1]
        assert "/var/backups/cockpit/bravo-000001/2024-05-01.tar.gz" in text
        assert screen.query_one("#detail").has_class("-env-prod")
        await pilot.press("s")  # the server: web1's detail
        await settle(pilot)
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope == Scope("server", "web1")
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("c")  # the client: globex's sites
        await settle(pilot)
        assert app.screen.scope == Scope("client", "globex")  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("p")  # the platform's sites
        await settle(pilot)
        assert app.screen.scope == Scope("platform", "drupal-10")  # type: ignore[attr-defined]


async def test_vim_keys_scroll_the_site_detail_and_the_help(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=(80, 12)) as pilot:
        await settle(pilot)
        await pilot.press("3", "enter")
        await settle(pilot)
        detail = app.screen.query_one("#detail", VerticalScroll)
        assert detail.max_scroll_y > 0
        await pilot.press("G")
        assert detail.scroll_y == detail.max_scroll_y
        await pilot.press("g")
        assert detail.scroll_y == 0
        await pilot.press("ctrl+d")
        half = detail.scroll_y
        assert half > 0
        await pilot.press("ctrl+u", "j", "j")
        assert detail.scroll_y == 2
        await pilot.press("k")
        assert detail.scroll_y == 1
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        scroller = app.screen.query_one(VerticalScroll)
        assert scroller.max_scroll_y > 0
        await pilot.press("G")
        assert scroller.scroll_y == scroller.max_scroll_y
        await pilot.press("g", "ctrl+d")
        assert scroller.scroll_y > 0
        await pilot.press("ctrl+u")
        assert scroller.scroll_y == 0


async def test_the_backups_view_lists_newest_first_and_opens_the_backup_then_its_site(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        assert isinstance(app.screen, BackupsScreen)
        rows = [table_of(app).row_at(i) for i in range(2)]
        assert [r.cells[1].text for r in rows if r] == ["2024-05-02 03:00", "2024-05-01 03:00"]
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BackupScreen)  # the newest: the restic one
        assert "restic" in screen_text(app)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        assert app.screen.domain == "bravo-000001.example.com"


# -- read-only -----------------------------------------------------------------------------


class GuardedServers(ServersScreen):
    """A view with a changing action, as the task actions will be."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("b", "backup", "Backup", id="test.backup")]
    ran: ClassVar[list[str]] = []

    @changing("backup")
    def action_backup(self) -> None:
        self.ran.append("backup")


@pytest.mark.parametrize("read_only", [False, True])
async def test_changing_actions_are_refused_with_a_notification_when_read_only(
    fleet_cockpit: Cockpit, read_only: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    GuardedServers.ran = []
    app = make_app(fleet_cockpit, read_only=read_only)
    monkeypatch.setattr(app, "get_default_screen", GuardedServers)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("b")
        await settle(pilot)
        messages = [n.message for n in app._notifications]
        if read_only:
            assert GuardedServers.ran == []
            assert messages == [
                "backup is disabled: Cockpit is read-only (--read-only or read_only: true "
                "in the config)"
            ]
        else:
            assert GuardedServers.ran == ["backup"]
            assert messages == []


def test_server_health_is_never_made_up() -> None:
    from cockpit.screens.servers import HEALTH_COLUMN, server_row, server_summary

    server = Server(name="x", address="10.0.0.1")
    assert server_row(server).cells[HEALTH_COLUMN].text == "unknown"
    assert "unknown: not checked yet" in server_summary(server).plain

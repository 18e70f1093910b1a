"""The overview, the first view: the on-call status's problems first (unreachable servers,
sites failing their probe, certificates, disks), the tasks and the worker, counts of the
inventory; each line drills down; lines come in section by section and are refreshed in
place."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from statskit import DB1_ERROR
from textual.widgets import Static
from tuikit import screen_text, settle, site_domain

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.messages import Scope
from cockpit.screens.overview import (
    Finding,
    OverviewScreen,
    servers_section,
    tasks_section,
)
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.problems import ProblemsScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.tasks import TasksScreen
from cockpit.widgets.resource_table import ResourceTable

SIZE = (160, 50)


def table_of(app: Any) -> ResourceTable:
    return app.screen.query_one(ResourceTable)


def keys_of(app: Any) -> list[str]:
    table = table_of(app)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


def verdict_of(app: Any) -> str:
    return str(app.screen.query_one("#summary", Static).render())


async def until(pilot: Any, check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")
        await pilot.pause(0.02)


async def open_line(pilot: Any, key: str) -> None:
    app = pilot.app
    table_of(app).move_cursor(keys_of(app).index(key))
    await pilot.press("enter")
    await settle(pilot)


async def test_the_on_call_problems_come_first_and_drill_down(oncall_cockpit: Cockpit) -> None:
    """statskit's fleet: db1 unreachable, sites 1 and 4 answer 503, certificates of sites 5
    (2 days left), 2 and 7 (10, 12 days), web1's /var filling, web2 needing a reboot,
    localhost never collected."""
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        found = screen.findings
        unreachable = found["servers:unreachable"]
        assert (unreachable.count, unreachable.severity) == (1, "bad")
        assert unreachable.note.startswith(
            "db1: unreachable: connect to db1.example.net:22: Connection refused"
        )
        assert "\x1b" not in unreachable.note and "owned" not in unreachable.note
        assert "\x1b" in DB1_ERROR  # (what the network sent had escape sequences)
        probe = found["sites:probe failing"]
        assert (probe.count, probe.severity) == (2, "bad")
        assert {p.subject for p in probe.problems} == {site_domain(1), site_domain(4)}
        certificate = found["sites:certificate"]
        assert (certificate.count, certificate.severity) == (3, "bad")  # the worst: site 5
        assert found["servers:reboot pending"].severity == "warn"
        assert found["disks:full"].severity == "warn"
        assert found["servers:no statistics"].severity == "unknown"
        assert "services:down" not in found  # every service runs
        # Problems first, in the order of their severity.
        keys = keys_of(app)
        severities = [found[key].severity for key in keys]
        order = ["bad", "warn", "unknown", "ok", "info"]
        assert severities == sorted(severities, key=order.index)
        assert keys[:3] == ["servers:unreachable", "sites:probe failing", "sites:certificate"]
        line = verdict_of(app)
        assert line.startswith(" ✗ 4 problems: servers unreachable; sites probe failing;")
        assert "STATE▲" in screen_text(app)
        # One server unreachable: enter opens its detail.
        await open_line(pilot, "servers:unreachable")
        assert isinstance(app.screen, PlatformsScreen)
        assert app.screen.scope == Scope("server", "db1")
        assert "overview › platforms@db1" in screen_text(app)
        await pilot.press("escape")
        await settle(pilot)
        # Two sites failing: enter lists them, enter on one opens the site.
        await open_line(pilot, "sites:probe failing")
        problems = app.screen
        assert isinstance(problems, ProblemsScreen)
        assert problems.scope == Scope("check", "site.probe")
        assert len(keys_of(app)) == 2
        text = screen_text(app)
        assert "overview › problems@site.probe" in text
        assert "answers HTTP 503 through web1" in text and "✗ CRITICAL" in text
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        assert app.screen.domain == site_domain(1)


async def test_the_on_call_section_says_checking_until_its_evaluation_ends(
    oncall_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The overview paints without waiting for the on-call evaluation: its line says it is
    being checked (neither a problem nor all well) and keys work meanwhile; when the real
    evaluation ends, its findings take the line's place."""
    gate = asyncio.Event()
    evaluate = oncall_cockpit.status
    asked: list[dict[str, Any]] = []

    async def held(**kwargs: Any) -> Any:
        asked.append(kwargs)
        await gate.wait()
        return await evaluate(**kwargs)

    monkeypatch.setattr(oncall_cockpit, "status", held)
    app = make_app(oncall_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(asked), "the evaluation to start")
        await until(pilot, lambda: "tasks:worker" in keys_of(app), "the other sections")
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        checking = screen.findings["status:checking…"]
        assert checking.pending and checking.severity == "unknown" and checking.count is None
        assert not any(f.check for f in screen.findings.values())  # no on-call finding yet
        assert "status:on-call check" not in keys_of(app)  # not "nothing wrong"
        text = screen_text(app)
        assert "… reading" in text and "reading the on-call status" in text
        line = verdict_of(app)
        assert line.startswith(" … checking status…")
        assert "nothing wrong found" not in line and "✓" not in line
        assert asked == [{"now": asked[0]["now"], "sites": False}]  # not every site's line
        # Keys work while it is checked: the cursor moves, a filter narrows the list.
        table = table_of(app)
        row = table.cursor_index
        await pilot.press("down")
        await until(pilot, lambda: table.cursor_index == row + 1, "the cursor to move")
        await pilot.press("/", *"env", "enter")
        await until(
            pilot,
            lambda: "status:checking…" not in keys_of(app) and "servers:env prod" in keys_of(app),
            "the filtered lines",
        )
        assert all("env" in key for key in keys_of(app))
        await pilot.press("escape")
        await until(pilot, lambda: "status:checking…" in keys_of(app), "the lines again")
        assert screen.reads == 0
        gate.set()
        await until(pilot, lambda: screen.reads == 1, "the evaluation to end")
        await settle(pilot)
        assert "status:checking…" not in keys_of(app)
        assert keys_of(app)[:3] == [
            "servers:unreachable",
            "sites:probe failing",
            "sites:certificate",
        ]
        assert screen.findings["sites:probe failing"].count == 2
        assert verdict_of(app).startswith(" ✗ 4 problems: servers unreachable;")
        assert "checking" not in verdict_of(app)


async def test_lines_show_while_a_slow_section_is_read(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow section (as the on-call evaluation of 100,000 sites is) is read after the
    others, which show at once; its line says it is being read until it is in."""
    gate = asyncio.Event()

    async def disks_section(cockpit: Cockpit) -> list[Finding]:
        await gate.wait()
        return [Finding("disks", "full", 1, "bad", "web1:/var 97 % used")]

    disks_section.slow = True  # type: ignore[attr-defined]
    sections = [tasks_section, disks_section, servers_section]
    monkeypatch.setattr(OverviewScreen, "SECTIONS", sections)
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await until(
            pilot,
            lambda: {"servers:env prod", "tasks:worker"} <= set(keys_of(app)),
            "the fast sections",
        )
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        assert "disks:checking…" in keys_of(app)
        assert "… reading" in screen_text(app)
        assert "checking disks…" in verdict_of(app)
        # Another view on top: the read stops (the slow section would hold the store's
        # reader); back on the overview, it is read again.
        reader = screen._reader
        assert reader is not None and reader.is_running
        await pilot.press("3")
        await until(pilot, lambda: reader.is_cancelled, "the read to stop")
        await settle(pilot)
        assert table_of(app).row_count == 300
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "the overview")
        assert screen._reader is not reader and screen._reader is not None
        assert screen._reader.is_running
        assert screen.reads == 0
        gate.set()
        await settle(pilot)
        assert keys_of(app)[0] == "disks:full"
        assert "disks:checking…" not in keys_of(app)
        assert verdict_of(app).startswith(" ✗ 1 problem: disks full")
        assert screen.reads == 1


async def test_a_read_again_replaces_only_the_lines_that_changed(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        table = table_of(app)
        assert "tasks:queued" not in keys_of(app)
        reloads, refreshes = screen.list_reloads, screen.row_refreshes
        # Nothing changed: nothing is replaced, the list is not read again.
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.reads == 2, "a second read")
        await settle(pilot)
        assert (screen.list_reloads, screen.row_refreshes) == (reloads, refreshes)
        # A task is queued (no worker runs): a line comes, the list is read again.
        await fleet_cockpit.tasks.queue("server.ping", ["web1"], queued_by="carol")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.reads == 3, "a third read")
        await settle(pilot)
        assert screen.list_reloads == reloads + 1
        queued = screen.findings["tasks:queued"]
        assert (queued.count, queued.severity) == (1, "bad")
        assert queued.note == "no worker runs: they wait"
        # Another one: the same lines with other counts, replaced in place.
        pages = table.pages_read
        await fleet_cockpit.tasks.queue("server.ping", ["web2"], queued_by="carol")
        await pilot.press("ctrl+r")
        await until(pilot, lambda: screen.reads == 4, "a fourth read")
        await settle(pilot)
        assert screen.list_reloads == reloads + 1
        assert screen.row_refreshes == refreshes + 1
        assert table.pages_read == pages
        assert screen.findings["tasks:queued"].count == 2
        row = table.row_at(keys_of(app).index("tasks:queued"))
        assert row is not None and row.cells[3].text == "2"
        # enter on it: the queued tasks.
        await open_line(pilot, "tasks:queued")
        assert isinstance(app.screen, TasksScreen)
        assert app.screen.scope == Scope("state", "queued")
        assert len(keys_of(app)) == 2


async def test_the_line_of_keys_follows_the_keymap(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, keymap={"view.dashboard": "f8", "view.sites": "s"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        line = str(app.screen.query_one("#view-keys", Static).render())
        assert line.startswith(" f8  dashboard   1  servers   2  platforms   s  sites")
        assert line.endswith(" :  command")

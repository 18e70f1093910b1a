"""SVG snapshots of the main views (pytest-textual-snapshot), on a deterministic fleet.

Review a changed snapshot as you review code: ``pytest tests/tui --snapshot-update``
rewrites them, ``snapshot_report.html`` shows the differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tuikit import TASKS_NOW, settle, site_kind

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.engine import Engine, Registry
from cockpit.engine.builtin import BUILTIN_KINDS
from cockpit.screens.confirm import ConfirmTaskScreen, Danger, TaskConfirmation

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The header shows Cockpit's version: pinned here so a release leaves snapshots alone."""
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")


def keys(*pressed: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_servers_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("1"))


@pytest.mark.parametrize("size", SIZES)
def test_sites_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("3", "j", "j"))


def test_sites_view_filtered(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("3", "slash", *"golf-0001"))


def test_help_over_the_sites_view(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("3", "question_mark"))


def test_servers_view_mono_read_only(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit
) -> None:
    app = make_app(fleet_cockpit_sync, theme="cockpit-mono", read_only=True)
    assert snap_compare(app, run_before=keys("1"))


@pytest.mark.parametrize("size", SIZES)
def test_overview(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    """The first view, on a fleet no statistics were collected for yet."""
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_overview_with_on_call_problems(
    snap_compare: SnapCompare, oncall_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    """statskit's fleet: a server unreachable, sites failing their probe, certificates
    expiring, a disk filling, a reboot pending."""
    app = make_app(oncall_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys())


def test_problems_of_one_check(snap_compare: SnapCompare, oncall_cockpit_sync: Cockpit) -> None:
    app = make_app(oncall_cockpit_sync)
    assert snap_compare(app, run_before=keys("j", "j", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_server_detail(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("1", "j", "j", "enter"))


def test_site_detail(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("colon", *"s /bravo-000001", "enter", "enter"))


def test_sites_marked_with_a_range_pending(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit
) -> None:
    app = make_app(fleet_cockpit_sync)
    pressed = ("3", "space", "j", "j", "shift+down", "j", "j", "v", "j", "j")
    assert snap_compare(app, run_before=keys(*pressed))


def test_confirm_a_dangerous_batch(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)

    async def run_before(pilot: Pilot[Any]) -> None:
        await keys("3", "slash", *"golf", "enter", "asterisk")(pilot)
        count = app.screen.table.marks.count  # type: ignore[attr-defined]
        request = TaskConfirmation(
            "delete",
            count,
            danger=Danger.DANGEROUS,
            description="Remove each site's vhost, files and database",
        )
        await app.push_screen(ConfirmTaskScreen(request))
        await settle(pilot)
        app.screen.query_one(Input).cursor_blink = False
        await pilot.press(*"3", "enter")
        await settle(pilot)

    assert snap_compare(app, run_before=run_before)


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Running tasks show how long they have run: against a pinned clock here."""
    monkeypatch.setattr("cockpit.screens.tasks.now", lambda: TASKS_NOW)


@pytest.mark.parametrize("size", SIZES)
def test_tasks_view(
    snap_compare: SnapCompare,
    tasks_cockpit_sync: tuple[Cockpit, dict[str, int]],
    pinned_clock: None,
    size: tuple[int, int],
) -> None:
    cockpit, _batches = tasks_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, terminal_size=size, run_before=keys("6", "j", "j", "j", "j"))


@pytest.mark.parametrize("size", SIZES)
def test_batch_view(
    snap_compare: SnapCompare,
    tasks_cockpit_sync: tuple[Cockpit, dict[str, int]],
    pinned_clock: None,
    size: tuple[int, int],
) -> None:
    cockpit, batches = tasks_cockpit_sync
    app = make_app(cockpit)
    line = f"batch {batches['backup']}"
    assert snap_compare(app, terminal_size=size, run_before=keys("colon", *line, "enter"))


def test_task_detail(
    snap_compare: SnapCompare,
    tasks_cockpit_sync: tuple[Cockpit, dict[str, int]],
    pinned_clock: None,
) -> None:
    cockpit, _batches = tasks_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, run_before=keys("colon", *"tasks failed", "enter", "enter"))


def test_task_menu_on_marked_sites(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    registry = Registry(BUILTIN_KINDS)
    registry.add(site_kind("site.backup", description="Dump the database and the files"))
    registry.add(site_kind("site.delete", idempotent=False, description="Remove everything"))
    fleet_cockpit_sync.tasks = Engine(
        fleet_cockpit_sync.db, fleet_cockpit_sync.config, registry=registry
    )
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("3", "space", "j", "space", "t", "j"))

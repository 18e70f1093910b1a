"""SVG snapshots of the lists that had none (platforms, clients, backups, schedules) at 80x24
and 160x50, and of the backup and schedule details, on deterministic stores in UTC (the
``utc`` fixture of conftest.py).

Review a changed snapshot as you review code: ``pytest tests/tui/test_list_snapshots.py
--snapshot-update`` rewrites them, ``snapshot_report.html`` shows the differences.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from tuikit import TASKS_NOW, add_details, add_tasks, build_store, settle

from cockpit.app import CockpitApp, make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.store import open_store

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]

SnapCompare = Callable[..., bool]
Details = tuple[Cockpit, dict[str, int]]


@pytest.fixture(autouse=True)
def fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The header shows Cockpit's version: pinned so a release leaves snapshots alone."""
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")


@pytest.fixture(autouse=True)
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cockpit.screens.tasks.now", lambda: TASKS_NOW)


async def only_our_schedules(path: Path) -> None:
    """The schedules the store makes itself are removed: they run next at the time the
    store was made (not pinned), and a new one comes with a migration now and then."""
    db = await open_store(path)
    try:
        async with db.write() as conn:
            await conn.execute("DELETE FROM schedules WHERE name NOT IN ('nightly', 'hourly')")
    finally:
        await db.close()


@pytest.fixture
def details_cockpit_sync(store_path: Path) -> Iterator[Details]:
    """The fleet, its two batches and the backups and schedules of tuikit.add_details
    (only those)."""
    asyncio.run(build_store(store_path, 300))
    batches = asyncio.run(add_tasks(store_path))
    ids = asyncio.run(add_details(store_path, batches["backup"]))
    asyncio.run(only_our_schedules(store_path))
    cockpit = asyncio.run(Cockpit.open(Config(store=store_path)))
    try:
        yield cockpit, ids
    finally:
        asyncio.run(cockpit.close())


def keys(*pressed: str) -> Callable[[Pilot[Any]], Any]:
    """The keys, once the task kinds are read (the keys a view shows depend on them)."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, CockpitApp)
        for _ in range(200):
            await settle(pilot)
            if app.task_kinds is not None:
                break
            await pilot.pause(0.05)
        assert app.task_kinds is not None
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_platforms_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("2", "j"))


@pytest.mark.parametrize("size", SIZES)
def test_clients_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("4"))


@pytest.mark.parametrize("size", SIZES)
def test_backups_view(
    snap_compare: SnapCompare, details_cockpit_sync: Details, size: tuple[int, int]
) -> None:
    """Four backups, one of them with a path holding escapes and markup (shown harmless)."""
    cockpit, _ids = details_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, terminal_size=size, run_before=keys("5"))


@pytest.mark.parametrize("size", SIZES)
def test_schedules_view(
    snap_compare: SnapCompare, details_cockpit_sync: Details, size: tuple[int, int]
) -> None:
    cockpit, _ids = details_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, terminal_size=size, run_before=keys("7"))


@pytest.mark.parametrize("size", SIZES)
def test_backup_detail(
    snap_compare: SnapCompare, details_cockpit_sync: Details, size: tuple[int, int]
) -> None:
    """The backup task 3 made: enter on it in the backups list (the second, by time)."""
    cockpit, _ids = details_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, terminal_size=size, run_before=keys("5", "j", "enter"))


@pytest.mark.parametrize("size", SIZES)
def test_schedule_detail(
    snap_compare: SnapCompare, details_cockpit_sync: Details, size: tuple[int, int]
) -> None:
    """nightly: its hostile argument sanitised, its one run (the backup batch)."""
    cockpit, _ids = details_cockpit_sync
    app = make_app(cockpit)
    assert snap_compare(app, terminal_size=size, run_before=keys("7", "j", "enter"))

"""Fixtures for the TUI tests: an isolated home, fresh and deterministic stores."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from statskit import NOW as STATS_NOW
from statskit import add_stats
from tuikit import add_tasks, build_store

from cockpit.config import Config
from cockpit.core import Cockpit


@pytest.fixture(autouse=True)
def tui_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of its own: no user themes or config leak in, paths print as ``~/…``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def store_path(tui_home: Path) -> Path:
    return tui_home / ".local" / "share" / "cockpit" / "cockpit.db"


@pytest.fixture
async def fresh_cockpit(store_path: Path) -> AsyncIterator[Cockpit]:
    """A brand-new store: Cockpit registers this machine as ``localhost``."""
    cockpit = await Cockpit.open(Config(store=store_path))
    try:
        yield cockpit
    finally:
        await cockpit.close()


@pytest.fixture
async def fleet_cockpit(store_path: Path) -> AsyncIterator[Cockpit]:
    """A deterministic fleet: 4 servers, 3 platforms, 2 clients, 300 sites."""
    await build_store(store_path, 300)
    cockpit = await Cockpit.open(Config(store=store_path))
    try:
        yield cockpit
    finally:
        await cockpit.close()


@pytest.fixture
def fleet_cockpit_sync(store_path: Path) -> Iterator[Cockpit]:
    """The same fleet for synchronous tests (snapshots run the app in their own loop).

    The store is opened in a loop of its own; aiosqlite and the store's locks are not
    tied to a loop, so the app's loop can use it afterwards.
    """
    asyncio.run(build_store(store_path, 300))
    cockpit = asyncio.run(Cockpit.open(Config(store=store_path)))
    try:
        yield cockpit
    finally:
        asyncio.run(cockpit.close())


@pytest.fixture(autouse=True)
def no_worker_autostart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app starts no detached worker in these tests unless a test asks for one (a worker
    outlives the app by design, and would outlive the test)."""
    from cockpit.app import CockpitApp

    monkeypatch.setattr(CockpitApp, "AUTOSTART_WORKER", False)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Times on screen in UTC, whatever the machine's zone (the snapshots show them)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
async def tasks_cockpit(store_path: Path) -> AsyncIterator[tuple[Cockpit, dict[str, int]]]:
    """The fleet with two batches of tasks in known states (see tuikit.add_tasks)."""
    await build_store(store_path, 300)
    batches = await add_tasks(store_path)
    cockpit = await Cockpit.open(Config(store=store_path))
    try:
        yield cockpit, batches
    finally:
        await cockpit.close()


@pytest.fixture
def tasks_cockpit_sync(store_path: Path) -> Iterator[tuple[Cockpit, dict[str, int]]]:
    """:func:`tasks_cockpit` for the snapshot tests."""
    asyncio.run(build_store(store_path, 300))
    batches = asyncio.run(add_tasks(store_path))
    cockpit = asyncio.run(Cockpit.open(Config(store=store_path)))
    try:
        yield cockpit, batches
    finally:
        asyncio.run(cockpit.close())


# -- the on-call status ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oncall_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet with a week of statistics (see statskit: db1 unreachable, sites 1 and 4
    failing their probe…), built once and copied for each test."""
    path = tmp_path_factory.mktemp("oncall") / "cockpit.db"

    async def build() -> None:
        await build_store(path, 300)
        await add_stats(path)

    asyncio.run(build())
    return path


@pytest.fixture
def oncall_store(store_path: Path, oncall_template: Path) -> Path:
    store_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{oncall_template}{suffix}")
        if source.exists():
            shutil.copy(source, f"{store_path}{suffix}")
    return store_path


@pytest.fixture
def oncall_clock(monkeypatch: pytest.MonkeyPatch) -> float:
    """The on-call status and the statistics screens read statskit's moment as now (the
    problems and the charts of its series stay the same)."""
    monkeypatch.setattr("cockpit.screens.overview.now", lambda: STATS_NOW)
    monkeypatch.setattr("cockpit.screens.stats.now", lambda: STATS_NOW)
    return STATS_NOW


@pytest.fixture
async def oncall_cockpit(oncall_store: Path, oncall_clock: float) -> AsyncIterator[Cockpit]:
    cockpit = await Cockpit.open(Config(store=oncall_store))
    try:
        yield cockpit
    finally:
        await cockpit.close()


@pytest.fixture
def oncall_cockpit_sync(oncall_store: Path, oncall_clock: float) -> Iterator[Cockpit]:
    cockpit = asyncio.run(Cockpit.open(Config(store=oncall_store)))
    try:
        yield cockpit
    finally:
        asyncio.run(cockpit.close())

"""100,000 sites: the sites view opens, jumps to the end and filters without reading them all."""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tuikit import build_store, screen_text, settle, site_domain, site_kind

from cockpit.app import make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.screens.sites import SitesScreen
from cockpit.widgets.resource_table import ResourceTable

SITES = 100_000
SIZE = (80, 24)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store of 100,000 sites, built once per run (xdist workers share it, under a lock)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory = root / "tui-100k-sites"
    path = directory / "cockpit.db"
    with open(root / "tui-100k-sites.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "complete").exists():
            directory.mkdir(exist_ok=True)
            asyncio.run(build_store(path, SITES, fast=True))
            (directory / "complete").touch()
    return path


@pytest.fixture
async def big_cockpit(big_store: Path) -> AsyncIterator[Cockpit]:
    cockpit = await Cockpit.open(Config(store=big_store))
    try:
        yield cockpit
    finally:
        await cockpit.close()


def table_of(app: object) -> ResourceTable:
    from textual.app import App

    assert isinstance(app, App)
    return app.screen.query_one(ResourceTable)


async def test_100k_sites_open_and_g_jumps_to_the_last_one(big_cockpit: Cockpit) -> None:
    app = make_app(big_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        started = time.perf_counter()
        await pilot.press("3")
        await settle(pilot)
        first_paint = time.perf_counter() - started
        assert isinstance(app.screen, SitesScreen)
        table = table_of(app)
        assert table.row_count == SITES
        text = screen_text(app)
        assert "sites [100,000]" in text
        assert "alpha-000000.example.com" in text
        started = time.perf_counter()
        await pilot.press("G")
        await settle(pilot)
        jump = time.perf_counter() - started
        assert table.cursor_index == SITES - 1
        text = screen_text(app)
        assert "hotel-099999.example.com" in text
        assert "100,000 of 100,000" in text
        # Only the pages on screen were read, and the cache stays bounded.
        assert len(table._page_cache) <= 2
        # "*" marks all 100,000 as a filter: no row is read or held for it.
        await pilot.press("asterisk")
        await settle(pilot)
        assert table.marks.count == SITES and not table.marks.explicit
        assert " 100,000 marked " in screen_text(app).splitlines()[0]
        assert len(table._page_cache) <= 2
        # Never one widget per row.
        assert len(list(app.screen.walk_children())) < 60
        print(f"\n100k sites: view {first_paint * 1000:.0f} ms, G {jump * 1000:.0f} ms")


async def test_100k_sites_filter_and_page_through(big_cockpit: Cockpit) -> None:
    app = make_app(big_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = table_of(app)
        await pilot.press("slash", *"charlie-099")
        await settle(pilot)
        started = time.perf_counter()
        await pilot.press("9")
        await settle(pilot)
        elapsed = time.perf_counter() - started
        # charlie-… are the sites n % 8 == 2; 0999xx are n = 99,900 … 99,999.
        expected = sum(1 for n in range(99_900, 100_000) if n % 8 == 2)
        assert table.row_count == expected
        assert f"sites [{expected}] /charlie-0999" in screen_text(app)
        rows = [table.row_at(i) for i in range(expected)]
        assert all(r is not None and "charlie-0999" in r.key for r in rows)
        print(f"\n100k sites: one filter keystroke to a settled list {elapsed * 1000:.0f} ms")
        await pilot.press("escape")  # leaves the bar and clears the filter
        await settle(pilot)
        assert table.row_count == SITES
        for _ in range(30):
            await pilot.press("pagedown")
        await settle(pilot)
        assert table.cursor_index == 30 * (table.scrollable_content_region.height - 1)
        current = table.current_row
        assert current is not None and current.key in screen_text(app)
        assert "…" not in screen_text(app).splitlines()[3]  # no placeholder left on screen


async def test_the_overview_of_100k_sites_shows_its_lines_before_the_on_call_status(
    big_cockpit: Cockpit,
) -> None:
    """The fast sections' lines are on screen while the evaluation of every site (the slow
    section) is read; then its lines come in. Times are printed, not asserted."""
    from cockpit.screens.overview import OverviewScreen

    started = time.perf_counter()
    app = make_app(big_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, OverviewScreen)
        first_lines = None
        while screen.reads == 0:
            if first_lines is None and "sites:all" in screen.findings:
                first_lines = time.perf_counter() - started
                assert "status:checking…" in screen.findings  # the evaluation still runs
                assert "… reading" in screen_text(app)
            await pilot.pause(0.02)
        every_line = time.perf_counter() - started
        await settle(pilot)
        assert first_lines is not None
        assert screen.findings["sites:all"].count == SITES
        assert screen.findings["servers:no statistics"].count == 4  # evaluated: no collection
        assert "status:checking…" not in screen.findings
        text = screen_text(app)
        assert "100,000" in text and "STATE▲" in text
        print(
            f"\n100k sites: overview lines {first_lines * 1000:.0f} ms, with the on-call "
            f"status {every_line * 1000:.0f} ms"
        )


@pytest.fixture(scope="module")
def big_batch_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 sites and one batch of a task on each, built once per run."""
    from cockpit.engine.queue import queue_tasks
    from cockpit.store import open_store

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    directory = root / "tui-100k-tasks"
    path = directory / "cockpit.db"

    async def build() -> None:
        await build_store(path, SITES, fast=True)
        db = await open_store(path)
        try:
            async with db.write() as conn:
                kind = site_kind("site.backup")
                targets = [site_domain(n) for n in range(SITES)]
                await queue_tasks(conn, kind, targets, None, priority=10, label="", queued_by="x")
        finally:
            await db.close()

    with open(root / "tui-100k-tasks.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / "complete").exists():
            directory.mkdir(exist_ok=True)
            asyncio.run(build())
            (directory / "complete").touch()
    return path


async def test_a_batch_of_100k_tasks_pages_and_refreshes_rows_in_place(
    big_batch_store: Path,
) -> None:
    from cockpit.screens.batch import BatchScreen
    from cockpit.store import tasks as task_queries

    cockpit = await Cockpit.open(Config(store=big_batch_store))
    try:
        app = make_app(cockpit)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            started = time.perf_counter()
            await pilot.press("colon", *"batch 1", "enter")
            await settle(pilot)
            first_paint = time.perf_counter() - started
            screen = app.screen
            assert isinstance(screen, BatchScreen)
            table = table_of(app)
            assert table.row_count == SITES
            await pilot.press("G")  # the oldest task: task 1, the first to be claimed
            await settle(pilot)
            row = table.current_row
            assert row is not None and row.key == "1"
            assert len(table._page_cache) <= 2
            deadline = time.monotonic() + 20
            while screen.counts is None and time.monotonic() < deadline:
                await pilot.pause(0.1)
            assert "100,000 tasks: 100,000 queued" in screen_text(app)
            reloads = screen.list_reloads
            async with cockpit.db.write() as conn:
                (claimed,) = await task_queries.claim(conn, "scale:1:0", lease=60, per_server=9)
                assert claimed["id"] == 1
            started = time.perf_counter()
            while time.monotonic() < deadline:
                await pilot.pause(0.1)
                row = table.current_row
                if row is not None and row.cells[1].text == "running":
                    break
            seen = time.perf_counter() - started
            assert row is not None and row.cells[1].text == "running"
            assert screen.list_reloads == reloads  # one row replaced, the list not read again
            await settle(pilot)
            assert "99,999 queued" in screen_text(app)
            print(
                f"\n100k-task batch: view {first_paint * 1000:.0f} ms,"
                f" a state change on screen within {seen * 1000:.0f} ms"
            )
    finally:
        await cockpit.close()

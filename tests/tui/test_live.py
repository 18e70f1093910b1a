"""Live lists: a task changes a server's health or a site's status, and the servers or the
sites on screen show it by replacing only the rows that changed (the list is not read
again, no page is asked of the store), unless the row moves or leaves the list.

The tasks run for real: an engine worker in the test's loop runs them on this machine
(``localhost``, the local transport)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.engine import Engine, Registry, Step, TargetKind, TaskKind, TaskState
from cockpit.engine.builtin import BUILTIN_KINDS
from cockpit.engine.context import TaskContext
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Platform, PlatformType, Site, SiteStatus
from cockpit.screens.servers import HEALTH_COLUMN, ServersScreen
from cockpit.screens.sites import SitesScreen
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds
from cockpit.tasks.site import set_site_status
from cockpit.widgets.resource_table import ResourceTable

SIZE = (120, 30)
SITES = 40


async def _disable(ctx: TaskContext) -> None:
    assert ctx.site is not None
    await set_site_status(ctx, ctx.site, SiteStatus.DISABLED)
    ctx.summary(f"{ctx.site.domain} disabled")


#: Records a site as disabled, as ``site.disable``'s last step does (without a web server
#: to reconfigure on this machine).
SITE_MARK_DISABLED = TaskKind(
    name="site.mark-disabled",
    target=TargetKind.SITE,
    idempotent=True,
    description="Record the site as disabled",
    steps=(Step("record", _disable),),
)


@asynccontextmanager
async def worker(cockpit: Cockpit, registry: Registry | None = None) -> AsyncIterator[Worker]:
    """An engine worker running in this loop until the block ends."""
    options = WorkerOptions.from_config(cockpit.config, poll=0.05, maintenance_every=0.5)
    running = Worker(cockpit.db, cockpit.config, registry=registry, options=options)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, 30)


async def until(pilot: Any, check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


async def finished(cockpit: Cockpit, task_id: int) -> TaskState:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        task = await cockpit.tasks.task(task_id)
        assert task is not None
        if task.finished_at is not None:
            return task.state
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not end")


def cell_of(table: ResourceTable, key: str, column: int) -> str | None:
    for index in range(table.row_count or 0):
        row = table.row_at(index)
        if row is not None and row.key == key:
            return row.cells[column].text
    return None


async def test_a_verify_shows_in_the_servers_row_without_reading_the_list(
    fresh_cockpit: Cockpit,
) -> None:
    cockpit = fresh_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ServersScreen) and screen.LIVE_SECONDS is not None
        table = screen.table
        assert cell_of(table, "localhost", HEALTH_COLUMN) == "unknown"
        pages, reloads = table.pages_read, table.reloads
        batch = await cockpit.tasks.queue("server.verify", ["localhost"], queued_by="carol")
        async with worker(cockpit):
            await finished(cockpit, batch.task_ids[0])
        health = await cockpit.health_of("localhost")
        assert health is not None and health.health.value != "unknown"
        await until(
            pilot,
            lambda: cell_of(table, "localhost", HEALTH_COLUMN) == health.health.value,
            "the recorded health in the row",
        )
        assert screen.row_refreshes == 1
        assert screen.list_reloads == 0
        assert (table.pages_read, table.reloads) == (pages, reloads)
        assert health.health.value in screen_text(app)


@pytest.fixture
async def local_sites(fresh_cockpit: Cockpit, tmp_path: Path) -> Cockpit:
    """A platform on this machine with :data:`SITES` sites; the engine knows the kind that
    records a site as disabled."""
    cockpit = fresh_cockpit
    platform = Platform("local-static", "localhost", PlatformType.STATIC, str(tmp_path / "p"))
    sites = [
        Site(domain=f"site{n:02d}.local.example", platform=platform.name) for n in range(SITES)
    ]
    async with cockpit.db.write() as conn:
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, [platform], server_ids)
        refs = RefIds(platforms=await platform_queries.ids(conn), clients={}, servers=server_ids)
        await site_queries.insert_many(conn, sites, refs)
    registry = Registry(BUILTIN_KINDS)
    registry.add(SITE_MARK_DISABLED)
    cockpit.tasks = Engine(cockpit.db, cockpit.config, registry=registry)
    return cockpit


async def disable(cockpit: Cockpit, domain: str) -> None:
    batch = await cockpit.tasks.queue("site.mark-disabled", [domain], queued_by="carol")
    async with worker(cockpit, cockpit.tasks.registry):
        assert await finished(cockpit, batch.task_ids[0]) is TaskState.SUCCEEDED


async def test_a_task_that_disables_a_site_changes_its_row_only(local_sites: Cockpit) -> None:
    cockpit = local_sites
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SitesScreen)
        table = screen.table
        status = next(i for i, c in enumerate(screen.columns()) if c.key == "status")
        assert cell_of(table, "site02.local.example", status) == "enabled"
        pages, reloads = table.pages_read, table.reloads
        await disable(cockpit, "site02.local.example")
        await until(
            pilot,
            lambda: cell_of(table, "site02.local.example", status) == "disabled",
            "the row to show the site disabled",
        )
        assert screen.row_refreshes == 1 and screen.list_reloads == 0
        assert (table.pages_read, table.reloads) == (pages, reloads)
        assert table.row_count == SITES
        # A site far below the screen is not read again (only the rows on screen are).
        await disable(cockpit, "site39.local.example")
        await pilot.pause(2.5 * SitesScreen.LIVE_SECONDS)
        assert screen.row_refreshes == 1 and screen.list_reloads == 0
        assert cell_of(table, "site39.local.example", status) == "enabled"  # as first read
        await pilot.press("G")  # on screen now: read again at the next look
        await until(
            pilot,
            lambda: cell_of(table, "site39.local.example", status) == "disabled",
            "the row on screen to show the site disabled",
        )
        assert screen.row_refreshes == 2 and screen.list_reloads == 0
        assert (table.pages_read, table.reloads) == (pages, reloads)


async def test_a_site_leaving_the_scope_of_the_list_reads_the_list_again(
    local_sites: Cockpit,
) -> None:
    cockpit = local_sites
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("colon", *"sites enabled", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SitesScreen) and screen.scope is not None
        assert screen.table.row_count == SITES
        await disable(cockpit, "site01.local.example")
        await until(pilot, lambda: screen.table.row_count == SITES - 1, "the site to leave")
        assert screen.list_reloads == 1
        assert cell_of(screen.table, "site01.local.example", 0) is None

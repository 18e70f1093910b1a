"""The backups list reads a page at a time: counted, sorted and filtered in the store."""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tuikit import build_store, screen_text, settle

from cockpit.app import make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.screens.backup import BackupScreen
from cockpit.screens.backups import BackupSource, BackupsScreen
from cockpit.store import backups as backup_queries
from cockpit.store import open_store
from cockpit.widgets.resource_table import ResourceTable

SITES = 1_000
PER_SITE = 5
BACKUPS = SITES * PER_SITE
#: The first backup's time; each site's backups are a day apart, sites 7 minutes apart.
T0 = 1_714_532_400  # 2024-05-01 03:00 UTC
SIZE = (160, 40)


async def add_backups(path: Path, per_site: int) -> int:
    """``per_site`` backups of every site of the store at ``path``, in one statement (as
    :func:`tuikit.build_store` builds sites): backup ``k`` of the site with id ``i`` was
    made at ``T0 + k days + 7 i minutes``, is ``(i * 7919 + k * 104729) % 10**9`` bytes,
    a restic snapshot when ``k`` is 3 (else a tar archive), on its site's server. Returns
    how many backups the store holds."""
    db = await open_store(path)
    try:
        async with db.write() as conn:
            await conn.execute(
                "WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k + 1 < ?)"
                " INSERT INTO backups (site_id, server_id, location, size, sha256, created,"
                " backend, reason)"
                " SELECT s.id, p.server_id,"
                " '/var/backups/cockpit/' || s.domain || '/' || n.k || '.tar',"
                " (s.id * 7919 + n.k * 104729) % 1000000000, printf('%064x', s.id * 16 + n.k),"
                " strftime('%Y-%m-%dT%H:%M:%S', ? + n.k * 86400 + s.id * 420, 'unixepoch')"
                " || '.000000+00:00',"
                " CASE n.k WHEN 3 THEN 'restic' ELSE 'tar' END, 'backup'"
                " FROM sites s JOIN platforms p ON p.id = s.platform_id, n",
                (per_site, T0),
            )
        async with db.read() as conn, conn.execute("SELECT count(*) FROM backups") as cursor:
            row = await cursor.fetchone()
    finally:
        await db.close()
    return int(row[0]) if row else 0


def _created(site_id: int, k: int) -> str:
    moment = datetime.fromtimestamp(T0 + k * 86400 + site_id * 420, UTC)
    return moment.strftime("%Y-%m-%d %H:%M")


@pytest.fixture(scope="module")
def backups_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1,000 sites with 5 backups each (no other backups), built once per module."""
    import asyncio

    path = tmp_path_factory.mktemp("backups") / "cockpit.db"

    async def build() -> None:
        await build_store(path, SITES, fast=True)
        assert await add_backups(path, PER_SITE) == BACKUPS

    asyncio.run(build())
    return path


@pytest.fixture
async def backups_cockpit(store_path: Path, backups_template: Path) -> AsyncIterator[Cockpit]:
    store_path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{backups_template}{suffix}")
        if source.exists():
            shutil.copy(source, f"{store_path}{suffix}")
    cockpit = await Cockpit.open(Config(store=store_path))
    try:
        yield cockpit
    finally:
        await cockpit.close()


def _source(table: ResourceTable) -> BackupSource:
    source = table.source
    assert isinstance(source, BackupSource)
    return source


async def test_the_backups_list_opens_on_a_page_of_the_newest(backups_cockpit: Cockpit) -> None:
    app = make_app(backups_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        table = screen.table
        source = _source(table)
        assert table.row_count == BACKUPS
        assert f"of {BACKUPS:,}" in screen_text(app)
        # Only a page came from the store, not the 5,000 backups.
        assert 0 < source.rows_read <= table.page_size < BACKUPS
        # Newest first: the last sites' last backups (ids 1000, 999, … made 7 minutes apart).
        first = [table.row_at(i) for i in range(3)]
        assert [r.cells[1].text for r in first if r] == [
            _created(SITES - n, PER_SITE - 1) for n in range(3)
        ]
        assert "CREATED▼" in screen_text(app)
        # enter opens the backup's detail.
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, BackupScreen)
        row = first[0]
        assert row is not None
        shown = await backups_cockpit.backups(row.cells[0].text)
        assert app.screen.backup_id == shown[0].id


async def test_the_backups_list_sorts_and_filters_in_the_store(backups_cockpit: Cockpit) -> None:
    app = make_app(backups_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, BackupsScreen)
        table = screen.table
        source = _source(table)

        # Sort by site: the first domain's backups, newest… in the store's order.
        read = source.rows_read
        table.sort_by("site", descending=False)
        await settle(pilot)
        assert source.rows_read - read <= table.page_size
        rows = [table.row_at(i) for i in range(PER_SITE + 1)]
        domains = [r.cells[0].text for r in rows if r]
        assert domains[:PER_SITE] == [domains[0]] * PER_SITE
        assert domains[0] == "alpha-000000.example.com" and domains[PER_SITE] != domains[0]
        assert "SITE▲" in screen_text(app)
        assert table.row_count == BACKUPS

        # A substring of any column: the restic snapshots (one per site).
        read = source.rows_read
        assert screen.apply_filter("restic")
        await settle(pilot)
        assert table.row_count == SITES
        assert source.rows_read - read <= table.page_size
        row = table.row_at(0)
        assert row is not None and row.cells[3].text == "restic"
        # Inverted: every other backup.
        assert screen.apply_filter("!restic")
        await settle(pilot)
        assert table.row_count == BACKUPS - SITES
        row = table.row_at(0)
        assert row is not None and row.cells[3].text == "tar"
        # A regular expression: the backups of the echo sites (every eighth).
        assert screen.apply_filter("~^echo-")
        await settle(pilot)
        expected = sum(1 for n in range(SITES) if n % 8 == 4) * PER_SITE
        assert table.row_count == expected > 0
        rows = [table.row_at(i) for i in range(10)]
        assert all(r.cells[0].text.startswith("echo-") for r in rows if r)
        # A regular expression on the backend.
        assert screen.apply_filter("~^RESTIC$")
        await settle(pilot)
        assert table.row_count == SITES
        assert screen.apply_filter("!~^restic$")
        await settle(pilot)
        assert table.row_count == BACKUPS - SITES
        # On the server's name, too (every site of the fleet is on web1 or web2).
        assert screen.apply_filter("web2")
        await settle(pilot)
        expected_web2 = sum(1 for n in range(SITES) if n % 3 == 2) * PER_SITE
        assert table.row_count == expected_web2
        row = table.row_at(0)
        assert row is not None and row.cells[4].text.startswith("web2:")
        assert screen.apply_filter("~^echo-")
        await settle(pilot)
        # A bad regular expression is flagged and the list keeps the last good filter.
        assert not screen.apply_filter("~(")
        assert table.row_count == expected
        # Paging on through a filtered list does not count it again; ctrl+r does.
        assert screen.apply_filter("restic")
        await settle(pilot)
        newest = (await backups_cockpit.backups("alpha-000000.example.com"))[0]
        async with backups_cockpit.db.write() as conn:
            await backup_queries.add(
                conn, dataclasses.replace(newest, id=None, location="/r/extra", backend="restic")
            )
        await pilot.press("G")
        await settle(pilot)
        assert table.row_count == SITES
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert table.row_count == SITES + 1
        # The filter is remembered for the view.
        assert screen.apply_filter("restic")
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        assert isinstance(app.screen, BackupsScreen)
        assert app.screen.filter_text == "restic"
        assert app.screen.table.row_count == SITES + 1

"""Helpers for the TUI tests: deterministic stores, screen text, waiting for the table."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from cockpit.model import (
    Backup,
    Client,
    HttpsMode,
    Platform,
    PlatformType,
    Server,
    Service,
    ServiceKind,
    Site,
    SiteStatus,
    Transport,
)
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import open_store
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.rows import trusted

SERVERS = (
    Server(
        name="web1",
        address="10.0.0.11",
        port=22,
        user="deploy",
        environment="prod",
        services=(Service(ServiceKind.HTTP, "nginx"), Service(ServiceKind.DB, "mysql")),
    ),
    Server(
        name="web2",
        address="10.0.0.12",
        port=2222,
        user="deploy",
        environment="staging",
        services=(Service(ServiceKind.HTTP, "apache"),),
    ),
    Server(
        name="db1",
        address="db1.example.net",
        user="admin",
        environment="prod",
        services=(Service(ServiceKind.DB, "pgsql"), Service(ServiceKind.BACKUP, "restic")),
    ),
    Server(
        name="localhost",
        address="127.0.0.1",
        user="cockpit",
        transport=Transport.LOCAL,
        root="/srv/cockpit",
        environment="local",
    ),
)

PLATFORMS = (
    Platform("wp-6-5", "web1", PlatformType.WORDPRESS, "/var/lib/cockpit/wp-6-5", "6.5.2"),
    Platform("drupal-10", "web1", PlatformType.DRUPAL, "/var/lib/cockpit/drupal-10", "10.2.4"),
    Platform("static", "web2", PlatformType.STATIC, "/var/lib/cockpit/static", locked=True),
)

CLIENTS = (
    Client("acme", "ops@acme.example", {"sites": 500}),
    Client("globex", "it@globex.example", {"sites": 50}),
)

_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")

#: Backups of the fleet's second site (bravo-000001.example.com, on drupal-10 / web1).
BACKUPS = (
    Backup(
        "bravo-000001.example.com",
        "/var/backups/cockpit/bravo-000001/2024-05-01.tar.gz",
        48_234_496,
        "a" * 64,
        datetime(2024, 5, 1, 3, 0, tzinfo=UTC),
    ),
    Backup(
        "bravo-000001.example.com",
        "/var/backups/cockpit/bravo-000001/2024-05-02",
        51_200_000,
        "b" * 64,
        datetime(2024, 5, 2, 3, 0, tzinfo=UTC),
        backend="restic",
    ),
)


def site_domain(n: int) -> str:
    return f"{_WORDS[n % len(_WORDS)]}-{n:06d}.example.com"


def make_site(n: int, *, fast: bool = False) -> Site:
    platform = PLATFORMS[n % len(PLATFORMS)].name
    client = CLIENTS[n % 3].name if n % 3 < 2 else None
    https = (HttpsMode.OFF, HttpsMode.ON, HttpsMode.REQUIRED)[n % 3]
    status = SiteStatus.DISABLED if n % 17 == 0 else SiteStatus.ENABLED
    domain = site_domain(n)
    # (100,000 sites go without aliases: storing aliases re-reads every site id)
    aliases = (f"www.{domain}",) if n % 4 == 0 and not fast else ()
    fields: dict[str, Any] = {
        "domain": domain,
        "platform": platform,
        "client": client,
        "aliases": aliases,
        "redirection": None,
        "db_server": "db1" if n % 2 else None,
        "https": https,
        "status": status,
    }
    if fast:  # 100,000 sites: skip re-validating what make_site builds correctly
        return trusted(Site, id=None, **fields)
    return Site(**fields)


async def build_store(path: Path, sites: int, *, fast: bool = False) -> Path:
    """A store at ``path`` with the fleet above and ``sites`` sites, in one transaction."""
    db = await open_store(path)
    try:
        async with db.write() as conn:
            await server_queries.insert_many(conn, SERVERS)
            await client_queries.insert_many(conn, CLIENTS)
            server_ids = await server_queries.ids(conn)
            await platform_queries.insert_many(conn, PLATFORMS, server_ids)
            refs = site_queries.RefIds(
                platforms=await platform_queries.ids(conn),
                clients=await client_queries.ids(conn),
                servers=server_ids,
            )
            batch = max(1, sites)  # one call: the alias bookkeeping re-reads every id per call
            for start in range(0, sites, batch):
                chunk = [make_site(n, fast=fast) for n in range(start, min(sites, start + batch))]
                await site_queries.insert_many(conn, chunk, refs)
            if sites > 1 and not fast:
                for backup in BACKUPS:
                    await backup_queries.add(conn, backup)
    finally:
        await db.close()
    return path


def screen_text(app: App[Any]) -> str:
    """What the terminal shows, as plain text."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


async def settle(pilot: Pilot[Any], timeout: float = 10.0) -> None:
    """Wait until every table on screen has loaded what it wants and the app is idle."""
    from cockpit.widgets.resource_table import ResourceTable

    app = pilot.app
    loop_time = 0.0
    while loop_time < timeout:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        busy = [t for t in app.screen.query(ResourceTable) if t.is_loading]
        if not busy:
            return
        await pilot.pause(0.02)
        loop_time += 0.05
    raise AssertionError("the tables did not settle")

"""Helpers for the TUI tests: deterministic stores, screen text, waiting for the table."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from cockpit.model import (
    Backup,
    BackupReason,
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
    from textual.worker import WorkerCancelled

    from cockpit.widgets.resource_table import ResourceTable

    app = pilot.app
    loop_time = 0.0
    while loop_time < timeout:
        await pilot.pause()
        try:
            await app.workers.wait_for_complete()
        except WorkerCancelled:  # an exclusive worker replaced by a newer one: not an error
            loop_time += 0.05
            continue
        await pilot.pause()
        busy = [t for t in app.screen.query(ResourceTable) if t.is_loading]
        if not busy:
            return
        await pilot.pause(0.02)
        loop_time += 0.05
    raise AssertionError("the tables did not settle")


# -- tasks ---------------------------------------------------------------------------------

#: When the tasks of :func:`add_tasks` were queued (2024-05-01 03:00 UTC); the snapshots
#: pin the clock of running tasks to :data:`TASKS_NOW`.
TASKS_T0 = 1_714_532_400.0
TASKS_NOW = TASKS_T0 + 300.0


async def _noop(ctx: Any) -> None:  # the steps of the kinds below never run in these tests
    return None


def site_kind(name: str, *, idempotent: bool = True, description: str = "") -> Any:
    """A task kind on sites (queued by the tests; no worker runs it)."""
    from cockpit.engine import Step, TargetKind, TaskKind

    return TaskKind(
        name=name,
        target=TargetKind.SITE,
        idempotent=idempotent,
        description=description or f"{name} (a kind of the TUI tests)",
        steps=(Step("dump", _noop), Step("upload", _noop)),
    )


#: The states of the backup batch's 20 tasks, in queue order.
BACKUP_STATES = ("succeeded",) * 14 + ("failed",) * 2 + ("running",) * 3 + ("queued",)


async def add_tasks(path: Path) -> dict[str, int]:
    """Two batches on the fleet, with known states and pinned times:

    - batch ``ping`` (by bob): ``server.ping`` on web1 and web2, one ok, one cancelled;
    - batch ``backup`` (by alice): ``site.backup`` on the first 20 sites, in the states of
      :data:`BACKUP_STATES` (tasks 3 to 22).
    """
    from cockpit.engine.builtin import SERVER_PING
    from cockpit.engine.queue import queue_tasks
    from cockpit.store import tasks as task_queries

    db = await open_store(path)
    worker = "tuikit:1:000000"
    try:
        async with db.write() as conn:
            ping, ping_ids = await queue_tasks(
                conn,
                SERVER_PING,
                ["web1", "web2"],
                None,
                priority=10,
                label="server.ping",
                queued_by="bob",
            )
            backup, backup_ids = await queue_tasks(
                conn,
                site_kind("site.backup"),
                [site_domain(n) for n in range(20)],
                None,
                priority=10,
                label="site.backup",
                queued_by="alice",
            )
            wanted = dict(zip(backup_ids, BACKUP_STATES, strict=True))
            wanted |= {ping_ids[0]: "succeeded", ping_ids[1]: "cancelled"}
            for task_id in sorted(wanted):
                state = wanted[task_id]
                if state == "queued":
                    continue
                if state == "cancelled":
                    await task_queries.cancel_queued(conn, task_id, "cancelled by bob")
                    continue
                (row,) = await task_queries.claim(conn, worker, lease=3600, per_server=1000)
                assert row["id"] == task_id
                await task_queries.set_step(conn, task_id, worker, 1, "upload")
                if state != "running":
                    result = "load 0.1 0.2 0.3" if task_id in ping_ids else "42 MiB"
                    if state == "failed":
                        result = "step upload failed: the command exited with 2"
                    await task_queries.finish(conn, task_id, worker, 1, state, result)
            # Pinned times: the snapshots show them.
            for n, task_id in enumerate(sorted(wanted)):
                created = TASKS_T0 + n
                started = created + 60 if wanted[task_id] not in ("queued", "cancelled") else None
                finished = None
                if started is not None and wanted[task_id] != "running":
                    finished = started + 1.5 + n % 7
                if wanted[task_id] == "cancelled":
                    finished = created + 5
                await conn.execute(
                    "UPDATE tasks SET created_at = ?, started_at = ?, finished_at = ?,"
                    " lease_until = NULL WHERE id = ?",
                    (created, started, finished, task_id),
                )
            await conn.execute("UPDATE batches SET created_at = ?", (TASKS_T0,))
    finally:
        await db.close()
    return {"backup": int(backup["id"]), "ping": int(ping["id"])}


# -- backups and schedules of the detail views ------------------------------------------------

#: A tar backup of the fleet's first site made by task 3 (the first of :func:`add_tasks`'s
#: backup batch): its file name carries the task's tag.
TAGGED_LOCATION = (
    "/var/backups/cockpit/alpha-000000.example.com/alpha-000000.example.com-20240501t030000z-t3.tar"
)
#: What a tampered store could hold: escapes, a window title, markup, a bell.
HOSTILE = "\x1b[2J\x1b]0;pwned\x07[red]boom[/red]\x07"


async def add_details(path: Path, backup_batch: int) -> dict[str, int]:
    """What the backup and schedule details show, on :func:`add_tasks`'s store:

    - backup ``tagged``: :data:`TAGGED_LOCATION` (task 3's), 2024-05-01 03:01 UTC;
    - backup ``hostile``: of alpha-000000 too, a path written behind the model's back
      holding :data:`HOSTILE`, a safety backup, 2024-04-30;
    - schedule ``nightly`` (by alice): ``site.backup`` at ``0 3 * * *`` on ``client=acme``
      and a site, args with :data:`HOSTILE`; it queued the backup batch;
    - schedule ``hourly`` (by bob): ``server.ping`` at ``15 * * * *`` on web1, paused;
    - task 4 (site.backup of bravo-000001) says it made backup 1 (as site.backup does).
    """
    from cockpit.store import schedules as schedule_queries

    db = await open_store(path)
    try:
        async with db.write() as conn:
            tagged = await backup_queries.add(
                conn,
                Backup(
                    site_domain(0),
                    TAGGED_LOCATION,
                    7_340_032,
                    "c" * 64,
                    datetime(2024, 5, 1, 3, 1, tzinfo=UTC),
                ),
            )
            hostile = await backup_queries.add(
                conn,
                Backup(
                    site_domain(0),
                    "/var/backups/cockpit/alpha-000000.example.com/old.tar",
                    1_024,
                    "d" * 64,
                    datetime(2024, 4, 30, 3, 0, tzinfo=UTC),
                    reason=BackupReason.SAFETY,
                ),
            )
            await conn.execute(
                "UPDATE backups SET location = ? WHERE id = ?",
                (f"/var/backups/{HOSTILE}/old.tar", hostile),
            )
            await schedule_queries.insert(
                conn,
                name="nightly",
                cron="0 3 * * *",
                kind="site.backup",
                targets=json.dumps(["client=acme", site_domain(1)]),
                args=json.dumps({"compression": "zstd", "note": HOSTILE}),
                created_by="alice",
                next_run=TASKS_T0 + 86400,
            )
            await schedule_queries.insert(
                conn,
                name="hourly",
                cron="15 * * * *",
                kind="server.ping",
                targets=json.dumps(["web1"]),
                args="{}",
                created_by="bob",
                next_run=None,
            )
            await schedule_queries.set_paused(conn, "hourly", True)
            async with conn.execute("SELECT id FROM schedules WHERE name = 'nightly'") as cur:
                row = await cur.fetchone()
            assert row is not None
            nightly = int(row[0])
            await conn.execute(
                "UPDATE schedules SET last_run = ?, last_batch = ? WHERE id = ?",
                (TASKS_T0, backup_batch, nightly),
            )
            await conn.execute(
                "UPDATE tasks SET schedule_id = ? WHERE batch_id = ?", (nightly, backup_batch)
            )
            await conn.execute(
                "UPDATE tasks SET result = ? WHERE id = 4",
                ("backup #1: 46.0 MiB at /var/backups/cockpit/bravo-000001/2024-05-01.tar.gz",),
            )
    finally:
        await db.close()
    return {"tagged": tagged, "hostile": hostile}

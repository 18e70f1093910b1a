"""Schema migrations: from every earlier version, idempotent, refusals, failures, splitting."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiosqlite
import pytest
from storekit import check_search_index

from cockpit.model import (
    Backup,
    BackupReason,
    Client,
    HttpsMode,
    Platform,
    Server,
    Service,
    ServiceKind,
    Site,
    SiteStatus,
    Transport,
)
from cockpit.store import ConflictError, Database, StoreError, migrate, open_store
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import db as db_module
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store import tasks as task_queries
from cockpit.store.migrate import LATEST, Migration, migrations, schema_version, split_statements
from cockpit.store.sites import SiteFilter

# ---------------------------------------------------------------------------
# Representative data, written with the SQL of the version it was created at
# ---------------------------------------------------------------------------

V1_DATA = """
INSERT INTO servers (id, name, address, port, user, transport, root, environment, ssh_options)
VALUES (1, 'web1', '192.0.2.10', 2222, 'deploy', 'ssh', '/srv/cockpit', 'prod',
        '{"connect_timeout":10,"identity_file":"/root/.ssh/id","sudo":true}'),
       (2, 'db1', '2001:db8::5', 22, 'root', 'local', '/var/lib/cockpit', 'staging', '{}');
INSERT INTO services (server_id, kind, type, settings)
VALUES (1, 'http', 'nginx', '{"workers":4}'), (1, 'backup', 'tar', '{}'),
       (2, 'db', 'pgsql', '{"port":5432}');
INSERT INTO clients (id, name, contact, quotas)
VALUES (1, 'acme', 'ops@acme.example', '{"disk_mb":1000,"sites":5}'), (2, 'globex', '', '{}');
INSERT INTO platforms (id, name, server_id, type, root, release, locked)
VALUES (1, 'wp', 1, 'wordpress', '/srv/cockpit/wp', '6.5.2', 1),
       (2, 'static', 1, 'static', '/srv/cockpit/static', '', 0);
INSERT INTO sites (id, domain, platform_id, client_id, db_server_id, redirection, https, status)
VALUES (1, 'shop.acme.example', 1, 1, 2, 'www.shop.acme.example', 'required', 'enabled'),
       (2, 'blog.example', 2, NULL, NULL, NULL, 'off', 'disabled'),
       (3, 'globex.example', 1, 2, 1, NULL, 'on', 'deleted');
INSERT INTO site_aliases (site_id, alias)
VALUES (1, 'www.shop.acme.example'), (1, '*.shop.acme.example'), (3, 'www.globex.example');
INSERT INTO backups (site_id, location, size, sha256, created, backend)
VALUES (1, '/srv/backups/shop.tar', 1234, '{sha}', '2024-05-01T12:00:00+00:00', 'tar');
""".replace("{sha}", "ab" * 32)

V2_DATA = """
UPDATE servers SET facts = '{"os":"debian 12","cpus":4}', health = 'failed',
    health_reason = 'disk /srv 97% full', checked_at = '2024-05-02T08:00:00Z'
WHERE name = 'web1';
"""


#: Backups made before schema 7 recorded their server: the tasks' own archive names say
#: why they were made (a restore's safety backup, a delete's backup); restic's cannot.
V6_DATA = """
INSERT INTO backups (site_id, location, size, sha256, created, backend)
VALUES (2, '/srv/cockpit/backups/blog.example/blog.example-20240502t010000z-t7-safety.tar',
        10, '{sha}', '2024-05-02T01:00:00.000000+00:00', 'tar'),
       (3, '/srv/cockpit/backups/globex.example/globex.example-20240503t010000z-t9-delete.tar',
        20, '{sha}', '2024-05-03T01:00:00.000000+00:00', 'tar'),
       (2, '/srv/cockpit/backups/restic/snapshots/{sha}',
        30, '{sha}', '2024-05-04T01:00:00.000000+00:00', 'restic');
""".replace("{sha}", "cd" * 32)


#: Tasks queued before schema 8 (which reads a batch's pages from an index of their own).
V7_DATA = """
INSERT INTO batches (id, label, queued_by, created_at) VALUES (1, 'nightly', 'ops', 0);
INSERT INTO tasks (id, kind, target_kind, target_key, server, state, idempotent, batch_id,
                   created_at)
VALUES (1, 'site.backup', 'site', 'shop.acme.example', 'web1', 'succeeded', 1, 1, 0),
       (2, 'server.verify', 'server', 'web1', 'web1', 'failed', 1, NULL, 0),
       (3, 'site.backup', 'site', 'blog.example', 'web1', 'queued', 1, 1, 0);
"""


def seed_v1(conn: sqlite3.Connection) -> None:
    for statement in split_statements(V1_DATA):
        conn.execute(statement)


def seed_v2(conn: sqlite3.Connection) -> None:
    seed_v1(conn)
    for statement in split_statements(V2_DATA):
        conn.execute(statement)


def seed_v6(conn: sqlite3.Connection) -> None:
    seed_v2(conn)
    for statement in split_statements(V6_DATA):
        conn.execute(statement)


def seed_v7(conn: sqlite3.Connection) -> None:
    # the backups of V1_DATA and V6_DATA as schema 7 writes them: with server and reason
    v1 = V1_DATA.replace("(site_id, location,", "(site_id, server_id, location,").replace(
        "(1, '/srv/backups/shop.tar'", "(1, 1, '/srv/backups/shop.tar'"
    )
    for statement in split_statements(v1 + V2_DATA):
        conn.execute(statement)
    v7_backups = (
        V6_DATA.replace("(site_id, location,", "(site_id, server_id, reason, location,")
        .replace("(2, '/srv/cockpit/backups/blog", "(2, 1, 'safety', '/srv/cockpit/backups/blog")
        .replace(
            "(3, '/srv/cockpit/backups/globex", "(3, 1, 'delete', '/srv/cockpit/backups/globex"
        )
        .replace(
            "(2, '/srv/cockpit/backups/restic", "(2, 1, 'backup', '/srv/cockpit/backups/restic"
        )
    )
    for statement in split_statements(v7_backups + V7_DATA):
        conn.execute(statement)


#: What schema 8 may hold that 9 touches: the probe state of two sites, one failing, and a
#: schedule of the user's own under the name the default renewal schedule takes.
V8_DATA = """
INSERT INTO stat_site_now (site_id, probed_at, http_status, failing_since, tls_checked_at,
                           tls_expires_at)
VALUES (1, 100, 502, 40, 100, 200), (2, 100, 200, NULL, NULL, NULL);
INSERT OR IGNORE INTO schedules (name, cron, kind, targets, args, next_run, created_by, created_at)
VALUES ('cert-renew', '0 1 * * 1', 'site.verify', '["shop.acme.example"]', '{}', NULL, 'ops', 0);
"""


def seed_v8(conn: sqlite3.Connection) -> None:
    seed_v7(conn)
    for statement in split_statements(V8_DATA):
        conn.execute(statement)


def seed_nothing(conn: sqlite3.Connection) -> None:
    pass


#: For every version a store may be at when a newer Cockpit opens it, the data a user
#: would have in it then. A new migration needs an entry here (the test below says so).
SEEDERS: dict[int, Callable[[sqlite3.Connection], None]] = {
    0: seed_nothing,  # a new, empty file
    1: seed_v1,
    2: seed_v2,
    3: seed_v2,  # 3 only added triggers
    4: seed_v2,  # 4 added the task tables; the inventory is what must survive here
    5: seed_v2,  # 5 added the site search index
    6: seed_v6,  # 6 added statistics; 7 records each backup's server and reason
    7: seed_v7,  # 8 indexes a batch's tasks in id order
    8: seed_v8,  # 9 adds the renewal schedule and the on-call candidates' indexes
    9: seed_v8,  # 10 indexes the backups in the list's orders (schema 9 has its own
    # cert-renew schedule: the user's is not inserted)
}


def expected_inventory(version: int) -> tuple[list[object], ...]:
    if version == 0:
        return [], [], [], [], []
    servers = [
        Server(
            name="db1",
            address="2001:db8::5",
            transport=Transport.LOCAL,
            root="/var/lib/cockpit",
            environment="staging",
            services=(Service(ServiceKind.DB, "pgsql", {"port": 5432}),),
        ),
        Server(
            name="web1",
            address="192.0.2.10",
            port=2222,
            user="deploy",
            root="/srv/cockpit",
            environment="prod",
            ssh_options={"connect_timeout": 10, "identity_file": "/root/.ssh/id", "sudo": True},
            services=(
                Service(ServiceKind.HTTP, "nginx", {"workers": 4}),
                Service(ServiceKind.BACKUP, "tar"),
            ),
        ),
    ]
    clients = [
        Client(name="acme", contact="ops@acme.example", quotas={"disk_mb": 1000, "sites": 5}),
        Client(name="globex"),
    ]
    platforms = [
        Platform(name="static", server="web1", type="static", root="/srv/cockpit/static"),
        Platform(
            name="wp",
            server="web1",
            type="wordpress",
            root="/srv/cockpit/wp",
            release="6.5.2",
            locked=True,
        ),
    ]
    sites = [
        Site(domain="blog.example", platform="static", status=SiteStatus.DISABLED),
        Site(
            domain="globex.example",
            platform="wp",
            client="globex",
            aliases=("www.globex.example",),
            db_server="web1",
            https=HttpsMode.ON,
            status=SiteStatus.DELETED,
        ),
        Site(
            domain="shop.acme.example",
            platform="wp",
            client="acme",
            aliases=("*.shop.acme.example", "www.shop.acme.example"),
            redirection="www.shop.acme.example",
            db_server="db1",
            https=HttpsMode.REQUIRED,
        ),
    ]
    backups = [
        Backup(
            site="shop.acme.example",
            location="/srv/backups/shop.tar",
            size=1234,
            sha256="ab" * 32,
            created=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            server="web1",
        )
    ]
    if version >= 6:
        backups[:0] = [
            Backup(
                site="blog.example",
                location=f"/srv/cockpit/backups/restic/snapshots/{'cd' * 32}",
                size=30,
                created=datetime(2024, 5, 4, 1, 0, tzinfo=UTC),
                backend="restic",
                sha256="cd" * 32,
                server="web1",
            ),
            Backup(
                site="globex.example",
                location="/srv/cockpit/backups/globex.example/"
                "globex.example-20240503t010000z-t9-delete.tar",
                size=20,
                created=datetime(2024, 5, 3, 1, 0, tzinfo=UTC),
                reason=BackupReason.DELETE,
                sha256="cd" * 32,
                server="web1",
            ),
            Backup(
                site="blog.example",
                location="/srv/cockpit/backups/blog.example/"
                "blog.example-20240502t010000z-t7-safety.tar",
                size=10,
                created=datetime(2024, 5, 2, 1, 0, tzinfo=UTC),
                reason=BackupReason.SAFETY,
                sha256="cd" * 32,
                server="web1",
            ),
        ]
    return servers, clients, platforms, sites, backups


async def read_inventory(conn: aiosqlite.Connection) -> tuple[list[object], ...]:
    return (
        await server_queries.list_all(conn),
        await client_queries.list_all(conn),
        await platform_queries.list_all(conn),
        await site_queries.list_all(conn),
        await backup_queries.list_all(conn),
    )


def store_at(path: Path, version: int) -> None:
    """A store file at ``version``, made by the real migrations up to it, with its data."""

    async def build() -> None:
        db = await open_store(path, migrate=False)
        try:
            assert await db.migrate(version) == version
        finally:
            await db.close()

    # The test's event loop is already running: build the old store on a thread of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, build()).result()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("BEGIN IMMEDIATE")
    SEEDERS[version](con)
    con.execute("COMMIT")
    assert con.execute("PRAGMA user_version").fetchone()[0] == version
    con.close()


def connections_all_closed(timeout: float = 5.0) -> bool:
    """Whether every aiosqlite connection's thread ends (a closed connection's thread ends
    just after ``close()`` returns; a leaked one never does)."""

    def alive() -> int:
        return sum("_connection_worker_thread" in t.name for t in threading.enumerate())

    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    return alive() == 0


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'"
            " ORDER BY type, name"
        ).fetchall()
    finally:
        con.close()


# ---------------------------------------------------------------------------
# Upgrading
# ---------------------------------------------------------------------------


def test_every_earlier_version_has_representative_data() -> None:
    assert set(SEEDERS) == set(range(LATEST)), (
        "a migration was added: add a seeder for the version before it to SEEDERS"
    )
    assert [m.version for m in migrations()] == list(range(1, LATEST + 1))


@pytest.mark.parametrize("version", range(LATEST))
async def test_upgrading_from_every_earlier_version_keeps_the_data(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / f"v{version}.db"
    store_at(path, version)
    db = await open_store(path)
    try:
        async with db.read() as conn:
            assert await schema_version(conn) == LATEST
            assert await read_inventory(conn) == expected_inventory(version)
            async with conn.execute(
                "SELECT name, facts, health, health_reason, checked_at FROM servers ORDER BY name"
            ) as cursor:
                health = await cursor.fetchall()
        if version >= 2:
            assert health == [
                ("db1", "{}", "unknown", "", None),
                (
                    "web1",
                    '{"os":"debian 12","cpus":4}',
                    "failed",
                    "disk /srv 97% full",
                    "2024-05-02T08:00:00Z",
                ),
            ]
        elif version == 1:
            assert health == [
                ("db1", "{}", "unknown", "", None),
                ("web1", "{}", "unknown", "", None),
            ]
        if version >= 1:
            await check_upgraded_store_behaves(db)
        if version == 8:
            # 9: a schedule of the user's under the default's name is left as it was
            async with (
                db.read() as conn,
                conn.execute(
                    "SELECT cron, kind, targets, created_by FROM schedules WHERE name = 'cert-renew'"
                ) as cursor,
            ):
                assert await cursor.fetchall() == [
                    ("0 1 * * 1", "site.verify", '["shop.acme.example"]', "ops")
                ]
        elif version >= 1:
            async with (
                db.read() as conn,
                conn.execute(
                    "SELECT cron, kind, targets, next_run FROM schedules WHERE name = 'cert-renew'"
                ) as cursor,
            ):
                assert await cursor.fetchall() == [("17 4 * * *", "site.cert-renew", '["*"]', None)]
        if version == 7:
            async with db.read() as conn:
                batch = await task_queries.list_tasks(conn, batch_id=1)
                queued = await task_queries.list_tasks(conn, batch_id=1, states=["queued"])
            assert [t["id"] for t in batch] == [3, 1]
            assert [t["id"] for t in queued] == [3]
    finally:
        await db.close()
    # Whatever the road, the schema at the end is the one a new store gets.
    fresh = tmp_path / "fresh.db"
    db = await open_store(fresh)
    await db.close()
    assert schema_of(path) == schema_of(fresh)


async def check_upgraded_store_behaves(db: Database) -> None:
    """The later migrations' rules hold for the rows written before them."""
    async with db.read() as conn:
        # 7: the default retention schedule is there, waiting for its first 03:40.
        async with conn.execute(
            "SELECT cron, kind, targets, next_run FROM schedules WHERE name = 'backup-prune'"
        ) as cursor:
            assert await cursor.fetchall() == [("40 3 * * *", "site.backup-prune", '["*"]', None)]
        # 5: sites stored before the trigram index are found through it.
        found = await site_queries.page(conn, SiteFilter(text="shop.acme"))
        assert [s.domain for s in found] == ["shop.acme.example"]
        assert await site_queries.count(conn, SiteFilter(text="example")) == 3
    await check_search_index(db)
    # 8: a page of a batch's tasks is a range of an index, not a sort of the whole batch
    async with db.read() as conn:
        sql = task_queries._SELECT + " WHERE batch_id = ? ORDER BY id DESC LIMIT ? OFFSET ?"
        async with conn.execute("EXPLAIN QUERY PLAN " + sql, (1, 100, 0)) as cursor:
            plan = " / ".join(str(row[3]) for row in await cursor.fetchall())
    assert "tasks_batch_order" in plan and "TEMP B-TREE" not in plan, plan
    # 10: a page of the backups list, in each of its orders, is a range of an index
    async with db.read() as conn:
        for sort in ("created", "backend", "location"):
            for descending in (True, False):
                order = backup_queries._order(sort, descending)
                join = backup_queries._SORT_JOIN.get(sort, "")
                sql = f"SELECT b.id FROM backups b{join}{order} LIMIT 100 OFFSET 10"
                async with conn.execute("EXPLAIN QUERY PLAN " + sql) as cursor:
                    plan = " / ".join(str(row[3]) for row in await cursor.fetchall())
                assert "TEMP B-TREE" not in plan, (sort, plan)
    # 9: the on-call check finds failing probes and expiring certificates from indexes
    async with db.read() as conn:
        for sql, index in (
            (
                "SELECT site_id FROM stat_site_now"
                " WHERE probed_at IS NOT NULL AND failing_since IS NOT NULL",
                "stat_site_now_failing",
            ),
            (
                "SELECT site_id FROM stat_site_now WHERE tls_checked_at IS NOT NULL"
                " AND tls_expires_at < 1000",
                "stat_site_now_tls",
            ),
        ):
            async with conn.execute("EXPLAIN QUERY PLAN " + sql) as cursor:
                plan = " / ".join(str(row[3]) for row in await cursor.fetchall())
            assert index in plan, plan
    # 7: a server that holds backups cannot leave the inventory: once nothing else
    # stands on web1, its backups still do (all of this is rolled back).
    with pytest.raises(RuntimeError, match="rolled back"):
        async with db.write() as conn:
            await conn.execute("UPDATE sites SET db_server_id = NULL")
            await conn.execute(
                "UPDATE platforms SET server_id = (SELECT id FROM servers WHERE name = 'db1')"
            )
            with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
                await conn.execute("DELETE FROM servers WHERE name = 'web1'")
            await conn.execute("DELETE FROM backups")
            await conn.execute("DELETE FROM servers WHERE name = 'web1'")
            raise RuntimeError("rolled back")
    # 3: an old site's alias cannot become a new site's domain.
    with pytest.raises(ConflictError, match="already an alias"):
        async with db.write() as conn:
            await site_queries.insert_many(
                conn,
                [Site(domain="www.globex.example", platform="wp")],
                site_queries.RefIds(
                    platforms=await platform_queries.ids(conn),
                    clients=await client_queries.ids(conn),
                    servers=await server_queries.ids(conn),
                ),
            )


async def test_a_new_store_is_created_at_the_latest_version(tmp_path: Path) -> None:
    db = await open_store(tmp_path / "new.db")
    try:
        async with db.read() as conn:
            assert await schema_version(conn) == LATEST
            assert await read_inventory(conn) == expected_inventory(0)
    finally:
        await db.close()


async def test_migrating_step_by_step_gives_the_same_schema(tmp_path: Path) -> None:
    stepwise = tmp_path / "steps.db"
    db = await open_store(stepwise, migrate=False)
    try:
        for version in range(1, LATEST + 1):
            assert await db.migrate(version) == version
            assert await db.migrate(version) == version  # nothing left to do
    finally:
        await db.close()
    direct = tmp_path / "direct.db"
    db = await open_store(direct)
    await db.close()
    assert schema_of(stepwise) == schema_of(direct)


async def test_reopening_is_idempotent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "again.db"
    store_at(path, 1)
    db = await open_store(path)
    await db.close()
    schema = schema_of(path)
    statements: list[str] = []
    real_connect = db_module.connect

    async def traced(p: Path) -> aiosqlite.Connection:
        conn = await real_connect(p)
        await conn.set_trace_callback(statements.append)
        return conn

    monkeypatch.setattr(db_module, "connect", traced)
    for _ in range(3):
        db = await open_store(path)
        try:
            async with db.read() as conn:
                assert await schema_version(conn) == LATEST
                assert await read_inventory(conn) == expected_inventory(1)
            assert await db.migrate() == LATEST
        finally:
            await db.close()
    assert schema_of(path) == schema
    changes = [
        s
        for s in statements
        if s.upper().startswith(("CREATE", "ALTER", "INSERT", "BEGIN IMMEDIATE"))
    ]
    assert changes == [], "re-opening an up-to-date store must change nothing"


async def test_a_store_newer_than_this_cockpit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    store_at(path, 1)
    db = await open_store(path)
    await db.close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {LATEST + 7}")
    con.close()
    with pytest.raises(StoreError) as caught:
        await open_store(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {LATEST + 7}" in message
    assert f"({LATEST})" in message
    assert "newer" in message
    assert "upgrade Cockpit" in message
    assert connections_all_closed(), "the refused store's connections were left open"
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == LATEST + 7
    assert con.execute("SELECT count(*) FROM sites").fetchone()[0] == 3
    con.close()


def broken(version: int, sql: str) -> Migration:
    return Migration(version, "broken", sql)


BROKEN_SQL = """
CREATE TABLE half_done (a INTEGER);
INSERT INTO half_done VALUES (1);
ALTER TABLE sites ADD COLUMN half_done TEXT;
UPDATE clients SET contact = 'overwritten@example.com';
DELETE FROM site_aliases;
INSERT INTO no_such_table VALUES (1);
"""


async def test_a_failing_migration_leaves_the_store_at_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "fail.db"
    store_at(path, 1)
    db = await open_store(path)
    await db.close()
    schema = schema_of(path)
    shipped = migrations()
    monkeypatch.setattr(migrate, "migrations", lambda: [*shipped, broken(LATEST + 1, BROKEN_SQL)])
    with pytest.raises(StoreError) as caught:
        await open_store(path)
    message = str(caught.value)
    assert f"to version {LATEST + 1} (broken) failed" in message
    assert f"it stays at version {LATEST}" in message
    assert "no such table: no_such_table" in message
    assert connections_all_closed(), "the refused store's connections were left open"
    monkeypatch.undo()
    assert schema_of(path) == schema
    db = await open_store(path)
    try:
        async with db.read() as conn:
            assert await schema_version(conn) == LATEST
            assert await read_inventory(conn) == expected_inventory(1)
    finally:
        await db.close()


async def test_a_failure_midway_keeps_the_migrations_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "midway.db"
    store_at(path, 1)
    shipped = migrations()
    patched = [*shipped[:2], broken(3, BROKEN_SQL), *shipped[3:]]
    monkeypatch.setattr(migrate, "migrations", lambda: patched)
    with pytest.raises(StoreError, match="it stays at version 2"):
        await open_store(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    columns = [row[1] for row in con.execute("PRAGMA table_info(servers)")]
    assert "health" in columns  # migration 2 is kept
    assert "half_done" not in [row[1] for row in con.execute("PRAGMA table_info(sites)")]
    assert con.execute("SELECT count(*) FROM site_aliases").fetchone()[0] == 3
    con.close()
    monkeypatch.undo()
    db = await open_store(path)  # the real migrations then finish the job
    try:
        async with db.read() as conn:
            assert await schema_version(conn) == LATEST
            assert await read_inventory(conn) == expected_inventory(1)
    finally:
        await db.close()


def test_a_gap_in_the_migration_files_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "0001_one.sql").write_text("CREATE TABLE one (a);")
    (tmp_path / "0003_three.sql").write_text("CREATE TABLE three (a);")
    (tmp_path / "README.txt").write_text("not a migration")
    monkeypatch.setattr(migrate.resources, "files", lambda package: tmp_path)
    with pytest.raises(StoreError, match="migration 0002 is missing"):
        migrations()


def test_the_shipped_migrations_are_found_in_order() -> None:
    found = migrations()
    assert len(found) == LATEST >= 5
    assert found[0].name == "inventory"
    for migration in found:
        assert migration.statements(), migration.name


# ---------------------------------------------------------------------------
# Splitting a migration into statements
# ---------------------------------------------------------------------------


def test_the_shipped_triggers_are_single_statements() -> None:
    triggers = [
        statement
        for migration in migrations()
        for statement in migration.statements()
        if statement.upper().startswith("CREATE TRIGGER")
    ]
    assert len(triggers) >= 4
    for statement in triggers:
        assert statement.rstrip().upper().endswith("END;"), statement
        assert sqlite3.complete_statement(statement)
    first = migrations()[0].statements()
    assert sum("CREATE TRIGGER" in s for s in first) == 1
    assert all(not s.lstrip().startswith("--") for m in migrations() for s in m.statements())


TRICKY = """
-- A file header; with a semicolon.
CREATE TABLE t (
    a TEXT DEFAULT ';',        -- a semicolon in a string; and in this comment
    "odd;name" TEXT,
    [bracket;name] TEXT,
    `back;tick` TEXT,
    b TEXT DEFAULT 'it''s; quoted'
); -- a trailing comment; with a semicolon
/* a block comment; spanning
   two lines; */
CREATE TABLE log (msg TEXT);
CREATE TRIGGER t_logged AFTER INSERT ON t
BEGIN
    INSERT INTO log VALUES ('inserted; ' || NEW.a);
    INSERT INTO log VALUES (CASE WHEN NEW.b IS NULL THEN 'no b;' ELSE 'b' END);
    UPDATE log SET msg = msg || ';' WHERE msg = 'x';
END;
;
CREATE INDEX t_a ON t (a)
"""


def test_tricky_statements_split_where_they_end() -> None:
    statements = split_statements(TRICKY)
    assert [s.split("(")[0].split()[:3] for s in statements] == [
        ["CREATE", "TABLE", "t"],
        ["CREATE", "TABLE", "log"],
        ["CREATE", "TRIGGER", "t_logged"],
        ["CREATE", "INDEX", "t_a"],
    ]
    assert statements[2].endswith("END;")
    con = sqlite3.connect(":memory:")
    for statement in statements:
        con.execute(statement)  # one statement each, or sqlite3 would refuse
    con.execute("INSERT INTO t (a) VALUES ('x')")
    assert con.execute("SELECT msg FROM log ORDER BY rowid").fetchall() == [
        ("inserted; x",),
        ("b",),
    ]
    columns = [row[1] for row in con.execute("PRAGMA table_info(t)")]
    assert columns == ["a", "odd;name", "bracket;name", "back;tick", "b"]
    assert con.execute("SELECT b FROM t").fetchone() == ("it's; quoted",)


def test_a_string_spanning_lines_is_kept_whole() -> None:
    """A line of a string literal that starts with ``--`` is text, not a comment."""
    sql = (
        "CREATE TABLE notes (body TEXT);\n"
        "INSERT INTO notes VALUES ('first line\n"
        "-- not a comment; part of the note\n"
        "last line');\n"
    )
    statements = split_statements(sql)
    assert len(statements) == 2
    con = sqlite3.connect(":memory:")
    for statement in statements:
        con.execute(statement)
    assert con.execute("SELECT body FROM notes").fetchone() == (
        "first line\n-- not a comment; part of the note\nlast line",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;",
        "CREATE TABLE t (a TEXT DEFAULT ';",
        "CREATE TABLE t (a); INSERT INTO t VALUES ('unterminated; string);",
    ],
)
def test_a_migration_ending_mid_statement_is_refused(sql: str) -> None:
    with pytest.raises(StoreError, match="0042_cut ends mid-statement"):
        Migration(42, "cut", sql).statements()


@pytest.mark.parametrize("sql", ["", "   \n", "-- only a comment; really\n", ";;", "/* x; */"])
def test_nothing_to_run(sql: str) -> None:
    assert split_statements(sql) == []

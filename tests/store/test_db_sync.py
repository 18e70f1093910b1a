"""Whole transactions handed to a connection's thread: write_sync, read_sync, writer_turn;
and the task queries that run there (a target read in one go)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiosqlite
import pytest
from storekit import insert_inventory, python_env, sample_inventory

from cockpit.model import Client
from cockpit.store import Database, StoreError, open_store
from cockpit.store import clients as client_queries
from cockpit.store import db as db_module
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store import tasks as task_queries


def _add(raw: sqlite3.Connection, name: str) -> None:
    raw.execute("INSERT INTO clients (name) VALUES (?)", (name,))


async def _clients(db: Database) -> list[str]:
    async with db.read() as conn:
        return [c.name for c in await client_queries.list_all(conn)]


async def test_write_sync_commits_on_success_and_rolls_back_whole_on_error(
    store: Database,
) -> None:
    def two(raw: sqlite3.Connection) -> int:
        _add(raw, "a")
        _add(raw, "b")
        return 2

    assert await store.write_sync(two) == 2

    def half_then_boom(raw: sqlite3.Connection) -> None:
        _add(raw, "lost")
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await store.write_sync(half_then_boom)

    def duplicate(raw: sqlite3.Connection) -> None:
        _add(raw, "lost2")
        _add(raw, "a")

    with pytest.raises(StoreError, match="UNIQUE") as caught:
        await store.write_sync(duplicate)
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert await _clients(store) == ["a", "b"]
    assert not store._writer.in_transaction
    # the writer is as usable after both kinds of failure, from both sides
    await store.write_sync(lambda raw: _add(raw, "c"))
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("d")])
    assert await _clients(store) == ["a", "b", "c", "d"]


_TRY_WRITE = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
print(con.execute("SELECT count(*) FROM clients").fetchone()[0], flush=True)
try:
    con.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print("refused", exc)
    sys.exit(3)
con.execute("ROLLBACK")
"""


async def test_write_sync_is_a_begin_immediate_transaction(store: Database) -> None:
    """While the function runs, another process reads the last commit but cannot write."""

    def inside(raw: sqlite3.Connection) -> subprocess.CompletedProcess[str]:
        _add(raw, "uncommitted")
        return subprocess.run(
            [sys.executable, "-c", _TRY_WRITE, str(store.path)],
            capture_output=True,
            text=True,
            env=python_env(),
            timeout=60,
            check=False,
        )

    other = await store.write_sync(inside)
    assert other.returncode == 3, other.stdout + other.stderr
    assert other.stdout.splitlines()[0] == "0"  # the uncommitted row is not seen
    assert "database is locked" in other.stdout
    assert await _clients(store) == ["uncommitted"]


async def test_every_write_sync_begins_immediate_and_ends(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traces: list[list[str]] = []
    real_connect = db_module.connect

    async def traced_connect(path: Path) -> aiosqlite.Connection:
        conn = await real_connect(path)
        statements: list[str] = []
        traces.append(statements)
        await conn.set_trace_callback(statements.append)
        return conn

    db = await open_store(store_path)
    await db.close()
    monkeypatch.setattr(db_module, "connect", traced_connect)
    db = await open_store(store_path)
    try:
        await db.write_sync(lambda raw: _add(raw, "one"))
        with pytest.raises(StoreError):
            await db.write_sync(lambda raw: _add(raw, "one"))
        assert await db.read_sync(lambda raw: raw.execute("SELECT 1").fetchone()) == (1,)
    finally:
        await db.close()
    writer, reader = traces
    opened = [s for s in writer if s.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK")]
    assert opened == ["BEGIN IMMEDIATE", "COMMIT", "BEGIN IMMEDIATE", "ROLLBACK"]
    assert [s for s in reader if s.split()[0].upper() in ("BEGIN", "ROLLBACK")] == [
        "BEGIN",
        "ROLLBACK",
    ]


async def test_write_sync_and_write_never_interleave(store: Database) -> None:
    """Transactions of both kinds from many tasks at once: each whole, one at a time."""

    def pair_sync(raw: sqlite3.Connection, n: int) -> None:
        _add(raw, f"s{n:03d}a")
        (count,) = raw.execute("SELECT count(*) FROM clients").fetchone()
        assert count % 2 == 1, "another transaction's half is visible"
        _add(raw, f"s{n:03d}b")

    async def pair_async(n: int) -> None:
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client(f"w{n:03d}a")])
            await asyncio.sleep(0)
            async with conn.execute("SELECT count(*) FROM clients") as cursor:
                row = await cursor.fetchone()
            assert row is not None and row[0] % 2 == 1
            await client_queries.insert_many(conn, [Client(f"w{n:03d}b")])

    async def one(n: int) -> None:
        if n % 2:
            await store.write_sync(lambda raw: pair_sync(raw, n))
        else:
            await pair_async(n)

    await asyncio.gather(*(one(n) for n in range(60)))
    assert len(await _clients(store)) == 120


async def test_a_write_sync_whose_caller_is_cancelled_commits_or_rolls_back_whole(
    store: Database,
) -> None:
    for i in range(200):

        def pair(raw: sqlite3.Connection, i: int = i) -> None:
            _add(raw, f"c{i:03d}a")
            _add(raw, f"c{i:03d}b")

        task = asyncio.create_task(store.write_sync(pair))
        for _ in range(i % 5):  # cancel at a different point each time
            await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.write_sync(lambda raw: None)  # the writer is usable, nothing left open
        names = await _clients(store)
        assert len(names) % 2 == 0, names
    assert not store._writer.in_transaction


async def test_writer_turn_holds_off_other_writers(store: Database) -> None:
    order: list[str] = []

    async def other() -> None:
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client("other")])
        order.append("other")

    async with store.writer_turn() as turn:
        waiting = asyncio.create_task(other())
        await asyncio.sleep(0.1)
        order.append("turn")
        await turn.write_sync(lambda raw: _add(raw, "mine"))
        await turn.write_sync(lambda raw: _add(raw, "mine2"))
        assert not waiting.done()
    await waiting
    assert order == ["turn", "other"]
    assert await _clients(store) == ["mine", "mine2", "other"]


async def test_read_sync_is_a_read_only_snapshot(store: Database) -> None:
    await store.write_sync(lambda raw: _add(raw, "first"))

    def names(raw: sqlite3.Connection) -> list[str]:
        return [r[0] for r in raw.execute("SELECT name FROM clients ORDER BY name")]

    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("uncommitted")])
        assert await store.read_sync(names) == ["first"]  # does not wait for the writer
    with pytest.raises(StoreError, match="read-only"):
        await store.read_sync(lambda raw: _add(raw, "sneaky"))
    with pytest.raises(StoreError, match="no such table"):
        await store.read_sync(lambda raw: raw.execute("SELECT * FROM nothing_here"))
    assert await store.read_sync(names) == ["first", "uncommitted"]
    assert not store._reader.in_transaction


async def test_a_target_resolves_as_the_entity_queries_read_it(filled: Database) -> None:
    async with filled.read() as conn:
        sites = await site_queries.list_all(conn)
        platforms = await platform_queries.list_all(conn)
        servers = await server_queries.list_all(conn)
    assert sites and platforms and any(s.services for s in servers)
    by_platform = {p.name: p for p in platforms}
    by_server = {s.name: s for s in servers}

    for site in sites:
        platform = by_platform[site.platform]
        got = await filled.read_sync(
            lambda raw, d=site.domain: task_queries.resolve_target_sync(raw, "site", d)
        )
        assert got == (by_server[platform.server], platform, site)
    for platform in platforms:
        got = await filled.read_sync(
            lambda raw, n=platform.name: task_queries.resolve_target_sync(raw, "platform", n)
        )
        assert got == (by_server[platform.server], platform, None)
    for server in servers:
        got = await filled.read_sync(
            lambda raw, n=server.name: task_queries.resolve_target_sync(raw, "server", n)
        )
        assert got == (server, None, None)
    for kind in ("site", "platform", "server", "control"):
        got = await filled.read_sync(
            lambda raw, k=kind: task_queries.resolve_target_sync(raw, k, "no.such.example")
        )
        assert got == (None, None, None)


async def test_a_target_read_in_a_write_sees_that_write(store: Database) -> None:
    await insert_inventory(store, sample_inventory())
    async with store.read() as conn:
        [site, *_] = await site_queries.list_all(conn)

    def delete_then_resolve(raw: sqlite3.Connection) -> task_queries.Resolved:
        raw.execute("DELETE FROM sites WHERE domain = ?", (site.domain,))
        return task_queries.resolve_target_sync(raw, "site", site.domain)

    assert await store.write_sync(delete_then_resolve) == (None, None, None)

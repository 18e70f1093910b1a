"""Opening the store: file modes, PRAGMAs, refusals, transactions, errors, a full disk."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import aiosqlite
import pytest
from storekit import (
    insert_inventory,
    python_env,
    refs,
    run_python,
    sample_backups,
    sample_inventory,
)

from cockpit.model import Backup, Client, Server, Site
from cockpit.store import ConflictError, Database, NotFoundError, StoreError, open_store
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import db as db_module
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.db import (
    NETWORK_FILESYSTEMS,
    _fstype_from_mountinfo,
    filesystem_type,
    prepare_path,
)
from cockpit.store.errors import explain


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    old = os.umask(0o022)
    os.umask(old)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


# ---------------------------------------------------------------------------
# File and directory modes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o002])
async def test_a_new_store_is_0600_in_a_new_0700_directory(
    tmp_path: Path, umask: Callable[[int], None], mask: int
) -> None:
    umask(mask)
    path = tmp_path / "xdg" / "cockpit" / "cockpit.db"
    assert not path.parent.exists()
    db = await open_store(path)
    await db.close()
    assert path.is_file()
    assert mode_of(path.parent) == 0o700
    assert mode_of(path) == 0o600


async def test_wal_and_shm_files_are_not_group_or_world_readable(
    store_path: Path, umask: Callable[[int], None]
) -> None:
    umask(0o000)  # the most permissive umask: SQLite must still not open these up
    db = await open_store(store_path)
    try:
        async with db.write() as conn:
            await client_queries.insert_many(conn, [Client("acme")])
        wal = store_path.with_name(store_path.name + "-wal")
        shm = store_path.with_name(store_path.name + "-shm")
        assert wal.exists()
        assert shm.exists()
        for path in (store_path, wal, shm):
            assert mode_of(path) & 0o077 == 0, f"{path.name} is {oct(mode_of(path))}"
    finally:
        await db.close()


async def test_an_existing_store_readable_by_others_is_made_private(store_path: Path) -> None:
    db = await open_store(store_path)
    await db.close()
    store_path.chmod(0o644)
    db = await open_store(store_path)
    await db.close()
    assert mode_of(store_path) == 0o600


async def test_a_store_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.db"
    path.mkdir()
    with pytest.raises(StoreError, match=r"is not a regular file") as caught:
        await open_store(path)
    assert str(path) in str(caught.value)


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cockpit.db"
    path.write_bytes(b"this is not an SQLite database, but a text file " * 100)
    with pytest.raises(StoreError) as caught:
        await open_store(path)
    assert str(path) in str(caught.value)
    assert "not a database" in str(caught.value)


async def test_a_store_directory_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create the store directory"):
        await open_store(blocker / "cockpit" / "cockpit.db")


# ---------------------------------------------------------------------------
# PRAGMAs
# ---------------------------------------------------------------------------

EXPECTED = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1, "busy_timeout": 5000}


async def pragma(conn: aiosqlite.Connection, name: str) -> object:
    async with conn.execute(f"PRAGMA {name}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def test_pragmas_read_back_on_both_connections(store: Database) -> None:
    connections = {"writer": store._writer, "reader": store._reader}
    assert connections["writer"] is not connections["reader"]
    for role, conn in connections.items():
        got = {name: await pragma(conn, name) for name in EXPECTED}
        assert got == EXPECTED, role


async def test_foreign_keys_are_enforced_on_the_writer(store: Database) -> None:
    """Not only read back: a dangling reference really is refused."""
    with pytest.raises(ConflictError, match="FOREIGN KEY"):
        async with store.write() as conn:
            await conn.execute(
                "INSERT INTO platforms (name, server_id, type, root) VALUES ('p', 999, 'php', '/x')"
            )


async def test_a_store_where_wal_is_impossible_is_refused(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real refusal by SQLite: the unix-dotfile VFS has no shared memory, so no WAL.

    SQLite then silently keeps the rollback journal: ``PRAGMA journal_mode = WAL``
    answers ``delete``. Only the read-back check notices.
    """
    real_connect = aiosqlite.connect

    def connect_without_shm(database: str, **kwargs: object) -> aiosqlite.Connection:
        return real_connect(f"file:{database}?vfs=unix-dotfile", uri=True, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosqlite, "connect", connect_without_shm)
    with pytest.raises(StoreError) as caught:
        await open_store(store_path)
    message = str(caught.value)
    assert str(store_path) in message
    assert "journal_mode" in message
    assert "wal" in message
    assert "'delete'" in message
    assert "refuses" in message


@pytest.mark.parametrize(
    ("name", "sabotage"),
    [
        ("journal_mode", "PRAGMA journal_mode = DELETE"),
        ("synchronous", "PRAGMA synchronous = NORMAL"),
        ("foreign_keys", "PRAGMA foreign_keys = OFF"),
        ("busy_timeout", "PRAGMA busy_timeout = 100"),
    ],
)
async def test_a_pragma_that_does_not_read_back_refuses_the_store(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, sabotage: str
) -> None:
    """Whatever keeps a PRAGMA from sticking (a build, a VFS, a file system), we refuse."""
    real_execute = aiosqlite.Connection.execute

    def execute(self: aiosqlite.Connection, sql: str, *args: object) -> object:
        if sql.upper().startswith(f"PRAGMA {name.upper()} ="):
            sql = sabotage
        return real_execute(self, sql, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosqlite.Connection, "execute", execute)
    with pytest.raises(StoreError) as caught:
        await open_store(store_path)
    message = str(caught.value)
    assert f"PRAGMA {name} = {EXPECTED[name]}" in message
    assert str(store_path) in message


def old_store_on_a_read_only_tmpfs(tmpfs: Callable[[str], Path], mode: int) -> Path:
    where = tmpfs("4m")
    path = where / "cockpit.db"
    con = sqlite3.connect(path)  # a store in rollback-journal mode
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    path.chmod(mode)
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    return path


async def test_a_store_on_a_read_only_file_system_is_refused(
    tmpfs: Callable[[str], Path],
) -> None:
    """A real case where WAL cannot be switched on."""
    path = old_store_on_a_read_only_tmpfs(tmpfs, 0o600)
    with pytest.raises(StoreError) as caught:
        await open_store(path)
    message = str(caught.value)
    assert str(path) in message
    assert "readonly" in message or "read-only" in message


async def test_a_store_readable_by_others_that_cannot_be_made_private_is_refused(
    tmpfs: Callable[[str], Path],
) -> None:
    path = old_store_on_a_read_only_tmpfs(tmpfs, 0o644)
    with pytest.raises(StoreError) as caught:
        await open_store(path)
    message = str(caught.value)
    assert str(path) in message
    assert "cannot be made private" in message
    assert "Read-only file system" in message


# ---------------------------------------------------------------------------
# Network file systems
# ---------------------------------------------------------------------------

MOUNTINFO = r"""22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 22 0:40 / /home rw,relatime shared:2 master:7 - nfs4 nas:/export/home rw,vers=4.2,addr=10.0.0.2
31 22 0:41 / /mnt/my\040share rw,relatime - cifs //nas/share rw,vers=3.1.1
32 22 0:42 / /mnt/stack rw,relatime - tmpfs tmpfs rw,size=1024k
33 32 0:43 / /mnt/stack rw,nosuid,nodev,relatime - fuse.sshfs user@host:/srv rw,user_id=0
34 22 0:44 / /mnt/nfs rw,relatime - nfs nas:/x rw,vers=3
35 22 8:17 / /mnt/nfsx rw,relatime - ext4 /dev/sdb1 rw
36 22 0:46 / /srv/back\134slash\011tab rw - 9p data rw,trans=virtio
37 22 0:47 /sub /data rw,relatime - xfs /dev/sdc1 rw
this line is garbage and has no separator
38 22 0:48 / /broken rw -
"""


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "ext4"),
        ("/var/lib/cockpit/cockpit.db", "ext4"),
        ("/home", "nfs4"),
        ("/home/alice/.local/share/cockpit", "nfs4"),
        ("/homework/cockpit", "ext4"),  # /home is a prefix of the string, not of the path
        ("/mnt/my share/cockpit", "cifs"),  # \040 in mountinfo is a space
        ("/mnt/my\\040share/cockpit", "ext4"),  # ...and a literal backslash is not
        ("/mnt/stack/cockpit", "fuse.sshfs"),  # mounted over the tmpfs: the top one counts
        ("/mnt/nfs/cockpit", "nfs"),
        ("/mnt/nfsx/cockpit", "ext4"),
        ("/srv/back\\slash\ttab/x", "9p"),
        ("/data/cockpit.db", "xfs"),
        ("/proc/self", "proc"),
    ],
)
def test_fstype_from_mountinfo(path: str, expected: str) -> None:
    assert _fstype_from_mountinfo(MOUNTINFO, path) == expected


def test_fstype_from_mountinfo_without_a_match() -> None:
    assert _fstype_from_mountinfo("", "/var/lib") is None
    assert _fstype_from_mountinfo("garbage\n\n", "/var/lib") is None
    only_home = "30 22 0:40 / /home rw - nfs4 nas:/home rw\n"
    assert _fstype_from_mountinfo(only_home, "/var/lib") is None
    assert _fstype_from_mountinfo(only_home, "/home/x") == "nfs4"


def test_filesystem_type_agrees_with_findmnt(tmp_path: Path) -> None:
    findmnt = shutil.which("findmnt")
    if findmnt is None:
        pytest.skip("findmnt (util-linux) is not installed")
    out = subprocess.run(
        [findmnt, "-n", "-o", "FSTYPE", "-T", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert filesystem_type(tmp_path) == out


def test_filesystem_type_of_real_mounts_and_a_mount_over_a_mount(
    tmpfs: Callable[[str], Path],
) -> None:
    where = tmpfs("1m")
    assert filesystem_type(where) == "tmpfs"
    (where / "sub").mkdir()
    assert filesystem_type(where / "sub") == "tmpfs"
    # Mount another file system type over the same directory: the top one is what a
    # file created there lands on.
    result = subprocess.run(
        ["mount", "-t", "ramfs", "ramfs", str(where)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount ramfs: {result.stderr.strip()}")
    try:
        assert filesystem_type(where) == "ramfs"
    finally:
        subprocess.run(["umount", str(where)], check=True)
    assert filesystem_type(where) == "tmpfs"


@pytest.mark.parametrize("fstype", ["nfs", "nfs4", "cifs", "smb3", "fuse.sshfs", "sshfs", "9p"])
def test_prepare_path_refuses_a_network_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fstype: str
) -> None:
    assert fstype in NETWORK_FILESYSTEMS
    fake = tmp_path / "mountinfo"
    fake.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        f"40 22 0:50 / {tmp_path} rw,relatime - {fstype} server:/export rw\n"
    )
    monkeypatch.setattr(db_module, "_MOUNTINFO", fake)
    path = tmp_path / "share" / "cockpit" / "cockpit.db"
    with pytest.raises(StoreError) as caught:
        prepare_path(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"({fstype})" in message
    assert "network file system" in message
    assert not path.exists(), "a refused store must not be created"


async def test_open_store_refuses_a_network_file_system(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "mountinfo"
    fake.write_text(f"40 22 0:50 / {tmp_path} rw - nfs4 nas:/x rw\n")
    monkeypatch.setattr(db_module, "_MOUNTINFO", fake)
    with pytest.raises(StoreError, match=r"network file system \(nfs4\)"):
        await open_store(tmp_path / "cockpit.db")


def test_prepare_path_accepts_a_local_file_system(tmp_path: Path) -> None:
    path = tmp_path / "new" / "cockpit.db"
    prepare_path(path)
    assert path.is_file()


def test_a_store_file_symlinked_onto_a_network_file_system_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "cockpit.db").write_bytes(b"")
    local = tmp_path / "local"
    local.mkdir()
    (local / "cockpit.db").symlink_to(remote / "cockpit.db")
    fake = tmp_path / "mountinfo"
    fake.write_text(
        f"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n40 22 0:50 / {remote} rw - nfs4 nas:/x rw\n"
    )
    monkeypatch.setattr(db_module, "_MOUNTINFO", fake)
    with pytest.raises(StoreError, match=r"network file system \(nfs4\)"):
        prepare_path(local / "cockpit.db")


# ---------------------------------------------------------------------------
# Transactions: BEGIN IMMEDIATE, commit, rollback, read snapshots
# ---------------------------------------------------------------------------

TRY_BEGIN_IMMEDIATE = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], timeout=float(sys.argv[2]), isolation_level=None)
print("servers", con.execute("SELECT count(*) FROM servers").fetchone()[0], flush=True)
start = time.monotonic()
try:
    con.execute("BEGIN IMMEDIATE")
except sqlite3.OperationalError as exc:
    print("refused", exc)
    sys.exit(3)
print("acquired after", time.monotonic() - start)
con.execute("ROLLBACK")
"""


async def test_write_holds_the_write_lock_from_its_first_statement(store: Database) -> None:
    """A deferred BEGIN takes no lock; BEGIN IMMEDIATE does, before anything is written.

    So while ``write()`` is open, even before it changed anything, another process can
    read but cannot start a write transaction.
    """
    async with store.write():
        other = run_python(TRY_BEGIN_IMMEDIATE, str(store.path), "0")
        assert other.returncode == 3, other.stdout + other.stderr
        assert "servers 0" in other.stdout  # reading is not blocked (WAL)
        assert "database is locked" in other.stdout
    other = run_python(TRY_BEGIN_IMMEDIATE, str(store.path), "0")
    assert other.returncode == 0, other.stdout + other.stderr


async def test_another_writer_waits_for_write_to_finish(store: Database) -> None:
    """With its busy timeout, a second writer queues instead of failing."""
    async with store.write() as conn:
        await server_queries.insert_many(conn, [Server(name="s1", address="192.0.2.1")])
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            TRY_BEGIN_IMMEDIATE,
            str(store.path),
            "5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=python_env(),
        )
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().strip() == "servers 0"  # the uncommitted row is not visible
        await asyncio.sleep(0.5)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, out.decode() + err.decode()
    waited = float(out.decode().split("acquired after", 1)[1])
    assert waited >= 0.3, f"the other writer did not wait ({waited:.3f} s)"


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "ALTER", "DROP")


def check_transactions(statements: list[str]) -> int:
    """Every change on the writer happens inside a BEGIN IMMEDIATE transaction."""
    in_tx = False
    begun = 0
    for sql in statements:
        text = " ".join(sql.split()).upper()
        if text.startswith("--"):  # a statement of a trigger
            continue
        if text.startswith("BEGIN"):
            assert text == "BEGIN IMMEDIATE", f"a write transaction began with {sql!r}"
            assert not in_tx
            in_tx = True
            begun += 1
        elif text in ("COMMIT", "ROLLBACK", "END"):
            in_tx = False
        elif text.startswith(_WRITES) or text.startswith("PRAGMA USER_VERSION ="):
            assert in_tx, f"{sql!r} ran outside a transaction"
    return begun


async def test_every_write_transaction_is_begin_immediate(
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

    monkeypatch.setattr(db_module, "connect", traced_connect)
    db = await open_store(store_path)  # runs every migration
    try:
        inv = sample_inventory()
        await insert_inventory(db, inv)
        async with db.write() as conn:
            await server_queries.update_many(conn, inv.servers[:2])
            await client_queries.update_many(conn, inv.clients)
            await platform_queries.update_many(conn, inv.platforms, await server_queries.ids(conn))
            await site_queries.update_many(conn, inv.sites, await refs(conn))
            for backup in sample_backups():
                await backup_queries.add(conn, backup)
        async with db.write() as conn:
            await site_queries.delete_many(conn, ["old.initech.example"])
            await backup_queries.remove(conn, 1)
        with pytest.raises(ConflictError):
            async with db.write() as conn:
                await server_queries.delete_many(conn, ["web1"])
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await client_queries.insert_many(conn, [Client("temp")])
                raise RuntimeError("changed my mind")
        async with db.read() as conn:
            assert len(await site_queries.list_all(conn)) == 4
    finally:
        await db.close()
    writer, reader = traces
    from cockpit.store.migrate import LATEST

    assert check_transactions(writer) == LATEST + 5
    assert writer.count("BEGIN IMMEDIATE") == LATEST + 5
    assert not [s for s in reader if s.upper().lstrip().startswith(_WRITES)]


async def test_write_commits_on_success_and_rolls_back_on_error(store: Database) -> None:
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("kept")])
    with pytest.raises(ValueError, match="boom"):
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client("lost")])
            raise ValueError("boom")
    with pytest.raises(ConflictError, match="UNIQUE"):
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client("lost2")])
            await client_queries.insert_many(conn, [Client("kept")])
    async with store.read() as conn:
        assert [c.name for c in await client_queries.list_all(conn)] == ["kept"]
    assert not store._writer.in_transaction
    # The connection is still usable after both kinds of failure.
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("after")])
    async with store.read() as conn:
        assert [c.name for c in await client_queries.list_all(conn)] == ["after", "kept"]


async def test_a_read_does_not_wait_for_an_open_write_and_sees_only_committed_rows(
    store: Database,
) -> None:
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("first")])
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("second")])
        async with asyncio.timeout(2), store.read() as reader:
            assert [c.name for c in await client_queries.list_all(reader)] == ["first"]
    async with store.read() as reader:
        assert len(await client_queries.list_all(reader)) == 2


async def test_a_read_is_one_snapshot(store: Database) -> None:
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("first")])
    async with store.read() as reader:
        before = await client_queries.list_all(reader)
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client("second")])
        assert await client_queries.list_all(reader) == before


async def test_the_read_connection_cannot_write(store: Database) -> None:
    """Every change goes through write() and its BEGIN IMMEDIATE; read() cannot change."""
    with pytest.raises(StoreError, match="read-only") as caught:
        async with store.read() as conn:
            await client_queries.insert_many(conn, [Client("sneaky")])
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    async with store.read() as conn:
        assert await client_queries.list_all(conn) == []
    assert not store._reader.in_transaction


async def test_sqlite_errors_in_a_read_surface_as_store_errors(store: Database) -> None:
    with pytest.raises(StoreError, match="no such table") as caught:
        async with store.read() as conn:
            await conn.execute("SELECT * FROM no_such_table")
    assert str(store.path) in str(caught.value)
    async with store.read() as conn:  # the reader is usable again
        assert await client_queries.list_all(conn) == []


async def test_close_waits_for_a_read_in_progress(store: Database) -> None:
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("one")])
    got: list[object] = []

    async def slow_read() -> None:
        async with store.read() as conn:
            await asyncio.sleep(0.2)
            got.extend(await client_queries.list_all(conn))

    reading = asyncio.create_task(slow_read())
    await asyncio.sleep(0.05)
    await store.close()
    await reading  # the read finished on an open connection
    assert [c.name for c in got] == ["one"]  # type: ignore[attr-defined]


async def test_concurrent_tasks_writing_through_one_database_are_serialised(
    store: Database,
) -> None:
    async def add(i: int) -> None:
        async with store.write() as conn:
            await client_queries.insert_many(conn, [Client(f"c{i:03d}")])
            await asyncio.sleep(0)  # give the other tasks every chance to interleave

    await asyncio.gather(*(add(i) for i in range(100)))
    async with store.read() as conn:
        assert len(await client_queries.list_all(conn)) == 100


# ---------------------------------------------------------------------------
# How SQLite errors surface
# ---------------------------------------------------------------------------


def sqlite_error(cls: type[sqlite3.Error], code: int, text: str) -> sqlite3.Error:
    exc = cls(text)
    exc.sqlite_errorcode = code  # type: ignore[attr-defined]
    return exc


@pytest.mark.parametrize(
    ("code", "cls", "kind", "words"),
    [
        (13, sqlite3.OperationalError, StoreError, "disk holding the store"),  # SQLITE_FULL
        (5, sqlite3.OperationalError, StoreError, "locked by another process"),  # BUSY
        (261, sqlite3.OperationalError, StoreError, "locked by another process"),  # BUSY_RECOVERY
        (517, sqlite3.OperationalError, StoreError, "locked by another process"),  # BUSY_SNAPSHOT
        (773, sqlite3.OperationalError, StoreError, "locked by another process"),  # BUSY_TIMEOUT
        (6, sqlite3.OperationalError, StoreError, "locked by another process"),  # LOCKED
        (8, sqlite3.OperationalError, StoreError, "is read-only"),  # READONLY
        (1032, sqlite3.OperationalError, StoreError, "is read-only"),  # READONLY_DBMOVED
        (2067, sqlite3.IntegrityError, ConflictError, "UNIQUE"),  # CONSTRAINT_UNIQUE
        (787, sqlite3.IntegrityError, ConflictError, "FOREIGN KEY"),  # CONSTRAINT_FOREIGNKEY
        (1, sqlite3.OperationalError, StoreError, "failed"),
    ],
)
def test_explain_maps_sqlite_errors(
    code: int, cls: type[sqlite3.Error], kind: type[StoreError], words: str
) -> None:
    text = {2067: "UNIQUE constraint failed", 787: "FOREIGN KEY constraint failed"}.get(
        code, "something"
    )
    got = explain(sqlite_error(cls, code, text), "/x/cockpit.db")
    assert type(got) is kind
    assert words in str(got)
    if kind is StoreError:
        assert "/x/cockpit.db" in str(got)


def test_explain_a_real_busy_snapshot(tmp_path: Path) -> None:
    """What a deferred transaction gets when it tries to write after another committed."""
    path = tmp_path / "s.db"
    a = sqlite3.connect(path, isolation_level=None, timeout=0)
    b = sqlite3.connect(path, isolation_level=None, timeout=0)
    a.execute("PRAGMA journal_mode = WAL")
    a.execute("CREATE TABLE t (x)")
    a.execute("BEGIN")  # deferred, as write() must never do
    a.execute("SELECT count(*) FROM t").fetchone()
    b.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as caught:
        a.execute("INSERT INTO t VALUES (2)")
    assert caught.value.sqlite_errorcode != sqlite3.SQLITE_BUSY  # an extended code
    assert "locked by another process" in str(explain(caught.value, path))
    a.close()
    b.close()


async def test_errors_inside_write_surface_as_store_errors(filled: Database) -> None:
    with pytest.raises(ConflictError) as caught:
        async with filled.write() as conn:
            await server_queries.delete_many(conn, ["web2"])  # platforms stand on it
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    with pytest.raises(NotFoundError):
        async with filled.write() as conn:
            await backup_queries.add(
                conn,
                Backup(
                    site="nope.example",
                    location="/b",
                    size=1,
                    sha256="a" * 64,
                    created=sample_backups()[0].created,
                ),
            )


async def test_another_process_holding_the_lock_too_long_gives_a_clear_error(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = sqlite3.connect(store.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")
    try:
        await store._writer.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(StoreError, match="stayed locked by another process") as caught:
            async with store.write():
                pass
        assert str(store.path) in str(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
        await store._writer.execute("PRAGMA busy_timeout = 5000")
    async with store.write() as conn:
        await client_queries.insert_many(conn, [Client("fine")])


# ---------------------------------------------------------------------------
# A full disk
# ---------------------------------------------------------------------------


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    chunk = 1 << 16
    with filler.open("wb", buffering=0) as out:
        while chunk:
            try:
                out.write(b"\0" * chunk)
            except OSError:
                chunk //= 2
    return filler


def many_sites(n: int, platform: str) -> list[Site]:
    return [Site(domain=f"site{i:06d}.filler.example", platform=platform) for i in range(n)]


async def test_a_full_disk_fails_the_write_clearly_and_loses_nothing(
    tmpfs: Callable[[str], Path],
) -> None:
    where = tmpfs("2m")
    path = where / "cockpit" / "cockpit.db"
    inv = sample_inventory()
    db = await open_store(path)
    try:
        await insert_inventory(db, inv)
        async with db.write() as conn:
            for backup in sample_backups():
                await backup_queries.add(conn, backup)
        async with db.read() as conn:
            before = await snapshot(conn)
        filler = fill(where)
        with pytest.raises(StoreError) as caught:
            async with db.write() as conn:
                await site_queries.insert_many(
                    conn, many_sites(20_000, "wp-prod"), await refs(conn)
                )
        message = str(caught.value)
        assert not isinstance(caught.value, ConflictError)
        assert f"the disk holding the store {path} is full" in message
        assert "nothing stored before was lost" in message
        async with db.read() as conn:  # still readable, nothing half-written
            assert await snapshot(conn) == before
    finally:
        await db.close()
    filler.unlink()
    db = await open_store(path)
    try:
        async with db.read() as conn:
            assert await snapshot(conn) == before
            async with conn.execute("PRAGMA integrity_check") as cursor:
                assert await cursor.fetchall() == [("ok",)]
        async with db.write() as conn:  # and writable again
            await client_queries.insert_many(conn, [Client("after")])
    finally:
        await db.close()


async def snapshot(conn: aiosqlite.Connection) -> tuple[list[object], ...]:
    return (
        await server_queries.list_all(conn),
        await client_queries.list_all(conn),
        await platform_queries.list_all(conn),
        await site_queries.list_all(conn),
        await backup_queries.list_all(conn),
    )

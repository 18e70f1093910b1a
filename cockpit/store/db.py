"""Opening the SQLite store: file modes, PRAGMAs, sanity checks and transactions.

The store is one SQLite file in WAL mode with ``synchronous=FULL``: a committed
inventory change or task state survives a power cut. Every write transaction starts
with ``BEGIN IMMEDIATE`` so that two writers queue on the busy timeout instead of
failing half-way with "database is locked" on a lock upgrade.

Two connections per :class:`Database`: one writer (serialised by an asyncio lock, so
the app's tasks never interleave inside one transaction) and one reader, which in WAL
mode sees the last committed state without waiting for the writer.

Each connection lives on a thread of its own (aiosqlite), and every call on it is a
round trip between the event loop and that thread. Code on a hot path hands a whole
transaction over at once instead: :meth:`Database.write_sync` and
:meth:`Database.read_sync` run a plain function on the connection's thread, as many
statements as it likes for one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, TypeVar, cast

import aiosqlite

from cockpit.store.errors import StoreError, explain

BUSY_TIMEOUT_MS: Final = 5000

T = TypeVar("T")

#: File systems on which SQLite's locking and WAL shared memory are not to be trusted.
NETWORK_FILESYSTEMS: Final = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "sshfs",
        "fuse.sshfs",
        "glusterfs",
        "fuse.glusterfs",
        "ceph",
        "fuse.ceph",
        "afs",
        "lustre",
        "davfs",
        "fuse.davfs",
        "fuse.s3fs",
        "fuse.rclone",
        "virtiofs",
    }
)

#: What every connection must read back after it is set up.
_EXPECTED_PRAGMAS: Final = {
    "journal_mode": "wal",
    "synchronous": 2,  # FULL
    "foreign_keys": 1,
    "busy_timeout": BUSY_TIMEOUT_MS,
}


#: Where the kernel lists this process's mounts (a module attribute so tests can swap it).
_MOUNTINFO = Path("/proc/self/mountinfo")

_OCTAL_ESCAPE: Final = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (``\\040`` for a space…) decoded."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _fstype_from_mountinfo(text: str, path: str | Path) -> str | None:
    """The type of the file system that holds the absolute, resolved ``path``.

    ``text`` is in the format of /proc/self/mountinfo: the mount point is the fifth
    field, the type the first after the `` - `` separator. The longest mount point
    containing the path wins; among mounts on the same point, the last listed (the
    one mounted on top, which hides the others).
    """
    target = str(path)
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, after = left.split(), right.split()
        if not sep or len(fields) < 5 or not after:
            continue
        mount_point = _unescape(fields[4])
        inside = (
            mount_point == "/"
            or target == mount_point
            or target.startswith(mount_point.rstrip("/") + "/")
        )
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), after[0])
    return best[1] if best else None


def filesystem_type(path: Path) -> str | None:
    """The type of the file system holding ``path`` (from /proc/self/mountinfo), if known."""
    try:
        mountinfo = _MOUNTINFO.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    return _fstype_from_mountinfo(mountinfo, path.resolve())


def prepare_path(path: Path) -> None:
    """Create the store's directory (0700) and file (0600) if missing; refuse bad places."""
    directory = path.parent
    if not directory.exists():
        try:
            # exist_ok: another process opening the same new store may create it first.
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the store directory {directory}: {exc.strerror}"
            ) from exc
    # The file itself when it exists: it may be a symbolic link to another file system.
    fstype = filesystem_type(path if path.exists() else directory)
    if fstype in NETWORK_FILESYSTEMS:
        raise StoreError(
            f"the store {path} is on a network file system ({fstype}); SQLite's locking is not "
            "reliable there. Put the store on a local disk (--store PATH or 'store:' in the config)."
        )
    if path.exists():
        if not path.is_file():
            raise StoreError(f"the store {path} is not a regular file")
        info = path.stat()
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077 and info.st_uid == os.getuid():
            try:
                path.chmod(0o600)
            except OSError as exc:
                raise StoreError(
                    f"the store {path} is readable by others ({mode:o}) and cannot be made "
                    f"private: {exc.strerror}"
                ) from exc
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror}") from exc
    os.close(fd)


async def connect(path: Path) -> aiosqlite.Connection:
    """One configured connection, its PRAGMAs checked."""
    try:
        conn = await aiosqlite.connect(
            str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA temp_store = MEMORY")
        from cockpit.store.sites import sql_regexp

        await conn.create_function("regexp", 2, sql_regexp, deterministic=True)
        for name, expected in _EXPECTED_PRAGMAS.items():
            async with conn.execute(f"PRAGMA {name}") as cursor:
                row = await cursor.fetchone()
            got = row[0] if row else None
            if isinstance(got, str):
                got = got.lower()
            if got != expected:
                raise StoreError(
                    f"the store {path} does not keep PRAGMA {name} = {expected} (it reads back "
                    f"{got!r}); Cockpit needs it for durability and refuses to run without it"
                )
    except sqlite3.DatabaseError as exc:
        await conn.close()
        raise StoreError(f"the store {path} cannot be used: {exc}") from exc
    except BaseException:
        await conn.close()
        raise
    return conn


async def on_thread(conn: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn(raw)`` with the sqlite3 connection behind ``conn``, run on ``conn``'s thread.

    One round trip however many statements ``fn`` runs. ``fn`` runs in the caller's
    transaction, if any, after every call queued on ``conn`` before it, and must touch
    nothing the event loop's tasks use: its inputs are its arguments, its outcome its
    result. A caller cancelled while ``fn`` is queued or running does not stop it.

    (aiosqlite's ``_execute`` is the queue its own methods are built on, and the one way
    to run code on its thread.)
    """

    def call() -> T:
        return fn(conn._conn)

    return cast(T, await conn._execute(call))  # type: ignore[no-untyped-call]


def _transaction(raw: sqlite3.Connection, begin: str, fn: Callable[[sqlite3.Connection], T]) -> T:
    """``fn`` in one transaction on ``raw`` (on its thread); ``begin`` ``"BEGIN IMMEDIATE"``
    commits it, ``"BEGIN"`` (a read) ends it with a rollback."""
    if raw.in_transaction:
        # left open by a caller cancelled while its BEGIN was queued (see _begin); the
        # caller holds the connection's lock, so nobody owns it
        raw.execute("ROLLBACK")
    raw.execute(begin)
    try:
        result = fn(raw)
        if begin != "BEGIN":
            raw.execute("COMMIT")
    finally:
        if raw.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                raw.execute("ROLLBACK")
    return result


class WriteTurn:
    """The writer of a :class:`Database`, held (see :meth:`Database.writer_turn`)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` in one ``BEGIN IMMEDIATE`` transaction on the writer's thread."""
        return await self._db._on_writer(fn)


class Database:
    """The two connections of a store and the transactions over them."""

    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        prepare_path(path)
        writer = await connect(path)
        try:
            reader = await connect(path)
        except BaseException:
            await writer.close()
            raise
        try:
            # Writes go through write() and its BEGIN IMMEDIATE only: the reader cannot write.
            await reader.execute("PRAGMA query_only = ON")
        except BaseException:
            await reader.close()
            await writer.close()
            raise
        return cls(path, writer, reader)

    async def close(self) -> None:
        async with self._write_lock, self._read_lock:
            await self._reader.close()
            await self._writer.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success, else rolled back."""
        async with self._write_lock:
            conn = self._writer
            await self._begin(conn, "BEGIN IMMEDIATE")
            try:
                yield conn
                await conn.execute("COMMIT")
            except sqlite3.Error as exc:
                await self._rollback(conn)
                raise explain(exc, self.path) from exc
            except BaseException:
                await self._rollback(conn)
                raise

    async def write_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` (a plain function of a sqlite3 connection) in one write transaction
        (``BEGIN IMMEDIATE``) on the writer's thread: committed when it returns, rolled
        back when it raises; its result. One round trip for the whole transaction.

        Like any write, it waits for the writer. A caller cancelled meanwhile does not
        stop a transaction already handed to the thread: it commits or rolls back whole.
        """
        async with self._write_lock:
            return await self._on_writer(fn)

    @asynccontextmanager
    async def writer_turn(self) -> AsyncIterator[WriteTurn]:
        """Hold the writer: what the holder decides in between cannot race another write
        of this Database, and its :meth:`WriteTurn.write_sync` calls need no more waiting."""
        async with self._write_lock:
            yield WriteTurn(self)

    async def _on_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await on_thread(
                self._writer, lambda raw: _transaction(raw, "BEGIN IMMEDIATE", fn)
            )
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc

    async def read_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read snapshot on the reader's thread (one round trip)."""
        async with self._read_lock:
            try:
                return await on_thread(self._reader, lambda raw: _transaction(raw, "BEGIN", fn))
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc

    async def _begin(self, conn: aiosqlite.Connection, statement: str) -> None:
        """Start a transaction on ``conn``, whose lock the caller holds.

        A caller cancelled while its BEGIN was queued on the connection's thread leaves
        that transaction open after it has let the lock go. Holding the lock, nobody
        owns such a transaction: it is rolled back and the BEGIN tried again.
        """
        try:
            try:
                await conn.execute(statement)
            except sqlite3.OperationalError as exc:
                if "within a transaction" not in str(exc):
                    raise
                await conn.execute("ROLLBACK")
                await conn.execute(statement)
        except sqlite3.Error as exc:
            raise explain(exc, self.path) from exc
        except BaseException:
            # Cancelled while the BEGIN was queued: end whatever it opens, in order.
            with contextlib.suppress(sqlite3.Error):
                await asyncio.shield(conn.execute("ROLLBACK"))
            raise

    @staticmethod
    async def _rollback(conn: aiosqlite.Connection) -> None:
        if conn.in_transaction:
            # A failing ROLLBACK (the disk gone, a COMMIT that got through after all) must
            # not hide the error that brought us here.
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A consistent read snapshot (a deferred transaction on the read-only connection)."""
        async with self._read_lock:
            conn = self._reader
            await self._begin(conn, "BEGIN")
            try:
                yield conn
            except sqlite3.Error as exc:
                raise explain(exc, self.path) from exc
            finally:
                await self._rollback(conn)  # a read changed nothing: ending it is all

    async def migrate(self, target: int | None = None) -> int:
        """Run the pending schema migrations (each in its own transaction)."""
        from cockpit.store.migrate import upgrade

        async with self._write_lock:
            return await upgrade(self._writer, self.path, target)

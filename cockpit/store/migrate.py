"""Forward schema migrations, one SQL file each, versioned by ``PRAGMA user_version``.

A migration file is ``migrations/NNNN_what.sql``; version N is the state after it.
Each file runs in its own ``BEGIN IMMEDIATE`` transaction together with the bump of
``user_version``, so a failure leaves the store at the previous version, intact.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

import aiosqlite

from cockpit.store.errors import StoreError, explain

_FILE_RE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file's statements, in order, each without the comments before it."""
        try:
            return split_statements(self.sql)
        except ValueError as exc:
            raise StoreError(f"migration {self.version:04d}_{self.name} {exc}") from None


def _skip(sql: str, i: int) -> tuple[int, bool]:
    """Past the comment or quoted text starting at ``sql[i]``: (end, whether it was code).

    Returns ``(i, True)`` unchanged when nothing of the kind starts there.
    """
    if sql.startswith("--", i):
        end = sql.find("\n", i)
        return (len(sql) if end < 0 else end + 1), False
    if sql.startswith("/*", i):
        end = sql.find("*/", i + 2)
        return (len(sql) if end < 0 else end + 2), False
    close = {"'": "'", '"': '"', "`": "`", "[": "]"}.get(sql[i])
    if close is None:
        return i, True
    j = i + 1
    while True:
        j = sql.find(close, j)
        if j < 0:
            return len(sql), True
        if close != "]" and sql.startswith(close * 2, j):  # a doubled quote is a quote
            j += 2
            continue
        return j + 1, True


def split_statements(sql: str) -> list[str]:
    """Split SQL text into statements at the semicolons that end one.

    A semicolon inside a string, a quoted name or a comment ends nothing; one inside a
    ``CREATE TRIGGER … BEGIN … END`` body ends nothing either (SQLite's own
    ``sqlite3_complete`` decides). Comments before a statement are left out.
    Raises ValueError when the text ends inside a statement.
    """
    out: list[str] = []
    begin: int | None = None  # where the pending statement's first code is
    i = 0
    while i < len(sql):
        end, code = _skip(sql, i)
        if end != i:
            if code and begin is None:
                begin = i
            i = end
            continue
        ch = sql[i]
        if ch == ";":
            if begin is None:  # an empty statement
                i += 1
                continue
            if sqlite3.complete_statement(sql[begin : i + 1]):
                out.append(sql[begin : i + 1])
                begin = None
        elif not ch.isspace() and begin is None:
            begin = i
        i += 1
    if begin is not None:
        rest = sql[begin:].rstrip()
        if not sqlite3.complete_statement(rest + ";"):
            raise ValueError("ends mid-statement")
        out.append(rest + ";")
    return out


def migrations() -> list[Migration]:
    """Every migration shipped with Cockpit, in order; checks there are no gaps."""
    found: list[Migration] = []
    for entry in resources.files("cockpit.store.migrations").iterdir():
        match = _FILE_RE.fullmatch(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
            )
    found.sort(key=lambda m: m.version)
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise StoreError(f"migration {expected:04d} is missing")
    return found


LATEST = len(migrations())


async def schema_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def upgrade(conn: aiosqlite.Connection, path: object, target: int | None = None) -> int:
    """Bring the store to ``target`` (default: the latest); returns the version reached."""
    shipped = migrations()
    latest = len(shipped)
    wanted = latest if target is None else target
    current = await schema_version(conn)
    if current > latest:
        raise StoreError(
            f"the store {path} has schema version {current}, newer than this Cockpit knows "
            f"({latest}); upgrade Cockpit rather than open it with an older one"
        )
    for migration in shipped:
        if migration.version <= current or migration.version > wanted:
            continue
        try:
            await conn.execute("BEGIN IMMEDIATE")
            # Re-read inside the lock: another process may have migrated meanwhile.
            if await schema_version(conn) >= migration.version:
                await conn.execute("ROLLBACK")
                continue
            for statement in migration.statements():
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {migration.version:d}")
            await conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise StoreError(
                f"migrating the store {path} to version {migration.version} "
                f"({migration.name}) failed, it stays at version {current}: {explain(exc, path)}"
            ) from exc
        current = migration.version
    return current

"""Queries on task log lines: appended in batches, read by sequence number."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

import aiosqlite

#: One line to store: (task id, sequence number, time, stream, text).
LogRow = tuple[int, int, float, str, str]


_APPEND: Final = (
    "INSERT OR IGNORE INTO task_logs (task_id, seq, at, stream, text) VALUES (?, ?, ?, ?, ?)"
)


async def append(db: aiosqlite.Connection, rows: Sequence[LogRow]) -> None:
    """Store many lines in the caller's one transaction (never a transaction per line)."""
    await db.executemany(_APPEND, rows)


def append_sync(raw: sqlite3.Connection, rows: Sequence[LogRow]) -> None:
    """:func:`append` on the connection's thread (see ``Database.write_sync``)."""
    raw.executemany(_APPEND, rows)


async def last_seq(db: aiosqlite.Connection, task_id: int) -> int:
    async with db.execute(
        "SELECT coalesce(max(seq), 0) FROM task_logs WHERE task_id = ?", (task_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def after(
    db: aiosqlite.Connection, task_id: int, seq: int = 0, limit: int = 5000
) -> list[tuple[Any, ...]]:
    """Lines of a task with a sequence number above ``seq``, in order."""
    async with db.execute(
        "SELECT task_id, seq, at, stream, text FROM task_logs WHERE task_id = ? AND seq > ?"
        " ORDER BY seq LIMIT ?",
        (task_id, seq, limit),
    ) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def tail(db: aiosqlite.Connection, task_id: int, lines: int) -> list[tuple[Any, ...]]:
    """The last ``lines`` lines of a task, in order."""
    async with db.execute(
        "SELECT task_id, seq, at, stream, text FROM (SELECT * FROM task_logs WHERE task_id = ?"
        " ORDER BY seq DESC LIMIT ?) ORDER BY seq",
        (task_id, lines),
    ) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def count(db: aiosqlite.Connection, task_id: int | None = None) -> int:
    args: tuple[object, ...] = ()
    if task_id is None:
        sql = "SELECT count(*) FROM task_logs"
    else:
        sql, args = "SELECT count(*) FROM task_logs WHERE task_id = ?", (task_id,)
    async with db.execute(sql, args) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0

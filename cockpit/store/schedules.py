"""Queries on schedules: recurring tasks in cron syntax."""

from __future__ import annotations

from typing import Any, Final

import aiosqlite

from cockpit.store.tasks import NOW

Row = dict[str, Any]

_COLUMNS: Final = (
    "id, name, cron, kind, targets, args, paused, next_run, last_run, last_batch, created_by"
)


async def _rows(db: aiosqlite.Connection, sql: str, args: tuple[object, ...] = ()) -> list[Row]:
    async with db.execute(sql, args) as cursor:
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


async def list_all(db: aiosqlite.Connection) -> list[Row]:
    return await _rows(db, f"SELECT {_COLUMNS} FROM schedules ORDER BY name")


async def get(db: aiosqlite.Connection, name: str) -> Row | None:
    rows = await _rows(db, f"SELECT {_COLUMNS} FROM schedules WHERE name = ?", (name,))
    return rows[0] if rows else None


async def insert(
    db: aiosqlite.Connection,
    *,
    name: str,
    cron: str,
    kind: str,
    targets: str,
    args: str,
    created_by: str,
    next_run: float | None,
) -> None:
    await db.execute(
        "INSERT INTO schedules (name, cron, kind, targets, args, created_by, next_run, created_at)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, {NOW})",
        (name, cron, kind, targets, args, created_by, next_run),
    )


async def delete(db: aiosqlite.Connection, name: str) -> bool:
    cursor = await db.execute("DELETE FROM schedules WHERE name = ?", (name,))
    return cursor.rowcount > 0


async def set_paused(
    db: aiosqlite.Connection, name: str, paused: bool, next_run: float | None = None
) -> bool:
    cursor = await db.execute(
        "UPDATE schedules SET paused = ?, next_run = coalesce(?, next_run) WHERE name = ?",
        (int(paused), next_run, name),
    )
    return cursor.rowcount > 0


async def due(db: aiosqlite.Connection) -> list[Row]:
    """Active schedules whose next run has come (or was never computed)."""
    return await _rows(
        db,
        f"SELECT {_COLUMNS} FROM schedules WHERE paused = 0"
        f" AND (next_run IS NULL OR next_run <= {NOW}) ORDER BY next_run",
    )


async def advance(
    db: aiosqlite.Connection,
    schedule_id: int,
    seen_next: float | None,
    next_run: float,
    *,
    fired: bool,
) -> bool:
    """Move a schedule to its next run, only if no one else did since ``seen_next``.

    This is the schedule's claim: of two workers firing the same run, one wins.
    """
    sql = "UPDATE schedules SET next_run = ?" + (f", last_run = {NOW}" if fired else "")
    cursor = await db.execute(
        sql + " WHERE id = ? AND next_run IS ?", (next_run, schedule_id, seen_next)
    )
    return cursor.rowcount > 0


async def set_last_batch(db: aiosqlite.Connection, schedule_id: int, batch_id: int) -> None:
    await db.execute("UPDATE schedules SET last_batch = ? WHERE id = ?", (batch_id, schedule_id))

"""Queries on platforms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import aiosqlite

from cockpit.model import Platform, PlatformType
from cockpit.store.errors import NotFoundError
from cockpit.store.rows import missing, trusted

_SELECT = (
    "SELECT p.id, p.name, s.name, p.type, p.root, p.release, p.locked"
    " FROM platforms p JOIN servers s ON s.id = p.server_id"
)


def _platform(row: Any) -> Platform:
    id_, name, server, type_, root, release, locked = row
    return trusted(
        Platform,
        id=id_,
        name=name,
        server=server,
        type=PlatformType(type_),
        root=root,
        release=release,
        locked=bool(locked),
    )


async def list_all(db: aiosqlite.Connection, *, server: str | None = None) -> list[Platform]:
    where, args = (" WHERE s.name = ?", (server,)) if server else ("", ())
    async with db.execute(_SELECT + where + " ORDER BY p.name", args) as cursor:
        return [_platform(row) async for row in cursor]


async def get(db: aiosqlite.Connection, name: str) -> Platform | None:
    async with db.execute(_SELECT + " WHERE p.name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    return _platform(row) if row else None


async def ids(db: aiosqlite.Connection) -> dict[str, int]:
    async with db.execute("SELECT name, id FROM platforms") as cursor:
        return {name: id_ async for name, id_ in cursor}


def _values(p: Platform, server_ids: Mapping[str, int]) -> tuple[object, ...]:
    try:
        server_id = server_ids[p.server]
    except KeyError:
        raise NotFoundError(f"platform {p.name}: no server {p.server}") from None
    return (server_id, p.type.value, p.root, p.release, int(p.locked), p.name)


async def insert_many(
    db: aiosqlite.Connection, platforms: Iterable[Platform], server_ids: Mapping[str, int]
) -> None:
    await db.executemany(
        "INSERT INTO platforms (server_id, type, root, release, locked, name)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [_values(p, server_ids) for p in platforms],
    )


async def update_many(
    db: aiosqlite.Connection, platforms: Iterable[Platform], server_ids: Mapping[str, int]
) -> None:
    """Update platforms found by name; a name not in the store raises NotFoundError."""
    platforms = list(platforms)
    cursor = await db.executemany(
        "UPDATE platforms SET server_id = ?, type = ?, root = ?, release = ?, locked = ?"
        " WHERE name = ?",
        [_values(p, server_ids) for p in platforms],
    )
    if cursor.rowcount < len(platforms):
        await missing(db, "platforms", "name", "platform", (p.name for p in platforms))


async def delete_many(db: aiosqlite.Connection, names: Iterable[str]) -> None:
    await db.executemany("DELETE FROM platforms WHERE name = ?", [(n,) for n in names])

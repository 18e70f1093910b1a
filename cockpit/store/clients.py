"""Queries on clients."""

from __future__ import annotations

from collections.abc import Iterable

import aiosqlite

from cockpit.model import Client
from cockpit.store.rows import dumps, loads, missing, trusted


async def list_all(db: aiosqlite.Connection) -> list[Client]:
    async with db.execute("SELECT id, name, contact, quotas FROM clients ORDER BY name") as cursor:
        return [
            trusted(Client, id=id_, name=name, contact=contact, quotas=loads(quotas))
            async for id_, name, contact, quotas in cursor
        ]


async def get(db: aiosqlite.Connection, name: str) -> Client | None:
    sql = "SELECT id, name, contact, quotas FROM clients WHERE name = ?"
    async with db.execute(sql, (name,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    id_, name, contact, quotas = row
    return trusted(Client, id=id_, name=name, contact=contact, quotas=loads(quotas))


async def ids(db: aiosqlite.Connection) -> dict[str, int]:
    async with db.execute("SELECT name, id FROM clients") as cursor:
        return {name: id_ async for name, id_ in cursor}


async def insert_many(db: aiosqlite.Connection, clients: Iterable[Client]) -> None:
    await db.executemany(
        "INSERT INTO clients (name, contact, quotas) VALUES (?, ?, ?)",
        [(c.name, c.contact, dumps(dict(c.quotas))) for c in clients],
    )


async def update_many(db: aiosqlite.Connection, clients: Iterable[Client]) -> None:
    """Update clients found by name; a name not in the store raises NotFoundError."""
    clients = list(clients)
    cursor = await db.executemany(
        "UPDATE clients SET contact = ?, quotas = ? WHERE name = ?",
        [(c.contact, dumps(dict(c.quotas)), c.name) for c in clients],
    )
    if cursor.rowcount < len(clients):
        await missing(db, "clients", "name", "client", (c.name for c in clients))


async def delete_many(db: aiosqlite.Connection, names: Iterable[str]) -> None:
    await db.executemany("DELETE FROM clients WHERE name = ?", [(n,) for n in names])

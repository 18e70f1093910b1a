"""Queries on servers and their services."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import aiosqlite

from cockpit.model import Health, Server, ServerHealth, Service, ServiceKind, Transport
from cockpit.store.rows import dumps, loads, missing, trusted

_SELECT = (
    "SELECT id, name, address, port, user, transport, root, environment, ssh_options FROM servers"
)


async def _services(
    db: aiosqlite.Connection, where: str = "", args: tuple[object, ...] = ()
) -> dict[int, list[Service]]:
    out: dict[int, list[Service]] = defaultdict(list)
    sql = "SELECT server_id, kind, type, settings FROM services " + where + " ORDER BY kind, type"
    async with db.execute(sql, args) as cursor:
        async for server_id, kind, type_, settings in cursor:
            out[server_id].append(
                trusted(Service, kind=ServiceKind(kind), type=type_, settings=loads(settings))
            )
    return out


def _server(row: Any, services: list[Service]) -> Server:
    id_, name, address, port, user, transport, root, environment, ssh_options = row
    return trusted(
        Server,
        id=id_,
        name=name,
        address=address,
        port=port,
        user=user,
        transport=Transport(transport),
        root=root,
        environment=environment,
        ssh_options=loads(str(ssh_options)),
        services=tuple(services),
    )


async def list_all(db: aiosqlite.Connection) -> list[Server]:
    services = await _services(db)
    async with db.execute(_SELECT + " ORDER BY name") as cursor:
        rows = await cursor.fetchall()
    return [_server(row, services.get(int(row[0]), [])) for row in rows]


async def get(db: aiosqlite.Connection, name: str) -> Server | None:
    async with db.execute(_SELECT + " WHERE name = ?", (name,)) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    services = await _services(db, "WHERE server_id = ?", (row[0],))
    return _server(row, services.get(int(row[0]), []))


async def ids(db: aiosqlite.Connection) -> dict[str, int]:
    async with db.execute("SELECT name, id FROM servers") as cursor:
        return {name: id_ async for name, id_ in cursor}


async def count(db: aiosqlite.Connection) -> int:
    async with db.execute("SELECT count(*) FROM servers") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


def _values(server: Server) -> tuple[object, ...]:
    return (
        server.name,
        server.address,
        server.port,
        server.user,
        server.transport.value,
        server.root,
        server.environment,
        dumps(dict(server.ssh_options)),
    )


async def _replace_services(db: aiosqlite.Connection, servers: list[Server]) -> None:
    await db.executemany(
        "DELETE FROM services WHERE server_id = (SELECT id FROM servers WHERE name = ?)",
        [(s.name,) for s in servers],
    )
    await db.executemany(
        "INSERT INTO services (server_id, kind, type, settings)"
        " SELECT id, ?, ?, ? FROM servers WHERE name = ?",
        [
            (svc.kind.value, svc.type, dumps(dict(svc.settings)), server.name)
            for server in servers
            for svc in server.services
        ],
    )


async def insert_many(db: aiosqlite.Connection, servers: Iterable[Server]) -> None:
    servers = list(servers)
    await db.executemany(
        "INSERT INTO servers (name, address, port, user, transport, root, environment, ssh_options)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [_values(s) for s in servers],
    )
    await _replace_services(db, [s for s in servers if s.services])


async def update_many(db: aiosqlite.Connection, servers: Iterable[Server]) -> None:
    """Update servers found by name; a name not in the store raises NotFoundError."""
    servers = list(servers)
    cursor = await db.executemany(
        "UPDATE servers SET address = ?, port = ?, user = ?, transport = ?, root = ?,"
        " environment = ?, ssh_options = ?,"
        " updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE name = ?",
        [(*_values(s)[1:], s.name) for s in servers],
    )
    if cursor.rowcount < len(servers):
        await missing(db, "servers", "name", "server", (s.name for s in servers))
    await _replace_services(db, servers)


async def delete_many(db: aiosqlite.Connection, names: Iterable[str]) -> None:
    await db.executemany("DELETE FROM servers WHERE name = ?", [(n,) for n in names])


async def record_health(
    db: aiosqlite.Connection,
    name: str,
    health: Health,
    reason: str,
    facts: Mapping[str, Any] | None,
    checked_at: datetime,
) -> None:
    """Keep the outcome of a verify. ``facts`` None keeps the facts learnt before
    (an unreachable server has not lost its CPUs)."""
    if facts is None:
        await db.execute(
            "UPDATE servers SET health = ?, health_reason = ?, checked_at = ? WHERE name = ?",
            (health.value, reason, checked_at.isoformat(), name),
        )
    else:
        await db.execute(
            "UPDATE servers SET health = ?, health_reason = ?, checked_at = ?, facts = ?"
            " WHERE name = ?",
            (health.value, reason, checked_at.isoformat(), dumps(dict(facts)), name),
        )


def _health(row: Any) -> ServerHealth:
    name, health, reason, checked_at, facts = row
    return trusted(
        ServerHealth,
        server=name,
        health=Health(health),
        reason=reason,
        checked_at=datetime.fromisoformat(checked_at) if checked_at else None,
        facts=loads(facts),
    )


async def health_all(
    db: aiosqlite.Connection, *, with_facts: bool = False
) -> dict[str, ServerHealth]:
    facts = "facts" if with_facts else "'{}'"
    sql = f"SELECT name, health, health_reason, checked_at, {facts} FROM servers"
    async with db.execute(sql) as cursor:
        return {row[0]: _health(row) for row in await cursor.fetchall()}


async def health_of(db: aiosqlite.Connection, name: str) -> ServerHealth | None:
    sql = "SELECT name, health, health_reason, checked_at, facts FROM servers WHERE name = ?"
    async with db.execute(sql, (name,)) as cursor:
        row = await cursor.fetchone()
    return _health(row) if row else None

"""Queries on backups: each is a site's, on the server it was made on, made for a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiosqlite

from cockpit.model import Backup, BackupReason
from cockpit.store.errors import NotFoundError
from cockpit.store.rows import trusted

_SELECT = (
    "SELECT b.id, s.domain, v.name, b.location, b.size, b.sha256, b.created, b.backend,"
    " b.reason"
    " FROM backups b JOIN sites s ON s.id = b.site_id JOIN servers v ON v.id = b.server_id"
)


def _timestamp(moment: datetime) -> str:
    """``created`` as stored: UTC, to the microsecond, so that text order is time order.

    (Kept in its own offset, 10:00+02:00 sorted after 09:00+00:00, which is later.)
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _backup(row: Any) -> Backup:
    id_, site, server, location, size, sha256, created, backend, reason = row
    return trusted(
        Backup,
        id=id_,
        site=site,
        server=server,
        location=location,
        size=size,
        sha256=sha256,
        created=datetime.fromisoformat(str(created)),
        backend=backend,
        reason=BackupReason(reason),
    )


async def list_for_site(db: aiosqlite.Connection, domain: str) -> list[Backup]:
    """A site's backups, newest first."""
    sql = _SELECT + " WHERE s.domain = ? ORDER BY b.created DESC, b.id DESC"
    async with db.execute(sql, (domain,)) as cursor:
        return [_backup(row) async for row in cursor]


async def list_all(db: aiosqlite.Connection, *, limit: int = 1000) -> list[Backup]:
    async with db.execute(
        _SELECT + " ORDER BY b.created DESC, b.id DESC LIMIT ?", (limit,)
    ) as cursor:
        return [_backup(row) async for row in cursor]


async def add(db: aiosqlite.Connection, backup: Backup) -> int:
    """Record ``backup``; its server, when it names none, is the site's current server."""
    async with db.execute(
        "SELECT s.id, p.server_id FROM sites s JOIN platforms p ON p.id = s.platform_id"
        " WHERE s.domain = ?",
        (backup.site,),
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        raise NotFoundError(f"no site {backup.site}")
    site_id, server_id = row
    if backup.server is not None:
        async with db.execute("SELECT id FROM servers WHERE name = ?", (backup.server,)) as cursor:
            found = await cursor.fetchone()
        if found is None:
            raise NotFoundError(f"no server {backup.server}")
        server_id = found[0]
    cursor = await db.execute(
        "INSERT INTO backups (site_id, server_id, location, size, sha256, created, backend,"
        " reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            site_id,
            server_id,
            backup.location,
            backup.size,
            backup.sha256,
            _timestamp(backup.created),
            backup.backend,
            backup.reason.value,
        ),
    )
    return int(cursor.lastrowid or 0)


async def remove(db: aiosqlite.Connection, backup_id: int) -> None:
    await db.execute("DELETE FROM backups WHERE id = ?", (backup_id,))


async def get(db: aiosqlite.Connection, backup_id: int) -> Backup | None:
    """One backup by its id, or None."""
    async with db.execute(_SELECT + " WHERE b.id = ?", (backup_id,)) as cursor:
        row = await cursor.fetchone()
    return _backup(row) if row is not None else None


async def latest_for_site(db: aiosqlite.Connection, domain: str) -> Backup | None:
    """A site's newest backup, or None."""
    sql = _SELECT + " WHERE s.domain = ? ORDER BY b.created DESC, b.id DESC LIMIT 1"
    async with db.execute(sql, (domain,)) as cursor:
        row = await cursor.fetchone()
    return _backup(row) if row is not None else None

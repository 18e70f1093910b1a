"""Queries on backups: each is a site's, on the server it was made on, made for a reason."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import aiosqlite

from cockpit.model import Backup, BackupReason
from cockpit.store.errors import NotFoundError
from cockpit.store.rows import like_pattern, trusted
from cockpit.store.sites import check_regex

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


#: What a list of backups may be sorted by: the SQL of each key, most significant first.
#: Ties are broken by the backup's id in the same direction, so pages are stable; by
#: site, the newest… or oldest first within a site, as the ``backups_site`` index has them.
SORT_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "created": ("b.created",),
    "site": ("s.domain", "b.created"),
    "backend": ("b.backend", "b.created"),
    "location": ("v.name", "b.location"),
}


@dataclass(frozen=True, slots=True)
class BackupFilter:
    """What a list of backups is narrowed to: the backups whose site's domain, server's
    name, backend or location holds ``text`` (any case), as a substring or, with
    ``regex``, a regular expression; with ``exclude``, the backups none of them holds
    it in.

    The domain and the server are matched in their own (small) tables, not joined to
    every backup; the backend and the location are compared on each backup.
    """

    text: str | None = None
    exclude: bool = False
    regex: bool = False

    def where(self) -> tuple[str, list[object]]:
        """The WHERE clause (on ``b``, the backups) and its arguments."""
        if not self.text:
            return "", []
        if "\x00" in self.text:  # no name holds a NUL (and SQLite would cut the pattern)
            return (" WHERE 1" if self.exclude else " WHERE 0"), []
        if self.regex:
            check_regex(self.text)
            test, arg = "regexp(?, {})", self.text
        else:
            test, arg = "{} LIKE ? ESCAPE '\\'", like_pattern(self.text)
        terms = (
            "b.site_id IN (SELECT id FROM sites WHERE " + test.format("domain") + ")",
            "b.server_id IN (SELECT id FROM servers WHERE " + test.format("name") + ")",
            # A regular expression is a call into Python per value: tried on each of the
            # few backends once, not on every backup's.
            (
                "b.backend IN (SELECT k FROM (SELECT DISTINCT backend AS k FROM backups)"
                " WHERE " + test.format("k") + ")"
                if self.regex
                else test.format("b.backend")
            ),
            test.format("b.location"),
        )
        clause = " OR ".join(terms)
        return (f" WHERE NOT ({clause})" if self.exclude else f" WHERE ({clause})"), [arg] * len(
            terms
        )


@dataclass(frozen=True, slots=True)
class BackupPage:
    """One page of a list of backups, the length of the whole list, and where it starts."""

    backups: Sequence[Backup]
    total: int
    offset: int


_SORT_JOIN: Final[Mapping[str, str]] = {
    "site": " JOIN sites s ON s.id = b.site_id",
    "location": " JOIN servers v ON v.id = b.server_id",
}


def _order(sort: str, descending: bool) -> str:
    columns = SORT_COLUMNS.get(sort)
    if columns is None:
        raise ValueError(f"cannot sort backups by {sort!r}; valid: {', '.join(SORT_COLUMNS)}")
    direction = " DESC" if descending else ""
    return " ORDER BY " + ", ".join(f"{c}{direction}" for c in (*columns, "b.id"))


async def page(
    db: aiosqlite.Connection,
    where: BackupFilter = BackupFilter(),
    *,
    sort: str = "created",
    descending: bool = True,
    offset: int = 0,
    limit: int = 100,
) -> list[Backup]:
    """One page of backups, filtered and sorted in the store.

    The page's ids are found first, then only those rows are read whole: skipping
    900,000 backups costs no rows built.
    """
    order = _order(sort, descending)
    clause, args = where.where()
    # Only the table the sort needs is joined: by site, SQLite then walks the sites in
    # domain order and each site's backups in the ``backups_site`` index (no sort at all).
    source = " FROM backups b" + _SORT_JOIN.get(sort, "")
    ids_sql = "SELECT b.id AS id" + source + clause + order + " LIMIT ? OFFSET ?"
    sql = (
        _SELECT.replace(
            " FROM backups b", f" FROM ({ids_sql}) AS pg JOIN backups b ON b.id = pg.id"
        )
        + order
    )
    async with db.execute(sql, (*args, max(0, limit), max(0, offset))) as cursor:
        return [_backup(row) async for row in cursor]


async def count(db: aiosqlite.Connection, where: BackupFilter = BackupFilter()) -> int:
    """How many backups ``where`` lets through."""
    clause, args = where.where()
    sql = "SELECT count(*) FROM backups b" + clause
    async with db.execute(sql, args) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


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

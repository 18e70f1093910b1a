"""Queries on sites and their aliases, including the filtered, paged list views use."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiosqlite

from cockpit.model import HttpsMode, Site, SiteStatus
from cockpit.store.errors import NotFoundError
from cockpit.store.rows import like_pattern, missing, trusted

T = TypeVar("T")

_COLUMNS: Final = (
    "SELECT st.id, st.domain, p.name, c.name, st.redirection, d.name, st.https, st.status,"
    " (SELECT group_concat(alias, ' ') FROM site_aliases a WHERE a.site_id = st.id)"
)
_JOINS: Final = (
    " JOIN platforms p ON p.id = st.platform_id"
    " JOIN servers sv ON sv.id = p.server_id"
    " LEFT JOIN clients c ON c.id = st.client_id"
    " LEFT JOIN servers d ON d.id = st.db_server_id"
)
_SELECT: Final = _COLUMNS + " FROM sites st" + _JOINS

#: Columns a list may be sorted by, and the SQL they sort on.
SORT_COLUMNS: Final[Mapping[str, str]] = {
    "domain": "st.domain",
    "platform": "p.name",
    "server": "sv.name",
    "client": "c.name",
    "https": "st.https",
    "status": "st.status",
    "created": "st.created_at",
}

#: The join that brings in each table alias a filter or a sort may use (sv needs p).
_JOIN_OF: Final[Mapping[str, str]] = {
    "p": " JOIN platforms p ON p.id = st.platform_id",
    "sv": " JOIN servers sv ON sv.id = p.server_id",
    "c": " LEFT JOIN clients c ON c.id = st.client_id",
}


def _from(aliases: Iterable[str]) -> str:
    """``FROM sites st`` with only the joins that ``aliases`` need.

    Every site has a platform and every platform a server (NOT NULL foreign keys), so
    leaving out a join nobody filters or sorts on never changes which sites match; it
    spares a lookup per row, which is most of the cost of scanning 100,000 sites.
    """
    wanted = set(aliases)
    if "sv" in wanted:
        wanted.add("p")
    return " FROM sites st" + "".join(_JOIN_OF[a] for a in ("p", "sv", "c") if a in wanted)


_ALIAS_RE: Final = re.compile(r"\b(p|sv|c)\.")


def _aliases_in(sql: str) -> set[str]:
    """The joined tables (``p``, ``sv``, ``c``) that a piece of SQL refers to."""
    return set(_ALIAS_RE.findall(sql))


@dataclass(frozen=True, slots=True)
class SiteFilter:
    """What a list of sites is narrowed to; every field is optional."""

    text: str | None = None  # a substring of the domain
    platform: str | None = None
    server: str | None = None
    client: str | None = None
    status: SiteStatus | None = None
    environment: str | None = None
    exclude: bool = False  # the sites whose domain does NOT match ``text``
    regex: bool = False  # ``text`` is a regular expression searched in the domain (any case)

    def needle(self) -> str:
        """The domain substring searched for (domains are stored lowercase)."""
        return (self.text or "").lower()

    def where(self, *, indexed: bool = False) -> tuple[str, list[object]]:
        """The WHERE clause (on ``st``, ``p``, ``sv``, ``c``) and its arguments.

        With ``indexed``, the domain substring is looked up in the trigram index
        (``sites_fts``) instead of matched against every domain with LIKE; both match
        the needle literally (``%``, ``_`` and ``\\`` are not wildcards).
        """
        clauses: list[str] = []
        args: list[object] = []
        negate = "NOT " if self.exclude else ""
        if self.text and "\x00" in self.text:
            # No domain holds a NUL (and SQLite would cut the pattern there).
            clauses.append("1" if self.exclude else "0")
        elif self.text and self.regex:
            check_regex(self.text)
            clauses.append(f"{negate}regexp(?, st.domain)")
            args.append(self.text)
        elif self.text:
            if indexed:
                clauses.append(
                    f"st.id {negate}IN (SELECT rowid FROM sites_fts WHERE sites_fts MATCH ?)"
                )
                args.append(_phrase(self.needle()))
            else:
                clauses.append(f"st.domain {negate}LIKE ? ESCAPE '\\'")
                args.append(like_pattern(self.needle()))
        for column, value in (
            ("p.name", self.platform),
            ("sv.name", self.server),
            ("c.name", self.client),
            ("sv.environment", self.environment),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.status is not None:
            clauses.append("st.status = ?")
            args.append(SiteStatus(self.status).value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def check_regex(pattern: str) -> None:
    """Refuse a pattern that does not compile, with the reason (a ValueError)."""
    try:
        _compiled(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None


@functools.lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def sql_regexp(pattern: str, value: str | None) -> bool:
    """SQLite's ``regexp(pattern, value)``: a case-insensitive search."""
    return value is not None and _compiled(pattern).search(value) is not None


#: The trigram index needs a needle of at least this many characters.
_TRIGRAM: Final = 3
#: Up to this many matching domains, finding them in the trigram index and sorting them
#: beats scanning the domain index; beyond, matches are dense enough that a scan in
#: domain order fills a page quickly (and counting them all is cheaper by a scan too).
INDEXED_MATCHES: Final = 5000


def _phrase(needle: str) -> str:
    """An FTS5 query for ``needle`` as one literal phrase: a substring, with a trigram index."""
    return '"' + needle.replace('"', '""') + '"'


async def _indexed(db: aiosqlite.Connection, where: SiteFilter) -> bool:
    """Whether the filter's substring is rare enough to look up in the trigram index."""
    needle = where.needle()
    if len(needle) < _TRIGRAM or "\x00" in needle or where.regex:
        return False
    sql = "SELECT count(*) FROM (SELECT rowid FROM sites_fts WHERE sites_fts MATCH ? LIMIT ?)"
    async with db.execute(sql, (_phrase(needle), INDEXED_MATCHES + 1)) as cursor:
        row = await cursor.fetchone()
    return row is not None and int(row[0]) <= INDEXED_MATCHES


def _site(row: Any) -> Site:
    id_, domain, platform, client, redirection, db_server, https, status, aliases = row
    return trusted(
        Site,
        id=id_,
        domain=domain,
        platform=platform,
        client=client,
        aliases=tuple(sorted(str(aliases).split())) if aliases else (),
        redirection=redirection,
        db_server=db_server,
        https=HttpsMode(https),
        status=SiteStatus(status),
    )


async def page(
    db: aiosqlite.Connection,
    where: SiteFilter = SiteFilter(),
    *,
    sort: str = "domain",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> list[Site]:
    """One page of sites, filtered and sorted (the domain breaks ties, so pages are stable).

    The page's ids are found first with only the joins the filter and the sort need
    (for a domain filter sorted by domain, the domain index alone), then only those
    rows are joined to their names: skipping 90,000 rows costs no joins.
    """
    column = SORT_COLUMNS.get(sort)
    if column is None:
        raise ValueError(f"cannot sort sites by {sort!r}; valid: {', '.join(SORT_COLUMNS)}")
    direction = "DESC" if descending else "ASC"
    clause, args = where.where(indexed=await _indexed(db, where))
    order = f" ORDER BY {column} {direction}" + ("" if sort == "domain" else ", st.domain")
    ids_sql = (
        "SELECT st.id AS id"
        + _from(_aliases_in(clause + column))
        + clause
        + order
        + " LIMIT ? OFFSET ?"
    )
    sql = _COLUMNS + f" FROM ({ids_sql}) AS pg JOIN sites st ON st.id = pg.id" + _JOINS + order
    async with db.execute(sql, (*args, max(0, limit), max(0, offset))) as cursor:
        return [_site(row) async for row in cursor]


async def count(db: aiosqlite.Connection, where: SiteFilter = SiteFilter()) -> int:
    clause, args = where.where(indexed=await _indexed(db, where))
    sql = "SELECT count(*)" + _from(_aliases_in(clause)) + clause
    async with db.execute(sql, args) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def list_all(db: aiosqlite.Connection) -> list[Site]:
    async with db.execute(_SELECT + " ORDER BY st.domain") as cursor:
        return [_site(row) for row in await cursor.fetchall()]


async def get(db: aiosqlite.Connection, domain: str) -> Site | None:
    async with db.execute(_SELECT + " WHERE st.domain = ?", (domain,)) as cursor:
        row = await cursor.fetchone()
    return _site(row) if row else None


async def ids(db: aiosqlite.Connection) -> dict[str, int]:
    async with db.execute("SELECT domain, id FROM sites") as cursor:
        return {domain: id_ async for domain, id_ in cursor}


@dataclass(frozen=True, slots=True)
class RefIds:
    """Name-to-id maps that rows referring to other entities need."""

    platforms: Mapping[str, int]
    clients: Mapping[str, int]
    servers: Mapping[str, int]


def _ref(ids: Mapping[str, int], name: str, what: str, site: Site) -> int:
    try:
        return ids[name]
    except KeyError:
        raise NotFoundError(f"site {site.domain}: no {what} {name}") from None


def _values(site: Site, refs: RefIds) -> tuple[object, ...]:
    return (
        _ref(refs.platforms, site.platform, "platform", site),
        _ref(refs.clients, site.client, "client", site) if site.client else None,
        _ref(refs.servers, site.db_server, "server", site) if site.db_server else None,
        site.redirection,
        site.https.value,
        site.status.value,
        site.domain,
    )


#: Rows per statement in bulk inserts and deletes. One statement for many rows rather than
#: one per row: the trigram index (FTS5) flushes what it has pending at the end of every
#: statement, which made inserting 100,000 sites row by row five times slower.
_BATCH: Final = 500


def _batches(rows: list[T], size: int = _BATCH) -> Iterator[list[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def _replace_aliases(db: aiosqlite.Connection, sites: list[Site]) -> None:
    if not sites:
        return
    await db.executemany(
        "DELETE FROM site_aliases WHERE site_id = (SELECT id FROM sites WHERE domain = ?)",
        [(s.domain,) for s in sites],
    )
    await db.executemany(
        "INSERT INTO site_aliases (site_id, alias) SELECT id, ? FROM sites WHERE domain = ?",
        [(alias, s.domain) for s in sites for alias in s.aliases],
    )


async def insert_many(db: aiosqlite.Connection, sites: Iterable[Site], refs: RefIds) -> None:
    sites = list(sites)
    rows = [_values(s, refs) for s in sites]
    for batch in _batches(rows):
        await db.execute(
            "INSERT INTO sites (platform_id, client_id, db_server_id, redirection, https, status,"
            " domain) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(batch)),
            [value for row in batch for value in row],
        )
    await _replace_aliases(db, [s for s in sites if s.aliases])


async def update_many(db: aiosqlite.Connection, sites: Iterable[Site], refs: RefIds) -> None:
    """Update sites found by domain; a domain not in the store raises NotFoundError."""
    sites = list(sites)
    cursor = await db.executemany(
        "UPDATE sites SET platform_id = ?, client_id = ?, db_server_id = ?, redirection = ?,"
        " https = ?, status = ?, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
        " WHERE domain = ?",
        [_values(s, refs) for s in sites],
    )
    if cursor.rowcount < len(sites):
        await missing(db, "sites", "domain", "site", (s.domain for s in sites))
    await _replace_aliases(db, sites)


async def delete_many(db: aiosqlite.Connection, domains: Iterable[str]) -> None:
    for batch in _batches(list(domains)):
        await db.execute(
            "DELETE FROM sites WHERE domain IN (" + ", ".join(["?"] * len(batch)) + ")", batch
        )

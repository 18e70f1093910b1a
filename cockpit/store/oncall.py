"""What the on-call evaluation reads of the sites without reading every site.

A fleet of 100,000 sites has a handful that any site check could flag. These queries
return counts, the *candidates* (a superset of the sites a check could flag: the caller
judges each one with the check's own rule) and per-client sums, so that
:func:`cockpit.status.evaluate.evaluate` never turns every site into a Python object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from cockpit.store.metrics import SiteNow

__all__ = [
    "CandidateSite",
    "SiteCounts",
    "client_totals",
    "site_candidates",
    "site_counts",
    "site_groups",
]


@dataclass(frozen=True, slots=True)
class SiteCounts:
    sites: int
    enabled: int
    probed: int


async def site_counts(conn: aiosqlite.Connection) -> SiteCounts:
    """Every site, the enabled ones, and those probed at least once."""
    sql = "SELECT count(*), coalesce(sum(status = 'enabled'), 0) FROM sites"
    async with conn.execute(sql) as cursor:
        row = await cursor.fetchone()
    sql = "SELECT count(*) FROM stat_site_now WHERE probed_at IS NOT NULL"
    async with conn.execute(sql) as cursor:
        probed = await cursor.fetchone()
    assert row is not None and probed is not None
    return SiteCounts(int(row[0]), int(row[1]), int(probed[0]))


@dataclass(frozen=True, slots=True)
class CandidateSite:
    site: SiteNow
    requests_month: int
    bytes_month: int


async def site_candidates(
    conn: aiosqlite.Connection,
    *,
    month: str,
    cert_horizon: float,
    bandwidth_floor: float | None,
    disk_floor: float | None,
) -> list[CandidateSite]:
    """The sites a site check could flag, by domain, with their traffic in ``month``.

    A site is a candidate when its probe fails, its certificate was checked and could
    not be read or expires before ``cert_horizon``, it has a quota of its own, its bytes
    this month reach ``bandwidth_floor`` or its files and database ``disk_floor`` (a
    floor None: no such check; a floor <= 0: every site)."""
    parts = [
        "SELECT site_id FROM stat_site_now"
        " WHERE probed_at IS NOT NULL AND failing_since IS NOT NULL",
        "SELECT site_id FROM stat_site_now WHERE tls_checked_at IS NOT NULL"
        " AND (tls_expires_at IS NULL OR tls_expires_at < :horizon)",
        "SELECT site_id FROM site_quotas",
    ]
    if bandwidth_floor is not None:
        parts.append(
            "SELECT id FROM sites"
            if bandwidth_floor <= 0
            else "SELECT site_id FROM stat_site_month WHERE month = :month AND bytes >= :bandwidth"
        )
    if disk_floor is not None:
        parts.append(
            "SELECT id FROM sites"
            if disk_floor <= 0
            else "SELECT site_id FROM stat_site_now"
            " WHERE coalesce(disk_bytes, 0) + coalesce(db_bytes, 0) >= :disk"
        )
    sql = (
        "SELECT st.id, st.domain, st.status, st.https, c.name, p.name, sv.name, n.probed_at,"
        " n.http_status, n.latency_ms, coalesce(n.probe_error, ''), n.failing_since,"
        " n.tls_checked_at, n.tls_expires_at, coalesce(n.tls_error, ''), n.disk_bytes,"
        " n.db_bytes, coalesce(m.requests, 0), coalesce(m.bytes, 0)"
        " FROM sites st JOIN platforms p ON p.id = st.platform_id"
        " JOIN servers sv ON sv.id = p.server_id LEFT JOIN clients c ON c.id = st.client_id"
        " LEFT JOIN stat_site_now n ON n.site_id = st.id"
        " LEFT JOIN stat_site_month m ON m.site_id = st.id AND m.month = :month"
        f" WHERE st.id IN ({' UNION '.join(parts)})"
        " ORDER BY st.domain"
    )
    args = {
        "month": month,
        "horizon": cert_horizon,
        "bandwidth": bandwidth_floor,
        "disk": disk_floor,
    }
    async with conn.execute(sql, args) as cursor:
        return [
            CandidateSite(SiteNow(*row[:17]), int(row[17]), int(row[18]))
            for row in await cursor.fetchall()
        ]


async def client_totals(
    conn: aiosqlite.Connection, month: str, clients: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """``{client: (bytes this month, bytes of files and databases)}`` summed over each of
    ``clients``' sites (a client with no site is left out)."""
    if not clients:
        return {}
    sql = (
        "SELECT c.name, coalesce(sum(m.bytes), 0),"
        " coalesce(sum(coalesce(n.disk_bytes, 0) + coalesce(n.db_bytes, 0)), 0)"
        " FROM clients c JOIN sites st ON st.client_id = c.id"
        " LEFT JOIN stat_site_now n ON n.site_id = st.id"
        " LEFT JOIN stat_site_month m ON m.site_id = st.id AND m.month = ?"
        " WHERE c.name IN (SELECT value FROM json_each(?)) GROUP BY c.id"
    )
    async with conn.execute(sql, (month, json.dumps(list(clients)))) as cursor:
        return {str(name): (int(b), int(d)) async for name, b, d in cursor}


async def site_groups(conn: aiosqlite.Connection) -> list[tuple[str, str, str | None, int]]:
    """How many sites each (server, platform, client) holds."""
    sql = (
        "SELECT sv.name, p.name, c.name, count(*)"
        " FROM sites st JOIN platforms p ON p.id = st.platform_id"
        " JOIN servers sv ON sv.id = p.server_id LEFT JOIN clients c ON c.id = st.client_id"
        " GROUP BY st.platform_id, st.client_id"
    )
    async with conn.execute(sql) as cursor:
        return [
            (str(server), str(platform), None if client is None else str(client), int(n))
            async for server, platform, client, n in cursor
        ]

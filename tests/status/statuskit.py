"""Helpers of the status tests: a store with an inventory, and collections recorded in it
through the store's own API (what the collectors write)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cockpit.config import Config
from cockpit.model import Client, Platform, PlatformType, Server, Site, Transport
from cockpit.store import Database, metrics, open_store
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds

NOW = float(int(time.time()) // 3600 * 3600 + 1800)  # mid-hour: series tests need whole hours


def healthy(**changes: Any) -> dict[str, Any]:
    """What a collector reads of a healthy server (the keys ServerSample.to_json has)."""
    data: dict[str, Any] = {
        "load1": 0.5,
        "load5": 0.4,
        "load15": 0.3,
        "cpus": 4,
        "uptime_s": 86400.0,
        "mem_total_mb": 8000,
        "mem_available_mb": 6000,
        "swap_total_mb": 1000,
        "swap_free_mb": 1000,
        "disks": [
            {
                "mount": "/",
                "filesystem": "/dev/vda",
                "type": "ext4",
                "size_mb": 100000.0,
                "used_mb": 40000.0,
                "inodes_pct": 10.0,
            }
        ],
        "services": [
            {
                "name": "http/nginx",
                "kind": "http",
                "running": True,
                "config_ok": True,
                "detail": "HTTP 200",
            },
            {
                "name": "php-fpm",
                "kind": "php",
                "running": True,
                "config_ok": None,
                "detail": "4 workers",
            },
        ],
        "pending_reboot": False,
        "ntp_synchronized": True,
        "clock_offset_ms": 3.0,
        "clock_error_ms": 1.0,
    }
    data.update(changes)
    return data


async def fleet_store(
    path: Path,
    *,
    servers: int = 2,
    sites_per_server: int = 2,
    client_quotas: dict[str, int] | None = None,
) -> Database:
    """Servers web1..N (a PHP platform each), sites s<i>.web<n>.example, client acme
    owning the first site of each server."""
    db = await open_store(path)
    names = [f"web{n}" for n in range(1, servers + 1)]
    inventory = [
        Server(name=n, address=f"127.0.0.{10 + i}", transport=Transport.SSH, root="/srv/cockpit")
        for i, n in enumerate(names)
    ]
    platforms = [
        Platform(name=f"php-{n}", server=n, type=PlatformType.PHP, root=f"/srv/cockpit/p-{n}")
        for n in names
    ]
    sites = [
        Site(
            domain=f"s{i}.{n}.example",
            platform=f"php-{n}",
            client="acme" if i == 0 else None,
            https="on",
        )
        for n in names
        for i in range(sites_per_server)
    ]
    async with db.write() as conn:
        await client_queries.insert_many(conn, [Client(name="acme", quotas=client_quotas or {})])
        await server_queries.insert_many(conn, inventory)
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, platforms, server_ids)
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients=await client_queries.ids(conn),
            servers=server_ids,
        )
        await site_queries.insert_many(conn, sites, refs)
    return db


async def all_healthy(db: Database, *, at: float = NOW) -> None:
    """Every server collected healthy now, every site answering 200 with a cert for 90 days."""
    async with db.write() as conn:
        for server in await server_queries.list_all(conn):
            await metrics.record_server(conn, server.name, at=at, reachable=True, data=healthy())
        domains = [s.domain for s in await site_queries.list_all(conn)]
        await metrics.record_site_probes(
            conn,
            [
                metrics.SiteProbe(
                    d,
                    probed=True,
                    http_status=200,
                    latency_ms=12.0,
                    tls_checked=True,
                    tls_expires_at=at + 90 * 86400,
                )
                for d in domains
            ],
            at=at,
        )


def config(store: Path, **status: int) -> Config:
    from cockpit.config import StatusSettings

    return Config(store=store, status=StatusSettings(**status))

"""Helpers of the store tests: a small but varied inventory, inserting it, child Pythons."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite

from cockpit.model import (
    Backup,
    BackupReason,
    Client,
    HttpsMode,
    Platform,
    PlatformType,
    Server,
    Service,
    ServiceKind,
    Site,
    SiteStatus,
    Transport,
)
from cockpit.store import Database
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Inventory:
    servers: list[Server] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    platforms: list[Platform] = field(default_factory=list)
    sites: list[Site] = field(default_factory=list)


def sample_inventory() -> Inventory:
    """Every kind of entity, with every optional field used somewhere and left out elsewhere."""
    servers = [
        Server(
            name="web1",
            address="192.0.2.10",
            port=2222,
            user="deploy",
            root="/srv/cockpit",
            environment="prod",
            ssh_options={
                "identity_file": "/root/.ssh/id_ed25519",
                "connect_timeout": 10,
                "sudo": True,
                "proxy_jump": "jump@bastion.example.com:2200",
            },
            services=(
                Service(ServiceKind.HTTP, "nginx", {"workers": 4, "http2": True}),
                Service(ServiceKind.DB, "mysql", {"version": "10.11"}),
                Service(ServiceKind.BACKUP, "restic"),
            ),
        ),
        Server(
            name="web2",
            address="web2.example.net",
            environment="staging",
            services=(Service(ServiceKind.HTTP, "apache"),),
        ),
        Server(
            name="db1",
            address="2001:db8::5",
            transport=Transport.LOCAL,
            root="/var/lib/cockpit",
            environment="prod",
            services=(Service(ServiceKind.DB, "pgsql", {"port": 5432}),),
        ),
        Server(name="bare", address="198.51.100.7"),
    ]
    clients = [
        Client(name="acme", contact="ops@acme.example", quotas={"disk_mb": 1000, "sites": 50}),
        Client(name="globex"),
        Client(name="initech", contact="it@initech.example"),
    ]
    platforms = [
        Platform(
            name="wp-prod",
            server="web1",
            type=PlatformType.WORDPRESS,
            root="/srv/cockpit/wp",
            release="6.5.2",
            locked=True,
        ),
        Platform(name="static1", server="web1", type=PlatformType.STATIC, root="/srv/cockpit/st"),
        Platform(
            name="d10",
            server="web2",
            type=PlatformType.DRUPAL,
            root="/var/lib/cockpit/d10",
            release="10.2.0",
        ),
        Platform(name="php-stage", server="web2", type="php", root="/var/lib/cockpit/php"),
    ]
    sites = [
        Site(
            domain="shop.acme.example",
            platform="wp-prod",
            client="acme",
            aliases=("www.shop.acme.example", "acme-shop.example", "*.shop.acme.example"),
            redirection="www.shop.acme.example",
            db_server="db1",
            https=HttpsMode.REQUIRED,
            status=SiteStatus.ENABLED,
        ),
        Site(domain="blog.acme.example", platform="wp-prod", client="acme", https=HttpsMode.ON),
        Site(
            domain="globex.example",
            platform="d10",
            client="globex",
            aliases=("www.globex.example",),
            redirection="globex.example",
            db_server="web1",
            status=SiteStatus.DISABLED,
        ),
        Site(
            domain="old.initech.example",
            platform="static1",
            client="initech",
            status=SiteStatus.DELETED,
        ),
        Site(domain="xn--bcher-kva.example", platform="php-stage"),  # bücher.example
    ]
    return Inventory(servers, clients, platforms, sites)


def sample_backups() -> list[Backup]:
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    return [
        Backup(
            site="shop.acme.example",
            location="/srv/backups/shop-1.tar.zst",
            size=123_456_789,
            sha256="a" * 64,
            created=base,
            server="web1",
        ),
        Backup(  # made on web2, where the site was before (a restore's safety backup)
            site="shop.acme.example",
            location="/srv/backups/shop-2",
            size=0,
            sha256="0123456789abcdef" * 4,
            created=base + timedelta(days=1, microseconds=250),
            backend="restic",
            server="web2",
            reason=BackupReason.SAFETY,
        ),
        Backup(
            site="globex.example",
            location="/srv/backups/globex-1.tar",
            size=42,
            sha256="f" * 64,
            created=base - timedelta(hours=3),
            server="web2",
            reason=BackupReason.DELETE,
        ),
    ]


async def insert_inventory(db: Database, inv: Inventory) -> None:
    """Insert a whole inventory in one write transaction, the way ``inventory apply`` does."""
    async with db.write() as conn:
        await server_queries.insert_many(conn, inv.servers)
        await client_queries.insert_many(conn, inv.clients)
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, inv.platforms, server_ids)
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients=await client_queries.ids(conn),
            servers=server_ids,
        )
        await site_queries.insert_many(conn, inv.sites, refs)


async def refs(conn: aiosqlite.Connection) -> RefIds:
    return RefIds(
        platforms=await platform_queries.ids(conn),
        clients=await client_queries.ids(conn),
        servers=await server_queries.ids(conn),
    )


def without_ids(items: list[object]) -> list[object]:
    """Entities compare without their ids already; this also checks every id was set."""
    for item in items:
        assert getattr(item, "id", None) is not None, f"{item!r} came back without an id"
    return items


async def check_search_index(db: Database) -> None:
    """The trigram index matches the sites table exactly (FTS5's own check, rank 1:
    against the content table too). It is a command written as an INSERT, so it runs
    on the writer; it changes nothing."""
    async with db.write() as conn:
        await conn.execute("INSERT INTO sites_fts (sites_fts, rank) VALUES ('integrity-check', 1)")


def python_env() -> dict[str, str]:
    """The environment for a child Python that must import this checkout's ``cockpit``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=python_env(),
        check=False,
    )

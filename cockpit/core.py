"""The one facade every face of Cockpit uses: the TUI, the CLI and the tests.

It lists and searches the inventory, applies and exports it, and (with the engine)
queues tasks and follows their logs. No screen or command runs SQL or SSH itself.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cockpit.config import Config
from cockpit.model import (
    Backup,
    Client,
    Platform,
    Server,
    ServerHealth,
    Site,
    Transport,
    ValidationError,
    validate_unix_name,
)
from cockpit.store import Database, NotFoundError, open_store
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.migrate import schema_version
from cockpit.store.sites import SORT_COLUMNS as SITE_SORT_COLUMNS
from cockpit.store.sites import SiteFilter

if TYPE_CHECKING:
    from cockpit.backends.hostkeys import HostKeyOffer
    from cockpit.backends.transport import Transport as Transport_
    from cockpit.backends.verify import ServerFacts
    from cockpit.engine import Batch, Engine, TaskState
    from cockpit.status.dashboard import Board, Charts, Series, SiteStats, Tile, TopRow
    from cockpit.status.evaluate import Report as StatusReport
    from cockpit.store.metrics import SiteQuota
    from cockpit.tasks.stats import CollectReport

__all__ = ["SITE_SORT_COLUMNS", "Cockpit", "SiteFilter", "SitePage", "local_server"]

LOCAL_SERVER_NAME = "localhost"


def local_server(data_dir: Path) -> Server:
    """This machine as a server: a local transport, run as the current user."""
    try:
        user = validate_unix_name(getpass.getuser())
    except (ValidationError, OSError, KeyError):
        user = "root" if os.geteuid() == 0 else "nobody"
    root = "/var/lib/cockpit" if os.geteuid() == 0 else str(data_dir / "localhost")
    return Server(
        name=LOCAL_SERVER_NAME,
        address="127.0.0.1",
        port=22,
        user=user,
        transport=Transport.LOCAL,
        root=root,
        environment="local",
    )


@dataclass(frozen=True, slots=True)
class SitePage:
    sites: list[Site]
    total: int
    offset: int


class Cockpit:
    """An open Cockpit: its config and its store."""

    def __init__(self, config: Config, db: Database, *, created: bool) -> None:
        self.config = config
        self.db = db
        self.created = created
        self._tasks: Engine | None = None

    @property
    def tasks(self) -> Engine:
        """The task engine: queue, follow, cancel and retry tasks (see cockpit.engine).

        Made on first use: it loads every task kind's plugin, which a command that never
        queues a task (``cockpit status``) should not pay for at start-up."""
        if self._tasks is None:
            from cockpit.engine import Engine

            self._tasks = Engine(self.db, self.config)
        return self._tasks

    @tasks.setter
    def tasks(self, engine: Engine) -> None:
        self._tasks = engine

    @classmethod
    async def open(cls, config: Config) -> Cockpit:
        """Open the store of ``config``; a new store gets this machine as its first server."""
        path = config.store
        db = await open_store(path, migrate=False)
        try:
            async with db.read() as conn:
                fresh = await schema_version(conn) == 0
            await db.migrate()
            if fresh:
                async with db.write() as conn:
                    if await server_queries.count(conn) == 0:
                        await server_queries.insert_many(conn, [local_server(path.parent)])
        except BaseException:
            await db.close()
            raise
        return cls(config, db, created=fresh)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Cockpit:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- servers ---------------------------------------------------------------------

    async def servers(self) -> list[Server]:
        async with self.db.read() as conn:
            return await server_queries.list_all(conn)

    async def server(self, name: str) -> Server | None:
        async with self.db.read() as conn:
            return await server_queries.get(conn, name)

    async def add_server(self, server: Server) -> None:
        async with self.db.write() as conn:
            await server_queries.insert_many(conn, [server])

    async def server_health(self, *, with_facts: bool = False) -> dict[str, ServerHealth]:
        """Each server's health as its last verify left it (``unknown`` before any)."""
        async with self.db.read() as conn:
            return await server_queries.health_all(conn, with_facts=with_facts)

    async def health_of(self, name: str) -> ServerHealth | None:
        async with self.db.read() as conn:
            return await server_queries.health_of(conn, name)

    async def verify_server(self, name: str) -> ServerFacts:
        """Connect to a server, record its facts and check each of its services.

        The outcome is kept in the store (the server's health and why), whatever it
        is; an unreachable server keeps the facts it had.
        """
        from cockpit.backends import transport_for
        from cockpit.engine.builtin import verify_and_record

        server = await self.server(name)
        if server is None:
            raise NotFoundError(f"no server {name}")
        transport = transport_for(server, self.config)
        try:
            return await verify_and_record(self.db, transport, server)
        finally:
            await transport.close()

    # -- host keys -------------------------------------------------------------------

    async def fetch_host_key(self, name: str) -> HostKeyOffer:
        """The host key server ``name`` presents (the SSH handshake only: nothing runs)
        and what the known_hosts files say of it: trusted, unknown or changed."""
        from cockpit.backends.hostkeys import fetch_offer

        server = await self.server(name)
        if server is None:
            raise NotFoundError(f"no server named {name!r}")
        return await fetch_offer(self.config, server)

    async def trust_host_key(self, offer: HostKeyOffer, *, hashed: bool = False) -> bool:
        """Record a fetched key in Cockpit's own known_hosts, once the admin confirmed it;
        False when it was trusted already. A changed key raises HostKeyError and nothing
        is written."""
        import asyncio

        from cockpit.backends.hostkeys import record_offer

        return await asyncio.to_thread(record_offer, self.config, offer, hashed=hashed)

    # -- platforms, clients ----------------------------------------------------------

    async def platforms(self, *, server: str | None = None) -> list[Platform]:
        async with self.db.read() as conn:
            return await platform_queries.list_all(conn, server=server)

    async def platform(self, name: str) -> Platform | None:
        async with self.db.read() as conn:
            return await platform_queries.get(conn, name)

    async def clients(self) -> list[Client]:
        async with self.db.read() as conn:
            return await client_queries.list_all(conn)

    async def add_platform(self, platform: Platform) -> None:
        """Add a platform (validated by the model) on a server of the inventory."""
        from cockpit.store.errors import ConflictError

        async with self.db.write() as conn:
            if await platform_queries.get(conn, platform.name) is not None:
                raise ConflictError(f"there is a platform named {platform.name} already")
            await platform_queries.insert_many(conn, [platform], await server_queries.ids(conn))

    async def add_site(self, site: Site, *, platform: Platform | None = None) -> None:
        """Add a site (validated by the model) and, in the same transaction, its
        platform when given (a single-site app: both made in one step) and its client
        when the inventory has none of that name."""
        from cockpit.store.errors import ConflictError

        async with self.db.write() as conn:
            if await site_queries.get(conn, site.domain) is not None:
                raise ConflictError(f"there is a site {site.domain} already")
            server_ids = await server_queries.ids(conn)
            if platform is not None:
                if platform.name != site.platform:
                    raise ValidationError("site.platform", "must name the platform added")
                if await platform_queries.get(conn, platform.name) is not None:
                    raise ConflictError(f"there is a platform named {platform.name} already")
                await platform_queries.insert_many(conn, [platform], server_ids)
            clients = await client_queries.ids(conn)
            if site.client is not None and site.client not in clients:
                await client_queries.insert_many(conn, [Client(site.client)])
                clients = await client_queries.ids(conn)
            refs = site_queries.RefIds(
                platforms=await platform_queries.ids(conn), clients=clients, servers=server_ids
            )
            await site_queries.insert_many(conn, [site], refs)

    async def remove_site(self, domain: str) -> None:
        """Take a site out of the inventory. Refused while it is installed (a task
        ever succeeded on it and it is not marked deleted), while a task on it is
        queued or running, and while the store holds backups of it."""
        from cockpit.model import SiteStatus
        from cockpit.store import tasks as task_queries
        from cockpit.store.errors import ConflictError

        async with self.db.write() as conn:
            site = await site_queries.get(conn, domain)
            if site is None:
                raise NotFoundError(f"no site {domain}")
            pending = await task_queries.list_tasks(
                conn, states=("queued", "running"), target_kind="site", target_key=domain, limit=1
            )
            if pending:
                raise ConflictError(f"{domain} has a task queued or running; wait for it")
            if site.status is not SiteStatus.DELETED:
                done = await task_queries.list_tasks(
                    conn,
                    states=("succeeded", "unknown", "interrupted"),
                    target_kind="site",
                    target_key=domain,
                    limit=1,
                )
                if done:
                    raise ConflictError(f"{domain} is installed (or may be): run site.delete first")
            if await backup_queries.list_for_site(conn, domain):
                raise ConflictError(
                    f"the store holds backups of {domain}: delete them (site.backup-delete) "
                    "before removing the site"
                )
            await site_queries.delete_many(conn, [domain])

    # -- sites -----------------------------------------------------------------------

    async def sites_page(
        self,
        where: SiteFilter | None = None,
        *,
        sort: str = "domain",
        descending: bool = False,
        offset: int = 0,
        limit: int = 100,
    ) -> SitePage:
        """One page of sites with the total that matches, in one read snapshot."""
        where = where or SiteFilter()
        async with self.db.read() as conn:
            total = await site_queries.count(conn, where)
            rows = await site_queries.page(
                conn, where, sort=sort, descending=descending, offset=offset, limit=limit
            )
        return SitePage(rows, total, offset)

    async def site(self, domain: str) -> Site | None:
        async with self.db.read() as conn:
            return await site_queries.get(conn, domain)

    async def sites_of(self, domains: Sequence[str]) -> dict[str, Site]:
        """The sites of ``domains`` that exist, by domain, in one read snapshot (a live
        list reads the rows on screen again with it)."""
        found: dict[str, Site] = {}
        async with self.db.read() as conn:
            for domain in dict.fromkeys(domains):
                site = await site_queries.get(conn, domain)
                if site is not None:
                    found[domain] = site
        return found

    async def backups(self, site: str | None = None) -> Sequence[Backup]:
        async with self.db.read() as conn:
            if site is None:
                return await backup_queries.list_all(conn)
            return await backup_queries.list_for_site(conn, site)

    async def backup(self, backup_id: int) -> Backup | None:
        """One backup by its id (None: no such backup, deleted meanwhile)."""
        async with self.db.read() as conn:
            return await backup_queries.get(conn, backup_id)

    async def backups_page(
        self,
        where: backup_queries.BackupFilter | None = None,
        *,
        sort: str = "created",
        descending: bool = True,
        offset: int = 0,
        limit: int = 100,
        total: int | None = None,
    ) -> backup_queries.BackupPage:
        """One page of every site's backups (newest first unless sorted otherwise) with
        how many ``where`` lets through, in one read snapshot. A ``total`` already known
        (the next page of the same filter) is not counted again: with a filter, counting
        reads every backup."""
        where = where or backup_queries.BackupFilter()
        async with self.db.read() as conn:
            if total is None:
                total = await backup_queries.count(conn, where)
            rows = await backup_queries.page(
                conn, where, sort=sort, descending=descending, offset=offset, limit=limit
            )
        return backup_queries.BackupPage(rows, total, offset)

    # -- tasks (beyond the engine's own API, ``self.tasks``) ------------------------------

    async def task_states(self, ids: Sequence[int]) -> dict[int, TaskState]:
        """The state of each task of ``ids`` that exists: one cheap read, for live views."""
        from cockpit.engine import TaskState
        from cockpit.store import tasks as task_queries

        async with self.db.read() as conn:
            found = await task_queries.states(conn, list(ids))
        return {task_id: TaskState(state) for task_id, state in found.items()}

    async def batch_info(self, batch_id: int) -> Batch | None:
        """A batch's label, who queued it and when, without its task ids (which
        ``tasks.batch()`` reads: 100,000 rows for a batch on every site)."""
        from cockpit.engine import Batch
        from cockpit.store import tasks as task_queries

        async with self.db.read() as conn:
            row = await task_queries.get_batch(conn, batch_id)
        if row is None:
            return None
        return Batch(
            id=int(row["id"]),
            label=str(row["label"]),
            queued_by=str(row["queued_by"]),
            created_at=float(row["created_at"]),
        )

    async def cancel_tasks(self, ids: Sequence[int]) -> tuple[int, int]:
        """Cancel many tasks (the rest of a batch), in transactions of 500: queued ones leave
        the queue, running ones are asked to stop (their worker kills them within seconds);
        finished ones are left alone. How many were cancelled, and how many asked."""
        from cockpit.engine.queue import current_user
        from cockpit.store import tasks as task_queries

        why = f"cancelled by {current_user()}"
        cancelled = asked = 0
        for chunk in task_queries.chunks(sorted(set(ids))):  # the worker writes in between
            async with self.db.write() as conn:
                found = await task_queries.states(conn, chunk)
                for task_id, state in sorted(found.items()):
                    if state == "queued":
                        cancelled += await task_queries.cancel_queued(conn, task_id, why)
                    elif state == "running":
                        asked += await task_queries.request_cancel(conn, task_id)
        return cancelled, asked

    # -- statistics and on-call status (cockpit.status) ----------------------------------

    async def status(
        self,
        *,
        since: float | None = None,
        now: float | None = None,
        timed_out: Mapping[str, str] | None = None,
        sites: bool = True,
    ) -> StatusReport:
        """The fleet's on-call status from the store (no connection to any server), as of
        ``now`` (default: the current time); ``timed_out``: the servers a refresh could
        not finish with, and why (each becomes an UNKNOWN problem); ``sites`` False: the
        report without a line per site (the problems and counts only, much cheaper)."""
        from cockpit.status.evaluate import evaluate

        return await evaluate(
            self.db, self.config, since=since, now=now, timed_out=timed_out, sites=sites
        )

    async def refresh_stats(self, *, timeout: float = 30.0) -> list[CollectReport]:
        """Collect every server's statistics now (site probes and access logs included),
        within ``timeout`` seconds in all; what did not answer keeps its old statistics."""
        from cockpit.engine.transports import TransportFactory
        from cockpit.tasks.stats import collect_many

        factory = TransportFactory(self.config)
        transports: dict[str, Transport_] = {}

        def transport_for(server: Server) -> Transport_:
            if server.name not in transports:
                transports[server.name] = factory(server)
            return transports[server.name]

        try:
            return await collect_many(
                self.db,
                await self.servers(),
                transport_for,
                timeout=timeout,
                limit=self.config.concurrency.global_limit,
            )
        finally:
            for transport in transports.values():
                await transport.close()
            await factory.close()

    async def stats_series(
        self, scope: str, key: str, metric: str, window: str | int = "1h", *, points: int = 120
    ) -> Series:
        """One metric of a server, site, client or platform over ``1h``, ``24h``, ``7d``…"""
        from cockpit.status.dashboard import series

        return await series(self.db, self.config, scope, key, metric, window, points=points)

    async def stats_top(
        self, what: str, *, window: str | int = "24h", limit: int = 10
    ) -> list[TopRow]:
        """Top-N: requests, bytes, s5xx, growth, certificates, disks."""
        from cockpit.status.dashboard import top

        return await top(self.db, what, window=window, limit=limit, config=self.config)

    async def stats_tiles(self, report: StatusReport | None = None) -> list[Tile]:
        """OK/WARNING/CRITICAL/UNKNOWN counts per server, client and platform."""
        from cockpit.status.dashboard import tiles

        return tiles(report if report is not None else await self.status())

    async def site_stats(self, domain: str) -> SiteStats | None:
        from cockpit.status.dashboard import site_stats

        return await site_stats(self.db, domain)

    async def stats_board(
        self, window: str = "1h", *, limit: int = 5, points: int = 60, now: float | None = None
    ) -> Board:
        """A dashboard at one moment: the fleet's state, tiles, sparklines (load, requests,
        5xx, bandwidth) over ``window`` and the top-N tables (``now`` pins the clock)."""
        from cockpit.status.dashboard import board

        return await board(self.db, self.config, window=window, limit=limit, points=points, now=now)

    async def stats_charts(
        self,
        scope: str,
        key: str,
        window: str = "1h",
        *,
        points: int = 60,
        now: float | None = None,
    ) -> Charts:
        """The charts of one server, site, client or platform over ``1h``, ``24h``, ``7d``."""
        from cockpit.status.dashboard import charts

        return await charts(self.db, self.config, scope, key, window=window, points=points, now=now)

    async def site_quotas(self) -> list[SiteQuota]:
        from cockpit.store import metrics

        async with self.db.read() as conn:
            return await metrics.site_quotas(conn)

    async def set_site_quota(self, quota: SiteQuota) -> None:
        """Set a site's own limits (all None: remove them)."""
        from cockpit.store import metrics

        async with self.db.write() as conn:
            if not await metrics.set_site_quota(conn, quota):
                raise NotFoundError(f"no site {quota.domain}")

"""Helpers of the engine tests: stores with servers, platforms and sites; configs; child
worker processes; reading what happened on the targets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cockpit.config import Concurrency, Config, SshDefaults
from cockpit.model import Platform, PlatformType, Server, Site, Transport
from cockpit.store import Database, open_store
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORKER_PROC = HERE / "worker_proc.py"


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), str(HERE), env.get("PYTHONPATH", "")) if p
    )
    return env


def local_server(name: str, root: Path) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    return Server(
        name=name, address="127.0.0.1", transport=Transport.LOCAL, root=str(root), user="root"
    )


def bed_server(host: Any) -> Server:
    """A Cockpit server for a test-bed host (sshd on 127.0.0.K as cockpit-tb)."""
    return Server(
        name=host.name,
        address=host.address,
        port=host.port,
        user=host.user,
        transport=Transport.SSH,
        root=str(host.root),
        environment="test",
    )


def bed_config(store: Path, fleet: Any, *, global_limit: int = 16, per_server: int = 4) -> Config:
    return Config(
        store=store,
        ssh=SshDefaults(
            identity_files=(fleet.client_key,),
            known_hosts=fleet.known_hosts,
            connect_timeout=5.0,
            keepalive_interval=2.0,
            keepalive_count=2,
        ),
        concurrency=Concurrency(global_limit=global_limit, per_server=per_server),
    )


def local_config(store: Path, *, global_limit: int = 16, per_server: int = 4) -> Config:
    return Config(
        store=store, concurrency=Concurrency(global_limit=global_limit, per_server=per_server)
    )


async def add_inventory(
    db: Database, servers: Sequence[Server], sites_per_server: int, *, prefix: str = "site"
) -> list[str]:
    """One platform per server and ``sites_per_server`` sites on it; the site domains."""
    platforms = [
        Platform(name=f"p-{s.name}", server=s.name, type=PlatformType.STATIC, root=f"{s.root}/p")
        for s in servers
    ]
    sites = [
        Site(domain=f"{prefix}{i}.{s.name}.example", platform=f"p-{s.name}")
        for s in servers
        for i in range(sites_per_server)
    ]
    async with db.write() as conn:
        await server_queries.insert_many(conn, servers)
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, platforms, server_ids)
        refs = RefIds(platforms=await platform_queries.ids(conn), clients={}, servers=server_ids)
        await site_queries.insert_many(conn, sites, refs)
    return [s.domain for s in sites]


async def new_store(path: Path) -> Database:
    return await open_store(path)


def config_json(config: Config) -> str:
    return json.dumps(
        {
            "store": str(config.store),
            "identity_files": [str(p) for p in config.ssh.identity_files],
            "known_hosts": str(config.ssh.known_hosts),
            "global_limit": config.concurrency.global_limit,
            "per_server": config.concurrency.per_server,
        }
    )


def start_worker(
    config: Config,
    *,
    lease: float = 30.0,
    locked: bool = True,
    reattach: float = 60.0,
    recheck: float = 2.0,
    log: Path | None = None,
    extra: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """A worker in a child process (with the test kinds); ``locked``: through the store's
    worker lock, as ``cockpit worker`` runs."""
    argv = [
        sys.executable,
        str(WORKER_PROC),
        "--config-json",
        config_json(config),
        "--lease",
        str(lease),
        "--reattach",
        str(reattach),
        "--recheck",
        str(recheck),
        *(["--locked"] if locked else []),
        *extra,
    ]
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        argv,
        env=python_env(),
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=out,
        start_new_session=True,
    )


def alive_pids(pids: Sequence[int]) -> list[int]:
    """The pids that are still running processes (zombies count as gone)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2 :][0] != "Z":
            alive.append(pid)
    return alive

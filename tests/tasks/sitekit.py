"""Helpers of the site and platform task tests: two test-bed hosts, each with a real
nginx master and a real php-fpm master from a private tree under the host's root, the
machine's MariaDB and PostgreSQL, and an in-process worker running real tasks.

The hosts' web servers and php-fpm masters are started once per session (the test
process is root on the same machine, so it starts them directly); Cockpit itself only
ever reaches them over SSH, through the engine. Every test uses fresh random domains,
so the Unix users and databases it makes never meet another test's; ``SiteBed.forget``
removes whatever a test's sites left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed import Fleet, TestHost

from cockpit.backends.hostkeys import KnownHosts
from cockpit.backends.platforms.wordpress import WordpressPlatform
from cockpit.backends.ssh import SshPool
from cockpit.backends.verify import lay_out
from cockpit.config import Concurrency, Config, SshDefaults
from cockpit.engine import Engine, LogLine, Task
from cockpit.engine.runner import RunOptions
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import (
    DbEngine,
    Platform,
    Server,
    Service,
    Site,
    derive_db_name,
    derive_db_user,
    derive_unix_user,
)
from cockpit.store import Database, open_store
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds

WORDPRESS_SOURCE = "/usr/share/wordpress"

DB_SETTINGS: dict[str, dict[str, str | int | bool]] = {
    "mysql": {
        "host": "127.0.0.1",
        "port": 3306,
        "sudo": False,
        "user_hosts": "localhost,127.0.0.1",
        "site_host": "127.0.0.1",
    },
    "pgsql": {
        "host": "127.0.0.1",
        "port": 5432,
        "sudo": False,
        "os_user": "",
        "admin_user": "root",
        "site_host": "127.0.0.1",
    },
}

NGINX_CONF = """\
user www-data;
worker_processes 1;
pid {conf}/run/nginx.pid;
error_log {conf}/logs/error.log;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {conf}/logs/access.log;
    client_body_temp_path {conf}/tmp/body;
    proxy_temp_path {conf}/tmp/proxy;
    fastcgi_temp_path {conf}/tmp/fastcgi;
    uwsgi_temp_path {conf}/tmp/uwsgi;
    scgi_temp_path {conf}/tmp/scgi;
    server_names_hash_bucket_size 128;
    server {{
        listen {address}:{port} default_server;
        server_name _;
        return 444;
    }}
    include {conf}/sites-enabled/*;
}}
"""

FPM_CONF = """\
[global]
pid = {conf}/php-fpm.pid
error_log = {conf}/error.log
daemonize = yes
include = {conf}/pool.d/*.conf
"""

# php-fpm will not start without a pool: this one idles until a site's pool joins it.
IDLE_POOL = """\
[cockpit-idle]
user = www-data
group = www-data
listen = {conf}/idle.sock
pm = ondemand
pm.max_children = 1
"""


def php_fpm_binary() -> str:
    found = sorted(Path("/usr/sbin").glob("php-fpm[0-9]*"))
    assert found, "php-fpm is missing (scripts/lib.sh installs php-fpm)"
    return str(found[-1])


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, timeout=120)


def _wait_listening(address: str, port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {address}:{port}") from None
            time.sleep(0.05)


def _kill_pidfile(path: Path) -> None:
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class HostBed:
    """One test host with its web server and php-fpm, and the Cockpit server for it."""

    host: TestHost
    root: Path
    http_port: int
    https_port: int

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def address(self) -> str:
        return self.host.address

    @property
    def nginx_dir(self) -> Path:
        return self.root / "nginx"

    @property
    def fpm_dir(self) -> Path:
        return self.root / "php-fpm"

    @property
    def wordpress_root(self) -> str:
        return f"{self.root}/platforms/wordpress"

    def http_settings(self) -> dict[str, str | int | bool]:
        conf = self.nginx_dir
        fpm = self.fpm_dir
        return {
            "main_conf": f"{conf}/nginx.conf",
            "sites_dir": f"{conf}/sites-available",
            "enabled_dir": f"{conf}/sites-enabled",
            "log_dir": f"{conf}/logs",
            "listen_address": self.address,
            "http_port": self.http_port,
            "https_port": self.https_port,
            "probe_timeout": 10,
            "certificates": "selfsigned",
            "php_fpm_binary": php_fpm_binary(),
            "php_fpm_conf": f"{fpm}/php-fpm.conf",
            "php_fpm_pool_dir": f"{fpm}/pool.d",
            "php_fpm_pid": f"{fpm}/php-fpm.pid",
            "php_fpm_reload": "signal",
        }

    def server(
        self,
        *,
        root: str | None = None,
        name: str | None = None,
        mysql: dict[str, str | int | bool] | None = None,
    ) -> Server:
        return Server(
            name=name or self.name,
            address=self.address,
            port=self.host.port,
            user=self.host.user,
            root=root or str(self.root),
            environment="test",
            services=(
                Service("http", "nginx", self.http_settings()),
                Service("db", "mysql", {**DB_SETTINGS["mysql"], **(mysql or {})}),
                Service("db", "pgsql", DB_SETTINGS["pgsql"]),
            ),
        )

    def start(self) -> None:
        conf = self.nginx_dir
        for sub in ("sites-available", "sites-enabled", "logs", "run", "tmp"):
            (conf / sub).mkdir(parents=True, exist_ok=True)
        (conf / "nginx.conf").write_text(
            NGINX_CONF.format(conf=conf, address=self.address, port=self.http_port)
        )
        (conf / "fastcgi_params").write_bytes(Path("/etc/nginx/fastcgi_params").read_bytes())
        _run("nginx", "-c", str(conf / "nginx.conf"))
        _wait_listening(self.address, self.http_port)
        fpm = self.fpm_dir
        (fpm / "pool.d").mkdir(parents=True, exist_ok=True)
        (fpm / "php-fpm.conf").write_text(FPM_CONF.format(conf=fpm))
        (fpm / "pool.d" / "cockpit-idle.conf").write_text(IDLE_POOL.format(conf=fpm))
        _run(php_fpm_binary(), "-y", str(fpm / "php-fpm.conf"))
        deadline = time.monotonic() + 15
        while not (fpm / "php-fpm.pid").exists():
            assert time.monotonic() < deadline, "php-fpm did not start"
            time.sleep(0.05)

    def fpm_alive(self) -> bool:
        try:
            os.kill(int((self.fpm_dir / "php-fpm.pid").read_text().strip()), 0)
        except (OSError, ValueError):
            return False
        return True

    def ensure_running(self) -> None:
        """Start php-fpm again if a test left it dead (so one failure does not spread).

        A reload (SIGUSR2) re-executes the master, which rewrites its pid file: wait for
        it before concluding that php-fpm is gone, or a second master would find the
        first one's sockets taken."""
        deadline = time.monotonic() + 10
        while not self.fpm_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        if not self.fpm_alive():
            (self.fpm_dir / "php-fpm.pid").unlink(missing_ok=True)
            _run(php_fpm_binary(), "-y", str(self.fpm_dir / "php-fpm.conf"))

    def stop(self) -> None:
        _run("nginx", "-c", str(self.nginx_dir / "nginx.conf"), "-s", "quit", check=False)
        _kill_pidfile(self.nginx_dir / "run" / "nginx.pid")
        _kill_pidfile(self.fpm_dir / "php-fpm.pid")

    # -- what a test looks at (the hosts are on this machine) -------------------------

    def vhost_file(self, domain: str) -> Path:
        return self.nginx_dir / "sites-available" / f"{domain}.conf"

    def vhost_link(self, domain: str) -> Path:
        return self.nginx_dir / "sites-enabled" / f"{domain}.conf"

    def pool_file(self, domain: str) -> Path:
        return self.fpm_dir / "pool.d" / f"{derive_unix_user(domain)}.conf"

    def site_dir(self, domain: str, root: str | None = None) -> Path:
        return Path(root or self.root) / "sites" / domain

    def record_file(self, domain: str, root: str | None = None) -> Path:
        return Path(root or self.root) / "run" / "sites" / f"{domain}.json"

    def get(self, domain: str, path: str = "/") -> Response:
        return http_get(self.address, self.http_port, domain, path)

    async def aget(self, domain: str, path: str = "/", *, https: bool = False) -> Response:
        port = self.https_port if https else self.http_port
        return await asyncio.to_thread(http_get, self.address, port, domain, path, tls=https)

    async def settled(
        self, domain: str, status: int, path: str = "/", timeout: float = 20
    ) -> Response:
        """The answer once it has ``status``, or the last one after ``timeout`` seconds.

        For checks right after a rollback that restores a vhost without a probe: a
        signalled nginx reload returns before its new workers take over, so the old
        configuration may answer for a moment (longer on a loaded machine)."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.aget(domain, path)
            if response.status == status or time.monotonic() > deadline:
                return response
            await asyncio.sleep(0.1)

    def reload_nginx(self) -> None:
        _run("nginx", "-c", str(self.nginx_dir / "nginx.conf"), "-s", "reload", check=False)

    def reload_fpm(self) -> None:
        with contextlib.suppress(OSError, ValueError, ProcessLookupError):
            os.kill(int((self.fpm_dir / "php-fpm.pid").read_text().strip()), signal.SIGUSR2)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def http_get(
    address: str, port: int, host: str, path: str = "/", timeout: float = 20, *, tls: bool = False
) -> Response:
    """One GET to a loopback address with ``Host: host`` (and SNI with ``tls``, the
    certificate not checked: the test bed's are self-signed); the whole answer."""
    assert address.startswith("127."), address
    raw = socket.create_connection((address, port), timeout=timeout)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = ctx.wrap_socket(raw, server_hostname=host)
    with raw as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
            "User-Agent: cockpit-tests\r\n\r\n".encode()
        )
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head:
        return Response(0, {}, b"")  # closed without an answer (nginx's 444)
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        out = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            out += rest[:size]
            body = rest[size + 2 :]
        body = out
    return Response(int(lines[0].split()[1]), headers, body)


def new_domain(prefix: str = "s") -> str:
    """A fresh domain no other test (or parallel session) uses."""
    return f"{prefix}{secrets.token_hex(4)}.example"


@dataclass
class SiteBed:
    """The session's two hosts; what tests share."""

    fleet: Fleet
    hosts: list[HostBed]
    domains: set[str] = field(default_factory=set)

    @property
    def a(self) -> HostBed:
        return self.hosts[0]

    @property
    def b(self) -> HostBed:
        return self.hosts[1]

    def config(self, tmp_path: Path) -> Config:
        return Config(
            store=tmp_path / "data" / "cockpit.db",
            ssh=SshDefaults(
                identity_files=(self.fleet.client_key,),
                known_hosts=self.fleet.known_hosts,
                connect_timeout=10.0,
            ),
            concurrency=Concurrency(global_limit=8, per_server=4),
        )

    def domain(self, prefix: str = "s") -> str:
        name = new_domain(prefix)
        self.domains.add(name)
        return name

    def forget(self, domains: Sequence[str]) -> None:
        """Remove what sites of these domains may have left (after a test)."""
        for domain in domains:
            for host in self.hosts:
                for path in (
                    host.vhost_file(domain),
                    host.vhost_link(domain),
                    host.pool_file(domain),
                ):
                    path.unlink(missing_ok=True)
                _run("rm", "-rf", "--", str(host.site_dir(domain)), check=False)
                host.record_file(domain).unlink(missing_ok=True)
            for engine in DbEngine:
                drop_database(
                    engine, derive_db_name(domain, engine), derive_db_user(domain, engine)
                )
        for host in self.hosts:
            host.reload_nginx()
            host.reload_fpm()
        # the pools are gone with the reload: now their users can go
        for domain in domains:
            user = derive_unix_user(domain)
            for _ in range(50):
                if not unix_user_exists(user):
                    break
                _run("pkill", "-KILL", "-u", user, check=False)
                if _run("userdel", user, check=False).returncode == 0:
                    break
                time.sleep(0.1)


def mysql(sql: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["mariadb", "--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", "-B"],
        input=sql,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
    )


def psql(
    sql: str, *, check: bool = True, database: str = "postgres"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", "5432", "-U", "root", "-d", database,
         "-v", "ON_ERROR_STOP=1"],
        input=sql,
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        cwd="/",
    )  # fmt: skip


def drop_database(engine: DbEngine, database: str, user: str) -> None:
    if engine is DbEngine.MYSQL:
        mysql(
            f"DROP DATABASE IF EXISTS `{database}`; DROP USER IF EXISTS '{user}'@'localhost';"
            f" DROP USER IF EXISTS '{user}'@'127.0.0.1';",
            check=False,
        )
    else:
        psql(
            f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE); DROP ROLE IF EXISTS "{user}";',
            check=False,
        )


def mysql_has(database: str, user: str) -> tuple[bool, bool]:
    db = mysql(
        f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{database}';"
    ).stdout.strip()
    us = mysql(f"SELECT COUNT(*) FROM mysql.user WHERE User = '{user}';").stdout.strip()
    return db != "0", us != "0"


def pgsql_has(database: str, user: str) -> tuple[bool, bool]:
    db = psql(f"SELECT count(*) FROM pg_database WHERE datname = '{database}';").stdout.strip()
    us = psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{user}';").stdout.strip()
    return db != "0", us != "0"


def unix_user_exists(name: str) -> bool:
    return _run("getent", "passwd", name, check=False).returncode == 0


def make_bed(fleet: Fleet) -> SiteBed:
    hosts = [fleet.fresh_root(h) for h in fleet.take(2)]
    port = 24000 + (fleet.port - 2200) * 2
    beds = [HostBed(h, h.root, port, port + 1) for h in hosts]
    started: list[HostBed] = []
    try:
        for bed in beds:
            bed.start()
            started.append(bed)
        asyncio.run(_prepare(fleet, beds))
    except BaseException:
        for bed in started:
            bed.stop()
        raise
    return SiteBed(fleet, beds)


def make_pool(fleet: Fleet) -> SshPool:
    defaults = SshDefaults(identity_files=(fleet.client_key,))
    return SshPool(defaults, known_hosts=KnownHosts(fleet.known_hosts, extra=[]), ssh_config=[])


async def _prepare(fleet: Fleet, beds: list[HostBed]) -> None:
    """Cockpit's layout on each host, and a WordPress codebase on the first one."""
    pool = make_pool(fleet)
    try:
        for bed in beds:
            server = bed.server()
            transport = pool.transport(server)
            await lay_out(transport, server)
        first = beds[0]
        platform = Platform("wp", first.name, "wordpress", first.wordpress_root)
        await WordpressPlatform(platform).install_codebase(
            pool.transport(first.server()), WORDPRESS_SOURCE
        )
    finally:
        await pool.close()


def close_bed(bed: SiteBed) -> None:
    bed.forget(sorted(bed.domains))
    for host in bed.hosts:
        host.stop()


# -- a store and a worker per test -----------------------------------------------------


@dataclass
class Cockpit:
    """A test's store, engine and in-process worker."""

    db: Database
    config: Config
    engine: Engine
    worker: Worker

    async def run(
        self, kind: str, target: str, args: dict[str, Any] | None = None, *, timeout: float = 240
    ) -> Task:
        batch = await self.engine.queue(kind, [target], args)
        self.worker.wake()
        (task,) = await self.engine.wait(batch.task_ids, poll=0.1, timeout=timeout)
        return task

    async def log(self, task: Task) -> list[LogLine]:
        return await self.engine.log(task.id, limit=100000)

    async def log_text(self, task: Task) -> str:
        return "\n".join(line.text for line in await self.log(task))

    async def site(self, domain: str) -> Site | None:
        async with self.db.read() as conn:
            return await site_queries.get(conn, domain)

    async def platform(self, name: str) -> Platform | None:
        async with self.db.read() as conn:
            return await platform_queries.get(conn, name)

    async def add(
        self,
        servers: Sequence[Server] = (),
        platforms: Sequence[Platform] = (),
        sites: Sequence[Site] = (),
    ) -> None:
        async with self.db.write() as conn:
            if servers:
                await server_queries.insert_many(conn, servers)
            server_ids = await server_queries.ids(conn)
            if platforms:
                await platform_queries.insert_many(conn, platforms, server_ids)
            if sites:
                refs = RefIds(
                    platforms=await platform_queries.ids(conn), clients={}, servers=server_ids
                )
                await site_queries.insert_many(conn, sites, refs)


@contextlib.asynccontextmanager
async def cockpit(bed: SiteBed, tmp_path: Path, **worker_args: Any) -> AsyncIterator[Cockpit]:
    config = bed.config(tmp_path)
    db = await open_store(config.store)
    options = WorkerOptions(
        global_limit=8,
        per_server=4,
        poll=0.05,
        cancel_poll=0.2,
        maintenance_every=5.0,
        lease=60.0,
        grace=5.0,
        run=RunOptions(),
    )
    worker = Worker(db, config, options=options, **worker_args)
    runner = asyncio.create_task(worker.run())
    try:
        yield Cockpit(db, config, Engine(db, config), worker)
    finally:
        worker.stop()
        await asyncio.wait_for(runner, 60)
        await db.close()

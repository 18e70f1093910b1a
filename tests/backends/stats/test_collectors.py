"""The collectors for real: on test-bed hosts over SSH through the engine (and one taken
down), and on a private nginx + php-fpm whose sites get real requests (5xx from PHP),
probed and read back per site; Cockpit's rendered vhosts pass nginx's config test."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from testbed import Fleet

from cockpit.backends.local import LocalTransport
from cockpit.backends.services.http import Vhost
from cockpit.backends.services.nginx import NginxService
from cockpit.backends.stats.server import collect_server
from cockpit.config import Config, SshDefaults
from cockpit.engine import Engine, TaskState
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Platform, PlatformType, Server, Service, Site, Transport
from cockpit.status.evaluate import State, evaluate
from cockpit.store import Database, metrics, open_store
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds
from cockpit.tasks.stats import collect_server_stats

# the web and database beds of the service tests, reused as they are
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "services"))
from svckit import (
    TESTBED_DB_SETTINGS,
    WebBed,
    bed_ports,
    make_pool,
    server_for,
    start_bed,
    stop_bed,
)
from testbed import MariaDBAdmin, MariaDBFactory, PostgresAdmin, PostgresFactory, TestHost

from cockpit.backends.services.certs import SelfSigned
from cockpit.backends.stats.sites import database_sizes, probe_sites, targets_for

pytestmark = pytest.mark.testbed


class Expect:
    """What the logs must add up to per site: requests, bytes, 1xx..5xx (the client
    counts the bytes it received; nginx's $bytes_sent must agree)."""

    def __init__(self) -> None:
        self.by_vhost: dict[str, list[int]] = {}

    def add(self, vhost: str, response: Any) -> None:
        row = self.by_vhost.setdefault(vhost, [0] * 7)
        row[0] += 1
        row[1] += response.size
        row[1 + response.status // 100] += 1


async def _inventory(
    db: Database, servers: list[Server], sites: list[Site], platforms: list[Platform]
) -> None:
    async with db.write() as conn:
        await server_queries.insert_many(conn, servers)
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, platforms, server_ids)
        refs = RefIds(platforms=await platform_queries.ids(conn), clients={}, servers=server_ids)
        await site_queries.insert_many(conn, sites, refs)


@asynccontextmanager
async def _worker(db: Database, config: Config, engine: Engine) -> AsyncIterator[Worker]:
    options = WorkerOptions(poll=0.05, cancel_poll=0.1, maintenance_every=60.0, schedules=False)
    worker = Worker(db, config, registry=engine.registry, options=options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 60)


async def test_collect_on_testbed_hosts_through_the_engine(fleet: Fleet, tmp_path: Path) -> None:
    hosts = [fleet.fresh_root(h) for h in fleet.take(2)]
    closed = 1  # nothing listens on port 1: the web server counts as down
    servers = [
        Server(
            name=h.name,
            address=h.address,
            port=h.port,
            user=h.user,
            transport=Transport.SSH,
            root=str(h.root),
            environment="test",
            services=(
                Service("db", "mysql", {"host": "127.0.0.1", "port": 3306}),
                Service("http", "nginx", {"probe_address": h.address, "http_port": closed}),
            ),
        )
        for h in hosts
    ]
    db = await open_store(tmp_path / "c.db")
    config = Config(
        store=db.path,
        ssh=SshDefaults(
            identity_files=(fleet.client_key,), known_hosts=fleet.known_hosts, connect_timeout=5.0
        ),
    )
    try:
        await _inventory(db, servers, [], [])
        engine = Engine(db, config)
        async with _worker(db, config, engine):
            batch = await engine.queue("stats.collect", [h.name for h in hosts])
            tasks = await engine.wait(list(batch.task_ids), timeout=120)
            assert [t.state for t in tasks] == [TaskState.SUCCEEDED] * 2, [t.result for t in tasks]
            report = await evaluate(db, config)
            assert report.counts["servers_reachable"] == 2
            line = {s.name: s for s in report.servers}[hosts[0].name]
            assert line.cpus and line.cpus >= 1 and line.load1 is not None
            assert line.disks and all(0 < used <= 100 for _m, used, _i in line.disks)
            assert line.clock_offset_ms is not None and abs(line.clock_offset_ms) < 1000
            services = {name: running for name, running, _ok in line.services}
            assert services["db/mysql"] is True  # the test bed's MariaDB answers ping
            assert services["http/nginx"] is False
            down = {p.subject for p in report.problems if p.check == "service.down"}
            assert down == {f"{h.name}:http/nginx" for h in hosts}
            # one host down: its collection fails, the status says unreachable, with why
            with fleet.stopped(hosts[1]):
                batch = await engine.queue("stats.collect", [hosts[1].name])
                [task] = await engine.wait(list(batch.task_ids), timeout=120)
            assert task.state is TaskState.FAILED
            assert f"{hosts[1].name} is unreachable: " in task.result
            report = await evaluate(db, config)
        unreachable = [p for p in report.problems if p.check == "server.unreachable"]
        assert [p.subject for p in unreachable] == [hosts[1].name]
        assert report.state is State.CRITICAL and report.exit_code == 2
        # the collector's own failure is not listed again as a failed task
        assert not [p for p in report.problems if p.check == "task.failed"]
    finally:
        await db.close()


async def test_server_collector_reads_what_the_host_says(fleet: Fleet) -> None:
    host = fleet.fresh_root(fleet.take(1)[0])
    server = Server(
        name=host.name,
        address=host.address,
        port=host.port,
        user=host.user,
        transport=Transport.SSH,
        root=str(host.root),
    )
    from cockpit.backends import transport_for
    from cockpit.backends.ssh import SshPool

    config = Config(
        ssh=SshDefaults(identity_files=(fleet.client_key,), known_hosts=fleet.known_hosts)
    )
    pool = SshPool(config)
    try:
        sample = await collect_server(transport_for(server, config, pool=pool), server)
    finally:
        await pool.close()
    assert sample.reachable, sample.error
    # the same machine: its own view of itself
    cpus = int(
        subprocess.run(
            ["getconf", "_NPROCESSORS_ONLN"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert sample.cpus == cpus
    total_kb = int(Path("/proc/meminfo").read_text().split()[1])
    assert sample.mem_total_mb == total_kb // 1024
    root = next(d for d in sample.disks if d["mount"] == "/")
    df = subprocess.run(["df", "-P", "-k", "/"], capture_output=True, text=True, check=True)
    used, avail = (int(x) for x in df.stdout.splitlines()[1].split()[2:4])
    assert root["used_mb"] == pytest.approx(used / 1024, rel=0.01)
    assert root["size_mb"] == pytest.approx((used + avail) / 1024, rel=0.01)
    assert sample.pending_reboot is (
        Path("/run/reboot-required").exists() or Path("/var/run/reboot-required").exists()
    )


async def test_sites_probed_and_access_logs_read_per_site(nginx_bed: Any, tmp_path: Path) -> None:
    (nginx_bed.www / "index.html").write_text("home\n")
    root = tmp_path / "cockpit"
    (root / "sites" / "site-a.test").mkdir(parents=True)
    (root / "sites" / "site-a.test" / "upload.bin").write_bytes(b"x" * 300_000)
    nginx = Service(
        "http",
        "nginx",
        {
            "main_conf": str(nginx_bed.conf),
            "probe_address": nginx_bed.address,
            "http_port": nginx_bed.port,
            "log_dir": str(nginx_bed.logs),
        },
    )
    web = Server(
        name="web",
        address="127.0.0.1",
        transport=Transport.LOCAL,
        root=str(root),
        user="root",
        services=(nginx,),
    )
    dead = Server(
        name="dead",
        address="127.0.0.1",
        transport=Transport.LOCAL,
        root=str(tmp_path / "dead"),
        user="root",
        services=(Service("http", "nginx", {"probe_address": nginx_bed.address, "http_port": 1}),),
    )
    platforms = [
        Platform(name="pw", server="web", type=PlatformType.PHP, root=str(root / "p")),
        Platform(name="pd", server="dead", type=PlatformType.STATIC, root=str(root / "d")),
    ]
    sites = [
        Site(domain="site-a.test", platform="pw", aliases=("www.site-a.test",)),
        Site(domain="site-b.test", platform="pw"),
        Site(domain="gone.test", platform="pd"),
    ]
    db = await open_store(tmp_path / "c.db")
    try:
        await _inventory(db, [web, dead], sites, platforms)
        expect = Expect()
        for host, path, want, times, vhost in [
            ("site-a.test", "/a.html", 200, 5, None),
            ("site-a.test", "/app.php?code=500", 500, 3, None),  # 5xx from PHP
            ("site-a.test", "/app.php?code=503&sleep=200", 503, 1, None),
            ("site-a.test", "/moved", 301, 2, None),
            ("www.site-a.test", "/a.html", 200, 2, "site-a.test"),  # an alias
            ("site-b.test", "/b.bin", 200, 4, None),
            ("site-b.test", "/missing", 404, 3, None),
            ("unknown.test", "/a.html", 200, 1, "unknown.test"),  # no site of that name
        ]:
            for _ in range(times):
                r = nginx_bed.get(host, path)
                assert r.status == want
                expect.add(vhost or host, r)
        transport = LocalTransport(web)
        # without the probes first (they are requests too, logged before the logs are read)
        report = await collect_server_stats(db, transport, web, sites=False)
        # unattributed: unknown.test, and the running check (by address, no site's name)
        assert report.reachable and report.unattributed == 2, report
        async with (
            db.read() as conn,
            conn.execute(
                "SELECT s.domain, sum(m.requests), sum(m.bytes), 0, sum(m.s2xx), sum(m.s3xx),"
                " sum(m.s4xx), sum(m.s5xx) FROM stat_site_m m JOIN sites s ON s.id = m.site_id"
                " WHERE m.requests > 0 GROUP BY s.domain ORDER BY s.domain"
            ) as cursor,
        ):
            got = {row[0]: list(row[1:]) for row in await cursor.fetchall()}
        del expect.by_vhost["unknown.test"]
        assert got == expect.by_vhost
        # again, with the probes: nothing is counted twice, each probe once
        report = await collect_server_stats(db, transport, web, deep=True)
        assert report.sites_probed == 2 and report.probe_failures == 0
        async with db.read() as conn:
            async with conn.execute("SELECT sum(requests), sum(s2xx) FROM stat_site_m") as cursor:
                assert tuple(await cursor.fetchone()) == (20 + 2, 11 + 2)
            now = await metrics.sites_now(conn)
        probes = {s.domain: s for s in now}
        a = probes["site-a.test"]
        assert a.http_status == 200 and a.latency_ms is not None and a.failing_since is None
        assert a.disk_bytes is not None and a.disk_bytes >= 300_000
        assert probes["site-b.test"].http_status == 200
        # the dead server's site: no web server answers for it
        await collect_server_stats(db, LocalTransport(dead), dead)
        status = await evaluate(db, Config(store=db.path))
        failing = [p for p in status.problems if p.check == "site.probe"]
        assert [p.subject for p in failing] == ["gone.test"]
        assert "does not answer" in failing[0].reason
        assert {p.subject for p in status.problems if p.check == "service.down"} == {
            "dead:http/nginx"
        }
        assert status.exit_code == 2
    finally:
        await db.close()


def test_rendered_vhosts_of_two_sites_pass_nginx_config_test(tmp_path: Path) -> None:
    """Each vhost defines its own log format: two sites on one nginx do not clash."""
    server = Server(name="web", address="127.0.0.1", transport=Transport.LOCAL, root="/srv/c")
    plugin = NginxService(
        server, Service("http", "nginx", {"log_dir": str(tmp_path / "logs"), "http_port": 18080})
    )
    (tmp_path / "logs").mkdir()
    (tmp_path / "sites").mkdir()
    for domain in ("one.example", "two.example"):
        rendered = plugin.render(Vhost(Site(domain=domain, platform="p"), docroot="/srv/c/www"))
        (tmp_path / "sites" / f"{domain}.conf").write_text(rendered.text)
        assert f"access_log {tmp_path}/logs/{domain}.access.log cockpit-{domain};" in rendered.text
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n    include {tmp_path}/sites/*.conf;\n}}\n"
    )
    test = subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(tmp_path)], capture_output=True, text=True
    )
    assert test.returncode == 0, test.stderr


@asynccontextmanager
async def _https_bed(testhost: TestHost, fleet: Fleet) -> AsyncIterator[WebBed]:
    ports = bed_ports(fleet)
    pool = make_pool(testhost)
    try:
        bed = await start_bed(testhost, pool, "nginx", ports.nginx_http, ports.nginx_https)
        try:
            yield bed
        finally:
            await stop_bed(bed)
    finally:
        await pool.close()


async def test_certificate_days_left_read_from_a_real_https_vhost(
    testhost: TestHost, fleet: Fleet
) -> None:
    domain = "shop.stats.test"
    async with _https_bed(testhost, fleet) as bed:
        http = bed.http
        docroot = await bed.docroot(domain)
        await http.apply_site(bed.transport, Vhost(Site(domain=domain, platform="p"), docroot))
        ensured = await SelfSigned(http).ensure(bed.transport, domain, [domain])
        assert ensured.issued and ensured.info.not_after is not None
        site = Site(domain=domain, platform="p", https="on")
        paths = http.certificate_paths(domain)
        await http.apply_site(bed.transport, Vhost(site, docroot, certificate=paths))
        targets, note = targets_for(bed.server, [site], deep=True)
        assert note == "" and [t.tls_port for t in targets] == [bed.https_port]
        before = time.time()
        [probe] = await probe_sites(bed.transport, bed.server, targets)
    assert probe.probed and probe.http_status == 200, probe
    assert probe.tls_checked and probe.tls_error == "" and probe.tls_expires_at is not None
    # the very certificate issued, as the web server presents it
    assert probe.tls_expires_at == pytest.approx(ensured.info.not_after.timestamp(), abs=1)
    assert 800 < (probe.tls_expires_at - before) / 86400 <= 825


async def test_a_failing_config_test_is_reported(testhost: TestHost, fleet: Fleet) -> None:
    async with _https_bed(testhost, fleet) as bed:
        good = await collect_server(bed.transport, bed.server)
        settings = bed.http.settings
        broken = f"{settings['enabled_dir']}/broken.conf"
        await bed.transport.upload(b"server { no_such_directive on; }\n", broken, mode=0o644)
        try:
            bad = await collect_server(bed.transport, bed.server)
        finally:
            await bed.transport.run_script('rm -f -- "$1"', [broken], sudo=True)
    assert good.reachable and bad.reachable, (good.error, bad.error)
    [ok] = [s for s in good.services if s.name == "http/nginx"]
    assert ok.running and ok.config_ok is True
    [failing] = [s for s in bad.services if s.name == "http/nginx"]
    assert failing.running and failing.config_ok is False
    assert "no_such_directive" in failing.detail, failing.detail


async def test_database_sizes_and_postgres_running_on_the_real_servers(
    testhost: TestHost,
    mariadb_admin: MariaDBAdmin,
    mariadb_db: MariaDBFactory,
    postgres_admin: PostgresAdmin,
    postgres_db: PostgresFactory,
) -> None:
    my, pg = mariadb_db(), postgres_db()
    mariadb_admin.execute(
        f"CREATE TABLE `{my.name}`.t (b LONGBLOB) ENGINE=InnoDB;"
        f"INSERT INTO `{my.name}`.t VALUES (REPEAT('x', 3000000));"
        f"ANALYZE TABLE `{my.name}`.t;"
    )
    postgres_admin.execute(
        "CREATE TABLE t (b text);"
        "INSERT INTO t SELECT md5(g::text) FROM generate_series(1, 50000) g;",
        database=pg.name,
    )
    server = server_for(
        testhost,
        Service("db", "mysql", TESTBED_DB_SETTINGS["mysql"]),
        Service("db", "pgsql", TESTBED_DB_SETTINGS["pgsql"]),
    )
    pool = make_pool(testhost)
    try:
        transport = pool.transport(server)
        sizes = await database_sizes(transport, server)
        sample = await collect_server(transport, server)
        nowhere = server_for(
            testhost, Service("db", "pgsql", {**TESTBED_DB_SETTINGS["pgsql"], "port": 1})
        )
        down = await collect_server(pool.transport(nowhere), nowhere)
    finally:
        await pool.close()
    my_truth = int(
        mariadb_admin.execute(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables"
            f" WHERE table_schema = '{my.name}'"
        ).strip()
    )
    pg_truth = int(postgres_admin.execute(f"SELECT pg_database_size('{pg.name}')").strip())
    assert sizes[("mysql", my.name)] == my_truth and my_truth >= 3_000_000
    assert sizes[("pgsql", pg.name)] == pg_truth and pg_truth > 2_000_000
    running = {s.name: s.running for s in sample.services if s.kind == "db"}
    assert running == {"db/mysql": True, "db/pgsql": True}, sample.services
    [pgsql] = [s for s in sample.services if s.name == "db/pgsql"]
    assert "accepting connections" in pgsql.detail
    # nothing listens on port 1: the same check says PostgreSQL is not running
    assert [(s.name, s.running) for s in down.services if s.kind == "db"] == [("db/pgsql", False)]

"""`cockpit status` at fleet scale: 100 servers and 10,000 sites in the store.

    python -m bench status --no-write

A store is generated under /tmp (deleted at the end): 100 servers with two mounts each,
100 PHP platforms, 500 clients with quotas, 10,000 sites (a third over HTTPS), each
server's latest collection (a few services down, disks full, clocks off, one
unreachable), every site's probe and certificate (some failing, some expiring), a
month of traffic per site, seven days of hourly disk history (some filling), 2 days of
per-minute server samples, and 20,000 finished tasks (some failed). Then the real
command runs as on-call runs it (a new process each time: start-up, store, evaluation,
output), in each output format; and the evaluation alone, in process: as text and JSON
need it (problems and counts: the sites a check could flag, not every site) and with the
line of every site (as ``--prometheus`` and the dashboard's tiles need it).

Target: `cockpit status` under 1 s.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import Section, table  # noqa: E402

SERVERS = 100
SITES = 10_000
CLIENTS = 500
TASKS = 20_000
REPEAT = 7
HOUR = 3600


async def build(path: Path) -> dict[str, float]:
    from cockpit.config import Config
    from cockpit.model import Client, HttpsMode, Platform, PlatformType, Server, Site, Transport
    from cockpit.store import clients as client_queries
    from cockpit.store import metrics, open_store
    from cockpit.store import platforms as platform_queries
    from cockpit.store import servers as server_queries
    from cockpit.store import sites as site_queries
    from cockpit.store.sites import RefIds
    from cockpit.tasks.stats import rollup_and_prune

    rng = random.Random(7)
    now = time.time()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    db = await open_store(path)
    servers = [
        Server(
            name=f"web{n:03d}",
            address=f"10.0.{n // 250}.{n % 250 + 1}",
            transport=Transport.SSH,
            root="/srv/cockpit",
        )
        for n in range(SERVERS)
    ]
    platforms = [
        Platform(
            name=f"php-{s.name}",
            server=s.name,
            type=PlatformType.PHP,
            root=f"/srv/cockpit/platforms/php-{s.name}",
        )
        for s in servers
    ]
    clients = [
        Client(name=f"client{c:03d}", quotas={"bandwidth_mb_month": 2000, "disk_mb": 5000})
        for c in range(CLIENTS)
    ]
    sites = [
        Site(
            domain=f"site{i:05d}.{servers[i % SERVERS].name}.example",
            platform=platforms[i % SERVERS].name,
            client=clients[i % CLIENTS].name,
            https=HttpsMode.ON if i % 3 == 0 else HttpsMode.OFF,
        )
        for i in range(SITES)
    ]
    async with db.write() as conn:
        await client_queries.insert_many(conn, clients)
        await server_queries.insert_many(conn, servers)
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, platforms, server_ids)
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients=await client_queries.ids(conn),
            servers=server_ids,
        )
        await site_queries.insert_many(conn, sites, refs)
    timings["inventory"] = time.perf_counter() - started

    started = time.perf_counter()
    async with db.write() as conn:
        for n, server in enumerate(servers):
            if n == 17:
                await metrics.record_server(
                    conn, server.name, at=now, reachable=False, error="connect timed out"
                )
                continue
            disks = [
                {
                    "mount": "/",
                    "size_mb": 50_000.0,
                    "used_mb": 20_000.0 + 300 * (n % 100),
                    "inodes_pct": 12.0,
                },
                {
                    "mount": "/srv",
                    "size_mb": 500_000.0,
                    "used_mb": 480_000.0 if n % 25 == 0 else 200_000.0 + 1000 * n,
                    "inodes_pct": 30.0,
                },
            ]
            services = [
                {
                    "name": "http/nginx",
                    "kind": "http",
                    "running": n % 40 != 3,
                    "config_ok": n % 33 != 5,
                    "detail": "HTTP 200",
                },
                {
                    "name": "php-fpm",
                    "kind": "php",
                    "running": True,
                    "config_ok": None,
                    "detail": "8 workers",
                },
                {
                    "name": "db/mysql",
                    "kind": "db",
                    "running": True,
                    "config_ok": None,
                    "detail": "mysqld is alive",
                },
            ]
            data = {
                "load1": rng.uniform(0, 8),
                "load5": 1.0,
                "load15": 1.0,
                "cpus": 8,
                "uptime_s": 1e6,
                "mem_total_mb": 32_000,
                "mem_available_mb": 12_000,
                "swap_total_mb": 2000,
                "swap_free_mb": 1500,
                "disks": disks,
                "services": services,
                "pending_reboot": n % 10 == 0,
                "ntp_synchronized": True,
                "clock_offset_ms": 2500.0 if n == 42 else 4.0,
                "clock_error_ms": 2.0,
            }
            await metrics.record_server(conn, server.name, at=now, reachable=True, data=data)
        probes = []
        for i, site in enumerate(sites):
            status = 500 if i % 997 == 0 else None if i % 1999 == 0 else 200
            probes.append(
                metrics.SiteProbe(
                    site.domain,
                    probed=True,
                    http_status=status,
                    latency_ms=rng.uniform(5, 300) if status else None,
                    error="" if status else "Connection timed out",
                    tls_checked=site.https.value != "off",
                    tls_expires_at=now + (5 if i % 301 == 0 else 60) * 86400,
                    disk_bytes=rng.randint(1, 400) * 2**20,
                    db_bytes=rng.randint(1, 200) * 2**20,
                )
            )
        await metrics.record_site_probes(conn, probes, at=now)
        minute = int(now) // 60 * 60
        await metrics.record_traffic(
            conn,
            [
                metrics.TrafficSample(
                    s.domain,
                    minute,
                    rng.randint(100, 100_000),
                    rng.randint(1, 300) * 2**20,
                    s2xx=100,
                    s5xx=i % 7,
                )
                for i, s in enumerate(sites)
            ],
        )
        # seven days of hourly disk history (a few filling), two days of minutes of load
        hour = int(now) // HOUR * HOUR
        rows = []
        for n, server_id in enumerate(sorted(server_ids.values())):
            for h in range(168):
                t = hour - h * HOUR
                growth = 400.0 if n % 20 == 1 else 5.0
                rows.append((server_id, "/srv", t, 1, 500_000.0, 300_000.0 - growth * h, 30.0))
                rows.append((server_id, "/", t, 1, 50_000.0, 20_000.0, 12.0))
        await conn.executemany(
            "INSERT OR REPLACE INTO stat_disk_h VALUES (?, ?, ?, ?, ?, ?, ?)", rows
        )
        await conn.executemany(
            "INSERT OR IGNORE INTO stat_server_m (server_id, t, load1, mem_pct, swap_pct,"
            " disk_pct) VALUES (?, ?, ?, 60.0, 20.0, 80.0)",
            [
                (server_id, minute - m * 60, rng.uniform(0, 4))
                for server_id in server_ids.values()
                for m in range(2880)
            ],
        )
        await conn.execute(
            "INSERT INTO batches (label, queued_by, created_at) VALUES ('b', 'b', 0)"
        )
        await conn.executemany(
            "INSERT INTO tasks (kind, target_kind, target_key, server, state, idempotent,"
            " created_at, started_at, finished_at, result, batch_id)"
            " VALUES (?, 'site', ?, ?, ?, 1, ?, ?, ?, ?, 1)",
            [
                (
                    "site.backup" if t % 2 else "site.verify",
                    sites[t % SITES].domain,
                    servers[t % SERVERS].name,
                    "failed" if t % 211 == 0 else "succeeded",
                    now - t * 5,
                    now - t * 5,
                    now - t * 5 + 3,
                    "done",
                )
                for t in range(TASKS)
            ],
        )
    await rollup_and_prune(db, Config(store=path), now=now)
    timings["statistics"] = time.perf_counter() - started
    await db.close()
    return timings


def _time_command(store: Path, *args: str) -> tuple[list[float], subprocess.CompletedProcess[str]]:
    cockpit = str(Path(sys.executable).parent / "cockpit")
    walls = []
    done = None
    for _ in range(REPEAT):
        started = time.perf_counter()
        done = subprocess.run(
            [cockpit, "--store", str(store), "status", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        walls.append(time.perf_counter() - started)
    assert done is not None
    return walls, done


async def _in_process(store: Path, *, sites: bool) -> list[float]:
    from cockpit.config import Config
    from cockpit.status.evaluate import evaluate
    from cockpit.store import open_store

    db = await open_store(store)
    try:
        out = []
        for _ in range(REPEAT):
            started = time.perf_counter()
            await evaluate(db, Config(store=store), sites=sites)
            out.append(time.perf_counter() - started)
        return out
    finally:
        await db.close()


def _ms(samples: list[float]) -> str:
    return (
        f"{statistics.median(samples) * 1000:.0f} ms "
        f"({min(samples) * 1000:.0f}–{max(samples) * 1000:.0f})"
    )


def run() -> Section:
    work = Path(tempfile.mkdtemp(prefix="cockpit-bench-status-"))
    try:
        store = work / "cockpit.db"
        timings = asyncio.run(build(store))
        size_mb = store.stat().st_size / 1e6
        rows = []
        text_walls, text = _time_command(store)
        rows.append(["`cockpit status`", _ms(text_walls), f"exit {text.returncode}"])
        json_walls, as_json = _time_command(store, "--json")
        document = json.loads(as_json.stdout)
        rows.append(
            [
                "`cockpit status --json`",
                _ms(json_walls),
                f"{len(as_json.stdout) / 1e3:.0f} kB, {len(document['problems'])} problems",
            ]
        )
        prom_walls, prom = _time_command(store, "--prometheus")
        rows.append(
            [
                "`cockpit status --prometheus`",
                _ms(prom_walls),
                f"{len(prom.stdout) / 1e6:.1f} MB, {prom.stdout.count(chr(10)):,} lines",
            ]
        )
        help_walls, _ = _time_command(store, "--help")
        rows.append(["`cockpit status --help` (start-up only)", _ms(help_walls), ""])
        lean = asyncio.run(_in_process(store, sites=False))
        rows.append(["evaluation in process: problems and counts (text, JSON)", _ms(lean), ""])
        full = asyncio.run(_in_process(store, sites=True))
        rows.append(
            ["evaluation in process, with every site's line (Prometheus, tiles)", _ms(full), ""]
        )
        counts = document["counts"]
        verdict = "met" if statistics.median(text_walls) < 1.0 else "NOT met"
        body = (
            f"A generated store ({size_mb:.0f} MB; built in {timings['inventory']:.1f} s + "
            f"{timings['statistics']:.1f} s) with {counts['servers']} servers, "
            f"{counts['sites']:,} sites, {CLIENTS} clients with quotas, 7 days of hourly disk "
            f"history, 2 days of per-minute server samples and {TASKS:,} tasks. Each command is "
            f"a new process (start-up included), median of {REPEAT} (min–max). The status "
            f"found {counts['critical']} critical, {counts['warning']} warning and "
            f"{counts['unknown']} unknown problems (first line: `{text.stdout.splitlines()[0][:90]}…`).\n\n"
            + table(["command", "wall time", "output"], rows)
            + f"\n\nTarget `cockpit status` < 1 s: {verdict} "
            f"({statistics.median(text_walls) * 1000:.0f} ms).\n"
        )
        return Section("status", "cockpit status at fleet scale", body)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(run().body)

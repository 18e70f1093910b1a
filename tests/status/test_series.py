"""Downsampling keeps the store bounded: minutes roll up into exact hours, the rollup is
idempotent, retention drops what is older (configurable), and the scheduled task does
it; the dashboard's series, top-N and tiles read what was recorded."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from statuskit import NOW, all_healthy, config, fleet_store, healthy
from test_evaluate import probe_500

from cockpit.config import Config, StatsSettings
from cockpit.core import Cockpit
from cockpit.engine import Engine, TaskState
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.status.dashboard import series, tiles, top
from cockpit.status.evaluate import evaluate
from cockpit.store import Database, metrics
from cockpit.tasks.stats import rollup_and_prune

HOUR = 3600
DAY = 86400
T0 = int(NOW) // HOUR * HOUR


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def _traffic(db: Database, domain: str, minutes: range, per_minute: int, rt: float) -> None:
    async with db.write() as conn:
        await metrics.record_traffic(
            conn,
            [
                metrics.TrafficSample(
                    domain,
                    m,
                    per_minute,
                    per_minute * 1000,
                    s2xx=per_minute - 1,
                    s5xx=1,
                    p50_ms=rt,
                    p95_ms=rt * 3,
                )
                for m in minutes
            ],
        )


async def test_minutes_roll_up_into_exact_hours_and_retention_drops_the_old(
    tmp_path: Path,
) -> None:
    db = await fleet_store(tmp_path / "c.db")
    site = "s0.web1.example"
    try:
        # three hours of minutes, 3 days ago, and the current hour; a minute delivered
        # in two parts adds up
        old = range(T0 - 3 * DAY, T0 - 3 * DAY + 3 * HOUR, 60)
        await _traffic(db, site, old, 10, 20.0)
        await _traffic(db, site, range(T0, T0 + 30 * 60, 60), 4, 10.0)
        await _traffic(db, site, range(T0, T0 + 60, 60), 6, 30.0)
        async with db.write() as conn:
            for minutes in range(0, 30, 5):
                await metrics.record_server(
                    conn,
                    "web1",
                    at=T0 + minutes * 60,
                    reachable=True,
                    data=healthy(load1=float(minutes)),
                )
        assert rows(db.path, "SELECT count(*) FROM stat_dirty")[0][0] == 3 + 1 + 2
        cfg = Config(store=db.path, stats=StatsSettings(minute_hours=48, hour_days=2))
        result = await rollup_and_prune(db, cfg, now=T0 + 1800)
        assert result.hours == 6
        hours = rows(
            db.path,
            "SELECT t, requests, bytes, s2xx, s5xx, p50_ms, p95_ms FROM stat_site_h ORDER BY t",
        )
        # the old hours are past the 2-day retention of hours: gone; the current one exact
        assert hours == [
            (
                T0,
                30 * 4 + 6,
                (30 * 4 + 6) * 1000,
                30 * 3 + 5,
                31,
                pytest.approx((10.0 * 4 * 29 + (10.0 * 4 + 30.0 * 6)) / 126),
                90.0,
            )
        ]
        # minutes older than 48 h are gone, the recent ones stay
        assert rows(db.path, "SELECT min(t), count(*) FROM stat_site_m") == [(T0, 30)]
        assert rows(db.path, "SELECT count(*) FROM stat_dirty") == [(0,)]
        server_h = rows(db.path, "SELECT n, load1, load1_max FROM stat_server_h")
        assert server_h == [(6, pytest.approx(12.5), 25.0)]
        # the month's traffic counted everything that arrived, whatever was pruned
        month = rows(db.path, "SELECT month, requests FROM stat_site_month ORDER BY month")
        assert sum(r[1] for r in month) == 3 * 60 * 10 + 126
        # idempotent: nothing dirty, nothing changes
        again = await rollup_and_prune(db, cfg, now=T0 + 1800)
        assert again.hours == 0 and again.minutes_pruned == 0
        assert rows(db.path, "SELECT t, requests FROM stat_site_h") == [(T0, 126)]
        # a late part of an hour makes it dirty again; the rollup recomputes it whole
        await _traffic(db, site, range(T0 + 40 * 60, T0 + 41 * 60, 60), 74, 10.0)
        await rollup_and_prune(db, cfg, now=T0 + 1800)
        assert rows(db.path, "SELECT t, requests FROM stat_site_h") == [(T0, 200)]
    finally:
        await db.close()


async def test_the_scheduled_rollup_task_runs_in_the_worker(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await _traffic(db, "s0.web1.example", range(T0, T0 + 600, 60), 3, 5.0)
        cfg = Config(store=db.path)
        engine = Engine(db, cfg)
        assert "stats.rollup" in engine.registry and "stats.collect" in engine.registry
        batch = await engine.queue("stats.rollup", ["store"])
        options = WorkerOptions(poll=0.05, maintenance_every=60.0, schedules=False)
        worker = Worker(db, cfg, registry=engine.registry, options=options)
        import asyncio

        running = asyncio.create_task(worker.run())
        try:
            [task] = await engine.wait(list(batch.task_ids), timeout=30)
        finally:
            worker.stop()
            await asyncio.wait_for(running, 30)
        assert task.state is TaskState.SUCCEEDED, task.result
        assert task.result.startswith("1 hours rolled up")
        assert rows(db.path, "SELECT t, requests FROM stat_site_h") == [(T0, 30)]
        schedules = {s.name: s for s in await engine.schedules()}
        assert schedules["watch-rollup"].kind == "stats.rollup"
        assert schedules["watch-collect"].cron == "* * * * *"
    finally:
        await db.close()


async def _probe_fails(db: Database, domain: str) -> None:
    async with db.write() as conn:
        await metrics.record_site_probes(
            conn, [metrics.SiteProbe(domain, probed=True, http_status=503)], at=NOW
        )


async def test_series_top_and_tiles(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await all_healthy(db)
        await probe_500(db)
        await _traffic(db, "s0.web1.example", range(T0 - 50 * 60, T0 + 10 * 60, 60), 10, 5.0)
        await _traffic(db, "s1.web2.example", range(T0 - 50 * 60, T0 + 10 * 60, 60), 2, 5.0)
        cfg = config(db.path)
        now = T0 + 9 * 60 + 30  # the last minute of data is the current one
        hour = await series(
            db, cfg, "site", "s0.web1.example", "requests", "1h", points=60, now=now
        )
        assert hour.step == 60 and len(hour.points) == 60
        assert sum(v or 0 for v in hour.values) == 60 * 10
        client = await series(db, cfg, "client", "acme", "requests", "1h", points=12, now=now)
        assert client.step == 300 and len(client.points) == 12
        assert sum(v or 0 for v in client.values) == 60 * 10  # acme owns s0.* only
        server = await series(db, cfg, "server", "web2", "s5xx", "1h", points=60, now=now)
        assert sum(v or 0 for v in server.values) == 60
        async with db.write() as conn:
            await metrics.record_server(conn, "web1", at=now - 120, reachable=True, data=healthy())
        load = await series(db, cfg, "server", "web1", "load1", "1h", points=60, now=now)
        assert load.values[-3:] == [0.5, None, None]
        await rollup_and_prune(db, cfg, now=now)
        week = await series(
            db, cfg, "site", "s0.web1.example", "requests", "7d", points=168, now=now
        )
        assert week.step == HOUR and len(week.points) == 168
        assert sum(v or 0 for v in week.values) == 600
        with pytest.raises(ValueError, match="known"):
            await series(db, cfg, "site", "s0.web1.example", "nonsense", "1h", now=now)
        busiest = await top(db, "requests", window="24h", limit=3, config=cfg, now=now)
        assert [(r.key, r.value) for r in busiest] == [
            ("s0.web1.example", 600.0),
            ("s1.web2.example", 120.0),
        ]
        certs = await top(db, "certificates", window="24h", limit=2, config=cfg, now=now)
        assert len(certs) == 2 and certs[0].value == pytest.approx(90 - (now - NOW) / DAY, abs=0.01)
        report = await evaluate(db, cfg, now=now)
        by = {(t.kind, t.name): t.counts for t in tiles(report)}
        assert by[("server", "web1")] == {"OK": 2, "WARNING": 0, "CRITICAL": 1, "UNKNOWN": 0}
        assert by[("platform", "php-web1")]["CRITICAL"] == 1
        assert by[("client", "acme")] == {"OK": 2, "WARNING": 0, "CRITICAL": 0, "UNKNOWN": 0}
        # The same tiles from the counts of sites, without the line of every site (as the
        # dashboard reads them): acme's own site failing too, moved out of its OK.
        await _probe_fails(db, "s0.web2.example")
        with_sites = await evaluate(db, cfg, now=now)
        counted = await evaluate(db, cfg, now=now, sites=False, groups=True)
        assert counted.sites == [] and counted.groups is not None
        assert [t.to_json() for t in tiles(counted)] == [t.to_json() for t in tiles(with_sites)]
        by = {(t.kind, t.name): t.counts for t in tiles(counted)}
        assert by[("client", "acme")] == {"OK": 1, "WARNING": 0, "CRITICAL": 1, "UNKNOWN": 0}
        assert by[("server", "web2")] == {"OK": 2, "WARNING": 0, "CRITICAL": 1, "UNKNOWN": 0}
        with pytest.raises(ValueError, match="tiles need"):
            tiles(await evaluate(db, cfg, now=now, sites=False))
    finally:
        await db.close()


async def test_core_api_for_a_dashboard(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    await db.close()
    async with await Cockpit.open(Config(store=tmp_path / "c.db")) as cockpit:
        await all_healthy(cockpit.db, at=time.time())
        report = await cockpit.status()
        assert report.exit_code == 0
        assert [t.name for t in await cockpit.stats_tiles(report) if t.kind == "server"] == [
            "web1",
            "web2",
        ]
        stats = await cockpit.site_stats("s0.web1.example")
        assert stats is not None and stats.site.http_status == 200 and stats.last_backup is None
        assert (await cockpit.stats_series("server", "web1", "mem_pct", "24h")).points
        await cockpit.set_site_quota(metrics.SiteQuota("s0.web1.example", disk_mb=5))
        assert [q.disk_mb for q in await cockpit.site_quotas()] == [5]
        from cockpit.store import NotFoundError

        with pytest.raises(NotFoundError):
            await cockpit.set_site_quota(metrics.SiteQuota("nosuch.example", disk_mb=5))

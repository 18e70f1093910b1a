"""Each status condition, recorded in a real store as the collectors record it, gives its
check, its reason and its Nagios exit code; the worst state wins in the documented order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from statuskit import NOW, all_healthy, config, fleet_store, healthy

from cockpit.status.evaluate import State, evaluate
from cockpit.store import Database, metrics
from cockpit.store import tasks as task_queries

Setup = Callable[[Database], Awaitable[None]]


async def _server(db: Database, name: str, **data: object) -> None:
    async with db.write() as conn:
        await metrics.record_server(conn, name, at=NOW, reachable=True, data=healthy(**data))


async def unreachable(db: Database) -> None:
    async with db.write() as conn:
        await metrics.record_server(
            conn, "web1", at=NOW, reachable=False, error="connection refused"
        )


async def stale(db: Database) -> None:
    async with db.write() as conn:
        await metrics.record_server(conn, "web2", at=NOW - 3600, reachable=True, data=healthy())


async def service_down(db: Database) -> None:
    services = healthy()["services"]
    services[0] = {**services[0], "running": False, "detail": "HTTP 000"}
    await _server(db, "web1", services=services)


async def php_down(db: Database) -> None:
    services = healthy()["services"]
    services[1] = {**services[1], "running": False}
    await _server(db, "web1", services=services)


async def config_failing(db: Database) -> None:
    services = healthy()["services"]
    services[0] = {**services[0], "config_ok": False, "detail": "unknown directive"}
    await _server(db, "web1", services=services)


async def reboot(db: Database) -> None:
    await _server(db, "web1", pending_reboot=True)


async def clock_warn(db: Database) -> None:
    await _server(db, "web1", clock_offset_ms=-2500.0)


async def clock_crit(db: Database) -> None:
    await _server(db, "web1", clock_offset_ms=45000.0)


async def clock_slow_connection(db: Database) -> None:
    # a cold connection took 5 s: the midpoint is 2.5 s after the server read its clock
    await _server(db, "web1", clock_offset_ms=2500.0, clock_error_ms=2500.0)


async def clock_off_beyond_the_error(db: Database) -> None:
    await _server(db, "web1", clock_offset_ms=-4000.0, clock_error_ms=2500.0)


def _disk(used: float, inodes: float = 10.0) -> list[dict[str, object]]:
    return [
        {
            "mount": "/srv",
            "filesystem": "/dev/vdb",
            "type": "ext4",
            "size_mb": 1000.0,
            "used_mb": used,
            "inodes_pct": inodes,
        }
    ]


async def disk_warn(db: Database) -> None:
    await _server(db, "web1", disks=_disk(920.0))


async def disk_crit(db: Database) -> None:
    await _server(db, "web1", disks=_disk(990.0))


async def inodes_crit(db: Database) -> None:
    await _server(db, "web1", disks=_disk(100.0, inodes=97.5))


async def disk_filling(db: Database) -> None:
    # 10 MB an hour for two days, 400 of 1000 MB used now: full in 2.5 days
    async with db.write() as conn:
        for hours in range(48, -1, -1):
            used = 400.0 - 10.0 * hours
            await metrics.record_server(
                conn, "web1", at=NOW - hours * 3600, reachable=True, data=healthy(disks=_disk(used))
            )
        await metrics.rollup(conn)


async def disk_filling_fast(db: Database) -> None:
    # 10 MB an hour, 800 of 1000 MB used now (80 %, under the full threshold): 20 hours
    async with db.write() as conn:
        for hours in range(48, -1, -1):
            used = 800.0 - 10.0 * hours
            await metrics.record_server(
                conn, "web1", at=NOW - hours * 3600, reachable=True, data=healthy(disks=_disk(used))
            )
        await metrics.rollup(conn)


async def disk_shrinking(db: Database) -> None:
    async with db.write() as conn:
        for hours in range(48, -1, -1):
            await metrics.record_server(
                conn,
                "web1",
                at=NOW - hours * 3600,
                reachable=True,
                data=healthy(disks=_disk(800.0 - 5 * (48 - hours))),
            )
        await metrics.rollup(conn)


async def _probe(db: Database, probe: metrics.SiteProbe, at: float = NOW) -> None:
    async with db.write() as conn:
        await metrics.record_site_probes(conn, [probe], at=at)


async def probe_500(db: Database) -> None:
    await _probe(
        db, metrics.SiteProbe("s1.web1.example", probed=True, http_status=500, latency_ms=30.0)
    )


async def probe_no_answer(db: Database) -> None:
    await _probe(db, metrics.SiteProbe("s1.web1.example", probed=True, error="Connection refused"))


async def probe_recovered(db: Database) -> None:
    await _probe(db, metrics.SiteProbe("s1.web1.example", probed=True, http_status=502), NOW - 60)
    await _probe(db, metrics.SiteProbe("s1.web1.example", probed=True, http_status=200))


async def cert_warn(db: Database) -> None:
    await _probe(
        db, metrics.SiteProbe("s0.web2.example", tls_checked=True, tls_expires_at=NOW + 10 * 86400)
    )


async def cert_crit(db: Database) -> None:
    await _probe(
        db, metrics.SiteProbe("s0.web2.example", tls_checked=True, tls_expires_at=NOW + 2 * 86400)
    )


async def cert_expired(db: Database) -> None:
    await _probe(
        db, metrics.SiteProbe("s0.web2.example", tls_checked=True, tls_expires_at=NOW - 86400)
    )


async def cert_unreadable(db: Database) -> None:
    await _probe(
        db,
        metrics.SiteProbe(
            "s0.web2.example", tls_checked=True, tls_error="no certificate read on port 443"
        ),
    )


async def _task(db: Database, kind: str, target: str, state: str, finished: float) -> None:
    async with db.write() as conn:
        batch = await task_queries.insert_batch(conn, "test", "test")
        [task_id] = await task_queries.insert_tasks(
            conn,
            kind=kind,
            target_kind="site",
            targets={target: "web1"},
            args="{}",
            priority=10,
            idempotent=True,
            max_attempts=1,
            batch_id=int(batch["id"]),
            queued_by="test",
        )
        await conn.execute(
            "UPDATE tasks SET state = ?, result = ?, started_at = ?, finished_at = ? WHERE id = ?",
            (state, f"{state} for the test", finished - 5, finished, task_id),
        )


async def task_failed(db: Database) -> None:
    await _task(db, "site.backup", "s1.web1.example", "failed", NOW - 600)


async def task_failed_long_ago(db: Database) -> None:
    await _task(db, "site.backup", "s1.web1.example", "failed", NOW - 3 * 86400)


async def task_failed_then_succeeded(db: Database) -> None:
    await _task(db, "site.backup", "s1.web1.example", "failed", NOW - 600)
    await _task(db, "site.backup", "s1.web1.example", "succeeded", NOW - 300)


async def collector_failed(db: Database) -> None:
    await _task(db, "stats.collect", "s1.web1.example", "failed", NOW - 600)


async def _traffic(db: Database, domain: str, megabytes: float) -> None:
    async with db.write() as conn:
        await metrics.record_traffic(
            conn, [metrics.TrafficSample(domain, int(NOW) // 60 * 60, 100, int(megabytes * 2**20))]
        )


async def site_bandwidth_warn(db: Database) -> None:
    async with db.write() as conn:
        await metrics.set_site_quota(
            conn, metrics.SiteQuota("s1.web1.example", bandwidth_mb_month=100)
        )
    await _traffic(db, "s1.web1.example", 85)


async def site_bandwidth_crit(db: Database) -> None:
    async with db.write() as conn:
        await metrics.set_site_quota(
            conn, metrics.SiteQuota("s1.web1.example", bandwidth_mb_month=100)
        )
    await _traffic(db, "s1.web1.example", 120)


async def site_quota_own_percentages(db: Database) -> None:
    async with db.write() as conn:
        await metrics.set_site_quota(
            conn,
            metrics.SiteQuota(
                "s1.web1.example", bandwidth_mb_month=100, warn_percent=50, crit_percent=200
            ),
        )
    await _traffic(db, "s1.web1.example", 120)


async def client_disk_crit(db: Database) -> None:
    # acme (limit 50 MB) owns s0.web1 and s0.web2: 30 + 25 MB of files and databases
    await _probe(
        db, metrics.SiteProbe("s0.web1.example", disk_bytes=20 * 2**20, db_bytes=10 * 2**20)
    )
    await _probe(db, metrics.SiteProbe("s0.web2.example", disk_bytes=25 * 2**20))


async def nothing(db: Database) -> None:
    pass


CASES: list[tuple[str, Setup, str | None, State]] = [
    ("healthy", nothing, None, State.OK),
    ("unreachable", unreachable, "server.unreachable", State.CRITICAL),
    ("stale", stale, "server.stale", State.UNKNOWN),
    ("service down", service_down, "service.down", State.CRITICAL),
    ("php-fpm down on a PHP server", php_down, "service.down", State.CRITICAL),
    ("config test failing", config_failing, "service.config", State.WARNING),
    ("reboot pending", reboot, "server.reboot", State.WARNING),
    ("clock 2.5 s off", clock_warn, "server.clock", State.WARNING),
    ("clock 45 s off", clock_crit, "server.clock", State.CRITICAL),
    ("clock 2.5 s off ± 2.5 s", clock_slow_connection, None, State.OK),
    ("clock 4 s off ± 2.5 s", clock_off_beyond_the_error, "server.clock", State.WARNING),
    ("disk 92 %", disk_warn, "disk.full", State.WARNING),
    ("disk 99 %", disk_crit, "disk.full", State.CRITICAL),
    ("inodes 97.5 %", inodes_crit, "disk.inodes", State.CRITICAL),
    ("disk full in 2.5 days", disk_filling, "disk.filling", State.WARNING),
    ("disk full in 20 hours", disk_filling_fast, "disk.filling", State.CRITICAL),
    ("disk shrinking", disk_shrinking, None, State.OK),
    ("site answers 500", probe_500, "site.probe", State.CRITICAL),
    ("site does not answer", probe_no_answer, "site.probe", State.CRITICAL),
    ("site recovered", probe_recovered, None, State.OK),
    ("certificate 10 days", cert_warn, "site.certificate", State.WARNING),
    ("certificate 2 days", cert_crit, "site.certificate", State.CRITICAL),
    ("certificate expired", cert_expired, "site.certificate", State.CRITICAL),
    ("certificate unreadable", cert_unreadable, "site.certificate", State.WARNING),
    ("task failed", task_failed, "task.failed", State.WARNING),
    ("task failed before --since", task_failed_long_ago, None, State.OK),
    ("task failed then succeeded", task_failed_then_succeeded, None, State.OK),
    ("collector task failed", collector_failed, None, State.OK),
    ("site bandwidth 85 %", site_bandwidth_warn, "quota.bandwidth", State.WARNING),
    ("site bandwidth 120 %", site_bandwidth_crit, "quota.bandwidth", State.CRITICAL),
    ("site quota with its own %", site_quota_own_percentages, "quota.bandwidth", State.WARNING),
    ("client disk 110 %", client_disk_crit, "quota.disk", State.CRITICAL),
]


@pytest.mark.parametrize(("name", "setup", "check", "state"), CASES, ids=[c[0] for c in CASES])
async def test_each_condition_gives_its_state(
    tmp_path: Path, name: str, setup: Setup, check: str | None, state: State
) -> None:
    db = await fleet_store(tmp_path / "c.db", client_quotas={"disk_mb": 50})
    try:
        await all_healthy(db)
        await setup(db)
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    assert report.state is state, [p.to_json() for p in report.problems]
    assert (
        report.exit_code
        == {State.OK: 0, State.WARNING: 1, State.CRITICAL: 2, State.UNKNOWN: 3}[state]
    )
    if check is None:
        assert report.problems == []
    else:
        assert [p.check for p in report.problems] == [check]
        assert report.problems[0].reason  # each one says why


async def test_reasons_name_what_was_measured(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db", client_quotas={"disk_mb": 50})
    try:
        await all_healthy(db)
        for setup in (disk_filling, probe_500, cert_warn, site_bandwidth_crit):
            await setup(db)
        async with db.write() as conn:
            await metrics.record_server(conn, "web2", at=NOW, reachable=False, error="no route")
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    reasons = {p.check: p for p in report.problems}
    assert reasons["server.unreachable"].subject == "web2"
    assert "unreachable: no route (last reached " in reasons["server.unreachable"].reason
    filling = reasons["disk.filling"]
    assert filling.subject == "web1:/srv" and filling.value == pytest.approx(2.5, abs=0.05)
    assert "fills up in 2.5 days at 0.23 GB a day" in filling.reason
    assert reasons["site.probe"].reason.startswith("answers HTTP 500 through web1 since ")
    assert reasons["site.certificate"].value == pytest.approx(10.0)
    assert "expires in 10.0 days" in reasons["site.certificate"].reason
    assert reasons["quota.bandwidth"].value == pytest.approx(120.0)
    assert (
        "traffic this month 120 of 100 MB (120 % of the quota)" in reasons["quota.bandwidth"].reason
    )


async def test_worst_state_wins_critical_over_unknown_over_warning(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await all_healthy(db)
        await reboot(db)
        assert (await evaluate(db, config(db.path), now=NOW)).state is State.WARNING
        await stale(db)
        assert (await evaluate(db, config(db.path), now=NOW)).state is State.UNKNOWN
        await probe_500(db)
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    assert report.state is State.CRITICAL
    assert [p.state for p in report.problems] == [State.CRITICAL, State.UNKNOWN, State.WARNING]


async def test_thresholds_come_from_the_config(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await all_healthy(db)
        await disk_warn(db)  # 92 %
        await cert_warn(db)  # 10 days
        strict = await evaluate(
            db, config(db.path, disk_warn_percent=95, cert_warn_days=7), now=NOW
        )
        loose = await evaluate(
            db, config(db.path, disk_crit_percent=90, cert_crit_days=11), now=NOW
        )
    finally:
        await db.close()
    assert strict.problems == []
    assert {(p.check, p.state) for p in loose.problems} == {
        ("disk.full", State.CRITICAL),
        ("site.certificate", State.CRITICAL),
    }


async def test_a_fresh_store_is_unknown_until_collected(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    assert report.state is State.UNKNOWN
    assert {p.subject for p in report.problems} == {"web1", "web2"}
    assert all("no collection has run" in p.reason for p in report.problems)


async def test_a_disk_full_within_a_day_is_critical_and_says_when(tmp_path: Path) -> None:
    db = await fleet_store(tmp_path / "c.db")
    try:
        await all_healthy(db)
        await disk_filling_fast(db)
        report = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    [problem] = report.problems
    assert (problem.check, problem.state, problem.subject) == (
        "disk.filling",
        State.CRITICAL,
        "web1:/srv",
    )
    # 200 MB left at 10 MB an hour; the fit is over hourly means, so give or take an hour
    assert problem.value == pytest.approx(20 / 24, abs=1 / 24) and problem.threshold == 1
    assert " hours at 0.23 GB a day" in problem.reason


async def test_a_client_bandwidth_quota_sums_its_sites_traffic(tmp_path: Path) -> None:
    """acme owns s0.web1 and s0.web2; s1.web1's traffic is not its."""
    quotas = {"bandwidth_mb_month": 100, "warn_percent": 70}
    db = await fleet_store(tmp_path / "c.db", client_quotas=quotas)
    try:
        await all_healthy(db)
        await _traffic(db, "s1.web1.example", 500)
        await _traffic(db, "s0.web1.example", 40)
        assert (await evaluate(db, config(db.path), now=NOW)).problems == []
        await _traffic(db, "s0.web2.example", 35)
        warned = await evaluate(db, config(db.path), now=NOW)
        async with db.write() as conn:
            await metrics.record_traffic(
                conn,
                [
                    metrics.TrafficSample(
                        "s0.web2.example", int(NOW) // 60 * 60 - 60, 10, 30 * 2**20
                    )
                ],
            )
        critical = await evaluate(db, config(db.path), now=NOW)
    finally:
        await db.close()
    [warning] = warned.problems
    assert (warning.check, warning.kind, warning.subject) == ("quota.bandwidth", "client", "acme")
    assert warning.state is State.WARNING and warning.threshold == 70
    assert warning.value == pytest.approx(75.0)
    assert "its sites' traffic this month 75 of 100 MB (75 % of the quota)" in warning.reason
    [crit] = critical.problems
    assert crit.state is State.CRITICAL and crit.value == pytest.approx(105.0)
    assert critical.exit_code == 2


async def test_site_checks_at_their_thresholds_without_reading_every_site(
    tmp_path: Path,
) -> None:
    """The site checks read only the sites that could reach a threshold; a site just at one
    is flagged, one just below is not, and leaving out the line of every site changes no
    problem and no count."""
    db = await fleet_store(tmp_path / "c.db", servers=3, sites_per_server=3)
    settings = {"site_bandwidth_mb_month": 100, "site_disk_mb": 200, "cert_warn_days": 14}
    try:
        await all_healthy(db)
        await _traffic(db, "s0.web1.example", 80)  # 80 % of the default: WARNING
        await _traffic(db, "s1.web1.example", 79.9)  # just below: nothing
        await _probe(db, metrics.SiteProbe("s0.web2.example", disk_bytes=200 * 2**20))  # 100 %
        await _probe(db, metrics.SiteProbe("s1.web2.example", disk_bytes=159 * 2**20))  # 79.5 %
        just_in = NOW + 14 * 86400 - 1  # a second short of 14 days: WARNING
        await _probe(
            db, metrics.SiteProbe("s0.web3.example", tls_checked=True, tls_expires_at=just_in)
        )
        await _probe(
            db,
            metrics.SiteProbe("s1.web3.example", tls_checked=True, tls_expires_at=NOW + 14 * 86400),
        )
        await _probe(db, metrics.SiteProbe("s2.web3.example", probed=True, http_status=503))
        full = await evaluate(db, config(db.path, **settings), now=NOW)
        lean = await evaluate(db, config(db.path, **settings), now=NOW, sites=False)
    finally:
        await db.close()
    found = [(p.check, p.subject, p.state) for p in full.problems]
    assert found == [
        ("quota.disk", "s0.web2.example", State.CRITICAL),
        ("site.probe", "s2.web3.example", State.CRITICAL),
        ("quota.bandwidth", "s0.web1.example", State.WARNING),
        ("site.certificate", "s0.web3.example", State.WARNING),
    ]
    assert lean.problems == full.problems
    assert lean.counts == full.counts
    assert (full.counts["sites"], full.counts["sites_enabled"], full.counts["sites_probed"]) == (
        9,
        9,
        9,
    )
    assert full.has_sites and len(full.sites) == 9
    assert not lean.has_sites and lean.sites == []

"""Real logs from real requests: a private nginx (+ php-fpm for real 5xx and slow
responses) writing Cockpit's log format, aggregated incrementally through the local
transport across malformed lines, a rotation (mv, requests, ``nginx -s reopen``) and a
truncation. Every step must give exact counts and bytes (the client counts the bytes it
received; nginx's ``$bytes_sent`` must agree). Both engines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import ApacheBed, Expect, NginxBed, Response

from cockpit.backends.local import LocalTransport
from cockpit.backends.stats import collect as c
from cockpit.backends.stats.collect import AccessLogReport, Engine, LogSpec, MinuteSample
from cockpit.model import Server

pytestmark = pytest.mark.testbed


def per_vhost(samples: list[MinuteSample]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for s in c.merge_samples(samples):
        row = out.setdefault(s.vhost, [0] * 7)
        for i, v in enumerate(
            (
                s.requests,
                s.bytes_sent,
                s.status_1xx,
                s.status_2xx,
                s.status_3xx,
                s.status_4xx,
                s.status_5xx,
            )
        ):
            row[i] += v
    return out


class Run:
    def __init__(self, bed: NginxBed, tmp_path: Path, engine: Engine) -> None:
        self.bed = bed
        self.engine = engine
        self.server = Server(
            name="web", address="127.0.0.1", transport="local", root=str(tmp_path / "cockpit")
        )
        self.transport = LocalTransport(self.server)
        self.expect = Expect()

    def send(
        self, host: str, path: str, want: int, times: int = 1, vhost: str | None = None
    ) -> None:
        for _ in range(times):
            r: Response = self.bed.get(host, path)
            assert r.status == want, (host, path, r)
            self.expect.add(vhost or host, r)

    async def collect(self) -> AccessLogReport:
        report = await c.collect_access_log_report(
            self.transport,
            self.server,
            [LogSpec(str(self.bed.log_a)), LogSpec(str(self.bed.log_b))],
            engine=self.engine,
        )
        assert report.committed
        return report

    async def check(self, malformed: int = 0) -> AccessLogReport:
        """Collect, compare with what was sent since the last check, start over."""
        report = await self.collect()
        assert per_vhost(report.samples) == self.expect.by_vhost
        assert report.malformed == malformed
        self.expect = Expect()
        return report


def events(report: AccessLogReport) -> list[list[str]]:
    return [[e.replace(str(Path(f.path).parent) + "/", "") for e in f.events] for f in report.files]


@pytest.mark.parametrize("engine", ["python", "awk"])
async def test_real_nginx_logs_add_up_exactly(
    nginx_bed: NginxBed, tmp_path: Path, engine: Engine
) -> None:
    run = Run(nginx_bed, tmp_path, engine)

    # 1. all kinds of answers, several Host headers (one unknown: the default server's log)
    run.send("site-a.test", "/a.html", 200, 7)
    run.send("site-a.test", "/moved", 301, 3)
    run.send("site-a.test", "/missing", 404, 4)
    run.send("site-a.test", "/app.php?code=500", 500, 2)
    run.send("site-a.test", "/app.php?code=503", 503)
    run.send("site-a.test", "/app.php?size=2000", 200, 5)
    run.send("www.site-a.test", "/b.bin", 200, 3)
    run.send("unknown.test", "/a.html", 200, 2)
    run.send("SITE-B.test", "/b.bin", 200, 6, vhost="site-b.test")  # nginx lower-cases $host
    run.send("site-b.test", "/missing", 404, 2)
    run.send("site-b.test", "/app.php", 200, 18)
    run.send("site-b.test", "/app.php?sleep=300", 200, 2)
    report = await run.check()
    assert events(report) == [["new"], ["new"]]
    assert report.engine == ("python" if engine == "python" else "mawk")
    b = c.merge_samples(
        [s for s in report.samples if s.vhost == "site-b.test"], vhost="site-b.test"
    )
    timed = c.merge_samples(b, vhost="all")[0]
    assert sum(timed.histogram.values()) == 28
    assert timed.p95_ms is not None and 300 <= timed.p95_ms < 400  # the two slow ones
    assert timed.p50_ms is not None and timed.p50_ms < 100

    # 2. lines that are not requests, appended to a live log
    with open(nginx_bed.log_b, "ab") as f:
        f.write(
            b'garbage\n\nsite-b.test:80 127.0.0.1 0.000 - [31/Feb/2025:00:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-"\n'
        )
    run.send("site-b.test", "/a.html", 200, 2)
    report = await run.check(malformed=3)
    assert [f.malformed for f in report.files] == [0, 3]

    # 3. rotation: mv, requests still going to the moved file, reopen, more requests
    os.rename(nginx_bed.log_a, str(nginx_bed.log_a) + ".1")
    run.send("site-a.test", "/a.html", 200, 4)
    run.send("site-a.test", "/nope", 404)
    nginx_bed.nginx("-s", "reopen")
    for _ in range(200):
        if nginx_bed.log_a.exists():
            break
        await _sleep(0.05)
    run.send("site-a.test", "/b.bin", 200, 3)
    run.send("unknown.test", "/app.php?code=502", 502)
    report = await run.check()
    assert events(report) == [["rotated:site-a.test.access.log.1"], ["unchanged"]]

    # 4. a late line in the rotated file is still picked up, then nothing is new
    with open(str(nginx_bed.log_a) + ".1", "ab") as f:
        f.write(b"not a request either\n")
    report = await run.check(malformed=1)
    assert events(report) == [["retired:site-a.test.access.log.1", "unchanged"], ["unchanged"]]
    report = await run.check()
    assert report.samples == [] and report.lines == 0

    # 5. truncation (copytruncate style) of a live log, then new requests
    os.truncate(nginx_bed.log_b, 0)
    run.send("site-b.test", "/missing", 404, 2)
    run.send("site-b.test", "/app.php?code=500", 500)
    report = await run.check()
    assert events(report) == [["unchanged"], ["truncated"]]


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_real_apache_logs_in_cockpits_format(apache_bed: ApacheBed, tmp_path: Path) -> None:
    """Cockpit's Apache LogFormat (response time in ms in the identd slot, %O) parses exactly."""
    expect = Expect()
    for path, want, agent in [
        ("/a.html", 200, "cockpit-test"),
        ("/a.html", 200, 'quote " and backslash \\ in the agent'),
        ("/moved", 301, "cockpit-test"),
        ("/missing", 404, "cockpit-test"),
    ]:
        r = apache_bed.get(path, agent=agent)
        assert r.status == want
        expect.add("site-c.test", r)
    bad = apache_bed.get("", raw=b"GET /a b c HTTP/1.1\r\nHost: site-c.test\r\n\r\n")  # a 400
    expect.add("site-c.test", bad)
    server = Server(
        name="web", address="127.0.0.1", transport="local", root=str(tmp_path / "cockpit")
    )
    transport = LocalTransport(server)
    for _ in range(100):  # Apache writes the line after the response
        if apache_bed.log.exists() and apache_bed.log.read_bytes().count(b"\n") >= 5:
            break
        await _sleep(0.05)
    report = await c.collect_access_log_report(transport, server, [str(apache_bed.log)])
    assert report.malformed == 0, apache_bed.log.read_text()
    assert per_vhost(report.samples) == expect.by_vhost
    assert sum(sum(s.histogram.values()) for s in report.samples) == 5

"""Statistics for the dashboard tests: a week of series written through the store's own
write functions (``record_server``, ``record_site_probes``, ``record_traffic``, then the
hourly ``rollup``), at pinned times so that the screens and their snapshots are stable.

On the fleet of :mod:`tuikit` (sites ``n`` on platforms ``n % 3``: wp-6-5 and drupal-10
on web1, static on web2; clients acme for ``n % 3 == 0``, globex for ``1``):

- web1: reachable; ``/var`` filling from 70 % to 92 % over the week (disk.full and
  disk.filling: WARNING); ``/`` steady.
- web2: reachable, a reboot pending (WARNING).
- db1: unreachable, its error carrying escape sequences (CRITICAL).
- localhost: never collected (UNKNOWN).
- sites 1 and 4 answer 503 (CRITICAL); certificates of site 5 expire in 2 days
  (CRITICAL), of sites 2 and 7 in 10 and 12 days (WARNING); every other site answers 200.
- traffic (requests per minute): site 3: 120 (1 a minute is a 5xx), 6: 60, 1: 40 (10
  are 5xx), 9: 30, 2: 20 (5 until a day ago: the fastest growth), 10: 5.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Final

from tuikit import site_domain

from cockpit.store import metrics, open_store

#: The moment everything is read at: 2024-05-08 12:00:30 UTC.
NOW: Final = 1_715_169_630.0
DAY: Final = 86_400
HOUR: Final = 3_600

#: Requests per minute of the sites with traffic, and how many of those are 5xx.
TRAFFIC: Final = {3: (120, 1), 6: (60, 0), 1: (40, 10), 9: (30, 0), 2: (20, 0), 10: (5, 0)}
#: Site 2's rate before the last day.
GROWING_BEFORE: Final = 5
FAILING: Final = (1, 4)
#: Days left on the certificates that expire soon.
CERT_DAYS: Final = {5: 2.0, 2: 10.0, 7: 12.0}
SITES: Final = 300

#: The ESC-laden reason db1 cannot be reached (as a broken SSH banner could make it).
DB1_ERROR: Final = "connect to db1.example.net:22: Connection refused\x1b]0;owned\x07\x1b[31m!"

VAR_SIZE_MB: Final = 102_400


def _server_data(name: str, at: float) -> dict[str, object]:
    hours = (at - NOW) / HOUR
    if name == "web1":
        age = (NOW - at) / (7 * DAY)
        return {
            "load1": round(1.5 + math.sin(2 * math.pi * hours / 24), 2),
            "cpus": 4,
            "mem_total_mb": 8192,
            "mem_available_mb": 4096,
            "swap_total_mb": 2048,
            "swap_free_mb": 1900,
            "disks": [
                {"mount": "/", "size_mb": 20_480, "used_mb": 8192 + 100 * age},
                {
                    "mount": "/var",
                    "size_mb": VAR_SIZE_MB,
                    "used_mb": VAR_SIZE_MB * (0.92 - 0.22 * age),
                    "inodes_pct": 12.0,
                },
            ],
            "services": [
                {"name": "nginx", "kind": "http", "running": True, "config_ok": True},
                {"name": "mysql", "kind": "db", "running": True},
            ],
            "pending_reboot": False,
            "clock_offset_ms": 12,
        }
    return {
        "load1": round(0.4 + 0.3 * math.sin(2 * math.pi * hours / 12), 2),
        "cpus": 2,
        "mem_total_mb": 4096,
        "mem_available_mb": 3000,
        "disks": [{"mount": "/", "size_mb": 40_960, "used_mb": 20_480 + 50 * (NOW - at) / DAY}],
        "services": [{"name": "apache", "kind": "http", "running": True, "config_ok": True}],
        "pending_reboot": True,
        "clock_offset_ms": -3,
    }


def _moments() -> list[float]:
    """A sample an hour over the week before the last 26 hours, then one a minute."""
    cut = (int(NOW) - 26 * HOUR) // HOUR * HOUR
    hours = list(range(cut - 6 * DAY, cut, HOUR))
    minutes = list(range(cut, int(NOW) - 29, 60))
    return [float(t) for t in hours + minutes]


def _traffic() -> list[metrics.TrafficSample]:
    cut = (int(NOW) - 26 * HOUR) // HOUR * HOUR
    out = []
    for n, (rate, errors) in TRAFFIC.items():
        domain = site_domain(n)
        per_request = 8000 + 100 * n
        for t in range(cut - 6 * DAY, cut, HOUR):  # an hour's traffic in one sample
            r = GROWING_BEFORE if n == 2 else rate
            out.append(_sample(domain, t, 60 * r, 60 * errors, per_request, n))
        for t in range(cut, int(NOW) - 29, 60):
            r = GROWING_BEFORE if n == 2 and t < NOW - DAY else rate
            out.append(_sample(domain, t, r, errors, per_request, n))
    return out


def _sample(
    domain: str, t: int, requests: int, errors: int, per_request: int, n: int
) -> metrics.TrafficSample:
    s4xx = requests // 20
    return metrics.TrafficSample(
        domain=domain,
        minute=t,
        requests=requests,
        bytes=requests * per_request,
        s2xx=requests - errors - s4xx,
        s4xx=s4xx,
        s5xx=errors,
        p50_ms=30.0 + n,
        p95_ms=120.0 + 10 * n + (300 if errors else 0),
    )


def _probe(n: int, at: float, *, failing: bool) -> metrics.SiteProbe:
    https = n % 3 != 0
    status, latency = (503, 12.0) if failing else (200, 40.0 + n % 50 + 20 * math.sin(at / 3000))
    expires = NOW + CERT_DAYS.get(n, 60.0) * DAY + (0 if n in CERT_DAYS else n * HOUR)
    return metrics.SiteProbe(
        domain=site_domain(n),
        probed=True,
        http_status=status,
        latency_ms=latency,
        tls_checked=https,
        tls_expires_at=expires if https else None,
        disk_bytes=(50 + n) * 2**20 if n < 12 else None,
        db_bytes=(8 + n) * 2**20 if n < 12 and n % 2 else None,
    )


async def add_stats(path: Path) -> None:
    """Write the statistics above into the store at ``path`` (built by tuikit)."""
    db = await open_store(path)
    try:
        async with db.write() as conn:
            for at in _moments():
                for name in ("web1", "web2"):
                    await metrics.record_server(
                        conn, name, at=at, reachable=True, data=_server_data(name, at)
                    )
            await metrics.record_server(conn, "db1", at=NOW - 40, reachable=False, error=DB1_ERROR)
            # Sites 1 and 3 are probed every 5 minutes for a day; site 1 fails since 20 min.
            for at in range(int(NOW) - 26 * HOUR, int(NOW) - 60, 300):
                await metrics.record_site_probes(
                    conn,
                    [_probe(n, at, failing=n == 1 and at >= NOW - 20 * 60) for n in (1, 3)],
                    at=at,
                )
            enabled = [n for n in range(SITES) if n % 17]
            await metrics.record_site_probes(
                conn, [_probe(n, NOW - 60, failing=n in FAILING) for n in enabled], at=NOW - 60
            )
            await metrics.record_traffic(conn, _traffic())
            await metrics.rollup(conn)
    finally:
        await db.close()

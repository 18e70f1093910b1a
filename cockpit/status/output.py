"""How a status :class:`~cockpit.status.evaluate.Report` is written: text, JSON, Prometheus.

- :func:`to_text`: the first line as a Nagios plugin's (``COCKPIT CRITICAL - 2
  critical, 1 warning | …``), then one line per problem, worst first. Every text that
  came from a server or the store passes the sanitiser.
- :func:`to_json`: the document described by ``schema.json`` beside this module
  (``"schema": "cockpit-status/1"``; fields are only ever added within a version).
- :func:`to_prometheus`: the text exposition format, for node_exporter's textfile
  collector (write it to a ``.prom`` file atomically).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from importlib import resources
from typing import Any, Final

from cockpit.status.evaluate import Report, State, _iso
from cockpit.textsafe import sanitize_line

__all__ = ["SCHEMA_ID", "schema", "to_json", "to_prometheus", "to_text"]

SCHEMA_ID: Final = "cockpit-status/1"


def schema() -> dict[str, Any]:
    """The JSON Schema of :func:`to_json`'s document."""
    text = resources.files("cockpit.status").joinpath("schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def to_json(report: Report) -> dict[str, Any]:
    by_state = report.by_state()
    return {
        "schema": SCHEMA_ID,
        "generated_at": _iso(report.generated_at),
        "since": _iso(report.since),
        "state": report.state.label,
        "exit_code": report.exit_code,
        "counts": {
            **report.counts,
            "ok": by_state[State.OK],
            "warning": by_state[State.WARNING],
            "critical": by_state[State.CRITICAL],
            "unknown": by_state[State.UNKNOWN],
        },
        "problems": [p.to_json() for p in report.problems],
        "servers": [
            {
                "name": s.name,
                "state": s.state.label,
                "reachable": s.reachable,
                "collected_at": _iso(s.collected_at),
                "load1": s.load1,
                "cpus": s.cpus,
                "mem_pct": s.mem_pct,
                "clock_offset_ms": s.clock_offset_ms,
                "pending_reboot": s.pending_reboot,
                "disks": [
                    {"mount": m, "used_pct": used, "inodes_pct": inodes}
                    for m, used, inodes in s.disks
                ],
                "services": [
                    {"name": n, "running": running, "config_ok": ok}
                    for n, running, ok in s.services
                ],
            }
            for s in report.servers
        ],
    }


def _summary(report: Report) -> str:
    by_state = report.by_state()
    parts = [
        f"{by_state[state]} {state.label.lower()}"
        for state in (State.CRITICAL, State.UNKNOWN, State.WARNING)
        if by_state[state]
    ]
    counts = report.counts
    fleet = (
        f"{counts.get('servers', 0)} servers ({counts.get('servers_reachable', 0)} reachable), "
        f"{counts.get('sites', 0)} sites"
    )
    perf = (
        f"critical={by_state[State.CRITICAL]} warning={by_state[State.WARNING]} "
        f"unknown={by_state[State.UNKNOWN]} servers={counts.get('servers', 0)} "
        f"sites={counts.get('sites', 0)}"
    )
    what = ", ".join(parts) if parts else "all is well"
    return f"COCKPIT {report.state.label} - {what}; {fleet} | {perf}"


def to_text(report: Report, *, limit: int | None = None) -> list[str]:
    """Lines for a terminal: the Nagios summary, then each problem (``limit`` at most)."""
    lines = [_summary(report)]
    shown = report.problems if limit is None else report.problems[:limit]
    for p in shown:
        lines.append(sanitize_line(f"{p.state.label:<8} {p.check:<18} {p.subject}: {p.reason}"))
    hidden = len(report.problems) - len(shown)
    if hidden > 0:
        lines.append(f"… and {hidden} more (cockpit status --json lists them all)")
    return lines


# -- Prometheus --------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _label(value: str) -> str:
    text = sanitize_line(value)
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}"


def _num(value: float) -> str:
    if isinstance(value, int):
        return str(int(value))
    if value != value:  # NaN
        return "NaN"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, help_: str, kind: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        rows = list(samples)
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in rows:
            self.lines.append(f"{name}{_labels(**labels)} {_num(value)}")


def to_prometheus(report: Report) -> str:
    """The report as Prometheus text exposition (format 0.0.4); the report must hold every
    site (``evaluate(sites=True)``)."""
    if not report.has_sites:
        raise ValueError("the Prometheus exposition needs a report with every site")
    out = _Exposition()
    out.family(
        "cockpit_status",
        "Overall state as a Nagios exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)",
        "gauge",
        [({}, report.exit_code)],
    )
    by_state = report.by_state()
    out.family(
        "cockpit_problems",
        "Problems found, by state",
        "gauge",
        [({"state": s.label.lower()}, by_state[s]) for s in State if s is not State.OK],
    )
    out.family(
        "cockpit_status_generated_timestamp_seconds",
        "When the status was evaluated",
        "gauge",
        [({}, round(report.generated_at, 3))],
    )
    out.family(
        "cockpit_problem",
        "One problem (1) by check and subject",
        "gauge",
        [
            (
                {
                    "check": p.check,
                    "kind": p.kind,
                    "subject": p.subject,
                    "state": p.state.label.lower(),
                },
                1,
            )
            for p in report.problems
        ],
    )
    servers = report.servers
    out.family(
        "cockpit_server_up",
        "Whether the last collection reached the server",
        "gauge",
        [({"server": s.name}, 1 if s.reachable else 0) for s in servers],
    )
    out.family(
        "cockpit_server_state",
        "The server's own state (Nagios code)",
        "gauge",
        [({"server": s.name}, s.state.value) for s in servers],
    )
    out.family(
        "cockpit_server_last_collection_timestamp_seconds",
        "When the server was last collected",
        "gauge",
        [({"server": s.name}, s.collected_at) for s in servers if s.collected_at is not None],
    )
    out.family(
        "cockpit_server_load1",
        "One-minute load average",
        "gauge",
        [({"server": s.name}, s.load1) for s in servers if s.load1 is not None],
    )
    out.family(
        "cockpit_server_cpus",
        "Online CPUs",
        "gauge",
        [({"server": s.name}, s.cpus) for s in servers if s.cpus is not None],
    )
    out.family(
        "cockpit_server_memory_used_ratio",
        "Memory in use (1 - available/total)",
        "gauge",
        [({"server": s.name}, s.mem_pct / 100) for s in servers if s.mem_pct is not None],
    )
    out.family(
        "cockpit_server_clock_offset_seconds",
        "The server's clock minus this host's",
        "gauge",
        [
            ({"server": s.name}, s.clock_offset_ms / 1000)
            for s in servers
            if s.clock_offset_ms is not None
        ],
    )
    out.family(
        "cockpit_server_reboot_pending",
        "Whether a reboot is pending",
        "gauge",
        [
            ({"server": s.name}, 1 if s.pending_reboot else 0)
            for s in servers
            if s.pending_reboot is not None
        ],
    )
    out.family(
        "cockpit_disk_used_ratio",
        "Share of a mount's space in use",
        "gauge",
        [({"server": s.name, "mount": m}, used / 100) for s in servers for m, used, _i in s.disks],
    )
    out.family(
        "cockpit_disk_inodes_used_ratio",
        "Share of a mount's inodes in use",
        "gauge",
        [
            ({"server": s.name, "mount": m}, inodes / 100)
            for s in servers
            for m, _u, inodes in s.disks
            if inodes is not None
        ],
    )
    out.family(
        "cockpit_service_up",
        "Whether a service runs",
        "gauge",
        [
            ({"server": s.name, "service": n}, 1 if running else 0)
            for s in servers
            for n, running, _ok in s.services
        ],
    )
    out.family(
        "cockpit_service_config_ok",
        "Whether a web server's config test passes",
        "gauge",
        [
            ({"server": s.name, "service": n}, 1 if ok else 0)
            for s in servers
            for n, _r, ok in s.services
            if ok is not None
        ],
    )
    sites = report.sites
    out.family(
        "cockpit_site_http_status",
        "HTTP status of the last probe (0: no answer)",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.http_status or 0)
            for s in sites
            if s.probed_at is not None
        ],
    )
    out.family(
        "cockpit_site_probe_seconds",
        "Time of the last probe to the last byte",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.latency_ms / 1000)
            for s in sites
            if s.latency_ms is not None
        ],
    )
    out.family(
        "cockpit_site_certificate_expiry_timestamp_seconds",
        "When the site's certificate expires",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.tls_expires_at)
            for s in sites
            if s.tls_expires_at is not None
        ],
    )
    out.family(
        "cockpit_site_month_bytes",
        "Bytes sent this calendar month (UTC)",
        "gauge",
        [({"site": s.domain, "server": s.server}, s.bytes_month) for s in sites if s.bytes_month],
    )
    out.family(
        "cockpit_site_month_requests",
        "Requests served this calendar month (UTC)",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.requests_month)
            for s in sites
            if s.requests_month
        ],
    )
    out.family(
        "cockpit_site_disk_bytes",
        "Disk use of the site's files",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.disk_bytes)
            for s in sites
            if s.disk_bytes is not None
        ],
    )
    out.family(
        "cockpit_site_database_bytes",
        "Size of the site's database",
        "gauge",
        [
            ({"site": s.domain, "server": s.server}, s.db_bytes)
            for s in sites
            if s.db_bytes is not None
        ],
    )
    return "\n".join(out.lines) + "\n"

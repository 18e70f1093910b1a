"""The site collector: every site of a server probed in one round, from the server itself.

    probes = await probe_sites(transport, server, targets, deep=True)

One script runs on the server and, a few sites at a time, for each site:

- requests ``/`` through the server's own web server (``curl --resolve`` to its probe
  address, so the request carries the site's Host and, over HTTPS, its SNI) and reads
  the status and the time to the last byte. Sites whose HTTPS is required are probed
  over HTTPS, the others over plain HTTP;
- with ``deep``: reads the certificate the web server presents for the site (``openssl
  s_client`` with the site's SNI) and its expiry, and the disk use of the site's own
  directory (``du -sk``; hard links inside it counted once).

Database sizes come from the database services themselves (:func:`database_sizes`: one
query per database server, every database at once). Only one line per site and check
crosses the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Final

from cockpit.backends.secrets import SecretStore
from cockpit.backends.services import PluginLoadError, UnknownServiceError, get_service
from cockpit.backends.services.base import PRELUDE, ServiceError
from cockpit.backends.services.http import HttpService
from cockpit.backends.transport import Transport, TransportError
from cockpit.model import DbEngine, HttpsMode, Server, ServiceKind, Site, ValidationError
from cockpit.store.metrics import SiteProbe
from cockpit.textsafe import sanitize_line

__all__ = ["ProbeTarget", "database_sizes", "probe_sites", "targets_for"]

_PROBE: Final = r"""
tmo=$1 jobs=$2
shift 2
T=
if command -v timeout >/dev/null 2>&1; then T="timeout $tmo"; fi
probe() {
    i=$1 host=$2 scheme=$3 port=$4 addr=$5 tport=$6 dir=$7
    case $addr in *:*) a="[$addr]" ;; *) a=$addr ;; esac
    if [ -n "$scheme" ]; then
        out=$(curl -sS -k -o /dev/null --max-time "$tmo" --resolve "$host:$port:$addr" \
            -w '\n@%{http_code} %{time_total}' -- "$scheme://$host:$port/" 2>&1)
        res=$(printf '%s\n' "$out" | sed -n 's/^@//p' | tail -n 1)
        err=$(printf '%s\n' "$out" | grep -v '^@' | grep -v '^$' | head -n 2 | tr '\t\n' '  ' | cut -c1-200)
        printf 'P\t%s\t%s\t%s\n' "$i" "$res" "$err"
    fi
    if [ -n "$tport" ]; then
        end=$(echo | $T openssl s_client -connect "$a:$tport" -servername "$host" 2>/dev/null \
            | openssl x509 -noout -enddate 2>/dev/null)
        printf 'T\t%s\t%s\n' "$i" "$end"
    fi
    if [ -n "$dir" ]; then
        if [ -d "$dir" ]; then
            kb=$($T du -sk -- "$dir" 2>/dev/null | cut -f1)
            printf 'D\t%s\t%s\n' "$i" "${kb:--}"
        else
            printf 'D\t%s\t0\n' "$i"
        fi
    fi
}
if ! command -v curl >/dev/null 2>&1; then echo "cockpit: curl is not installed" >&2; exit 3; fi
n=0
while [ "$#" -ge 7 ]; do
    probe "$1" "$2" "$3" "$4" "$5" "$6" "$7" &
    shift 7
    n=$((n + 1))
    if [ "$n" -ge "$jobs" ]; then wait; n=0; fi
done
wait
exit 0
"""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """What to check of one site on its server."""

    domain: str
    scheme: str  # "http", "https", or "" (no probe)
    port: int
    address: str
    tls_port: int | None  # read the certificate there (deep), or None
    directory: str  # du of it (deep), or ""


def targets_for(
    server: Server, sites: Sequence[Site], *, deep: bool
) -> tuple[list[ProbeTarget], str]:
    """The probe targets of ``sites`` on ``server`` through its web server plugin, and a
    note when there is nothing to probe with (no web server in the inventory)."""
    plugin: HttpService | None = None
    for service in server.services:
        if service.kind is ServiceKind.HTTP:
            try:
                candidate = get_service(service.kind, service.type)(server, service)
            except (UnknownServiceError, PluginLoadError, ValidationError):
                continue
            if isinstance(candidate, HttpService):
                plugin = candidate
                break
    note = "" if plugin is not None else f"{server.name} has no web server in the inventory"
    out = []
    for site in sites:
        if site.status.value != "enabled":
            continue
        directory = f"{server.root}/sites/{site.domain}" if deep else ""
        if plugin is None:
            if deep:
                out.append(ProbeTarget(site.domain, "", 0, "", None, directory))
            continue
        https = site.https is HttpsMode.REQUIRED
        port = plugin.int_setting("https_port" if https else "http_port")
        tls = plugin.int_setting("https_port") if deep and site.https is not HttpsMode.OFF else None
        out.append(
            ProbeTarget(
                site.domain,
                "https" if https else "http",
                port,
                plugin.probe_address,
                tls,
                directory,
            )
        )
    return out, note


def _expiry(text: str) -> float | None:
    # "notAfter=Mar  1 12:00:00 2026 GMT"
    _, eq, value = text.partition("notAfter=")
    if not eq:
        return None
    try:
        return datetime.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y %Z").timestamp()
    except ValueError:
        try:
            return parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None


async def probe_sites(
    transport: Transport,
    server: Server,
    targets: Sequence[ProbeTarget],
    *,
    timeout: float = 10.0,
    jobs: int = 8,
) -> list[SiteProbe]:
    """Probe ``targets`` in one round on ``server``. Raises TransportError when the
    server cannot be reached (the probes are then unknown, not failed)."""
    if not targets:
        return []
    args = [str(int(max(1, timeout))), str(jobs)]
    for i, t in enumerate(targets):
        args += [
            str(i),
            t.domain,
            t.scheme,
            str(t.port),
            t.address,
            str(t.tls_port) if t.tls_port else "",
            t.directory,
        ]
    budget = timeout * (len(targets) / max(1, jobs) + 2) + 30
    result = await transport.run_script(
        PRELUDE + _PROBE, args, sudo=True, capture=True, timeout=budget
    )
    if result.unknown:
        raise TransportError(f"the site probes got no answer: {result.reason or 'connection lost'}")
    if not result.ok:
        raise TransportError(
            f"the site probes failed (exit {result.exit_code}): "
            + sanitize_line(" ".join(result.stderr[-3:]))
        )
    seen: dict[int, dict[str, str]] = {}
    for line in result.stdout:
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] in ("P", "T", "D") and parts[1].isdigit():
            seen.setdefault(int(parts[1]), {})[parts[0]] = "\t".join(parts[2:])
    probes = []
    for i, t in enumerate(targets):
        got = seen.get(i, {})
        status: int | None = None
        latency: float | None = None
        error = ""
        if t.scheme:
            raw = got.get("P", "")
            res, _, err = raw.partition("\t")
            words = res.split()
            if len(words) == 2 and words[0].isdigit():
                code = int(words[0])
                status = code if code else None
                try:
                    latency = round(float(words[1]) * 1000, 1)
                except ValueError:
                    latency = None
            error = sanitize_line(err).strip()
            if status is None and not error:
                error = "no answer"
        tls_at: float | None = None
        tls_error = ""
        if t.tls_port:
            tls_at = _expiry(got.get("T", ""))
            if tls_at is None:
                tls_error = f"no certificate read on port {t.tls_port}"
        disk: int | None = None
        if t.directory:
            kb = got.get("D", "")
            disk = int(kb) * 1024 if kb.isdigit() else None
        probes.append(
            SiteProbe(
                domain=t.domain,
                probed=bool(t.scheme),
                http_status=status,
                latency_ms=latency if status is not None else None,
                error=error if status is None or status >= 500 else "",
                tls_checked=bool(t.tls_port),
                tls_expires_at=tls_at,
                tls_error=tls_error,
                disk_bytes=disk,
            )
        )
    return probes


_SIZES: Final[Mapping[str, str]] = {
    "mysql": "SELECT table_schema, COALESCE(SUM(data_length + index_length), 0)"
    " FROM information_schema.tables GROUP BY table_schema;\n",
    "pgsql": "SELECT datname, pg_database_size(datname) FROM pg_database"
    " WHERE NOT datistemplate;\n",
}


async def database_sizes(
    transport: Transport, server: Server, *, secret_store: SecretStore | None = None
) -> dict[tuple[str, str], int]:
    """``{(engine, database): bytes}`` of every database of ``server``'s database
    services, one query each. A service that cannot answer is left out."""
    sizes: dict[tuple[str, str], int] = {}
    for service in server.services:
        if service.kind is not ServiceKind.DB or service.type not in _SIZES:
            continue
        try:
            plugin = get_service(service.kind, service.type)(
                server, service, secret_store=secret_store
            )
            rows = await plugin._admin_sql(  # type: ignore[attr-defined]
                transport, _SIZES[service.type], what="read the database sizes"
            )
        except (UnknownServiceError, PluginLoadError, ValidationError, ServiceError,
                TransportError):  # fmt: skip
            continue
        for row in rows:
            name, _, size = row.partition("\t")
            if size.strip().isdigit():
                sizes[(DbEngine(service.type).value, name.strip())] = int(size)
    return sizes

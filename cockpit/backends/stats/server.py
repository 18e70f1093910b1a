"""The server collector: load, memory, disks, services, pending reboot and clock, in one round.

    sample = await collect_server(transport, server)

One script runs on the server (as root: the web servers' config tests read private keys)
and prints tagged sections; nothing else crosses the network. It reads:

- ``/proc/loadavg``, the online CPUs, ``/proc/meminfo`` (memory and swap), the uptime;
- ``df -P -k -T`` and ``df -P -i``: space and inodes per mount (pseudo file systems left out);
- each web and database service of the server's inventory: running (the web server
  answers HTTP on its probe address, or takes the connection and closes it unanswered;
  ``mariadb-admin ping``, ``pg_isready``) and, for web servers, whether the config test
  passes (the plugin's own ``svc_test``);
- php-fpm, when installed: whether a master process runs;
- a pending reboot (``/run/reboot-required``, or ``needs-restarting -r``);
- the server's clock: its ``date`` is the script's first line, compared with the local
  clock at the midpoint of the request and that line's arrival (``clock_error_ms`` is
  half that interval: the offset is known within it).

A server that cannot be reached gives ``reachable=False`` and the reason, never an
exception: that *is* the measurement.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cockpit.backends.services import PluginLoadError, UnknownServiceError, get_service
from cockpit.backends.services.base import PRELUDE
from cockpit.backends.services.http import HttpService
from cockpit.backends.transport import Line, Stream, Transport, TransportError
from cockpit.model import Server, ServiceKind, ValidationError
from cockpit.textsafe import sanitize_line

__all__ = ["ServerSample", "ServiceState", "collect_server", "server_script"]

#: Pseudo and memory file systems that are not disks.
SKIP_FS: Final = frozenset(
    {
        "tmpfs",
        "devtmpfs",
        "squashfs",
        "ramfs",
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "efivarfs",
        "autofs",
        "securityfs",
        "debugfs",
        "tracefs",
        "nsfs",
        "overlay",
        "fuse.lxcfs",
        "binfmt_misc",
        "pstore",
        "bpf",
        "configfs",
        "fusectl",
        "hugetlbfs",
    }
)

_HEAD: Final = r"""
echo "@@clock $(date +%s.%N)"
tmo=$1
shift
T=
if command -v timeout >/dev/null 2>&1; then T="timeout $tmo"; fi
echo "@@load $(cat /proc/loadavg 2>/dev/null)"
echo "@@cpus $(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
echo "@@uptime $(cut -d' ' -f1 /proc/uptime 2>/dev/null)"
grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null | sed 's/^/@@mem /'
$T df -P -k -T 2>/dev/null | sed 's/^/@@df /'
$T df -P -i 2>/dev/null | sed 's/^/@@dfi /'
if [ -e /run/reboot-required ] || [ -e /var/run/reboot-required ]; then
    echo "@@reboot yes"
elif command -v needs-restarting >/dev/null 2>&1; then
    if needs-restarting -r >/dev/null 2>&1; then echo "@@reboot no"; else echo "@@reboot yes"; fi
else
    echo "@@reboot no"
fi
echo "@@ntp $(timedatectl show -p NTPSynchronized --value 2>/dev/null)"
fpm=
for p in /usr/sbin/php-fpm* /usr/local/sbin/php-fpm*; do [ -x "$p" ] && fpm=1; done
if [ -n "$fpm" ]; then
    if pgrep -f 'php-fpm: master process' >/dev/null 2>&1; then r=1; else r=0; fi
    printf '@@svc php-fpm\tphp\t%s\t-\t%s\n' "$r" "$(pgrep -fc 'php-fpm: pool' 2>/dev/null) workers"
fi
svc_db_mysql() {
    name=$1 host=$2 port=$3 sock=$4
    tool=$(command -v mariadb-admin || command -v mysqladmin)
    if [ -z "$tool" ]; then printf '@@svc %s\tdb\t0\t-\tno mariadb-admin or mysqladmin\n' "$name"; return; fi
    if [ -n "$host" ]; then set -- "--host=$host" "--port=$port"
    elif [ -n "$sock" ]; then set -- "--socket=$sock"
    else set --; fi
    if out=$($T "$tool" --connect-timeout=3 "$@" ping 2>&1); then r=1; else r=0; fi
    printf '@@svc %s\tdb\t%s\t-\t%s\n' "$name" "$r" "$(printf '%s' "$out" | tr '\t\n' '  ' | cut -c1-200)"
}
svc_db_pgsql() {
    name=$1 host=$2 port=$3
    if ! command -v pg_isready >/dev/null 2>&1; then printf '@@svc %s\tdb\t0\t-\tno pg_isready\n' "$name"; return; fi
    if [ -n "$host" ]; then set -- -h "$host" -p "$port"; else set -- -p "$port"; fi
    out=$($T pg_isready -t 3 "$@" 2>&1)
    case $? in 0) r=1 ;; *) r=0 ;; esac
    printf '@@svc %s\tdb\t%s\t-\t%s\n' "$name" "$r" "$(printf '%s' "$out" | tr '\t\n' '  ' | cut -c1-200)"
}
"""

_HTTP_FN: Final = r"""
svc_http_{n}() {{
    name=$1 url=$2
    shift 2
{vars}
{functions}
    code=$(curl -s -k -o /dev/null -w '%{{http_code}}' --max-time 5 -- "$url" 2>/dev/null)
    rc=$?
    # no status: down, unless the server took the connection and closed it unanswered
    # (curl 52, "empty reply": nginx's common default server "return 444")
    case $code in ''|000) case $rc in 52) r=1 code=empty ;; *) r=0 ;; esac ;; *) r=1 ;; esac
    if out=$(svc_test 2>&1); then c=1; else c=0; fi
    printf '@@svc %s\thttp\t%s\t%s\tHTTP %s %s\n' "$name" "$r" "$c" "${{code:-none}}" "$(printf '%s' "$out" | tail -n 3 | tr '\t\n' '  ' | cut -c1-300)"
}}
"""


@dataclass(frozen=True, slots=True)
class ServiceState:
    """One service as the collector found it. ``config_ok`` None: no config test."""

    name: str  # "http/nginx", "db/mysql", "php-fpm"
    kind: str  # http | db | php
    running: bool
    config_ok: bool | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "running": self.running,
            "config_ok": self.config_ok,
            "detail": self.detail,
        }


@dataclass(slots=True)
class ServerSample:
    server: str
    at: float
    reachable: bool
    error: str = ""
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    cpus: int | None = None
    uptime_s: float | None = None
    mem_total_mb: int | None = None
    mem_available_mb: int | None = None
    swap_total_mb: int | None = None
    swap_free_mb: int | None = None
    disks: list[dict[str, Any]] = field(default_factory=list)
    services: list[ServiceState] = field(default_factory=list)
    pending_reboot: bool | None = None
    ntp_synchronized: bool | None = None
    clock_offset_ms: float | None = None
    clock_error_ms: float | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "load1": self.load1,
            "load5": self.load5,
            "load15": self.load15,
            "cpus": self.cpus,
            "uptime_s": self.uptime_s,
            "mem_total_mb": self.mem_total_mb,
            "mem_available_mb": self.mem_available_mb,
            "swap_total_mb": self.swap_total_mb,
            "swap_free_mb": self.swap_free_mb,
            "disks": [dict(d) for d in self.disks],
            "services": [s.to_json() for s in self.services],
            "pending_reboot": self.pending_reboot,
            "ntp_synchronized": self.ntp_synchronized,
            "clock_offset_ms": self.clock_offset_ms,
            "clock_error_ms": self.clock_error_ms,
        }


def _http_probe_url(plugin: HttpService) -> str:
    address = plugin.probe_address
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{plugin.int_setting('http_port')}/"


def server_script(server: Server, *, timeout: float = 20.0) -> tuple[str, list[str]]:
    """The collector's script and its arguments for ``server`` (its services' checks)."""
    body = [PRELUDE, _HEAD]
    calls: list[str] = []
    args: list[str] = [str(int(timeout))]
    n_http = 0

    def pos(values: Sequence[str]) -> str:
        # The script shifted $1 (the timeout) away: its own args start at $1 again.
        first = len(args)  # index in args of the first value, 0-based with the timeout
        args.extend(values)
        return " ".join(f'"${{{first + i}}}"' for i in range(len(values)))

    for service in server.services:
        label = f"{service.kind}/{service.type}"
        try:
            plugin = get_service(service.kind, service.type)(server, service)
        except (UnknownServiceError, PluginLoadError, ValidationError):
            continue
        if service.kind is ServiceKind.HTTP and isinstance(plugin, HttpService):
            fn = f"svc_http_{n_http}"
            n_http += 1
            body.append(
                _HTTP_FN.format(
                    n=fn.rsplit("_", 1)[1],
                    vars=plugin.service_vars,
                    functions=plugin.service_functions,
                )
            )
            calls.append(f"{fn} {pos([label, _http_probe_url(plugin), *plugin.service_args()])}")
        elif service.kind is ServiceKind.DB and service.type == "mysql":
            host = plugin.setting("host")
            values = [label, host, str(plugin.int_setting("port")), plugin.setting("socket")]
            calls.append(f"svc_db_mysql {pos(values)}")
        elif service.kind is ServiceKind.DB and service.type == "pgsql":
            values = [label, plugin.setting("host"), str(plugin.int_setting("port"))]
            calls.append(f"svc_db_pgsql {pos(values)}")
    body.extend(calls)
    body.append("exit 0\n")
    return "\n".join(body), args


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_df(lines: list[str], inode_lines: list[str]) -> list[dict[str, Any]]:
    inodes: dict[str, tuple[int, int]] = {}
    for line in inode_lines[1:]:
        parts = line.split()
        if len(parts) >= 6 and parts[1].isdigit() and parts[2].isdigit():
            inodes[" ".join(parts[5:])] = (int(parts[1]), int(parts[2]))
    disks = []
    for line in lines[1:]:
        parts = line.split()
        if len(parts) < 7 or parts[1] in SKIP_FS:
            continue
        if not (parts[2].isdigit() and parts[3].isdigit() and parts[4].isdigit()):
            continue
        mount = " ".join(parts[6:])
        size, used, avail = int(parts[2]), int(parts[3]), int(parts[4])
        if size == 0:
            continue
        total_i, used_i = inodes.get(mount, (0, 0))
        disks.append(
            {
                "mount": mount,
                "filesystem": parts[0],
                "type": parts[1],
                # "used + available" is what users may fill (the root reserve left out),
                # as df's own Use% counts it
                "size_mb": round((used + avail) / 1024, 1),
                "used_mb": round(used / 1024, 1),
                "inodes_pct": round(100.0 * used_i / total_i, 2) if total_i else None,
            }
        )
    return disks


def parse(sample: ServerSample, lines: Sequence[str]) -> None:
    """Fill ``sample`` from the script's output lines."""
    df: list[str] = []
    dfi: list[str] = []
    mem: dict[str, int] = {}
    for line in lines:
        if not line.startswith("@@"):
            continue
        tag, _, rest = line[2:].partition(" ")
        if tag == "load":
            parts = rest.split()
            if len(parts) >= 3:
                sample.load1, sample.load5, sample.load15 = (_num(p) for p in parts[:3])
        elif tag == "cpus" and rest.strip().isdigit():
            sample.cpus = int(rest)
        elif tag == "uptime":
            sample.uptime_s = _num(rest.strip())
        elif tag == "mem":
            key, _, value = rest.partition(":")
            words = value.split()
            if words and words[0].isdigit():
                mem[key.strip()] = int(words[0]) // 1024
        elif tag == "df":
            df.append(rest)
        elif tag == "dfi":
            dfi.append(rest)
        elif tag == "reboot":
            sample.pending_reboot = rest.strip() == "yes"
        elif tag == "ntp":
            value = rest.strip()
            sample.ntp_synchronized = {"yes": True, "no": False}.get(value)
        elif tag == "svc":
            parts = rest.split("\t")
            if len(parts) >= 4:
                config = {"1": True, "0": False}.get(parts[3])
                sample.services.append(
                    ServiceState(
                        name=sanitize_line(parts[0]),
                        kind=parts[1],
                        running=parts[2] == "1",
                        config_ok=config,
                        detail=sanitize_line(parts[4] if len(parts) > 4 else "").strip()[:300],
                    )
                )
    sample.mem_total_mb = mem.get("MemTotal")
    sample.mem_available_mb = mem.get("MemAvailable")
    sample.swap_total_mb = mem.get("SwapTotal")
    sample.swap_free_mb = mem.get("SwapFree")
    sample.disks = _parse_df(df, dfi)


async def collect_server(
    transport: Transport, server: Server, *, timeout: float = 30.0
) -> ServerSample:
    """Read ``server``'s state in one round; never raises for an unreachable server."""
    script, args = server_script(server, timeout=max(3.0, timeout / 3))
    started = time.time()
    first: list[float] = []
    clock: list[str] = []

    def on_line(line: Line) -> None:
        if not first and line.stream is Stream.STDOUT and line.text.startswith("@@clock "):
            first.append(time.time())
            clock.append(line.text[8:].strip())

    sample = ServerSample(server=server.name, at=started, reachable=False)
    try:
        result = await transport.run_script(
            script, args, sudo=True, on_line=on_line, capture=True, timeout=timeout
        )
    except TransportError as exc:
        sample.error = sanitize_line(str(exc))
        sample.seconds = time.time() - started
        return sample
    sample.seconds = time.time() - started
    if result.unknown or not first:
        why = result.reason or "the collector's output ended early"
        sample.error = sanitize_line(f"no answer: {why}" if result.unknown else why)
        return sample
    sample.reachable = True
    if not result.ok:
        sample.error = sanitize_line(
            f"the collector exited with {result.exit_code}: " + " ".join(result.stderr[-3:])
        )[:500]
    parse(sample, result.stdout)
    remote = _num(clock[0]) if clock else None
    if remote is not None:
        midpoint = (started + first[0]) / 2
        sample.clock_offset_ms = round((remote - midpoint) * 1000, 1)
        sample.clock_error_ms = round((first[0] - started) * 500, 1)
    return sample

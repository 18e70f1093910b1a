"""Server verify: what a server is, what it runs, whether its services work, and its layout.

:func:`verify_server` connects through a transport and

1. records facts: OS (``/etc/os-release``), kernel, CPUs, memory, disks (``df -P``);
2. detects installed software and its version (nginx, Apache, php-fpm, MariaDB/MySQL,
   PostgreSQL, bind, restic, and the tools Cockpit uses: curl, flock, openssl, lego…);
3. lays out Cockpit's directories under the server's root, idempotently
   (:func:`lay_out`): the modes are set each time, a symlink in their place is refused;
4. checks each configured service with its plugin (a config test, a scratch database
   created, used and dropped…).

The result, :class:`ServerFacts`, is plain data (:meth:`ServerFacts.to_json`) with one
:class:`~cockpit.backends.services.base.Check` per step: ``ok``/``failed``/``skipped``
and the reason. Verify never raises for a server that is down or broken: the failure is
in the result, with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cockpit.backends.secrets import SecretStore
from cockpit.backends.services import PluginLoadError, UnknownServiceError, get_service
from cockpit.backends.services.base import (
    Check,
    CheckStatus,
    ServiceError,
    ServicePlugin,
    run_step,
    server_paths,
)
from cockpit.backends.transport import Transport, TransportError
from cockpit.model import Server, Service, ValidationError

__all__ = ["LayoutEntry", "ServerFacts", "lay_out", "verify_server"]

_FACTS: Final = r"""
section() { printf '@@%s\n' "$1"; }
section os-release; cat /etc/os-release 2>/dev/null
section kernel; uname -r; uname -m
section hostname; hostname 2>/dev/null || uname -n
section cpus; getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null
section meminfo; grep -E '^(MemTotal|MemAvailable|SwapTotal|SwapFree):' /proc/meminfo 2>/dev/null
section uptime; cut -d' ' -f1 /proc/uptime 2>/dev/null
section df; df -P -T -k 2>/dev/null || df -P -k 2>/dev/null
section software
sw() {
    name=$1 path=$2
    shift 2
    banner=$("$path" "$@" 2>&1 </dev/null | grep -v '^ *$' | head -n 1 | tr '\t' ' ')
    printf '%s\t%s\t%s\n' "$name" "$path" "$banner"
}
first() {
    name=$1 flag=$2
    shift 2
    for b in "$@"; do
        if p=$(command -v -- "$b" 2>/dev/null); then sw "$name" "$p" $flag; return 0; fi
    done
    return 0
}
first nginx -v nginx
first apache -v apache2 httpd
for p in /usr/sbin/php-fpm*; do [ -x "$p" ] && sw "$(basename -- "$p")" "$p" -v; done
first mariadb-server --version mariadbd
first mysql-server --version mysqld
for p in /usr/lib/postgresql/*/bin/postgres; do [ -x "$p" ] && sw "postgresql-$(basename -- "$(dirname -- "$(dirname -- "$p")")")" "$p" --version; done
first postgres --version postgres
first mariadb-client --version mariadb
first mysql-client --version mysql
first psql --version psql
first pg_dump --version pg_dump
first mariadb-dump --version mariadb-dump mysqldump
first bind -v named
first restic version restic
first php -v php
first curl --version curl
first wget --version wget
first openssl version openssl
first lego --version lego
first certbot --version certbot
first flock --version flock
first rsync --version rsync
first tar --version tar
first sudo --version sudo
exit 0
"""

_LAYOUT: Final = r"""
owner=$1
shift
group=$(id -gn -- "$owner") || { echo "cockpit: no such user: $owner" >&2; exit 1; }
while [ "$#" -ge 2 ]; do
    d=$1 mode=$2
    shift 2
    if [ -L "$d" ]; then echo "cockpit: $d is a symbolic link: refusing to use it" >&2; exit 1; fi
    if [ -e "$d" ] && ! [ -d "$d" ]; then echo "cockpit: $d exists and is not a directory" >&2; exit 1; fi
    if [ -d "$d" ]; then state=kept; else state=created; fi
    install -d -m "$mode" -o "$owner" -g "$group" -- "$d" || exit 1
    printf 'layout\t%s\t%s\t%s\n' "$state" "$mode" "$d"
done
"""

_VERSION_RE: Final = re.compile(r"\d+(?:\.\d+)+(?:[-+~][0-9A-Za-z.+~-]*)?")
#: Pseudo and memory file systems not worth listing as disks.
_SKIP_FS: Final = frozenset(
    {"tmpfs", "devtmpfs", "squashfs", "ramfs", "proc", "sysfs", "cgroup", "cgroup2",
     "devpts", "mqueue", "efivarfs", "autofs", "securityfs", "debugfs", "tracefs", "nsfs"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class LayoutEntry:
    path: str
    mode: str
    state: str  # created | kept

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "mode": self.mode, "state": self.state}


@dataclass(slots=True)
class ServerFacts:
    """What verify found. ``to_json`` gives the plain data the store keeps."""

    server: str
    checked_at: datetime
    os: dict[str, str] = field(default_factory=dict)
    kernel: str = ""
    arch: str = ""
    hostname: str = ""
    cpus: int | None = None
    memory: dict[str, int] = field(default_factory=dict)
    uptime_seconds: float | None = None
    disks: list[dict[str, Any]] = field(default_factory=list)
    software: dict[str, dict[str, str | None]] = field(default_factory=dict)
    layout: list[LayoutEntry] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if check.status is CheckStatus.FAILED]

    @property
    def health(self) -> str:
        return "ok" if self.ok else "failed"

    @property
    def reason(self) -> str:
        """Why verify failed (the failed checks, in order), or "" when it passed."""
        return "; ".join(f"{c.name}: {c.reason}" for c in self.failed)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "checked_at": self.checked_at.isoformat(),
            "health": self.health,
            "reason": self.reason,
            "os": dict(self.os),
            "kernel": self.kernel,
            "arch": self.arch,
            "hostname": self.hostname,
            "cpus": self.cpus,
            "memory": dict(self.memory),
            "uptime_seconds": self.uptime_seconds,
            "disks": [dict(d) for d in self.disks],
            "software": {k: dict(v) for k, v in self.software.items()},
            "layout": [e.to_json() for e in self.layout],
            "checks": [c.to_json() for c in self.checks],
        }


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def _sections(lines: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith("@@"):
            current = out.setdefault(line[2:].strip(), [])
        elif current is not None:
            current.append(line)
    return out


def _os_release(lines: Sequence[str]) -> dict[str, str]:
    wanted = {"ID", "ID_LIKE", "NAME", "VERSION_ID", "VERSION_CODENAME", "PRETTY_NAME"}
    out: dict[str, str] = {}
    for line in lines:
        key, eq, value = line.partition("=")
        if eq and key in wanted:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            out[key.lower()] = value
    return out


def _meminfo(lines: Sequence[str]) -> dict[str, int]:
    names = {
        "MemTotal": "total_mb",
        "MemAvailable": "available_mb",
        "SwapTotal": "swap_total_mb",
        "SwapFree": "swap_free_mb",
    }
    out: dict[str, int] = {}
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key in names and parts and parts[0].isdigit():
            out[names[key]] = int(parts[0]) // 1024
    return out


def _df(lines: Sequence[str]) -> list[dict[str, Any]]:
    if not lines:
        return []
    typed = "Type" in lines[0].split()
    disks: list[dict[str, Any]] = []
    for line in lines[1:]:
        parts = line.split()
        need = 7 if typed else 6
        if len(parts) < need:
            continue
        fs_type = parts[1] if typed else ""
        numbers = parts[2:6] if typed else parts[1:5]
        mount = " ".join(parts[need - 1 :])
        if fs_type in _SKIP_FS or not all(n.isdigit() or n.endswith("%") for n in numbers):
            continue
        size, used, avail = (int(n) for n in numbers[:3])
        disks.append(
            {
                "filesystem": parts[0],
                "type": fs_type,
                "mountpoint": mount,
                "size_mb": size // 1024,
                "used_mb": used // 1024,
                "available_mb": avail // 1024,
                "use_percent": round(100 * used / (used + avail), 1) if used + avail else 0.0,
            }
        )
    return disks


def _software(lines: Sequence[str]) -> dict[str, dict[str, str | None]]:
    out: dict[str, dict[str, str | None]] = {}
    for line in lines:
        parts = line.split("\t", 2)
        if len(parts) != 3 or not parts[0]:
            continue
        name, path, banner = parts
        match = _VERSION_RE.search(banner.split(":", 1)[-1]) or _VERSION_RE.search(banner)
        out.setdefault(
            name,
            {"path": path, "version": match.group() if match else None, "banner": banner[:200]},
        )
    return out


def _apply_facts(facts: ServerFacts, lines: Sequence[str]) -> None:
    sections = _sections(lines)
    facts.os = _os_release(sections.get("os-release", []))
    kernel = sections.get("kernel", [])
    facts.kernel = kernel[0] if kernel else ""
    facts.arch = kernel[1] if len(kernel) > 1 else ""
    host = sections.get("hostname", [])
    facts.hostname = host[0] if host else ""
    cpus = sections.get("cpus", [])
    facts.cpus = int(cpus[0]) if cpus and cpus[0].strip().isdigit() else None
    facts.memory = _meminfo(sections.get("meminfo", []))
    uptime = sections.get("uptime", [])
    try:
        facts.uptime_seconds = float(uptime[0]) if uptime else None
    except ValueError:
        facts.uptime_seconds = None
    facts.disks = _df(sections.get("df", []))
    facts.software = _software(sections.get("software", []))


# ---------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------


async def lay_out(transport: Transport, server: Server) -> list[LayoutEntry]:
    """Create Cockpit's directories under ``server.root`` (owned by the login user,
    with their modes), or converge them. Raises :class:`ServiceError` on refusal."""
    args = [server.user]
    for path, mode in server_paths(server).layout():
        args += [path, f"{mode:o}"]
    result = await run_step(transport, "lay out Cockpit's directories", _LAYOUT, args, sudo=True)
    if not result.ok:
        raise ServiceError(
            f"cannot lay out Cockpit's directories under {server.root}", output=result.stderr
        )
    entries = []
    for line in result.stdout:
        parts = line.split("\t")
        if len(parts) == 4 and parts[0] == "layout":
            entries.append(LayoutEntry(path=parts[3], mode=parts[2], state=parts[1]))
    return entries


def _plugin(server: Server, service: Service, secret_store: SecretStore | None) -> ServicePlugin:
    return get_service(service.kind, service.type)(server, service, secret_store=secret_store)


async def verify_server(
    transport: Transport,
    server: Server,
    *,
    secret_store: SecretStore | None = None,
    now: datetime | None = None,
) -> ServerFacts:
    """Verify ``server`` through ``transport``; see the module doc. Never raises for a
    server-side problem: each one is a failed check with its reason."""
    facts = ServerFacts(server=server.name, checked_at=now or datetime.now(UTC))
    try:
        result = await run_step(transport, "read the server's facts", _FACTS, time_limit=120)
    except (TransportError, ServiceError) as exc:
        facts.checks.append(Check.failed("connect", str(exc)))
        return facts
    if not result.ok:
        facts.checks.append(
            Check.failed("facts", f"the facts script failed (exit {result.exit_code})")
        )
    else:
        _apply_facts(facts, result.stdout)
        summary = facts.os.get("pretty_name") or facts.os.get("name") or "unknown OS"
        facts.checks.append(Check.passed("facts", f"{summary}, kernel {facts.kernel}"))
    try:
        facts.layout = await lay_out(transport, server)
    except (TransportError, ServiceError) as exc:
        facts.checks.append(Check.failed("layout", str(exc)))
    else:
        created = [e.path for e in facts.layout if e.state == "created"]
        facts.checks.append(
            Check.passed(
                "layout",
                f"created {len(created)} of {len(facts.layout)} directories"
                if created
                else "in place",
                created=created,
            )
        )
    for service in server.services:
        label = f"{service.kind}/{service.type}"
        try:
            plugin = _plugin(server, service, secret_store)
        except UnknownServiceError as exc:
            facts.checks.append(Check.skipped(label, f"no plugin installed: {exc}"))
            continue
        except (PluginLoadError, ValidationError) as exc:
            facts.checks.append(Check.failed(label, str(exc)))
            continue
        try:
            facts.checks.extend(await plugin.check(transport))
        except (TransportError, ServiceError) as exc:
            facts.checks.append(Check.failed(label, str(exc)))
    return facts

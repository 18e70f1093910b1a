"""php-fpm pools: one per site, its own Unix user and socket (the vhost's PHP upstream).

:func:`render_pool` renders ``php-fpm/pool.conf.j2`` (overridable like every template);
the vhost points at the pool's socket through :attr:`Vhost.php_socket
<cockpit.backends.services.http.Vhost>`.

:class:`PhpFpm` installs and removes pool files on a server the way
:class:`~cockpit.backends.services.http.HttpService` applies vhosts: under a ``flock``,
the live file kept as a hard link, the new one renamed over it, ``php-fpm -t`` run with
it in place, then a reload (``USR2`` to the master, or ``systemctl reload``) and a wait
for the pool's socket. Any failure puts the previous file back byte for byte and
reloads again. Where php-fpm lives comes from the http service's ``php_fpm_*`` settings;
empty values mean the newest ``/usr/sbin/php-fpmX.Y`` and Debian's paths for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from cockpit.backends.services.base import ServiceError, run_step
from cockpit.backends.services.render import render_template
from cockpit.backends.transport import LineHandler, Transport, TransportError
from cockpit.model import ValidationError, validate_name, validate_path, validate_unix_name

__all__ = ["PhpFpm", "PhpFpmSettings", "PhpPool", "PoolApplyError", "render_pool"]


@dataclass(frozen=True, slots=True)
class PhpPool:
    name: str
    user: str
    group: str
    listen: str  # the Unix socket path
    listen_owner: str  # the web server's user (it connects to the socket)
    listen_group: str
    docroot: str
    tmp_dir: str
    max_children: int = 5
    #: Where the pool's PHP may open files (empty: the docroot and the tmp dir).
    open_basedir: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        validate_name(self.name, "pool.name")
        for value, field_name in (
            (self.user, "pool.user"),
            (self.group, "pool.group"),
            (self.listen_owner, "pool.listen_owner"),
            (self.listen_group, "pool.listen_group"),
        ):
            validate_unix_name(value, field_name)
        for value, field_name in (
            (self.listen, "pool.listen"),
            (self.docroot, "pool.docroot"),
            (self.tmp_dir, "pool.tmp_dir"),
        ):
            validate_path(value, field_name)
        for value in self.open_basedir:
            validate_path(value, "pool.open_basedir")
        if isinstance(self.max_children, bool) or not 1 <= self.max_children <= 1000:
            raise ValidationError("pool.max_children", "must be 1-1000", self.max_children)

    @property
    def basedirs(self) -> list[str]:
        return list(self.open_basedir) or [self.docroot, self.tmp_dir]


def render_pool(pool: PhpPool) -> str:
    return render_template(
        "php-fpm/pool.conf.j2",
        {
            "pool": pool.name,
            "user": pool.user,
            "group": pool.group,
            "listen": pool.listen,
            "listen_owner": pool.listen_owner,
            "listen_group": pool.listen_group,
            "docroot": pool.docroot,
            "tmp_dir": pool.tmp_dir,
            "open_basedir": pool.basedirs,
            "max_children": pool.max_children,
        },
    )


@dataclass(frozen=True, slots=True)
class PhpFpmSettings:
    """Where php-fpm is on a server; an empty value is found on the server itself."""

    binary: str = ""  # /usr/sbin/php-fpm8.2 (empty: the newest /usr/sbin/php-fpmX.Y)
    main_conf: str = ""  # /etc/php/X.Y/fpm/php-fpm.conf
    pool_dir: str = ""  # /etc/php/X.Y/fpm/pool.d
    pid_file: str = ""  # /run/php/phpX.Y-fpm.pid (reload = signal)
    reload: str = "systemctl"  # or "signal"
    unit: str = ""  # phpX.Y-fpm

    def __post_init__(self) -> None:
        for value, name in (
            (self.binary, "php_fpm_binary"),
            (self.main_conf, "php_fpm_conf"),
            (self.pool_dir, "php_fpm_pool_dir"),
            (self.pid_file, "php_fpm_pid"),
        ):
            if value:
                validate_path(value, name)
        if self.reload not in ("systemctl", "signal"):
            raise ValidationError("php_fpm_reload", "must be systemctl or signal", self.reload)

    def args(self) -> list[str]:
        return [
            self.binary,
            self.main_conf,
            self.pool_dir,
            self.pid_file,
            self.reload,
            self.unit,
        ]


class PoolApplyError(ServiceError):
    """Installing or removing a pool failed at ``stage``; the previous file is back."""

    def __init__(self, message: str, *, stage: str, output: Sequence[str] = ()) -> None:
        super().__init__(message, output=output)
        self.stage = stage


# Reads the six php-fpm arguments, fills in what is empty, defines fpm_test/fpm_reload.
_RESOLVE: Final = r"""
fpm_bin=$1 fpm_conf=$2 fpm_pools=$3 fpm_pid=$4 fpm_mode=$5 fpm_unit=$6
shift 6
if [ -z "$fpm_bin" ]; then
    fpm_bin=$(ls -1 /usr/sbin/php-fpm[0-9]* 2>/dev/null | sort -V | tail -n 1)
    [ -n "$fpm_bin" ] || { echo "cockpit: php-fpm is not installed (apt-get install php-fpm)" >&2; exit 69; }
fi
fpm_ver=$(basename -- "$fpm_bin" | sed -n 's/^php-fpm\([0-9][0-9.]*\)$/\1/p')
[ -n "$fpm_conf" ] || fpm_conf=/etc/php/$fpm_ver/fpm/php-fpm.conf
[ -n "$fpm_pools" ] || fpm_pools=/etc/php/$fpm_ver/fpm/pool.d
[ -n "$fpm_pid" ] || fpm_pid=/run/php/php$fpm_ver-fpm.pid
[ -n "$fpm_unit" ] || fpm_unit=php$fpm_ver-fpm
fpm_test() {
    fpm_out=$("$fpm_bin" -t -y "$fpm_conf" 2>&1)
    fpm_rc=$?
    [ "$fpm_rc" = 0 ] || printf '%s\n' "$fpm_out" >&2
    return "$fpm_rc"
}
fpm_reload() {
    case $fpm_mode in
        signal)
            [ -s "$fpm_pid" ] || { echo "cockpit: php-fpm is not running (no $fpm_pid)" >&2; return 1; }
            kill -USR2 "$(cat -- "$fpm_pid")"
            ;;
        *) systemctl reload -- "$fpm_unit" ;;
    esac
}
"""

# Args: the six php-fpm ones, then lock, pool name, new file ("" = remove), socket ("").
_APPLY: Final = (
    _RESOLVE
    + r"""
lock=$1 name=$2 new=$3 sock=$4
say() { printf 'cockpit: %s\n' "$*" >&2; }
live="$fpm_pools/$name.conf"
backup="$fpm_pools/.$name.conf.cockpit-old"
drop_new() { if [ -n "$new" ]; then rm -f -- "$new"; fi; }
mkdir -p -- "$(dirname -- "$lock")" && exec 9>>"$lock" || { say "cannot open $lock"; drop_new; exit 70; }
flock -w 120 9 || { say "another change to php-fpm did not finish within 120 s"; drop_new; exit 75; }
had=0
if [ -e "$live" ]; then had=1; fi
if [ -n "$new" ] && [ "$had" = 1 ] && cmp -s -- "$new" "$live"; then
    rm -f -- "$new"
    if [ -z "$sock" ] || [ -S "$sock" ]; then printf 'cockpit-result changed=0\n'; exit 0; fi
    changed=0
elif [ -z "$new" ] && [ "$had" = 0 ]; then
    printf 'cockpit-result changed=0\n'
    exit 0
else
    changed=1
fi
restore() {
    if [ "$had" = 1 ]; then mv -f -- "$backup" "$live"; else rm -f -- "$live"; fi
    say "the previous pool configuration is back"
}
if [ -n "$sock" ]; then
    mkdir -p -m 755 -- "$(dirname -- "$sock")" || { say "cannot create the socket's dir"; drop_new; exit 70; }
fi
if [ "$changed" = 1 ]; then
    rm -f -- "$backup"
    if [ "$had" = 1 ]; then ln -- "$live" "$backup" || { say "cannot keep $live"; drop_new; exit 70; }; fi
    if [ -n "$new" ]; then
        mv -f -- "$new" "$live" || { say "cannot install $live"; drop_new; exit 70; }
    else
        rm -f -- "$live"
    fi
    if ! fpm_test; then say "the php-fpm configuration test failed"; restore; exit 10; fi
fi
if ! fpm_reload; then
    say "the php-fpm reload failed"
    if [ "$changed" = 1 ]; then restore; fpm_test && fpm_reload; fi
    exit 11
fi
if [ -n "$sock" ]; then
    i=0
    while ! [ -S "$sock" ]; do
        i=$((i + 1))
        if [ "$i" -gt 150 ]; then
            say "the pool's socket $sock did not appear within 30 s"
            if [ "$changed" = 1 ]; then restore; fpm_test && fpm_reload; fi
            exit 12
        fi
        sleep 0.2
    done
fi
rm -f -- "$backup"
printf 'cockpit-result changed=%s\n' "$changed"
"""
)

_READ: Final = (
    _RESOLVE
    + r"""
live="$fpm_pools/$1.conf"
[ -e "$live" ] || exit 3
cat -- "$live"
"""
)

_TEMP: Final = (
    _RESOLVE
    + r"""
mkdir -p -m 755 -- "$fpm_pools" || exit 1
printf '%s\n' "$fpm_pools/.$1.conf.cockpit-new"
"""
)

_STAGES: Final = {
    10: "config test",
    11: "reload",
    12: "socket",
    69: "install",
    70: "install",
    75: "lock",
}


class PhpFpm:
    """php-fpm on one server: install, read and remove per-site pools."""

    def __init__(self, settings: PhpFpmSettings, lock_path: str) -> None:
        self.settings = settings
        self.lock_path = validate_path(lock_path, "php-fpm lock")

    async def read_pool(self, transport: Transport, name: str) -> str | None:
        """The live pool file's text, or None when there is none."""
        name = validate_name(name, "pool.name")
        result = await run_step(
            transport, f"read the pool {name}", _READ, [*self.settings.args(), name], sudo=True
        )
        if result.exit_code == 3:
            return None
        if not result.ok:
            raise ServiceError(f"cannot read the php-fpm pool {name}", output=result.stderr)
        return "".join(line + "\n" for line in result.stdout)

    async def apply_pool(
        self, transport: Transport, pool: PhpPool, *, on_line: LineHandler | None = None
    ) -> bool:
        """Install (or converge) a pool, test, reload and wait for its socket; the
        previous file comes back on any failure. Returns whether anything changed."""
        return await self._apply(transport, pool.name, render_pool(pool), pool.listen, on_line)

    async def restore_pool(
        self, transport: Transport, name: str, text: str | None, *, socket: str = ""
    ) -> bool:
        """Put a pool file back as it was (``text``), or remove it (None)."""
        return await self._apply(transport, name, text, socket, None)

    async def remove_pool(
        self, transport: Transport, name: str, *, on_line: LineHandler | None = None
    ) -> bool:
        return await self._apply(transport, name, None, "", on_line)

    async def _apply(
        self,
        transport: Transport,
        name: str,
        text: str | None,
        socket: str,
        on_line: LineHandler | None,
    ) -> bool:
        name = validate_name(name, "pool.name")
        if socket:
            validate_path(socket, "pool.listen")
        fpm = self.settings.args()
        temp = ""
        if text is not None:
            result = await run_step(
                transport, "find the pool dir", _TEMP, [*fpm, name], sudo=True, time_limit=60
            )
            temp = result.stdout[-1].strip() if result.ok and result.stdout else ""
            if not temp:
                raise PoolApplyError(
                    f"cannot find php-fpm's pool dir for {name}",
                    stage="install",
                    output=result.stderr,
                )
            validate_path(temp, "pool temp file")
            try:
                await transport.upload(text.encode("utf-8"), temp, mode=0o644, sudo=True)
            except TransportError as exc:
                raise PoolApplyError(
                    f"cannot upload the pool {name}: {exc}", stage="upload"
                ) from exc
        result = await run_step(
            transport,
            f"{'install' if text is not None else 'remove'} the php-fpm pool {name}",
            _APPLY,
            [*fpm, self.lock_path, name, temp, socket],
            sudo=True,
            on_line=on_line,
        )
        if not result.ok:
            stage = _STAGES.get(result.exit_code or 0, "apply")
            raise PoolApplyError(
                f"php-fpm pool {name}: the {stage} failed (exit {result.exit_code}); "
                "the previous pool configuration is back",
                stage=stage,
                output=[*result.stdout, *result.stderr],
            )
        return any(line.strip() == "cockpit-result changed=1" for line in result.stdout)

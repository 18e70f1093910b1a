"""The site lifecycle: install, verify, disable, enable, delete, login-reset.

Every kind here acts on one site of the inventory, through its platform's plugin
(:mod:`cockpit.backends.platforms`), its server's http service (vhost, php-fpm pool)
and its database server's db service. :func:`site_env` resolves all of that once per
run (and re-validates every name the store gave, before any remote command); the
steps share it through ``ctx.state``.

``site.install`` (each step undoes itself when a later one fails, in reverse):

1. ``check``: the names, the platform (not locked), the services, the database engine;
   a missing codebase is refused unless ``source`` is given and the platform type is
   single-site (WordPress, static, php);
2. ``platform codebase`` (only then): the platform's codebase from ``source``, as
   ``platform.install`` puts it (removed again if a later step fails);
3. ``unix user``: ``s_<domain>`` (a system user, its home the site dir), created or,
   when it exists, proved ours by its comment;
4. ``directories``: the site dir (0750 user:web group), private (2750), tmp (0700);
5. ``codebase``: the docroot filled from the platform's codebase, the platform's own
   dirs (uploads…);
6. ``database``: a database and a user with privileges on it only (password in the
   secrets store);
7. ``settings``: the platform's config files (credentials; 0640 user:web group);
8. ``php pool``: the site's php-fpm pool, running as its user, confined to its dirs;
9. ``application``: the platform's installer (WordPress, drush), as the site user;
10. ``certificate`` (HTTPS on or required);
11. ``vhost``: aliases, redirection, HTTPS mode; config test, reload, probe;
12. ``health``: the platform's health answer, through the web server on loopback;
13. ``record``: the site's record on the server (``<root>/run/sites/<domain>.json``).

``site.verify`` re-renders and converges each piece and logs what it changed as a diff
(credentials redacted). ``site.disable`` serves the disabled page (503) in place of the
site, data untouched; ``site.enable`` serves it again. ``site.delete`` is refused
unless the site is disabled or ``force`` is given; it takes a backup first (through
:func:`backup_before_delete`), then removes vhost, pool, database and its user,
certificate and files, secrets and the Unix user, and marks the site deleted in the
store (its backups stay). A failure up to the database drop puts vhost and pool back
(the site serves as before); after it nothing is put back, and the result says what is
left. ``site.login-reset`` writes a one-time admin login link to the secrets
store.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cockpit.backends import transport_for
from cockpit.backends.platforms import (
    InstallOptions,
    PlatformError,
    PlatformPlugin,
    SiteLayout,
    plugin_for,
)
from cockpit.backends.secrets import SecretStore, site_db_password_key
from cockpit.backends.services import get_service
from cockpit.backends.services import plugin_for as service_for
from cockpit.backends.services.base import ServiceError, run_step
from cockpit.backends.services.certs import authority_for, site_names
from cockpit.backends.services.db import DbCredentials, DbService
from cockpit.backends.services.http import CertificatePaths, HttpService, Vhost
from cockpit.backends.services.php import PhpPool, render_pool
from cockpit.backends.transport import Line, LineHandler, Transport
from cockpit.backends.verify import lay_out
from cockpit.engine import (
    LogStream,
    Param,
    Step,
    StepFailed,
    TargetKind,
    TaskContext,
    TaskKind,
)
from cockpit.model import (
    DbEngine,
    HttpsMode,
    Platform,
    Server,
    ServiceKind,
    Site,
    SiteStatus,
    ValidationError,
    derive_db_name,
    derive_db_user,
    validate_domain,
    validate_email,
    validate_name,
    validate_path,
)
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds
from cockpit.tasks import platform as platform_tasks

__all__ = [
    "KINDS",
    "SiteEnv",
    "SiteRecord",
    "admin_password_key",
    "app_secret_key",
    "backup_before_delete",
    "login_link_key",
    "read_record",
    "secret_store",
    "site_env",
    "write_record",
]

#: The comment of every Unix user Cockpit makes for a site: how it knows its own.
USER_COMMENT: Final = "cockpit site {domain}"
#: Where ``site_env`` keeps the resolved environment in ``ctx.state``.
ENV: Final = "site_env"


# -- secrets ---------------------------------------------------------------------------


def secret_store(ctx: TaskContext) -> SecretStore:
    """The secrets store beside the store's database (``<data dir>/secrets``)."""
    return SecretStore(ctx.config.store.parent / "secrets")


def app_secret_key(domain: str) -> tuple[str, ...]:
    """A site's master secret (its WordPress keys, its Drupal hash salt derive from it)."""
    return ("sites", validate_domain(domain), "app-secret")


def admin_password_key(domain: str) -> tuple[str, ...]:
    """The application admin's password, as the installer set it."""
    return ("sites", validate_domain(domain), "admin-password")


def login_link_key(domain: str) -> tuple[str, ...]:
    """The last one-time login link ``site.login-reset`` made."""
    return ("sites", validate_domain(domain), "login-link")


# -- the site's record on its server ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteRecord:
    """What a server knows of a site Cockpit installed there (``<root>/run/sites/``).

    Later tasks read the database engine and server from it; every field is validated
    when read, so a changed record cannot steer a task to another site's things.
    """

    domain: str
    platform: str
    platform_type: str
    unix_user: str
    db_engine: DbEngine | None
    db_server: str | None
    database: str | None
    db_user: str | None
    installed_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "platform": self.platform,
            "platform_type": self.platform_type,
            "unix_user": self.unix_user,
            "db_engine": self.db_engine.value if self.db_engine else None,
            "db_server": self.db_server,
            "database": self.database,
            "db_user": self.db_user,
            "installed_at": self.installed_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], domain: str) -> SiteRecord:
        if data.get("domain") != domain:
            raise ValidationError("site record", "names another site", data.get("domain"))
        engine = data.get("db_engine")
        parsed = DbEngine.parse(engine, "site record.db_engine") if engine else None
        database = data.get("database")
        db_user = data.get("db_user")
        if parsed is not None and (
            database != derive_db_name(domain, parsed) or db_user != derive_db_user(domain, parsed)
        ):
            raise ValidationError("site record", "database names do not match the domain")
        server = data.get("db_server")
        return cls(
            domain=domain,
            platform=validate_name(data.get("platform"), "site record.platform"),
            platform_type=str(data.get("platform_type", "")),
            unix_user=str(data.get("unix_user", "")),
            db_engine=parsed,
            db_server=validate_name(server, "site record.db_server") if server else None,
            database=database if parsed else None,
            db_user=db_user if parsed else None,
            installed_at=float(data.get("installed_at", 0.0)),
        )


def record_path(server_root: str, domain: str) -> str:
    return f"{server_root}/run/sites/{validate_domain(domain)}.json"


_WRITE_RECORD: Final = r"""
dir=$(dirname -- "$2")
mkdir -p -m 700 -- "$dir" && chmod 700 -- "$dir" && mv -f -- "$1" "$2"
"""


async def read_record(transport: Transport, server_root: str, domain: str) -> SiteRecord | None:
    path = record_path(server_root, domain)
    result = await run_step(
        transport, f"read the record of {domain}", '[ -e "$1" ] || exit 3\ncat -- "$1"', [path],
        sudo=True,
    )  # fmt: skip
    if result.exit_code == 3:
        return None
    if not result.ok:
        raise ServiceError(f"cannot read {path}", output=result.stderr)
    try:
        data = json.loads("\n".join(result.stdout))
    except ValueError as exc:
        raise ValidationError("site record", f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError("site record", f"{path} is not a JSON object")
    return SiteRecord.from_json(data, domain)


async def write_record(transport: Transport, server_root: str, record: SiteRecord) -> None:
    path = record_path(server_root, record.domain)
    temp = f"{server_root}/tmp/.record-{record.domain}.json"  # noqa: S108 - the server's private tmp
    text = json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n"
    await transport.upload(text.encode(), temp, mode=0o600, sudo=True)
    result = await run_step(
        transport, f"write the record of {record.domain}", _WRITE_RECORD, [temp, path], sudo=True
    )
    if not result.ok:
        raise ServiceError(f"cannot write {path}", output=result.stderr)


async def remove_record(transport: Transport, server_root: str, domain: str) -> None:
    await run_step(
        transport, "remove the record", 'rm -f -- "$1"', [record_path(server_root, domain)],
        sudo=True,
    )  # fmt: skip


# -- the resolved environment ------------------------------------------------------------


@dataclass
class SiteEnv:
    """Everything a site's steps need, resolved and validated once per run."""

    site: Site
    platform: Platform
    server: Server
    transport: Transport
    plugin: PlatformPlugin
    http: HttpService
    layout: SiteLayout
    secrets: SecretStore
    record: SiteRecord | None = None
    engine: DbEngine | None = None
    db_server: Server | None = None
    db: DbService | None = None
    db_transport: Transport | None = None
    credentials: DbCredentials | None = None
    #: Transports this run opened itself (to a separate database server): closed at the end.
    owned: list[Transport] = field(default_factory=list)

    @property
    def web_user(self) -> str:
        return self.http.setting("web_user")

    @property
    def web_group(self) -> str:
        return self.http.setting("web_group")

    @property
    def server_root(self) -> str:
        return self.server.root

    @property
    def database(self) -> str | None:
        return derive_db_name(self.site.domain, self.engine) if self.engine else None

    @property
    def db_user(self) -> str | None:
        return derive_db_user(self.site.domain, self.engine) if self.engine else None

    def pool(self) -> PhpPool:
        return PhpPool(
            name=self.layout.unix_user,
            user=self.layout.unix_user,
            group=self.layout.unix_user,
            listen=self.http.php_socket(self.layout.unix_user),
            listen_owner=self.web_user,
            listen_group=self.web_group,
            docroot=self.layout.docroot,
            tmp_dir=self.layout.tmp_dir,
            open_basedir=self.layout.php_dirs,
        )

    def certificate(self) -> CertificatePaths | None:
        if self.site.https is HttpsMode.OFF:
            return None
        return self.http.certificate_paths(self.site.domain)

    def vhost(self, status: SiteStatus | None = None) -> Vhost:
        site = self.site if status is None else dataclasses.replace(self.site, status=status)
        return Vhost(
            site,
            self.layout.docroot,
            php_socket=self.pool().listen if self.plugin.uses_php else None,
            certificate=self.certificate(),
        )

    def db_offered(self) -> list[DbEngine]:
        server = self.db_server or self.server
        offered = []
        for svc in server.services:
            if svc.kind is ServiceKind.DB and svc.type in (e.value for e in DbEngine):
                offered.append(DbEngine(svc.type))
        return offered

    def bind_db(self, engine: DbEngine | None, config: Any) -> None:
        """Pick the db service of ``engine`` on the database server (None: no database)."""
        self.engine = engine
        if engine is None:
            self.db = None
            self.db_transport = None
            return
        server = self.db_server or self.server
        service = next(
            (s for s in server.services if s.kind is ServiceKind.DB and s.type == engine.value),
            None,
        )
        if service is None:
            raise StepFailed(f"the database server {server.name} has no {engine} service")
        plugin = get_service(ServiceKind.DB, engine.value)(
            server, service, secret_store=self.secrets
        )
        assert isinstance(plugin, DbService)
        self.db = plugin
        if server.name == self.server.name:
            self.db_transport = self.transport
        else:
            self.db_transport = transport_for(server, config)
            self.owned.append(self.db_transport)

    def stored_credentials(self) -> DbCredentials | None:
        """The site's database credentials, its password from the secrets store."""
        if self.db is None or self.database is None or self.db_user is None:
            return None
        password = self.secrets.get(*site_db_password_key(self.site.domain))
        if password is None:
            return None
        return self.db.credentials(self.database, self.db_user, password)

    async def close(self) -> None:
        owned, self.owned = self.owned, []
        for transport in owned:
            await transport.close()


async def site_env(ctx: TaskContext, *, need_record: bool = False) -> SiteEnv:
    """Resolve (once per run) and validate the site's environment; see the module doc."""
    existing = ctx.state.get(ENV)
    if isinstance(existing, SiteEnv):
        return existing
    site, platform, server, transport = ctx.site, ctx.platform, ctx.server, ctx.transport
    if site is None or platform is None or server is None or transport is None:
        raise StepFailed("this task needs a site with a platform on a server")
    # The store's rows are trusted as written; a task re-checks every name before any
    # remote command is built from it.
    try:
        site = Site(
            domain=site.domain,
            platform=site.platform,
            client=site.client,
            aliases=site.aliases,
            redirection=site.redirection,
            db_server=site.db_server,
            https=site.https,
            status=site.status,
        )
        platform = Platform(
            name=platform.name,
            server=platform.server,
            type=platform.type,
            root=platform.root,
            release=platform.release,
            locked=platform.locked,
        )
    except ValidationError as exc:
        raise StepFailed(f"refused before any remote command: {exc}") from exc
    plugin = plugin_for(platform)
    try:
        http = service_for(server, ServiceKind.HTTP)
    except LookupError as exc:
        raise StepFailed(str(exc)) from exc
    assert isinstance(http, HttpService)
    layout = plugin.layout(server.root, site.domain)
    store = secret_store(ctx)
    for value in (
        store.get(*site_db_password_key(site.domain)),
        store.get(*app_secret_key(site.domain)),
    ):
        if value:
            ctx.secret(value)
    env = SiteEnv(site, platform, server, transport, plugin, http, layout, store)
    db_name = site.db_server or server.name
    if db_name != server.name:
        async with ctx.db.read() as conn:
            db_server = await server_queries.get(conn, db_name)
        if db_server is None:
            raise StepFailed(f"the site's database server {db_name} is not in the inventory")
        env.db_server = db_server
    record = await read_record(transport, server.root, site.domain)
    if record is None and need_record:
        raise StepFailed(
            f"{site.domain} has no record on {server.name}: it is not installed there "
            "(run site.install)"
        )
    env.record = record
    if record is not None:
        env.bind_db(record.db_engine, ctx.config)
        env.credentials = env.stored_credentials()
    ctx.state[ENV] = env
    return env


async def _close_env(ctx: TaskContext) -> None:
    env = ctx.state.get(ENV)
    if isinstance(env, SiteEnv):
        await env.close()


# -- small remote scripts -----------------------------------------------------------------

#: Args: user, comment, home. Exit 65 when a user of that name is not ours.
_USER: Final = r"""
user=$1 comment=$2 home=$3
if line=$(getent passwd -- "$user"); then
    gecos=$(printf '%s\n' "$line" | cut -d: -f5)
    if [ "$gecos" != "$comment" ]; then
        echo "cockpit: the Unix user $user exists and is not this site's (comment: $gecos)" >&2
        exit 65
    fi
    echo "cockpit-user kept"
    exit 0
fi
nologin=$(command -v nologin || echo /usr/sbin/nologin)
useradd --system --user-group --no-create-home --home-dir "$home" --shell "$nologin" \
    --comment "$comment" -- "$user" || exit 1
echo "cockpit-user created"
"""

#: Args: user, comment. Removes the user (and its processes) only when it is ours.
_USER_DELETE: Final = r"""
user=$1 comment=$2
line=$(getent passwd -- "$user") || { echo "cockpit-user absent"; exit 0; }
gecos=$(printf '%s\n' "$line" | cut -d: -f5)
[ "$gecos" = "$comment" ] || { echo "cockpit: $user is not this site's user" >&2; exit 65; }
uid=$(id -u -- "$user")
pkill -KILL -U "$uid" 2>/dev/null
i=0
while ! userdel -- "$user" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -gt 25 ] && { userdel -- "$user"; exit 1; }
    pkill -KILL -U "$uid" 2>/dev/null
    sleep 0.2
done
getent group -- "$user" >/dev/null && groupdel -- "$user" 2>/dev/null
echo "cockpit-user removed"
"""

#: Args: user, web group, site dir, private dir, tmp dir. Creates or converges the
#: site's own dirs; prints "created" when the site dir is new, "fixed …" for drift.
_DIRS: Final = r"""
user=$1 group=$2 site=$3 private=$4 tmp=$5
for d in "$site" "$private" "$tmp"; do
    if [ -L "$d" ]; then echo "cockpit: $d is a symbolic link: refusing it" >&2; exit 65; fi
done
if [ -d "$site" ]; then echo "cockpit-dirs kept"; else echo "cockpit-dirs created"; fi
ensure() {
    d=$1 owner=$2 mode=$3
    if ! [ -d "$d" ]; then
        mkdir -p -- "$d" || exit 1
        chown -- "$owner" "$d" && chmod "$mode" -- "$d" || exit 1
        return
    fi
    now=$(stat -c '%U:%G %a' -- "$d")
    want="$owner $(printf '%s' "$mode" | sed 's/^0*//')"
    if [ "$now" != "$want" ]; then
        chown -- "$owner" "$d" && chmod "$mode" -- "$d" || exit 1
        echo "cockpit-fixed $d: $now -> $want"
    fi
}
ensure "$site" "$user:$group" 750
ensure "$private" "$user:$group" 2750
ensure "$tmp" "$user:$user" 700
"""

#: Args: site dir, the sites dir it must be inside. Removes the whole site dir.
_RMTREE: Final = r"""
dir=$1 parent=$2
case $dir in "$parent"/?*) ;; *) echo "cockpit: refusing to remove $dir" >&2; exit 65 ;; esac
[ -L "$dir" ] && { rm -f -- "$dir"; exit 0; }
rm -rf -- "$dir"
"""

_EXISTS: Final = '[ -e "$1" ] || [ -L "$1" ]'


async def _exists(transport: Transport, path: str) -> bool:
    return (await run_step(transport, f"look for {path}", _EXISTS, [path], sudo=True)).ok


async def _remove_tree(transport: Transport, path: str, parent: str) -> None:
    result = await run_step(transport, f"remove {path}", _RMTREE, [path, parent], sudo=True)
    if not result.ok:
        raise StepFailed(f"cannot remove {path}: {' / '.join(result.stderr[-3:])}")


def _diff(before: str | None, after: str, path: str) -> list[str]:
    lines = difflib.unified_diff(
        (before or "").splitlines(),
        after.splitlines(),
        fromfile=f"{path} (found)" if before is not None else "/dev/null",
        tofile=f"{path} (rendered)",
        lineterm="",
        n=1,
    )
    return list(lines)


def _log_output(ctx: TaskContext, lines: Sequence[str]) -> None:
    for line in lines:
        ctx.log(line)


def _lines(ctx: TaskContext) -> LineHandler:
    """A remote command's output lines into the task's log (redacted like every line)."""

    def write(line: Line) -> None:
        ctx.log(line.text, LogStream.STDOUT)

    return write


def _fail(what: str, exc: Exception) -> StepFailed:
    return StepFailed(f"{what}: {exc}")


# -- install ---------------------------------------------------------------------------


def _install_options(ctx: TaskContext, env: SiteEnv) -> InstallOptions:
    args = ctx.args
    scheme = "https" if env.site.https is not HttpsMode.OFF else "http"
    primary = env.site.redirection or env.site.domain
    return InstallOptions(
        title=str(args.get("title") or env.site.domain),
        admin_user=str(args.get("admin_user") or "admin"),
        admin_email=str(args.get("admin_email") or f"admin@{env.site.domain}"),
        url=f"{scheme}://{primary}",
    )


async def _check(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    site = env.site
    try:
        await lay_out(env.transport, env.server)
    except ServiceError as exc:
        raise _fail("cannot lay out Cockpit's dirs on the server", exc) from exc
    if site.status is SiteStatus.DELETED:
        raise StepFailed(f"{site.domain} is marked deleted; add it again to install it")
    if env.platform.locked and env.record is None:
        raise StepFailed(f"the platform {env.platform.name} is locked: it takes no new sites")
    ctx.state["platform_install"] = False
    if not await _exists(env.transport, env.platform.root):
        if "source" not in ctx.args:
            raise StepFailed(
                f"the codebase of {env.platform.name} ({env.platform.root}) is missing: "
                "run platform.install first"
                + (", or give site.install a source" if env.plugin.single_site else "")
            )
        if not env.plugin.single_site:
            raise StepFailed(
                f"the codebase of {env.platform.name} ({env.platform.root}) is missing, and a "
                f"{env.plugin.type} platform holds many sites: run platform.install first"
            )
        ctx.state["platform_install"] = True
        ctx.log(f"the codebase of {env.platform.name} is missing: installing it first")
    if env.record is not None and env.record.platform != env.platform.name:
        raise StepFailed(
            f"{site.domain} is installed on the platform {env.record.platform} of this server; "
            "moving it to another platform is a migration"
        )
    wanted = ctx.args.get("db_engine")
    try:
        engine = env.plugin.choose_engine(wanted, env.db_offered())
    except ValidationError as exc:
        raise StepFailed(str(exc)) from exc
    if env.record is not None and env.record.db_engine != engine and wanted is None:
        engine = env.record.db_engine
    elif env.record is not None and env.record.db_engine != engine:
        raise StepFailed(
            f"{site.domain} is installed with {env.record.db_engine or 'no database'}; "
            f"changing it to {engine or 'none'} is a migration"
        )
    env.bind_db(engine, ctx.config)
    options = _install_options(ctx, env)
    ctx.state["options"] = options
    ctx.log(
        f"{site.domain}: platform {env.platform.name} ({env.plugin.type}) on {env.server.name}, "
        f"Unix user {env.layout.unix_user}, docroot {env.layout.docroot}, database "
        + (
            f"{env.engine} {env.database} on {(env.db_server or env.server).name}"
            if env.engine
            else "none"
        )
    )


async def _platform_codebase(ctx: TaskContext) -> None:
    """A single-site platform's codebase, when missing, from the ``source`` arg (the
    platform and its site made in one step); removed again if a later step fails."""
    if not ctx.state.get("platform_install"):
        ctx.log("the platform's codebase is there")
        return
    env = await site_env(ctx)
    ctx.state[platform_tasks.PLUGIN] = env.plugin
    await platform_tasks.install_codebase(ctx)
    await platform_tasks.record_release(ctx, summary=False)


async def _platform_codebase_undo(ctx: TaskContext) -> None:
    if ctx.state.get("platform_install"):
        await platform_tasks.install_undo(ctx)
        # the release recorded goes with the codebase
        env = await site_env(ctx)
        async with ctx.db.write() as conn:
            await platform_queries.update_many(conn, [env.platform], await server_queries.ids(conn))


async def _user(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    result = await run_step(
        env.transport,
        "create the Unix user",
        _USER,
        [env.layout.unix_user, USER_COMMENT.format(domain=env.site.domain), env.layout.site_dir],
        sudo=True,
    )
    if result.exit_code == 65:
        raise StepFailed(" / ".join(result.stderr[-2:]))
    if not result.ok:
        raise StepFailed(f"cannot create the Unix user: {' / '.join(result.stderr[-3:])}")
    created = "cockpit-user created" in result.stdout
    ctx.state["user_created"] = created
    ctx.log(f"Unix user {env.layout.unix_user}: {'created' if created else 'already there'}")


async def remove_unix_user(env: SiteEnv) -> bool:
    result = await run_step(
        env.transport,
        "remove the Unix user",
        _USER_DELETE,
        [env.layout.unix_user, USER_COMMENT.format(domain=env.site.domain)],
        sudo=True,
    )
    if not result.ok:
        raise StepFailed(f"cannot remove the Unix user: {' / '.join(result.stderr[-3:])}")
    return "cockpit-user removed" in result.stdout


async def _user_undo(ctx: TaskContext) -> None:
    if ctx.state.get("user_created"):
        await remove_unix_user(await site_env(ctx))


async def ensure_dirs(env: SiteEnv) -> tuple[bool, list[str]]:
    """Create or converge the site's own dirs; (site dir created, what was fixed)."""
    layout = env.layout
    result = await run_step(
        env.transport,
        "create the site's dirs",
        _DIRS,
        [layout.unix_user, env.web_group, layout.site_dir, layout.private_dir, layout.tmp_dir],
        sudo=True,
    )
    if not result.ok:
        raise StepFailed(f"cannot create the site's dirs: {' / '.join(result.stderr[-3:])}")
    fixed = [
        line.removeprefix("cockpit-fixed ")
        for line in result.stdout
        if line.startswith("cockpit-fixed ")
    ]
    return "cockpit-dirs created" in result.stdout, fixed


async def _dirs(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    created, fixed = await ensure_dirs(env)
    ctx.state["dirs_created"] = created
    for line in fixed:
        ctx.log(f"fixed {line}")


async def _dirs_undo(ctx: TaskContext) -> None:
    if ctx.state.get("dirs_created"):
        env = await site_env(ctx)
        await _remove_tree(env.transport, env.layout.site_dir, f"{env.server_root}/sites")


async def _codebase(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    layout = env.layout
    if not layout.own_docroot:
        # the platform's own per-site dir (Drupal's sites/<domain>) is new if absent
        ctx.state["platform_site_dir"] = not await _exists(
            env.transport, layout.files_dir.rsplit("/", 1)[0]
        )
    try:
        await env.plugin.populate_docroot(env.transport, layout, env.web_group)
        await env.plugin.prepare_site(env.transport, layout, env.web_group)
    except PlatformError as exc:
        raise _fail("cannot lay out the site's files", exc) from exc


async def _codebase_undo(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if ctx.state.get("platform_site_dir"):
        subdir = env.layout.files_dir.rsplit("/", 1)[0]
        await _remove_tree(env.transport, subdir, f"{env.platform.root}/sites")


async def _database(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.db is None or env.database is None or env.db_user is None:
        ctx.log("no database")
        return
    assert env.db_transport is not None
    db, transport = env.db, env.db_transport
    key = site_db_password_key(env.site.domain)
    password = env.secrets.get(*key)
    new_secret = password is None
    if password is None:
        password = ctx.secret(secrets.token_urlsafe(24))
    try:
        existed = await db.database_exists(transport, env.database) or await db.user_exists(
            transport, env.db_user
        )
    except ServiceError as exc:
        raise _fail("cannot reach the database server", exc) from exc
    ctx.state["db_created"] = not existed
    try:
        env.credentials = await db.ensure_database(
            transport, env.database, env.db_user, password=password
        )
    except ServiceError as exc:
        if not existed:
            # the step undoes its own half-done work (a database made, a GRANT refused)
            try:
                await db.drop_database(transport, env.database, env.db_user)
                ctx.log(f"dropped the half-made database {env.database} and its user")
            except ServiceError as drop_exc:
                ctx.log(f"could not drop the half-made database: {drop_exc}")
        raise _fail(f"cannot create the database {env.database}", exc) from exc
    if new_secret:
        env.secrets.put(*key, value=password)
        ctx.state["db_secret_created"] = True
    ctx.log(
        f"database {env.database} ({env.engine}) and user {env.db_user}: "
        + ("created" if not existed else "converged")
    )


async def _database_undo(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if ctx.state.get("db_created") and env.db is not None and env.database and env.db_user:
        assert env.db_transport is not None
        await env.db.drop_database(env.db_transport, env.database, env.db_user)
    if ctx.state.get("db_secret_created"):
        env.secrets.delete(*site_db_password_key(env.site.domain))


def _master_secret(ctx: TaskContext, env: SiteEnv, *, create: bool) -> str:
    key = app_secret_key(env.site.domain)
    value = env.secrets.get(*key)
    if value is None:
        if not create:
            raise StepFailed(f"{env.site.domain} has no app secret in the secrets store")
        value = secrets.token_urlsafe(32)
        env.secrets.put(*key, value=value)
        ctx.state["app_secret_created"] = True
    return ctx.secret(value)


async def converge_settings(ctx: TaskContext, env: SiteEnv, *, create: bool) -> list[str]:
    """Render the platform's config files and write those that differ; the paths
    written. Their previous text is kept in ``ctx.state`` for an undo."""
    master = _master_secret(ctx, env, create=create)
    files = env.plugin.config_files(env.layout, env.site, env.credentials, master)
    before: dict[str, str | None] = ctx.state.setdefault("settings_before", {})
    modes: dict[str, int] = ctx.state.setdefault("settings_modes", {})
    written = []
    for config in files:
        current = await env.plugin.read_file(env.transport, config.path)
        if current == config.text:
            continue
        if current is not None:
            ctx.log(f"drift in {config.path}:")
            _log_output(ctx, _diff(current, config.text, config.path))
        before.setdefault(config.path, current)
        modes[config.path] = config.mode
        await env.plugin.place_file(
            env.transport,
            config.path,
            config.text,
            user=env.layout.unix_user,
            group=env.web_group,
            mode=config.mode,
        )
        written.append(config.path)
    return written


async def _settings(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    try:
        written = await converge_settings(ctx, env, create=True)
    except PlatformError as exc:
        raise _fail("cannot write the site's settings", exc) from exc
    ctx.log("settings: " + (", ".join(written) if written else "unchanged"))


async def _settings_undo(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    modes: dict[str, int] = ctx.state.get("settings_modes", {})
    for path, text in ctx.state.get("settings_before", {}).items():
        if text is not None:
            await env.plugin.place_file(
                env.transport, path, text, user=env.layout.unix_user, group=env.web_group,
                mode=modes[path],
            )  # fmt: skip
        elif not ctx.state.get("dirs_created"):
            await run_step(env.transport, "remove a new config", 'rm -f -- "$1"', [path], sudo=True)
    if ctx.state.get("app_secret_created"):
        env.secrets.delete(*app_secret_key(env.site.domain))


async def _pool(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if not env.plugin.uses_php:
        ctx.log("no PHP")
        return
    fpm = env.http.php_fpm()
    pool = env.pool()
    before = await fpm.read_pool(env.transport, pool.name)
    ctx.state["pool_before"] = (before,)
    if before is not None and before != render_pool(pool):
        ctx.log(f"drift in the php-fpm pool {pool.name}:")
        _log_output(ctx, _diff(before, render_pool(pool), f"pool {pool.name}"))
    try:
        changed = await fpm.apply_pool(env.transport, pool)
    except ServiceError as exc:
        raise _fail("cannot install the php-fpm pool", exc) from exc
    ctx.log(f"php-fpm pool {pool.name} ({pool.listen}): {'installed' if changed else 'unchanged'}")


async def _pool_undo(ctx: TaskContext) -> None:
    saved = ctx.state.get("pool_before")
    if saved is None:
        return
    env = await site_env(ctx)
    pool = env.pool()
    await env.http.php_fpm().restore_pool(env.transport, pool.name, saved[0], socket="")


async def _application(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if not env.plugin.has_installer:
        ctx.log("this platform has no installer to run")
        return
    key = admin_password_key(env.site.domain)
    password = env.secrets.get(*key)
    new = password is None
    if password is None:
        password = secrets.token_urlsafe(18)
    ctx.secret(password)
    options: InstallOptions = ctx.state["options"]
    try:
        installed = await env.plugin.install_app(
            env.transport, env.layout, env.site, env.credentials, options, password,
            on_line=_lines(ctx),
        )  # fmt: skip
    except PlatformError as exc:
        raise _fail("the application's installer failed", exc) from exc
    if installed and new:
        env.secrets.put(*key, value=password)
        ctx.state["admin_secret_created"] = True
    ctx.log(
        f"{env.plugin.type}: " + ("installed" if installed else "already installed")
        + (f"; admin password in the secrets store ({'/'.join(key)})" if installed else "")
    )  # fmt: skip


async def _application_undo(ctx: TaskContext) -> None:
    if ctx.state.get("admin_secret_created"):
        env = await site_env(ctx)
        env.secrets.delete(*admin_password_key(env.site.domain))


async def _certificate(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.site.https is HttpsMode.OFF:
        ctx.log("HTTPS off: no certificate")
        return
    cert_dir = env.http.certificate_paths(env.site.domain).certificate.rsplit("/", 1)[0]
    ctx.state["cert_created"] = not await _exists(env.transport, cert_dir)
    authority = authority_for(env.http)
    try:
        result = await authority.ensure(
            env.transport, env.site.domain, site_names(env.site), reload=False
        )
    except ServiceError as exc:
        raise _fail("cannot get a certificate", exc) from exc
    ctx.log(f"certificate: {result.reason}")


async def _certificate_undo(ctx: TaskContext) -> None:
    if ctx.state.get("cert_created"):
        env = await site_env(ctx)
        cert_dir = env.http.certificate_paths(env.site.domain).certificate.rsplit("/", 1)[0]
        await _remove_tree(env.transport, cert_dir, env.http.paths.certs)


async def apply_vhost(
    ctx: TaskContext, env: SiteEnv, status: SiteStatus | None = None, *, log_drift: bool = True
) -> bool:
    """Render and apply the site's vhost (its previous text kept for an undo)."""
    vhost = env.vhost(status)
    before = await env.http.read_vhost(env.transport, env.site.domain)
    ctx.state.setdefault("vhost_before", (before,))
    rendered = env.http.render(vhost).text
    if log_drift and before is not None and before != rendered:
        ctx.log(f"drift in the vhost of {env.site.domain}:")
        _log_output(ctx, _diff(before, rendered, env.http.vhost_path(env.site.domain)))
    try:
        result = await env.http.apply_site(env.transport, vhost, on_line=_lines(ctx))
    except ServiceError as exc:
        raise _fail("the vhost was refused", exc) from exc
    ctx.log(
        f"vhost {result.path}: {'applied' if result.changed else 'unchanged'}, "
        f"{result.url} answered {result.status}"
    )
    return result.changed


async def _vhost(ctx: TaskContext) -> None:
    await apply_vhost(ctx, await site_env(ctx))


async def _vhost_undo(ctx: TaskContext) -> None:
    saved = ctx.state.get("vhost_before")
    if saved is None:
        return
    env = await site_env(ctx)
    await env.http.restore_site(env.transport, env.site.domain, saved[0])


async def probe_health(ctx: TaskContext, env: SiteEnv) -> None:
    check = env.plugin.health(env.site)
    host = env.site.redirection or env.site.domain
    result = await env.http.check_health(
        env.transport,
        host,
        check.path,
        https=env.site.https is HttpsMode.REQUIRED,
        status=check.status,
        contains=check.contains,
        time_limit=float(env.http.int_setting("probe_timeout")) + 15,
    )
    if not result.ok:
        detail = f"\n{result.excerpt}" if result.excerpt else ""
        raise StepFailed(
            f"{result.url} answered {result.status or 'nothing'}"
            + (f" without {check.contains!r}" if check.contains and not result.matched else "")
            + f" (expected {check.status}){detail}"
        )
    ctx.log(
        f"{result.url}: {result.status}" + (f", {check.contains!r} found" if check.contains else "")
    )


async def _health(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if ctx.args.get("skip_probe") or not env.http.bool_setting("probe"):
        ctx.log("health probe skipped")
        return
    if env.site.status is not SiteStatus.ENABLED:
        ctx.log("the site is disabled: it answers with the disabled page")
        return
    await probe_health(ctx, env)


async def _record(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    record = SiteRecord(
        domain=env.site.domain,
        platform=env.platform.name,
        platform_type=env.plugin.type,
        unix_user=env.layout.unix_user,
        db_engine=env.engine,
        db_server=(env.db_server or env.server).name if env.engine else None,
        database=env.database,
        db_user=env.db_user,
        installed_at=env.record.installed_at if env.record else time.time(),
    )
    await write_record(env.transport, env.server_root, record)
    await env.close()
    ctx.summary(
        f"installed {env.site.domain} ({env.plugin.type}"
        + (f", {env.engine}" if env.engine else "")
        + ")"
    )


async def _check_undo(ctx: TaskContext) -> None:
    await _close_env(ctx)


INSTALL_STEPS: Final = (
    Step("check", _check, _check_undo),
    Step("platform codebase", _platform_codebase, _platform_codebase_undo),
    Step("unix user", _user, _user_undo),
    Step("directories", _dirs, _dirs_undo),
    Step("codebase", _codebase, _codebase_undo),
    Step("database", _database, _database_undo),
    Step("settings", _settings, _settings_undo),
    Step("php pool", _pool, _pool_undo),
    Step("application", _application, _application_undo),
    Step("certificate", _certificate, _certificate_undo),
    Step("vhost", _vhost, _vhost_undo),
    Step("health", _health),
    Step("record", _record),
)


def _install_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"db_engine", "title", "admin_user", "admin_email", "skip_probe", "source"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    engine = args.get("db_engine")
    if engine is not None and engine != "none":
        DbEngine.parse(engine, "args.db_engine")
    if "admin_email" in args:
        args["admin_email"] = validate_email(args["admin_email"], "args.admin_email")
    if "title" in args or "admin_user" in args:
        InstallOptions(title=args.get("title", "site"), admin_user=args.get("admin_user", "admin"))
    if "source" in args:
        args["source"] = validate_path(args["source"], "args.source")
    if "skip_probe" in args and not isinstance(args["skip_probe"], bool):
        raise ValidationError("args.skip_probe", "must be true or false", args["skip_probe"])
    return args


# -- verify ----------------------------------------------------------------------------


async def _verify_check(ctx: TaskContext) -> None:
    env = await site_env(ctx, need_record=True)
    assert env.record is not None
    if env.record.platform != env.platform.name:
        raise StepFailed(
            f"the server says {env.site.domain} runs on {env.record.platform}, "
            f"the inventory says {env.platform.name}"
        )
    ctx.state["drift"] = []
    ctx.state["options"] = _install_options(ctx, env)


def _drift(ctx: TaskContext, what: str) -> None:
    ctx.state.setdefault("drift", []).append(what)


async def _verify_user(ctx: TaskContext) -> None:
    await _user(ctx)
    if ctx.state.get("user_created"):
        _drift(ctx, "unix user")


async def _verify_dirs(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    created, fixed = await ensure_dirs(env)
    for line in fixed:
        ctx.log(f"fixed {line}")
    if created or fixed:
        _drift(ctx, "directories")
    await env.plugin.prepare_site(env.transport, env.layout, env.web_group)


async def _verify_database(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.db is None or env.database is None or env.db_user is None:
        return
    assert env.db_transport is not None
    password = env.secrets.get(*site_db_password_key(env.site.domain))
    if password is None:
        raise StepFailed(
            f"the password of {env.db_user} is not in the secrets store: reset it by "
            "installing again after removing the database user"
        )
    existed = await env.db.database_exists(env.db_transport, env.database)
    try:
        env.credentials = await env.db.ensure_database(
            env.db_transport, env.database, env.db_user, password=password
        )
        rows = await env.db.query_as(env.db_transport, env.credentials, "SELECT 1;\n")
    except ServiceError as exc:
        raise _fail("the database does not work", exc) from exc
    if rows[-1:] != ["1"]:
        raise StepFailed(f"the site's user read {rows!r} instead of 1")
    if not existed:
        ctx.log(f"drift: the database {env.database} was missing; it is back, empty")
        _drift(ctx, "database")
    ctx.log(f"database {env.database}: the site's user logs in")


async def _verify_settings(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    written = await converge_settings(ctx, env, create=False)
    if written:
        _drift(ctx, "settings")


async def _verify_pool(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if not env.plugin.uses_php:
        return
    fpm = env.http.php_fpm()
    pool = env.pool()
    before = await fpm.read_pool(env.transport, pool.name)
    if before != render_pool(pool):
        if before is None:
            ctx.log(f"drift: the php-fpm pool {pool.name} was missing")
        else:
            ctx.log(f"drift in the php-fpm pool {pool.name}:")
            _log_output(ctx, _diff(before, render_pool(pool), f"pool {pool.name}"))
        _drift(ctx, "php pool")
    await fpm.apply_pool(env.transport, pool)


async def _verify_certificate(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.site.https is not HttpsMode.OFF:
        result = await authority_for(env.http).ensure(
            env.transport, env.site.domain, site_names(env.site), reload=False
        )
        ctx.log(f"certificate: {result.reason}")
        if result.issued:
            _drift(ctx, "certificate")


async def _verify_vhost(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if await apply_vhost(ctx, env):
        _drift(ctx, "vhost")


async def _verify_health(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.site.status is SiteStatus.ENABLED:
        await probe_health(ctx, env)
    else:
        ctx.log("the site is disabled: its health answer is the disabled page")
    await env.close()
    drift = ctx.state.get("drift", [])
    ctx.summary(("converged: " + ", ".join(drift)) if drift else "no drift")


VERIFY_STEPS: Final = (
    Step("check", _verify_check, _check_undo),
    Step("unix user", _verify_user),
    Step("directories", _verify_dirs),
    Step("database", _verify_database),
    Step("settings", _verify_settings),
    Step("php pool", _verify_pool),
    Step("certificate", _verify_certificate),
    Step("vhost", _verify_vhost),
    Step("health", _verify_health),
)


# -- disable / enable ------------------------------------------------------------------


async def set_site_status(ctx: TaskContext, site: Site, status: SiteStatus) -> None:
    """Record a site's status in the store."""
    changed = dataclasses.replace(site, status=status)
    async with ctx.db.write() as conn:
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients=await _client_ids(conn),
            servers=await server_queries.ids(conn),
        )
        await site_queries.update_many(conn, [changed], refs)


async def _client_ids(conn: Any) -> dict[str, int]:
    return {c.name: c.id for c in await client_queries.list_all(conn) if c.id is not None}


def _switch(status: SiteStatus) -> Callable[[TaskContext], Awaitable[None]]:
    async def run(ctx: TaskContext) -> None:
        env = await site_env(ctx, need_record=True)
        await apply_vhost(ctx, env, status, log_drift=False)
        if status is SiteStatus.ENABLED and env.http.bool_setting("probe"):
            await probe_health(ctx, env)

    return run


def _store_status(status: SiteStatus) -> Callable[[TaskContext], Awaitable[None]]:
    async def run(ctx: TaskContext) -> None:
        env = await site_env(ctx)
        await set_site_status(ctx, env.site, status)
        await env.close()
        ctx.summary(f"{env.site.domain} {status}")

    return run


def _switch_kind(status: SiteStatus, name: str, description: str) -> TaskKind:
    return TaskKind(
        name=name,
        target=TargetKind.SITE,
        idempotent=True,
        description=description,
        steps=(
            Step("check", _check_needs_record, _check_undo),
            Step("vhost", _switch(status), _vhost_undo),
            Step("store", _store_status(status)),
        ),
    )


async def _check_needs_record(ctx: TaskContext) -> None:
    await site_env(ctx, need_record=True)


# -- delete ----------------------------------------------------------------------------

#: The module and function that take the backup ``site.delete`` starts with.
BACKUP_HOOK: Final = ("cockpit.tasks.site_data", "backup_before_delete")


async def backup_before_delete(ctx: TaskContext, env: SiteEnv) -> None:
    """Take the backup a delete starts with (kept after the delete), through
    ``cockpit.tasks.site_data.backup_before_delete(ctx, env)``. Without a backup
    implementation the delete is refused, never done without one silently."""
    module_name, function = BACKUP_HOOK
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    hook = getattr(module, function, None) if module is not None else None
    if hook is None:
        raise StepFailed(
            "site.delete takes a backup first, and no backup implementation is available "
            f"({module_name}.{function}); refusing to delete. Pass skip_backup: true to "
            "delete without a backup."
        )
    await hook(ctx, env)


async def _delete_check(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.site.status is SiteStatus.ENABLED and not ctx.args.get("force"):
        raise StepFailed(
            f"{env.site.domain} is enabled: disable it first, or delete it with force: true"
        )
    if env.site.status is SiteStatus.DELETED and env.record is None:
        raise StepFailed(f"{env.site.domain} is already deleted")
    if env.record is not None:
        env.bind_db(env.record.db_engine, ctx.config)
    else:
        ctx.log(f"{env.site.domain} has no record on {env.server.name}: removing what is there")
        env.bind_db(None, ctx.config)


async def _delete_backup(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if ctx.args.get("skip_backup"):
        ctx.log("WARNING: no backup taken (skip_backup): the site's data will be gone")
        return
    if env.record is None:
        ctx.log("nothing installed to back up")
        return
    await backup_before_delete(ctx, env)


async def _delete_vhost(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    before = await env.http.read_vhost(env.transport, env.site.domain)
    ctx.state["vhost_before"] = (before,)
    try:
        removed = await env.http.remove_site(env.transport, env.site.domain)
    except ServiceError as exc:
        raise _fail("cannot remove the vhost", exc) from exc
    ctx.log(f"vhost: {'removed' if removed else 'none'}")


async def _delete_pool(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    fpm = env.http.php_fpm()
    name = env.pool().name
    before = await fpm.read_pool(env.transport, name)
    ctx.state["pool_before"] = (before,)
    try:
        removed = await fpm.remove_pool(env.transport, name)
    except ServiceError as exc:
        raise _fail("cannot remove the php-fpm pool", exc) from exc
    ctx.log(f"php-fpm pool: {'removed' if removed else 'none'}")


#: Set in ``ctx.state`` once a delete removed something that cannot be put back (the
#: database, then the files): from then on a failure undoes nothing, and says what is left.
_NO_RETURN: Final = "delete_no_return"


def _left_after(ctx: TaskContext, env: SiteEnv, step: str) -> StepFailed:
    """The failure of a delete step after the point of no return: what is gone, what
    is left, and that nothing was put back (a vhost for files that are gone)."""
    left = {
        "files": f"the files in {env.layout.site_dir}, the Unix user {env.layout.unix_user}",
        "unix user": f"the Unix user {env.layout.unix_user}",
    }[step]
    gone = "vhost, php-fpm pool" + (", database and its user" if env.database else "")
    return StepFailed(
        f"{gone} already removed, and not put back; left: {left}. Run site.delete again "
        "to remove the rest"
    )


async def _delete_database(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    if env.db is not None and env.database and env.db_user:
        assert env.db_transport is not None
        try:
            await env.db.drop_database(env.db_transport, env.database, env.db_user)
        except ServiceError as exc:
            raise _fail("cannot drop the database (vhost and pool put back)", exc) from exc
        ctx.log(f"dropped the database {env.database} and the user {env.db_user}")
    else:
        ctx.log("no database")
    ctx.state[_NO_RETURN] = True


async def _delete_files(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    cert_dir = env.http.certificate_paths(env.site.domain).certificate.rsplit("/", 1)[0]
    try:
        await _remove_tree(env.transport, cert_dir, env.http.paths.certs)
        if not env.layout.own_docroot:
            subdir = env.layout.files_dir.rsplit("/", 1)[0]
            await _remove_tree(env.transport, subdir, f"{env.platform.root}/sites")
        await _remove_tree(env.transport, env.layout.site_dir, f"{env.server_root}/sites")
    except StepFailed as exc:
        raise StepFailed(f"{exc}; {_left_after(ctx, env, 'files')}") from exc
    ctx.log(f"removed {env.layout.site_dir} and the certificate")


def _until_no_return(
    undo: Callable[[TaskContext], Awaitable[None]],
) -> Callable[[TaskContext], Awaitable[None]]:
    """A delete step's undo that does nothing once the delete is past its point of no
    return (a vhost or pool put back for a database or files that are gone)."""

    async def run(ctx: TaskContext) -> None:
        if ctx.state.get(_NO_RETURN):
            ctx.log("not put back: the database or files are gone")
            return
        await undo(ctx)

    return run


async def _delete_user(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    try:
        removed = await remove_unix_user(env)
    except StepFailed as exc:
        raise StepFailed(f"{exc}; {_left_after(ctx, env, 'unix user')}") from exc
    ctx.log(f"Unix user {env.layout.unix_user}: {'removed' if removed else 'none'}")
    for key in (
        site_db_password_key(env.site.domain),
        app_secret_key(env.site.domain),
        admin_password_key(env.site.domain),
        login_link_key(env.site.domain),
    ):
        env.secrets.delete(*key)


async def _delete_record(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    await remove_record(env.transport, env.server_root, env.site.domain)
    await set_site_status(ctx, env.site, SiteStatus.DELETED)
    await env.close()
    ctx.summary(f"deleted {env.site.domain}")


DELETE_STEPS: Final = (
    Step("check", _delete_check, _check_undo),
    Step("backup", _delete_backup),
    Step("vhost", _delete_vhost, _until_no_return(_vhost_undo)),
    Step("php pool", _delete_pool, _until_no_return(_pool_undo)),
    Step("database", _delete_database),
    Step("files", _delete_files),
    Step("unix user", _delete_user),
    Step("record", _delete_record),
)


def _delete_args(args: dict[str, Any]) -> dict[str, Any]:
    for key in args:
        if key not in ("force", "skip_backup"):
            raise ValidationError(f"args.{key}", "unknown; valid: force, skip_backup")
        if not isinstance(args[key], bool):
            raise ValidationError(f"args.{key}", "must be true or false", args[key])
    return args


# -- login-reset -----------------------------------------------------------------------


async def _login_reset(ctx: TaskContext) -> None:
    env = await site_env(ctx, need_record=True)
    if not env.plugin.supports_login_reset:
        raise StepFailed(f"the {env.plugin.type} platform has no admin login to reset")
    try:
        link = await env.plugin.login_link(env.transport, env.layout, env.site)
    except PlatformError as exc:
        raise _fail("cannot make a login link", exc) from exc
    ctx.secret(link)
    key = login_link_key(env.site.domain)
    env.secrets.put(*key, value=link)
    await env.close()
    ctx.summary(f"a one-time login link is in the secrets store ({'/'.join(key)})")


# -- the kinds -------------------------------------------------------------------------

SITE_INSTALL: Final = TaskKind(
    name="site.install",
    target=TargetKind.SITE,
    idempotent=False,
    description=(
        "Install the site: Unix user, dirs, codebase, database, settings, php-fpm pool, "
        "application, certificate, vhost, health probe (all undone on failure)"
    ),
    steps=INSTALL_STEPS,
    max_attempts=1,
    check_args=_install_args,
    sudo=True,
    params=(
        Param(
            "db_engine",
            "the database engine (default: one the server offers; none: no database)",
            choices=("mysql", "pgsql", "none"),
        ),
        Param("title", "the site's title (default: its domain)"),
        Param("admin_user", "the admin's user name (default: admin)"),
        Param("admin_email", "the admin's e-mail address", kind="email"),
        Param("source", "the codebase when the platform has none yet (single-site)", kind="path"),
        Param("skip_probe", "do not probe the site's health at the end", kind="bool"),
    ),
)

SITE_VERIFY: Final = TaskKind(
    name="site.verify",
    target=TargetKind.SITE,
    idempotent=True,
    description="Re-render and converge the site's pieces; log the drift as a diff",
    steps=VERIFY_STEPS,
    sudo=True,
)

SITE_DISABLE: Final = _switch_kind(
    SiteStatus.DISABLED, "site.disable", "Serve the 'site disabled' page (503); data untouched"
)
SITE_ENABLE: Final = _switch_kind(
    SiteStatus.ENABLED, "site.enable", "Serve the site again, then probe its health"
)

SITE_DELETE: Final = TaskKind(
    name="site.delete",
    target=TargetKind.SITE,
    idempotent=False,
    description=(
        "Back up, then remove vhost, pool, files, database, its user and the Unix user "
        "(refused unless disabled or force)"
    ),
    steps=DELETE_STEPS,
    max_attempts=1,
    check_args=_delete_args,
    sudo=True,
    params=(
        Param("force", "delete even if the site is not disabled", kind="bool"),
        Param("skip_backup", "do not back the site up first", kind="bool"),
    ),
)

# -- cert-renew -------------------------------------------------------------------------

#: Renew a certificate that expires within this many days, unless told otherwise.
RENEW_DAYS: Final = 30


def _cert_renew_args(args: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(args) - {"days"})
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", "unknown; valid: days")
    if "days" in args:
        days = args["days"]
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            raise ValidationError("args.days", "must be a whole number of days, 1 to 3650", days)
    return args


async def _cert_renew(ctx: TaskContext) -> None:
    env = await site_env(ctx)  # every name checked before anything else
    if env.site.https is HttpsMode.OFF:
        ctx.log("HTTPS off: no certificate to renew")
        return
    if env.site.status is SiteStatus.DELETED:
        ctx.log("the site is deleted: nothing to renew")
        return
    days = int(ctx.args.get("days", RENEW_DAYS))
    authority = authority_for(env.http)
    try:
        result = await authority.ensure(
            env.transport,
            env.site.domain,
            site_names(env.site),
            renew_days=days,
            reload=True,
            on_line=_lines(ctx),
        )
    except ServiceError as exc:
        raise _fail("cannot renew the certificate (the previous one is kept)", exc) from exc
    left = f"{result.info.days_left():.0f} days left"
    if result.issued:
        ctx.log(f"certificate renewed ({result.reason}); {left}, the web server reloaded")
        ctx.summary(f"renewed: {result.reason}")
    else:
        ctx.log(f"certificate: {result.reason}")
        ctx.summary(f"not due: {left}")


SITE_CERT_RENEW: Final = TaskKind(
    name="site.cert-renew",
    target=TargetKind.SITE,
    idempotent=True,
    description=(
        "Renew the site's certificate (ACME or self-signed) when it expires soon or no "
        "longer covers its names; reload the web server"
    ),
    steps=(Step("certificate", _cert_renew),),
    max_attempts=3,
    check_args=_cert_renew_args,
    sudo=True,
    params=(
        Param(
            "days",
            f"renew when it expires within this many days (default {RENEW_DAYS})",
            kind="int",
        ),
    ),
)

SITE_LOGIN_RESET: Final = TaskKind(
    name="site.login-reset",
    target=TargetKind.SITE,
    idempotent=True,
    description="Make a one-time admin login link (kept in the secrets store)",
    steps=(Step("login link", _login_reset),),
    sudo=True,
)

KINDS: Final = (
    SITE_INSTALL,
    SITE_VERIFY,
    SITE_DISABLE,
    SITE_ENABLE,
    SITE_DELETE,
    SITE_LOGIN_RESET,
    SITE_CERT_RENEW,
)

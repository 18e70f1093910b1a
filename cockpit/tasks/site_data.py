"""A site's data: backup, backup-delete, restore, clone and migrate.

These kinds build on :mod:`cockpit.tasks.site` (its resolved :class:`SiteEnv`, its
install steps) and on the backup plugins (:mod:`cockpit.backends.backup`). What a site's
data is comes from its platform: the data paths
(:meth:`~cockpit.backends.platforms.base.PlatformPlugin.data_paths`: settings file,
uploads, private dir) and the database. Long work on a server runs detached there
(it survives a dropped connection); every kind undoes what it did when a later step
fails, in reverse.

- ``site.backup``: the database dumped and the data paths archived on the site's own
  server, recorded in the store with that server, size and sha256. ``site.delete``
  starts with one (:func:`backup_before_delete`).
- ``site.backup-delete``: a backup removed from the server it is on and from the store.
- ``site.backup-prune``: the retention policy (config ``backups``): a site's ordinary
  backups beyond its newest ``keep_last`` and older than ``keep_days`` removed, a
  restore's safety backups and a delete's backup kept until deleted or for their own
  days (:func:`retention_verdicts`).
- ``site.restore``: a safety backup first, then the backup's data paths unpacked and
  checked next to the live ones and swapped in, the database emptied and loaded, then
  verify (settings re-rendered with the site's credentials, pool, vhost, health). On
  failure the previous paths come back and the safety backup's dump is loaded again.
  A deleted site is installed again first (a new database user and password). A
  backup left on another server (the site migrated since) is streamed across first.
- ``site.clone``: a new site (another domain) on the same platform or another platform
  of the same type, on the same server or another one: its own Unix user, database and
  credentials; data copied (reflinks on one server, streamed between two), the database
  dumped and loaded, URLs rewritten (WordPress).
- ``site.migrate``: the site moved to another platform (an upgrade) and/or server. On
  one server the docroot is rebuilt from the new codebase beside the live one and
  swapped in; to another server the site is installed there, its data streamed across,
  and only once it answers there is it removed from the old one (a database or a Unix
  user that both servers share is left in place). On failure it stays where it was.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cockpit.backends import transport_for
from cockpit.backends.backup import (
    BackupError,
    BackupJob,
    BackupResult,
    BackupService,
    BackupSource,
    RemoteCommand,
    SiteDatabase,
    Swap,
    Unpacked,
    UnpackJob,
    fresh_path,
    remove_paths,
    replace_database,
    settle,
    swap_back,
    swap_in,
    swap_paths,
    swaps_of,
)
from cockpit.backends.backup.base import client_user, judge
from cockpit.backends.backup.stream import pipe
from cockpit.backends.platforms import PlatformError
from cockpit.backends.secrets import SecretStore
from cockpit.backends.services import get_service
from cockpit.backends.services.base import ServiceError, run_step
from cockpit.backends.services.db import DbCredentials
from cockpit.backends.transport import Line, Transport, TransportError
from cockpit.backends.verify import lay_out
from cockpit.config import BackupRetention
from cockpit.engine import (
    LogStream,
    OutcomeUnknown,
    Param,
    RemoteStep,
    Step,
    StepFailed,
    TargetKind,
    TaskContext,
    TaskKind,
)
from cockpit.engine import remote as engine_remote
from cockpit.model import (
    Backup,
    BackupReason,
    DbEngine,
    HttpsMode,
    Platform,
    Server,
    Service,
    ServiceKind,
    Site,
    SiteStatus,
    ValidationError,
    validate_domain,
    validate_name,
    validate_type_name,
)
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds
from cockpit.tasks import site as site_tasks
from cockpit.tasks.site import SiteEnv, remove_record, remove_unix_user, site_env

__all__ = [
    "KINDS",
    "DetachedStep",
    "Verdict",
    "backup_before_delete",
    "backup_plugin",
    "backup_source",
    "retention_verdicts",
    "task_tag",
]

_INSTALL: Final = {step.name: step for step in site_tasks.INSTALL_STEPS}


# ---------------------------------------------------------------------------
# Shared pieces
# ---------------------------------------------------------------------------


def task_tag(ctx: TaskContext, purpose: str = "") -> str:
    """A tag naming what this task makes on a server: the same for every attempt (a
    recovering worker finds its files where the lost one left them)."""
    stamp = datetime.fromtimestamp(ctx.task.created_at, UTC).strftime("%Y%m%dt%H%M%Sz")
    return f"{stamp}-t{ctx.task.id}" + (f"-{purpose}" if purpose else "")


def backup_plugin(
    server: Server, secrets_store: SecretStore, backend: str | None = None
) -> BackupService:
    """The server's backup service (of type ``backend`` when given); a server without
    one makes tar backups with the default settings."""
    configured = [s for s in server.services if s.kind is ServiceKind.BACKUP]
    if backend is None:
        service = configured[0] if configured else Service(ServiceKind.BACKUP, "tar")
    else:
        backend = validate_type_name(backend, "backend")
        service = next((s for s in configured if s.type == backend), None) or Service(
            ServiceKind.BACKUP, backend
        )
    try:
        cls = get_service(ServiceKind.BACKUP, service.type)
    except LookupError as exc:
        raise StepFailed(str(exc)) from exc
    plugin = cls(server, service, secret_store=secrets_store)
    assert isinstance(plugin, BackupService)
    return plugin


def backup_source(env: SiteEnv) -> BackupSource:
    """What a backup of the site holds: its platform's data paths and its database."""
    if env.db is not None and env.db_transport is not env.transport:
        raise StepFailed(
            f"the database of {env.site.domain} is on another server "
            f"({env.db_server.name if env.db_server else '?'}): its backups need the dump "
            "on the site's own server, which this version does not do"
        )
    database = SiteDatabase(env.db, env.database) if env.db is not None and env.database else None
    try:
        return BackupSource(
            site=env.site.domain,
            server=env.server.name,
            platform=env.platform.name,
            platform_type=env.plugin.type,
            paths=tuple(env.plugin.data_paths(env.layout)),
            release=env.platform.release,
            database=database,
        )
    except ValidationError as exc:
        raise StepFailed(f"cannot back up {env.site.domain}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class DetachedStep(RemoteStep):
    """A :class:`RemoteStep` whose script comes from a plugin: ``command`` builds it
    from the context (the same command for the same task, so a recovering worker
    re-attaches to it); None means there is nothing to do."""

    command: Callable[[TaskContext], Awaitable[RemoteCommand | None]] | None = None

    async def run(self, ctx: TaskContext) -> None:
        assert self.command is not None
        command = await self.command(ctx)
        if command is None:
            ctx.log(f"{self.name}: nothing to do")
            return
        await _detached(ctx, command)


async def _detached(ctx: TaskContext, command: RemoteCommand) -> None:
    """Run ``command`` detached on the task's server (it survives a dropped connection)."""
    result = await ctx.detached(command.script, list(command.args), sudo=command.sudo)
    if result.exit_code is None:
        raise OutcomeUnknown(result.reason or f"{command.what}: the outcome is unknown")
    try:
        judge(result, command.what)
    except BackupError as exc:
        raise StepFailed(exc.summary) from exc


def _failed(what: str, exc: Exception) -> StepFailed:
    return StepFailed(f"{what}: {exc}")


def _lines(ctx: TaskContext) -> Callable[[Line], None]:
    def write(line: Line) -> None:
        ctx.log(line.text, LogStream.STDOUT)

    return write


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


async def _record_backup(
    ctx: TaskContext,
    domain: str,
    result: BackupResult,
    server: Server,
    reason: BackupReason = BackupReason.BACKUP,
) -> Backup:
    """Record a backup made on ``server`` (for ``reason``) in the store."""
    record = result.record(domain, server=server.name, reason=reason)
    async with ctx.db.write() as conn:
        record_id = await backup_queries.add(conn, record)
    return dataclasses.replace(record, id=record_id)


async def _take_backup(
    ctx: TaskContext,
    env: SiteEnv,
    purpose: str,
    reason: BackupReason,
    plugin: BackupService | None = None,
) -> Backup:
    """A whole backup of the site from this step (the archive detached), recorded."""
    plugin = plugin or backup_plugin(env.server, env.secrets)
    job = plugin.job(backup_source(env), task_tag(ctx, purpose))
    try:
        await plugin.prepare(env.transport, job)
        try:
            await _detached(ctx, plugin.archive_command(job))
        except BaseException:
            with contextlib.suppress(ServiceError, TransportError, ValidationError):
                await plugin.discard(env.transport, job)
            raise
        result = await plugin.result(env.transport, job)
    except (ServiceError, ValidationError) as exc:
        raise _failed(f"the backup of {env.site.domain} failed", exc) from exc
    backup = await _record_backup(ctx, env.site.domain, result, env.server, reason)
    ctx.log(
        f"backup #{backup.id} of {env.site.domain}: {result.location} on {env.server.name} "
        f"({_size(result.size)}, sha256 {result.sha256[:16]}…)"
    )
    return backup


# ---------------------------------------------------------------------------
# site.backup
# ---------------------------------------------------------------------------

_BACKUP: Final = "data.backup"


@dataclass
class _BackupPlan:
    env: SiteEnv
    plugin: BackupService
    job: BackupJob


async def _backup_plan(ctx: TaskContext) -> _BackupPlan:
    plan = ctx.state.get(_BACKUP)
    if isinstance(plan, _BackupPlan):
        return plan
    env = await site_env(ctx, need_record=True)
    plugin = backup_plugin(env.server, env.secrets, ctx.args.get("backend"))
    try:
        job = plugin.job(backup_source(env), task_tag(ctx), compression=ctx.args.get("compression"))
    except ValidationError as exc:
        raise StepFailed(str(exc)) from exc
    plan = ctx.state[_BACKUP] = _BackupPlan(env, plugin, job)
    return plan


async def _backup_check(ctx: TaskContext) -> None:
    plan = await _backup_plan(ctx)
    source = plan.job.source
    ctx.log(
        f"backing up {source.site} ({plan.plugin.label}, {plan.job.compression}): "
        + ", ".join(source.paths)
        + (f" and the {plan.env.engine} database {plan.env.database}" if source.database else "")
    )


async def _backup_stage(ctx: TaskContext) -> None:
    plan = await _backup_plan(ctx)
    try:
        await plan.plugin.prepare(plan.env.transport, plan.job)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot stage the backup", exc) from exc


async def _backup_discard(ctx: TaskContext) -> None:
    plan = ctx.state.get(_BACKUP)
    if isinstance(plan, _BackupPlan):
        await plan.plugin.discard(plan.env.transport, plan.job)


async def _backup_archive(ctx: TaskContext) -> RemoteCommand | None:
    plan = await _backup_plan(ctx)
    return plan.plugin.archive_command(plan.job)


async def _backup_record(ctx: TaskContext) -> None:
    plan = await _backup_plan(ctx)
    try:
        result = await plan.plugin.result(plan.env.transport, plan.job)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot read the backup back", exc) from exc
    backup = await _record_backup(ctx, plan.env.site.domain, result, plan.env.server)
    await plan.env.close()
    ctx.log(f"recorded backup #{backup.id} on {plan.env.server.name}: sha256 {result.sha256}")
    ctx.summary(f"backup #{backup.id}: {_size(result.size)} at {result.location}")


async def _close(ctx: TaskContext) -> None:
    for key in (site_tasks.ENV,):
        env = ctx.state.get(key)
        if isinstance(env, SiteEnv):
            await env.close()
    target = ctx.state.get(_TARGET)
    if isinstance(target, _Target):
        await target.close()


def _backup_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"backend", "compression"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    if "backend" in args:
        args["backend"] = validate_type_name(args["backend"], "args.backend")
    if "compression" in args and args["compression"] not in ("zstd", "gzip"):
        raise ValidationError("args.compression", "must be zstd or gzip", args["compression"])
    return args


async def backup_before_delete(ctx: TaskContext, env: SiteEnv) -> None:
    """The backup ``site.delete`` starts with (kept, and recorded, after the delete)."""
    backup = await _take_backup(ctx, env, "delete", BackupReason.DELETE)
    ctx.log(f"the site's data is kept in backup #{backup.id}")


# ---------------------------------------------------------------------------
# site.backup-delete
# ---------------------------------------------------------------------------


async def _chosen_backup(ctx: TaskContext, domain: str, *, required: bool) -> Backup:
    wanted = ctx.args.get("backup")
    async with ctx.db.read() as conn:
        if wanted is not None:
            backup = await backup_queries.get(conn, int(wanted))
        elif required:
            raise StepFailed("say which backup (args: backup: <id>)")
        else:
            backup = await backup_queries.latest_for_site(conn, domain)
    if backup is None:
        raise StepFailed(
            f"there is no backup #{wanted}" if wanted is not None else f"{domain} has no backup"
        )
    if backup.site != domain:
        raise StepFailed(f"backup #{backup.id} is a backup of {backup.site}, not of {domain}")
    return backup


def _task_domain(ctx: TaskContext) -> str:
    """The task's site, its domain re-validated (the store's rows are trusted as written)."""
    if ctx.site is None:
        raise StepFailed("this task needs a site")
    try:
        return validate_domain(ctx.site.domain, "site")
    except ValidationError as exc:
        raise StepFailed(f"refused before any remote command: {exc}") from exc


def _home_of(backup: Backup) -> str:
    if backup.server is None:  # the store always says; a Backup not from it may not
        raise StepFailed(f"backup #{backup.id} does not say which server it is on")
    return backup.server


class _Homes:
    """Transports to the servers backups are on: the task's own for the task's server,
    others opened on first use and closed by :meth:`close`."""

    def __init__(self, ctx: TaskContext) -> None:
        self._ctx = ctx
        self._found: dict[str, tuple[Server, Transport]] = {}
        self._owned: list[Transport] = []

    async def get(self, name: str) -> tuple[Server, Transport]:
        found = self._found.get(name)
        if found is not None:
            return found
        ctx = self._ctx
        if ctx.server is not None and ctx.transport is not None and ctx.server.name == name:
            found = (ctx.server, ctx.transport)
        else:
            async with ctx.db.read() as conn:
                server = await server_queries.get(conn, name)
            if server is None:
                raise StepFailed(f"the server {name} is no longer in the inventory")
            transport = transport_for(server, ctx.config)
            self._owned.append(transport)
            found = (server, transport)
        self._found[name] = found
        return found

    async def close(self) -> None:
        owned, self._owned = self._owned, []
        self._found.clear()
        for transport in owned:
            with contextlib.suppress(TransportError):
                await transport.close()


async def _delete_backup(
    ctx: TaskContext, backup: Backup, homes: _Homes, secrets_store: SecretStore
) -> None:
    """Delete ``backup`` on the server it is on, then its row (in that order: a run cut
    short between the two finds the row again, and deleting is idempotent)."""
    server, transport = await homes.get(_home_of(backup))
    plugin = backup_plugin(server, secrets_store, backup.backend)
    try:
        await plugin.delete(transport, backup.location)
    except (ServiceError, ValidationError) as exc:
        raise _failed(f"cannot delete {backup.location} on {server.name}", exc) from exc
    assert backup.id is not None
    async with ctx.db.write() as conn:
        await backup_queries.remove(conn, backup.id)


async def _backup_delete(ctx: TaskContext) -> None:
    domain = _task_domain(ctx)
    backup = await _chosen_backup(ctx, domain, required=True)
    named = ctx.args.get("server")
    if named is not None and named != backup.server:
        raise StepFailed(f"backup #{backup.id} is on {backup.server}, not on {named}")
    homes = _Homes(ctx)
    try:
        await _delete_backup(ctx, backup, homes, site_tasks.secret_store(ctx))
    finally:
        await homes.close()
    ctx.log(f"deleted {backup.location} on {backup.server}")
    ctx.summary(f"backup #{backup.id} deleted from {backup.server}")


def _backup_delete_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"backup", "server"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    if "backup" not in args:
        raise ValidationError("args.backup", "say which backup to delete (its id)")
    _backup_id(args)
    if "server" in args:
        args["server"] = validate_name(args["server"], "args.server")
    return args


def _backup_id(args: dict[str, Any]) -> None:
    value = args.get("backup")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValidationError("args.backup", "must be a backup id (a whole number)", value)


# ---------------------------------------------------------------------------
# site.backup-prune
# ---------------------------------------------------------------------------

_PRUNE: Final = "data.prune"
_POLICY_ARGS: Final = ("keep_last", "keep_days", "safety_days", "delete_days")
_LABELS: Final = {
    BackupReason.SAFETY: ("safety backup", "safety_days"),
    BackupReason.DELETE: ("backup taken before the delete", "delete_days"),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the retention policy does with one backup, and why."""

    backup: Backup
    keep: bool
    why: str


def retention_verdicts(
    backups: Sequence[Backup], policy: BackupRetention, now: datetime
) -> list[Verdict]:
    """The verdict on each of a site's backups, newest first. Ordinary backups: the
    newest ``keep_last`` are kept, and any younger than ``keep_days`` days. A restore's
    safety backups and a delete's backup: kept until deleted by hand, or for their own
    ``safety_days`` / ``delete_days``."""
    newest_first = sorted(backups, key=lambda b: (b.created, b.id or 0), reverse=True)
    verdicts: list[Verdict] = []
    rank = 0
    for backup in newest_first:
        age = now - backup.created
        if backup.reason is BackupReason.BACKUP:
            rank += 1
            if rank <= policy.keep_last:
                verdicts.append(Verdict(backup, True, f"one of the newest {policy.keep_last}"))
            elif age < timedelta(days=policy.keep_days):
                verdicts.append(Verdict(backup, True, f"younger than {policy.keep_days} days"))
            else:
                verdicts.append(
                    Verdict(
                        backup,
                        False,
                        f"older than {policy.keep_days} days, not one of the newest "
                        f"{policy.keep_last}",
                    )
                )
            continue
        label, key = _LABELS[backup.reason]
        days: int | None = getattr(policy, key)
        if days is None:
            verdicts.append(Verdict(backup, True, f"a {label}: kept until deleted"))
        elif age < timedelta(days=days):
            verdicts.append(Verdict(backup, True, f"a {label}, younger than {days} days"))
        else:
            verdicts.append(Verdict(backup, False, f"a {label}, older than {days} days"))
    return verdicts


def _prune_policy(ctx: TaskContext, domain: str) -> BackupRetention:
    """The site's policy from the config, with this run's args over it."""
    policy = ctx.config.backups.for_site(domain)
    changes = {key: ctx.args[key] for key in _POLICY_ARGS if key in ctx.args}
    return dataclasses.replace(policy, **changes) if changes else policy


def _describe(backup: Backup) -> str:
    return (
        f"#{backup.id} of {backup.created:%Y-%m-%d %H:%M} UTC ({_size(backup.size)}, "
        f"{backup.server}:{backup.location})"
    )


async def _prune_plan(ctx: TaskContext) -> None:
    domain = _task_domain(ctx)
    policy = _prune_policy(ctx, domain)
    async with ctx.db.read() as conn:
        backups = await backup_queries.list_for_site(conn, domain)
    verdicts = retention_verdicts(backups, policy, datetime.now(UTC))
    ctx.state[_PRUNE] = verdicts
    safety = "until deleted" if policy.safety_days is None else f"{policy.safety_days} days"
    deleted = "until deleted" if policy.delete_days is None else f"{policy.delete_days} days"
    ctx.log(
        f"policy for {domain}: the newest {policy.keep_last} backups and any younger than "
        f"{policy.keep_days} days; safety backups {safety}; the delete's backup {deleted}"
    )
    for verdict in verdicts:
        verb = "keep" if verdict.keep else "remove"
        ctx.log(f"{verb} {_describe(verdict.backup)}: {verdict.why}")


async def _prune_delete(ctx: TaskContext) -> None:
    verdicts: list[Verdict] = ctx.state.get(_PRUNE) or []
    doomed = [v.backup for v in verdicts if not v.keep]
    kept = len(verdicts) - len(doomed)
    if not doomed:
        ctx.summary(f"nothing to remove; {kept} kept")
        return
    if ctx.args.get("dry_run"):
        total = sum(b.size for b in doomed)
        ctx.summary(f"would remove {len(doomed)} ({_size(total)}); {kept} kept")
        return
    homes = _Homes(ctx)
    secrets_store = site_tasks.secret_store(ctx)
    removed: list[Backup] = []
    problems: list[str] = []
    try:
        for backup in doomed:
            try:
                await _delete_backup(ctx, backup, homes, secrets_store)
            except (StepFailed, ServiceError, TransportError, ValidationError) as exc:
                problems.append(f"#{backup.id} on {backup.server}: {exc}")
                ctx.log(f"could not remove {_describe(backup)}: {exc}", LogStream.STDERR)
                continue
            removed.append(backup)
            ctx.log(f"removed {_describe(backup)}")
    finally:
        await homes.close()
    done = f"removed {len(removed)} ({_size(sum(b.size for b in removed))}); {kept} kept"
    if problems:
        raise StepFailed(f"{done}; could not remove {len(problems)}: " + "; ".join(problems))
    ctx.summary(done)


def _prune_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {*_POLICY_ARGS, "dry_run"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    for key, low, nullable in (
        ("keep_last", 1, False),
        ("keep_days", 0, False),
        ("safety_days", 0, True),
        ("delete_days", 0, True),
    ):
        if key not in args or (nullable and args[key] is None):
            continue
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 36_500:
            why = f"must be a whole number from {low} to 36500" + (" or null" if nullable else "")
            raise ValidationError(f"args.{key}", why, value)
    _flag(args, "dry_run")
    return args


# ---------------------------------------------------------------------------
# site.restore
# ---------------------------------------------------------------------------

_RESTORE: Final = "data.restore"
_REVIVED: Final = "data.revived"
_SAFETY: Final = "data.safety"


@dataclass
class _RestorePlan:
    env: SiteEnv
    backup: Backup
    plugin: BackupService
    found: BackupResult
    job: UnpackJob
    reinstall: bool
    safety_plugin: BackupService
    safety: BackupJob | None
    #: The server the backup is on, when it is not the site's (fetched from there).
    home: Server | None = None
    home_transport: Transport | None = None
    home_plugin: BackupService | None = None

    @property
    def swaps(self) -> list[Swap]:
        job = self.job
        unpacked = Unpacked(job.manifest, job.targets, job.fresh, job.dump, job.work)
        return swaps_of(unpacked, job.tag)


async def _restore_plan(ctx: TaskContext) -> _RestorePlan:
    plan = ctx.state.get(_RESTORE)
    if isinstance(plan, _RestorePlan):
        return plan
    if ctx.site is not None and ctx.site.status is SiteStatus.DELETED:
        # A deleted site comes back enabled (its store row says so at the end).
        ctx.site = dataclasses.replace(ctx.site, status=SiteStatus.ENABLED)
        ctx.state[_REVIVED] = True
    env = await site_env(ctx)
    backup = await _chosen_backup(ctx, env.site.domain, required=False)
    plugin = backup_plugin(env.server, env.secrets, backup.backend)
    home, home_transport = await _backup_home(ctx, env, backup)
    home_plugin = plugin if home is env.server else backup_plugin(home, env.secrets, backup.backend)
    if home is not env.server and not home_plugin.portable:
        raise StepFailed(
            f"backup #{backup.id} is a {backup.backend} backup on {home.name}, and "
            f"{env.site.domain} is on {env.server.name} now: a {backup.backend} backup "
            f"cannot be copied to another server. Restore it on {home.name} (migrate the "
            f"site back there first), or restore a tar backup"
        )
    try:
        found = await home_plugin.inspect(home_transport, backup.location)
    except (ServiceError, ValidationError) as exc:
        raise _failed(f"cannot read backup #{backup.id} on {home.name}", exc) from exc
    manifest = found.manifest
    if found.sha256 != backup.sha256:
        raise StepFailed(
            f"{backup.location} has sha256 {found.sha256}, but {backup.sha256} was recorded"
        )
    if manifest.site != env.site.domain:
        raise StepFailed(f"{backup.location} is a backup of {manifest.site}")
    if manifest.platform_type != env.plugin.type:
        raise StepFailed(
            f"backup #{backup.id} is of a {manifest.platform_type} site; {env.site.domain} "
            f"is on a {env.plugin.type} platform now"
        )
    paths = env.plugin.data_paths(env.layout)
    reinstall = env.record is None
    if reinstall:
        env.bind_db(manifest.db_engine, ctx.config)
    elif env.engine != manifest.db_engine:
        raise StepFailed(
            f"backup #{backup.id} holds a {manifest.db_engine or 'no'} database; the site "
            f"has {env.engine or 'none'}"
        )
    if env.db is not None and env.db_transport is not env.transport:
        raise StepFailed("restoring a site whose database is on another server is not supported")
    try:
        job = plugin.unpack_job(
            backup.location,
            manifest,
            targets=paths,
            tag=task_tag(ctx, "restore"),
            dump_owner=client_user(env.db) if env.db is not None else "",
            expected_sha256=backup.sha256,
        )
        if home is not env.server:
            job = plugin.fetched(job, backup.location)
    except ValidationError as exc:
        raise StepFailed(f"cannot restore backup #{backup.id} here: {exc}") from exc
    safety_plugin = backup_plugin(env.server, env.secrets)
    safety = None if reinstall else safety_plugin.job(backup_source(env), task_tag(ctx, "safety"))
    plan = ctx.state[_RESTORE] = _RestorePlan(
        env, backup, plugin, found, job, reinstall, safety_plugin, safety
    )
    if home is not env.server:
        plan.home, plan.home_transport, plan.home_plugin = home, home_transport, home_plugin
    return plan


async def _backup_home(ctx: TaskContext, env: SiteEnv, backup: Backup) -> tuple[Server, Transport]:
    """The server ``backup`` is on (the site's, or the one it was on when the backup was
    made) and a transport to it (closed with the site's environment)."""
    name = _home_of(backup)
    if name == env.server.name:
        return env.server, env.transport
    async with ctx.db.read() as conn:
        server = await server_queries.get(conn, name)
    if server is None:
        raise StepFailed(f"backup #{backup.id} is on {name}, which is no longer in the inventory")
    transport = transport_for(server, ctx.config)
    env.owned.append(transport)
    return server, transport


async def _restore_check(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    env = plan.env
    if plan.reinstall:
        try:
            await lay_out(env.transport, env.server)
        except ServiceError as exc:
            raise _failed("cannot lay out Cockpit's dirs on the server", exc) from exc
        if env.platform.locked:
            raise StepFailed(f"the platform {env.platform.name} is locked: it takes no new sites")
    manifest = plan.found.manifest
    where = plan.home.name if plan.home is not None else env.server.name
    ctx.log(
        f"restoring backup #{plan.backup.id} of {manifest.created:%Y-%m-%d %H:%M:%S} UTC "
        f"({where}:{plan.backup.location}, {_size(plan.found.size)})"
        + (f"; it is fetched from {where} first" if plan.home is not None else "")
        + ("; the site is not installed: installing it first" if plan.reinstall else "")
    )


def _when_reinstalling(step: Step) -> Step:
    """An install step that runs only when the restore installs the site again."""

    async def run(ctx: TaskContext) -> None:
        if (await _restore_plan(ctx)).reinstall:
            await step.run(ctx)
        else:
            ctx.log("installed: nothing to do")

    async def undo(ctx: TaskContext) -> None:
        plan = ctx.state.get(_RESTORE)
        if isinstance(plan, _RestorePlan) and plan.reinstall and step.rollback is not None:
            await step.rollback(ctx)

    return Step(step.name, run, undo if step.rollback is not None else None)


async def _safety_stage(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    if plan.safety is None:
        ctx.log("nothing installed: no safety backup")
        return
    try:
        await plan.safety_plugin.prepare(plan.env.transport, plan.safety)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot stage the safety backup", exc) from exc


async def _safety_discard(ctx: TaskContext) -> None:
    plan = ctx.state.get(_RESTORE)
    if isinstance(plan, _RestorePlan) and plan.safety is not None:
        await plan.safety_plugin.discard(plan.env.transport, plan.safety)


async def _safety_archive(ctx: TaskContext) -> RemoteCommand | None:
    plan = await _restore_plan(ctx)
    return plan.safety_plugin.archive_command(plan.safety) if plan.safety is not None else None


async def _safety_record(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    if plan.safety is None:
        return
    try:
        result = await plan.safety_plugin.result(plan.env.transport, plan.safety)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot read the safety backup back", exc) from exc
    backup = await _record_backup(
        ctx, plan.env.site.domain, result, plan.env.server, BackupReason.SAFETY
    )
    ctx.state[_SAFETY] = result
    ctx.log(
        f"safety backup #{backup.id}: {result.location} on {plan.env.server.name} "
        f"({_size(result.size)})"
    )


async def _unpack_stage(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    try:
        await plan.plugin.discard_unpacked(plan.env.transport, plan.job)
        await plan.plugin.prepare_unpack(plan.env.transport, plan.job)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot prepare the unpack", exc) from exc


async def _restore_fetch(ctx: TaskContext) -> None:
    """A backup on another server is copied into the unpack's work dir (removed with it),
    streamed from there; the unpack checks it against the sha256 the store recorded."""
    plan = await _restore_plan(ctx)
    env = plan.env
    if plan.home is None or plan.home_transport is None or plan.home_plugin is None:
        ctx.log(f"the backup is on {env.server.name}: nothing to fetch")
        return
    where = f"backup #{plan.backup.id} from {plan.home.name} to {env.server.name}"
    try:
        piped = await plan.home_plugin.send(
            plan.home_transport,
            plan.backup.location,
            env.transport,
            plan.job.location,
            on_line=_lines(ctx),
        )
    except (ServiceError, ValidationError) as exc:
        raise _failed(f"cannot copy {where}", exc) from exc
    if piped.source.unknown or piped.dest.unknown:
        raise OutcomeUnknown(f"copying {where}: {piped.source.reason or piped.dest.reason}")
    if not piped.ok:
        raise StepFailed(
            f"copying {where} failed (sent: exit {piped.source.exit_code}, received: exit "
            f"{piped.dest.exit_code})" + (f": {piped.lines[-1]}" if piped.lines else "")
        )
    ctx.log(f"fetched {where} ({_size(piped.bytes)}): {plan.job.location}")


async def _unpack_discard(ctx: TaskContext) -> None:
    plan = ctx.state.get(_RESTORE)
    if isinstance(plan, _RestorePlan):
        await plan.plugin.discard_unpacked(plan.env.transport, plan.job)


async def _unpack(ctx: TaskContext) -> RemoteCommand | None:
    plan = await _restore_plan(ctx)
    try:
        return await plan.plugin.unpack_command(plan.env.transport, plan.job)
    except (ServiceError, ValidationError) as exc:
        raise _failed("cannot unpack the backup", exc) from exc


async def _restore_files(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    for swap in plan.swaps:
        try:
            await swap_in(plan.env.transport, swap)
        except ServiceError as exc:
            raise _failed(f"cannot put {swap.live} in place", exc) from exc
    ctx.log(f"swapped in {len(plan.swaps)} data paths")


async def _restore_files_undo(ctx: TaskContext) -> None:
    plan = ctx.state.get(_RESTORE)
    if isinstance(plan, _RestorePlan):
        for swap in reversed(plan.swaps):
            await swap_back(plan.env.transport, swap)


async def _credentials(ctx: TaskContext, env: SiteEnv) -> DbCredentials:
    creds = env.credentials or env.stored_credentials()
    if creds is None:
        raise StepFailed(
            f"the password of {env.db_user} is not in the secrets store: cannot load the "
            "database with the site's credentials"
        )
    ctx.secret(creds.password)
    return creds


async def _restore_database(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    env = plan.env
    if env.db is None or env.database is None or env.db_user is None:
        ctx.log("no database")
        return
    assert plan.job.dump is not None and env.db_transport is not None
    creds = await _credentials(ctx, env)
    try:
        await replace_database(
            env.db, env.db_transport, env.database, env.db_user, creds.password, plan.job.dump
        )
    except ServiceError as exc:
        raise _failed(f"cannot load the database {env.database}", exc) from exc
    ctx.log(f"the database {env.database} holds the backup's data")


async def _restore_database_undo(ctx: TaskContext) -> None:
    plan = ctx.state.get(_RESTORE)
    safety = ctx.state.get(_SAFETY)
    if not isinstance(plan, _RestorePlan) or not isinstance(safety, BackupResult):
        return  # installed again: the database step's own undo drops it
    env = plan.env
    if env.db is None or env.database is None or env.db_user is None:
        return
    assert env.db_transport is not None
    creds = await _credentials(ctx, env)
    unpacked = await plan.safety_plugin.unpack(
        env.transport,
        safety.location,
        targets=plan.job.targets,
        tag=task_tag(ctx, "undo"),
        dump_owner=client_user(env.db),
        expected_sha256=safety.sha256,
        files=False,
    )
    try:
        assert unpacked.dump is not None
        await replace_database(
            env.db, env.db_transport, env.database, env.db_user, creds.password, unpacked.dump
        )
        ctx.log(f"loaded the safety backup's dump into {env.database} again")
    finally:
        await remove_paths(env.transport, env.server.root, [unpacked.work])


async def _restore_store(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    if ctx.state.get(_REVIVED):
        await site_tasks.set_site_status(ctx, plan.env.site, SiteStatus.ENABLED)
        ctx.log(f"{plan.env.site.domain} is back in the inventory, enabled")


async def _restore_store_undo(ctx: TaskContext) -> None:
    plan = ctx.state.get(_RESTORE)
    if isinstance(plan, _RestorePlan) and ctx.state.get(_REVIVED):
        await site_tasks.set_site_status(ctx, plan.env.site, SiteStatus.DELETED)


async def _restore_settle(ctx: TaskContext) -> None:
    plan = await _restore_plan(ctx)
    env = plan.env
    try:
        await settle(env.transport, env.server.root, plan.swaps)
        await plan.plugin.discard_unpacked(env.transport, plan.job)
    except ServiceError as exc:
        ctx.log(f"WARNING: could not remove what the restore kept: {exc}")
    await env.close()
    ctx.summary(
        f"restored backup #{plan.backup.id} ({plan.found.manifest.created:%Y-%m-%d %H:%M} UTC)"
    )


RESTORE_STEPS: Final = (
    Step("check", _restore_check, _close),
    _when_reinstalling(_INSTALL["unix user"]),
    _when_reinstalling(_INSTALL["directories"]),
    _when_reinstalling(_INSTALL["codebase"]),
    _when_reinstalling(_INSTALL["database"]),
    Step("safety dump", _safety_stage, _safety_discard),
    DetachedStep("safety archive", "", command=_safety_archive, rollback=_safety_discard),
    Step("safety record", _safety_record),
    Step("unpack stage", _unpack_stage, _unpack_discard),
    Step("fetch", _restore_fetch),
    DetachedStep("unpack", "", command=_unpack, rollback=_unpack_discard),
    Step("files", _restore_files, _restore_files_undo),
    Step("load database", _restore_database, _restore_database_undo),
    _INSTALL["settings"],
    _INSTALL["php pool"],
    _when_reinstalling(_INSTALL["certificate"]),
    _INSTALL["vhost"],
    _INSTALL["health"],
    _INSTALL["record"],
    Step("store", _restore_store, _restore_store_undo),
    Step("settle", _restore_settle),
)


def _restore_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"backup", "skip_probe"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    _backup_id(args)
    _flag(args, "skip_probe")
    return args


def _flag(args: Mapping[str, Any], key: str) -> None:
    if key in args and not isinstance(args[key], bool):
        raise ValidationError(f"args.{key}", "must be true or false", args[key])


# ---------------------------------------------------------------------------
# Clone and migrate: a second site context (the target), and copying data
# ---------------------------------------------------------------------------

_TARGET: Final = "data.target"
_SOURCE_PATHS: Final = "data.source_paths"


@dataclass
class _Target:
    """The site a clone or a migration makes: its own context for the install steps."""

    site: Site
    platform: Platform
    server: Server
    transport: Transport
    owned: bool
    state: dict[str, Any] = field(default_factory=dict)
    same_server: bool = True

    async def close(self) -> None:
        env = self.state.get(site_tasks.ENV)
        if isinstance(env, SiteEnv):
            await env.close()
        if self.owned:
            self.owned = False
            await self.transport.close()


def _target(ctx: TaskContext) -> _Target:
    target = ctx.state.get(_TARGET)
    if not isinstance(target, _Target):
        raise StepFailed("the target site was not resolved")
    return target


def _on_target(ctx: TaskContext) -> TaskContext:
    """The task's context, seen as the target site's (its own state, server, transport)."""
    target = _target(ctx)
    sub = copy.copy(ctx)
    sub.site, sub.platform, sub.server = target.site, target.platform, target.server
    sub.transport = target.transport
    sub.state = target.state
    if not target.same_server:
        sub.run_dir = engine_remote.RunDir(
            target.server.root, ctx.task.id, f"site-{target.site.domain}"
        )
    return sub


def _targeted(step: Step, name: str | None = None) -> Step:
    """An install step run for the target site."""

    async def run(ctx: TaskContext) -> None:
        await step.run(_on_target(ctx))

    async def undo(ctx: TaskContext) -> None:
        if isinstance(ctx.state.get(_TARGET), _Target) and step.rollback is not None:
            await step.rollback(_on_target(ctx))

    return Step(name or f"target {step.name}", run, undo if step.rollback is not None else None)


async def _target_env(ctx: TaskContext) -> SiteEnv:
    return await site_env(_on_target(ctx))


async def _store_refs(conn: Any) -> RefIds:
    return RefIds(
        platforms=await platform_queries.ids(conn),
        clients={c.name: c.id for c in await client_queries.list_all(conn) if c.id is not None},
        servers=await server_queries.ids(conn),
    )


async def _target_platform(ctx: TaskContext, env: SiteEnv, name: str) -> tuple[Platform, Server]:
    async with ctx.db.read() as conn:
        platform = await platform_queries.get(conn, name)
        server = await server_queries.get(conn, platform.server) if platform else None
    if platform is None or server is None:
        raise StepFailed(f"there is no platform {name}")
    try:
        platform = Platform(
            name=platform.name, server=platform.server, type=platform.type, root=platform.root,
            release=platform.release, locked=platform.locked,
        )  # fmt: skip
    except ValidationError as exc:
        raise StepFailed(f"refused before any remote command: {exc}") from exc
    if platform.type is not env.platform.type:
        raise StepFailed(
            f"{platform.name} is a {platform.type} platform; {env.site.domain} runs on "
            f"{env.platform.type}"
        )
    if platform.locked:
        raise StepFailed(f"the platform {platform.name} is locked: it takes no new sites")
    return platform, server


async def _machine_id(transport: Transport) -> str:
    result = await run_step(
        transport,
        "read the machine id",
        "cat /etc/machine-id 2>/dev/null || hostname",
        time_limit=60,
    )
    return result.stdout[-1].strip() if result.ok and result.stdout else ""


async def _bind_target(
    ctx: TaskContext, env: SiteEnv, site: Site, platform: Platform, server: Server
) -> _Target:
    same = server.name == env.server.name
    if same:
        transport, owned = env.transport, False
    else:
        transport, owned = transport_for(server, ctx.config), True
    target = ctx.state[_TARGET] = _Target(site, platform, server, transport, owned, {}, same)
    tenv = await _target_env(ctx)
    try:
        await lay_out(tenv.transport, tenv.server)
    except ServiceError as exc:
        raise _failed(f"cannot lay out Cockpit's dirs on {server.name}", exc) from exc
    if env.engine is not None and env.engine not in tenv.db_offered():
        raise StepFailed(f"{server.name} offers no {env.engine} database service")
    if tenv.record is None or tenv.engine is None:
        tenv.bind_db(env.engine, ctx.config)
    for side in (env, tenv):
        if side.db is not None and side.db_transport is not side.transport:
            raise StepFailed(
                f"{side.site.domain}'s database is on another server: copying it from there "
                "is not supported"
            )
    return target


#: Prints "<kind>\t<path>" for each path: dir, file or missing.
_KINDS: Final = r"""
for p; do
    if [ -d "$p" ] && ! [ -L "$p" ]; then k=dir
    elif [ -e "$p" ] || [ -L "$p" ]; then k=file
    else k=missing
    fi
    printf '%s\t%s\n' "$k" "$p"
done
"""

#: Copies within one server. Args: from user, to user, then pairs of source and
#: destination. Each copy is made beside the destination (reflinked where the file
#: system can), its owner changed from the source site's user to the target's, then
#: renamed over it. A missing source leaves its destination as it is.
_COPY: Final = r"""
from=$1 to=$2
shift 2
umask 022
while [ "$#" -ge 2 ]; do
    src=$1 dst=$2
    shift 2
    if ! [ -e "$src" ] && ! [ -L "$src" ]; then
        echo "cockpit: $src is not there; $dst is left as it is"
        continue
    fi
    parent=$(dirname -- "$dst")
    [ -d "$parent" ] || { echo "cockpit: $parent is missing" >&2; exit 66; }
    tmp="$dst.cockpit-copy"
    rm -rf -- "$tmp"
    echo "copying $src to $dst"
    if ! cp -a --reflink=auto -- "$src" "$tmp"; then
        rm -rf -- "$tmp"
        free=$(df -Pk -- "$parent" 2>/dev/null | awk 'NR == 2 { print $4 }')
        echo "cockpit: copying $src into $parent failed (${free:-?} KiB free there)" >&2
        exit 1
    fi
    if [ -n "$from" ] && [ "$from" != "$to" ]; then
        if ! chown -Rh --from="$from" -- "$to" "$tmp" || ! chown -Rh --from=":$from" -- ":$to" "$tmp"; then
            rm -rf -- "$tmp"
            exit 1
        fi
    fi
    rm -rf -- "$dst"
    mv -T -- "$tmp" "$dst" || exit 1
done
"""

#: The source end of a copy between servers. Args: kind (dir/file), path.
_SEND: Final = r"""
kind=$1 p=$2
if [ "$kind" = dir ]; then exec tar -C "$p" -cf - .; fi
exec tar -C "$(dirname -- "$p")" -cf - "./${p##*/}"
"""

#: The destination end. Args: kind, destination, the file's name (a file), the source
#: site user's uid and gid on the sending server ("" to keep owners), the target site's
#: user. Unpacks beside the destination, then renames it over. Owners go by name (tar's
#: default), so a name the receiving server lacks keeps the sender's number: the source
#: site user's files are matched by its numbers, which is how they arrive.
_RECEIVE: Final = r"""
kind=$1 dst=$2 base=$3 fuid=$4 fgid=$5 to=$6
umask 022
parent=$(dirname -- "$dst")
if ! [ -d "$parent" ]; then echo "cockpit: $parent is missing" >&2; cat > /dev/null; exit 66; fi
tmp="$dst.cockpit-copy"
rm -rf -- "$tmp"
mkdir -- "$tmp" || exit 1
if ! tar -C "$tmp" -xpf -; then
    rm -rf -- "$tmp"
    free=$(df -Pk -- "$parent" 2>/dev/null | awk 'NR == 2 { print $4 }')
    echo "cockpit: unpacking into $parent failed (${free:-?} KiB free there)" >&2
    exit 1
fi
if [ -n "$fuid" ]; then
    if ! chown -Rh --from="$fuid" -- "$to" "$tmp" || ! chown -Rh --from=":$fgid" -- ":$to" "$tmp"; then
        rm -rf -- "$tmp"
        exit 1
    fi
fi
rm -rf -- "$dst"
if [ "$kind" = file ]; then
    if ! [ -e "$tmp/$base" ] && ! [ -L "$tmp/$base" ]; then
        echo "cockpit: the stream held no $base" >&2
        rm -rf -- "$tmp"
        exit 1
    fi
    mv -T -- "$tmp/$base" "$dst" || exit 1
    rm -rf -- "$tmp"
else
    mv -T -- "$tmp" "$dst" || exit 1
fi
echo "received $dst"
"""

#: The destination end of a dump. Args: path, owner ("" root).
_TAKE: Final = r"""
path=$1 owner=$2
umask 077
if ! cat > "$path.partial"; then rm -f -- "$path.partial"; exit 1; fi
mv -f -- "$path.partial" "$path" || exit 1
if [ -n "$owner" ]; then chown -- "$owner" "$path" || exit 1; fi
"""

#: Removes a dir inside a parent dir. Args: dir, parent.
_RMTREE: Final = r"""
dir=$1 parent=$2
case $dir in "$parent"/?*) ;; *) echo "cockpit: refusing to remove $dir" >&2; exit 65 ;; esac
rm -rf -- "$dir"
"""


async def _kinds(transport: Transport, paths: Sequence[str]) -> dict[str, str]:
    result = await run_step(transport, "look at the data paths", _KINDS, list(paths), sudo=True)
    if not result.ok:
        raise StepFailed(f"cannot look at the site's data paths: {' / '.join(result.stderr[-3:])}")
    kinds: dict[str, str] = {}
    for line in result.stdout:
        kind, tab, path = line.partition("\t")
        if tab:
            kinds[path] = kind
    return kinds


async def _ids(transport: Transport, user: str) -> tuple[str, str]:
    """A Unix user's uid and primary gid on a server."""
    result = await run_step(
        transport, f"look up {user}", 'id -u -- "$1" && id -g -- "$1"', [user], sudo=True
    )
    numbers = [line.strip() for line in result.stdout]
    if not result.ok or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        raise StepFailed(f"cannot look up the Unix user {user}: {' / '.join(result.stderr[-2:])}")
    return numbers[0], numbers[1]


async def copy_paths(
    ctx: TaskContext,
    source: Transport,
    pairs: Sequence[tuple[str, str]],
    *,
    dest: Transport | None = None,
    from_user: str = "",
    to_user: str = "",
) -> int:
    """Copy each (source, destination) pair: on one server with ``cp --reflink=auto``
    (detached), between two (``dest`` given) streamed through this process. Owners
    that were ``from_user`` become ``to_user``. Returns the bytes streamed."""
    if not pairs:
        return 0
    if dest is None:
        args = [from_user, to_user]
        for src, dst in pairs:
            args += [src, dst]
        await _detached(ctx, RemoteCommand("copy the site's data", _COPY, tuple(args)))
        return 0
    kinds = await _kinds(source, [src for src, _ in pairs])
    fuid = fgid = ""
    if from_user and from_user != to_user:
        fuid, fgid = await _ids(source, from_user)
    moved = 0
    for src, dst in pairs:
        kind = kinds.get(src, "missing")
        if kind == "missing":
            ctx.log(f"{src} is not there; {dst} is left as it is")
            continue
        base = src.rsplit("/", 1)[-1] if kind == "file" else ""
        piped = await pipe(
            source, _SEND, [kind, src], dest, _RECEIVE, [kind, dst, base, fuid, fgid, to_user],
            on_line=_lines(ctx),
        )  # fmt: skip
        if piped.dest.unknown or piped.source.unknown:
            raise OutcomeUnknown(f"copying {src}: {piped.source.reason or piped.dest.reason}")
        if piped.source.exit_code not in (0, 1) or not piped.dest.ok:
            raise StepFailed(
                f"copying {src} to {dst} failed (sent: exit {piped.source.exit_code}, "
                f"received: exit {piped.dest.exit_code})"
            )
        if piped.source.exit_code == 1:
            ctx.log(f"files under {src} changed while they were read; the copy holds what was read")
        moved += piped.bytes
        ctx.log(f"copied {src} to {dst} ({_size(piped.bytes)} streamed)")
    return moved


async def _remove_dir(transport: Transport, path: str, parent: str) -> None:
    result = await run_step(transport, f"remove {path}", _RMTREE, [path, parent], sudo=True)
    if not result.ok:
        raise StepFailed(f"cannot remove {path}: {' / '.join(result.stderr[-3:])}")


async def _copy_database(ctx: TaskContext, env: SiteEnv, tenv: SiteEnv) -> None:
    """The source's database dumped on its server and loaded into the target's (empty)
    database; between two servers the dump is streamed across."""
    if env.db is None or env.database is None or tenv.db is None or tenv.database is None:
        ctx.log("no database")
        return
    assert tenv.db_user is not None and tenv.db_transport is not None
    tag = task_tag(ctx, "copy")
    here = backup_plugin(env.server, env.secrets)
    there = backup_plugin(tenv.server, tenv.secrets)
    same = env.server.name == tenv.server.name
    made: list[tuple[Transport, str, str]] = []
    try:
        work = await here.make_work_dir(env.transport, env.site.domain, tag, client_user(env.db))
        made.append((env.transport, env.server.root, work))
        dump = f"{work}/database.sql"
        await env.db.dump_database(env.transport, env.database, dump)
        if not same:
            twork = await there.make_work_dir(
                tenv.transport, tenv.site.domain, tag, client_user(tenv.db)
            )
            made.append((tenv.transport, tenv.server.root, twork))
            target_dump = f"{twork}/database.sql"
            piped = await pipe(
                env.transport, 'exec cat -- "$1"', [dump],
                tenv.transport, _TAKE, [target_dump, client_user(tenv.db)],
                on_line=_lines(ctx),
            )  # fmt: skip
            if not piped.ok:
                raise StepFailed(
                    f"streaming the dump to {tenv.server.name} failed "
                    f"(exit {piped.source.exit_code}/{piped.dest.exit_code})"
                )
            ctx.log(f"streamed the dump to {tenv.server.name} ({_size(piped.bytes)})")
            dump = target_dump
        await tenv.db.load_database(tenv.db_transport, tenv.database, tenv.db_user, dump)
    except (ServiceError, ValidationError) as exc:
        raise _failed("copying the database failed", exc) from exc
    finally:
        for transport, root, path in made:
            with contextlib.suppress(ServiceError, TransportError, ValidationError):
                await remove_paths(transport, root, [path])
    ctx.log(f"the database {env.database} is copied into {tenv.database}")


def _primary_url(site: Site) -> str:
    scheme = "https" if site.https is not HttpsMode.OFF else "http"
    return f"{scheme}://{site.redirection or site.domain}"


async def _target_urls(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    old, new = _primary_url(env.site), _primary_url(tenv.site)
    if old == new:
        return
    try:
        await tenv.plugin.rewrite_urls(tenv.transport, tenv.layout, tenv.credentials, old, new)
    except PlatformError as exc:
        raise _failed("cannot rewrite the site's URLs", exc) from exc
    ctx.log(f"URLs rewritten: {old} -> {new}")


async def _clean_target_run_dir(ctx: TaskContext) -> None:
    target = ctx.state.get(_TARGET)
    if isinstance(target, _Target) and not target.same_server:
        sub = _on_target(ctx)
        if sub.used_run_dir and sub.run_dir is not None:
            with contextlib.suppress(Exception):
                await engine_remote.clean(target.transport, sub.run_dir, sudo=True)


# ---------------------------------------------------------------------------
# site.clone
# ---------------------------------------------------------------------------


async def _clone_check(ctx: TaskContext) -> None:
    env = await site_env(ctx, need_record=True)
    domain = validate_domain(ctx.args["domain"], "args.domain")
    if domain == env.site.domain or domain in env.site.aliases:
        raise StepFailed(f"{domain} is the site itself")
    platform, server = await _target_platform(
        ctx, env, ctx.args.get("platform") or env.platform.name
    )
    async with ctx.db.read() as conn:
        existing = await site_queries.get(conn, domain)
    if existing is not None:
        raise StepFailed(f"{domain} is already in the inventory")
    site = Site(
        domain,
        platform.name,
        client=env.site.client,
        https=HttpsMode.parse(ctx.args.get("https", "off"), "args.https"),
    )
    async with ctx.db.write() as conn:
        await site_queries.insert_many(conn, [site], await _store_refs(conn))
    ctx.state["data.clone_added"] = domain
    target = await _bind_target(ctx, env, site, platform, server)
    tenv = await _target_env(ctx)
    if tenv.record is not None:
        raise StepFailed(f"{domain} is already installed on {server.name}")
    ctx.log(
        f"cloning {env.site.domain} to {domain} on {platform.name} ({server.name}"
        + (", the same server" if target.same_server else "")
        + ")"
    )


async def _clone_check_undo(ctx: TaskContext) -> None:
    domain = ctx.state.get("data.clone_added")
    if domain:
        async with ctx.db.write() as conn:
            await site_queries.delete_many(conn, [domain])
    await _clean_target_run_dir(ctx)
    await _close(ctx)


async def _clone_files(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    target = _target(ctx)
    pairs = list(
        zip(env.plugin.data_paths(env.layout), tenv.plugin.data_paths(tenv.layout), strict=True)
    )
    moved = await copy_paths(
        ctx,
        env.transport,
        pairs,
        dest=None if target.same_server else tenv.transport,
        from_user=env.layout.unix_user,
        to_user=tenv.layout.unix_user,
    )
    ctx.log(f"copied {len(pairs)} data paths" + (f" ({_size(moved)})" if moved else ""))


async def _clone_database(ctx: TaskContext) -> None:
    await _copy_database(ctx, await site_env(ctx), await _target_env(ctx))


async def _clone_done(ctx: TaskContext) -> None:
    target = _target(ctx)
    await _clean_target_run_dir(ctx)
    await _close(ctx)
    ctx.summary(f"cloned to {target.site.domain} on {target.platform.name} ({target.server.name})")


CLONE_STEPS: Final = (
    Step("check", _clone_check, _clone_check_undo),
    _targeted(_INSTALL["unix user"]),
    _targeted(_INSTALL["directories"]),
    _targeted(_INSTALL["codebase"]),
    _targeted(_INSTALL["database"]),
    Step("copy files", _clone_files),
    Step("copy database", _clone_database),
    _targeted(_INSTALL["settings"]),
    _targeted(_INSTALL["php pool"]),
    Step("rewrite URLs", _target_urls),
    _targeted(_INSTALL["certificate"]),
    _targeted(_INSTALL["vhost"]),
    _targeted(_INSTALL["health"]),
    _targeted(_INSTALL["record"]),
    Step("done", _clone_done),
)


def _clone_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"domain", "platform", "https", "skip_probe"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    if "domain" not in args:
        raise ValidationError("args.domain", "say the new site's domain")
    args["domain"] = validate_domain(args["domain"], "args.domain")
    if "platform" in args:
        args["platform"] = validate_name(args["platform"], "args.platform")
    if "https" in args:
        args["https"] = HttpsMode.parse(args["https"], "args.https").value
    _flag(args, "skip_probe")
    return args


# ---------------------------------------------------------------------------
# site.migrate
# ---------------------------------------------------------------------------

_SHARED_DB: Final = "data.shared_db"
_SAME_MACHINE: Final = "data.same_machine"
_MIGRATE_SWAPS: Final = "data.migrate_swaps"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


async def _migrate_check(ctx: TaskContext) -> None:
    env = await site_env(ctx, need_record=True)
    name = ctx.args["platform"]
    if name == env.platform.name:
        raise StepFailed(f"{env.site.domain} already runs on {name}")
    platform, server = await _target_platform(ctx, env, name)
    site = dataclasses.replace(env.site, platform=platform.name)
    target = await _bind_target(ctx, env, site, platform, server)
    tenv = await _target_env(ctx)
    if not target.same_server and tenv.record is not None:
        raise StepFailed(f"{env.site.domain} is already installed on {server.name}")
    if not target.same_server:
        ctx.state[_SAME_MACHINE] = await _machine_id(env.transport) == await _machine_id(
            tenv.transport
        )
    ctx.log(
        f"migrating {env.site.domain} from {env.platform.name} ({env.server.name}) to "
        f"{platform.name} ({server.name})"
    )


async def _migrate_check_undo(ctx: TaskContext) -> None:
    await _clean_target_run_dir(ctx)
    await _close(ctx)


def _same_server(step: Step) -> Step:
    async def run(ctx: TaskContext) -> None:
        if _target(ctx).same_server:
            await step.run(ctx)

    async def undo(ctx: TaskContext) -> None:
        target = ctx.state.get(_TARGET)
        if isinstance(target, _Target) and target.same_server and step.rollback is not None:
            await step.rollback(ctx)

    return Step(step.name, run, undo if step.rollback is not None else None)


def _other_server(step: Step) -> Step:
    async def run(ctx: TaskContext) -> None:
        if not _target(ctx).same_server:
            await step.run(ctx)

    async def undo(ctx: TaskContext) -> None:
        target = ctx.state.get(_TARGET)
        if isinstance(target, _Target) and not target.same_server and step.rollback is not None:
            await step.rollback(ctx)

    return Step(step.name, run, undo if step.rollback is not None else None)


async def _rebuild(ctx: TaskContext) -> None:
    """One server: the new platform's docroot built beside the live one from its
    codebase, with the site's data copied in; data paths that move get fresh copies."""
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    tag = task_tag(ctx, "migrate")
    layout = tenv.layout
    swaps: list[Swap] = []
    pairs: list[tuple[str, str]] = []
    fresh_root = ""
    if layout.own_docroot:
        fresh_root = fresh_path(layout.docroot, tag)
        swaps.append(swap_paths(layout.docroot, tag))
    sources = env.plugin.data_paths(env.layout)
    for src, dst in zip(sources, tenv.plugin.data_paths(layout), strict=True):
        if fresh_root and _under(dst, layout.docroot):
            pairs.append((src, fresh_root + dst[len(layout.docroot) :]))
        elif dst != src:
            pairs.append((src, fresh_path(dst, tag)))
            swaps.append(swap_paths(dst, tag))
    fresh = [s.fresh for s in swaps]
    await remove_paths(tenv.transport, tenv.server.root, fresh)
    try:
        if fresh_root:
            try:
                await tenv.plugin.populate_docroot(
                    tenv.transport, dataclasses.replace(layout, docroot=fresh_root), tenv.web_group
                )
            except PlatformError as exc:
                raise _failed(f"cannot build the docroot from {tenv.platform.root}", exc) from exc
        await copy_paths(ctx, env.transport, pairs)
    except StepFailed:
        # This step is not undone by the engine when it fails itself: what it built so
        # far goes now (a lost connection leaves it to a later attempt, which starts
        # by removing it).
        with contextlib.suppress(ServiceError, TransportError):
            await remove_paths(tenv.transport, tenv.server.root, fresh)
            ctx.log("removed the half-built paths: " + ", ".join(fresh))
        raise
    ctx.state[_MIGRATE_SWAPS] = swaps
    ctx.log(
        f"built {len(swaps)} fresh path(s) from {tenv.platform.name}: "
        + ", ".join(s.fresh for s in swaps)
    )


async def _rebuild_undo(ctx: TaskContext) -> None:
    swaps = ctx.state.get(_MIGRATE_SWAPS) or []
    if swaps:
        env = await site_env(ctx)
        await remove_paths(env.transport, env.server.root, [s.fresh for s in swaps])


async def _swap(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    for swap in ctx.state.get(_MIGRATE_SWAPS) or []:
        try:
            await swap_in(env.transport, swap)
        except ServiceError as exc:
            raise _failed(f"cannot put {swap.live} in place", exc) from exc
    try:
        await tenv.plugin.prepare_site(tenv.transport, tenv.layout, tenv.web_group)
    except PlatformError as exc:
        raise _failed("cannot prepare the site on its new platform", exc) from exc


async def _swap_undo(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    for swap in reversed(ctx.state.get(_MIGRATE_SWAPS) or []):
        await swap_back(env.transport, swap)


async def _stream_files(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    pairs = list(
        zip(env.plugin.data_paths(env.layout), tenv.plugin.data_paths(tenv.layout), strict=True)
    )
    moved = await copy_paths(
        ctx, env.transport, pairs, dest=tenv.transport,
        from_user=env.layout.unix_user, to_user=tenv.layout.unix_user,
    )  # fmt: skip
    ctx.log(f"streamed {len(pairs)} data paths to {tenv.server.name} ({_size(moved)})")


_PROBE_SQL: Final[Mapping[DbEngine, str]] = {
    DbEngine.MYSQL: "SELECT COUNT(*) FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{name}';\n",
    DbEngine.PGSQL: "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = '{name}';\n",
}


async def _shared_database(ctx: TaskContext, env: SiteEnv, tenv: SiteEnv) -> bool:
    """Whether the source's and the target's database are one and the same (both
    servers use one database server): a probe table made by one, looked for by the other."""
    if env.db is None or tenv.db is None or env.engine is None:
        return False
    assert env.db_transport is not None and tenv.db_transport is not None
    creds, tcreds = await _credentials(ctx, env), await _credentials(ctx, tenv)
    name = f"cockpit_probe_{secrets.token_hex(6)}"
    try:
        await env.db.query_as(env.db_transport, creds, f"CREATE TABLE {name} (v INT);\n")
        try:
            rows = await tenv.db.query_as(
                tenv.db_transport, tcreds, _PROBE_SQL[env.engine].format(name=name)
            )
        finally:
            await env.db.query_as(env.db_transport, creds, f"DROP TABLE IF EXISTS {name};\n")
    except ServiceError as exc:
        raise _failed("cannot compare the two databases", exc) from exc
    return rows[-1:] == ["1"]


async def _migrate_database(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    tenv = await _target_env(ctx)
    if await _shared_database(ctx, env, tenv):
        ctx.state[_SHARED_DB] = True
        ctx.log(
            f"{env.server.name} and {tenv.server.name} use the same database server: "
            f"{env.database} stays where it is"
        )
        return
    await _copy_database(ctx, env, tenv)


async def _migrate_update(ctx: TaskContext) -> None:
    tenv = await _target_env(ctx)
    update = getattr(tenv.plugin, "update", None)
    if update is None:
        return
    try:
        await update(tenv.transport, tenv.layout, tenv.site)
    except PlatformError as exc:
        raise _failed("the application's update failed", exc) from exc


async def _migrate_store(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    target = _target(ctx)
    async with ctx.db.write() as conn:
        await site_queries.update_many(conn, [target.site], await _store_refs(conn))
    ctx.log(f"the inventory has {env.site.domain} on {target.platform.name} now")


async def _migrate_store_undo(ctx: TaskContext) -> None:
    env = await site_env(ctx)
    async with ctx.db.write() as conn:
        await site_queries.update_many(conn, [env.site], await _store_refs(conn))


async def _settle_one_server(ctx: TaskContext) -> list[str]:
    env = await site_env(ctx)
    notes: list[str] = []
    swaps = ctx.state.get(_MIGRATE_SWAPS) or []
    try:
        await settle(env.transport, env.server.root, swaps)
    except ServiceError as exc:
        notes.append(f"could not remove the previous paths: {exc.summary}")
    if not env.layout.own_docroot:
        subdir = env.layout.files_dir.rsplit("/", 1)[0]
        try:
            await _remove_dir(env.transport, subdir, f"{env.platform.root}/sites")
        except StepFailed as exc:
            notes.append(str(exc))
    return notes


async def _settle_other_server(ctx: TaskContext) -> list[str]:
    """The site answers on its new server: remove it from the old one. Never fails the
    task (it is done); what cannot be removed is reported."""
    env = await site_env(ctx)
    notes: list[str] = []

    async def attempt(what: str, action: Callable[[], Awaitable[object]]) -> None:
        try:
            await action()
            ctx.log(f"removed from {env.server.name}: {what}")
        except (ServiceError, StepFailed, TransportError, ValidationError) as exc:
            notes.append(f"{what}: {exc}")
            ctx.log(f"WARNING: could not remove {what} from {env.server.name}: {exc}")

    domain = env.site.domain
    await attempt("vhost", lambda: env.http.remove_site(env.transport, domain))
    if env.plugin.uses_php:
        await attempt(
            "php-fpm pool", lambda: env.http.php_fpm().remove_pool(env.transport, env.pool().name)
        )
    cert_dir = env.http.certificate_paths(domain).certificate.rsplit("/", 1)[0]
    await attempt(
        "files",
        lambda: remove_paths(env.transport, env.server.root, [env.layout.site_dir, cert_dir]),
    )
    if not env.layout.own_docroot:
        subdir = env.layout.files_dir.rsplit("/", 1)[0]
        await attempt(
            "platform dir", lambda: _remove_dir(env.transport, subdir, f"{env.platform.root}/sites")
        )
    await attempt("record", lambda: remove_record(env.transport, env.server.root, domain))
    if env.db is not None and env.database and env.db_user:
        if ctx.state.get(_SHARED_DB):
            ctx.log(f"the database {env.database} is shared with the new server: kept")
        else:
            db, dbt = env.db, env.db_transport
            assert dbt is not None
            database, user = env.database, env.db_user
            await attempt(f"database {database}", lambda: db.drop_database(dbt, database, user))
    if ctx.state.get(_SAME_MACHINE):
        ctx.log(
            f"{env.server.name} and the new server are one machine: the Unix user "
            f"{env.layout.unix_user} stays (the new server uses it)"
        )
    else:
        await attempt(f"Unix user {env.layout.unix_user}", lambda: remove_unix_user(env))
    return notes


async def _migrate_settle(ctx: TaskContext) -> None:
    target = _target(ctx)
    if target.same_server:
        notes = await _settle_one_server(ctx)
    else:
        notes = await _settle_other_server(ctx)
    await _clean_target_run_dir(ctx)
    await _close(ctx)
    ctx.summary(
        f"migrated to {target.platform.name} ({target.server.name})"
        + (f"; left behind: {'; '.join(notes)}" if notes else "")
    )


MIGRATE_STEPS: Final = (
    Step("check", _migrate_check, _migrate_check_undo),
    _other_server(_targeted(_INSTALL["unix user"])),
    _other_server(_targeted(_INSTALL["directories"])),
    _targeted(_INSTALL["codebase"]),
    _other_server(_targeted(_INSTALL["database"])),
    _same_server(Step("rebuild docroot", _rebuild, _rebuild_undo)),
    _same_server(Step("swap", _swap, _swap_undo)),
    _other_server(Step("copy files", _stream_files)),
    _other_server(Step("copy database", _migrate_database)),
    _targeted(_INSTALL["settings"]),
    _targeted(_INSTALL["php pool"]),
    Step("update", _migrate_update),
    _other_server(_targeted(_INSTALL["certificate"])),
    _targeted(_INSTALL["vhost"]),
    _targeted(_INSTALL["health"]),
    _targeted(_INSTALL["record"]),
    Step("store", _migrate_store, _migrate_store_undo),
    Step("settle", _migrate_settle),
)


def _migrate_args(args: dict[str, Any]) -> dict[str, Any]:
    allowed = {"platform", "skip_probe"}
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise ValidationError(f"args.{unknown[0]}", f"unknown; valid: {', '.join(sorted(allowed))}")
    if "platform" not in args:
        raise ValidationError("args.platform", "say the platform to migrate to")
    args["platform"] = validate_name(args["platform"], "args.platform")
    _flag(args, "skip_probe")
    return args


# ---------------------------------------------------------------------------
# The kinds
# ---------------------------------------------------------------------------

SITE_BACKUP: Final = TaskKind(
    name="site.backup",
    target=TargetKind.SITE,
    idempotent=True,
    description="Back up the site's data paths and database on its server (recorded with size and sha256)",
    steps=(
        Step("check", _backup_check, _close),
        Step("dump", _backup_stage, _backup_discard),
        DetachedStep("archive", "", command=_backup_archive, rollback=_backup_discard),
        Step("record", _backup_record),
    ),
    check_args=_backup_args,
    sudo=True,
    params=(
        Param("backend", "the backup service type (default: the server's, else tar)"),
        Param("compression", "how the archive is packed", choices=("zstd", "gzip")),
    ),
)

SITE_BACKUP_DELETE: Final = TaskKind(
    name="site.backup-delete",
    target=TargetKind.SITE,
    idempotent=True,
    description="Delete one of the site's backups, on the server it is on (args: backup)",
    steps=(Step("delete", _backup_delete),),
    check_args=_backup_delete_args,
    sudo=True,
    params=(
        Param("backup", "the backup's id", required=True, kind="backup"),
        Param("server", "the server it is on (default: the one recorded)", kind="server"),
    ),
)

SITE_BACKUP_PRUNE: Final = TaskKind(
    name="site.backup-prune",
    target=TargetKind.SITE,
    idempotent=True,
    description=(
        "Apply the backup retention policy (config: backups): remove the site's backups it "
        "does not keep, each on its own server (args: keep_last, keep_days, safety_days, "
        "delete_days, dry_run)"
    ),
    steps=(Step("plan", _prune_plan), Step("remove", _prune_delete)),
    check_args=_prune_args,
    sudo=True,
    params=(
        Param("keep_last", "keep the newest N ordinary backups", kind="int"),
        Param("keep_days", "keep every backup younger than N days", kind="int"),
        Param("safety_days", "keep a restore's safety backups N days", kind="int"),
        Param("delete_days", "keep a delete's backup N days", kind="int"),
        Param("dry_run", "only say what would be removed", kind="bool"),
    ),
)

SITE_RESTORE: Final = TaskKind(
    name="site.restore",
    target=TargetKind.SITE,
    idempotent=False,
    description=(
        "Restore a backup (args: backup; default the newest): a safety backup first, "
        "then data paths and database, then verify; on failure everything goes back"
    ),
    steps=RESTORE_STEPS,
    max_attempts=1,
    check_args=_restore_args,
    sudo=True,
    params=(
        Param("backup", "the backup's id (default: the newest)", kind="backup"),
        Param("skip_probe", "do not probe the site's health at the end", kind="bool"),
    ),
)

SITE_CLONE: Final = TaskKind(
    name="site.clone",
    target=TargetKind.SITE,
    idempotent=False,
    description="Clone the site to a new domain (args: domain, platform), on this or another server",
    steps=CLONE_STEPS,
    max_attempts=1,
    check_args=_clone_args,
    sudo=True,
    params=(
        Param("domain", "the new site's domain", required=True, kind="domain", unique=True),
        Param("platform", "the platform of the copy (default: the site's)", kind="platform"),
        Param("https", "HTTPS of the copy (default: off)", choices=("off", "on", "required")),
        Param("skip_probe", "do not probe the copy's health at the end", kind="bool"),
    ),
)

SITE_MIGRATE: Final = TaskKind(
    name="site.migrate",
    target=TargetKind.SITE,
    idempotent=False,
    description="Move the site to another platform and/or server (args: platform)",
    steps=MIGRATE_STEPS,
    max_attempts=1,
    check_args=_migrate_args,
    sudo=True,
    params=(
        Param("platform", "the platform to move to", required=True, kind="platform"),
        Param("skip_probe", "do not probe the site's health at the end", kind="bool"),
    ),
)

KINDS: Final = (
    SITE_BACKUP,
    SITE_BACKUP_DELETE,
    SITE_BACKUP_PRUNE,
    SITE_RESTORE,
    SITE_CLONE,
    SITE_MIGRATE,
)

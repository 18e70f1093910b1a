"""Platform tasks: install the codebase, verify, lock/unlock, delete.

- ``platform.install`` (args: ``source``, a dir or a tarball on the server): puts the
  codebase at the platform's root (built beside it, then renamed in), detects its
  release and records it in the store. Undone (the root removed) if a later step fails.
- ``platform.verify``: the codebase is there, its release (recorded in the store when
  it changed), the sites the inventory has on it.
- ``platform.lock`` / ``platform.unlock``: a locked platform takes no new sites
  (``site.install`` refuses it; its sites keep running and converging).
- ``platform.delete``: refused while the inventory has sites on it (deleted ones
  aside); removes the codebase and the platform from the store.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from cockpit.backends.platforms import PlatformError, PlatformPlugin, plugin_for
from cockpit.backends.services.base import CheckStatus, ServiceError, run_step
from cockpit.engine import Param, Step, StepFailed, TargetKind, TaskContext, TaskKind
from cockpit.model import Platform, SiteStatus, ValidationError, validate_path
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import SiteFilter

__all__ = ["KINDS", "count_sites", "install_codebase", "install_undo", "record_release"]

PLUGIN: Final = "platform_plugin"

#: Args: root, the dir it must be below (the server's root or the platform root's parent).
_REMOVE: Final = r"""
root=$1
case $root in /|/bin|/boot|/dev|/etc|/lib|/lib64|/proc|/root|/run|/sbin|/sys|/usr|/var|/home)
    echo "cockpit: refusing to remove $root" >&2; exit 65 ;;
esac
[ -L "$root" ] && { rm -f -- "$root"; exit 0; }
rm -rf -- "$root"
"""


def _platform(ctx: TaskContext) -> Platform:
    platform = ctx.platform
    if platform is None or ctx.transport is None:
        raise StepFailed("this task needs a platform on a server")
    try:
        return Platform(
            name=platform.name,
            server=platform.server,
            type=platform.type,
            root=platform.root,
            release=platform.release,
            locked=platform.locked,
        )
    except ValidationError as exc:
        raise StepFailed(f"refused before any remote command: {exc}") from exc


def _plugin(ctx: TaskContext) -> PlatformPlugin:
    plugin = ctx.state.get(PLUGIN)
    if not isinstance(plugin, PlatformPlugin):
        plugin = plugin_for(_platform(ctx))
        ctx.state[PLUGIN] = plugin
    return plugin


async def count_sites(ctx: TaskContext, name: str) -> int:
    """The sites of the inventory on platform ``name``, the deleted ones aside."""
    async with ctx.db.read() as conn:
        every = await site_queries.count(conn, SiteFilter(platform=name))
        deleted = await site_queries.count(
            conn, SiteFilter(platform=name, status=SiteStatus.DELETED)
        )
    return every - deleted


async def _save(ctx: TaskContext, platform: Platform) -> None:
    async with ctx.db.write() as conn:
        await platform_queries.update_many(conn, [platform], await server_queries.ids(conn))


# -- install ---------------------------------------------------------------------------


async def install_codebase(ctx: TaskContext) -> None:
    """Put the codebase at the platform's root from ``ctx.args["source"]`` (undone by
    :func:`install_undo` when it made the root); ``site.install`` runs it too."""
    plugin = _plugin(ctx)
    assert ctx.transport is not None
    existed = (
        await run_step(ctx.transport, "look for the root", '[ -e "$1" ]', [plugin.root], sudo=True)
    ).ok
    ctx.state["root_created"] = not existed
    source = str(ctx.args.get("source", ""))
    try:
        if plugin.type in ("static", "php"):
            await plugin.install_codebase(ctx.transport, source)
        else:
            if not source:
                raise StepFailed(f"a {plugin.type} platform needs a source (a dir or tarball)")
            await plugin.install_codebase(ctx.transport, source)
    except PlatformError as exc:
        raise StepFailed(str(exc)) from exc
    ctx.log(f"codebase in {plugin.root}")


async def install_undo(ctx: TaskContext) -> None:
    if ctx.state.get("root_created"):
        plugin = _plugin(ctx)
        assert ctx.transport is not None
        await run_step(ctx.transport, "remove the codebase", _REMOVE, [plugin.root], sudo=True)


async def record_release(ctx: TaskContext, *, summary: bool = True) -> None:
    """Detect the codebase's release and record it in the store when it changed."""
    plugin = _plugin(ctx)
    assert ctx.transport is not None
    release = await plugin.detect_release(ctx.transport)
    platform = _platform(ctx)
    if release and release != platform.release:
        await _save(ctx, dataclasses.replace(platform, release=release))
        ctx.log(f"release {release} (was {platform.release or 'unknown'})")
    if summary:
        ctx.summary(f"{platform.name}: {plugin.type} {release or ''}".rstrip())


def _install_args(args: dict[str, Any]) -> dict[str, Any]:
    for key in args:
        if key != "source":
            raise ValidationError(f"args.{key}", "unknown; valid: source")
    if "source" in args:
        args["source"] = validate_path(args["source"], "args.source")
    return args


# -- verify ----------------------------------------------------------------------------


async def _verify(ctx: TaskContext) -> None:
    plugin = _plugin(ctx)
    platform = _platform(ctx)
    assert ctx.transport is not None
    try:
        checks = await plugin.verify_codebase(ctx.transport)
    except ServiceError as exc:
        raise StepFailed(str(exc)) from exc
    for check in checks:
        ctx.log(f"{check.name}: {check.status}: {check.reason}")
    failed = [c for c in checks if c.status is CheckStatus.FAILED]
    sites = await count_sites(ctx, platform.name)
    ctx.log(f"sites on {platform.name}: {sites}")
    release = next((str(c.details.get("release")) for c in checks if "release" in c.details), "")
    if release and release != platform.release:
        await _save(ctx, dataclasses.replace(platform, release=release))
        ctx.log(f"release recorded: {release} (was {platform.release or 'unknown'})")
    if failed:
        raise StepFailed("; ".join(f"{c.name}: {c.reason}" for c in failed))
    lock = ", locked" if platform.locked else ""
    ctx.summary(f"{plugin.type} {release or platform.release or ''}, {sites} sites{lock}".strip())


# -- lock / unlock ---------------------------------------------------------------------


def _set_lock(locked: bool) -> Any:
    async def run(ctx: TaskContext) -> None:
        platform = _platform(ctx)
        if platform.locked != locked:
            await _save(ctx, dataclasses.replace(platform, locked=locked))
        ctx.summary(f"{platform.name} {'locked' if locked else 'unlocked'}")

    return run


# -- delete ----------------------------------------------------------------------------


async def _delete_check(ctx: TaskContext) -> None:
    platform = _platform(ctx)
    sites = await count_sites(ctx, platform.name)
    if sites:
        raise StepFailed(
            f"{platform.name} still has {sites} site{'s' if sites != 1 else ''}: delete or "
            "migrate them first"
        )


async def _delete_codebase(ctx: TaskContext) -> None:
    plugin = _plugin(ctx)
    assert ctx.transport is not None
    result = await run_step(ctx.transport, "remove the codebase", _REMOVE, [plugin.root], sudo=True)
    if not result.ok:
        raise StepFailed(f"cannot remove {plugin.root}: {' / '.join(result.stderr[-3:])}")
    ctx.log(f"removed {plugin.root}")


async def _delete_store(ctx: TaskContext) -> None:
    platform = _platform(ctx)
    async with ctx.db.write() as conn:
        every = await site_queries.count(conn, SiteFilter(platform=platform.name))
        if every:
            # deleted sites keep their rows (and backups): the platform row stays too
            await platform_queries.update_many(
                conn, [dataclasses.replace(platform, locked=True)], await server_queries.ids(conn)
            )
            ctx.summary(f"{platform.name}: codebase removed; kept (locked) for its deleted sites")
            return
        await platform_queries.delete_many(conn, [platform.name])
    ctx.summary(f"deleted {platform.name}")


# -- the kinds -------------------------------------------------------------------------

PLATFORM_INSTALL: Final = TaskKind(
    name="platform.install",
    target=TargetKind.PLATFORM,
    idempotent=False,
    description="Put the codebase at the platform's root (args: source) and detect its release",
    steps=(
        Step("codebase", install_codebase, install_undo),
        Step("release", record_release),
    ),
    max_attempts=1,
    check_args=_install_args,
    sudo=True,
    params=(
        Param(
            "source",
            "the codebase on the server, a dir or tarball (static, php: optional)",
            kind="path",
        ),
    ),
)

PLATFORM_VERIFY: Final = TaskKind(
    name="platform.verify",
    target=TargetKind.PLATFORM,
    idempotent=True,
    description="Check the codebase, detect its release, count its sites",
    steps=(Step("verify", _verify),),
    sudo=True,
)

PLATFORM_LOCK: Final = TaskKind(
    name="platform.lock",
    target=TargetKind.PLATFORM,
    idempotent=True,
    description="Lock the platform: it takes no new sites",
    steps=(Step("lock", _set_lock(True)),),
)

PLATFORM_UNLOCK: Final = TaskKind(
    name="platform.unlock",
    target=TargetKind.PLATFORM,
    idempotent=True,
    description="Unlock the platform: it takes new sites again",
    steps=(Step("unlock", _set_lock(False)),),
)

PLATFORM_DELETE: Final = TaskKind(
    name="platform.delete",
    target=TargetKind.PLATFORM,
    idempotent=False,
    description="Remove the codebase and the platform (refused while it has sites)",
    steps=(
        Step("check", _delete_check),
        Step("codebase", _delete_codebase),
        Step("store", _delete_store),
    ),
    max_attempts=1,
    sudo=True,
)

KINDS: Final = (PLATFORM_INSTALL, PLATFORM_VERIFY, PLATFORM_LOCK, PLATFORM_UNLOCK, PLATFORM_DELETE)

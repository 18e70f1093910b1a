"""The backup kind: what every backup plugin offers, and the steps they share.

A backup is made on the server that holds the site: its data paths (what its platform
lists: config files, uploads, private dir) and a dump of its database never cross the
network. Making one takes three stages, so that a task can run the long one detached
on the target (it survives a dropped connection and is re-attached to):

1. :meth:`BackupService.prepare` (short, attached): the site's dir under the backup
   dir, a private staging dir, and the database dump in it (through the db plugin,
   whose credentials stay in 0600 files of its own workspace);
2. :meth:`BackupService.archive_command` (long): one fixed script and its arguments
   that turns the staging dir and the data paths into the backup, with a manifest
   (:mod:`.manifest`), written atomically;
3. :meth:`BackupService.result` (short): size, sha256 and manifest, read back for
   the store.

Restoring is the mirror: :meth:`BackupService.prepare_unpack` makes a private work
dir, :meth:`BackupService.unpack_command` checks every member against the manifest
while unpacking data path ``i`` next to its target (``<target>.cockpit-new-<tag>``,
never the live path) and the dump into the work dir; :mod:`.restore` then swaps the
fresh paths in and loads the dump.

Paths are validated (:func:`~cockpit.model.validate_path`) and a path is only ever
removed when it lies under the server's root or carries one of Cockpit's
``.cockpit-new-``/``.cockpit-old-``/``.cockpit-undone-`` marks.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar, Final

from cockpit.backends.backup.manifest import (
    MAX_PATHS,
    Manifest,
    ManifestError,
    json_safe,
    parse_manifest,
)
from cockpit.backends.services.base import (
    PRELUDE,
    Check,
    Detected,
    ServiceError,
    ServicePlugin,
    Setting,
    SettingKind,
    run_step,
)
from cockpit.backends.services.db import DbService
from cockpit.backends.transport import LineHandler, Result, Transport, TransportError
from cockpit.model import (
    Backup,
    BackupReason,
    ServiceKind,
    ValidationError,
    validate_domain,
    validate_name,
    validate_path,
    validate_type_name,
    validate_unix_name,
)

if TYPE_CHECKING:
    from cockpit.backends.backup.stream import Piped

__all__ = [
    "EXIT_DAMAGED",
    "MARKS",
    "BackupError",
    "BackupJob",
    "BackupResult",
    "BackupService",
    "BackupSource",
    "RemoteCommand",
    "Runner",
    "SiteDatabase",
    "UnpackJob",
    "Unpacked",
    "fresh_path",
    "inline_runner",
    "judge",
    "new_tag",
    "remove_paths",
    "validate_tag",
]

#: Exit code of a script that found a checksum that does not match (EX_DATAERR).
EXIT_DAMAGED: Final = 65
#: The marks in the names of the paths a restore puts next to a site's live paths.
MARKS: Final = (".cockpit-new-", ".cockpit-old-", ".cockpit-undone-")

_TAG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,47}")


class BackupError(ServiceError):
    """A backup or restore operation failed; ``damaged`` when a checksum did not match."""

    def __init__(self, message: str, *, output: Sequence[str] = (), damaged: bool = False):
        super().__init__(message, output=output)
        self.damaged = damaged


def validate_tag(value: object, field: str = "backup tag") -> str:
    """A tag naming one backup (or one restore) of a site: 1-48 of a-z, 0-9 and '-'."""
    if not isinstance(value, str) or not _TAG_RE.fullmatch(value):
        raise ValidationError(field, "must be 1-48 of a-z, 0-9 and '-'", value)
    return value


def new_tag(moment: datetime | None = None) -> str:
    """A fresh tag: the UTC time to the second and 6 random hex digits."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y%m%dt%H%M%Sz") + "-" + secrets.token_hex(3)


def fresh_path(target: str, tag: str) -> str:
    """Where a restore unpacks what goes to ``target`` (its sibling, same file system)."""
    return f"{validate_path(target, 'target')}{MARKS[0]}{validate_tag(tag)}"


def _check_data_path(path: str, field: str) -> str:
    path = validate_path(path, field)
    if path.count("/") < 2:
        raise ValidationError(field, "must be at least two levels deep", path)
    if any(mark in path for mark in MARKS):
        raise ValidationError(field, "must not carry Cockpit's restore marks", path)
    return path


# ---------------------------------------------------------------------------
# Running the long scripts: attached here, or detached by the engine
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RemoteCommand:
    """One fixed script with its arguments (``$1…``), run as root on the site's server."""

    what: str
    script: str  # PRELUDE included
    args: tuple[str, ...]
    sudo: bool = True


#: Runs a :class:`RemoteCommand` to its end: the outcome (exit code None = unknown).
Runner = Callable[[RemoteCommand], Awaitable[Result]]


def inline_runner(
    transport: Transport, *, on_line: LineHandler | None = None, time_limit: float | None = None
) -> Runner:
    """A runner that runs the command over the transport and waits for it."""

    async def run(command: RemoteCommand) -> Result:
        return await run_step(
            transport,
            command.what,
            command.script.removeprefix(PRELUDE),
            command.args,
            sudo=command.sudo,
            on_line=on_line,
            time_limit=time_limit,
        )

    return run


def judge(result: Result, what: str) -> None:
    """Raise :class:`BackupError` unless ``result`` is a success."""
    if result.ok:
        return
    output = [*result.stdout, *result.stderr]
    if result.unknown:
        raise BackupError(f"{what}: the outcome is unknown ({result.reason})", output=output)
    if result.exit_code == EXIT_DAMAGED:
        raise BackupError(
            f"{what}: the backup is damaged (a checksum does not match); nothing was changed",
            output=output,
            damaged=True,
        )
    raise BackupError(f"{what} failed (exit {result.exit_code})", output=output)


# ---------------------------------------------------------------------------
# What a backup is made of, and what it gives back
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SiteDatabase:
    """A site's database, reached through a db plugin bound to the site's server (the
    plugin may log in to a database on another host; the dump is written here)."""

    service: DbService
    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.service.database_name(self.name))

    def client_user(self) -> str:
        """The Unix user whose shell writes and reads dump files ("" for root)."""
        return client_user(self.service)


def client_user(service: DbService) -> str:
    """The Unix user a db plugin's scripts run as ("" for root, through sudo)."""
    return "" if service.sudo else service.server.user


@dataclass(frozen=True, slots=True)
class BackupSource:
    """What to back up: a site's data paths (files or dirs, in its platform's order)
    and its database."""

    site: str
    server: str
    platform: str
    platform_type: str
    paths: tuple[str, ...]
    release: str = ""
    database: SiteDatabase | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site", validate_domain(self.site, "backup.site"))
        object.__setattr__(self, "server", validate_name(self.server, "backup.server"))
        object.__setattr__(self, "platform", validate_name(self.platform, "backup.platform"))
        object.__setattr__(
            self, "platform_type", validate_type_name(self.platform_type, "backup.platform_type")
        )
        if isinstance(self.paths, str):
            raise ValidationError("backup.paths", "must be a list of paths", self.paths)
        paths = tuple(_check_data_path(p, "backup.paths") for p in self.paths)
        if not paths or len(paths) > MAX_PATHS:
            raise ValidationError("backup.paths", f"must list 1 to {MAX_PATHS} paths")
        if len(set(paths)) != len(paths):
            raise ValidationError("backup.paths", "must not list a path twice")
        for path in paths:
            json_safe(path, "backup.paths")
        object.__setattr__(self, "paths", paths)
        if not isinstance(self.release, str) or not re.fullmatch(
            r"[A-Za-z0-9._+~-]{0,64}", self.release
        ):
            raise ValidationError("backup.release", "is not a release name", self.release)

    def manifest_values(self) -> list[str]:
        """What the archive scripts write into the manifest as it is, each checked to
        be JSON-safe: site, server, platform, platform type, release, db engine ("" for
        none) and database."""
        db = self.database
        return [
            json_safe(self.site, "site"),
            json_safe(self.server, "server"),
            json_safe(self.platform, "platform"),
            json_safe(self.platform_type, "platform type"),
            json_safe(self.release, "release"),
            db.service.engine.value if db is not None else "",
            json_safe(db.name, "database") if db is not None else "",
        ]


@dataclass(frozen=True, slots=True)
class BackupJob:
    """One backup being made: where it goes and where it is staged."""

    source: BackupSource
    tag: str
    location: str  # the backup's final path (the archive, or the repository's snapshots)
    staging: str  # private dir holding the dump and the manifest while it is made
    compression: str


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup, as the store records it."""

    location: str
    size: int
    sha256: str
    created: datetime
    backend: str
    manifest: Manifest

    def __post_init__(self) -> None:
        validate_path(self.location, "backup location")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValidationError("backup size", "must be a whole number >= 0", self.size)
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValidationError("backup sha256", "must be 64 lowercase hex digits", self.sha256)

    def record(
        self,
        site: str | None = None,
        *,
        server: str | None = None,
        reason: BackupReason = BackupReason.BACKUP,
    ) -> Backup:
        """The store's record of this backup, on ``server`` (default: the one its
        manifest names, where it was made)."""
        return Backup(
            site=site or self.manifest.site,
            location=self.location,
            size=self.size,
            sha256=self.sha256,
            created=self.created,
            backend=self.backend,
            server=server or self.manifest.server,
            reason=reason,
        )


@dataclass(frozen=True, slots=True)
class UnpackJob:
    """One backup being unpacked: data path ``i`` next to ``targets[i]``, the dump into
    ``work``."""

    location: str
    manifest: Manifest
    targets: tuple[str, ...]
    tag: str
    work: str
    #: Who must be able to read the dump (the db client's Unix user; "" for root).
    dump_owner: str = ""
    #: The backup's sha256 as the store recorded it ("" to skip that check).
    expected_sha256: str = ""
    #: Whether the data paths are unpacked (False: the dump only).
    files: bool = True

    @property
    def fresh(self) -> tuple[str, ...]:
        return tuple(fresh_path(t, self.tag) for t in self.targets)

    @property
    def dump(self) -> str | None:
        return f"{self.work}/database.sql" if self.manifest.dump is not None else None


@dataclass(frozen=True, slots=True)
class Unpacked:
    """What an unpack left: the fresh paths (those of missing members do not exist),
    the plain SQL dump (None without a database) and the work dir holding it."""

    manifest: Manifest
    targets: tuple[str, ...]
    fresh: tuple[str, ...]
    dump: str | None
    work: str


# ---------------------------------------------------------------------------
# Remote scripts every backup plugin shares
# ---------------------------------------------------------------------------

#: Args: site backup dir, staging dir, owner of the staging dir ("" root), server root,
#: login user (owns the site's backup dir, as it owns the rest of Cockpit's dirs).
_PREPARE: Final = r"""
sitedir=$1 staging=$2 owner=$3 root=$4 login=$5
case $staging in "$root"/?*/?*) ;; *) echo "cockpit: $staging is outside $root" >&2; exit 64 ;; esac
umask 077
mkdir -p -- "$sitedir" || exit 1
chmod 700 -- "$sitedir" || exit 1
chown -- "$login" "$sitedir" || exit 1
rm -rf -- "$staging"
mkdir -m 700 -- "$staging" || exit 1
if [ -n "$owner" ]; then chown -- "$owner" "$staging" || exit 1; fi
"""

#: Remove paths that lie under the server's root or carry a restore mark (args: root,
#: paths…); every path is checked before any is removed.
_REMOVE: Final = r"""
root=$1
shift
[ -n "$root" ] && [ "$root" != / ] || exit 64
for p; do
    case $p in
    "$root"/?*) ;;
    /?*/*.cockpit-new-?*|/?*/*.cockpit-old-?*|/?*/*.cockpit-undone-?*) ;;
    *) echo "cockpit: refusing to remove $p" >&2; exit 64 ;;
    esac
    case $p in */../*|*/..|*/./*|*//*) echo "cockpit: refusing to remove $p" >&2; exit 64 ;; esac
done
for p; do rm -rf -- "$p" || exit 1; done
"""


def removable(root: str, path: str) -> str:
    """``path`` if Cockpit may remove it: under ``root``, or a marked sibling."""
    path = validate_path(path, "path to remove")
    if path.startswith(root + "/"):
        return path
    base = path.rsplit("/", 1)[-1]
    if path.count("/") >= 2 and any(mark in base for mark in MARKS):
        return path
    raise ValidationError("path to remove", f"is neither inside {root} nor marked", path)


async def remove_paths(transport: Transport, root: str, paths: Sequence[str]) -> None:
    """Remove ``paths`` on the server, as root (see :func:`removable`); idempotent."""
    if not paths:
        return
    root = validate_path(root, "server root")
    checked = [removable(root, p) for p in paths]
    result = await run_step(
        transport, "remove leftovers", _REMOVE, [root, *checked], sudo=True, time_limit=None
    )
    judge(result, f"removing {', '.join(checked)}")


_TOOLS: Final = r"""
for t; do printf '%s\t%s\n' "$t" "$(command -v -- "$t" 2>/dev/null)"; done
"""


def manifest_from_lines(lines: Sequence[str], where: str) -> Manifest:
    """The manifest a script printed (its JSON lines)."""
    try:
        return parse_manifest("\n".join(lines))
    except ManifestError as exc:
        raise BackupError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------
# The plugin interface
# ---------------------------------------------------------------------------


class BackupService(ServicePlugin, abc.ABC):
    """Base of the backup plugins (``tar``, ``restic``)."""

    kind: ClassVar[ServiceKind] = ServiceKind.BACKUP
    #: What a plugin may put in ``compression`` (its default first).
    compressions: ClassVar[tuple[str, ...]] = ()
    #: Whether one of its backups is a file that :meth:`send` copies to another server
    #: (a restic snapshot lives in its server's repository: it cannot be).
    portable: ClassVar[bool] = False
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        "dir": Setting(
            SettingKind.OPTIONAL_PATH, "", "where backups go (empty: <server root>/backups)"
        ),
    }

    # -- where things go --------------------------------------------------------------

    @property
    def backup_dir(self) -> str:
        path = self.setting("dir") or self.paths.backups
        return validate_path(path, "backup dir", within=self.server.root)

    def site_dir(self, site: str) -> str:
        return f"{self.backup_dir}/{validate_domain(site, 'site')}"

    def job(
        self, source: BackupSource, tag: str | None = None, *, compression: str | None = None
    ) -> BackupJob:
        """The job for ``source``; the same ``tag`` always gives the same paths (a task
        that re-attaches after a lost worker finds its backup where it left it)."""
        tag = validate_tag(tag if tag is not None else new_tag())
        compression = compression or self.default_compression()
        if compression not in self.compressions:
            raise ValidationError(
                "compression", f"must be one of {', '.join(self.compressions)}", compression
            )
        site_dir = self.site_dir(source.site)
        location = self.location_for(source.site, tag, compression)
        return BackupJob(source, tag, location, f"{site_dir}/.staging-{tag}", compression)

    def default_compression(self) -> str:
        return self.compressions[0]

    @abc.abstractmethod
    def location_for(self, site: str, tag: str, compression: str) -> str:
        """Where the backup of ``site`` with ``tag`` ends up."""

    # -- making a backup --------------------------------------------------------------

    async def prepare(self, transport: Transport, job: BackupJob) -> None:
        """Stage a backup: the site's backup dir, a fresh staging dir, the database dump.
        On failure nothing is left behind."""
        db = job.source.database
        owner = db.client_user() if db is not None else ""
        result = await run_step(
            transport,
            "stage the backup",
            _PREPARE,
            [
                self.site_dir(job.source.site),
                job.staging,
                owner,
                self.server.root,
                self.server.user,
            ],
            sudo=True,
            time_limit=120,
        )
        judge(result, f"staging the backup of {job.source.site}")
        try:
            await self.stage_extra(transport, job)
            if db is not None:
                await db.service.dump_database(transport, db.name, f"{job.staging}/database.sql")
        except BaseException:
            with contextlib.suppress(ServiceError, TransportError, ValidationError):
                await self.discard(transport, job)
            raise

    async def stage_extra(self, transport: Transport, job: BackupJob) -> None:
        """What a plugin adds to the staging dir before the archive is made."""
        return None

    @abc.abstractmethod
    def archive_command(self, job: BackupJob) -> RemoteCommand:
        """The long step: the staging dir and the data paths become the backup."""

    @abc.abstractmethod
    async def result(self, transport: Transport, job: BackupJob) -> BackupResult:
        """The finished backup of ``job`` (raises :class:`BackupError` if there is none)."""

    async def discard(self, transport: Transport, job: BackupJob) -> None:
        """Remove what an unfinished ``job`` left (its staging dir, a partial archive)."""
        await remove_paths(transport, self.server.root, [job.staging, *self.partials(job)])

    def partials(self, job: BackupJob) -> list[str]:
        return []

    async def create(
        self,
        transport: Transport,
        source: BackupSource,
        *,
        tag: str | None = None,
        compression: str | None = None,
        runner: Runner | None = None,
    ) -> BackupResult:
        """Make a backup of ``source`` from start to end (the stages above, in order)."""
        job = self.job(source, tag, compression=compression)
        await self.prepare(transport, job)
        run = runner or inline_runner(transport)
        try:
            command = self.archive_command(job)
            judge(await run(command), command.what)
        except BaseException:
            with contextlib.suppress(ServiceError, TransportError, ValidationError):
                await self.discard(transport, job)
            raise
        return await self.result(transport, job)

    # -- reading and deleting backups -------------------------------------------------

    @abc.abstractmethod
    async def inspect(self, transport: Transport, location: str) -> BackupResult:
        """A finished backup's size, sha256 and manifest."""

    @abc.abstractmethod
    async def delete(self, transport: Transport, location: str) -> None:
        """Delete the backup at ``location`` (idempotent: a missing one is fine)."""

    async def send(
        self,
        transport: Transport,
        location: str,
        dest: Transport,
        dest_path: str,
        *,
        on_line: LineHandler | None = None,
    ) -> Piped:
        """Copy the backup at ``location`` to ``dest_path`` on another server, streamed
        through this process (no copy in between); only :attr:`portable` plugins can."""
        raise BackupError(
            f"a {self.type} backup cannot be copied to another server: restore it where it is"
        )

    # -- unpacking --------------------------------------------------------------------

    def unpack_job(
        self,
        location: str,
        manifest: Manifest,
        *,
        targets: Sequence[str],
        tag: str,
        dump_owner: str = "",
        expected_sha256: str = "",
        files: bool = True,
    ) -> UnpackJob:
        """Unpack ``location``: data path ``i`` next to ``targets[i]``; the dump into a
        private work dir in the backup's site dir, named after ``tag``. Without
        ``files`` only the dump is unpacked (and checked)."""
        if isinstance(targets, str):
            raise ValidationError("targets", "must be a list of paths", targets)
        checked = tuple(_check_data_path(t, "restore target") for t in targets)
        if len(checked) != len(manifest.files):
            raise ValidationError(
                "restore targets",
                f"the backup holds {len(manifest.files)} data paths, not {len(checked)}",
            )
        if len(set(checked)) != len(checked):
            raise ValidationError("restore targets", "must not list a path twice")
        for target in checked:
            json_safe(target, "restore target")
        if expected_sha256 and not re.fullmatch(r"[0-9a-f]{64}", expected_sha256):
            raise ValidationError("sha256", "must be 64 lowercase hex digits", expected_sha256)
        if dump_owner:
            dump_owner = validate_unix_name(dump_owner, "dump owner")
        tag = validate_tag(tag)
        work = f"{self.site_dir(manifest.site)}/.unpack-{tag}"
        return UnpackJob(location, manifest, checked, tag, work, dump_owner, expected_sha256, files)

    def fetched(self, job: UnpackJob, source_location: str) -> UnpackJob:
        """``job``, unpacking a copy of the backup at ``source_location`` on another
        server, fetched into the job's own work dir (:meth:`send`; removed with it)."""
        name = validate_path(source_location, "backup location").rsplit("/", 1)[-1]
        return dataclasses.replace(job, location=f"{job.work}/{name}")

    async def prepare_unpack(self, transport: Transport, job: UnpackJob) -> None:
        """Make the private work dir (and whatever the plugin needs in it)."""
        await self._private(transport, job.manifest.site, job.work, job.dump_owner)

    def work_dir(self, site: str, tag: str) -> str:
        """A private dir in ``site``'s backup dir for one task's dumps (see :meth:`make_work_dir`)."""
        return f"{self.site_dir(site)}/.work-{validate_tag(tag)}"

    async def make_work_dir(
        self, transport: Transport, site: str, tag: str, owner: str = ""
    ) -> str:
        """Make (empty) the private dir :meth:`work_dir` names, 0700, owned by ``owner``
        (the db client's Unix user; "" for root); returns its path."""
        path = self.work_dir(site, tag)
        await self._private(transport, site, path, owner)
        return path

    async def _private(self, transport: Transport, site: str, path: str, owner: str) -> None:
        if owner:
            owner = validate_unix_name(owner, "owner")
        result = await run_step(
            transport,
            "make a private dir",
            _PREPARE,
            [self.site_dir(site), path, owner, self.server.root, self.server.user],
            sudo=True,
            time_limit=120,
        )
        judge(result, f"making the private dir {path}")

    @abc.abstractmethod
    async def unpack_command(self, transport: Transport, job: UnpackJob) -> RemoteCommand:
        """The long step: check every member, unpack data path ``i`` to ``job.fresh[i]``
        and the dump into ``job.work``. A damaged backup exits :data:`EXIT_DAMAGED`,
        having removed what it unpacked."""

    async def discard_unpacked(self, transport: Transport, job: UnpackJob) -> None:
        """Remove what an unpack left (fresh paths never swapped in, the work dir)."""
        await remove_paths(transport, self.server.root, [*job.fresh, job.work])

    async def unpack(
        self,
        transport: Transport,
        location: str,
        *,
        targets: Sequence[str],
        tag: str | None = None,
        dump_owner: str = "",
        expected_sha256: str = "",
        files: bool = True,
        runner: Runner | None = None,
    ) -> Unpacked:
        """Check and unpack the backup at ``location`` (the stages above, in order)."""
        found = await self.inspect(transport, location)
        job = self.unpack_job(
            location,
            found.manifest,
            targets=targets,
            tag=tag or new_tag(),
            dump_owner=dump_owner,
            expected_sha256=expected_sha256,
            files=files,
        )
        await self.prepare_unpack(transport, job)
        run = runner or inline_runner(transport)
        try:
            command = await self.unpack_command(transport, job)
            judge(await run(command), command.what)
        except BaseException:
            with contextlib.suppress(ServiceError, TransportError, ValidationError):
                await self.discard_unpacked(transport, job)
            raise
        return Unpacked(job.manifest, job.targets, job.fresh, job.dump, job.work)

    # -- the service ------------------------------------------------------------------

    @abc.abstractmethod
    def tools(self) -> tuple[str, ...]:
        """The programs this plugin needs on the server."""

    async def _tools(self, transport: Transport) -> dict[str, str]:
        result = await run_step(
            transport, "look for the backup tools", _TOOLS, self.tools(), time_limit=60
        )
        return dict(line.split("\t", 1) for line in result.stdout if "\t" in line)

    async def detect(self, transport: Transport) -> Detected:
        found = await self._tools(transport)
        first = found.get(self.tools()[0], "")
        if any(not found.get(t) for t in self.tools()):
            return Detected(False)
        return Detected(True, None, first)

    async def check(self, transport: Transport) -> list[Check]:
        found = await self._tools(transport)
        missing = [t for t in self.tools() if not found.get(t)]
        name = f"{self.label}: tools"
        if missing:
            return [Check.failed(name, f"missing on the server: {', '.join(missing)}")]
        return [Check.passed(name, ", ".join(f"{t} ({found[t]})" for t in self.tools()))]

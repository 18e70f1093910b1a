"""The backup kind: site backups made on the server, and the primitives of a restore.

Two plugins, registered in the ``cockpit.services`` entry point group like every
service type: ``backup.tar`` (:mod:`.tar`, zstd or gzip) and ``backup.restic``
(:mod:`.restic`, a restic repository on the server). Both follow
:class:`~cockpit.backends.backup.base.BackupService`; :mod:`.manifest` is the format of
the manifest every backup carries, :mod:`.restore` swaps files dirs and replaces
databases.
"""

from __future__ import annotations

from cockpit.backends.backup.base import (
    EXIT_DAMAGED,
    BackupError,
    BackupJob,
    BackupResult,
    BackupService,
    BackupSource,
    RemoteCommand,
    Runner,
    SiteDatabase,
    Unpacked,
    UnpackJob,
    fresh_path,
    inline_runner,
    new_tag,
    remove_paths,
    validate_tag,
)
from cockpit.backends.backup.manifest import (
    FORMAT_VERSION,
    Manifest,
    ManifestError,
    Member,
    parse_manifest,
)
from cockpit.backends.backup.restore import (
    Swap,
    replace_database,
    settle,
    swap_back,
    swap_in,
    swap_paths,
    swaps_of,
)

__all__ = [
    "EXIT_DAMAGED",
    "FORMAT_VERSION",
    "BackupError",
    "BackupJob",
    "BackupResult",
    "BackupService",
    "BackupSource",
    "Manifest",
    "ManifestError",
    "Member",
    "RemoteCommand",
    "Runner",
    "SiteDatabase",
    "Swap",
    "UnpackJob",
    "Unpacked",
    "fresh_path",
    "inline_runner",
    "new_tag",
    "parse_manifest",
    "remove_paths",
    "replace_database",
    "settle",
    "swap_back",
    "swap_in",
    "swap_paths",
    "swaps_of",
    "validate_tag",
]

"""The manifest every backup carries: what it holds, and the checksum of each part.

A backup's manifest is a small JSON document (``manifest.json``)::

    {
      "format": "cockpit-backup", "version": 1,
      "site": "shop.example", "server": "web1",
      "platform": "wp6", "platform_type": "wordpress", "release": "6.1.1",
      "db_engine": "mysql", "database": "shop_example",
      "created": "2025-03-01T02:00:00Z",
      "backend": "tar", "compression": "zstd",
      "members": [
        {"name": "data-0.tar.zst", "content": "files", "index": 0, "kind": "file",
         "path": "/srv/cockpit/sites/shop.example/web/wp-config.php", "size": 1, "sha256": "…"},
        {"name": "data-1.tar.zst", "content": "files", "index": 1, "kind": "dir",
         "path": "/srv/cockpit/sites/shop.example/web/wp-content/uploads", …},
        {"name": "", "content": "files", "index": 2, "kind": "missing", "path": "…",
         "size": 0, "sha256": ""},
        {"name": "database.sql.zst", "content": "database", "size": 45, "sha256": "…"}
      ]
    }

The ``files`` members are the site's data paths in the order its platform lists them
(:meth:`~cockpit.backends.platforms.base.PlatformPlugin.data_paths`): a restore, a clone
or a migration puts member ``i`` where data path ``i`` of the target site is, whatever
its domain or platform root. A ``dir`` member holds the dir's content, a ``file``
member the one file, and a ``missing`` member records a path that did not exist (a
restore removes it). ``db_engine`` and ``database`` are empty for a site without a
database. A restore checks every member against its ``sha256`` before it changes
anything.

The manifest is written on the server by a shell script (so a backup never needs the
worker), from values Cockpit validated: every string is checked here against
:data:`JSON_SAFE` before it goes into a script, so no value needs escaping in JSON.
Reading one back is strict: an unknown format, a newer version, a member of an
unexpected name or a malformed checksum are errors naming the cause.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from cockpit.model import (
    DbEngine,
    ValidationError,
    validate_db_identifier,
    validate_domain,
    validate_name,
    validate_path,
    validate_type_name,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "JSON_SAFE",
    "MAX_PATHS",
    "WRITE_MANIFEST",
    "Manifest",
    "ManifestError",
    "Member",
    "json_safe",
    "parse_manifest",
]

FORMAT: Final = "cockpit-backup"
FORMAT_VERSION: Final = 1

#: What a string written into a manifest by a script may hold: nothing JSON escapes.
JSON_SAFE: Final = re.compile(r"[A-Za-z0-9._+~:@/-]*")
#: Most data paths one backup holds.
MAX_PATHS: Final = 64

#: A shell function for the backup scripts: ``write_manifest BACKEND COMPRESSION FILE``
#: writes the manifest to FILE from the script's ``$site $server $platform $ptype
#: $release $engine $database`` and ``$entries`` (the members' JSON objects, joined by
#: ",\n    "), stamped with the time it is written.
WRITE_MANIFEST: Final = r"""
write_manifest() {
    created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    printf '{
  "format": "cockpit-backup",
  "version": %s,
  "site": "%s",
  "server": "%s",
  "platform": "%s",
  "platform_type": "%s",
  "release": "%s",
  "db_engine": "%s",
  "database": "%s",
  "created": "%s",
  "backend": "%s",
  "compression": "%s",
  "members": [
    %s
  ]
}
' "@VERSION@" "$site" "$server" "$platform" "$ptype" "$release" "$engine" "$database" \
        "$created" "$1" "$2" "$entries" > "$3"
}
""".replace("@VERSION@", str(FORMAT_VERSION))

_SHA256_RE: Final = re.compile(r"[0-9a-f]{64}")
_RELEASE_RE: Final = re.compile(r"[A-Za-z0-9._+~-]{0,64}")
_FILES_NAME_RE: Final = re.compile(r"data-([0-9]{1,3})(?:\.tar\.(?:zst|gz))?")
_DATABASE_NAMES: Final = frozenset({"database.sql.zst", "database.sql.gz", "database.sql"})
_KINDS: Final = frozenset({"dir", "file", "missing"})
_COMPRESSIONS: Final = frozenset({"zstd", "gzip", "restic"})


class ManifestError(ValueError):
    """A manifest cannot be read or does not describe a usable backup."""


def json_safe(value: str, field: str) -> str:
    """``value`` if a script may print it inside JSON quotes as is; else an error."""
    if not isinstance(value, str) or not JSON_SAFE.fullmatch(value):
        raise ValidationError(field, "must be made of A-Z, a-z, 0-9 and '._+~:@/-'", value)
    return value


@dataclass(frozen=True, slots=True)
class Member:
    """One part of a backup: one of the site's data paths, or its database dump."""

    name: str  # "" for a missing path
    content: str  # "files" or "database"
    size: int
    sha256: str  # "" for a missing path (and for restic's files: restic checks them)
    index: int = -1  # the data path's position (files only)
    kind: str = ""  # "dir", "file" or "missing" (files only)
    path: str = ""  # where the data path was when the backup was made (files only)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "content": self.content}
        if self.content == "files":
            out.update(index=self.index, kind=self.kind, path=self.path)
        out.update(size=self.size, sha256=self.sha256)
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    site: str
    server: str
    platform: str
    platform_type: str
    release: str
    db_engine: DbEngine | None
    database: str
    created: datetime
    backend: str
    compression: str
    members: tuple[Member, ...]
    version: int = FORMAT_VERSION

    @property
    def files(self) -> tuple[Member, ...]:
        """The data path members, in their platform's order."""
        return tuple(m for m in self.members if m.content == "files")

    @property
    def dump(self) -> Member | None:
        return next((m for m in self.members if m.content == "database"), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "site": self.site,
            "server": self.server,
            "platform": self.platform,
            "platform_type": self.platform_type,
            "release": self.release,
            "db_engine": self.db_engine.value if self.db_engine else "",
            "database": self.database,
            "created": self.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "backend": self.backend,
            "compression": self.compression,
            "members": [m.to_json() for m in self.members],
        }


def _field(data: Mapping[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ManifestError(f"the manifest's {key!r} is missing or not a {kind.__name__}")
    return value


def _member(item: object, index: int) -> Member:
    if not isinstance(item, Mapping):
        raise ManifestError(f"member {index} of the manifest is not an object")
    content = _field(item, "content", str)
    name = _field(item, "name", str)
    size = _field(item, "size", int)
    if size < 0:
        raise ManifestError(f"member {index} has a negative size")
    sha256 = _field(item, "sha256", str)
    if sha256 and not _SHA256_RE.fullmatch(sha256):
        raise ManifestError(f"member {index} has a malformed sha256 {sha256[:80]!r}")
    if content == "database":
        if name not in _DATABASE_NAMES:
            raise ManifestError(f"member {index} has an unexpected name {name[:80]!r}")
        if not sha256:
            raise ManifestError(f"the database member {name} has no sha256")
        return Member(name, content, size, sha256)
    if content != "files":
        raise ManifestError(f"member {index} holds an unknown content {content[:40]!r}")
    position = _field(item, "index", int)
    kind = _field(item, "kind", str)
    path = _field(item, "path", str)
    if kind not in _KINDS:
        raise ManifestError(f"member {index} has an unknown kind {kind[:40]!r}")
    try:
        validate_path(path, f"member {index} path")
    except ValidationError as exc:
        raise ManifestError(f"the manifest is invalid: {exc}") from None
    if kind == "missing":
        if name or sha256 or size:
            raise ManifestError(f"member {index} is a missing path but carries data")
    else:
        match = _FILES_NAME_RE.fullmatch(name)
        if match is None or int(match.group(1)) != position:
            raise ManifestError(f"member {index} has an unexpected name {name[:80]!r}")
    return Member(name, content, size, sha256, position, kind, path)


def parse_manifest(text: str | bytes) -> Manifest:
    """A manifest from its JSON text; :class:`ManifestError` says what is wrong."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError(f"the manifest is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ManifestError("the manifest is not a JSON object")
    if data.get("format") != FORMAT:
        raise ManifestError("this is not a Cockpit backup manifest (no 'format: cockpit-backup')")
    version = _field(data, "version", int)
    if version > FORMAT_VERSION:
        raise ManifestError(
            f"the backup has format version {version}; this Cockpit reads up to {FORMAT_VERSION}"
        )
    if version < 1:
        raise ManifestError(f"the backup has an invalid format version {version}")
    try:
        site = validate_domain(_field(data, "site", str), "manifest.site")
        server = validate_name(_field(data, "server", str), "manifest.server")
        platform = validate_name(_field(data, "platform", str), "manifest.platform")
        platform_type = validate_type_name(
            _field(data, "platform_type", str), "manifest.platform_type"
        )
        engine_text = _field(data, "db_engine", str)
        engine = DbEngine.parse(engine_text, "manifest.db_engine") if engine_text else None
        database = _field(data, "database", str)
        if engine is not None:
            database = validate_db_identifier(database, engine, "manifest.database", user=False)
        elif database:
            raise ManifestError("the manifest names a database but no database engine")
        backend = validate_type_name(_field(data, "backend", str), "manifest.backend")
    except ValidationError as exc:
        raise ManifestError(f"the manifest is invalid: {exc}") from None
    release = _field(data, "release", str)
    if not _RELEASE_RE.fullmatch(release):
        raise ManifestError(f"the manifest's release {release[:80]!r} is malformed")
    compression = _field(data, "compression", str)
    if compression not in _COMPRESSIONS:
        raise ManifestError(f"the manifest names an unknown compression {compression[:40]!r}")
    created_text = _field(data, "created", str)
    try:
        created = datetime.strptime(created_text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise ManifestError(
            f"the manifest's created time {created_text[:40]!r} is malformed"
        ) from None
    raw_members = data.get("members")
    if not isinstance(raw_members, Sequence) or isinstance(raw_members, str):
        raise ManifestError("the manifest has no list of members")
    members = tuple(_member(item, i) for i, item in enumerate(raw_members))
    indexes = [m.index for m in members if m.content == "files"]
    if not indexes or len(indexes) > MAX_PATHS or indexes != list(range(len(indexes))):
        raise ManifestError("the manifest's data paths must be numbered 0, 1, 2… in order")
    dumps = sum(1 for m in members if m.content == "database")
    if dumps != (1 if engine is not None else 0):
        raise ManifestError(
            "the manifest's database member does not match its database engine"
            if engine is not None
            else "the manifest lists a database dump but no database engine"
        )
    return Manifest(
        site=site,
        server=server,
        platform=platform,
        platform_type=platform_type,
        release=release,
        db_engine=engine,
        database=database,
        created=created,
        backend=backend,
        compression=compression,
        members=members,
        version=version,
    )

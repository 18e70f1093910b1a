"""Backup manifests and the validation of what a backup is asked to hold (no servers)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from cockpit.backends.backup import (
    BackupSource,
    ManifestError,
    fresh_path,
    parse_manifest,
    swap_paths,
    validate_tag,
)
from cockpit.backends.backup.base import removable
from cockpit.backends.backup.manifest import FORMAT_VERSION, json_safe
from cockpit.model import ValidationError

SHA = "ab" * 32

GOOD: dict[str, Any] = {
    "format": "cockpit-backup",
    "version": 1,
    "site": "shop.example",
    "server": "web1",
    "platform": "wp6",
    "platform_type": "wordpress",
    "release": "6.1.1",
    "db_engine": "mysql",
    "database": "shop_example",
    "created": "2025-03-01T02:00:00Z",
    "backend": "tar",
    "compression": "zstd",
    "members": [
        {"name": "data-0.tar.zst", "content": "files", "index": 0, "kind": "file",
         "path": "/srv/sites/shop.example/web/wp-config.php", "size": 10, "sha256": SHA},
        {"name": "", "content": "files", "index": 1, "kind": "missing",
         "path": "/srv/sites/shop.example/private", "size": 0, "sha256": ""},
        {"name": "database.sql.zst", "content": "database", "size": 5, "sha256": SHA},
    ],
}  # fmt: skip


def _with(**changes: Any) -> str:
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return json.dumps(data)


def test_a_good_manifest_round_trips() -> None:
    manifest = parse_manifest(json.dumps(GOOD))
    assert manifest.site == "shop.example" and manifest.version == FORMAT_VERSION
    assert [m.kind for m in manifest.files] == ["file", "missing"]
    assert manifest.dump is not None and manifest.dump.sha256 == SHA
    assert manifest.created.isoformat() == "2025-03-01T02:00:00+00:00"
    assert parse_manifest(json.dumps(manifest.to_json())) == manifest


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"format": "tarball"}, "not a Cockpit backup manifest"),
        ({"version": 2}, "format version 2; this Cockpit reads up to 1"),
        ({"version": 0}, "invalid format version"),
        ({"version": True}, "'version' is missing"),
        ({"site": "../etc"}, "manifest.site"),
        ({"site": "evil.example\n"}, "manifest.site"),
        ({"database": "mysql"}, "reserves for itself"),
        ({"db_engine": "", "database": "x"}, "names a database but no database engine"),
        ({"db_engine": "oracle"}, "manifest.db_engine"),
        ({"release": "6.1; rm -rf /"}, "release"),
        ({"compression": "xz"}, "unknown compression"),
        ({"created": "yesterday"}, "created time"),
        ({"members": "all"}, "no list of members"),
    ],
)
def test_a_bad_manifest_is_refused_with_its_cause(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ManifestError, match=reason.replace("(", r"\(")):
        parse_manifest(_with(**changes))


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ({"name": "../../etc/passwd"}, "unexpected name"),
        ({"name": "data-1.tar.zst"}, "unexpected name"),  # its index is 0
        ({"sha256": "AB" * 32}, "malformed sha256"),
        ({"size": -1}, "negative size"),
        ({"kind": "fifo"}, "unknown kind"),
        ({"path": "relative/path"}, "absolute path"),
        ({"path": "/a/../b"}, "normalised"),
        ({"content": "secrets"}, "unknown content"),
    ],
)
def test_a_bad_member_is_refused(member: dict[str, Any], reason: str) -> None:
    data = copy.deepcopy(GOOD)
    data["members"][0].update(member)
    with pytest.raises(ManifestError, match=reason):
        parse_manifest(json.dumps(data))


def test_members_must_match_the_engine_and_be_numbered() -> None:
    data = copy.deepcopy(GOOD)
    data["members"] = data["members"][:2]
    with pytest.raises(ManifestError, match="database member does not match"):
        parse_manifest(json.dumps(data))
    data = copy.deepcopy(GOOD)
    data["members"][1]["index"] = 5
    with pytest.raises(ManifestError, match="numbered"):
        parse_manifest(json.dumps(data))
    data = copy.deepcopy(GOOD)
    data["members"][1].update(size=3)
    with pytest.raises(ManifestError, match="missing path but carries data"):
        parse_manifest(json.dumps(data))
    with pytest.raises(ManifestError, match="not valid JSON"):
        parse_manifest("{")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("site", "-bad-.example"),
        ("site", "a b.example"),
        ("server", "Web 1"),
        ("platform", "wp6;id"),
        ("paths", ("relative",)),
        ("paths", ("/",)),
        ("paths", ("/srv",)),
        ("paths", ("/srv/a", "/srv/a")),
        ("paths", ("/srv/a b",)),
        ("paths", ("/srv/x.cockpit-old-1",)),
        ("paths", ()),
        ("paths", "/srv/a"),
        ("release", '6.1"'),
    ],
)
def test_a_hostile_source_is_refused_before_anything_runs(field: str, value: object) -> None:
    args: dict[str, Any] = {
        "site": "shop.example",
        "server": "web1",
        "platform": "wp6",
        "platform_type": "wordpress",
        "paths": ("/srv/sites/shop.example/private",),
    }
    args[field] = value
    with pytest.raises(ValidationError):
        BackupSource(**args)


def test_tags_fresh_paths_and_what_may_be_removed() -> None:
    assert validate_tag("20250301t020000z-abc123") == "20250301t020000z-abc123"
    for bad in ("", "A", "-x", "x" * 49, "a/b", "a b"):
        with pytest.raises(ValidationError):
            validate_tag(bad)
    assert fresh_path("/srv/s/web", "t1") == "/srv/s/web.cockpit-new-t1"
    swap = swap_paths("/srv/s/web", "t1")
    assert (swap.previous, swap.aside) == (
        "/srv/s/web.cockpit-old-t1",
        "/srv/s/web.cockpit-undone-t1",
    )
    with pytest.raises(ValidationError):
        swap_paths("/srv", "t1")
    assert removable("/srv/root", "/srv/root/backups/x") == "/srv/root/backups/x"
    assert removable("/srv/root", "/opt/drupal/sites/x.cockpit-new-t1")
    for bad in ("/etc", "/srv/root", "/opt/drupal/sites/x", "/x.cockpit-new-t1"):
        with pytest.raises(ValidationError):
            removable("/srv/root", bad)
    assert json_safe("/srv/a-b_c.d@e+f~g:h", "x")
    with pytest.raises(ValidationError):
        json_safe('a"b', "x")

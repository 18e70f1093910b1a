"""The site data kinds as the engine sees them: registered, their args checked at queue
time (hostile values refused before anything runs), their long steps detached."""

from __future__ import annotations

from typing import Any

import pytest

from cockpit.engine.recipes import Registry, RemoteStep
from cockpit.model import ValidationError
from cockpit.tasks.site_data import KINDS, DetachedStep


def _check(kind: str, args: dict[str, Any]) -> dict[str, Any]:
    found = next(k for k in KINDS if k.name == kind)
    assert found.check_args is not None
    return found.check_args(dict(args))


def test_registered_through_the_entry_point_group() -> None:
    names = {k.name for k in Registry.default()}
    assert {
        "site.backup",
        "site.backup-delete",
        "site.restore",
        "site.clone",
        "site.migrate",
    } <= names


def test_the_long_steps_run_detached_and_the_unsafe_kinds_are_never_rerun() -> None:
    by_name = {k.name: k for k in KINDS}
    for kind, detached in (
        ("site.backup", {"archive"}),
        ("site.restore", {"safety archive", "unpack"}),
    ):
        steps = by_name[kind].plan({})
        assert {s.name for s in steps if s.detached} == detached
        assert all(isinstance(s, RemoteStep) for s in steps if s.detached)
        assert all(isinstance(s, DetachedStep) for s in steps if s.detached)
    for kind in ("site.restore", "site.clone", "site.migrate"):
        assert not by_name[kind].idempotent and by_name[kind].max_attempts == 1
    assert by_name["site.backup"].idempotent and by_name["site.backup-delete"].idempotent
    # every step that changes something can be undone (the last ones only settle)
    for kind in ("site.restore", "site.clone", "site.migrate"):
        steps = by_name[kind].plan({})
        assert steps[0].rollback is not None


@pytest.mark.parametrize(
    ("kind", "args", "field"),
    [
        ("site.clone", {}, "args.domain"),
        ("site.clone", {"domain": "bad domain.example"}, "args.domain"),
        ("site.clone", {"domain": "x.example; rm -rf /"}, "args.domain"),
        ("site.clone", {"domain": "a.example", "platform": "../etc"}, "args.platform"),
        ("site.clone", {"domain": "a.example", "https": "sometimes"}, "args.https"),
        ("site.clone", {"domain": "a.example", "password": "x"}, "args.password"),
        ("site.migrate", {}, "args.platform"),
        ("site.migrate", {"platform": "Web 2"}, "args.platform"),
        ("site.migrate", {"platform": "p", "skip_probe": "yes"}, "args.skip_probe"),
        ("site.restore", {"backup": "1; drop"}, "args.backup"),
        ("site.restore", {"backup": 0}, "args.backup"),
        ("site.restore", {"backup": True}, "args.backup"),
        ("site.restore", {"location": "/etc/shadow"}, "args.location"),
        ("site.backup", {"compression": "xz"}, "args.compression"),
        ("site.backup", {"backend": "Tar!"}, "args.backend"),
        ("site.backup-delete", {}, "args.backup"),
        ("site.backup-delete", {"backup": 3, "server": "a b"}, "args.server"),
    ],
)
def test_hostile_args_are_refused_at_queue_time(
    kind: str, args: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _check(kind, args)
    assert refused.value.field == field


def test_good_args_are_normalised() -> None:
    assert _check("site.clone", {"domain": "Copy.Example", "https": "on"}) == {
        "domain": "copy.example",
        "https": "on",
    }
    assert _check("site.restore", {"backup": 7, "skip_probe": True}) == {
        "backup": 7,
        "skip_probe": True,
    }
    assert _check("site.backup", {"compression": "gzip"}) == {"compression": "gzip"}

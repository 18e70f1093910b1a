"""Declared params: every registered kind declares exactly the args its ``check_args``
accepts (driven key by key), the generic check of a kind with params only, and parsing
typed values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from enginekit import add_inventory, local_config, local_server

from cockpit.engine import Engine, Param, Registry, Step, TargetKind, TaskKind
from cockpit.engine.recipes import check_params
from cockpit.model import ValidationError
from cockpit.store import open_store

KINDS = list(Registry.default())

#: A value of each param kind that its check accepts.
SAMPLES: dict[str, Any] = {
    "text": "words",
    "int": 3,
    "bool": True,
    "domain": "copy.example.org",
    "platform": "wp-6-5",
    "server": "web1",
    "backup": 7,
    "path": "/srv/codebase",
    "email": "admin@example.org",
}


def sample(param: Param) -> Any:
    return param.choices[0] if param.choices else SAMPLES[param.kind]


def required(kind: TaskKind) -> dict[str, Any]:
    return {p.name: sample(p) for p in kind.params if p.required}


#: Every name any kind declares, plus names no kind takes: each kind must refuse those
#: it does not declare.
CANDIDATES = sorted({p.name for k in KINDS for p in k.params} | {"zz_unknown", "name", "target"})


def test_the_builtin_kinds_declare_params() -> None:
    names = {k.name: [p.name for p in k.params] for k in KINDS}
    assert names["site.migrate"] == ["platform", "skip_probe"]
    assert names["site.clone"][0] == "domain"
    assert [p.name for p in Registry.default().get("site.clone").params if p.unique] == ["domain"]
    assert "backup" in names["site.restore"]
    assert len([k for k in KINDS if k.check_args is not None]) >= 14


@pytest.mark.parametrize(
    "kind", [k for k in KINDS if k.check_args is not None], ids=lambda k: k.name
)
def test_declared_params_are_what_check_args_accepts(kind: TaskKind) -> None:
    base = required(kind)
    assert kind.validate(base) is not None  # the required ones alone are enough
    declared = {p.name for p in kind.params}
    for param in kind.params:
        kind.validate({**base, param.name: sample(param)})  # each declared key is taken
        if param.required:
            missing = {k: v for k, v in base.items() if k != param.name}
            with pytest.raises(ValidationError) as refused:
                kind.validate(missing)
            assert refused.value.field == param.error_field
    for key in CANDIDATES:
        if key in declared:
            continue
        with pytest.raises(ValidationError):  # an undeclared key is refused
            kind.validate({**base, key: True})


@pytest.mark.parametrize("kind", [k for k in KINDS if k.check_args is None], ids=lambda k: k.name)
def test_a_kind_without_a_check_declares_nothing(kind: TaskKind) -> None:
    assert kind.params == ()
    assert kind.info().params == ()


def test_info_carries_the_params() -> None:
    kind = Registry.default().get("site.migrate")
    info = kind.info()
    assert info.params == kind.params
    (platform,) = [p for p in info.params if p.required]
    assert platform.name == "platform" and platform.kind == "platform"


def test_validate_refuses_secrets_before_the_kinds_check() -> None:
    kind = Registry.default().get("site.migrate")
    with pytest.raises(ValidationError, match="secret"):
        kind.validate({"platform": "wp-6-5", "password": "x"})
    with pytest.raises(ValidationError) as refused:
        kind.validate({"platform": "not a name!"})
    assert refused.value.field == "args.platform"


async def _noop(ctx: Any) -> None:
    return None


PLUGIN = TaskKind(
    name="plugin.greet",
    target=TargetKind.SITE,
    idempotent=True,
    description="greet",
    steps=(Step("greet", _noop),),
    params=(
        Param("to", "whom", required=True, kind="email"),
        Param("loud", "shout", kind="bool"),
        Param("times", "how often", kind="int"),
        Param("tone", "how", choices=("warm", "dry")),
    ),
)


def test_a_kind_with_params_and_no_check_is_checked_by_its_declaration() -> None:
    assert PLUGIN.check_args is not None
    assert PLUGIN.validate({"to": "Me@Example.ORG", "loud": True, "times": 2, "tone": "dry"}) == {
        "to": "Me@example.org",
        "loud": True,
        "times": 2,
        "tone": "dry",
    }
    for bad, field in (
        ({}, "args.to"),
        ({"to": "me@example.org", "whom": 1}, "args.whom"),
        ({"to": "nobody"}, "args.to"),
        ({"to": "me@example.org", "loud": "yes"}, "args.loud"),
        ({"to": "me@example.org", "times": "2"}, "args.times"),
        ({"to": "me@example.org", "tone": "shrill"}, "args.tone"),
    ):
        with pytest.raises(ValidationError) as refused:
            PLUGIN.validate(bad)
        assert refused.value.field == field, bad
    assert check_params((), {}) == {}


def test_params_are_declared_sanely() -> None:
    with pytest.raises(ValueError, match="not an argument name"):
        Param("Bad-Name", "x")
    with pytest.raises(ValueError, match="not an argument name"):
        Param("db_password", "secrets never travel in args")
    with pytest.raises(ValueError, match="kind must be one of"):
        Param("x", "y", kind="colour")
    with pytest.raises(ValueError, match="twice"):
        TaskKind("t.x", TargetKind.SITE, True, "", (), params=(Param("a", ""), Param("a", "")))


def test_a_typed_value_is_parsed_by_its_kind() -> None:
    assert Param("f", "", kind="bool").parse(" Yes ") is True
    assert Param("f", "", kind="bool").parse("off") is False
    assert Param("n", "", kind="int").parse("12") == 12
    assert Param("b", "", kind="backup").parse("4") == 4
    assert Param("p", "", kind="platform").parse(" wp ") == "wp"
    with pytest.raises(ValidationError, match="true or false") as refused:
        Param("f", "", kind="bool").parse("maybe")
    assert refused.value.field == "args.f"
    with pytest.raises(ValidationError, match="backup id"):
        Param("b", "", kind="backup").parse("newest")


def test_task_kinds_lists_each_kinds_params(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    env.pop("COCKPIT_CONFIG", None)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "cockpit"), "task", "kinds"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("site.migrate\t")))
    assert lines[at + 1] == "  platform\trequired\tplatform\tthe platform to move to"
    assert lines[at + 2].startswith("  skip_probe\toptional\tbool\t")
    clone = lines.index(next(line for line in lines if line.startswith("site.clone\t")))
    assert "  https\toptional\toff|on|required\tHTTPS of the copy (default: off)" in lines[clone:]
    # A kind with no params is followed by the next kind, not by an argument line.
    ping = lines.index(next(line for line in lines if line.startswith("server.ping\t")))
    assert not lines[ping + 1].startswith("  ")
    listed = [line.split("\t")[0] for line in lines if not line.startswith("  ")]
    assert listed == [k.name for k in KINDS]


async def test_queueing_checks_the_args_as_validate_does_and_a_clone_takes_one_target(
    tmp_path: Path,
) -> None:
    db = await open_store(tmp_path / "data" / "cockpit.db")
    try:
        sites = await add_inventory(db, [local_server("l0", tmp_path / "host0")], 3)
        registry = Registry.default()
        registry.add(PLUGIN)
        engine = Engine(db, local_config(db.path), registry=registry)
        with pytest.raises(ValidationError) as refused:
            await engine.queue("site.clone", sites[:2], {"domain": "copy.example.org"})
        assert refused.value.field == "targets" and "one target at a time, not 2" in str(
            refused.value
        )
        with pytest.raises(ValidationError) as refused:
            await engine.queue("site.migrate", sites[:1], {})
        assert refused.value.field == "args.platform"
        # The declaration is the check of a kind without one of its own, at queue time too.
        with pytest.raises(ValidationError) as refused:
            await engine.queue("plugin.greet", sites[:1], {"to": "me@example.org", "x": 1})
        assert refused.value.field == "args.x"
        with pytest.raises(ValidationError) as refused:
            await engine.add_schedule("hourly", "0 * * * *", "site.clone", ["*"], {})
        assert refused.value.field == "args.domain"
        assert await engine.tasks() == []
        batch = await engine.queue("site.clone", sites[:1], {"domain": "Copy.Example.ORG"})
        (task,) = await engine.tasks(batch=batch.id)
        assert dict(task.args) == {"domain": "copy.example.org"}
        migrate = await engine.queue("site.migrate", sites, {"platform": "p-l0"})
        assert len(migrate.task_ids) == 3  # one platform for many sites is fine
    finally:
        await db.close()


def test_task_run_reads_an_arg_as_its_declared_kind(tmp_path: Path) -> None:
    from cockpit.commands.task import parse_args

    install = Registry.default().get("site.install").params
    assert parse_args(["title=2024", "skip_probe=yes", "db_engine=none"], install) == {
        "title": "2024",  # text stays text (JSON would make it a number)
        "skip_probe": True,
        "db_engine": "none",
    }
    assert parse_args(["title=2024", "extra=[1,2]"]) == {"title": 2024, "extra": [1, 2]}
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path),
    }
    env.pop("COCKPIT_CONFIG", None)
    cockpit = str(Path(sys.executable).parent / "cockpit")
    base = [cockpit, "task", "run", "site.migrate", "nosuch.example.org", "--no-start"]
    # "yes" is read as true: the args pass, and the missing site is what is refused.
    done = subprocess.run(
        [*base, "--arg", "platform=p1", "--arg", "skip_probe=yes"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no such site" in done.stderr and "skip_probe" not in done.stderr
    done = subprocess.run(
        [*base, "--arg", "platform=p1", "--arg", "skip_probe=maybe"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "args.skip_probe: must be true or false" in done.stderr

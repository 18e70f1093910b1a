"""The JSON document's schema keeps its promise within version 1: fields may be added,
never removed, retyped or narrowed. ``schema_v1.json`` is the schema as version 1 was
published; every document it accepts, the current schema accepts too."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_output import _report

from cockpit.status import output

V1 = json.loads((Path(__file__).parent / "schema_v1.json").read_text())


def _types(schema: dict[str, Any]) -> set[str]:
    kind = schema.get("type", [])
    return {kind} if isinstance(kind, str) else set(kind)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return {**_resolve(node, root), **{k: v for k, v in schema.items() if k != "$ref"}}


def _narrowings(
    old: dict[str, Any], new: dict[str, Any], where: str, root: dict[str, Any]
) -> Iterator[str]:
    """What ``new`` (a part of the schema ``root``) refuses that ``old`` (of v1) allowed,
    field by field."""
    old, new = _resolve(old, V1), _resolve(new, root)
    if _types(old) - _types(new) and _types(new):
        yield f"{where}: type {sorted(_types(old))} became {sorted(_types(new))}"
    if "enum" in old and set(map(json.dumps, old["enum"])) - set(
        map(json.dumps, new.get("enum", old["enum"]))
    ):
        yield f"{where}: enum lost {set(old['enum']) - set(new['enum'])}"
    if "enum" not in old and "enum" in new:
        yield f"{where}: became an enum"
    if old.get("const", new.get("const")) != new.get("const", old.get("const")):
        yield f"{where}: const changed"
    for key in ("minimum", "minLength"):
        if new.get(key, 0) > old.get(key, 0):
            yield f"{where}: {key} raised"
    if new.get("pattern") != old.get("pattern") and "pattern" in new:
        yield f"{where}: pattern changed"
    added = set(new.get("required", ())) - set(old.get("required", ()))
    if added:
        yield f"{where}: newly required {sorted(added)}"
    for name, sub in old.get("properties", {}).items():
        if name not in new.get("properties", {}):
            if new.get("additionalProperties", True) is False:
                yield f"{where}.{name}: removed"
            continue
        yield from _narrowings(sub, new["properties"][name], f"{where}.{name}", root)
    if isinstance(old.get("additionalProperties"), dict):
        yield from _narrowings(
            old["additionalProperties"], new.get("additionalProperties", {}), f"{where}.*", root
        )
    if "items" in old:
        yield from _narrowings(old["items"], new.get("items", {}), f"{where}[]", root)


def test_no_field_of_v1_is_removed_retyped_or_narrowed() -> None:
    assert V1["$id"] == output.schema()["$id"] == "cockpit-status/1"
    assert list(_narrowings(V1, output.schema(), "$", output.schema())) == []


def test_the_check_finds_a_narrowing() -> None:
    """The walk above can fail: each kind of change it guards against is caught."""
    narrowed = copy.deepcopy(output.schema())
    del narrowed["$defs"]["problem"]["properties"]["threshold"]
    narrowed["$defs"]["problem"]["required"].remove("threshold")
    narrowed["properties"]["servers"]["items"]["properties"]["cpus"]["type"] = "string"
    narrowed["$defs"]["problem"]["properties"]["check"]["enum"].remove("disk.full")
    narrowed["properties"]["counts"]["required"].append("sites_failing")
    found = list(_narrowings(V1, narrowed, "$", narrowed))
    assert any("threshold: removed" in f for f in found), found
    assert any("cpus: type" in f for f in found), found
    assert any("enum lost {'disk.full'}" in f for f in found), found
    assert any("newly required ['sites_failing']" in f for f in found), found


def _v1_variants(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Documents v1 allows: a real one, each problem field at each of its v1 values,
    each nullable field null."""
    yield document
    problem = V1["$defs"]["problem"]["properties"]
    for field in ("state", "check", "kind"):
        values = problem[field].get("enum") or V1["$defs"]["state"]["enum"]
        for value in values:
            variant = copy.deepcopy(document)
            variant["problems"][0][field] = value
            yield variant
    for field in ("server", "value", "threshold", "since"):
        variant = copy.deepcopy(document)
        variant["problems"][0][field] = None
        yield variant
    server = V1["properties"]["servers"]["items"]["properties"]
    for field, sub in server.items():
        if "null" in _types(_resolve(sub, V1)):
            variant = copy.deepcopy(document)
            variant["servers"][0][field] = None
            yield variant
    variant = copy.deepcopy(document)
    variant["problems"] = []
    variant["servers"] = []
    variant["counts"]["extra_count"] = 7
    yield variant


async def test_the_current_schema_accepts_what_v1_accepted(tmp_path: Path) -> None:
    document = json.loads(json.dumps(output.to_json(await _report(tmp_path))))
    document["problems"] = [p for p in document["problems"] if p["check"] in
                            V1["$defs"]["problem"]["properties"]["check"]["enum"]]  # fmt: skip
    checked = 0
    for variant in _v1_variants(document):
        jsonschema.validate(variant, V1, format_checker=jsonschema.FormatChecker())
        jsonschema.validate(variant, output.schema(), format_checker=jsonschema.FormatChecker())
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("field", ["reason", "check"])
async def test_v1_refuses_what_it_never_allowed(tmp_path: Path, field: str) -> None:
    """The frozen copy is a real schema, not a permissive one."""
    document = json.loads(json.dumps(output.to_json(await _report(tmp_path))))
    del document["problems"][0][field]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, V1)

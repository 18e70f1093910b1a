"""YAML with positions: values, marks, key paths, and the errors of broken files."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cockpit import yamlio
from cockpit.model import Server, ValidationError
from cockpit.yamlio import Node, YamlError, format_path, load, loads

INVENTORY = """\
version: 1
servers:
  - name: web1
    address: 192.0.2.10
    services:
      - kind: http
        type: nginx
  - name: web2
    address: "web2.example.com"
    port: 2222
"""


def error_of(text: str, source: str = "t.yaml") -> YamlError:
    with pytest.raises(YamlError) as info:
        loads(text, source)
    return info.value


# -- values and positions ----------------------------------------------------------


def test_values_are_plain_python() -> None:
    root = loads(INVENTORY, "inventory.yaml")
    assert root.value == yaml.safe_load(INVENTORY)
    assert type(root.value) is dict
    assert root.path == ""


def test_positions_are_one_based_and_point_at_the_key() -> None:
    root = loads(INVENTORY, "inventory.yaml")
    port = root["servers"][1]["port"]
    assert (port.line, port.column) == (10, 5)
    assert port.path == "servers[1].port"
    assert str(port.mark) == "inventory.yaml:10:5"
    item = root["servers"][1]
    assert (item.line, item.column) == (8, 5)  # the item starts after "- "
    assert root.at("servers[0].services[0].type").value == "nginx"
    assert root.at("servers[0].services[0].type").line == 7


def test_walking_items_and_sequences() -> None:
    root = loads(INVENTORY)
    names = [server["name"].value for server in root["servers"]]
    assert names == ["web1", "web2"]
    keys = [key for key, _ in root["servers"][0].items()]
    assert keys == ["name", "address", "services"]
    assert "port" in root["servers"][1]
    assert "port" not in root["servers"][0]
    assert root["servers"][0].get("port") is None
    assert len(root["servers"]) == 2
    assert root["servers"][-1]["name"].value == "web2"
    with pytest.raises(KeyError):
        root["nope"]
    with pytest.raises(IndexError):
        root["servers"][5]
    with pytest.raises(TypeError):
        iter(root)  # a mapping: use items()


def test_error_str_names_file_line_column_and_path() -> None:
    root = loads(INVENTORY, "inventory.yaml")
    err = root.at("servers[1].address").error("must be an address")
    assert str(err) == "inventory.yaml:9:5: servers[1].address: must be an address"
    assert (err.source, err.line, err.column, err.key_path) == (
        "inventory.yaml",
        9,
        5,
        "servers[1].address",
    )
    assert err.reason == "must be an address"


def test_key_paths_quote_odd_keys() -> None:
    root = loads('hosts:\n  web1.example.com: {port: 1}\n  "a\\nb": 2\n')
    node = root["hosts"]["web1.example.com"]["port"]
    assert node.path == 'hosts["web1.example.com"].port'
    assert root.at('hosts["web1.example.com"].port').value == 1
    assert root["hosts"]["a\nb"].path == 'hosts["a\\nb"]'  # escaped, one line
    assert format_path(["servers", 3, "address"]) == "servers[3].address"


def test_empty_documents() -> None:
    assert loads("").value is None
    assert loads("# only a comment\n").value is None
    assert loads("---\n").value is None
    assert loads("x").value == "x"


# -- scalars ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("42", 42),
        ("-7", -7),
        ("0x1F", 31),
        ("1.5", 1.5),
        ("2.", 2.0),
        ("1.0e+3", 1000.0),
        (".inf", math.inf),
        # YAML 1.1 surprises that stay strings here:
        ("on", "on"),
        ("off", "off"),
        ("yes", "yes"),
        ("no", "no"),
        ("0755", "0755"),
        ("12:30", "12:30"),
        ("2024-01-01", "2024-01-01"),
        ("1_000", "1_000"),
        ("1e3", "1e3"),
        ("'true'", "true"),
        ('"42"', "42"),
        ("!!str 42", "42"),
        ("!!int '42'", 42),
        ("!!float 1", 1.0),
        ("!!bool 'true'", True),
    ],
)
def test_scalars(text: str, expected: object) -> None:
    assert loads(f"v: {text}\n").value["v"] == expected


def test_nan() -> None:
    assert math.isnan(loads("v: .nan").value["v"])


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False)
        | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=20,
    )
)
@settings(max_examples=300, deadline=None)
def test_whatever_safe_dump_writes_reads_back_the_same(value: object) -> None:
    text = yaml.safe_dump({"v": value})
    assert loads(text).value == {"v": value}


@pytest.mark.parametrize(
    "text",
    [
        "0o17",
        "-.5",
        "+.5",
        "1e3",
        "0b101",
        "+0x1F",
        "1:20",
        "yes",
        "Off",
        "=",
        "<<",
        "0.",
        "-0",
        "1__0",
    ],
)
def test_tricky_strings_round_trip(text: str) -> None:
    assert loads(yaml.safe_dump({"v": text})).value == {"v": text}


# -- broken files --------------------------------------------------------------------


def test_duplicate_keys_are_an_error() -> None:
    err = error_of("servers:\n  - name: a\n    port: 1\n    port: 2\n", "inventory.yaml")
    assert (err.line, err.column) == (4, 5)
    assert err.key_path == "servers[0].port"
    assert "duplicate key 'port' (first at line 3)" in str(err)


def test_syntax_error_has_position() -> None:
    err = error_of("a: [1, 2\nb: 3\n")
    assert err.line is not None and err.column is not None
    assert str(err).startswith("t.yaml:")


def test_tabs_are_an_error() -> None:
    err = error_of("a:\n\tb: 1\n")
    assert (err.line, err.column) == (2, 1)
    assert "tab" in err.reason


def test_bad_utf8_and_control_characters() -> None:
    err = error_of(b"a: ok\nb: \xff\n")  # type: ignore[arg-type]
    assert (err.line, err.column) == (2, 4)
    err = error_of("a: b\x07\n")
    assert err.line == 1
    assert "control" in err.reason


@pytest.mark.parametrize(
    "text",
    [
        "a: !!python/object/apply:os.system ['true']\n",
        "a: !!python/name:os.system\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!set {x}\n",
        "a: !!omap [{x: 1}]\n",
        "a: !custom x\n",
        "a: !!timestamp 2024-01-01\n",
    ],
)
def test_only_plain_types(text: str) -> None:
    err = error_of(text)
    assert err.key_path == "a"
    assert "tag" in err.reason


def test_complex_keys_are_an_error() -> None:
    assert "plain value" in error_of("? [1, 2]\n: x\n").reason
    assert "plain value" in error_of("{[1]: 2}\n").reason


def test_one_document_only() -> None:
    err = error_of("a: 1\n---\nb: 2\n")
    assert err.line == 2
    assert "single" in err.reason


def test_nesting_is_bounded() -> None:
    deep = "[" * (yamlio.MAX_DEPTH + 1) + "]" * (yamlio.MAX_DEPTH + 1)
    assert "nesting" in error_of(deep).reason
    fine = "[" * yamlio.MAX_DEPTH + "]" * yamlio.MAX_DEPTH
    assert loads(fine).value is not None


# -- anchors, aliases, merges -----------------------------------------------------------


def test_aliases_and_merge_keys() -> None:
    root = loads(
        "defaults: &d {port: 22, user: deploy}\n"
        "servers:\n"
        "  - <<: *d\n"
        "    name: a\n"
        "    port: 2222\n"
        "  - {<<: *d, name: b}\n"
        "  - <<: [{user: x}, *d]\n"
        "    name: c\n"
        "same: *d\n"
    )
    servers = root["servers"].value
    assert servers[0] == {"port": 2222, "user": "deploy", "name": "a"}
    assert servers[1] == {"port": 22, "user": "deploy", "name": "b"}
    assert servers[2] == {"user": "x", "port": 22, "name": "c"}
    assert root["same"].value is root["defaults"].value  # shared, not copied
    # A merged value is placed where it is written: in the anchored mapping.
    assert root.at("servers[1].user").line == 1


def test_undefined_and_recursive_aliases() -> None:
    assert "undefined alias *nope" in error_of("a: *nope\n").reason
    assert "contains it" in error_of("a: &x [1, *x]\n").reason


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join(['*' + prev] * 10)}]")
    start = time.perf_counter()
    err = error_of("\n".join(lines) + "\n")
    assert time.perf_counter() - start < 1
    assert "too many nodes" in err.reason
    assert err.line is not None


def test_a_few_aliases_are_fine() -> None:
    text = "base: &b {x: 1}\nitems:\n" + "".join("  - *b\n" for _ in range(1000))
    assert len(loads(text).value["items"]) == 1000


def test_bad_merge_value() -> None:
    err = error_of("a:\n  <<: 3\n  b: 1\n")
    assert "merge" in err.reason
    assert err.key_path == "a.<<" or err.key_path.startswith("a")


# -- typed access and model errors ---------------------------------------------------------


def test_typed_accessors_fail_at_the_node() -> None:
    root = loads("a: x\nb: 3\nc: true\nd: 1.5\ne:\nf: [1]\n", "c.yaml")
    assert root["a"].as_str() == "x"
    assert root["b"].as_int(minimum=1) == 3
    assert root["b"].as_float() == 3.0
    assert root["c"].as_bool() is True
    assert root["e"].as_mapping() == {}
    assert root["e"].as_list() == []
    with pytest.raises(
        YamlError, match=r"^c.yaml:1:1: a: must be a whole number \(got a string: 'x'\)"
    ):
        root["a"].as_int()
    with pytest.raises(YamlError, match="must be at most 2"):
        root["b"].as_int(maximum=2)
    with pytest.raises(YamlError, match="must be true or false"):
        root["b"].as_bool()
    with pytest.raises(YamlError, match="must be a mapping"):
        root["f"].as_mapping()
    with pytest.raises(YamlError, match="must be a string"):
        root["c"].as_str()


def test_check_keys_suggests() -> None:
    root = loads("server:\n  name: a\n  adress: b\n", "inv.yaml")
    with pytest.raises(YamlError) as info:
        root["server"].check_keys({"name", "address", "port"})
    err = info.value
    assert (err.line, err.key_path) == (3, "server.adress")
    assert "did you mean 'address'?" in err.reason
    with pytest.raises(YamlError, match="missing required key 'address'"):
        loads("s: {name: a}")["s"].check_keys({"name", "address"}, required={"address"})


def test_validation_error_is_placed_at_its_key() -> None:
    root = loads(
        "servers:\n"
        "  - name: ok\n"
        "    address: 192.0.2.1\n"
        "  - name: bad\n"
        "    address: 'evil;rm -rf /'\n",
        "inventory.yaml",
    )
    node = root["servers"][1]
    with pytest.raises(YamlError) as info:
        node.build(Server)
    err = info.value
    assert (err.line, err.column, err.key_path) == (5, 5, "servers[1].address")
    assert str(err).startswith("inventory.yaml:5:5: servers[1].address: ")
    assert isinstance(err.__cause__, ValidationError)


def test_nested_validation_fields_follow_the_keys() -> None:
    root = loads(
        "s:\n  name: a\n  address: 192.0.2.1\n  ssh_options:\n    identity_file: relative\n"
    )
    with pytest.raises(YamlError) as info, root["s"].validating():
        Server(**root["s"].value)
    assert info.value.key_path == "s.ssh_options.identity_file"
    assert info.value.line == 5


def test_unknown_field_of_a_validation_error_stays_at_the_node() -> None:
    node = loads("s: {a: 1}")["s"]
    err = node.from_validation(ValidationError("thing.other", "is wrong"))
    assert err.key_path == "s"


# -- files ------------------------------------------------------------------------------------


def test_load_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text("a:\n  b: [1,\n")
    with pytest.raises(YamlError) as info:
        load(path)
    assert info.value.source == str(path)
    assert str(info.value).startswith(f"{path}:")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(YamlError, match="cannot read"):
        load(tmp_path / "nope.yaml")


def test_pure_python_parser_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = loads(INVENTORY)
    monkeypatch.setattr(yamlio, "_Parser", yaml.SafeLoader)
    slow = loads(INVENTORY)
    assert slow.value == fast.value
    assert slow.at("servers[1].port").mark == fast.at("servers[1].port").mark
    with pytest.raises(YamlError, match="duplicate"):
        loads("a: 1\na: 2\n")


def test_gc_is_restored() -> None:
    import gc

    assert gc.isenabled()
    loads(INVENTORY)
    assert gc.isenabled()
    with pytest.raises(YamlError):
        loads("a: 1\na: 2\n")
    assert gc.isenabled()


def test_node_is_a_view() -> None:
    node = loads(INVENTORY)["servers"][0]
    assert isinstance(node, Node)
    assert "servers[0]" in repr(node)


def test_text_and_bytes_give_the_same_positions() -> None:
    text = "é: 1\nb: [1,\n"
    a = error_of(text)
    b = error_of(text.encode())  # type: ignore[arg-type]
    assert (a.line, a.column) == (b.line, b.column)
    assert error_of("a: 1\nb: \ud800\n").line == 2


def test_errors_pickle() -> None:
    import pickle

    from cockpit.inventory import ImportFileError

    err = YamlError("f.yaml", 3, 4, "a.b", "bad")
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
    imp = ImportFileError("hosts", 2, "bad line")
    assert str(pickle.loads(pickle.dumps(imp))) == "hosts:2: bad line"

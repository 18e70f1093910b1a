"""The inventory's YAML form: round trip, positions in errors, nothing half-applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.inventory.document import dump_inventory, load_inventory
from cockpit.inventory.plan import Inventory, InventoryError, apply, load_current
from cockpit.model import Client, Platform, Server, Service, Site
from cockpit.store import open_store
from cockpit.yamlio import YamlError, loads

FULL = Inventory(
    servers=(
        Server(
            name="web1",
            address="2001:db8::10",
            port=2222,
            user="deploy",
            root="/srv/cockpit",
            environment="staging",
            ssh_options={"sudo": True, "keepalive_count": 5, "proxy_jump": "jump@bastion.example"},
            services=(Service("http", "nginx", {"listen_port": 8080}), Service("db", "pgsql")),
        ),
    ),
    clients=(Client(name="acme", contact="ops@acme.example", quotas={"disk_mb": 100}),),
    platforms=(
        Platform(
            name="wp6",
            server="web1",
            type="wordpress",
            root="/srv/cockpit/wp6",
            release="6.4.2",
            locked=True,
        ),
    ),
    sites=(
        Site(
            domain="bücher.example",
            platform="wp6",
            client="acme",
            aliases=("www.xn--bcher-kva.example", "*.shop.example"),
            redirection="www.xn--bcher-kva.example",
            db_server="web1",
            https="on",
            status="disabled",
        ),
        Site(domain="off.example", platform="wp6", https="off"),
        Site(domain="yes.example", platform="wp6", https="required"),
    ),
)


def test_round_trip_is_exact(tmp_path: Path) -> None:
    text = dump_inventory(FULL)
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    assert load_inventory(path).inventory == FULL
    # words YAML 1.1 would read as booleans stay strings both ways
    assert "'on'" in text or '"on"' in text


def test_export_leaves_out_defaults_and_ids() -> None:
    text = dump_inventory(Inventory(servers=(Server(name="a", address="192.0.2.1", id=7),)))
    assert "id" not in text
    assert "port" not in text and "services" not in text


@pytest.mark.parametrize(
    ("yaml_text", "where", "reason"),
    [
        (
            "servers:\n  - name: a\n    address: 192.0.2.1\n    colour: red\n",
            ":4:5: servers[0].colour",
            "unknown key",
        ),
        ("servers:\n  - name: a\n    address: 'x;rm'\n", ":3:5: servers[0].address", "label"),
        (
            "sites:\n  - domain: ok.example\n    platform: p\n    aliases: [bad..example]\n",
            "sites[0].aliases",
            "empty label",
        ),
        (
            "servers:\n  - name: a\n    address: 192.0.2.1\n    services:\n      - {kind: http, type: nginx, settings: {db_password: x}}\n",
            "servers[0].services[0].settings",
            "secrets belong in the secrets file",
        ),
        (
            "servers:\n  - name: a\n    address: 192.0.2.1\n  - name: a\n    address: 192.0.2.1\n    address: 192.0.2.2\n",
            ":6:5",
            "duplicate",
        ),
        ("version: 2\n", ":1:1: version", "unsupported inventory version"),
        ("servers: [\n", "inv.yaml:", ""),
        ("widgets: []\n", ":1:1: widgets", "unknown key"),
    ],
)
def test_errors_name_file_line_column_and_key(
    tmp_path: Path, yaml_text: str, where: str, reason: str
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(yaml_text)
    with pytest.raises(YamlError) as err:
        load_inventory(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert where in message, message
    assert reason in message, message


async def test_reference_errors_are_located_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "servers:\n  - {name: web1, address: 192.0.2.1}\n"
        "platforms:\n  - {name: p, server: web1, type: php, root: /var/lib/cockpit/p}\n"
        "sites:\n  - domain: a.example\n    platform: p\n  - domain: b.example\n    platform: nope\n"
    )
    loaded = load_inventory(path)
    db = await open_store(tmp_path / "c.db")
    try:
        with pytest.raises(InventoryError) as err:
            await apply(db, loaded.inventory)
        located = loaded.locate(err.value)
        assert isinstance(located, YamlError)
        assert str(located) == f"{path}:9:5: sites[1].platform: no platform nope"
        assert (await load_current(db)).size() == 0
    finally:
        await db.close()


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("")
    with pytest.raises(YamlError, match="empty"):
        load_inventory(path)


def test_loads_gives_the_same_node_api() -> None:
    node = loads("servers: []\n", source="x.yaml")
    assert node["servers"].value == []


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# What the model lets a setting hold; the emitter must quote what YAML would misread.
_setting_text = st.one_of(
    st.from_regex(
        r"[A-Za-z0-9._:/@+,=%~-]([A-Za-z0-9._:/@+,=%~ -]{0,30}[A-Za-z0-9._:/@+,=%~-])?",
        fullmatch=True,
    ),
    st.sampled_from(
        [
            "on",
            "off",
            "yes",
            "No",
            "null",
            "~",
            "-1",
            "0x10",
            "1e5",
            ".inf",
            "0755",
            "12:30",
            "2024-01-01",
            "- a",
            ": b",
            "a: b",
            "a,b",
            "%x",
            "@y",
        ]
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
            lambda k: (
                not any(
                    w in k
                    for w in (
                        "pass",
                        "secret",
                        "token",
                        "private",
                        "credential",
                        "apikey",
                        "api_key",
                    )
                )
            )
        ),
        st.one_of(_setting_text, st.integers(-(2**40), 2**40), st.booleans()),
        max_size=5,
    ),
    environment=st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
)
def test_dump_reads_back_identically_through_pyyaml_and_yamlio(
    values: dict, environment: str
) -> None:
    """Whatever a setting holds (quotes, colons, '#', YAML words, unicode), it reads back."""
    import yaml as pyyaml

    from cockpit.inventory.document import inventory_from_node

    inv = Inventory(
        servers=(
            Server(
                name="s",
                address="192.0.2.1",
                environment=environment,
                services=(Service("http", "nginx", values),),
            ),
        )
    )
    text = dump_inventory(inv)
    assert inventory_from_node(loads(text)).inventory == inv
    parsed = pyyaml.safe_load(text)
    assert parsed["servers"][0].get("services", [{}])[0].get("settings", {}) == values

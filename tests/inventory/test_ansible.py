"""Importing servers from Ansible inventories (INI and YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cockpit.inventory import ImportFileError, ImportResult
from cockpit.inventory.ansible import MAX_RANGE_HOSTS, expand_host_pattern, import_ansible
from cockpit.model import Server, Transport
from cockpit.yamlio import YamlError

INI = """\
# production inventory
mail.example.com

[webservers]
web[01:03].example.com ansible_user=deploy
foo.example.com:2222 cockpit_environment=staging   # a comment
bar.example.com ansible_host=192.0.2.20 ansible_port=2200

[dbservers]
db-[a:c].example.com
localhost ansible_connection=local

[production:children]
webservers
dbservers

[webservers:vars]
ansible_port=2201
ansible_ssh_common_args='-o ProxyJump=ops@bastion.example.com'

[all:vars]
ansible_user = root
ansible_ssh_private_key_file = /etc/ansible/keys/id_ed25519
"""

YAML = """\
all:
  vars:
    ansible_user: admin
  hosts:
    mail.example.com:
  children:
    staging_web:
      hosts:
        web[1:2].stage.example.com:
          ansible_port: 2222
        one.stage.example.com:
          ansible_host: 192.0.2.30
          ansible_ssh_common_args: -J hop.example.com
      vars:
        ansible_ssh_private_key_file: ~/.ssh/stage
    dev:
      children:
        devboxes:
          hosts:
            dev1.example.com:
              cockpit_environment: qa
            dev2.example.com:
    local:
      hosts:
        localhost:
          ansible_connection: local
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def by_name(result: ImportResult) -> dict[str, Server]:
    return {s.name: s for s in result.servers}


def skipped(result: ImportResult) -> dict[str, str]:
    return dict(result.skipped)


# -- INI -----------------------------------------------------------------------------------


def test_ini_inventory(tmp_path: Path) -> None:
    result = import_ansible(write(tmp_path, "hosts", INI))
    servers = by_name(result)
    assert list(servers) == [
        "mail.example.com",
        "web01.example.com",
        "web02.example.com",
        "web03.example.com",
        "foo.example.com",
        "bar.example.com",
        "db-a.example.com",
        "db-b.example.com",
        "db-c.example.com",
        "localhost",
    ]
    assert result.skipped == []
    mail = servers["mail.example.com"]
    assert (mail.address, mail.port, mail.user, mail.environment) == (
        "mail.example.com",
        22,
        "root",
        "prod",
    )
    assert dict(mail.ssh_options) == {"identity_file": "/etc/ansible/keys/id_ed25519"}
    web = servers["web02.example.com"]
    assert (web.port, web.user, web.environment) == (2201, "deploy", "prod")  # production
    assert web.ssh_options["proxy_jump"] == "ops@bastion.example.com"
    foo = servers["foo.example.com"]
    assert (foo.port, foo.environment) == (2222, "staging")  # host:port beats group vars
    bar = servers["bar.example.com"]
    assert (bar.address, bar.port) == ("192.0.2.20", 2200)
    db = servers["db-b.example.com"]
    assert (db.port, db.environment) == (22, "prod")
    assert "proxy_jump" not in db.ssh_options
    local = servers["localhost"]
    assert local.transport is Transport.LOCAL
    assert local.address == "localhost"


def test_ini_without_extension_sniffed(tmp_path: Path) -> None:
    result = import_ansible(write(tmp_path, "inventory", "host1:2222\nhost2\n"))
    assert [(s.name, s.port) for s in result.servers] == [("host1", 2222), ("host2", 22)]


def test_group_var_precedence(tmp_path: Path) -> None:
    text = """\
[all:vars]
ansible_user=allu
ansible_port=1001

[parent:vars]
ansible_user=parentu
ansible_port=1002

[child:vars]
ansible_user=childu

[aaa:vars]
ansible_user=aaau

[zzz:vars]
ansible_user=zzzu

[parent:children]
child

[child]
h1
h2 ansible_user=hostu

[aaa]
h3
[zzz]
h3
"""
    servers = by_name(import_ansible(write(tmp_path, "hosts", text)))
    assert (servers["h1"].user, servers["h1"].port) == ("childu", 1002)
    assert servers["h2"].user == "hostu"
    assert servers["h3"].user == "zzzu"  # siblings: by name, the later wins


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        (["web", "production"], "prod"),
        (["stage"], "staging"),
        (["web_staging"], "staging"),
        (["dev-boxes"], "dev"),
        (["test"], "test"),
        (["web", "product"], "prod"),  # "product" is no environment word: the default
        (["staging", "prod"], "staging"),  # the host's first group
    ],
)
def test_environment_from_group_names(tmp_path: Path, groups: list[str], expected: str) -> None:
    text = "".join(f"[{group}]\nh1\n" for group in groups)
    assert import_ansible(write(tmp_path, "hosts", text)).servers[0].environment == expected


def test_environment_from_parent_group(tmp_path: Path) -> None:
    text = "[web]\nh1\n[staging:children]\nweb\n"
    assert import_ansible(write(tmp_path, "hosts", text)).servers[0].environment == "staging"


def test_cockpit_environment_wins_and_is_validated(tmp_path: Path) -> None:
    text = "[prod]\nh1 cockpit_environment=qa\nh2 cockpit_environment='Bad Env'\n"
    result = import_ansible(write(tmp_path, "hosts", text))
    assert [(s.name, s.environment) for s in result.servers] == [("h1", "qa")]
    assert "lowercase word" in skipped(result)["h2"]
    assert skipped(result)["h2"].startswith(f"{tmp_path / 'hosts'}:3: ")


def test_connections(tmp_path: Path) -> None:
    text = (
        "h1 ansible_connection=ssh\nh2 ansible_connection=paramiko\n"
        "h3 ansible_connection=winrm\nh4 ansible_connection=community.docker.docker\n"
        "h5 ansible_connection=local ansible_host=127.0.0.1\n"
    )
    result = import_ansible(write(tmp_path, "hosts", text))
    assert [(s.name, s.transport) for s in result.servers] == [
        ("h1", Transport.SSH),
        ("h2", Transport.SSH),
        ("h5", Transport.LOCAL),
    ]
    assert "not supported" in skipped(result)["h3"]
    assert "not supported" in skipped(result)["h4"]


def test_legacy_variable_names(tmp_path: Path) -> None:
    text = "h1 ansible_ssh_host=192.0.2.9 ansible_ssh_port=2020 ansible_ssh_user=ops\n"
    server = import_ansible(write(tmp_path, "hosts", text)).servers[0]
    assert (server.address, server.port, server.user) == ("192.0.2.9", 2020, "ops")


def test_proxy_jump_from_ssh_args(tmp_path: Path) -> None:
    text = (
        "h1 ansible_ssh_common_args='-J hop1'\n"
        "h2 ansible_ssh_extra_args='-o ProxyJump=ops@hop2:2222'\n"
        "h3 ansible_ssh_common_args='-oProxyJump=hop3 -o StrictHostKeyChecking=no'\n"
        "h4 ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p hop\"'\n"
    )
    servers = by_name(import_ansible(write(tmp_path, "hosts", text)))
    assert servers["h1"].ssh_options["proxy_jump"] == "hop1"
    assert servers["h2"].ssh_options["proxy_jump"] == "ops@hop2:2222"
    assert servers["h3"].ssh_options["proxy_jump"] == "hop3"
    assert "proxy_jump" not in servers["h4"].ssh_options


def test_uppercase_names_and_duplicates(tmp_path: Path) -> None:
    result = import_ansible(write(tmp_path, "hosts", "[a]\nWeb1\n[b]\nweb1\nWeb1\n"))
    assert [s.name for s in result.servers] == ["web1"]
    assert "names ignore case" in skipped(result)["web1"]


@pytest.mark.parametrize(
    "line",
    [
        "evil ansible_host='evil;rm -rf /'",
        "evil ansible_host=$(reboot)",
        "evil ansible_host='`reboot`'",
        "evil ansible_host='192.0.2.1\\nHost'",
        'evil ansible_host=\'{{ lookup("pipe", "id") }}\'',
        "evil ansible_user='root;id'",
        "evil ansible_user=-oProxyCommand=x",
        "evil ansible_port='22;reboot'",
        "evil ansible_port=0",
        "evil ansible_ssh_private_key_file='/keys/$(id)'",
        "evil ansible_ssh_private_key_file=relative/key",
        "evil ansible_ssh_common_args='-J hop;reboot'",
        "evil ansible_host=good.example.com\u2028Host",
        "evil ansible_host=аррӏе.com",
        "evil;reboot",
        "evil$(id)",
        "-oProxyCommand=reboot",
    ],
)
def test_hostile_values_are_skipped(tmp_path: Path, line: str) -> None:
    result = import_ansible(
        write(tmp_path, "hosts", f"[web]\ngood ansible_host=192.0.2.1\n{line}\n")
    )
    assert [s.name for s in result.servers] == ["good"]
    assert len(result.skipped) == 1
    _name, reason = result.skipped[0]
    assert reason.startswith(f"{tmp_path / 'hosts'}:3: ")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("[web\nh1\n", 1, "invalid section header"),
        ("[web:foo]\nh1\n", 1, "unknown section type"),
        ("[web]\nh1 ansible_host='oops\n", 2, "in host line"),
        ("[web]\nh1 lonely\n", 2, "expected key=value host variable"),
        ("[web:vars]\nnovalue\n", 2, "expected key=value"),
        ("[web:children]\na b\n", 2, "one group name per line"),
        ("[a:children]\nb\n[b:children]\na\n", 4, "makes a loop"),
        ("[a:children]\na\n", 2, "makes a loop"),
        ("[web]\nweb[3:1]\n", 2, "begin <= end"),
        ("[web]\nweb[01:3]\n", 2, "same width"),
        ("[web]\nweb[1:2:0]\n", 2, "step"),
        ("[web]\nweb[1:]\n", 2, "must have an end"),
        ("[web]\nweb[1:2:3:4]\n", 2, "begin:end"),
        ("[web]\nweb[0:99999999]\n", 2, "more than"),
    ],
)
def test_malformed_ini_names_the_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(ImportFileError) as info:
        import_ansible(write(tmp_path, "hosts", text))
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{tmp_path / 'hosts'}:{line}: ")


def test_not_utf8_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "hosts"
    path.write_bytes(b"[web]\nh\xff\n")
    with pytest.raises(ImportFileError, match="UTF-8") as info:
        import_ansible(path)
    assert info.value.line == 2
    with pytest.raises(ImportFileError, match="cannot read"):
        import_ansible(tmp_path / "nope")


# -- ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "hosts"),
    [
        ("web", ["web"]),
        ("web[1:3]", ["web1", "web2", "web3"]),
        ("web[01:03].example.com", ["web01.example.com", "web02.example.com", "web03.example.com"]),
        ("db-[a:c]", ["db-a", "db-b", "db-c"]),
        ("n[0:10:5]", ["n0", "n5", "n10"]),
        ("r[1:2]-[a:b]", ["r1-a", "r1-b", "r2-a", "r2-b"]),
        ("x[:2]", ["x0", "x1", "x2"]),
    ],
)
def test_expand_host_pattern(pattern: str, hosts: list[str]) -> None:
    assert expand_host_pattern(pattern) == hosts


def test_nested_ranges_are_bounded() -> None:
    with pytest.raises(ValueError, match="more than"):
        expand_host_pattern("a[0:999]b[0:999]")
    assert len(expand_host_pattern("a[0:99]b[0:99]")) == 10_000 < MAX_RANGE_HOSTS


# -- YAML ------------------------------------------------------------------------------------


def test_yaml_inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = import_ansible(write(tmp_path, "inventory.yml", YAML))
    servers = by_name(result)
    assert list(servers) == [
        "mail.example.com",
        "web1.stage.example.com",
        "web2.stage.example.com",
        "one.stage.example.com",
        "dev1.example.com",
        "dev2.example.com",
        "localhost",
    ]
    assert result.skipped == []
    assert servers["mail.example.com"].user == "admin"
    web = servers["web2.stage.example.com"]
    assert (web.port, web.user, web.environment) == (2222, "admin", "staging")
    assert web.ssh_options["identity_file"] == f"{tmp_path}/.ssh/stage"
    one = servers["one.stage.example.com"]
    assert (one.address, one.ssh_options["proxy_jump"]) == ("192.0.2.30", "hop.example.com")
    assert servers["dev1.example.com"].environment == "qa"
    assert servers["dev2.example.com"].environment == "dev"  # from the parent group "dev"
    assert servers["localhost"].transport is Transport.LOCAL


def test_yaml_sniffed_without_extension(tmp_path: Path) -> None:
    result = import_ansible(write(tmp_path, "inventory", "---\nweb:\n  hosts:\n    h1:\n"))
    assert [s.name for s in result.servers] == ["h1"]
    result = import_ansible(write(tmp_path, "inventory2", "web:\n  hosts:\n    h1:\n"))
    assert [s.name for s in result.servers] == ["h1"]


def test_forced_format(tmp_path: Path) -> None:
    path = write(tmp_path, "inv.txt", "all:\n  hosts:\n    h1:\n")
    assert [s.name for s in import_ansible(path, format="yaml").servers] == ["h1"]


def test_yaml_hostile_values_are_skipped_with_position(tmp_path: Path) -> None:
    text = (
        "all:\n  hosts:\n    good:\n      ansible_host: 192.0.2.1\n"
        "    evil:\n      ansible_host: 'evil;rm -rf /'\n"
        "    evil2:\n      ansible_port: [22]\n"
        "    evil3:\n      ansible_user: {a: b}\n"
    )
    result = import_ansible(write(tmp_path, "inv.yaml", text))
    assert [s.name for s in result.servers] == ["good"]
    reasons = skipped(result)
    assert reasons["evil"].startswith(f"{tmp_path / 'inv.yaml'}:5:5: ")
    assert "whitespace" in reasons["evil"]
    assert set(reasons) == {"evil", "evil2", "evil3"}


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("all:\n  hosts:\n    h1:\n  hots:\n    h2:\n", 4, "did you mean 'hosts'"),
        ("all:\n  hosts:\n    - h1\n", 2, "must be a mapping"),
        ("all:\n  hosts:\n    h1: 3\n", 3, "must be a mapping"),
        ("all:\n  hosts:\n    h1:\n    h1:\n", 4, "duplicate key"),
        ("all:\n\thosts:\n", 2, "tab"),
        ("- a\n- b\n", 1, "must be a mapping"),
        ("a:\n  children:\n    b:\n      children:\n        a:\n", 5, "makes a loop"),
        ("all:\n  hosts:\n    web[3:1]:\n", 3, "begin <= end"),
    ],
)
def test_malformed_yaml_names_the_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(YamlError) as info:
        import_ansible(write(tmp_path, "inv.yml", text))
    assert info.value.line == line
    assert reason in info.value.reason
    assert info.value.source == str(tmp_path / "inv.yml")


def test_empty_inventories(tmp_path: Path) -> None:
    assert import_ansible(write(tmp_path, "a.yml", "")).servers == []
    assert import_ansible(write(tmp_path, "hosts", "# nothing\n")).servers == []
    assert import_ansible(write(tmp_path, "b.yml", "all:\n")).servers == []


_INI_LINES = st.one_of(
    st.sampled_from(
        ["[web]", "[web:vars]", "[web:children]", "[all:vars]", "[prod:children]", "[a"]
    ),
    st.text(alphabet=st.sampled_from(list("aw1[]:=' \"#;$()`\\-.09\t\r\u2028\x00é")), max_size=30),
    st.sampled_from(
        ["web[1:3]", "h ansible_host=192.0.2.1", "h ansible_port=x", "web", "prod", "k=v"]
    ),
)


@given(st.lists(_INI_LINES, max_size=15))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_ini_never_crashes(tmp_path: Path, lines: list[str]) -> None:
    path = tmp_path / "hosts"
    path.write_text("\n".join(lines))
    try:
        result = import_ansible(path, format="ini")
    except ImportFileError:
        return
    assert all(isinstance(s, Server) for s in result.servers)


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=8),
        lambda children: (
            st.dictionaries(
                st.sampled_from(["all", "hosts", "vars", "children", "web", "h1", "ansible_host"]),
                children,
                max_size=4,
            )
            | st.lists(children, max_size=2)
        ),
        max_leaves=15,
    )
)
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_yaml_never_crashes(tmp_path: Path, document: object) -> None:
    import yaml

    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(document))
    try:
        result = import_ansible(path)
    except YamlError:
        return
    assert all(isinstance(s, Server) for s in result.servers)

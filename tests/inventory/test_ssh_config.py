"""Importing servers from ~/.ssh/config: OpenSSH's rules, and hostile entries refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cockpit.inventory import ImportFileError, ImportResult
from cockpit.inventory.ssh_config import import_ssh_config, parse_args
from cockpit.model import Server
from cockpit.yamlio import YamlError


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / ".ssh").mkdir(parents=True)
    return tmp_path / "home"


def run(home: Path, text: str, files: dict[str, str] | None = None) -> ImportResult:
    """Import ``text`` as ~/.ssh/config, with ``files`` beside it (relative to ~/.ssh)."""
    ssh = home / ".ssh"
    for name, content in (files or {}).items():
        path = ssh / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    (ssh / "config").write_text(text)
    return import_ssh_config(home=home, local_user="alice")


def by_name(result: ImportResult) -> dict[str, Server]:
    return {s.name: s for s in result.servers}


def skipped(result: ImportResult) -> dict[str, str]:
    return dict(result.skipped)


REALISTIC = """\
# ~/.ssh/config of an admin
Include conf.d/*.conf

Host web1 web2
    HostName 192.0.2.10
    Port 2222
    User deploy
    IdentityFile ~/.ssh/id_web

Host db1
    Hostname=db1.internal.example.com
    ProxyJump admin@bastion.example.com:2200
    IdentityFile "%d/.ssh/id_%h"

Host Legacy
    HostName legacy.example.com   # the old box
    User = root

Host *.example.com
    User ops

Match host *.corp exec "test -f /tmp/x"
    User matched

Host *
    User fallback
    IdentityFile ~/.ssh/id_ed25519
    ServerAliveInterval 30
"""


def test_realistic_config(home: Path) -> None:
    result = run(
        home,
        REALISTIC,
        {"conf.d/10-bastion.conf": "Host bastion\n  HostName bastion.example.com\n  Port 2200\n"},
    )
    servers = by_name(result)
    assert list(servers) == ["bastion", "web1", "web2", "db1", "legacy"]
    web1 = servers["web1"]
    assert (web1.address, web1.port, web1.user) == ("192.0.2.10", 2222, "deploy")
    assert dict(web1.ssh_options) == {
        "config_host": "web1",
        "identity_file": str(home / ".ssh" / "id_web"),
    }
    assert servers["web2"].address == "192.0.2.10"
    db1 = servers["db1"]
    assert db1.address == "db1.internal.example.com"
    assert db1.user == "fallback"  # from Host *, since db1 sets none
    assert db1.ssh_options["proxy_jump"] == "admin@bastion.example.com:2200"
    assert db1.ssh_options["identity_file"] == f"{home}/.ssh/id_db1.internal.example.com"
    legacy = servers["legacy"]
    assert legacy.user == "root"
    assert legacy.ssh_options["config_host"] == "legacy"
    bastion = servers["bastion"]
    assert (bastion.address, bastion.port) == ("bastion.example.com", 2200)
    assert bastion.user == "fallback"
    notes = skipped(result)
    assert set(notes) == {"*.example.com", "*", "Match host *.corp exec test -f /tmp/x"}
    assert "pattern" in notes["*"]
    assert notes["Match host *.corp exec test -f /tmp/x"].startswith(
        f"{home}/.ssh/config:22: Match"
    )


def test_default_path_is_home_ssh_config(home: Path) -> None:
    (home / ".ssh" / "config").write_text("Host a1\n")
    result = import_ssh_config(home=home)
    assert [s.name for s in result.servers] == ["a1"]
    assert result.servers[0].address == "a1"
    explicit = home / "elsewhere"
    explicit.write_text("Host b1\n")
    assert [s.name for s in import_ssh_config(explicit, home=home).servers] == ["b1"]


def test_first_value_wins_even_from_an_earlier_wildcard(home: Path) -> None:
    result = run(home, "Host *\n  User early\n  Port 2200\nHost web\n  User late\n  Port 22\n")
    web = by_name(result)["web"]
    assert (web.user, web.port) == ("early", 2200)


def test_negated_patterns_exclude(home: Path) -> None:
    text = "Host * !web\n  User other\nHost web\n  HostName 192.0.2.1\nHost db\n"
    servers = by_name(run(home, text))
    assert servers["web"].user == "root"  # the model's default, not "other"
    assert servers["db"].user == "other"
    assert "!web" in skipped(run(home, text))


def test_pattern_matching_is_glob_not_regex(home: Path) -> None:
    text = "Host w?b\n  User q\nHost a.c\n  User dot\nHost web abc\n"
    servers = by_name(run(home, text))
    assert servers["web"].user == "q"
    assert servers["abc"].user == "root"  # "." is literal, not any character


def test_keywords_ignore_case_and_accept_equals(home: Path) -> None:
    text = "HOST web\n  hOsTnAmE=192.0.2.5\n  PORT = 2022\n  user\t=\tops\n"
    web = by_name(run(home, text))["web"]
    assert (web.address, web.port, web.user) == ("192.0.2.5", 2022, "ops")


def test_quoted_values(home: Path) -> None:
    text = 'Host "web"\n  HostName "192.0.2.7"\n  User \'deploy\'\n  IdentityFile "~/.ssh/k"\n'
    web = by_name(run(home, text))["web"]
    assert (web.address, web.user) == ("192.0.2.7", "deploy")
    assert web.ssh_options["identity_file"] == f"{home}/.ssh/k"


def test_alias_is_lowercased_and_deduplicated(home: Path) -> None:
    result = run(home, "Host Web\n  HostName 192.0.2.1\nHost web\n  HostName 192.0.2.2\n")
    assert [s.name for s in result.servers] == ["web"]
    assert result.servers[0].ssh_options["config_host"] == "web"
    assert result.servers[0].address == "192.0.2.1"
    assert "names ignore case" in skipped(result)["web"]


def test_same_alias_in_two_blocks_is_one_server(home: Path) -> None:
    result = run(home, "Host web\n  Port 2200\nHost web db\n  User ops\n")
    assert [s.name for s in result.servers] == ["web", "db"]
    assert (by_name(result)["web"].port, by_name(result)["web"].user) == (2200, "ops")


def test_hostname_token_h(home: Path) -> None:
    web = by_name(run(home, "Host web\n  HostName %h.example.com\n"))["web"]
    assert web.address == "web.example.com"


def test_identity_file_tokens(home: Path) -> None:
    text = (
        "Host web\n  HostName 192.0.2.1\n  User bob\n  Port 2200\n  IdentityFile %d/k_%u_%r_%n_%p\n"
    )
    web = by_name(run(home, text))["web"]
    assert web.ssh_options["identity_file"] == f"{home}/k_alice_bob_web_2200"
    # %% is a literal %, which no path Cockpit accepts holds.
    assert "got '/k/100%'" in skipped(run(home, "Host web\n  IdentityFile /k/100%%\n"))["web"]


def test_identity_file_none_and_first_one_wins(home: Path) -> None:
    text = "Host web\n  IdentityFile none\n  IdentityFile /k/one\n  IdentityFile /k/two\n"
    assert by_name(run(home, text))["web"].ssh_options["identity_file"] == "/k/one"


def test_identity_file_env_var(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYS", "/srv/keys")
    assert (
        by_name(run(home, "Host web\n  IdentityFile ${KEYS}/web\n"))["web"].ssh_options[
            "identity_file"
        ]
        == "/srv/keys/web"
    )
    monkeypatch.delenv("KEYS")
    assert "KEYS is not set" in skipped(run(home, "Host web\n  IdentityFile ${KEYS}/web\n"))["web"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("~/.ssh/%C", "cannot expand the token %C"),
        ("~nosuchuser-xyz/key", "cannot expand ~user"),
        ("id_rsa", "must be an absolute path"),
        ("/keys/my key", "takes one argument"),
        ('"/keys/my key"', "must be '/'-separated"),
        ("/keys/k%", "lone %"),
    ],
)
def test_unexpandable_identity_file_skips_the_host(home: Path, value: str, reason: str) -> None:
    result = run(home, f"Host web\n  HostName 192.0.2.1\n  IdentityFile {value}\n")
    assert result.servers == []
    assert reason in skipped(result)["web"]
    assert skipped(result)["web"].startswith(f"{home}/.ssh/config:3: ")


def test_proxy_jump_forms(home: Path) -> None:
    text = (
        "Host a\n  ProxyJump none\n"
        "Host b\n  ProxyJump ssh://ops@hop.example.com:2222\n"
        "Host c\n  ProxyJump hop1,ops@hop2.example.com\n"
        "Host d\n  ProxyCommand ssh -W %h:%p hop\n  ProxyJump hop\n"
    )
    servers = by_name(run(home, text))
    assert "proxy_jump" not in servers["a"].ssh_options
    assert servers["b"].ssh_options["proxy_jump"] == "ops@hop.example.com:2222"
    assert servers["c"].ssh_options["proxy_jump"] == "hop1,ops@hop2.example.com"
    assert "proxy_jump" not in servers["d"].ssh_options  # ProxyCommand came first


def test_include_rules(home: Path, tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere.conf"
    absolute.write_text("Host abs1\n")
    result = run(
        home,
        f"Include {absolute} conf.d/*.conf ~/.ssh/missing-*.conf\n"
        "Host web\n  Include web-extra.conf\n  Port 2200\nHost last\n",
        {
            "conf.d/20-b.conf": "Host b1\n",
            "conf.d/10-a.conf": "Host a1\n",
            "web-extra.conf": "User fromextra\nHost inner\n  User inneruser\n",
        },
    )
    assert [s.name for s in result.servers] == ["abs1", "a1", "b1", "web", "inner", "last"]
    servers = by_name(result)
    # Lines of an included file before its first Host belong to the including block.
    assert servers["web"].user == "fromextra"
    assert servers["web"].port == 2200  # the including block goes on after the Include
    # A Host inside an Include inside "Host web" applies only when both match.
    assert servers["inner"].user == "root"


def test_include_loop_is_an_error(home: Path) -> None:
    with pytest.raises(ImportFileError, match="Include nested too deeply") as info:
        run(home, "Host a\nInclude config\n")
    assert info.value.line == 2
    assert isinstance(info.value, YamlError)  # one except clause for positioned errors


def test_match_block_options_are_ignored(home: Path) -> None:
    result = run(home, "Match all\n  User matched\nHost web\n  HostName 192.0.2.1\n")
    assert by_name(result)["web"].user == "root"
    assert any(name.startswith("Match") for name, _ in result.skipped)


# -- hostile and malformed input ------------------------------------------------------------


@pytest.mark.parametrize(
    "block",
    [
        "Host evil\n  HostName evil;rm -rf /\n",
        'Host evil\n  HostName "evil;rm -rf /"\n',
        "Host evil\n  HostName evil$(reboot).example.com\n",
        "Host evil\n  HostName `reboot`\n",
        "Host evil\n  HostName -oProxyCommand=reboot\n",
        "Host evil\n  HostName evil.example.com\x00.other\n",
        "Host evil\n  HostName good.example.com\u2028Host x\n",
        "Host evil\n  HostName good.example.com\x85Host\n",
        "Host evil\n  HostName good.example.com\x0bHost\n",
        "Host evil\n  HostName good\u200b.example.com\n",
        "Host evil\n  HostName аррӏе.com\n",
        "Host evil\n  User 'root$(reboot)'\n",
        "Host evil\n  User root\\ -oProxyCommand=x\n",
        "Host evil\n  Port 22abc\n",
        "Host evil\n  Port 99999\n",
        "Host evil\n  Port 22 2222\n",
        'Host evil\n  ProxyJump "hop;reboot"\n',
        "Host evil\n  ProxyJump hop$(id)\n",
        "Host evil\n  IdentityFile /keys/`id`\n",
        "Host evil\n  IdentityFile /keys/../../etc/shadow\n",
    ],
)
def test_hostile_values_are_skipped_with_a_reason(home: Path, block: str) -> None:
    result = run(home, "Host good\n  HostName 192.0.2.1\n" + block)
    assert [s.name for s in result.servers] == ["good"]
    reasons = skipped(result)
    assert "evil" in reasons
    assert reasons["evil"].startswith(f"{home}/.ssh/config:")
    assert "\n" not in reasons["evil"]


@pytest.mark.parametrize(
    "alias", ["evil;rm", "evil$(id)", "-oProxyCommand=x", "'a b'", "ev\\\\il", "a" * 64]
)
def test_hostile_aliases_are_skipped(home: Path, alias: str) -> None:
    result = run(home, f"Host {alias}\n  HostName 192.0.2.1\n")
    assert result.servers == []
    assert len(result.skipped) == 1


def test_crlf_line_ends(home: Path) -> None:
    result = run(home, "Host web\r\n  HostName 192.0.2.1\r\n  User ops\r\n")
    assert [(s.name, s.address, s.user) for s in result.servers] == [("web", "192.0.2.1", "ops")]


def test_a_lone_carriage_return_does_not_start_a_line(home: Path) -> None:
    result = run(home, "Host web\n  HostName 192.0.2.1\n  User ops\rHost evil\n")
    assert result.servers == []  # "ops\rHost" and "evil": two arguments to User
    assert "takes one argument" in skipped(result)["web"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ('Host web\n  HostName "unbalanced\n', 2, "invalid quotes"),
        ("Host web\n  User 'x\n", 2, "invalid quotes"),
        ("Host web\n  HostName\n", 2, "no argument"),
        ("Host\n", 1, "no argument"),
        ("Host web\n  Port =\n", 2, "no argument"),
    ],
)
def test_malformed_lines_name_the_line(home: Path, text: str, line: int, reason: str) -> None:
    with pytest.raises(ImportFileError) as info:
        run(home, text)
    assert info.value.line == line
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{home}/.ssh/config:{line}: ")


def test_not_utf8(home: Path) -> None:
    (home / ".ssh" / "config").write_bytes(b"Host a\nHost \xff\n")
    with pytest.raises(ImportFileError, match="UTF-8") as info:
        import_ssh_config(home=home)
    assert info.value.line == 2


def test_missing_file(home: Path) -> None:
    with pytest.raises(ImportFileError, match="cannot read"):
        import_ssh_config(home=home)


def test_comments_and_blank_lines(home: Path) -> None:
    result = run(home, "\n# Host commented\n   \n\tHost web # trailing\n  # Port 1\n  Port 2 # c\n")
    assert [(s.name, s.port) for s in result.servers] == [("web", 2)]


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("a b\tc", ["a", "b", "c"]),
        ('"a b" c', ["a b", "c"]),
        ("'a \"b\"' c", ['a "b"', "c"]),
        ("a\\ b", ["a b"]),
        ('"a\\"b"', ['a"b']),
        ("a #comment", ["a"]),
        ("a#b", ["a#b"]),
        ('""', [""]),
        ("x\\y", ["x\\y"]),
    ],
)
def test_parse_args(text: str, args: list[str]) -> None:
    assert parse_args(text) == args


_KEYWORDS = st.sampled_from(
    ["Host", "HostName", "Port", "User", "IdentityFile", "ProxyJump", "Match", "Include", "#", ""]
)
_VALUES = st.text(
    alphabet=st.sampled_from(list("ab.-_*?!%~/\"' \t=;$()`\\\x00\r\u2028\x85é0123456789")),
    max_size=20,
)


@given(st.lists(st.tuples(_KEYWORDS, _VALUES), max_size=12))
@example(lines=[("Include", "\x00/*")])
@example(lines=[("IdentityFile", "~\x00x/key"), ("Host", "a")])
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_fuzz_never_crashes(home: Path, lines: list[tuple[str, str]]) -> None:
    text = "\n".join(f"{kw} {value}" for kw, value in lines)
    try:
        result = run(home, text)
    except ImportFileError:
        return
    for server in result.servers:
        assert isinstance(server, Server)  # valid by construction
        assert server.ssh_options["config_host"] == server.name
    for name, reason in result.skipped:
        assert isinstance(name, str) and reason

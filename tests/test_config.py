"""The typed config: XDG paths, validation with positions, overrides, dump, secrets file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cockpit.config import (
    Concurrency,
    Config,
    ConfigError,
    Retention,
    SecretFileError,
    SshDefaults,
    check_secret_file,
    config_dir,
    config_path,
    data_dir,
    dump_config,
    load_config,
    read_secret_file,
    write_secret_file,
)


@pytest.fixture(autouse=True)
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home and XDG dirs for every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_error(text: str, tmp_path: Path) -> ConfigError:
    path = write(tmp_path / "config.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


# -- paths ------------------------------------------------------------------------------


def test_xdg_paths(xdg: Path) -> None:
    assert config_dir() == xdg / "xdg-config" / "cockpit"
    assert data_dir() == xdg / "xdg-data" / "cockpit"
    assert config_path() == xdg / "xdg-config" / "cockpit" / "config.yaml"


def test_xdg_defaults_and_relative_values_are_ignored(
    xdg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/dir")
    home = xdg / "home"
    assert config_dir() == home / ".config" / "cockpit"
    assert data_dir() == home / ".local" / "share" / "cockpit"


def test_cockpit_config_env_overrides_the_path(xdg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKPIT_CONFIG", "~/my-cockpit.yaml")
    assert config_path() == xdg / "home" / "my-cockpit.yaml"
    # It must exist, since it was asked for explicitly.
    with pytest.raises(ConfigError, match=r"my-cockpit\.yaml: cannot read"):
        load_config()
    write(xdg / "home" / "my-cockpit.yaml", "theme: mine\n")
    assert load_config().theme == "mine"


# -- defaults -----------------------------------------------------------------------------


def test_defaults_without_a_file(xdg: Path) -> None:
    config = load_config()
    assert config == Config()
    assert config.store == xdg / "xdg-data" / "cockpit" / "cockpit.db"
    assert config.ssh == SshDefaults(
        user=None,
        identity_files=(),
        connect_timeout=10.0,
        keepalive_interval=15.0,
        keepalive_count=3,
        known_hosts=xdg / "xdg-data" / "cockpit" / "known_hosts",
    )
    assert config.concurrency == Concurrency(global_limit=16, per_server=4)
    assert config.retention == Retention(keep_per_target=20, failed_days=30)
    assert config.theme == "cockpit-dark"
    assert dict(config.keymap) == {}
    assert config.read_only is False


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "---\n", "ssh:\nconcurrency:\n"])
def test_empty_file_means_defaults(text: str, tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", text)
    assert load_config(path) == Config()


def test_a_full_file(tmp_path: Path, xdg: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        """\
store: ~/cockpit/cockpit.db
theme: cockpit-light
read_only: true
ssh:
  user: deploy
  identity_files: [~/.ssh/id_ed25519, /etc/cockpit/key]
  connect_timeout: 5
  keepalive_interval: 0
  keepalive_count: 5
  known_hosts: /var/lib/cockpit/known_hosts
concurrency:
  global_limit: 32
  per_server: 8
retention:
  keep_per_target: 5
  failed_days: 0
keymap:
  site.backup: b, ctrl+b
  app.quit: [q, ctrl+q]
  tasks.show: "?"
""",
    )
    config = load_config(path)
    home = xdg / "home"
    assert config.store == home / "cockpit" / "cockpit.db"
    assert config.theme == "cockpit-light"
    assert config.read_only is True
    assert config.ssh == SshDefaults(
        user="deploy",
        identity_files=(home / ".ssh" / "id_ed25519", Path("/etc/cockpit/key")),
        connect_timeout=5.0,
        keepalive_interval=0.0,
        keepalive_count=5,
        known_hosts=Path("/var/lib/cockpit/known_hosts"),
    )
    assert isinstance(config.ssh.connect_timeout, float)
    assert config.concurrency == Concurrency(32, 8)
    assert config.retention == Retention(5, 0)
    assert dict(config.keymap) == {
        "app.quit": "q,ctrl+q",
        "site.backup": "b,ctrl+b",
        "tasks.show": "?",
    }
    assert config.source == path


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.theme = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.keymap["a"] = "b"  # type: ignore[index]


# -- errors name file, line and key ----------------------------------------------------------


def test_unknown_key_suggests(tmp_path: Path) -> None:
    err = config_error("theme: x\nconcurency:\n  per_server: 2\n", tmp_path)
    assert (err.line, err.column, err.key_path) == (2, 1, "concurency")
    assert "did you mean 'concurrency'?" in err.reason
    assert str(err).startswith(f"{tmp_path / 'config.yaml'}:2:1: concurency: unknown key")


def test_unknown_nested_key(tmp_path: Path) -> None:
    err = config_error("ssh:\n  user: a\n  conect_timeout: 3\n", tmp_path)
    assert (err.line, err.key_path) == (3, "ssh.conect_timeout")
    assert "did you mean 'connect_timeout'?" in err.reason


@pytest.mark.parametrize(
    ("text", "path", "line", "reason"),
    [
        ("read_only: yes\n", "read_only", 1, "must be true or false"),
        ("theme: 3\n", "theme", 1, "must be a string"),
        ("theme: 'Bad Theme'\n", "theme", 1, "must be 1-63 characters"),
        ("ssh:\n  connect_timeout: ten\n", "ssh.connect_timeout", 2, "must be a number"),
        ("ssh:\n  connect_timeout: 0\n", "ssh.connect_timeout", 2, "must be at least"),
        ("ssh:\n  keepalive_count: 1.5\n", "ssh.keepalive_count", 2, "must be a whole number"),
        ("ssh:\n  keepalive_count: true\n", "ssh.keepalive_count", 2, "must be a whole number"),
        ("ssh:\n  user: 'root;id'\n", "ssh.user", 2, "must be 1-32"),
        ("ssh:\n  identity_files: [relative/key]\n", "ssh.identity_files[0]", 2, "absolute"),
        ("ssh: [1]\n", "ssh", 1, "must be a mapping"),
        ("store: relative.db\n", "store", 1, "must be an absolute path"),
        ("store: ~nosuchuser/x.db\n", "store", 1, "must be an absolute path"),
        ("concurrency:\n  global_limit: 0\n", "concurrency.global_limit", 2, "at least 1"),
        (
            "concurrency:\n  global_limit: 2\n  per_server: 4\n",
            "concurrency.per_server",
            3,
            "must not exceed global_limit",
        ),
        ("retention:\n  failed_days: -1\n", "retention.failed_days", 2, "at least 0"),
        ("keymap:\n  Site Backup: b\n", 'keymap["Site Backup"]', 2, "binding id"),
        ("keymap:\n  site.backup: 'b c'\n", 'keymap["site.backup"]', 2, "keys separated by commas"),
        ("keymap:\n  site.backup: ''\n", 'keymap["site.backup"]', 2, "keys separated by commas"),
        ("- a\n", "", 1, "must be a mapping"),
    ],
)
def test_wrong_values(text: str, path: str, line: int, reason: str, tmp_path: Path) -> None:
    err = config_error(text, tmp_path)
    assert err.key_path == path
    assert err.line == line
    assert reason in err.reason
    assert err.source == str(tmp_path / "config.yaml")


@pytest.mark.parametrize("key", ["password", "db_password", "api_key", "ssh_secret", "Token"])
def test_secrets_are_refused(key: str, tmp_path: Path) -> None:
    err = config_error(f"theme: x\n{key}: hunter2\n", tmp_path)
    assert err.line == 2
    assert "secrets go in the secrets file" in err.reason
    nested = config_error(f"ssh:\n  {key}: hunter2\n", tmp_path)
    assert nested.key_path == f"ssh.{key}"
    assert "secrets go in the secrets file" in nested.reason


def test_broken_yaml_is_a_config_error(tmp_path: Path) -> None:
    err = config_error("theme: x\ntheme: y\n", tmp_path)
    assert err.line == 2
    assert "duplicate key" in err.reason
    err = config_error("ssh:\n\tuser: x\n", tmp_path)
    assert err.line == 2


# -- overrides ---------------------------------------------------------------------------------


def test_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "config.yaml", "theme: from-file\nread_only: false\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(
        path, overrides={"store": Path("here.db"), "theme": "from-flag", "read_only": True}
    )
    assert config.store == tmp_path / "here.db"
    assert config.theme == "from-flag"
    assert config.read_only is True
    # None means "flag not given"
    assert load_config(path, overrides={"theme": None}).theme == "from-file"


def test_bad_overrides() -> None:
    with pytest.raises(ConfigError, match=r"^command line: theme: must be"):
        load_config(overrides={"theme": "Bad Theme"})
    with pytest.raises(ConfigError, match="did you mean 'theme'"):
        load_config(overrides={"themes": "x"})
    with pytest.raises(ConfigError, match="read_only: must be true or false"):
        load_config(overrides={"read_only": "yes"})


# -- dump -----------------------------------------------------------------------------------------


def test_dump_reads_back_equal(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        "ssh:\n  user: deploy\n  identity_files: [/k1]\nkeymap:\n  site.backup: b\n"
        "concurrency: {global_limit: 8, per_server: 2}\n",
    )
    config = load_config(path)
    text = dump_config(config)
    assert "user: deploy" in text
    again = write(tmp_path / "again.yaml", text)
    assert load_config(again) == config


def test_dump_of_defaults_reads_back_equal(tmp_path: Path) -> None:
    text = dump_config(load_config())
    assert text.startswith("store: ")
    assert load_config(write(tmp_path / "d.yaml", text)) == Config()


# -- the secrets file -----------------------------------------------------------------------------


def test_write_secret_file_is_0600_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "private" / "secrets.yaml"
    write_secret_file(path, b"db: hunter2\n")
    assert path.read_bytes() == b"db: hunter2\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    check_secret_file(path)
    assert read_secret_file(path) == b"db: hunter2\n"
    # Replacing keeps the mode, leaves no temp file behind.
    write_secret_file(path, b"db: other\n")
    assert path.read_bytes() == b"db: other\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["secrets.yaml"]


def test_write_secret_file_replaces_a_loose_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_secret_file(path, b"new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_failure_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "dir" / "secrets.yaml"
    write_secret_file(path, b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        write_secret_file(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["secrets.yaml"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o620, 0o602, 0o610])
def test_loose_modes_are_refused(mode: int, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(b"x")
    path.chmod(mode)
    with pytest.raises(SecretFileError) as info:
        check_secret_file(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert "chmod 600" in message
    with pytest.raises(SecretFileError):
        read_secret_file(path)


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_private_modes_are_accepted(mode: int, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(b"x")
    path.chmod(mode)
    check_secret_file(path)


def test_someone_elses_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(b"x")
    path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)
    else:
        monkeypatch.setattr(os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(SecretFileError, match=r"owned by uid \d+, not by you"):
        check_secret_file(path)


def test_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(SecretFileError, match="not a regular file"):
        check_secret_file(tmp_path)


def test_missing_secret_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_secret_file(tmp_path / "nope")


def test_write_secret_file_wants_bytes(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        write_secret_file(tmp_path / "s", "text")  # type: ignore[arg-type]

"""The real `cockpit` command, run as a user would, on a fresh data dir."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

COCKPIT = Path(sys.executable).parent / "cockpit"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HOME": str(tmp_path / "home"),
        "NO_COLOR": "1",
    }


def cockpit(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(COCKPIT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"cockpit {' '.join(args)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def test_version_and_help_list_every_command(env: dict[str, str]) -> None:
    from cockpit import __version__

    assert cockpit(env, "--version").stdout.strip() == f"cockpit, version {__version__}"
    text = cockpit(env, "--help").stdout
    for command in ("config", "inventory", "server"):
        assert command in text
    inv = cockpit(env, "inventory", "--help").stdout
    for command in ("export", "apply", "import-ssh-config", "import-ansible"):
        assert command in inv


def test_first_run_creates_private_store_with_localhost(
    env: dict[str, str], tmp_path: Path
) -> None:
    out = cockpit(env, "server", "list").stdout
    name, address, transport, _environment, _services, health = out.strip().split("\t")
    assert health == "unknown"
    assert (name, address, transport) == ("localhost", "127.0.0.1:22", "local")
    store = tmp_path / "data" / "cockpit" / "cockpit.db"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.parent.stat().st_mode) == 0o700
    # a second run does not register it twice
    assert cockpit(env, "server", "list").stdout == out


def test_store_option_and_config_commands(env: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "c.db"
    cockpit(env, "--store", str(other), "server", "list")
    assert other.exists()
    assert cockpit(env, "config", "path").stdout.strip() == str(
        tmp_path / "config" / "cockpit" / "config.yaml"
    )
    shown = yaml.safe_load(cockpit(env, "config", "show").stdout)
    assert shown["store"] == str(tmp_path / "data" / "cockpit" / "cockpit.db")


def test_inventory_apply_dry_run_prune_and_export(env: dict[str, str], tmp_path: Path) -> None:
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "servers:\n  - {name: web1, address: 192.0.2.10, services: [{kind: http, type: nginx}]}\n"
        "platforms:\n  - {name: p, server: web1, type: php, root: /var/lib/cockpit/p}\n"
        "sites:\n  - {domain: a.example, platform: p, aliases: [www.a.example]}\n"
    )
    dry = cockpit(env, "inventory", "apply", str(inv), "--dry-run").stdout
    assert "3 changes" in dry and "+ site a.example" in dry and "dry run" in dry
    assert "a.example" not in cockpit(env, "inventory", "export").stdout
    cockpit(env, "inventory", "apply", str(inv))
    again = cockpit(env, "inventory", "apply", str(inv)).stdout
    assert again.startswith("0 changes")
    assert "not in the file and kept" in again  # localhost is kept without --prune
    exported = tmp_path / "out.yaml"
    cockpit(env, "inventory", "export", str(exported))
    assert cockpit(env, "inventory", "apply", str(exported)).stdout.startswith("0 changes")
    pruned = cockpit(env, "inventory", "apply", str(inv), "--prune").stdout
    assert "- server localhost" in pruned
    assert [line.split("\t")[0] for line in cockpit(env, "server", "list").stdout.splitlines()] == [
        "web1"
    ]


def test_broken_file_changes_nothing_and_names_the_cause(
    env: dict[str, str], tmp_path: Path
) -> None:
    before = cockpit(env, "inventory", "export").stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        'servers:\n  - {name: ok, address: 192.0.2.1}\n  - {name: evil, address: "a.example\\nb"}\n'
    )
    result = cockpit(env, "inventory", "apply", str(bad), check=False)
    assert result.returncode == 2
    assert f"{bad}:3:18: servers[1].address: must not contain whitespace" in result.stderr
    assert "Traceback" not in result.stderr
    assert cockpit(env, "inventory", "export").stdout == before


def test_unreadable_store_location_is_a_clear_error(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = cockpit(env, "--store", str(blocker / "sub" / "c.db"), "server", "list", check=False)
    assert result.returncode == 3
    assert "cannot create the store directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_import_ssh_config(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host web2\n  HostName 192.0.2.20\n  Port 2200\n  User deploy\nHost *.wild\n  User x\n"
    )
    result = cockpit(env, "inventory", "import-ssh-config", str(config))
    assert "+ server web2" in result.stdout
    assert "skipped" in result.stderr
    assert "web2\t192.0.2.20:2200" in cockpit(env, "server", "list").stdout

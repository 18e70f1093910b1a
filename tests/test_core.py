"""The core facade on a real store: the embedded default, and server verify recorded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cockpit.config import load_config
from cockpit.core import Cockpit
from cockpit.model import Health, Server, Transport

COCKPIT = Path(sys.executable).parent / "cockpit"


def write_config(tmp_path: Path, **ssh: object) -> Path:
    lines = [f"store: {tmp_path / 'cockpit.db'}"]
    if ssh:
        lines.append("ssh:")
        for key, value in ssh.items():
            lines.append(f"  {key}: {value}")
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with no ~/.ssh: only what the test configures is trusted."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return home


async def test_new_store_registers_this_machine_once(tmp_path: Path, home: Path) -> None:
    config = load_config(write_config(tmp_path))
    async with await Cockpit.open(config) as cockpit:
        assert cockpit.created
        [server] = await cockpit.servers()
        assert (server.name, server.transport) == ("localhost", Transport.LOCAL)
        assert (await cockpit.server_health())["localhost"].health is Health.UNKNOWN
    async with await Cockpit.open(config) as cockpit:
        assert not cockpit.created
        assert len(await cockpit.servers()) == 1


async def test_verify_local_server_records_facts(tmp_path: Path, home: Path) -> None:
    config = load_config(write_config(tmp_path))
    async with await Cockpit.open(config) as cockpit:
        root = tmp_path / "root"
        await cockpit.add_server(
            Server(name="here", address="127.0.0.1", transport="local", root=str(root))
        )
        facts = await cockpit.verify_server("here")
        assert facts.ok, facts.reason
        health = await cockpit.health_of("here")
        assert health is not None and health.health is Health.OK and health.reason == ""
        assert health.facts["cpus"] == os.cpu_count()
        assert (root / "platforms").is_dir()


async def test_verify_over_ssh_and_unreachable_keeps_facts(
    tmp_path: Path, home: Path, fleet
) -> None:
    [host] = fleet.take(1)
    config = load_config(
        write_config(
            tmp_path,
            identity_files=f"[{host.client_key}]",
            known_hosts=host.known_hosts,
            connect_timeout=3,
        )
    )
    async with await Cockpit.open(config) as cockpit:
        root = fleet.fresh_root(host).root
        await cockpit.add_server(
            Server(name="tb", address=host.address, port=host.port, user=host.user, root=str(root))
        )
        facts = await cockpit.verify_server("tb")
        assert facts.ok, facts.reason
        first = await cockpit.health_of("tb")
        assert first is not None and first.health is Health.OK
        with fleet.stopped(host):
            await cockpit.verify_server("tb")
        after = await cockpit.health_of("tb")
        assert after is not None and after.health is Health.UNREACHABLE
        assert after.reason  # says why, e.g. connection refused
        assert after.facts["cpus"] == first.facts["cpus"]  # what was learnt is kept
        assert after.checked_at is not None and first.checked_at is not None
        assert after.checked_at > first.checked_at


async def test_unknown_host_key_is_a_failed_verify_that_says_why(
    tmp_path: Path, home: Path, fleet
) -> None:
    [host] = fleet.take(1)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = load_config(
        write_config(tmp_path, identity_files=f"[{host.client_key}]", known_hosts=empty)
    )
    async with await Cockpit.open(config) as cockpit:
        await cockpit.add_server(
            Server(
                name="tb", address=host.address, port=host.port, user=host.user, root=str(host.root)
            )
        )
        facts = await cockpit.verify_server("tb")
        assert not facts.ok
        health = await cockpit.health_of("tb")
        assert health is not None and health.health is not Health.OK
        assert "host key" in health.reason.lower()
        assert empty.read_text() == ""  # nothing was trusted behind the admin's back


def test_cli_verify_unknown_server_is_usage_error(tmp_path: Path, home: Path) -> None:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path / "d"),
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
    }
    result = subprocess.run(
        [str(COCKPIT), "server", "verify", "nope"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "no server nope" in result.stderr

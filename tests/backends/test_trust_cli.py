"""`cockpit server trust NAME`: fetch, show as ssh-keygen does, record only when confirmed."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import asyncssh
import pytest
from click.testing import CliRunner, Result
from testbed import TestHost

from cockpit.backends.hostkeys import KnownHosts
from cockpit.backends.ssh import SshPool
from cockpit.cli import main
from cockpit.config import load_config
from cockpit.core import Cockpit
from cockpit.model import Server


@pytest.fixture
def setup(tmp_path: Path, testhost: TestHost, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A config (own known_hosts in tmp), a store holding the test host as 'web1'."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # no ~/.ssh/known_hosts, no ~/.ssh/config
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    known = tmp_path / "data" / "cockpit" / "known_hosts"
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        f"store: {tmp_path / 'cockpit.db'}\n"
        f"ssh:\n  known_hosts: {known}\n  identity_files: [{testhost.client_key}]\n"
    )

    async def add() -> None:
        cockpit = await Cockpit.open(load_config(config_file))
        try:
            await cockpit.add_server(
                Server(
                    name="web1", address=testhost.address, port=testhost.port, user=testhost.user
                )
            )
        finally:
            await cockpit.close()

    asyncio.run(add())
    return config_file, known


def trust(config_file: Path, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(
        main, ["--config", str(config_file), "server", "trust", *args], input=stdin
    )


def test_trust_with_yes_records_and_prints_ssh_keygen_format(
    setup: tuple[Path, Path], testhost: TestHost
) -> None:
    config_file, known = setup
    result = trust(config_file, "web1", "--yes")
    assert result.exit_code == 0, result.output
    assert known.stat().st_mode & 0o777 == 0o600
    # the line printed is byte-identical to ssh-keygen's view of the recorded entry
    keygen = subprocess.run(
        ["ssh-keygen", "-lf", str(known)], capture_output=True, text=True, check=True
    )
    assert keygen.stdout.splitlines()[0] in result.output.splitlines()
    pub = testhost.host_key_path.with_name(testhost.host_key_path.name + ".pub")
    host_fp = subprocess.run(
        ["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True
    )
    assert host_fp.stdout.split()[1] == testhost.fingerprint
    assert (
        f"256 {testhost.fingerprint} [{testhost.address}]:{testhost.port} (ED25519)"
        in result.output
    )
    # and the transport now connects with the recorded key
    config = load_config(config_file)

    async def connect() -> bool:
        pool = SshPool(config, ssh_config=[])
        try:
            server = Server(
                name="web1", address=testhost.address, port=testhost.port, user=testhost.user
            )
            return (await pool.transport(server).run(["true"])).ok
        finally:
            await pool.close()

    assert asyncio.run(connect())
    # trusting again changes nothing
    before = known.read_bytes()
    again = trust(config_file, "web1", "--yes")
    assert again.exit_code == 0 and "already trusted" in again.output
    assert known.read_bytes() == before


def test_no_terminal_and_no_yes_refuses(setup: tuple[Path, Path]) -> None:
    config_file, known = setup
    result = trust(config_file, "web1", stdin="y\n")
    assert result.exit_code == 2
    assert "--yes" in result.output
    assert not known.exists()


def test_hashed_entry(setup: tuple[Path, Path], testhost: TestHost) -> None:
    config_file, known = setup
    result = trust(config_file, "web1", "--yes", "--hash")
    assert result.exit_code == 0, result.output
    assert known.read_text().startswith("|1|")
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[{testhost.address}]:{testhost.port}", "-f", str(known)],
        capture_output=True,
    )
    assert found.returncode == 0


def test_changed_key_is_refused_and_nothing_rewritten(
    setup: tuple[Path, Path], testhost: TestHost
) -> None:
    config_file, known = setup
    other = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
    known.parent.mkdir(parents=True, exist_ok=True)
    known.write_text(f"[{testhost.address}]:{testhost.port} " + other.export_public_key().decode())
    known.chmod(0o600)
    before = known.read_bytes()
    result = trust(config_file, "web1", "--yes")
    assert result.exit_code == 1
    assert "CHANGED" in result.output
    assert testhost.fingerprint in result.output
    assert (
        KnownHosts(known, extra=[]).lookup(testhost.address, testhost.port).known_fingerprints()[0]
        in result.output
    )
    assert known.read_bytes() == before


def test_unknown_server_and_local_server(setup: tuple[Path, Path]) -> None:
    config_file, _ = setup
    assert trust(config_file, "nope").exit_code == 2
    local = trust(config_file, "localhost", "--yes")
    assert local.exit_code == 2 and "local transport" in local.output


def test_unreachable_server_fails(setup: tuple[Path, Path], tmp_path: Path) -> None:
    config_file, known = setup

    async def add() -> None:
        cockpit = await Cockpit.open(load_config(config_file))
        try:
            await cockpit.add_server(Server(name="gone", address="127.0.0.254", port=1))
        finally:
            await cockpit.close()

    asyncio.run(add())
    result = trust(config_file, "gone", "--yes")
    assert result.exit_code == 1
    assert not known.exists()


def test_trust_goes_through_the_core(setup: tuple[Path, Path], testhost: TestHost) -> None:
    """The command's steps are Cockpit methods: fetch (judged), then record when confirmed."""
    from cockpit.backends.transport import HostKeyError

    config_file, known = setup
    config = load_config(config_file)

    async def steps() -> None:
        async with await Cockpit.open(config) as cockpit:
            offer = await cockpit.fetch_host_key("web1")
            assert offer.server == "web1" and not offer.trusted and not offer.changed
            assert offer.description == (
                f"256 {testhost.fingerprint} [{testhost.address}]:{testhost.port} (ED25519)"
            )
            assert not known.exists()  # fetching records nothing
            assert await cockpit.trust_host_key(offer) is True
            again = await cockpit.fetch_host_key("web1")
            assert again.trusted and await cockpit.trust_host_key(again) is False
            # a different key for the same host is refused and nothing is rewritten
            before = known.read_bytes()
            other = asyncssh.generate_private_key("ssh-ed25519").convert_to_public()
            forged = type(offer)(offer.server, other, offer.host, offer.port, None)
            with pytest.raises(HostKeyError, match="CHANGED"):
                await cockpit.trust_host_key(forged)
            assert known.read_bytes() == before

    asyncio.run(steps())


def _cockpit_in_a_terminal(config_file: Path, answer: bytes) -> tuple[int, str]:
    """The installed ``cockpit server trust web1`` on a pseudo-terminal, ``answer`` typed
    once its question is on the screen; (exit code, what the terminal showed)."""
    cockpit_bin = Path(sys.executable).with_name("cockpit")
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(
            str(cockpit_bin),
            [str(cockpit_bin), "--config", str(config_file), "server", "trust", "web1"],
        )
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if not answered and b"Trust this key for web1?" in shown:
                os.write(fd, answer)
                answered = True
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    assert answered, shown.decode(errors="replace")
    return os.waitstatus_to_exitcode(status), shown.decode(errors="replace")


@pytest.mark.parametrize("answer", [b"n\r", b"\r", b"nope\rn\r"])
def test_the_question_on_a_terminal_records_nothing_unless_answered_yes(
    setup: tuple[Path, Path], testhost: TestHost, answer: bytes
) -> None:
    config_file, known = setup
    code, shown = _cockpit_in_a_terminal(config_file, answer)
    assert code == 1, shown
    assert testhost.fingerprint in shown and "[y/N]" in shown
    assert "not trusted; nothing was recorded" in shown
    assert not known.exists() or testhost.fingerprint not in _fingerprints(known)


def test_the_question_on_a_terminal_answered_yes_records_the_key(
    setup: tuple[Path, Path], testhost: TestHost
) -> None:
    config_file, known = setup
    code, shown = _cockpit_in_a_terminal(config_file, b"y\r")
    assert code == 0, shown
    assert "trusted; recorded" in shown
    assert testhost.fingerprint in _fingerprints(known)


def _fingerprints(known: Path) -> str:
    return subprocess.run(
        ["ssh-keygen", "-lf", str(known)], capture_output=True, text=True, check=False
    ).stdout

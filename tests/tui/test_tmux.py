"""The installed ``cockpit`` command in a real terminal: tmux at 80x24, keys by send-keys,
the screen read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from testbed import TestHost

COCKPIT = Path(sys.executable).parent / "cockpit"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Terminal:
    """One tmux session on a private server socket, running one command."""

    def __init__(self, socket: str, session: str) -> None:
        self.socket = socket
        self.session = session

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=30,
        )

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        exports = [f"{k}={v}" for k, v in env.items()]
        self.tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "80",
            "-y",
            "24",
            "-s",
            self.session,
            "env",
            *exports,
            *argv,
        )
        # Keep the pane after the program exits, to read its exit status.
        self.tmux("set-option", "-t", self.session, "remain-on-exit", "on", check=False)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False).stdout

    def wait_for(self, predicate: Callable[[str], bool], what: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{text}")

    def dead(self) -> bool:
        result = self.tmux("display-message", "-p", "-t", self.session, "#{pane_dead}", check=False)
        return result.returncode != 0 or result.stdout.strip() == "1"

    def exit_status(self) -> str:
        result = self.tmux(
            "display-message", "-p", "-t", self.session, "#{pane_dead_status}", check=False
        )
        return result.stdout.strip()

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal(f"cockpit-test-{uuid.uuid4().hex[:12]}", "cockpit")
    try:
        yield term
    finally:
        term.kill()


def base_env(home: Path) -> dict[str, str]:
    env = {
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    return env


def stop_worker(env: dict[str, str], *options: str) -> None:
    """Stop the worker the TUI started (it outlives the TUI by design)."""
    subprocess.run(
        [str(COCKPIT), *options, "worker", "stop"],
        env=env,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def worker_stopped(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a cockpit whose detached worker is stopped after the test."""
    env = base_env(tmp_path)
    try:
        yield env
    finally:
        stop_worker(env)


def test_installed_cockpit_opens_on_the_overview_switches_views_and_quits(
    terminal: Terminal, tmp_path: Path, worker_stopped: dict[str, str]
) -> None:
    assert COCKPIT.exists(), f"the cockpit command is not installed next to {sys.executable}"
    terminal.start([str(COCKPIT)], worker_stopped)
    screen = terminal.wait_for(
        lambda s: "overview [" in s and "health unknown" in s, "the overview, read"
    )
    assert " 8  dashboard " in screen and " 1  servers " in screen  # the keys to go on
    assert "STATE▲" in screen  # problems first
    assert (tmp_path / "data" / "cockpit" / "cockpit.db").exists()
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    terminal.send("1")
    screen = terminal.wait_for(lambda s: "overview › servers" in s, "the servers view")
    terminal.wait_for(lambda s: "127.0.0.1:22" in s and "localhost" in s, "localhost listed")
    terminal.send(":", "sites", "Enter")  # typed in one go, as a user types it
    terminal.wait_for(
        lambda s: "overview › servers › sites" in s and "no sites" in s, "the sites view"
    )
    terminal.send("?")
    terminal.wait_for(lambda s: "Keys of sites" in s, "the help")
    terminal.send("Escape")
    terminal.wait_for(lambda s: "Keys of sites" not in s, "the help to close")
    terminal.send("Escape")
    terminal.wait_for(lambda s: "› sites" not in s and "localhost" in s, "going back")
    terminal.send("Space")
    terminal.wait_for(lambda s: " 1 marked " in s, "a mark")
    terminal.send("8")
    terminal.wait_for(lambda s: "overview › servers › dashboard" in s, "the dashboard")
    terminal.send("0")
    terminal.wait_for(
        lambda s: "›" not in s.splitlines()[0] and "overview [" in s, "back to the overview"
    )
    terminal.send("q")
    terminal.wait_for(lambda s: terminal.dead(), "cockpit to exit", timeout=10)
    assert terminal.exit_status() in ("0", "")


def test_installed_cockpit_queues_a_task_and_shows_its_batch(
    terminal: Terminal, tmp_path: Path, worker_stopped: dict[str, str]
) -> None:
    """From the real command: the TUI starts a worker, ``p`` pings this machine (the
    cursor row), one confirmation, the batch's progress until it is done."""
    terminal.start([str(COCKPIT)], worker_stopped)
    terminal.wait_for(lambda s: "overview [" in s and " worker " in s, "a worker to run")
    terminal.send("1", "p")  # the servers, then ping the cursor row (this machine)
    terminal.wait_for(lambda s: "server.ping 1 server?" in s, "the confirmation")
    terminal.send("Enter")
    screen = terminal.wait_for(lambda s: "1 task: 1 ok" in s, "the ping to succeed")
    assert "overview › servers › batch 1" in screen
    assert "100% done" in screen
    assert "server.ping" in screen and "localhost" in screen
    terminal.send("6")
    terminal.wait_for(lambda s: "tasks [1]" in s and "succeeded" in s, "the tasks view")
    terminal.send("q")
    terminal.wait_for(lambda s: terminal.dead(), "cockpit to exit", timeout=10)
    status = subprocess.run(
        [str(COCKPIT), "worker", "status"],
        env=worker_stopped,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert status.returncode == 0, status.stdout  # the worker outlives the TUI


def test_installed_cockpit_with_store_read_only_and_no_color(
    terminal: Terminal, tmp_path: Path
) -> None:
    store = tmp_path / "elsewhere" / "cockpit.db"
    env = base_env(tmp_path) | {"NO_COLOR": "1"}
    terminal.start([str(COCKPIT), "--store", str(store), "--read-only"], env)
    screen = terminal.wait_for(lambda s: "health unknown" in s, "the overview")
    assert "READ-ONLY" in screen
    assert "? unknown" in screen and "· info" in screen  # states as words, not colours
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert store.exists()
    assert not (tmp_path / "data" / "cockpit" / "cockpit.db").exists()
    terminal.send("1")
    terminal.wait_for(lambda s: "localhost" in s and "127.0.0.1:22" in s, "the servers")
    terminal.send("/", "nothing-matches")
    terminal.wait_for(lambda s: "no servers" in s, "the filtered list")
    terminal.send("Enter", "t")  # keep the filter; t (a task) is refused: read-only
    terminal.wait_for(lambda s: "is disabled" in s, "the refusal")
    terminal.send("C-c")
    terminal.wait_for(lambda s: terminal.dead(), "cockpit to exit", timeout=10)


def test_installed_cockpit_refuses_a_bad_theme(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(COCKPIT), "--theme", "no-such-theme"],
        env=base_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode != 0
    assert "no-such-theme" in result.stderr
    assert "cockpit-dark" in result.stderr and "cockpit-mono" in result.stderr


def test_installed_cockpit_over_ssh_at_80x24(
    terminal: Terminal, tmp_path: Path, testhost: TestHost
) -> None:
    """An admin's usual way in: ``ssh -t`` to the machine, then ``cockpit`` in the remote
    terminal (its size and keys travel through sshd's pseudo-terminal)."""
    host = testhost.with_user("root")
    env = base_env(tmp_path)
    remote = [f"{k}={v}" for k, v in env.items() if k != "PATH"]
    argv = host.ssh_argv("env", *remote, str(COCKPIT), "--read-only")
    argv.insert(1, "-tt")  # a pseudo-terminal on the server, as `ssh -t` gives
    terminal.start(argv, {"TERM": "xterm-256color", "PATH": env["PATH"]})
    screen = terminal.wait_for(
        lambda s: "overview [" in s and "health unknown" in s, "the overview over ssh", 60
    )
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    assert "read-only" in screen.lower()
    terminal.send("1")
    terminal.wait_for(lambda s: "overview › servers" in s and "localhost" in s, "the servers")
    terminal.send("/", "loc", "Enter", "Down", "Up")  # arrows arrive as escape sequences
    terminal.wait_for(lambda s: "localhost" in s and "loc" in s, "the filtered list")
    terminal.send("q")
    terminal.wait_for(lambda s: terminal.dead(), "cockpit and ssh to exit", timeout=20)
    assert terminal.exit_status() in ("0", "")

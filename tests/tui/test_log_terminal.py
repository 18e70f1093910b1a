"""The installed ``cockpit`` in a pseudo-terminal: what the log view writes to the terminal,
byte for byte. A remote line's escape sequences (a clipboard write, a window title, a
hyperlink) never reach it; ``y`` does write OSC 52, with the sanitised lines."""

from __future__ import annotations

import asyncio
import base64
import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from test_log import seed_task

from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.textsafe import sanitize_line

COCKPIT = Path(sys.executable).parent / "cockpit"

pytestmark = pytest.mark.slow

HOSTILE = [
    ("stdout", "before the trap"),
    ("stdout", "clipboard \x1b]52;c;ZXZpbCBwYXlsb2Fk\x07 write"),
    ("stderr", "title \x1b]0;pwned-title\x07 and \x1b]2;pwned-too\x1b\\ set"),
    ("stdout", "link \x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\ here"),
    ("stdout", "report \x1b[6n and \x1b[21t please"),
    ("stdout", "c1 \x9d0;pwned-c1\x9c osc"),
    ("stdout", "[bold red]literal[/] markup"),
    ("stdout", "after the trap"),
]
NEVER = [
    b"ZXZpbCBwYXlsb2Fk",
    b"pwned-title",
    b"pwned-too",
    b"pwned-c1",
    b"evil.example",
    b"\x1b[6n",
    b"\x1b[21t",
]


class Pty:
    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    def wait_for(self, pattern: bytes, timeout: float = 30.0) -> re.Match[bytes]:
        compiled = re.compile(pattern, re.DOTALL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = compiled.search(self.output)
            if found:
                return found
            if select.select([self.master], [], [], 0.05)[0]:
                try:
                    self.output += os.read(self.master, 1 << 16)
                except OSError:
                    break
        raise AssertionError(f"{pattern!r} never showed; the last output: {self.output[-400:]!r}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_the_terminal_gets_osc52_from_y_and_never_a_remote_escape(
    tmp_path: Path,
) -> None:
    assert COCKPIT.exists(), f"the cockpit command is not installed next to {sys.executable}"
    store = tmp_path / "data" / "cockpit" / "cockpit.db"

    async def build() -> None:
        async with await Cockpit.open(Config(store=store)) as cockpit:
            await seed_task(cockpit, HOSTILE)

    asyncio.run(build())
    env = {
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    # read-only: the TUI starts no task worker (nothing outlives the test)
    term = Pty([str(COCKPIT), "--store", str(store), "--read-only"], env, (80, 24))
    try:
        term.wait_for(rb"localhost")
        term.send(b":log 1\r")
        term.wait_for(rb"after the trap")
        term.wait_for(rb"ended")
        term.send(b"y")
        found = term.wait_for(rb"\x1b\]52;c;([A-Za-z0-9+/=]*)\x07")
        copied = base64.b64decode(found.group(1)).decode("utf-8")
        assert copied == "".join(sanitize_line(text) + "\n" for _, text in HOSTILE)
        assert "[bold red]literal[/] markup" in copied
        term.wait_for(rb"copied 8 lines")
        shown = term.output
        for needle in NEVER:
            assert needle not in shown, needle
        # the only OSC 52 the terminal got is ours
        assert shown.count(b"\x1b]52;") == 1
    finally:
        term.close()

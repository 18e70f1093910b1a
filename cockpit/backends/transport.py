"""The transport interface: how Cockpit runs things on a server.

Two implementations share it: ``local`` (this machine, asyncio subprocesses) and
``ssh`` (asyncssh, one pooled connection per server). Both obey the same rules:

- No user data ever goes into a command line. A script runs as ``/bin/sh -s`` with the
  script on stdin, preceded by a ``set --`` line that carries its arguments, each
  quoted for POSIX ``sh`` (the login shell, which may be tcsh, only ever sees the
  fixed words ``/bin/sh -s``). An argv list runs through the same door as
  ``exec "$@"``. NUL bytes in an argument are refused.
- Output is read in chunks and split into lines here (asyncssh's per-line reads are
  slow), each line bounded in length with a visible truncation marker.
- The outcome is an exit code, or *unknown* when the connection dropped before the
  remote side reported one: unknown is never success.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from cockpit.model import Server

#: Longest line delivered as is; the rest of a longer line is cut and marked.
MAX_LINE: Final = 64 * 1024
TRUNCATED_MARK: Final = " …[line truncated]"


class Stream(enum.StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


class Line(NamedTuple):
    """One line of a command's output (without its newline), decoded as UTF-8.

    A named tuple rather than a dataclass: one is built per output line, and at
    hundreds of MB/s the construction cost is what limits throughput."""

    stream: Stream
    text: str
    truncated: bool = False


LineHandler = Callable[[Line], None]


class TransportError(Exception):
    """The transport could not do what was asked; ``transient`` says whether a retry may help."""

    transient: bool = False


class ConnectError(TransportError):
    """The server could not be reached (refused, timed out, no route): worth a retry."""

    transient = True


class AuthError(TransportError):
    """The server refused our credentials. Never retried."""


class HostKeyError(TransportError):
    """The server's host key is unknown or changed. Never retried, never rewritten."""

    def __init__(self, message: str, *, presented: str | None = None, known: str | None = None):
        super().__init__(message)
        self.presented = presented  # SHA256 fingerprint the server showed
        self.known = known  # SHA256 fingerprint we had on record, if any


class ArgumentError(TransportError):
    """An argument cannot be passed safely (a NUL byte)."""


@dataclass(frozen=True, slots=True)
class Result:
    """How a command ended. ``exit_code`` is None when the outcome is unknown."""

    exit_code: int | None
    signal: str | None = None
    reason: str = ""  # why the outcome is unknown, or a note from the transport
    stdout: list[str] = field(default_factory=list)  # kept only when asked (capture=True)
    stderr: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def unknown(self) -> bool:
        return self.exit_code is None


def sh_quote(arg: str) -> str:
    """Quote one argument for POSIX sh (never for the login shell: see the module doc)."""
    if "\x00" in arg:
        raise ArgumentError("an argument contains a NUL byte, which no command can receive")
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def script_with_args(script: str, args: Sequence[str]) -> bytes:
    """The stdin of ``/bin/sh -s``: a ``set --`` line carrying ``args``, then the script."""
    if "\x00" in script:
        raise ArgumentError("the script contains a NUL byte")
    head = "set -- " + " ".join(sh_quote(a) for a in args) + "\n" if args else "set --\n"
    return (head + script + ("" if script.endswith("\n") else "\n")).encode("utf-8")


class LineSplitter:
    """Splits chunks of bytes into bounded lines; feed chunks, then ``close()``.

    A line longer than ``max_line`` bytes is cut there, marked, and the rest of it up to
    the next newline dropped, whether it arrives whole in one chunk or over many.
    """

    def __init__(self, stream: Stream, handler: LineHandler, *, max_line: int = MAX_LINE) -> None:
        self.stream = stream
        self.handler = handler
        self.max_line = max_line
        self._buffer = bytearray()
        self._dropping = False  # inside an over-long line, past its cut

    def feed(self, chunk: bytes) -> None:
        if self._dropping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            self._dropping = False
            chunk = chunk[newline + 1 :]
        if self._buffer:
            self._buffer += chunk
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = chunk
        parts = data.split(b"\n")
        tail = parts.pop()
        max_line, stream, handler = self.max_line, self.stream, self.handler
        for raw in parts:
            if len(raw) > max_line:
                self._emit(raw[:max_line], truncated=True)
                continue
            if raw[-1:] == b"\r":
                raw = raw[:-1]
            handler(Line(stream, raw.decode("utf-8", errors="replace"), False))
        if len(tail) > max_line:
            self._emit(tail[:max_line], truncated=True)
            self._dropping = True
        elif tail:
            self._buffer += tail

    def close(self) -> None:
        if self._buffer and not self._dropping:
            self._emit(bytes(self._buffer), truncated=False)
        self._buffer.clear()
        self._dropping = False

    def _emit(self, raw: bytes, *, truncated: bool) -> None:
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        text = raw.decode("utf-8", errors="replace")
        if truncated:
            text += TRUNCATED_MARK
        self.handler(Line(self.stream, text, truncated))


class Transport(abc.ABC):
    """Runs scripts and moves files on one server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    @abc.abstractmethod
    async def run_script(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run ``script`` with ``/bin/sh -s``, ``$1…`` set to ``args``.

        ``sudo`` runs it as root through ``sudo -n`` when the login user is not root.
        Each output line goes to ``on_line``; with ``capture`` the lines are also kept
        in the result. A ``timeout`` kills the remote process tree and returns an
        unknown outcome.
        """

    async def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run one program with its argument list (no shell parses any of it)."""
        if not argv:
            raise ArgumentError("an empty argv")
        return await self.run_script(
            'exec "$@"', argv, sudo=sudo, on_line=on_line, capture=capture, timeout=timeout
        )

    @abc.abstractmethod
    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        """Write ``data`` to ``remote_path`` atomically (temp file, fsync, rename), with ``mode``."""

    @abc.abstractmethod
    async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
        """Read the whole of ``remote_path``."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection(s)."""

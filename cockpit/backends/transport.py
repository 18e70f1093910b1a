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
from functools import partial
from itertools import repeat
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
#: Takes consecutive lines of one stream at once (a truncated one ends with the mark).
LinesHandler = Callable[[Stream, list[str]], None]
_new_line = partial(tuple.__new__, Line)


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

    The lines of a chunk are decoded and split in one go (one ``bytes.decode`` and one
    ``str.split`` for all of them) and handed on together: to ``on_lines`` as one list
    of texts, and to ``on_line`` one :class:`Line` at a time. A consumer that can take
    batches should: building an object and calling a function per line is what limits
    throughput at hundreds of MB/s.
    """

    __slots__ = ("_buffer", "_dropping", "_line", "_lines", "_safe", "max_line", "stream")

    def __init__(
        self,
        stream: Stream,
        on_line: LineHandler | None = None,
        *,
        max_line: int = MAX_LINE,
        on_lines: LinesHandler | None = None,
    ) -> None:
        self.stream = stream
        self.max_line = max_line
        self._line = on_line
        self._lines = on_lines
        # A decoded line of at most this many characters cannot exceed ``max_line`` bytes
        # (a character, or the U+FFFD replacing bad bytes, stands for at most 4 bytes).
        self._safe = max_line // 4
        self._buffer = bytearray()
        self._dropping = False  # inside an over-long line, past its cut

    def feed(self, chunk: bytes) -> None:
        if self._dropping:
            newline = chunk.find(b"\n")
            if newline < 0:
                return
            self._dropping = False
            chunk = chunk[newline + 1 :]
        last = chunk.rfind(b"\n")
        if last < 0:
            self._keep(chunk)
            return
        end = last + 1
        if self._buffer:
            self._buffer += chunk[:end]
            data = bytes(self._buffer)
            self._buffer.clear()
        else:
            data = chunk if end == len(chunk) else chunk[:end]
        self._split(data)
        if end < len(chunk):
            self._keep(chunk[end:])

    def close(self) -> None:
        if self._buffer and not self._dropping:
            raw = bytes(self._buffer)
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            self._deliver([raw.decode("utf-8", errors="replace")], ())
        self._buffer.clear()
        self._dropping = False

    def _keep(self, partial: bytes) -> None:
        """Hold the start of a line until its newline comes; cut it if it grows too long."""
        self._buffer += partial
        if len(self._buffer) > self.max_line:
            raw = bytes(self._buffer[: self.max_line])
            self._buffer.clear()
            self._dropping = True
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            self._deliver([raw.decode("utf-8", errors="replace") + TRUNCATED_MARK], (0,))

    def _split(self, data: bytes) -> None:
        """Deliver the complete lines of ``data`` (which ends with a newline)."""
        texts = data.decode("utf-8", errors="replace").split("\n")
        texts.pop()  # the empty text after the last newline
        if len(data) > self.max_line and max(map(len, texts)) > self._safe:
            self._split_long(data)
            return
        if b"\r" in data:  # CRLF: drop one trailing CR of each line
            texts = [t[:-1] if t[-1:] == "\r" else t for t in texts]
        self._deliver(texts, ())

    def _split_long(self, data: bytes) -> None:
        """The exact path for a block holding a line that may exceed ``max_line`` bytes."""
        max_line = self.max_line
        texts: list[str] = []
        cut: list[int] = []
        parts = data.split(b"\n")
        parts.pop()
        for raw in parts:
            long = len(raw) > max_line
            if long:
                raw = raw[:max_line]
            if raw[-1:] == b"\r":
                raw = raw[:-1]
            text = raw.decode("utf-8", errors="replace")
            if long:
                cut.append(len(texts))
                text += TRUNCATED_MARK
            texts.append(text)
        self._deliver(texts, cut)

    def _deliver(self, texts: list[str], cut: Sequence[int]) -> None:
        if self._lines is not None:
            self._lines(self.stream, texts)
        if (handler := self._line) is not None:
            if cut:
                for i, text in enumerate(texts):
                    handler(Line(self.stream, text, i in cut))
                return
            # Lines built and handed over by C loops (no Python frame per line but the handler's).
            for line in map(_new_line, zip(repeat(self.stream), texts, repeat(False))):
                handler(line)


def splitters(
    on_line: LineHandler | None,
    on_lines: LinesHandler | None,
    stdout: list[str] | None,
    stderr: list[str] | None,
) -> tuple[LineSplitter, LineSplitter]:
    """The stdout and stderr splitters of one command: lines go to ``on_lines``, then
    to ``on_line``, and are kept in ``stdout``/``stderr`` when those are given."""

    def batch(kept: list[str] | None) -> LinesHandler | None:
        if kept is None:
            return on_lines
        keep = kept.extend
        if on_lines is None:
            return lambda _stream, texts: keep(texts)

        def both(stream: Stream, texts: list[str]) -> None:
            keep(texts)
            on_lines(stream, texts)

        return both

    return (
        LineSplitter(Stream.STDOUT, on_line, on_lines=batch(stdout)),
        LineSplitter(Stream.STDERR, on_line, on_lines=batch(stderr)),
    )


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
        on_lines: LinesHandler | None = None,
    ) -> Result:
        """Run ``script`` with ``/bin/sh -s``, ``$1…`` set to ``args``.

        ``sudo`` runs it as root through ``sudo -n`` when the login user is not root.
        Each output line goes to ``on_line`` as a :class:`Line`; ``on_lines`` takes them
        in batches instead (the stream and a list of texts, as they arrived: the fast
        way to consume a large output). With ``capture`` the lines are also kept in the
        result. A ``timeout`` kills the remote process tree and returns an unknown
        outcome.
        """

    async def run(
        self,
        argv: Sequence[str],
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
        on_lines: LinesHandler | None = None,
    ) -> Result:
        """Run one program with its argument list (no shell parses any of it)."""
        if not argv:
            raise ArgumentError("an empty argv")
        return await self.run_script(
            'exec "$@"',
            argv,
            sudo=sudo,
            on_line=on_line,
            capture=capture,
            timeout=timeout,
            on_lines=on_lines,
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

"""Streaming bytes from a script on one server into a script on another.

A clone or a migration to another server copies a site's files and its database dump
with no archive in between: :func:`pipe` runs a script on the source whose standard
output is a stream (``tar -c …``), a script on the destination whose standard input
takes it (``tar -x …``), and moves the bytes through this process in chunks, with
back-pressure both ways (a slow destination pauses the source's channel).

How a script reaches a server while its standard input stays free for the data: the
remote command is a fixed string that reads *one* line and evaluates it (the shell's
``read`` never reads past the newline), the same door the transports' uploads use.
That line holds the whole script and its ``set --`` arguments as a ``printf '%b'``
argument of safe characters and octal escapes, so no value is ever parsed by a shell
before the script's own ``set --`` line. Everything after the line is the data.

Both ends' standard error (and the destination's standard output) come back as lines
(sanitised by the callers' log writers); the outcome is each end's exit code, ``None``
when a connection dropped before it said (never success).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import asyncssh

from cockpit.backends.local import LocalTransport
from cockpit.backends.services.base import PRELUDE
from cockpit.backends.ssh import (
    STDIN_LINE_COMMAND,
    SUDO_STDIN_LINE_COMMAND,
    SshTransport,
)
from cockpit.backends.transport import (
    Line,
    LineHandler,
    LineSplitter,
    Result,
    Stream,
    Transport,
    TransportError,
    script_with_args,
)

__all__ = ["Piped", "pipe", "stdin_line"]

#: Size of the chunks read and written.
CHUNK: Final = 256 * 1024
#: A source's channel pauses when this much waits to be written to the destination.
HIGH_WATER: Final = 4 * CHUNK
_SOURCE: Final = "source"
_DEST: Final = "dest"
#: What the local end runs (the SSH end runs the transports' own STDIN_LINE_COMMAND).
_READ_LINE: Final = 'IFS= read -r l && eval "$l"'
_SAFE: Final = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _./,:=+@-"
)


def stdin_line(script: str, args: Sequence[str]) -> bytes:
    """The one line that makes ``sh -c 'read -r l && eval "$l"'`` run ``script``."""
    body = script_with_args(PRELUDE + script, args)
    escaped = "".join(chr(b) if b in _SAFE else f"\\0{b:03o}" for b in body)
    return f"eval \"$(printf '%b' '{escaped}')\"\n".encode("ascii")


@dataclass
class Piped:
    """How a pipe ended: each end's outcome and how many bytes went across."""

    source: Result
    dest: Result
    bytes: int = 0
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.source.ok and self.dest.ok


class _End:
    """One end of a pipe: a script running on a server with a byte stream to or from it."""

    def __init__(self, on_line: LineHandler | None, kept: list[str]) -> None:
        def line(item: Line) -> None:
            kept.append(item.text)
            if on_line is not None:
                on_line(item)

        self._err = LineSplitter(Stream.STDERR, line)
        self._out = LineSplitter(Stream.STDOUT, line)

    async def send(self, data: bytes) -> None:
        raise NotImplementedError

    async def close_input(self) -> None:
        raise NotImplementedError

    async def receive(self) -> bytes:
        raise NotImplementedError

    async def result(self) -> Result:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


# -- SSH ----------------------------------------------------------------------------------


class _SshSession(asyncssh.SSHClientSession[bytes]):
    def __init__(self, end: _SshEnd) -> None:
        self.end = end

    def connection_made(self, chan: Any) -> None:
        self.end.chan = chan

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.end.received(data, datatype == asyncssh.EXTENDED_DATA_STDERR)

    def eof_received(self) -> bool:
        self.end.queue.put_nowait(b"")
        return False

    def exit_status_received(self, status: int) -> None:
        self.end.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.end.exit_signal = signal

    def pause_writing(self) -> None:
        self.end.writable.clear()

    def resume_writing(self) -> None:
        self.end.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.end.lost = exc
        self.end.writable.set()
        self.end.queue.put_nowait(b"")
        if not self.end.done.done():
            self.end.done.set_result(None)


class _SshEnd(_End):
    def __init__(self, role: str, on_line: LineHandler | None, kept: list[str], where: str) -> None:
        super().__init__(on_line, kept)
        self.role = role
        self.where = where
        self.chan: Any = None
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.queued = 0
        self.paused = False
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.lost: Exception | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def received(self, data: bytes, stderr: bool) -> None:
        if stderr:
            self._err.feed(data)
        elif self.role == _SOURCE:  # the source: its output is the data
            self.queue.put_nowait(data)
            self.queued += len(data)
            if self.queued > HIGH_WATER and not self.paused and self.chan is not None:
                self.paused = True
                self.chan.pause_reading()
        else:
            self._out.feed(data)

    async def send(self, data: bytes) -> None:
        await self.writable.wait()
        if self.done.done():
            raise BrokenPipeError(f"{self.where}: the destination ended early")
        self.chan.write(data)

    async def close_input(self) -> None:
        with contextlib.suppress(Exception):
            self.chan.write_eof()

    async def receive(self) -> bytes:
        data = await self.queue.get()
        self.queued -= len(data)
        if self.paused and self.queued < CHUNK:
            self.paused = False
            self.chan.resume_reading()
        return data

    async def result(self) -> Result:
        await asyncio.shield(self.done)
        self._err.close()
        self._out.close()
        if self.exit_status is not None:
            return Result(self.exit_status)
        if self.exit_signal is not None:
            return Result(128 + 15, signal=self.exit_signal, reason=f"killed by {self.exit_signal}")
        why = f" ({self.lost})" if self.lost else ""
        return Result(None, reason=f"{self.where}: the connection ended early{why}")

    def abort(self) -> None:
        if self.chan is not None:
            with contextlib.suppress(Exception):
                self.chan.close()


@contextlib.asynccontextmanager
async def _ssh_end(
    transport: SshTransport,
    role: str,
    line: bytes,
    sudo: bool,
    on_line: LineHandler | None,
    kept: list[str],
) -> AsyncIterator[_End]:
    end = _SshEnd(role, on_line, kept, transport.server.name)

    def command(conn: Any) -> str:
        as_root = transport.wraps_in_sudo(conn.username, sudo)
        return SUDO_STDIN_LINE_COMMAND if as_root else STDIN_LINE_COMMAND

    async with transport.pool.session(transport.server, lambda: _SshSession(end), command) as (
        _lease,
        chan,
        _session,
    ):
        end.chan = chan
        chan.set_write_buffer_limits(high=HIGH_WATER)
        chan.write(line)
        if role == _SOURCE:
            chan.write_eof()
        try:
            yield end
        finally:
            end.abort()


# -- this machine -------------------------------------------------------------------------


class _LocalEnd(_End):
    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        role: str,
        on_line: LineHandler | None,
        kept: list[str],
    ) -> None:
        super().__init__(on_line, kept)
        self.proc = proc
        self.role = role
        self._pumps = [asyncio.ensure_future(self._pump(proc.stderr, self._err))]
        if role == _DEST:
            self._pumps.append(asyncio.ensure_future(self._pump(proc.stdout, self._out)))

    @staticmethod
    async def _pump(reader: asyncio.StreamReader | None, splitter: LineSplitter) -> None:
        assert reader is not None
        while chunk := await reader.read(CHUNK):
            splitter.feed(chunk)
        splitter.close()

    async def send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def close_input(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    async def receive(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(CHUNK)

    async def result(self) -> Result:
        code = await self.proc.wait()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return Result(code if code >= 0 else 128 - code)

    def abort(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)


@contextlib.asynccontextmanager
async def _local_end(
    role: str, line: bytes, sudo: bool, on_line: LineHandler | None, kept: list[str]
) -> AsyncIterator[_End]:
    argv = ["/bin/sh", "-c", _READ_LINE]
    if sudo and os.geteuid() != 0:
        argv = ["sudo", "-n", "--", *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    end = _LocalEnd(proc, role, on_line, kept)
    assert proc.stdin is not None
    proc.stdin.write(line)
    await proc.stdin.drain()
    if role == _SOURCE:
        proc.stdin.close()
    try:
        yield end
    finally:
        end.abort()


def _end(
    transport: Transport,
    role: str,
    line: bytes,
    sudo: bool,
    on_line: LineHandler | None,
    kept: list[str],
) -> contextlib.AbstractAsyncContextManager[_End]:
    if isinstance(transport, SshTransport):
        return _ssh_end(transport, role, line, sudo, on_line, kept)
    if isinstance(transport, LocalTransport):
        return _local_end(role, line, sudo, on_line, kept)
    raise TransportError(f"cannot stream through a {type(transport).__name__}")


async def pipe(
    source: Transport,
    source_script: str,
    source_args: Sequence[str],
    dest: Transport,
    dest_script: str,
    dest_args: Sequence[str],
    *,
    sudo: bool = True,
    on_line: LineHandler | None = None,
) -> Piped:
    """Run ``source_script`` on ``source`` and ``dest_script`` on ``dest`` (as root with
    ``sudo``), the first one's standard output into the second one's standard input."""
    lines: list[str] = []
    src_line = stdin_line(source_script, source_args)
    dst_line = stdin_line(dest_script, dest_args)
    moved = 0
    async with (
        _end(dest, _DEST, dst_line, sudo, on_line, lines) as writer,
        _end(source, _SOURCE, src_line, sudo, on_line, lines) as reader,
    ):
        broken = False
        while True:
            data = await reader.receive()
            if not data:
                break
            try:
                await writer.send(data)
            except (BrokenPipeError, ConnectionResetError, OSError):
                broken = True  # the destination ended: stop the source too
                reader.abort()
                break
            moved += len(data)
        await writer.close_input()
        source_result = await reader.result()
        dest_result = await writer.result()
        if broken and source_result.ok:
            source_result = Result(141, reason="the destination stopped reading")
    return Piped(source_result, dest_result, moved, lines)

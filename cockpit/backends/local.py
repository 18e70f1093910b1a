"""The local transport: this machine, through asyncio subprocesses (no SSH).

It keeps the SSH transport's contract exactly: scripts run as ``/bin/sh -s`` with the
arguments in a ``set --`` line on stdin, output is read in chunks and split here,
a timeout kills the whole process group, and uploads are atomic.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cockpit.backends.transport import (
    LineHandler,
    LinesHandler,
    LineSplitter,
    Result,
    Transport,
    TransportError,
    script_with_args,
    splitters,
)
from cockpit.fileio import write_atomic

CHUNK = 256 * 1024

#: Atomic install of an uploaded temp file as root: same dir temp, fsync, rename.
_INSTALL = r"""
src=$1 dest=$2 mode=$3
dir=$(dirname -- "$dest")
tmp=$(mktemp -- "$dir/.cockpit-upload.XXXXXX") || exit 1
trap 'rm -f -- "$tmp"' EXIT
cat -- "$src" > "$tmp" && chmod -- "$mode" "$tmp" && sync -- "$tmp" && mv -f -- "$tmp" "$dest" || exit 1
trap - EXIT
sync -- "$dir" 2>/dev/null || true
"""


class LocalTransport(Transport):
    """Runs on this machine, as the current user (or root through ``sudo -n``)."""

    def _needs_sudo(self, sudo: bool) -> bool:
        return sudo and os.geteuid() != 0

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
        payload = script_with_args(script, args)
        argv = ["/bin/sh", "-s"]
        if self._needs_sudo(sudo):
            argv = ["sudo", "-n", "--", *argv]
        stdout_lines: list[str] = []
        stderr_lines: list[str] = []
        out_splitter, err_splitter = splitters(
            on_line,
            on_lines,
            stdout_lines if capture else None,
            stderr_lines if capture else None,
        )

        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group, killed as a whole
                env=_clean_env(),
            )
        except OSError as exc:
            raise TransportError(f"cannot start /bin/sh on this machine: {exc.strerror}") from exc
        assert proc.stdin and proc.stdout and proc.stderr

        async def pump(reader: asyncio.StreamReader, splitter: LineSplitter) -> None:
            while chunk := await reader.read(CHUNK):
                splitter.feed(chunk)
            splitter.close()

        async def feed() -> None:
            assert proc.stdin
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(payload)
                await proc.stdin.drain()
                proc.stdin.close()

        work = asyncio.gather(
            feed(), pump(proc.stdout, out_splitter), pump(proc.stderr, err_splitter), proc.wait()
        )
        try:
            await asyncio.wait_for(work, timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            await _kill_group(proc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return Result(
                None,
                reason=f"timed out after {timeout:g} s; the process group was killed",
                stdout=stdout_lines,
                stderr=stderr_lines,
            )
        code = proc.returncode
        assert code is not None
        if code < 0:
            name = signal.Signals(-code).name
            return Result(128 - code, signal=name, stdout=stdout_lines, stderr=stderr_lines)
        return Result(code, stdout=stdout_lines, stderr=stderr_lines)

    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        path = Path(remote_path)
        if not self._needs_sudo(sudo):
            try:
                await asyncio.to_thread(write_atomic, path, data, mode=mode)
            except OSError as exc:
                raise TransportError(f"cannot write {remote_path}: {exc.strerror}") from exc
            return
        fd, tmp = tempfile.mkstemp(prefix="cockpit-upload.")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            result = await self.run_script(
                _INSTALL, [tmp, remote_path, f"{mode:o}"], sudo=True, capture=True
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if not result.ok:
            raise TransportError(f"cannot write {remote_path}: {' '.join(result.stderr)[:500]}")

    async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
        if not self._needs_sudo(sudo):
            try:
                return await asyncio.to_thread(Path(remote_path).read_bytes)
            except OSError as exc:
                raise TransportError(f"cannot read {remote_path}: {exc.strerror}") from exc
        proc = await asyncio.create_subprocess_exec(
            "sudo",
            "-n",
            "--",
            "cat",
            "--",
            remote_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_clean_env(),
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise TransportError(f"cannot read {remote_path}: {err.decode(errors='replace')[:500]}")
        return out

    async def close(self) -> None:
        return None


def _clean_env() -> dict[str, str]:
    """The environment of local commands: a plain PATH and locale, nothing inherited
    that could carry a secret or change a tool's behaviour."""
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": os.environ.get("HOME", "/"),
    }


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """TERM the process group, then KILL it if it has not gone within 5 s."""
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), wait)
            # Children that outlive the leader stay in the group: signal it again.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except TimeoutError:
            continue

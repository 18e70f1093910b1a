"""What a step sees while it runs: its task, its target, the transport, the log."""

from __future__ import annotations

import asyncio
import posixpath
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

from cockpit.backends.transport import (
    ArgumentError,
    AuthError,
    ConnectError,
    HostKeyError,
    Line,
    Result,
    Stream,
    Transport,
    TransportError,
)
from cockpit.config import Config
from cockpit.engine import remote
from cockpit.engine.logs import TaskLog
from cockpit.engine.model import LogStream, Task
from cockpit.engine.recipes import OutcomeUnknown, StepFailed, TaskKind
from cockpit.model import Platform, Server, Site
from cockpit.store import Database
from cockpit.store import logs as log_queries

_STREAMS = {Stream.STDOUT: LogStream.STDOUT, Stream.STDERR: LogStream.STDERR}

#: The engine line written each time the worker starts reading a detached command's
#: output: which command (its run dir's name, integers only) and from which lines. A
#: resumed step numbers on from the last one stored (see :meth:`TaskContext.detached`).
_FOLLOWING: Final = "following {name}: stdout from line {out}, stderr from line {err}"
_FOLLOWING_RE: Final = re.compile(
    r"following (a\d+-[sr]\d+-\d+): stdout from line (\d+), stderr from line (\d+)"
)


class Fenced(Exception):
    """This worker no longer owns the task (a newer attempt took it over)."""


class TaskContext:
    """The context of one task's run, handed to every step.

    ``state`` is a dict the steps of one run share (a rollback finds there what its
    ``run`` recorded). Secrets a step reads must go through :meth:`secret` first, so the
    log never shows them.
    """

    def __init__(
        self,
        *,
        task: Task,
        kind: TaskKind,
        log: TaskLog,
        db: Database,
        config: Config,
        server: Server | None,
        transport: Transport | None,
        platform: Platform | None = None,
        site: Site | None = None,
        reattach_window: float = 120.0,
    ) -> None:
        self.task = task
        self.kind = kind
        self.db = db
        self.config = config
        self.server = server
        self.platform = platform
        self.site = site
        self.transport = transport
        self.state: dict[str, Any] = {}
        self.reattach_window = reattach_window
        self._log = log
        self._summary = ""
        # the step being run, and where its detached commands keep their records
        self.step_idx = 0
        self.run_attempt = task.attempt
        self._detached_n = 0
        self._rolling_back = False
        self._active: tuple[str, bool] | None = None  # (step dir, sudo) of a live command
        self.used_run_dir = False
        self.run_dir = (
            remote.RunDir(server.root, task.id, f"{task.target.kind}-{task.target.key}")
            if server is not None
            else None
        )

    # -- what steps use ----------------------------------------------------------------

    @property
    def args(self) -> Mapping[str, Any]:
        return self.task.args

    def log(self, text: str, stream: LogStream = LogStream.ENGINE) -> None:
        """Add a line to the task's log (redacted like every other line)."""
        for line in text.splitlines() or [""]:
            self._log.write(line, stream)

    def secret(self, value: str) -> str:
        """Register ``value`` as a secret of this task (redacted to ``***``); returns it."""
        self._log.secret(value)
        return value

    def summary(self, text: str) -> None:
        """The one-line result shown in task lists (default: the outcome and duration)."""
        self._summary = text

    @property
    def summary_text(self) -> str:
        return self._summary

    def _require_transport(self) -> Transport:
        if self.transport is None:
            raise StepFailed(f"task kind {self.kind.name} has no server to run commands on")
        return self.transport

    def _on_line(self, line: Line) -> None:
        self._log.write(line.text, _STREAMS.get(line.stream, LogStream.STDOUT))

    async def sh(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        sudo: bool | None = None,
        check: bool = True,
        capture: bool = False,
        timeout: float | None = None,
    ) -> Result:
        """Run a short script on the target (``/bin/sh -s``, ``$1…`` = ``args``), logging
        its output. With ``check``, a non-zero exit fails the step. A lost connection
        makes the outcome unknown: use a :class:`RemoteStep` for work that must
        survive one."""
        transport = self._require_transport()
        result = await transport.run_script(
            script,
            list(args),
            sudo=self.kind.sudo if sudo is None else sudo,
            on_line=self._on_line,
            capture=capture,
            timeout=timeout,
        )
        if result.unknown:
            raise OutcomeUnknown(result.reason or "the command's outcome is unknown")
        if check and not result.ok:
            raise StepFailed(f"the command exited with {result.exit_code}")
        return result

    async def detached(
        self, script: str, args: Sequence[str] = (), *, sudo: bool | None = None
    ) -> Result:
        """Run ``script`` detached on the target and follow it to its end.

        When the connection drops, re-attach (with backoff, for ``reattach_window``
        seconds) and read the recorded exit code. If the record cannot be read back in
        that time, raise :class:`OutcomeUnknown`: the command may still be running.
        """
        transport = self._require_transport()
        assert self.run_dir is not None
        use_sudo = self.kind.sudo if sudo is None else sudo
        step_dir = self.run_dir.step_dir(
            self.run_attempt, self.step_idx, self._detached_n, rollback=self._rolling_back
        )
        name = posixpath.basename(step_dir)
        self._detached_n += 1
        self.used_run_dir = True
        # Re-attaching to a step an earlier attempt started: whatever the connection
        # does, the command may be running; never take a failure for "nothing started".
        resuming = self.run_attempt != self.task.attempt
        # [stdout, stderr] lines of the command in the log (stored, or on their way):
        # the follower starts after them, so no line is stored twice.
        delivered = list(await self._stored_offsets(name)) if resuming else [0, 0]

        def on_line(line: Line) -> None:
            self._log.write(line.text, _STREAMS[line.stream])

        deadline: float | None = None
        delay = 0.5
        launched = False
        self._active = (step_dir, use_sudo)
        try:
            while True:
                try:
                    if not launched:
                        started = await remote.launch(
                            transport,
                            self.run_dir,
                            step_dir,
                            self.task.attempt,
                            script,
                            args,
                            sudo=use_sudo,
                        )
                        launched = True
                        if not started:
                            self.log("re-attached to the command already started on the target")
                    self._log.write(
                        _FOLLOWING.format(name=name, out=delivered[0] + 1, err=delivered[1] + 1),
                        redact=False,  # integers only; read back by a resumed step
                    )
                    outcome = await remote.follow(
                        transport,
                        step_dir,
                        skip=delivered[0],
                        skip_err=delivered[1],
                        delivered=delivered,
                        on_line=on_line,
                        sudo=use_sudo,
                    )
                except remote.StaleAttempt as exc:
                    raise Fenced(str(exc)) from exc
                except (remote.Dropped, TransportError) as exc:
                    hopeless = isinstance(exc, AuthError | HostKeyError | ArgumentError)
                    if (
                        not launched
                        and not resuming
                        and deadline is None
                        and (
                            isinstance(exc, ConnectError)
                            or (isinstance(exc, TransportError) and not exc.transient)
                        )
                    ):
                        raise  # the first launch never reached the target: nothing started
                    if hopeless:
                        raise OutcomeUnknown(
                            f"cannot reach the target any more ({exc}); the command's "
                            f"record stays in {step_dir}"
                        ) from exc
                    # refused, timed out, cut off, a half-up sshd: try again for a while
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.reattach_window
                        self.log(f"connection lost ({exc}); re-attaching to {step_dir}")
                    if now >= deadline:
                        raise OutcomeUnknown(
                            f"could not re-attach within {self.reattach_window:g} s ({exc}); "
                            f"the command may still be running, its record is in {step_dir}"
                        ) from exc
                    await asyncio.sleep(min(delay, max(0.0, deadline - now)))
                    delay = min(delay * 2, 10.0)
                    continue
                if deadline is not None:
                    self.log("re-attached; the outcome comes from the target's record")
                self._active = None
                if outcome.state == "none":
                    raise OutcomeUnknown(f"the target has no record of the command in {step_dir}")
                return outcome.result()
        except asyncio.CancelledError:
            raise  # _active stays set: the engine kills the command when it cancels a task
        except BaseException:
            self._active = None
            raise

    async def _stored_offsets(self, name: str) -> tuple[int, int]:
        """How many stdout and stderr lines of the detached command ``name`` the log
        already holds: the numbers of the last "following" line stored for it, plus
        the lines stored after that line.

        A worker stores its lines in order, so whatever an earlier attempt had not
        stored when it was lost comes after these and is read again from the target.
        (This worker's own buffer holds none of them: a task it resumes was ended, its
        lines stored, or run by another worker.)
        """
        out = err = 0
        seen = False
        seq = 0
        async with self.db.read() as conn:
            while rows := await log_queries.after(conn, self.task.id, seq):
                seq = int(rows[-1][1])
                for _task, _seq, _at, stream, text in rows:
                    if stream == LogStream.ENGINE.value:
                        found = _FOLLOWING_RE.fullmatch(text)
                        if found is not None and found.group(1) == name:
                            out, err = int(found.group(2)) - 1, int(found.group(3)) - 1
                            seen = True
                    elif not seen:
                        continue
                    elif stream == LogStream.STDOUT.value:
                        out += 1
                    elif stream == LogStream.STDERR.value:
                        err += 1
        return out, err

    # -- what the engine uses -------------------------------------------------------------

    def begin_step(self, idx: int, run_attempt: int, *, rollback: bool = False) -> None:
        self.step_idx = idx
        self.run_attempt = run_attempt
        self._detached_n = 0
        self._rolling_back = rollback

    @property
    def active_command(self) -> tuple[str, bool] | None:
        return self._active

    async def kill_active(self) -> bool:
        """Kill the detached command now running (its whole session) on the target."""
        active = self._active
        if active is None or self.transport is None:
            return False
        step_dir, sudo = active
        await remote.kill(self.transport, step_dir, sudo=sudo)
        return True

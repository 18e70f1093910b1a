"""Running one claimed task: its steps in order, rollback on failure, the final state.

Every state change is fenced by (worker, attempt): when another worker has taken the
task over, this run changes nothing any more. The journal of steps (``task_steps``) is
written *before* a step runs, so a recovering worker knows exactly which steps had
started: those that ended, the one that may still be running, and those that never
started (safe to run).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import sqlite3
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from cockpit.backends.transport import ConnectError, Transport, TransportError
from cockpit.config import Config
from cockpit.engine.context import Fenced, TaskContext
from cockpit.engine.ends import Body, EndGroup
from cockpit.engine.logs import LogWriter, TaskLog
from cockpit.engine.model import StepRecord, StepState, TargetKind, Task, TaskState
from cockpit.engine.recipes import AnyStep, OutcomeUnknown, Registry, StepFailed, TaskKind
from cockpit.model import Platform, Server, Site, ValidationError
from cockpit.store import Database
from cockpit.store import tasks as task_queries

log = logging.getLogger(__name__)

#: A far future for tasks nobody should look at again by themselves.
NEVER: Final = 1e15


class StopReason(enum.Enum):
    CANCEL = "cancel"  # the operator asked: kill, roll back, end cancelled
    FENCED = "fenced"  # another worker owns the task now: touch nothing
    SHUTDOWN = "shutdown"  # this worker stops: leave the task for recovery


class Commit(Protocol):
    """``EndGroup.commit``: run ``body`` on the writer's thread inside a transaction
    (which may hold other bodies too), call ``committed`` with its result once that
    commits; the result. ``ending``: the task's end, which frees its slot."""

    def __call__(
        self, body: Body | None, committed: Callable[[Any], None], *, ending: bool = ...
    ) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    reattach_window: float = 120.0
    retry_base: float = 2.0
    retry_cap: float = 120.0
    unknown_recheck: float = 60.0


def backoff(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    return random.uniform(0.0, min(cap, base * 2 ** max(0, attempt - 1)))  # noqa: S311


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


@dataclass(frozen=True, slots=True)
class _StepStart:
    idx: int
    name: str
    detached: bool
    run_attempt: int
    at: float  # Unix seconds, when it happened (written later, perhaps)


@dataclass(frozen=True, slots=True)
class _StepEnd:
    idx: int
    state: str
    detail: str
    at: float


class TaskRun:
    """One attempt at one task, owned by one worker."""

    def __init__(
        self,
        task: Task,
        *,
        worker: str,
        db: Database,
        config: Config,
        registry: Registry,
        logs: LogWriter,
        transport_for: Callable[[Server], Transport],
        options: RunOptions,
        resume: Sequence[StepRecord] | None = None,
        on_handoff: Callable[[TaskRun], None] | None = None,
        commit: Commit | None = None,
        target: task_queries.Resolved | Exception | None = None,
    ) -> None:
        self.task = task
        #: Called once this run's end is committed: its slot is free (the worker's
        #: group of ends claims the tasks that take it in the same transaction).
        self.on_handoff = on_handoff
        #: Writes the run's journal and end in a transaction shared with other ends.
        self.commit: Commit = commit if commit is not None else EndGroup(db, logs).commit
        #: The target as read when the task was claimed (or the error reading it).
        self.preloaded = target
        self.slot_released = False
        self.worker = worker
        self.db = db
        self.config = config
        self.registry = registry
        self.logs = logs
        self.transport_for = transport_for
        self.options = options
        self.resume = resume
        self.stop_reason: StopReason | None = None
        self.finishing = False
        self.ctx: TaskContext | None = None
        self.final_state: TaskState | None = None
        self._deferred: list[_StepStart | _StepEnd] = []
        self.tlog: TaskLog | None = None
        self.kind_idempotent = task.idempotent

    # -- the store, fenced -----------------------------------------------------------

    def _write_ops(self, raw: sqlite3.Connection, ops: Sequence[_StepStart | _StepEnd]) -> None:
        """Write journal entries (on the writer's thread: touches only immutable data).
        A start followed by its end is written as one row."""
        t, worker = self.task, self.worker
        n = 0
        while n < len(ops):
            op = ops[n]
            n += 1
            if isinstance(op, _StepEnd):
                task_queries.step_ended_sync(
                    raw, t.id, t.attempt, op.idx, op.state, op.detail[:500], at=op.at
                )
                continue
            task_queries.set_step_sync(raw, t.id, worker, t.attempt, op.name)
            end = ops[n] if n < len(ops) else None
            if isinstance(end, _StepEnd) and end.idx == op.idx:
                n += 1
                task_queries.step_record_sync(
                    raw,
                    t.id,
                    t.attempt,
                    op.idx,
                    op.name,
                    detached=op.detached,
                    run_attempt=op.run_attempt,
                    state=end.state,
                    detail=end.detail[:500],
                    started_at=op.at,
                    finished_at=end.at,
                )
            else:
                task_queries.step_started_sync(
                    raw,
                    t.id,
                    t.attempt,
                    op.idx,
                    op.name,
                    detached=op.detached,
                    run_attempt=op.run_attempt,
                    at=op.at,
                )

    async def _journal_start(
        self, idx: int, name: str, detached: bool, run_attempt: int, *, durable: bool
    ) -> None:
        """Record that a step starts. ``durable``: committed *before* the step runs, as
        recovery of a non-idempotent task relies on it; an idempotent task is re-queued
        whatever its journal says, so its entry rides along with the next write."""
        self._deferred.append(_StepStart(idx, name, detached, run_attempt, time.time()))
        if not durable:
            return
        ops, self._deferred = self._deferred, []
        await self.commit(lambda raw: self._write_ops(raw, ops), _nothing)

    async def _journal_end(self, idx: int, state: StepState, detail: str = "") -> None:
        """Record how a step ended, with the next write (one transaction less per step).

        If the worker dies before that write, recovery sees the step as still running:
        the cautious reading (a detached step is re-attached to, an inline one is not
        trusted).
        """
        if self.tlog is not None:
            detail = self.tlog.redact(detail)
        self._deferred.append(_StepEnd(idx, state.value, detail, time.time()))

    async def _end(self, state: TaskState, result: str, *, delay: float = 0.0) -> bool:
        """Write the final (or re-queued) state in one transaction with the pending log
        lines and step ends, so a follower that sees the final state has every line.

        With ``commit`` (a worker's group of task ends) the transaction is shared with
        the other tasks ending at the same moment. Whatever happens to this coroutine,
        once that transaction commits the handoff and ``final_state`` follow."""
        self.finishing = True
        t, worker = self.task, self.worker
        if self.tlog is not None:
            result = self.tlog.redact(result)
        ops = list(self._deferred)

        def body(raw: sqlite3.Connection) -> bool:
            self._write_ops(raw, ops)
            if state is TaskState.QUEUED:
                return task_queries.requeue_sync(raw, t.id, worker, t.attempt, delay, result)
            if state is TaskState.UNKNOWN:
                return task_queries.park_unknown_sync(raw, t.id, worker, t.attempt, delay, result)
            return task_queries.finish_sync(raw, t.id, worker, t.attempt, state.value, result)

        def committed(ok: bool) -> None:
            del self._deferred[: len(ops)]
            if ok:
                self.final_state = state
            if self.on_handoff is not None:
                self.on_handoff(self)  # its slot is free

        ok: bool = await self.commit(body, committed, ending=True)
        return ok

    # -- resolving the target --------------------------------------------------------

    async def _target(self) -> tuple[Server | None, Platform | None, Site | None]:
        """The target's server, platform and site: as read when the task was claimed,
        else read now."""
        target = self.task.target
        resolved = self.preloaded
        self.preloaded = None
        if resolved is None:
            kind, key = target.kind.value, target.key
            resolved = await self.db.read_sync(
                lambda raw: task_queries.resolve_target_sync(raw, kind, key)
            )
        if isinstance(resolved, Exception):
            raise resolved
        server, platform, site = resolved
        if target.kind is TargetKind.SITE and site is None:
            raise StepFailed(f"the site {target.key} is no longer in the inventory")
        if target.kind is TargetKind.PLATFORM and platform is None:
            raise StepFailed(f"the platform {target.key} is no longer in the inventory")
        if target.kind is TargetKind.SERVER and server is None:
            raise StepFailed(f"the server {target.key} is no longer in the inventory")
        return server, platform, site

    # -- the run ---------------------------------------------------------------------

    async def run(self) -> TaskState | None:
        """Run the task to an end state; None when it was fenced or the worker stops."""
        t = self.task
        # A first attempt has no log yet; a later one numbers on from its lines.
        tlog = self.tlog = (
            TaskLog(self.logs, t.id, 0)
            if t.attempt == 1 and self.resume is None
            else await self.logs.open(t.id)
        )
        started = time.monotonic()
        what = "resuming" if self.resume is not None else "starting"
        tlog.write(f"{what} {t.kind} on {t.target}, attempt {t.attempt} (worker {self.worker})")
        try:
            kind = self.registry.get(t.kind)
        except ValidationError:
            tlog.write(f"this worker knows no task kind {t.kind!r}")
            await self._end(TaskState.FAILED, f"unknown task kind {t.kind}")
            return self.final_state
        try:
            server, platform, site = await self._target()
        except StepFailed as exc:
            tlog.write(str(exc))
            await self._end(TaskState.FAILED, str(exc))
            return self.final_state
        transport = self.transport_for(server) if server is not None else None
        ctx = TaskContext(
            task=t,
            kind=kind,
            log=tlog,
            db=self.db,
            config=self.config,
            server=server,
            transport=transport,
            platform=platform,
            site=site,
            reattach_window=self.options.reattach_window,
        )
        self.ctx = ctx
        steps = kind.plan(t.args)
        done: list[tuple[int, AnyStep]] = []
        current: tuple[int, AnyStep] | None = None
        try:
            first, resume_attempt = await self._resumed(kind, steps, done, ctx)
            if first is None:
                return self.final_state
            for idx in range(first, len(steps)):
                step = steps[idx]
                current = (idx, step)
                run_attempt = resume_attempt if idx == first and resume_attempt else t.attempt
                await self._run_step(ctx, idx, len(steps), step, run_attempt)
                done.append((idx, step))
                current = None
        except asyncio.CancelledError:
            return await self._stopped(ctx, kind, done, current, started)
        except Fenced as exc:
            tlog.write(f"stopped: {exc}")
            self.stop_reason = StopReason.FENCED
            return None
        except OutcomeUnknown as exc:
            return await self._unknown(ctx, kind, current, str(exc))
        except TransportError as exc:
            return await self._failed(ctx, kind, done, current, exc, transient=exc.transient)
        except Exception as exc:
            return await self._failed(ctx, kind, done, current, exc, transient=False)
        elapsed = time.monotonic() - started
        tlog.write(f"succeeded in {_fmt(elapsed)}")
        if await self._end(
            TaskState.SUCCEEDED, ctx.summary_text or f"succeeded in {_fmt(elapsed)}"
        ):
            await self._clean(ctx)
        return self.final_state

    async def _resumed(
        self,
        kind: TaskKind,
        steps: Sequence[AnyStep],
        done: list[tuple[int, AnyStep]],
        ctx: TaskContext,
    ) -> tuple[int | None, int]:
        """Where a run starts: 0, or after the steps a dead attempt had finished.

        Returns (first step to run, the attempt whose record that step re-attaches to,
        or 0). (None, 0) when the task cannot be resumed and was ended here.
        """
        if self.resume is None:
            return 0, 0
        records = {r.idx: r for r in self.resume}
        for idx, step in enumerate(steps):
            record = records.get(idx)
            if record is None:
                return idx, 0
            if record.state is StepState.SUCCEEDED:
                # (the takeover copied this record into the new attempt's journal)
                ctx.log(f"step {idx + 1}/{len(steps)} {step.name}: done by an earlier attempt")
                done.append((idx, step))
                continue
            if record.state in (StepState.RUNNING, StepState.UNKNOWN) and step.detached:
                ctx.log(
                    f"step {idx + 1}/{len(steps)} {step.name}: was running when attempt "
                    f"{record.attempt} was lost; re-attaching to its record on the target"
                )
                return idx, record.run_attempt
            why = (
                f"step {step.name} was {record.state} when attempt {record.attempt} was lost, "
                "and its outcome cannot be read back from the target"
            )
            ctx.log(why)
            if kind.idempotent:
                await self._end(TaskState.QUEUED, f"re-queued: {why}")
            else:
                await self._end(TaskState.INTERRUPTED, f"interrupted: {why}; check and retry")
            return None, 0
        return len(steps), 0

    async def _run_step(
        self, ctx: TaskContext, idx: int, total: int, step: AnyStep, run_attempt: int
    ) -> None:
        await self._journal_start(
            idx, step.name, step.detached, run_attempt, durable=not self.kind_idempotent
        )
        ctx.begin_step(idx, run_attempt)
        ctx.log(f"step {idx + 1}/{total} {step.name}: started")
        began = time.monotonic()
        try:
            await step.run(ctx)
        except asyncio.CancelledError:
            raise
        except OutcomeUnknown as exc:
            ctx.log(
                f"step {idx + 1}/{total} {step.name}: outcome unknown after {_fmt(time.monotonic() - began)}: {exc}"
            )
            await self._journal_end(idx, StepState.UNKNOWN, str(exc))
            raise
        except Fenced:
            raise
        except Exception as exc:
            ctx.log(
                f"step {idx + 1}/{total} {step.name}: failed after "
                f"{_fmt(time.monotonic() - began)}: {_describe(exc)}"
            )
            await self._journal_end(idx, StepState.FAILED, _describe(exc))
            raise
        elapsed = time.monotonic() - began
        ctx.log(f"step {idx + 1}/{total} {step.name}: succeeded in {_fmt(elapsed)}")
        await self._journal_end(idx, StepState.SUCCEEDED)

    async def _rollback(self, ctx: TaskContext, done: Sequence[tuple[int, AnyStep]]) -> list[str]:
        """Roll back the finished steps in reverse; the names of those whose rollback failed."""
        failed: list[str] = []
        for idx, step in reversed(done):
            if step.rollback is None:
                continue
            ctx.log(f"rollback of {step.name}: started")
            began = time.monotonic()
            ctx.begin_step(idx, self.task.attempt, rollback=True)
            try:
                await step.rollback(ctx)
            except Exception as exc:
                failed.append(step.name)
                ctx.log(f"rollback of {step.name}: failed: {_describe(exc)}")
                await self._journal_end(idx, StepState.ROLLBACK_FAILED, _describe(exc))
                continue
            ctx.log(f"rollback of {step.name}: done in {_fmt(time.monotonic() - began)}")
            await self._journal_end(idx, StepState.ROLLED_BACK)
        return failed

    async def _failed(
        self,
        ctx: TaskContext,
        kind: TaskKind,
        done: list[tuple[int, AnyStep]],
        current: tuple[int, AnyStep] | None,
        exc: BaseException,
        *,
        transient: bool,
    ) -> TaskState | None:
        t = self.task
        where = f"step {current[1].name}" if current else "before its first step"
        if not isinstance(exc, StepFailed | TransportError):
            ctx.log("".join(traceback.format_exception(exc)).rstrip())
        rollback_failed = await self._rollback(ctx, done)
        note = f"; rollback failed for {', '.join(rollback_failed)}" if rollback_failed else ""
        retryable = (
            transient
            and t.attempt < t.max_attempts
            and not rollback_failed
            and (kind.idempotent or isinstance(exc, ConnectError))
        )
        if retryable:
            delay = backoff(t.attempt, self.options.retry_base, self.options.retry_cap)
            ctx.log(f"transient error ({exc}); retrying in {delay:.1f} s")
            await self._end(
                TaskState.QUEUED,
                f"attempt {t.attempt} failed at {where}: {_describe(exc)}; retrying",
                delay=delay,
            )
            return self.final_state
        ctx.log(f"failed at {where}: {_describe(exc)}{note}")
        if await self._end(TaskState.FAILED, f"failed at {where}: {_describe(exc)}{note}"):
            await self._clean(ctx)
        return self.final_state

    async def _unknown(
        self, ctx: TaskContext, kind: TaskKind, current: tuple[int, AnyStep] | None, why: str
    ) -> TaskState | None:
        t = self.task
        detached = current is not None and current[1].detached
        if not detached and kind.idempotent and t.attempt < t.max_attempts:
            # Nothing to read back, but running it again is harmless: do that.
            delay = backoff(t.attempt, self.options.retry_base, self.options.retry_cap)
            ctx.log(f"outcome unknown: {why}; running it again in {delay:.1f} s")
            await self._end(TaskState.QUEUED, f"attempt {t.attempt}: {why}; retrying", delay=delay)
            return self.final_state
        if detached:
            delay = min(3600.0, self.options.unknown_recheck * 2 ** min(10, t.attempt - 1))
            ctx.log(f"outcome unknown: {why}; the target's record is read again in {delay:.0f} s")
        else:
            delay = NEVER
            ctx.log(f"outcome unknown: {why}; there is no record on the target to read it from")
        step = current[1].name if current else "?"
        await self._end(TaskState.UNKNOWN, f"unknown at step {step}: {why}", delay=delay)
        return self.final_state

    async def _stopped(
        self,
        ctx: TaskContext,
        kind: TaskKind,
        done: list[tuple[int, AnyStep]],
        current: tuple[int, AnyStep] | None,
        started: float,
    ) -> TaskState | None:
        """The run's coroutine was cancelled: by the operator, a takeover, or shutdown."""
        reason = self.stop_reason
        if reason is not StopReason.CANCEL:
            ctx.log(
                "this worker stops; the task is left for recovery"
                if reason is StopReason.SHUTDOWN
                else "another worker took this task over"
            )
            raise asyncio.CancelledError
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        where = f"during step {current[1].name}" if current else "between steps"
        ctx.log(f"cancel requested {where}")
        try:
            if await ctx.kill_active():
                ctx.log("killed the step's processes on the target")
        except Exception as exc:
            ctx.log(f"could not kill the step's processes on the target: {_describe(exc)}")
        if current is not None:
            await self._journal_end(current[0], StepState.CANCELLED, "cancelled")
        failed = await self._rollback(ctx, done)
        note = f"; rollback failed for {', '.join(failed)}" if failed else ""
        ctx.log(f"cancelled after {_fmt(time.monotonic() - started)}{note}")
        if await self._end(TaskState.CANCELLED, f"cancelled {where}{note}"):
            await self._clean(ctx)
        return self.final_state

    async def _clean(self, ctx: TaskContext) -> None:
        """Remove the task's run dir on the target once its outcome is in the store."""
        if not ctx.used_run_dir or ctx.transport is None or ctx.run_dir is None:
            return
        try:
            await asyncio.wait_for(_clean_remote(ctx), timeout=30)
        except Exception as exc:
            log.debug("cannot clean the run dir of task %s: %s", self.task.id, exc)


async def _clean_remote(ctx: TaskContext) -> None:
    from cockpit.engine import remote

    assert ctx.transport is not None and ctx.run_dir is not None
    await remote.clean(ctx.transport, ctx.run_dir, sudo=ctx.kind.sudo)


def _nothing(_result: object) -> None:
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, StepFailed | OutcomeUnknown | TransportError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

"""The engine's API: queue tasks, read them, cancel and retry, follow their logs.

:class:`Engine` is what the core exposes to the TUI and the CLI. It never runs a task
itself (a worker does, see :mod:`cockpit.engine.worker`); it writes to the queue and
reads what workers write. ``Engine(db, config)`` is cheap: make one per open store.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from cockpit.config import Config
from cockpit.engine import daemon
from cockpit.engine.model import (
    Batch,
    KindInfo,
    LogLine,
    LogStream,
    Priority,
    Schedule,
    StepRecord,
    Task,
    TaskState,
)
from cockpit.engine.recipes import Registry, TaskKind
from cockpit.model import ValidationError
from cockpit.store import Database, NotFoundError
from cockpit.store import logs as log_queries
from cockpit.store import schedules as schedule_queries
from cockpit.store import tasks as task_queries
from cockpit.store.rows import dumps

#: Most targets listed by name in an error message.
_SHOWN = 10


class TaskError(Exception):
    """A task cannot do what was asked in its state (cancel a finished task…)."""


def current_user() -> str:
    """Who queues: the OS user running Cockpit."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


async def queue_tasks(
    conn: aiosqlite.Connection,
    kind: TaskKind,
    targets: Sequence[str],
    args: Mapping[str, Any] | None,
    *,
    priority: int,
    label: str,
    queued_by: str,
    schedule_id: int | None = None,
    missing_ok: bool = False,
) -> tuple[task_queries.Row, list[int]]:
    """Queue ``kind`` on ``targets`` as one batch inside the caller's write transaction."""
    clean = kind.validate(args)
    keys = _unique(targets)
    kind.check_targets(len(keys))
    if not keys and not missing_ok:
        raise ValidationError("targets", f"{kind.name} needs at least one {kind.target}")
    servers = await task_queries.target_servers(conn, kind.target.value, keys)
    missing = [k for k in keys if k not in servers]
    if missing and not missing_ok:
        shown = ", ".join(missing[:_SHOWN]) + (" …" if len(missing) > _SHOWN else "")
        raise ValidationError("targets", f"no such {kind.target} ({len(missing)}): {shown}")
    batch = await task_queries.insert_batch(conn, label or kind.name, queued_by)
    ids = await task_queries.insert_tasks(
        conn,
        kind=kind.name,
        target_kind=kind.target.value,
        targets={k: servers[k] for k in keys if k in servers},
        args=dumps(clean),
        priority=int(priority),
        idempotent=kind.idempotent,
        max_attempts=kind.max_attempts,
        batch_id=int(batch["id"]),
        queued_by=queued_by,
        schedule_id=schedule_id,
        skip_queued_of_schedule=schedule_id is not None,
    )
    return batch, ids


class Engine:
    """Queue, inspect, cancel and retry tasks; follow logs; manage schedules and the worker."""

    def __init__(self, db: Database, config: Config, *, registry: Registry | None = None) -> None:
        self.db = db
        self.config = config
        self.registry = registry or Registry.default()

    # -- kinds -----------------------------------------------------------------------

    def kinds(self) -> list[KindInfo]:
        return [kind.info() for kind in self.registry]

    def kind(self, name: str) -> KindInfo:
        return self.registry.get(name).info()

    # -- queueing --------------------------------------------------------------------

    async def queue(
        self,
        kind: str,
        targets: Sequence[str],
        args: Mapping[str, Any] | None = None,
        *,
        priority: int = Priority.INTERACTIVE,
        label: str = "",
        queued_by: str | None = None,
        start_worker: bool = False,
    ) -> Batch:
        """Queue ``kind`` on every target (site domains, platform or server names) as one
        batch. Refuses an unknown kind, a missing target or secret-looking args."""
        recipe = self.registry.get(kind)
        who = queued_by or current_user()
        async with self.db.write() as conn:
            batch, ids = await queue_tasks(
                conn, recipe, targets, args, priority=priority, label=label, queued_by=who
            )
        if start_worker:
            await asyncio.to_thread(daemon.ensure_running, self.config)
        else:
            daemon.notify(self.config)
        return Batch(
            id=int(batch["id"]),
            label=str(batch["label"]),
            queued_by=str(batch["queued_by"]),
            created_at=float(batch["created_at"]),
            task_ids=tuple(ids),
        )

    # -- reading ---------------------------------------------------------------------

    async def tasks(
        self,
        *,
        state: TaskState | str | Sequence[TaskState | str] | None = None,
        batch: int | None = None,
        target: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Task]:
        """Tasks, newest first. ``target`` is a key (domain or name) of any target kind."""
        if state is None:
            states: list[str] = []
        elif isinstance(state, str):
            states = [TaskState(state).value]
        else:
            states = [TaskState(s).value for s in state]
        async with self.db.read() as conn:
            rows = await task_queries.list_tasks(
                conn,
                states=states,
                batch_id=batch,
                target_key=target,
                kind=kind,
                limit=limit,
                offset=offset,
            )
        return [Task.from_row(r) for r in rows]

    async def task(self, task_id: int) -> Task | None:
        async with self.db.read() as conn:
            row = await task_queries.get(conn, task_id)
        return Task.from_row(row) if row else None

    async def _require(self, task_id: int) -> Task:
        task = await self.task(task_id)
        if task is None:
            raise NotFoundError(f"no task {task_id}")
        return task

    async def steps(self, task_id: int) -> list[StepRecord]:
        """The steps of every attempt of a task, in order."""
        async with self.db.read() as conn:
            return [StepRecord.from_row(r) for r in await task_queries.steps(conn, task_id)]

    async def batch(self, batch_id: int) -> Batch | None:
        async with self.db.read() as conn:
            row = await task_queries.get_batch(conn, batch_id)
            if row is None:
                return None
            ids = [
                t["id"] for t in await task_queries.list_tasks(conn, batch_id=batch_id, limit=-1)
            ]
        return Batch(
            id=int(row["id"]),
            label=str(row["label"]),
            queued_by=str(row["queued_by"]),
            created_at=float(row["created_at"]),
            task_ids=tuple(sorted(ids)),
        )

    async def batch_counts(self, batch_id: int) -> dict[TaskState, int]:
        """How many tasks of a batch are in each state (every state present, 0 or more)."""
        async with self.db.read() as conn:
            found = await task_queries.counts(conn, batch_id)
        return {state: found.get(state.value, 0) for state in TaskState}

    async def counts(self) -> dict[TaskState, int]:
        async with self.db.read() as conn:
            found = await task_queries.counts(conn)
        return {state: found.get(state.value, 0) for state in TaskState}

    # -- cancel, retry -----------------------------------------------------------------

    async def cancel(self, task_id: int) -> Task:
        """Cancel a task: a queued one leaves the queue at once; a running one is killed on
        its target by its worker (within seconds), rolled back and ends ``cancelled``."""
        async with self.db.write() as conn:
            row = await task_queries.get(conn, task_id)
            if row is None:
                raise NotFoundError(f"no task {task_id}")
            state = TaskState(row["state"])
            if state is TaskState.QUEUED:
                await task_queries.cancel_queued(conn, task_id, f"cancelled by {current_user()}")
            elif state is TaskState.RUNNING:
                await task_queries.request_cancel(conn, task_id)
            else:
                raise TaskError(f"task {task_id} is {state}: there is nothing to cancel")
        return await self._require(task_id)

    async def retry(self, task_id: int) -> Task:
        """Queue a finished task again (same kind, target and args, same batch) as a new
        task. A task of unknown outcome is first marked ``interrupted``: retrying it is
        the operator's word that nothing runs on its target any more."""
        who = current_user()
        async with self.db.write() as conn:
            row = await task_queries.get(conn, task_id)
            if row is None:
                raise NotFoundError(f"no task {task_id}")
            state = TaskState(row["state"])
            if state in (TaskState.QUEUED, TaskState.RUNNING):
                raise TaskError(f"task {task_id} is {state}: it can be retried once it ends")
            if state is TaskState.UNKNOWN:
                await task_queries.abandon_unknown(
                    conn, task_id, f"{row['result']}; given up by {who}, who retried it"
                )
            new_id = await task_queries.insert_retry(conn, row, Priority.INTERACTIVE, who)
        daemon.notify(self.config)
        return await self._require(new_id)

    # -- logs ------------------------------------------------------------------------

    async def log(self, task_id: int, *, after: int = 0, limit: int = 5000) -> list[LogLine]:
        async with self.db.read() as conn:
            rows = await log_queries.after(conn, task_id, after, limit)
        return [_line(r) for r in rows]

    async def log_tail(self, task_id: int, lines: int = 1000) -> list[LogLine]:
        async with self.db.read() as conn:
            rows = await log_queries.tail(conn, task_id, lines)
        return [_line(r) for r in rows]

    async def follow_log(
        self, task_id: int, *, after: int = 0, poll: float = 0.2, idle_poll: float = 1.0
    ) -> AsyncIterator[list[LogLine]]:
        """Yield the task's new log lines in batches until the task ends.

        Starts after sequence number ``after`` (0: from the first line). Polls the store
        (``poll`` seconds while lines flow, slowing to ``idle_poll``); ends once the task
        is in a final state and every line was yielded. Raises NotFoundError for no task.
        """
        seq = after
        wait = poll
        while True:
            async with self.db.read() as conn:
                rows = await log_queries.after(conn, task_id, seq)
                row = None if rows else await task_queries.get(conn, task_id)
            if rows:
                seq = int(rows[-1][1])
                wait = poll
                yield [_line(r) for r in rows]
                continue
            if row is None:
                if seq == after:
                    raise NotFoundError(f"no task {task_id}")
                return
            if TaskState(row["state"]).final:
                return
            await asyncio.sleep(wait)
            wait = min(idle_poll, wait * 1.5)

    async def wait(
        self,
        task_ids: Sequence[int],
        *,
        poll: float = 0.3,
        timeout: float | None = None,
    ) -> list[Task]:
        """Wait until every task is in a final state; the tasks as they ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ids = list(task_ids)
        pending = ids
        # A batch's ids are one range: count its open tasks in the state index (what
        # is left to read shrinks as tasks end) rather than look each one up.
        span = (min(ids), max(ids)) if ids else None
        if span is not None and (span[1] - span[0] + 1 != len(ids) or len(set(ids)) != len(ids)):
            span = None
        count_open = (
            partial(
                task_queries.open_in_range_sync,
                low=span[0],
                high=span[1],
                open_states=[s.value for s in TaskState if not s.final],
            )
            if span is not None
            else None
        )
        while pending:
            if count_open is not None:
                left = await self.db.read_sync(count_open)
            else:
                pending = await self.db.read_sync(
                    partial(task_queries.unfinished_sync, ids=pending)
                )
                left = len(pending)
            if not left:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{left} tasks still not finished")
            await asyncio.sleep(poll)
        rows = await self.db.read_sync(lambda raw: task_queries.get_many_sync(raw, ids))
        return [Task.from_row(rows[i]) for i in ids if i in rows]

    # -- schedules -------------------------------------------------------------------

    async def schedules(self) -> list[Schedule]:
        async with self.db.read() as conn:
            return [Schedule.from_row(r) for r in await schedule_queries.list_all(conn)]

    async def add_schedule(
        self,
        name: str,
        cron: str,
        kind: str,
        targets: Sequence[str],
        args: Mapping[str, Any] | None = None,
    ) -> Schedule:
        """A recurring task: ``cron`` (5 fields, local time), a kind, its targets.

        A target is a key (domain or name), ``*`` (every target of the kind's type), or
        ``client=NAME``, ``server=NAME``, ``platform=NAME`` (sites or platforms thereof).
        """
        from cockpit.engine import schedules
        from cockpit.model import validate_name

        validate_name(name, "schedule.name")
        recipe = self.registry.get(kind)
        clean = recipe.validate(args)
        next_run = schedules.next_run(cron, time.time())
        selectors = _unique(targets)
        if not selectors:
            raise ValidationError("targets", "a schedule needs at least one target or selector")
        async with self.db.write() as conn:
            await schedules.check_selectors(conn, recipe, selectors)
            if await schedule_queries.get(conn, name) is not None:
                raise ValidationError("schedule.name", "a schedule of that name exists", name)
            await schedule_queries.insert(
                conn,
                name=name,
                cron=cron,
                kind=kind,
                targets=json.dumps(selectors),
                args=dumps(clean),
                created_by=current_user(),
                next_run=next_run,
            )
            row = await schedule_queries.get(conn, name)
        assert row is not None
        return Schedule.from_row(row)

    async def remove_schedule(self, name: str) -> None:
        async with self.db.write() as conn:
            if not await schedule_queries.delete(conn, name):
                raise NotFoundError(f"no schedule {name}")

    async def pause_schedule(self, name: str, paused: bool = True) -> Schedule:
        """Pause (or resume) a schedule; a resumed one next runs at its next cron time."""
        from cockpit.engine import schedules

        async with self.db.write() as conn:
            row = await schedule_queries.get(conn, name)
            if row is None:
                raise NotFoundError(f"no schedule {name}")
            next_run = None if paused else schedules.next_run(str(row["cron"]), time.time())
            await schedule_queries.set_paused(conn, name, paused, next_run)
            row = await schedule_queries.get(conn, name)
        assert row is not None
        return Schedule.from_row(row)

    # -- the worker process --------------------------------------------------------------

    def worker_status(self) -> daemon.WorkerStatus:
        return daemon.status(self.config)

    def start_worker(self) -> daemon.WorkerStatus:
        """Start a detached worker for this store unless one runs (blocking, ~0.5 s)."""
        return daemon.ensure_running(self.config)

    def stop_worker(self, timeout: float = 30.0) -> bool:
        return daemon.stop(self.config, timeout=timeout)

    @property
    def worker_log(self) -> Path:
        return daemon.log_path(self.config)


def _line(row: Sequence[Any]) -> LogLine:
    task_id, seq, at, stream, text = row
    return LogLine(int(task_id), int(seq), float(at), LogStream(stream), str(text))

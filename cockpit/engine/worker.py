"""The worker: claims queued tasks and runs them with bounded concurrency.

One :class:`Worker` per process (``cockpit worker``). Its loops:

- **claim**: while it has room (``concurrency.global_limit``), claim queued tasks in
  one transaction; the store skips busy targets and servers at ``per_server``;
- **heartbeat**: every third of the lease, extend the leases of its running tasks; a
  task it no longer holds (recovered by another worker) is stopped without a trace;
- **cancel**: every half second, look for cancel requests of its tasks;
- **maintenance**: recover tasks of dead workers (expired leases, or dead workers of
  this host), look again at tasks of unknown outcome, fire due schedules.

Recovery of a task a dead worker left running: an idempotent kind is re-queued; a
non-idempotent one is resumed only when the step journal says exactly where it was
(every started step ended, or the one running was detached on the target and can be
re-attached to); otherwise it becomes ``interrupted``, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from cockpit.backends.transport import Transport
from cockpit.config import Config
from cockpit.engine.ends import Claimed, EndGroup
from cockpit.engine.logs import LogWriter
from cockpit.engine.model import StepRecord, StepState, Task, TaskState
from cockpit.engine.recipes import Registry
from cockpit.engine.runner import RunOptions, StopReason, TaskRun
from cockpit.engine.transports import default_transport_factory
from cockpit.model import Server
from cockpit.store import Database
from cockpit.store import tasks as task_queries

log = logging.getLogger(__name__)

#: How many times a dead worker may leave an idempotent task behind before it fails.
MAX_RECOVERIES = 3


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    global_limit: int = 16
    per_server: int = 4
    lease: float = 30.0
    poll: float = 1.0
    cancel_poll: float = 0.5
    maintenance_every: float = 5.0
    schedules: bool = True
    grace: float = 10.0
    run: RunOptions = field(default_factory=RunOptions)

    @classmethod
    def from_config(cls, config: Config, **changes: object) -> WorkerOptions:
        base = cls(
            global_limit=config.concurrency.global_limit,
            per_server=config.concurrency.per_server,
        )
        return replace(base, **changes)  # type: ignore[arg-type]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass
class _Running:
    run: TaskRun
    handle: asyncio.Task[TaskState | None]


class Worker:
    def __init__(
        self,
        db: Database,
        config: Config,
        *,
        registry: Registry | None = None,
        transport_factory: Callable[[Server], Transport] | None = None,
        options: WorkerOptions | None = None,
        worker_id: str | None = None,
        holds_host_lock: bool = False,
    ) -> None:
        self.db = db
        self.config = config
        self.registry = registry or Registry.default()
        self.options = options or WorkerOptions.from_config(config)
        self.id = worker_id or new_worker_id()
        #: The caller holds this host's worker lock on the store: any other worker of
        #: this host found in the store is dead, its tasks recoverable at once.
        self.holds_host_lock = holds_host_lock
        self.logs = LogWriter(db)
        #: Writes the ends of tasks, their journals and the claims of new tasks in
        #: shared transactions (this worker is its claimer).
        self.ends = EndGroup(db, self.logs, claimer=self)
        self.logs.via = self.ends.flush  # lines between ends ride along with the next one
        self._factory = transport_factory or default_transport_factory(config)
        self._transports: dict[str, Transport] = {}
        self._retired: list[Transport] = []
        self._running: dict[int, _Running] = {}
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.claimed = 0
        #: Tasks claimed (or taken over) and not yet ended: the global limit applies here.
        self._slots = 0

    # -- control ---------------------------------------------------------------------

    def wake(self) -> None:
        """New work may be queued: look now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    @property
    def running(self) -> list[int]:
        return sorted(self._running)

    def transport_for(self, server: Server) -> Transport:
        """One transport per server for the worker's life (re-made if the server changed)."""
        current = self._transports.get(server.name)
        if current is not None and current.server == server:
            return current
        if current is not None:
            self._retired.append(current)
        made = self._factory(server)
        self._transports[server.name] = made
        return made

    # -- the main loop ---------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop`; then let running tasks finish for ``grace`` seconds."""
        self.logs.start()
        loops = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._cancel_loop(), name="cancel"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        try:
            self._prepare_transports()
            await self.recover()
            while not self._stop.is_set():
                free = self.options.global_limit - self._slots
                claimed = await self._claim() if free > 0 else 0
                if claimed and claimed == free:
                    continue
                if claimed:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll)
        finally:
            await self._shutdown(loops)

    def _prepare_transports(self) -> None:
        """Load the transports' code before the first task needs it (see
        ``TransportFactory.prepare``); a failure here surfaces again in the tasks."""
        prepare = getattr(self._factory, "prepare", None)
        if prepare is None:
            return
        try:
            prepare()
        except Exception as exc:
            log.warning("preparing the transports failed (tasks will say why): %s", exc)

    async def _claim(self) -> int:
        """Claim what the global limit allows (with the next group of task ends)."""
        try:
            return await self.ends.claim()
        except Exception as exc:
            log.warning("claiming tasks failed (will retry): %s", exc)
            await asyncio.sleep(self.options.poll)
            return 0

    # -- the claimer of the group of ends (see cockpit.engine.ends) ---------------------

    @property
    def worker_id(self) -> str:
        return self.id

    @property
    def lease(self) -> float:
        return self.options.lease

    @property
    def per_server(self) -> int:
        return self.options.per_server

    def claim_room(self) -> int | None:
        """Free slots under the global limit (asked with the writer held, so no claim
        or end races it); None once the worker stops."""
        if self._stop.is_set():
            return None
        return self.options.global_limit - self._slots

    def start_claimed(self, tasks: Sequence[Claimed]) -> None:
        for claim in tasks:
            self._spawn(Task.from_row(claim.row), target=claim.target)
        self.claimed += len(tasks)

    def _spawn(
        self,
        task: Task,
        resume: list[StepRecord] | None = None,
        target: task_queries.Resolved | Exception | None = None,
    ) -> None:
        run = TaskRun(
            task,
            worker=self.id,
            db=self.db,
            config=self.config,
            registry=self.registry,
            logs=self.logs,
            transport_for=self.transport_for,
            options=self.options.run,
            resume=resume,
            on_handoff=self._handoff,
            commit=self.ends.commit,
            target=target,
        )
        handle = asyncio.create_task(self._guarded(run), name=f"task-{task.id}")
        self._running[task.id] = _Running(run, handle)
        self._slots += 1

    async def _guarded(self, run: TaskRun) -> TaskState | None:
        try:
            return await run.run()
        except asyncio.CancelledError:
            return None
        except Exception:
            log.exception("task %s: the engine failed running it", run.task.id)
            with contextlib.suppress(Exception):
                await run._end(
                    TaskState.FAILED, "the engine failed running it (see the worker log)"
                )
            return None
        finally:
            # A slot freed by a committed end was offered to the queue in that very
            # transaction (see _handoff): only a run that ended otherwise (fenced,
            # stopped, its end not written) leaves the claim loop something to do.
            freed_here = not run.slot_released
            if freed_here:
                run.slot_released = True
                self._slots -= 1
            entry = self._running.get(run.task.id)
            if entry is not None and entry.run is run:
                del self._running[run.task.id]
            if freed_here:
                self._wake.set()

    def _handoff(self, run: TaskRun) -> None:
        """A task's end is committed: its slot is free (for the tasks its transaction
        claimed, which start right after)."""
        if not run.slot_released:
            run.slot_released = True
            self._slots -= 1

    async def _shutdown(self, loops: list[asyncio.Task[None]]) -> None:
        if self._running:
            log.info(
                "waiting up to %.0f s for %d running tasks", self.options.grace, len(self._running)
            )
            handles = [r.handle for r in self._running.values()]
            await asyncio.wait(handles, timeout=self.options.grace)
        for entry in list(self._running.values()):
            entry.run.stop_reason = StopReason.SHUTDOWN
            entry.handle.cancel()
        if self._running:
            await asyncio.wait([r.handle for r in self._running.values()], timeout=10)
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ends.close(), 30)
        with contextlib.suppress(Exception):
            await self.logs.close()
        with contextlib.suppress(Exception):
            async with self.db.write() as conn:
                await task_queries.release(conn, self.id)
        for transport in [*self._transports.values(), *self._retired]:
            with contextlib.suppress(Exception):
                await transport.close()
        self._transports.clear()
        closer = getattr(self._factory, "close", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()

    # -- leases and cancel requests ----------------------------------------------------

    async def _heartbeat_loop(self) -> None:
        every = max(0.2, self.options.lease / 3)
        while True:
            await asyncio.sleep(every)
            try:
                async with self.db.write() as conn:
                    held = await task_queries.heartbeat(conn, self.id, self.options.lease)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            for task_id, entry in list(self._running.items()):
                if task_id not in held and not entry.run.finishing and not entry.handle.done():
                    log.warning("task %s was taken over by another worker; stopping it", task_id)
                    entry.run.stop_reason = StopReason.FENCED
                    entry.handle.cancel()

    async def _cancel_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.cancel_poll)
            if not self._running:
                continue
            try:
                async with self.db.read() as conn:
                    wanted = await task_queries.cancel_requests(conn, self.id)
            except Exception as exc:
                log.warning("reading cancel requests failed: %s", exc)
                continue
            for task_id in wanted:
                entry = self._running.get(task_id)
                if entry is None or entry.run.stop_reason is not None or entry.run.finishing:
                    continue
                entry.run.stop_reason = StopReason.CANCEL
                entry.handle.cancel()

    # -- recovery, unknown outcomes, schedules ----------------------------------------------

    async def _maintenance_loop(self) -> None:
        from cockpit.engine.schedules import fire_due

        while True:
            await asyncio.sleep(self.options.maintenance_every)
            try:
                await self.recover()
                await self.recheck_unknown()
                if self.options.schedules and await fire_due(self.db, self.registry):
                    self.wake()
            except Exception as exc:
                log.warning("maintenance failed (will retry): %s", exc)

    async def recover(self) -> int:
        """Recover the tasks dead workers left running; how many were handled."""
        prefix = self.id.split(":", 1)[0] + ":" if self.holds_host_lock else None
        async with self.db.read() as conn:
            rows = await task_queries.orphaned(conn, dead_workers_prefix=prefix, me=self.id)
        handled = 0
        for row in rows:
            if row["id"] in self._running:
                continue
            try:
                handled += await self._recover_one(row)
            except Exception as exc:
                log.warning("recovering task %s failed: %s", row["id"], exc)
        if handled:
            self.wake()
        return handled

    async def _recover_one(self, row: task_queries.Row) -> int:
        task = Task.from_row(row)
        dead = f"worker {task.worker} died (its lease ran out)"
        async with self.db.write() as conn:
            journal = [
                StepRecord.from_row(r)
                for r in await task_queries.steps(conn, task.id, task.attempt)
            ]
            if task.idempotent or not journal:
                if task.idempotent and task.attempt >= task.max_attempts + MAX_RECOVERIES:
                    ok = await task_queries.recover_state(
                        conn, row, "failed", f"{dead}; given up after {task.attempt} attempts"
                    )
                else:
                    why = "re-queued" if task.idempotent else "re-queued (no step had started)"
                    ok = await task_queries.recover_state(conn, row, "queued", f"{why}: {dead}")
                return int(ok)
            if not _resumable(journal):
                last = journal[-1]
                reason = (
                    f"interrupted: {dead} during step {last.name} ({last.state}); it ran on "
                    "the worker, so its outcome cannot be read back from the target. Check "
                    "the target, then retry"
                )
                return int(await task_queries.recover_state(conn, row, "interrupted", reason))
            taken = await task_queries.take_over(conn, row, self.id, self.options.lease)
            if taken is not None:
                await task_queries.copy_steps(conn, task.id, task.attempt, int(taken["attempt"]))
        if taken is None:
            return 0
        self._spawn(Task.from_row(taken), resume=journal)
        return 1

    async def recheck_unknown(self) -> int:
        """Take another look at tasks whose outcome was unknown (their target may be back)."""
        async with self.db.read() as conn:
            rows = await task_queries.unknown_due(conn)
        resumed = 0
        for row in rows:
            if row["id"] in self._running:
                continue
            task = Task.from_row(row)
            async with self.db.write() as conn:
                journal = [
                    StepRecord.from_row(r)
                    for r in await task_queries.steps(conn, task.id, task.attempt)
                ]
                if not _resumable(journal):
                    continue
                taken = await task_queries.take_over(conn, row, self.id, self.options.lease)
                if taken is not None:
                    await task_queries.copy_steps(
                        conn, task.id, task.attempt, int(taken["attempt"])
                    )
            if taken is not None:
                self._spawn(Task.from_row(taken), resume=journal)
                resumed += 1
        return resumed


def _resumable(journal: list[StepRecord]) -> bool:
    """Whether a lost attempt can be continued exactly: every step it started ended
    well, except perhaps the last, which ran detached on the target."""
    if not journal:
        return False
    *before, last = journal
    if any(r.state is not StepState.SUCCEEDED for r in before):
        return False
    if last.state is StepState.SUCCEEDED:
        return True
    return last.state in (StepState.RUNNING, StepState.UNKNOWN) and last.detached


async def run_until(worker: Worker, stop: asyncio.Event) -> None:
    """Run ``worker`` until ``stop`` is set."""

    async def watch() -> None:
        await stop.wait()
        worker.stop()

    watcher = asyncio.create_task(watch())
    try:
        await worker.run()
    finally:
        watcher.cancel()

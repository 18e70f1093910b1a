"""Group commit: the ends of the tasks that finish at about the same moment, their log
lines and the claims of their successors, in one transaction.

The store takes one writer at a time, and every call on its connection is a round trip
to the connection's thread. An :class:`EndGroup` gathers what a worker's tasks hand in
while the writer is busy (a task's end, a step journal entry, the worker's own claim)
and writes it all at once, on the writer's thread: the pending log lines first, then
each body (in a savepoint of its own: a body that fails is rolled back alone, the
others commit), then the claims of new tasks that take the freed slots, each with its
target read in the same transaction. One ``BEGIN IMMEDIATE``, one ``COMMIT`` (one
fsync) and one round trip for the lot.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cockpit.engine.logs import LogWriter
from cockpit.store import Database
from cockpit.store import logs as log_queries
from cockpit.store import tasks as task_queries
from cockpit.store.errors import explain

log = logging.getLogger(__name__)

#: A body: plain code run on the writer's thread inside the group's transaction. It gets
#: its inputs from its closure (values the loop no longer changes), returns its outcome.
Body = Callable[[sqlite3.Connection], Any]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task claimed in a group's transaction, and its target as read in it (or the
    error reading it raised)."""

    row: task_queries.Row
    target: task_queries.Resolved | Exception


class Claimer(Protocol):
    """Who claims tasks in a group's transaction (the worker)."""

    @property
    def worker_id(self) -> str: ...

    @property
    def lease(self) -> float: ...

    @property
    def per_server(self) -> int: ...

    def claim_room(self) -> int | None:
        """How many more tasks may be claimed now, before the group's ends free their
        slots (negative: over the limit); None: claim nothing. Asked with the writer held."""

    def start_claimed(self, tasks: Sequence[Claimed]) -> None:
        """Tasks claimed in a committed transaction: start them."""


@dataclass
class _Pending:
    body: Body | None
    committed: Callable[[Any], None]
    done: asyncio.Future[Any]
    #: a task's end: once its body succeeds, its slot is free for a task claimed here
    ending: bool
    #: wants the group to claim what the free slots allow
    claims: bool


@dataclass
class _Outcome:
    results: list[tuple[bool, Any]]
    claimed: list[Claimed]
    claim_error: Exception | None


class EndGroup:
    """Writes what a worker's tasks hand in, a transaction per group (see the module).

    ``committed`` of an item runs as soon as its transaction commits, even if the task
    that handed it in was cancelled meanwhile; the caller gets the body's result, or
    its exception (a StoreError for the store's own errors).
    """

    def __init__(self, db: Database, logs: LogWriter, claimer: Claimer | None = None) -> None:
        self.db = db
        self.logs = logs
        self.claimer = claimer
        self._queue: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None
        #: How many transactions were written.
        self.transactions = 0
        #: How many of them ended a task and claimed a task in the freed slot.
        self.handoffs = 0

    async def commit(
        self,
        body: Body | None,
        committed: Callable[[Any], None],
        *,
        ending: bool = False,
        claims: bool = False,
    ) -> Any:
        """Write ``body`` with the next group; its result once that commits. ``ending``:
        a task's end, whose slot the group fills with a task it claims; ``claims``: claim
        what the free slots allow even without an end (the worker's own claim)."""
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(body, committed, done, ending, claims or ending))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain(), name="task-ends")
        # shielded: a task cancelled while its end waits still has its end written
        return await asyncio.shield(done)

    async def flush(self) -> None:
        """Write the pending log lines with the next group."""
        await self.commit(None, _nothing)

    async def claim(self) -> int:
        """Claim what the free slots allow, with the next group; how many were claimed."""
        claimed: int = await self.commit(None, _nothing, claims=True)
        return claimed

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                outcome = await self._write(group)
            except asyncio.CancelledError:
                for item in group:
                    item.done.cancel()
                raise
            except Exception as exc:
                for item in group:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item, (ok, value) in zip(group, outcome.results, strict=True):
                if ok:
                    self._settle(item, len(outcome.claimed) if item.body is None else value)
                elif not item.done.done():
                    item.done.set_exception(value)
            pairs = zip(group, outcome.results, strict=True)
            ended = any(item.ending and ok for item, (ok, _) in pairs)
            if outcome.claimed and ended:
                self.handoffs += 1
            if outcome.claim_error is not None:
                log.warning("claiming tasks failed (will retry): %s", outcome.claim_error)
            if outcome.claimed and self.claimer is not None:
                try:
                    self.claimer.start_claimed(outcome.claimed)
                except Exception:
                    log.exception("starting the tasks claimed failed")

    async def _write(self, group: list[_Pending]) -> _Outcome:
        bodies = [(item.body, item.ending) for item in group]
        claimer = self.claimer
        async with self.db.writer_turn() as turn:
            # Decided with the writer held: nothing else claims or ends meanwhile.
            room = None
            if claimer is not None and any(item.claims for item in group):
                room = claimer.claim_room()
            spec = (
                (claimer.worker_id, claimer.lease, claimer.per_server)
                if claimer is not None
                else None
            )
            rows = self.logs.take()

            def transaction(raw: sqlite3.Connection) -> _Outcome:
                if rows:
                    log_queries.append_sync(raw, rows)
                results, freed = _run_bodies(raw, bodies)
                claimed: list[Claimed] = []
                error = None
                if room is not None and spec is not None and room + freed > 0:
                    try:
                        claimed = _claim(raw, spec, room + freed)
                    except Exception as exc:
                        error = exc
                return _Outcome(results, claimed, error)

            try:
                outcome = await turn.write_sync(transaction)
            except BaseException:
                self.logs.put_back(rows)
                raise
        self.transactions += 1
        if rows:
            self.logs.batches += 1
        outcome.results = [
            (ok, explain(value, self.db.path) if isinstance(value, sqlite3.Error) else value)
            for ok, value in outcome.results
        ]
        return outcome

    @staticmethod
    def _settle(item: _Pending, result: Any) -> None:
        try:
            item.committed(result)
        except Exception:
            log.exception("after a task's end was written")
        if not item.done.done():
            item.done.set_result(result)

    async def close(self) -> None:
        """Wait until every item handed in is written."""
        while self._drainer is not None and not self._drainer.done():
            await asyncio.wait([self._drainer])


def _nothing(_result: Any) -> None:
    return None


def _run_bodies(
    raw: sqlite3.Connection, bodies: Sequence[tuple[Body | None, bool]]
) -> tuple[list[tuple[bool, Any]], int]:
    """Each body in a savepoint of its own; (ok, result or exception) each, and how many
    slots the ends that succeeded free."""
    results: list[tuple[bool, Any]] = []
    freed = 0
    for body, ending in bodies:
        if body is None:
            results.append((True, None))
            continue
        raw.execute("SAVEPOINT task_end")
        try:
            value = body(raw)
        except Exception as exc:
            raw.execute("ROLLBACK TO task_end")
            raw.execute("RELEASE task_end")
            results.append((False, exc))
            continue
        raw.execute("RELEASE task_end")
        results.append((True, value))
        freed += ending
    return results, freed


def _claim(raw: sqlite3.Connection, spec: tuple[str, float, int], limit: int) -> list[Claimed]:
    """Claim up to ``limit`` tasks and read their targets (in a savepoint: a failure
    claims nothing and leaves the ends alone)."""
    worker, lease, per_server = spec
    raw.execute("SAVEPOINT task_claims")
    try:
        rows = task_queries.claim_sync(raw, worker, lease=lease, per_server=per_server, limit=limit)
    except Exception:
        raw.execute("ROLLBACK TO task_claims")
        raw.execute("RELEASE task_claims")
        raise
    raw.execute("RELEASE task_claims")
    claimed = []
    for row in rows:
        target: task_queries.Resolved | Exception
        try:
            target = task_queries.resolve_target_sync(
                raw, str(row["target_kind"]), str(row["target_key"])
            )
        except Exception as exc:  # the run fails with it, as a read when it starts would
            target = exc
        claimed.append(Claimed(row, target))
    return claimed

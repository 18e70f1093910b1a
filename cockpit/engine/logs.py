"""Task logs: lines redacted, numbered and written to the store in batches.

One :class:`LogWriter` per worker collects the lines of every task it runs and writes
them in one transaction every ``interval`` (or sooner when many are waiting), never a
transaction per line. Each task's known secrets are replaced with ``***`` before a
line is even buffered, so a secret never reaches the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from cockpit.engine.model import LogStream
from cockpit.store import Database
from cockpit.store import logs as log_queries

REDACTED: Final = "***"

log = logging.getLogger(__name__)


class Redactor:
    """Replaces every known secret in a text with ``***`` (longest secrets first)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret or secret in self._secrets:
            return
        self._secrets.add(secret)
        ordered = sorted(self._secrets, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(REDACTED, text)


class TaskLog:
    """The log of one task: numbered lines, redacted, handed to the writer."""

    def __init__(self, writer: LogWriter, task_id: int, last_seq: int) -> None:
        self.writer = writer
        self.task_id = task_id
        self.seq = last_seq
        self.redact = Redactor()

    def secret(self, value: str) -> None:
        self.redact.add(value)

    def write(
        self, text: str, stream: LogStream = LogStream.ENGINE, *, redact: bool = True
    ) -> None:
        """Add a line. ``redact=False`` only for the engine's own lines that hold no
        data but numbers (read back verbatim, see ``TaskContext.detached``)."""
        self.seq += 1
        line = self.redact(text) if redact else text
        self.writer.add((self.task_id, self.seq, time.time(), stream.value, line))


class LogWriter:
    """Buffers log lines and writes them to the store in batches."""

    def __init__(self, db: Database, *, interval: float = 0.2, high_water: int = 2000) -> None:
        self.db = db
        self.interval = interval
        self.high_water = high_water
        self._pending: list[log_queries.LogRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        #: How many batches of lines were written (each in a transaction shared with
        #: nothing else, or riding along with a task's end).
        self.batches = 0
        #: Writes the pending lines in a transaction shared with other writes (a
        #: worker's group of task ends); None: a transaction of their own.
        self.via: Callable[[], Awaitable[object]] | None = None

    async def open(self, task_id: int) -> TaskLog:
        """The log of a task, numbered on from the lines it already has (a resumed task)."""
        async with self.db.read() as conn:
            last = await log_queries.last_seq(conn, task_id)
        return TaskLog(self, task_id, last)

    def add(self, row: log_queries.LogRow) -> None:
        self._pending.append(row)
        if len(self._pending) >= self.high_water:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            if self.via is not None:
                await self.via()
                return
            async with self.db.writer_turn() as turn:
                # Taken once the writer is ours, not before: a task's final state is
                # written with every line it had logged (see take), so a line must
                # never wait here for a writer held by that final write.
                rows = self.take()
                if not rows:
                    return
                try:
                    await turn.write_sync(lambda raw: log_queries.append_sync(raw, rows))
                except BaseException:
                    self.put_back(rows)
                    raise
                self.batches += 1

    def take(self) -> list[log_queries.LogRow]:
        """Every pending line, for a transaction the caller is about to write (on the
        writer's thread, with ``log_queries.append_sync``). The caller holds the writer
        (``Database.writer_turn``), and hands the lines back with :meth:`put_back` if
        that transaction fails."""
        rows, self._pending = self._pending, []
        return rows

    def put_back(self, rows: list[log_queries.LogRow]) -> None:
        """Lines taken for a transaction that failed: written with the next one.
        (Rewriting lines a transaction stored after all stores nothing twice: a line
        is keyed by task and sequence number.)"""
        self._pending[:0] = rows

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:
                log.warning("cannot write task logs to the store (will retry): %s", exc)
                await asyncio.sleep(1)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="log-writer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

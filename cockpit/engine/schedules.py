"""Schedules: recurring tasks in cron syntax, fired by the workers.

A schedule names a kind, its targets (keys, or selectors resolved when it fires: ``*``,
``client=NAME``, ``server=NAME``, ``platform=NAME``), args, and a 5-field cron
expression read in the worker's local time. A worker fires a due schedule by moving
its ``next_run`` forward in the same transaction that queues the batch, only if no
other worker moved it first: each run fires once, however many workers there are.
A worker that was down for a while fires a missed schedule once, not once per miss.
Scheduled tasks have the scheduled priority (interactive work goes first), and a
target that still has a queued task of the same schedule gets no second one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime

import aiosqlite
from croniter import croniter

from cockpit.engine.model import Priority, Schedule, TargetKind
from cockpit.engine.recipes import Registry, TaskKind
from cockpit.model import ValidationError
from cockpit.store import Database
from cockpit.store import schedules as schedule_queries
from cockpit.store import tasks as task_queries

log = logging.getLogger(__name__)

_SELECTOR_KEYS = {
    TargetKind.SITE: ("client", "server", "platform"),
    TargetKind.PLATFORM: ("server",),
    TargetKind.SERVER: (),
    TargetKind.CONTROL: (),
}


def next_run(cron: str, after: float) -> float:
    """The first time after ``after`` (Unix seconds) that ``cron`` names, in local time."""
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ValidationError(
            "cron", "must have 5 fields: minute hour day-of-month month day-of-week", cron
        )
    try:
        base = datetime.fromtimestamp(after).astimezone()
        return float(croniter(cron, base).get_next(float))
    except (ValueError, KeyError) as exc:
        raise ValidationError("cron", f"is not a valid cron expression ({exc})", cron) from None


def _parse(selector: str) -> tuple[str, str] | None:
    key, eq, value = selector.partition("=")
    return (key, value) if eq else None


async def check_selectors(
    conn: aiosqlite.Connection, kind: TaskKind, selectors: Sequence[str]
) -> None:
    """Refuse selectors that name nothing (a typo in a domain) or do not fit the kind."""
    plain = []
    for selector in selectors:
        if selector == "*":
            continue
        parsed = _parse(selector)
        if parsed is None:
            plain.append(selector)
            continue
        if parsed[0] not in _SELECTOR_KEYS[kind.target]:
            valid = ", ".join(f"{k}=NAME" for k in _SELECTOR_KEYS[kind.target]) or "none"
            raise ValidationError(
                "targets", f"{selector!r} does not select {kind.target}s (valid: *, {valid})"
            )
    found = await task_queries.target_servers(conn, kind.target.value, plain)
    missing = [k for k in plain if k not in found]
    if missing:
        raise ValidationError("targets", f"no such {kind.target}: {', '.join(missing[:10])}")


async def resolve(
    conn: aiosqlite.Connection, kind: TaskKind, selectors: Sequence[str]
) -> list[str]:
    """The target keys a schedule's selectors name now."""
    keys: dict[str, None] = {}
    target = kind.target.value
    for selector in selectors:
        if selector == "*":
            found = await task_queries.target_keys(conn, target)
        elif (parsed := _parse(selector)) is not None:
            name, value = parsed
            found = await task_queries.target_keys(
                conn,
                target,
                server=value if name == "server" else None,
                client=value if name == "client" else None,
                platform=value if name == "platform" else None,
            )
        else:
            found = [selector]
        for key in found:
            keys.setdefault(key, None)
    return list(keys)


async def fire_due(db: Database, registry: Registry, *, now: float | None = None) -> int:
    """Queue the batches of every due schedule; how many tasks were queued."""
    from cockpit.engine.queue import queue_tasks

    async with db.read() as conn:
        due = [Schedule.from_row(r) for r in await schedule_queries.due(conn)]
    queued = 0
    for schedule in due:
        moment = time.time() if now is None else now
        try:
            following = next_run(schedule.cron, moment)
        except ValidationError as exc:
            log.warning("schedule %s: %s; pausing it", schedule.name, exc)
            async with db.write() as conn:
                await schedule_queries.set_paused(conn, schedule.name, True)
            continue
        async with db.write() as conn:
            first_time = schedule.next_run is None
            if not await schedule_queries.advance(
                conn, schedule.id, schedule.next_run, following, fired=not first_time
            ):
                continue  # another worker fired it
            if first_time:
                continue  # a schedule added without a next run: start counting now
            if schedule.kind not in registry:
                log.warning("schedule %s: no task kind %s here", schedule.name, schedule.kind)
                continue
            kind = registry.get(schedule.kind)
            keys = await resolve(conn, kind, schedule.targets)
            batch, ids = await queue_tasks(
                conn,
                kind,
                keys,
                schedule.args,
                priority=Priority.SCHEDULED,
                label=f"schedule {schedule.name}",
                queued_by=f"schedule {schedule.name}",
                schedule_id=schedule.id,
                missing_ok=True,
            )
            await schedule_queries.set_last_batch(conn, schedule.id, int(batch["id"]))
        queued += len(ids)
    return queued

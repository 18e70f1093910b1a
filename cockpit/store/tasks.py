"""Queries on tasks, their batches and their steps: queueing, claiming, leases, recovery.

Rows come back as plain dicts (column name -> value); :mod:`cockpit.engine.model`
turns them into its records (the engine sits above the store and owns that model).

Times are Unix seconds from the database's own clock (:data:`NOW`), so every worker
judges a lease by the same clock. Every change a worker makes to a task it runs is
fenced by ``worker`` and ``attempt``: a worker that lost its lease (and whose task was
recovered by another) changes nothing any more.

The claim is one ``UPDATE … WHERE id = (SELECT …) RETURNING``: the sub-select walks the
queue index in claim order (``INDEXED BY``: without statistics SQLite would rather scan
and sort every queued row), skips targets that are busy and servers at their limit, and
the partial unique index ``tasks_one_running_per_target`` refuses a second running task
on one target even if two claimers raced past that filter (as they can on a database
without SQLite's single writer); :func:`claim` treats that refusal as "nothing claimed
this time".

The functions with a ``_sync`` suffix take a plain sqlite3 connection and run on its
own thread (:meth:`Database.write_sync <cockpit.store.db.Database.write_sync>`): a
worker claims, journals and ends its tasks with them, a whole transaction per round
trip to that thread. Their ``async`` namesakes run them the same way, inside the
caller's transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import aiosqlite

from cockpit.model import Platform, Server, Service, ServiceKind, Site
from cockpit.store.db import on_thread
from cockpit.store.rows import loads, trusted

#: Now, in Unix seconds with sub-second precision, by the database's clock.
NOW: Final = "((julianday('now') - 2440587.5) * 86400.0)"

Row = dict[str, Any]

COLUMNS: Final = (
    "id, kind, target_kind, target_key, server, args, state, priority, idempotent, attempt,"
    " max_attempts, batch_id, schedule_id, retry_of, queued_by, worker, lease_until,"
    " not_before, cancel_requested, step, result, created_at, started_at, finished_at"
)
_SELECT: Final = f"SELECT {COLUMNS} FROM tasks"
RUNNING_STATES: Final = ("running", "unknown")
FINAL_STATES: Final = ("succeeded", "failed", "cancelled", "interrupted", "unknown")


Params = Sequence[object] | Mapping[str, object]


async def _rows(db: aiosqlite.Connection, sql: str, args: Params = ()) -> list[Row]:
    bound = dict(args) if isinstance(args, Mapping) else tuple(args)
    async with db.execute(sql, bound) as cursor:
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in await cursor.fetchall()]


async def _one(db: aiosqlite.Connection, sql: str, args: Params = ()) -> Row | None:
    rows = await _rows(db, sql, args)
    return rows[0] if rows else None


def _rows_sync(raw: sqlite3.Connection, sql: str, args: Params = ()) -> list[Row]:
    cursor = raw.execute(sql, dict(args) if isinstance(args, Mapping) else tuple(args))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _changed_sync(raw: sqlite3.Connection, sql: str, args: Sequence[object]) -> bool:
    """Whether an ``… RETURNING id`` statement changed a row."""
    return bool(raw.execute(sql, tuple(args)).fetchall())


async def now(db: aiosqlite.Connection) -> float:
    async with db.execute(f"SELECT {NOW}") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return float(row[0])


# ---------------------------------------------------------------------------
# Targets
# ---------------------------------------------------------------------------

_TARGET_SQL: Final = {
    "server": "SELECT name, name FROM servers",
    "platform": "SELECT p.name, s.name FROM platforms p JOIN servers s ON s.id = p.server_id",
    "site": (
        "SELECT st.domain, s.name FROM sites st JOIN platforms p ON p.id = st.platform_id"
        " JOIN servers s ON s.id = p.server_id"
    ),
}
_TARGET_KEY: Final = {"server": "name", "platform": "p.name", "site": "st.domain"}
_CHUNK: Final = 500


async def target_servers(
    db: aiosqlite.Connection, target_kind: str, keys: Sequence[str]
) -> dict[str, str]:
    """``{key: server name}`` for the targets of ``target_kind`` that exist among ``keys``."""
    if target_kind == "control":
        return {key: "" for key in keys if key == "store"}
    base = _TARGET_SQL[target_kind]
    wanted = set(keys)
    out: dict[str, str] = {}
    if len(wanted) > 4 * _CHUNK:
        async with db.execute(base) as cursor:
            async for key, server in cursor:
                if key in wanted:
                    out[key] = server
        return out
    column = _TARGET_KEY[target_kind]
    ordered = sorted(wanted)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        async with db.execute(f"{base} WHERE {column} IN ({marks})", chunk) as cursor:
            async for key, server in cursor:
                out[key] = server
    return out


#: What a task's target resolves to: (server, platform, site), None where there is none.
Resolved = tuple[Server | None, Platform | None, Site | None]


def resolve_target_sync(raw: sqlite3.Connection, target_kind: str, key: str) -> Resolved:
    """The server, platform and site of a target as the inventory has them now, read
    with the entity modules' own queries (on the connection's thread): a site gives all
    three, a platform its server too. None for what the target kind has not, or what
    the inventory no longer holds (a missing site leaves all three None)."""
    from cockpit.store import platforms, servers, sites

    site = platform = server = None
    platform_name = server_name = None
    if target_kind == "site":
        row = raw.execute(sites._SELECT + " WHERE st.domain = ?", (key,)).fetchone()
        if row is None:
            return None, None, None
        site = sites._site(row)
        platform_name = site.platform
    elif target_kind == "platform":
        platform_name = key
    elif target_kind == "server":
        server_name = key
    if platform_name is not None:
        row = raw.execute(platforms._SELECT + " WHERE p.name = ?", (platform_name,)).fetchone()
        if row is None:
            return None, None, site
        platform = platforms._platform(row)
        server_name = platform.server
    if server_name is not None:
        row = raw.execute(servers._SELECT + " WHERE name = ?", (server_name,)).fetchone()
        if row is not None:
            server = servers._server(row, _services_sync(raw, int(row[0])))
    return server, platform, site


def _services_sync(raw: sqlite3.Connection, server_id: int) -> list[Service]:
    """A server's services, as ``servers.get`` reads them."""
    return [
        trusted(Service, kind=ServiceKind(kind), type=type_, settings=loads(settings))
        for kind, type_, settings in raw.execute(
            "SELECT kind, type, settings FROM services WHERE server_id = ? ORDER BY kind, type",
            (server_id,),
        )
    ]


async def target_keys(
    db: aiosqlite.Connection,
    target_kind: str,
    *,
    server: str | None = None,
    client: str | None = None,
    platform: str | None = None,
) -> list[str]:
    """Every target of a kind, optionally narrowed (used by schedules: ``*``, ``client=…``)."""
    if target_kind == "control":
        return ["store"]
    sql = _TARGET_SQL[target_kind]
    clauses: list[str] = []
    args: list[object] = []
    if server is not None:
        clauses.append("s.name = ?" if target_kind != "server" else "name = ?")
        args.append(server)
    if platform is not None and target_kind == "site":
        clauses.append("p.name = ?")
        args.append(platform)
    if client is not None and target_kind == "site":
        clauses.append("st.client_id = (SELECT id FROM clients WHERE name = ?)")
        args.append(client)
    if clauses:
        sql += " WHERE " + " AND ".join(clauses)
    async with db.execute(sql + " ORDER BY 1", args) as cursor:
        return [key async for key, _server in cursor]


# ---------------------------------------------------------------------------
# Queueing
# ---------------------------------------------------------------------------


async def insert_batch(db: aiosqlite.Connection, label: str, queued_by: str) -> Row:
    row = await _one(
        db,
        f"INSERT INTO batches (label, queued_by, created_at) VALUES (?, ?, {NOW})"
        " RETURNING id, label, queued_by, created_at",
        (label, queued_by),
    )
    assert row is not None
    return row


async def get_batch(db: aiosqlite.Connection, batch_id: int) -> Row | None:
    return await _one(
        db, "SELECT id, label, queued_by, created_at FROM batches WHERE id = ?", (batch_id,)
    )


async def insert_tasks(
    db: aiosqlite.Connection,
    *,
    kind: str,
    target_kind: str,
    targets: Mapping[str, str],
    args: str,
    priority: int,
    idempotent: bool,
    max_attempts: int,
    batch_id: int,
    queued_by: str,
    schedule_id: int | None = None,
    retry_of: int | None = None,
    skip_queued_of_schedule: bool = False,
) -> list[int]:
    """Queue one task per ``targets`` entry (key -> server) in batch ``batch_id``; their ids.

    With ``skip_queued_of_schedule``, a target that still has a queued task of the same
    schedule gets no second one (a slow queue does not pile up minute-by-minute work).
    """
    created = await now(db)
    rows = [
        (
            kind,
            target_kind,
            key,
            server,
            args,
            priority,
            int(idempotent),
            max_attempts,
            batch_id,
            schedule_id,
            retry_of,
            queued_by,
            created,
        )
        for key, server in targets.items()
    ]
    insert = (
        "INSERT INTO tasks (kind, target_kind, target_key, server, args, priority, idempotent,"
        " max_attempts, batch_id, schedule_id, retry_of, queued_by, created_at)"
    )
    if skip_queued_of_schedule and schedule_id is not None:
        await db.executemany(
            insert + " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS ("
            "SELECT 1 FROM tasks q WHERE q.state = 'queued' AND q.schedule_id = ?10"
            " AND q.target_kind = ?2 AND q.target_key = ?3)",
            rows,
        )
    else:
        await db.executemany(insert + " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    async with db.execute(
        "SELECT id FROM tasks WHERE batch_id = ? ORDER BY id", (batch_id,)
    ) as cursor:
        return [int(r[0]) for r in await cursor.fetchall()]


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------


async def get(db: aiosqlite.Connection, task_id: int) -> Row | None:
    return await _one(db, _SELECT + " WHERE id = ?", (task_id,))


async def list_tasks(
    db: aiosqlite.Connection,
    *,
    states: Sequence[str] = (),
    batch_id: int | None = None,
    target_kind: str | None = None,
    target_key: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Row]:
    """Tasks, newest first, filtered by state(s), batch, target or kind."""
    clauses: list[str] = []
    args: list[object] = []
    if states:
        clauses.append(f"state IN ({','.join('?' * len(states))})")
        args.extend(states)
    if batch_id is not None:
        clauses.append("batch_id = ?")
        args.append(batch_id)
    if target_kind is not None:
        clauses.append("target_kind = ?")
        args.append(target_kind)
    if target_key is not None:
        clauses.append("target_key = ?")
        args.append(target_key)
    if kind is not None:
        clauses.append("kind = ?")
        args.append(kind)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    # A batch's page is a range of tasks_batch_order (batch_id, id); a batch's tasks in
    # some states come from tasks_batch (batch_id, state), which holds only those (the
    # planner, without statistics, would walk the whole batch in id order instead).
    source = " INDEXED BY tasks_batch" if states and batch_id is not None else ""
    return await _rows(
        db,
        _SELECT + source + where + " ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )


async def counts(db: aiosqlite.Connection, batch_id: int | None = None) -> dict[str, int]:
    """How many tasks are in each state (of one batch, or of all)."""
    args: tuple[object, ...] = ()
    if batch_id is None:
        sql = "SELECT state, count(*) FROM tasks GROUP BY state"
    else:
        sql = "SELECT state, count(*) FROM tasks WHERE batch_id = ? GROUP BY state"
        args = (batch_id,)
    async with db.execute(sql, args) as cursor:
        return {state: int(n) async for state, n in cursor}


async def states(db: aiosqlite.Connection, ids: Sequence[int]) -> dict[int, str]:
    return await on_thread(db, lambda raw: states_sync(raw, ids))


def states_sync(raw: sqlite3.Connection, ids: Sequence[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        for id_, state in raw.execute(f"SELECT id, state FROM tasks WHERE id IN ({marks})", chunk):
            out[int(id_)] = str(state)
    return out


def unfinished_sync(raw: sqlite3.Connection, ids: Sequence[int]) -> list[int]:
    """Those of ``ids`` that are tasks not yet in a final state, in the order given."""
    found: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        finals = ",".join("?" * len(FINAL_STATES))
        sql = f"SELECT id FROM tasks WHERE id IN ({marks}) AND state NOT IN ({finals})"
        found.update(int(r[0]) for r in raw.execute(sql, (*chunk, *FINAL_STATES)))
    return [i for i in ids if i in found]


def open_in_range_sync(
    raw: sqlite3.Connection, low: int, high: int, open_states: Sequence[str]
) -> int:
    """How many tasks with ids from ``low`` to ``high`` are in one of ``open_states``
    (the states that are not final): a range of the state index, which holds only the
    tasks still open, so a poll of a batch costs little however large it is."""
    marks = ",".join("?" * len(open_states))
    sql = (
        f"SELECT count(*) FROM tasks INDEXED BY tasks_state"
        f" WHERE state IN ({marks}) AND id BETWEEN ? AND ?"
    )
    return int(raw.execute(sql, (*open_states, low, high)).fetchone()[0])


def get_many_sync(raw: sqlite3.Connection, ids: Sequence[int]) -> dict[int, Row]:
    """The rows of the tasks among ``ids`` that exist, by id."""
    out: dict[int, Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        for row in _rows_sync(raw, _SELECT + f" WHERE id IN ({marks})", chunk):
            out[int(row["id"])] = row
    return out


# ---------------------------------------------------------------------------
# Claiming and leases
# ---------------------------------------------------------------------------

_CLAIM: Final = f"""
UPDATE tasks
   SET state = 'running', worker = :worker, attempt = attempt + 1,
       lease_until = {NOW} + :lease, started_at = {NOW}, finished_at = NULL, step = '',
       cancel_requested = 0
 WHERE id = (
    SELECT t.id FROM tasks t INDEXED BY tasks_queue
     WHERE t.state = 'queued' AND t.not_before <= {NOW}
       AND t.server NOT IN (SELECT value FROM json_each(:full))
       AND NOT EXISTS (
           SELECT 1 FROM tasks r
            WHERE r.target_kind = t.target_kind AND r.target_key = t.target_key
              AND r.state IN ('running', 'unknown'))
       AND (t.server = '' OR (
           SELECT count(*) FROM tasks s INDEXED BY tasks_running_server
            WHERE s.server = t.server AND s.state = 'running'
           ) < :per_server)
     ORDER BY t.priority DESC, t.id
     LIMIT 1)
RETURNING {COLUMNS}
"""


_RUNNING_PER_SERVER: Final = (
    "SELECT server, count(*) FROM tasks INDEXED BY tasks_running_server"
    " WHERE state = 'running' AND server != '' GROUP BY server"
)


async def claim(
    db: aiosqlite.Connection, worker: str, *, lease: float, per_server: int, limit: int = 1
) -> list[Row]:
    """Claim up to ``limit`` queued tasks for ``worker`` (in the caller's write transaction)."""
    return await on_thread(
        db, lambda raw: claim_sync(raw, worker, lease=lease, per_server=per_server, limit=limit)
    )


def claim_sync(
    raw: sqlite3.Connection, worker: str, *, lease: float, per_server: int, limit: int = 1
) -> list[Row]:
    """:func:`claim` on the connection's thread."""
    claimed: list[Row] = []
    if limit <= 0:
        return claimed
    # The servers at their limit, known up front: the claim passes over their queued
    # tasks without counting their running ones again for each (an optimisation only:
    # the count in the claim decides, on the same transaction's data).
    running = dict(raw.execute(_RUNNING_PER_SERVER).fetchall())
    params: dict[str, object] = {"worker": worker, "lease": lease, "per_server": per_server}
    for _ in range(limit):
        params["full"] = json.dumps([s for s, n in running.items() if n >= per_server])
        try:
            rows = _rows_sync(raw, _CLAIM, params)
        except sqlite3.IntegrityError:
            break  # the unique index refused a second running task on a target
        if not rows:
            break
        claimed.append(rows[0])
        server = rows[0]["server"]
        if server:
            running[server] = running.get(server, 0) + 1
    return claimed


async def heartbeat(db: aiosqlite.Connection, worker: str, lease: float) -> set[int]:
    """Extend the leases of ``worker``'s running tasks; the ids it still holds."""
    async with db.execute(
        f"UPDATE tasks SET lease_until = {NOW} + ? WHERE worker = ? AND state = 'running'"
        " RETURNING id",
        (lease, worker),
    ) as cursor:
        return {int(r[0]) for r in await cursor.fetchall()}


async def extend(db: aiosqlite.Connection, task_id: int, worker: str, lease: float) -> bool:
    async with db.execute(
        f"UPDATE tasks SET lease_until = {NOW} + ? WHERE id = ? AND worker = ?"
        " AND state = 'running' RETURNING id",
        (lease, task_id, worker),
    ) as cursor:
        return await cursor.fetchone() is not None


_SET_STEP: Final = "UPDATE tasks SET step = ? WHERE id = ? AND worker = ? AND attempt = ?"


async def set_step(
    db: aiosqlite.Connection, task_id: int, worker: str, attempt: int, step: str
) -> None:
    await db.execute(_SET_STEP, (step, task_id, worker, attempt))


def set_step_sync(
    raw: sqlite3.Connection, task_id: int, worker: str, attempt: int, step: str
) -> None:
    raw.execute(_SET_STEP, (step, task_id, worker, attempt))


_FINISH: Final = (
    f"UPDATE tasks SET state = ?, result = ?, finished_at = {NOW}, lease_until = NULL,"
    " cancel_requested = 0"
    " WHERE id = ? AND worker = ? AND attempt = ? AND state = 'running' RETURNING id"
)


async def finish(
    db: aiosqlite.Connection,
    task_id: int,
    worker: str,
    attempt: int,
    state: str,
    result: str,
) -> bool:
    """End a task this worker runs; False when it is no longer ours (fenced)."""
    return await on_thread(
        db, lambda raw: finish_sync(raw, task_id, worker, attempt, state, result)
    )


def finish_sync(
    raw: sqlite3.Connection, task_id: int, worker: str, attempt: int, state: str, result: str
) -> bool:
    """:func:`finish` on the connection's thread."""
    return _changed_sync(raw, _FINISH, (state, result, task_id, worker, attempt))


_REQUEUE: Final = (
    f"UPDATE tasks SET state = 'queued', result = ?, not_before = {NOW} + ?,"
    " lease_until = NULL, worker = NULL, step = ''"
    " WHERE id = ? AND worker = ? AND attempt = ? AND state = 'running' RETURNING id"
)


async def requeue(
    db: aiosqlite.Connection,
    task_id: int,
    worker: str,
    attempt: int,
    delay: float,
    result: str,
) -> bool:
    """Put a task this worker runs back in the queue, not before ``delay`` seconds."""
    return await on_thread(
        db, lambda raw: requeue_sync(raw, task_id, worker, attempt, delay, result)
    )


def requeue_sync(
    raw: sqlite3.Connection, task_id: int, worker: str, attempt: int, delay: float, result: str
) -> bool:
    """:func:`requeue` on the connection's thread."""
    return _changed_sync(raw, _REQUEUE, (result, delay, task_id, worker, attempt))


async def release(db: aiosqlite.Connection, worker: str) -> int:
    """A stopping worker's running tasks: leases ended now, for the next worker to recover."""
    cursor = await db.execute(
        f"UPDATE tasks SET lease_until = {NOW} - 1 WHERE worker = ? AND state = 'running'",
        (worker,),
    )
    return cursor.rowcount


# ---------------------------------------------------------------------------
# Cancelling and retrying
# ---------------------------------------------------------------------------


async def cancel_queued(db: aiosqlite.Connection, task_id: int, result: str) -> bool:
    async with db.execute(
        f"UPDATE tasks SET state = 'cancelled', result = ?, finished_at = {NOW}"
        " WHERE id = ? AND state = 'queued' RETURNING id",
        (result, task_id),
    ) as cursor:
        return await cursor.fetchone() is not None


async def request_cancel(db: aiosqlite.Connection, task_id: int) -> bool:
    async with db.execute(
        "UPDATE tasks SET cancel_requested = 1 WHERE id = ? AND state = 'running' RETURNING id",
        (task_id,),
    ) as cursor:
        return await cursor.fetchone() is not None


async def cancel_requests(db: aiosqlite.Connection, worker: str) -> set[int]:
    async with db.execute(
        "SELECT id FROM tasks WHERE worker = ? AND state = 'running' AND cancel_requested = 1",
        (worker,),
    ) as cursor:
        return {int(r[0]) for r in await cursor.fetchall()}


async def abandon_unknown(db: aiosqlite.Connection, task_id: int, result: str) -> bool:
    """An operator gives up on an unknown outcome: the task becomes ``interrupted``."""
    async with db.execute(
        f"UPDATE tasks SET state = 'interrupted', result = ?, finished_at = coalesce("
        f"finished_at, {NOW}) WHERE id = ? AND state = 'unknown' RETURNING id",
        (result, task_id),
    ) as cursor:
        return await cursor.fetchone() is not None


async def insert_retry(db: aiosqlite.Connection, row: Row, priority: int, queued_by: str) -> int:
    cursor = await db.execute(
        "INSERT INTO tasks (kind, target_kind, target_key, server, args, priority, idempotent,"
        " max_attempts, batch_id, schedule_id, retry_of, queued_by, created_at)"
        f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, {NOW})",
        (
            row["kind"],
            row["target_kind"],
            row["target_key"],
            row["server"],
            row["args"],
            priority,
            row["idempotent"],
            row["max_attempts"],
            row["batch_id"],
            row["id"],
            queued_by,
        ),
    )
    assert cursor.lastrowid is not None
    return int(cursor.lastrowid)


# ---------------------------------------------------------------------------
# Recovery
# ---------------------------------------------------------------------------


async def orphaned(
    db: aiosqlite.Connection, *, dead_workers_prefix: str | None, me: str
) -> list[Row]:
    """Running tasks whose lease expired, or whose worker is known dead.

    ``dead_workers_prefix`` (``"host:"``) names the workers of this host: the caller holds
    the store's worker lock on this host, so any other worker of this host is gone.
    """
    sql = _SELECT + f" WHERE state = 'running' AND (lease_until < {NOW}"
    args: list[object] = []
    if dead_workers_prefix is not None:
        sql += " OR (substr(worker, 1, ?) = ? AND worker != ?)"
        args += [len(dead_workers_prefix), dead_workers_prefix, me]
    return await _rows(db, sql + ") ORDER BY id", args)


async def unknown_due(db: aiosqlite.Connection, limit: int = 50) -> list[Row]:
    """Tasks of unknown outcome that are due for another look at the target's record."""
    return await _rows(
        db,
        _SELECT + f" WHERE state = 'unknown' AND not_before <= {NOW} ORDER BY id LIMIT ?",
        (limit,),
    )


async def take_over(
    db: aiosqlite.Connection,
    row: Row,
    worker: str,
    lease: float,
) -> Row | None:
    """Make ``worker`` the owner of an orphaned or unknown task, as a new attempt.

    The task stays in (or goes back to) ``running``, so its target stays held; only the
    exact row seen (same worker, attempt and state) is taken, so two recoverers never
    both succeed.
    """
    return await _one(
        db,
        f"UPDATE tasks SET state = 'running', worker = ?, attempt = attempt + 1,"
        f" lease_until = {NOW} + ?, cancel_requested = 0, finished_at = NULL"
        " WHERE id = ? AND attempt = ? AND state = ? AND worker IS ?"
        f" RETURNING {COLUMNS}",
        (worker, lease, row["id"], row["attempt"], row["state"], row["worker"]),
    )


async def recover_state(
    db: aiosqlite.Connection,
    row: Row,
    state: str,
    result: str,
    *,
    delay: float = 0.0,
) -> bool:
    """Move an orphaned running task (exactly as seen in ``row``) to ``state``."""
    if state == "queued":
        sql = (
            f"UPDATE tasks SET state = 'queued', worker = NULL, lease_until = NULL, step = '',"
            f" result = ?, not_before = {NOW} + ?"
        )
        args: list[object] = [result, delay]
    else:
        sql = f"UPDATE tasks SET state = ?, result = ?, lease_until = NULL, finished_at = {NOW}"
        args = [state, result]
    async with db.execute(
        sql + " WHERE id = ? AND attempt = ? AND state = ? AND worker IS ? RETURNING id",
        (*args, row["id"], row["attempt"], row["state"], row["worker"]),
    ) as cursor:
        return await cursor.fetchone() is not None


_PARK_UNKNOWN: Final = (
    f"UPDATE tasks SET state = 'unknown', result = ?, not_before = {NOW} + ?,"
    f" finished_at = {NOW}, lease_until = NULL"
    " WHERE id = ? AND worker = ? AND attempt = ? AND state = 'running' RETURNING id"
)


async def park_unknown(
    db: aiosqlite.Connection, task_id: int, worker: str, attempt: int, delay: float, result: str
) -> bool:
    """End a task this worker runs as ``unknown``, to be looked at again after ``delay``."""
    return await on_thread(
        db, lambda raw: park_unknown_sync(raw, task_id, worker, attempt, delay, result)
    )


def park_unknown_sync(
    raw: sqlite3.Connection, task_id: int, worker: str, attempt: int, delay: float, result: str
) -> bool:
    """:func:`park_unknown` on the connection's thread."""
    return _changed_sync(raw, _PARK_UNKNOWN, (result, delay, task_id, worker, attempt))


# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------

_STEP_COLUMNS: Final = (
    "task_id, attempt, idx, name, state, detached, run_attempt, started_at, finished_at, detail"
)


_STEP_STARTED: Final = (
    f"INSERT OR REPLACE INTO task_steps ({_STEP_COLUMNS})"
    f" VALUES (?, ?, ?, ?, 'running', ?, ?, coalesce(?, {NOW}), NULL, '')"
)
_STEP_ENDED: Final = (
    "UPDATE task_steps SET state = ?, detail = ?,"
    f" finished_at = coalesce(finished_at, ?, {NOW})"
    " WHERE task_id = ? AND attempt = ? AND idx = ?"
)
_STEP_RECORD: Final = (
    f"INSERT OR REPLACE INTO task_steps ({_STEP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def step_started(
    db: aiosqlite.Connection,
    task_id: int,
    attempt: int,
    idx: int,
    name: str,
    *,
    detached: bool,
    run_attempt: int,
    at: float | None = None,
) -> None:
    """A step starts (at ``at``, Unix seconds; default now)."""
    await db.execute(_STEP_STARTED, (task_id, attempt, idx, name, int(detached), run_attempt, at))


def step_started_sync(
    raw: sqlite3.Connection,
    task_id: int,
    attempt: int,
    idx: int,
    name: str,
    *,
    detached: bool,
    run_attempt: int,
    at: float | None = None,
) -> None:
    raw.execute(_STEP_STARTED, (task_id, attempt, idx, name, int(detached), run_attempt, at))


async def step_ended(
    db: aiosqlite.Connection,
    task_id: int,
    attempt: int,
    idx: int,
    state: str,
    detail: str = "",
    *,
    at: float | None = None,
) -> None:
    """A step ended in ``state`` (at ``at``; default now). A step that had ended keeps
    its first end time (a rollback changes its state, not when it ran)."""
    await db.execute(_STEP_ENDED, (state, detail, at, task_id, attempt, idx))


def step_ended_sync(
    raw: sqlite3.Connection,
    task_id: int,
    attempt: int,
    idx: int,
    state: str,
    detail: str = "",
    *,
    at: float | None = None,
) -> None:
    raw.execute(_STEP_ENDED, (state, detail, at, task_id, attempt, idx))


def step_record_sync(
    raw: sqlite3.Connection,
    task_id: int,
    attempt: int,
    idx: int,
    name: str,
    *,
    detached: bool,
    run_attempt: int,
    state: str,
    detail: str,
    started_at: float,
    finished_at: float,
) -> None:
    """A step's start and end written at once (both known by then)."""
    raw.execute(
        _STEP_RECORD,
        (
            task_id,
            attempt,
            idx,
            name,
            state,
            int(detached),
            run_attempt,
            started_at,
            finished_at,
            detail,
        ),
    )


async def copy_steps(
    db: aiosqlite.Connection, task_id: int, from_attempt: int, to_attempt: int
) -> None:
    """Carry a lost attempt's journal over to the attempt that takes the task over (in
    the same transaction as the takeover): the new attempt's journal always says which
    steps had started, even if it dies before it writes anything itself."""
    await db.execute(
        f"INSERT OR REPLACE INTO task_steps ({_STEP_COLUMNS})"
        " SELECT task_id, ?, idx, name, state, detached, run_attempt, started_at,"
        " finished_at, detail FROM task_steps WHERE task_id = ? AND attempt = ?",
        (to_attempt, task_id, from_attempt),
    )


async def steps(db: aiosqlite.Connection, task_id: int, attempt: int | None = None) -> list[Row]:
    if attempt is None:
        return await _rows(
            db,
            f"SELECT {_STEP_COLUMNS} FROM task_steps WHERE task_id = ? ORDER BY attempt, idx",
            (task_id,),
        )
    return await _rows(
        db,
        f"SELECT {_STEP_COLUMNS} FROM task_steps WHERE task_id = ? AND attempt = ? ORDER BY idx",
        (task_id, attempt),
    )


# ---------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------


async def prune(db: aiosqlite.Connection, *, keep_per_target: int, failed_days: int) -> int:
    """Delete finished tasks (with their steps and logs) beyond retention; how many.

    Kept: the last ``keep_per_target`` finished tasks of each target, and every failed,
    interrupted or unknown task younger than ``failed_days`` days. Queued and running
    tasks are never touched.
    """
    cursor = await db.execute(
        f"""
        DELETE FROM tasks WHERE id IN (
            SELECT id FROM (
                SELECT id, state, finished_at, row_number() OVER (
                    PARTITION BY target_kind, target_key ORDER BY id DESC) AS rank
                  FROM tasks
                 WHERE state IN ('succeeded', 'failed', 'cancelled', 'interrupted')
            )
             WHERE rank > ?
               AND NOT (state IN ('failed', 'interrupted')
                        AND coalesce(finished_at, 0) > {NOW} - ? * 86400.0)
        )
        """,
        (keep_per_target, failed_days),
    )
    await db.execute(
        "DELETE FROM batches WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.batch_id = batches.id)"
        " AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.last_batch = batches.id)"
    )
    return cursor.rowcount


def chunks(items: Iterable[int], size: int = _CHUNK) -> Iterable[list[int]]:
    batch: list[int] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

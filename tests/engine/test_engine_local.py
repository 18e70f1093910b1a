"""The engine end to end on this machine (local transport): queue, run, fail, roll back,
retry, cancel, redact, follow logs, priorities, limits."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from engine_kinds import make_registry, ticks_expected
from enginekit import add_inventory, alive_pids, local_config, local_server

from cockpit.config import Concurrency, Config
from cockpit.engine import Engine, Priority, Registry, StepState, TaskError, TaskState
from cockpit.engine.runner import RunOptions, backoff
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Server, ValidationError
from cockpit.store import Database, NotFoundError, StoreError, open_store
from cockpit.store import tasks as task_queries


@dataclass
class Env:
    db: Database
    config: Config
    engine: Engine
    registry: Registry
    servers: list[Server]
    sites: list[str]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    db = await open_store(tmp_path / "data" / "cockpit.db")
    servers = [local_server(f"l{i}", tmp_path / f"host{i}") for i in range(2)]
    sites = await add_inventory(db, servers, 4)
    config = local_config(db.path)
    registry = make_registry()
    try:
        yield Env(db, config, Engine(db, config, registry=registry), registry, servers, sites)
    finally:
        await db.close()


def fast(**changes: object) -> WorkerOptions:
    base = WorkerOptions(
        poll=0.05,
        cancel_poll=0.1,
        maintenance_every=0.2,
        lease=5.0,
        grace=2.0,
        run=RunOptions(retry_base=0.05, retry_cap=0.2, unknown_recheck=0.5, reattach_window=5),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@asynccontextmanager
async def worker(
    env: Env, holds_host_lock: bool = False, **changes: object
) -> AsyncIterator[Worker]:
    w = Worker(
        env.db,
        env.config,
        registry=env.registry,
        options=fast(**changes),
        holds_host_lock=holds_host_lock,
    )
    task = asyncio.create_task(w.run())
    try:
        yield w
    finally:
        w.stop()
        await asyncio.wait_for(task, 30)


async def test_a_batch_runs_to_success_with_step_lines_in_the_log(env: Env) -> None:
    batch = await env.engine.queue("test.echo", env.sites)
    assert len(batch.task_ids) == 8
    async with worker(env):
        tasks = await env.engine.wait(batch.task_ids, timeout=30)
    assert {t.state for t in tasks} == {TaskState.SUCCEEDED}
    counts = await env.engine.batch_counts(batch.id)
    assert counts[TaskState.SUCCEEDED] == 8 and sum(counts.values()) == 8
    lines = [line.text for line in await env.engine.log(batch.task_ids[0])]
    assert "ok" in lines
    assert any(t.startswith("step 1/1 echo: started") for t in lines)
    assert any(t.startswith("step 1/1 echo: succeeded in") for t in lines)
    task = tasks[0]
    assert task.attempt == 1 and task.queued_by and task.duration is not None
    assert [s.state for s in await env.engine.steps(task.id)] == [StepState.SUCCEEDED]


async def test_the_journal_keeps_when_an_idempotent_step_ran(env: Env) -> None:
    """An idempotent task's journal is written with its end, with the times it happened."""
    batch = await env.engine.queue("test.inline-sleep", env.sites[:1], {"seconds": 0.5})
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is TaskState.SUCCEEDED, task.result
    [step] = await env.engine.steps(task.id)
    assert step.state is StepState.SUCCEEDED and step.finished_at is not None
    assert task.started_at is not None and task.finished_at is not None
    assert task.started_at - 0.05 <= step.started_at
    assert step.finished_at <= task.finished_at + 0.05
    assert step.finished_at - step.started_at >= 0.45


async def test_a_target_gone_from_the_inventory_fails_its_task(env: Env) -> None:
    """The target is read when the task is claimed: a site deleted after queueing ends
    its task failed with the reason; the others run."""
    from cockpit.store import sites as site_queries

    batch = await env.engine.queue("test.echo", env.sites[:2])
    async with env.db.write() as conn:
        await site_queries.delete_many(conn, [env.sites[0]])
    async with worker(env):
        gone, kept = await env.engine.wait(batch.task_ids, timeout=30)
    assert gone.state is TaskState.FAILED
    assert gone.result == f"the site {env.sites[0]} is no longer in the inventory"
    assert kept.state is TaskState.SUCCEEDED, kept.result


async def test_a_failed_step_rolls_back_the_earlier_ones_in_reverse(env: Env) -> None:
    site = env.sites[0]
    batch = await env.engine.queue("test.recipe", [site], {"fail_at": "third"})
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is TaskState.FAILED
    assert "third failed on purpose" in task.result
    journal = (Path(env.servers[0].root) / "journal").read_text().splitlines()
    assert journal == [
        "run first",
        "run second",
        "run third",
        "rollback second",
        "rollback first",
    ]
    steps = await env.engine.steps(task.id)
    assert [s.state for s in steps] == [
        StepState.ROLLED_BACK,
        StepState.ROLLED_BACK,
        StepState.FAILED,
    ]
    text = "\n".join(line.text for line in await env.engine.log(task.id))
    assert "rollback of second: started" in text and "rollback of first: done" in text


async def test_secrets_reach_the_log_as_stars(env: Env) -> None:
    secret = "hunter2-Sup3rS3cret"
    batch = await env.engine.queue("test.secret", [env.sites[0]], {"value_from_vault": secret})
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is TaskState.SUCCEEDED
    lines = await env.engine.log(task.id)
    assert any(line.text == "connecting with ***" for line in lines)
    assert any(line.text == "bad password ***" and line.stream == "stderr" for line in lines)
    failing = await env.engine.queue(
        "test.secret", [env.sites[1]], {"value_from_vault": secret, "fail": True}
    )
    async with worker(env):
        [failed] = await env.engine.wait(failing.task_ids, timeout=30)
    assert failed.state is TaskState.FAILED and failed.result.endswith("login refused with ***")
    raw = sqlite3.connect(env.db.path)
    for table, column in (("task_logs", "text"), ("tasks", "result"), ("task_steps", "detail")):
        found = raw.execute(f"SELECT count(*) FROM {table} WHERE instr({column}, ?)", (secret,))
        assert found.fetchone()[0] == 0, f"the secret reached {table}.{column}"


async def test_transient_errors_are_retried_with_backoff_others_never(env: Env) -> None:
    flaky = await env.engine.queue("test.flaky", [env.sites[0]], {"succeed_at": 3})
    auth = await env.engine.queue("test.auth-fail", [env.sites[1]])
    never = await env.engine.queue("test.flaky", [env.sites[2]], {"succeed_at": 9})
    async with worker(env):
        [ok] = await env.engine.wait(flaky.task_ids, timeout=30)
        [denied] = await env.engine.wait(auth.task_ids, timeout=30)
        [gave_up] = await env.engine.wait(never.task_ids, timeout=30)
    assert ok.state is TaskState.SUCCEEDED and ok.attempt == 3
    assert denied.state is TaskState.FAILED and denied.attempt == 1
    assert "refused our key" in denied.result
    assert gave_up.state is TaskState.FAILED and gave_up.attempt == 3


def test_backoff_is_full_jitter_and_capped() -> None:
    samples = [backoff(5, 2.0, 10.0) for _ in range(2000)]
    assert all(0 <= s <= 10.0 for s in samples)
    assert max(samples) > 9 and min(samples) < 1
    assert all(0 <= backoff(1, 2.0, 100.0) <= 2.0 for _ in range(100))


async def test_cancel_a_queued_task_leaves_the_queue(env: Env) -> None:
    batch = await env.engine.queue("test.echo", [env.sites[0]])
    task = await env.engine.cancel(batch.task_ids[0])
    assert task.state is TaskState.CANCELLED
    with pytest.raises(TaskError):
        await env.engine.cancel(task.id)
    with pytest.raises(NotFoundError):
        await env.engine.cancel(999_999)


async def test_cancel_a_running_detached_sleep_kills_it_on_the_target(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.sleep", [env.sites[0]], {"seconds": 600})
    task_id = batch.task_ids[0]
    async with worker(env):
        pids_dir = root / "pids"
        deadline = time.monotonic() + 20
        while not (pids_dir / f"{task_id}.sleep").exists():
            assert time.monotonic() < deadline, "the step never started"
            await asyncio.sleep(0.05)
        pids = [int((pids_dir / f"{task_id}.{n}").read_text()) for n in ("sh", "sleep")]
        assert alive_pids(pids) == pids
        started = time.monotonic()
        await env.engine.cancel(task_id)
        while alive_pids(pids):
            assert time.monotonic() - started < 10, f"still running: {alive_pids(pids)}"
            await asyncio.sleep(0.05)
        [task] = await env.engine.wait([task_id], timeout=20)
    assert task.state is TaskState.CANCELLED
    assert time.monotonic() - started < 10


async def test_cancel_a_running_inline_step(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.inline-sleep", [env.sites[0]], {"seconds": 600})
    task_id = batch.task_ids[0]
    async with worker(env):
        marker = root / "pids" / f"{task_id}.inline"
        while not marker.exists():
            await asyncio.sleep(0.05)
        pid = int(marker.read_text())
        started = time.monotonic()
        await env.engine.cancel(task_id)
        [task] = await env.engine.wait([task_id], timeout=20)
        while alive_pids([pid]):
            assert time.monotonic() - started < 10
            await asyncio.sleep(0.05)
    assert task.state is TaskState.CANCELLED


async def test_follow_log_yields_batches_until_the_task_ends(env: Env) -> None:
    batch = await env.engine.queue("test.lines", [env.sites[0]], {"n": 3000})
    task_id = batch.task_ids[0]
    seen: list[str] = []
    batches = 0
    async with worker(env):
        async for lines in env.engine.follow_log(task_id, poll=0.05):
            batches += 1
            seen.extend(line.text for line in lines if line.stream == "stdout")
    assert seen == [str(i) for i in range(1, 3001)]
    assert batches < 3000 / 10, "lines must come in batches"
    assert (await env.engine.task(task_id)).state is TaskState.SUCCEEDED  # type: ignore[union-attr]
    seqs = [line.seq for line in await env.engine.log(task_id)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_the_database_refuses_a_second_running_task_on_a_target(env: Env) -> None:
    batch = await env.engine.queue("test.echo", [env.sites[0]])
    await env.engine.queue("test.echo", [env.sites[0]])
    async with env.db.write() as conn:
        claimed = await task_queries.claim(conn, "w1", lease=30, per_server=99, limit=5)
    assert [r["id"] for r in claimed] == [batch.task_ids[0]]
    with pytest.raises(StoreError, match="UNIQUE"):
        async with env.db.write() as conn:
            await conn.execute("UPDATE tasks SET state = 'running' WHERE state = 'queued'")


async def test_interactive_work_is_claimed_before_scheduled_work(env: Env) -> None:
    late = await env.engine.queue("test.echo", env.sites[:4], priority=Priority.SCHEDULED)
    urgent = await env.engine.queue("test.echo", env.sites[4:], priority=Priority.INTERACTIVE)
    async with env.db.write() as conn:
        rows = await task_queries.claim(conn, "w", lease=30, per_server=99, limit=8)
    order = [r["id"] for r in rows]
    assert order == [*urgent.task_ids, *late.task_ids]


async def test_per_server_limit_is_kept_in_the_store(env: Env) -> None:
    await env.engine.queue("test.echo", env.sites)  # 4 sites on each of 2 servers
    async with env.db.write() as conn:
        rows = await task_queries.claim(conn, "w", lease=30, per_server=2, limit=8)
    by_server: dict[str, int] = {}
    for r in rows:
        by_server[r["server"]] = by_server.get(r["server"], 0) + 1
    assert by_server == {"l0": 2, "l1": 2}


async def test_queue_refuses_unknown_kinds_missing_targets_and_secret_args(env: Env) -> None:
    with pytest.raises(ValidationError, match="no such task kind"):
        await env.engine.queue("site.nope", env.sites[:1])
    with pytest.raises(ValidationError, match="no such site"):
        await env.engine.queue("test.echo", ["missing.example"])
    with pytest.raises(ValidationError, match="secret"):
        await env.engine.queue("test.echo", env.sites[:1], {"db_password": "x"})
    with pytest.raises(ValidationError, match="at least one"):
        await env.engine.queue("test.echo", [])
    assert await env.engine.tasks() == []


async def test_retry_queues_a_new_task_in_the_same_batch(env: Env) -> None:
    batch = await env.engine.queue("test.recipe", [env.sites[0]], {"fail_at": "first"})
    async with worker(env):
        [failed] = await env.engine.wait(batch.task_ids, timeout=30)
        again = await env.engine.retry(failed.id)
        assert again.retry_of == failed.id and again.batch_id == batch.id
        [done] = await env.engine.wait([again.id], timeout=30)
    assert failed.state is done.state is TaskState.FAILED
    with pytest.raises(TaskError):
        queued = await env.engine.queue("test.echo", [env.sites[1]])
        await env.engine.retry(queued.task_ids[0])


async def test_ten_thousand_tasks_queue_as_one_batch(env: Env) -> None:
    many = [f"s{i}.bulk.example" for i in range(10_000)]
    from cockpit.model import Site
    from cockpit.store import platforms as platform_queries
    from cockpit.store import servers as server_queries
    from cockpit.store import sites as site_queries
    from cockpit.store.sites import RefIds

    async with env.db.write() as conn:
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients={},
            servers=await server_queries.ids(conn),
        )
        await site_queries.insert_many(conn, [Site(domain=d, platform="p-l0") for d in many], refs)
    batch = await env.engine.queue("test.echo", many, priority=Priority.SCHEDULED)
    assert len(batch.task_ids) == 10_000
    counts = await env.engine.batch_counts(batch.id)
    assert counts[TaskState.QUEUED] == 10_000


async def test_a_worker_that_lost_its_task_stops_touching_it(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.sleep", [env.sites[0]], {"seconds": 600})
    task_id = batch.task_ids[0]
    async with worker(env, lease=0.9) as w:
        while not (root / "pids" / f"{task_id}.sleep").exists():
            await asyncio.sleep(0.05)
        sleeper = int((root / "pids" / f"{task_id}.sleep").read_text())
        async with env.db.write() as conn:  # another worker took it over
            await conn.execute(
                "UPDATE tasks SET worker = 'elsewhere:1:x', lease_until = 1e12 WHERE id = ?",
                (task_id,),
            )
        await asyncio.sleep(1.5)  # a heartbeat or two
        assert task_id not in w.running
    task = await env.engine.task(task_id)
    assert task is not None and task.state is TaskState.RUNNING and task.worker == "elsewhere:1:x"
    assert alive_pids([sleeper]) == [sleeper], "the new owner's command was left alone"
    os.kill(sleeper, 9)


async def test_recovery_interrupts_a_non_idempotent_task_lost_in_an_inline_step(env: Env) -> None:
    batch = await env.engine.queue("test.recipe", [env.sites[0]])
    idem = await env.engine.queue("test.echo", [env.sites[1]])
    nothing_yet = await env.engine.queue("test.recipe", [env.sites[2]])
    async with env.db.write() as conn:
        rows = await task_queries.claim(conn, "ghost:1:x", lease=-1, per_server=99, limit=3)
        assert len(rows) == 3
        await task_queries.step_started(
            conn, batch.task_ids[0], 1, 0, "first", detached=False, run_attempt=1
        )
    w = Worker(env.db, env.config, registry=env.registry, options=fast())
    assert await w.recover() == 3
    lost = await env.engine.task(batch.task_ids[0])
    again = await env.engine.task(idem.task_ids[0])
    fresh = await env.engine.task(nothing_yet.task_ids[0])
    assert lost is not None and lost.state is TaskState.INTERRUPTED
    assert "during step first" in lost.result and "ghost:1:x died" in lost.result
    assert again is not None and again.state is TaskState.QUEUED and "re-queued" in again.result
    assert fresh is not None and fresh.state is TaskState.QUEUED
    assert "no step had started" in fresh.result


async def test_a_stopping_worker_hands_its_detached_tasks_to_the_next(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.mark", [env.sites[0]], {"seconds": 2})
    task_id = batch.task_ids[0]
    async with worker(env, grace=0.1):
        while not (root / "marks" / str(task_id)).exists():
            await asyncio.sleep(0.05)
    left = await env.engine.task(task_id)
    assert left is not None and left.state is TaskState.RUNNING  # lease released, not ended
    async with worker(env, holds_host_lock=False):
        [task] = await env.engine.wait([task_id], timeout=30)
    assert task.state is TaskState.SUCCEEDED and task.attempt == 2
    assert (root / "marks" / str(task_id)).read_text().count("run ") == 1


async def test_detached_steps_keep_stdout_and_stderr_apart(env: Env) -> None:
    batch = await env.engine.queue("test.ticks", [env.sites[0]], {"n": 200})
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is TaskState.SUCCEEDED, task.result
    lines = await env.engine.log(task.id)
    out = [line.text for line in lines if line.stream == "stdout"]
    err = [line.text for line in lines if line.stream == "stderr"]
    assert (out, err) == ticks_expected(200)
    # and the run dir on the target is removed once the outcome is in the store
    assert not (Path(env.servers[0].root) / "run" / "tasks" / str(task.id)).exists()


async def test_a_detached_rollback_runs_its_own_command(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.remote-rollback", [env.sites[0]])
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is TaskState.FAILED and "fails on purpose" in task.result
    text = [line.text for line in await env.engine.log(task.id)]
    assert f"made {root}/made" in text and f"removed {root}/made" in text
    assert not (root / "made").exists(), "the rollback ran on the target"
    steps = await env.engine.steps(task.id)
    assert [s.state for s in steps] == [StepState.ROLLED_BACK, StepState.FAILED]


def _ender(task_id: int, *, fail: bool = False):  # type: ignore[no-untyped-def]
    def body(conn) -> int:  # type: ignore[no-untyped-def]
        conn.execute("UPDATE tasks SET result = 'ended' WHERE id = ?", (task_id,))
        if fail:
            conn.execute("INSERT INTO no_such_table VALUES (1)")
        return task_id

    return body


async def _results(env: Env) -> dict[int, str]:
    return {t.id: t.result for t in await env.engine.tasks()}


async def test_task_ends_share_a_transaction_and_a_failing_one_fails_alone(env: Env) -> None:
    """A failing end is rolled back to its own savepoint: the others of its group
    commit in the same transaction, and the failing one changes nothing."""
    from cockpit.engine.logs import LogWriter
    from cockpit.engine.worker import EndGroup

    ids = list((await env.engine.queue("test.echo", env.sites[:4])).task_ids)
    group = EndGroup(env.db, LogWriter(env.db))
    committed: list[int] = []
    together = await asyncio.gather(*(group.commit(_ender(i), committed.append) for i in ids))
    assert together == ids and sorted(committed) == ids
    assert group.transactions == 1, "four ends at once: one transaction"

    more = list((await env.engine.queue("test.echo", env.sites[4:])).task_ids)
    committed.clear()
    outcomes = await asyncio.gather(
        *(group.commit(_ender(i, fail=i == more[1]), committed.append) for i in more),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], StoreError) and "no_such_table" in str(outcomes[1])
    assert [o for n, o in enumerate(outcomes) if n != 1] == [more[0], *more[2:]]
    assert sorted(committed) == [more[0], *more[2:]]
    results = await _results(env)
    assert [results[i] for i in more] == ["ended", "", "ended", "ended"]
    assert group.transactions == 2  # one per group, the failing end's included


async def test_a_task_end_is_written_even_if_its_task_is_cancelled_meanwhile(env: Env) -> None:
    from cockpit.engine.logs import LogWriter
    from cockpit.engine.worker import EndGroup

    [task_id] = (await env.engine.queue("test.echo", env.sites[:1])).task_ids
    group = EndGroup(env.db, LogWriter(env.db))
    committed: list[int] = []
    waiter = asyncio.create_task(group.commit(_ender(task_id), committed.append))
    await asyncio.sleep(0)  # handed in
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await group.close()
    assert committed == [task_id]
    assert (await _results(env))[task_id] == "ended"


async def test_one_running_task_per_platform_and_unknown_blocks_too(env: Env) -> None:
    platform = "p-l0"
    first = await env.engine.queue("test.platform-echo", [platform])
    await env.engine.queue("test.platform-echo", [platform])
    async with env.db.write() as conn:
        claimed = await task_queries.claim(conn, "w1", lease=30, per_server=99, limit=5)
    assert [r["id"] for r in claimed] == [first.task_ids[0]]
    with pytest.raises(StoreError, match="UNIQUE"):
        async with env.db.write() as conn:
            await conn.execute("UPDATE tasks SET state = 'running' WHERE state = 'queued'")
    # a task of unknown outcome holds its target as a running one does
    async with env.db.write() as conn:
        await conn.execute("UPDATE tasks SET state = 'unknown' WHERE id = ?", first.task_ids)
        assert await task_queries.claim(conn, "w2", lease=30, per_server=99, limit=5) == []


async def test_a_worker_keeps_the_global_and_per_server_limits(env: Env) -> None:
    defaults = WorkerOptions.from_config(Config(store=env.db.path))
    assert (defaults.global_limit, defaults.per_server) == (16, 4)
    configured = WorkerOptions.from_config(
        replace(env.config, concurrency=Concurrency(global_limit=3, per_server=2))
    )
    batch = await env.engine.queue("test.inline-sleep", env.sites, {"seconds": 0.6})
    peak = 0
    peak_server = 0
    limits = {"global_limit": configured.global_limit, "per_server": configured.per_server}
    async with worker(env, **limits):
        deadline = time.monotonic() + 60
        while True:
            running = await env.engine.tasks(state=TaskState.RUNNING)
            peak = max(peak, len(running))
            for name in ("l0", "l1"):
                peak_server = max(peak_server, sum(t.server == name for t in running))
            counts = await env.engine.batch_counts(batch.id)
            if counts[TaskState.SUCCEEDED] == len(env.sites):
                break
            assert time.monotonic() < deadline
            await asyncio.sleep(0.03)
    assert peak == 3, "the global limit is used, never passed"
    assert peak_server == 2


async def test_heartbeats_keep_a_task_past_its_first_lease(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.sleep", [env.sites[0]], {"seconds": 2.5})
    [task_id] = batch.task_ids
    async with worker(env, lease=0.6) as owner:
        while not (root / "pids" / f"{task_id}.sleep").exists():
            await asyncio.sleep(0.05)
        # a second worker looks for expired leases all along
        async with worker(env, lease=0.6, maintenance_every=0.1):
            [task] = await env.engine.wait([task_id], timeout=30)
    assert task.state is TaskState.SUCCEEDED, task.result
    assert task.attempt == 1 and task.worker == owner.id, "never taken over"


@pytest.mark.parametrize(
    ("error", "attempts", "state"),
    [
        ("hostkey", 1, TaskState.FAILED),
        ("validation", 1, TaskState.FAILED),
        ("config", 1, TaskState.FAILED),
        ("connect", 3, TaskState.FAILED),  # transient: retried up to max_attempts
    ],
)
async def test_only_transient_errors_are_retried(
    env: Env, error: str, attempts: int, state: TaskState
) -> None:
    batch = await env.engine.queue("test.raise", [env.sites[0]], {"error": error})
    async with worker(env):
        [task] = await env.engine.wait(batch.task_ids, timeout=30)
    assert task.state is state and task.attempt == attempts, task.result
    assert "on purpose" in task.result


async def test_cancel_kills_the_step_and_rolls_back_the_steps_before(env: Env) -> None:
    root = Path(env.servers[0].root)
    batch = await env.engine.queue("test.cancel-rollback", [env.sites[0]], {"seconds": 600})
    [task_id] = batch.task_ids
    async with worker(env):
        while not (root / "pids" / f"{task_id}.sleep").exists():
            await asyncio.sleep(0.05)
        assert (root / "made").exists()
        sleeper = int((root / "pids" / f"{task_id}.sleep").read_text())
        await env.engine.cancel(task_id)
        [task] = await env.engine.wait([task_id], timeout=30)
    assert task.state is TaskState.CANCELLED, task.result
    assert not (root / "made").exists(), "the first step was rolled back"
    assert alive_pids([sleeper]) == []
    steps = await env.engine.steps(task_id)
    assert [s.state for s in steps] == [StepState.ROLLED_BACK, StepState.CANCELLED]


async def test_a_worker_fires_a_due_schedule_and_runs_its_tasks(env: Env) -> None:
    await env.engine.add_schedule("often", "* * * * *", "test.echo", ["server=l1"])
    async with env.db.write() as conn:
        await conn.execute("UPDATE schedules SET next_run = 1 WHERE name = 'often'")
    async with worker(env, maintenance_every=0.1):
        deadline = time.monotonic() + 30
        while len(done := await env.engine.tasks(state=TaskState.SUCCEEDED)) < 4:
            assert time.monotonic() < deadline, "the schedule did not fire"
            await asyncio.sleep(0.1)
    assert {t.queued_by for t in done} == {"schedule often"}
    assert {t.target.key for t in done} == set(env.sites[4:])
    assert {t.priority for t in done} == {Priority.SCHEDULED}


async def test_log_lines_are_written_in_batches(env: Env) -> None:
    batch = await env.engine.queue("test.lines", [env.sites[0]], {"n": 5000})
    async with worker(env) as w:
        [task] = await env.engine.wait(batch.task_ids, timeout=60)
        batches = w.logs.batches
    assert task.state is TaskState.SUCCEEDED
    lines = len(await env.engine.log(task.id, limit=10_000))
    assert lines > 5000
    assert batches <= 50, f"{lines} lines in {batches} transactions"


async def test_a_worker_loads_its_ssh_transport_when_it_starts(env: Env) -> None:
    """Not in the first SSH task: importing the SSH backend takes a moment."""
    from cockpit.engine.transports import TransportFactory

    async with worker(env) as w:
        factory = w._factory
        assert isinstance(factory, TransportFactory)
        deadline = time.monotonic() + 10
        while factory._pool is None:
            assert time.monotonic() < deadline, "the SSH pool was not made at start"
            await asyncio.sleep(0.01)
        assert w.claimed == 0


async def test_a_task_end_claims_its_successor_in_the_same_transaction(env: Env) -> None:
    """One slot, six tasks: each end frees the slot and claims the next task in its
    own transaction (no second transaction, and no wait for the worker's loop)."""
    batch = await env.engine.queue("test.echo", env.sites[:6])
    async with worker(env, global_limit=1) as w:
        tasks = await env.engine.wait(batch.task_ids, timeout=30)
        handoffs = w.ends.handoffs
    assert {t.state for t in tasks} == {TaskState.SUCCEEDED}
    assert handoffs == 5  # the sixth end finds nothing left to claim

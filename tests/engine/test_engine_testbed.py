"""The engine against real sshd (the test bed): crashes, dropped connections, cancels,
mutual exclusion per site, checked in the store and on the targets themselves."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from engine_kinds import make_registry, ticks_expected
from enginekit import add_inventory, alive_pids, bed_config, bed_server, start_worker
from testbed import Fleet, TestHost

from cockpit.config import Config
from cockpit.engine import Engine, Task, TaskState
from cockpit.engine.runner import RunOptions
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Health
from cockpit.store import Database, open_store
from cockpit.store import servers as server_queries
from cockpit.store import tasks as task_queries


async def _store(
    tmp_path: Path, hosts: list[TestHost], sites_per_host: int
) -> tuple[Database, list[str]]:
    db = await open_store(tmp_path / "data" / "cockpit.db")
    sites = await add_inventory(db, [bed_server(h) for h in hosts], sites_per_host)
    return db, sites


@asynccontextmanager
async def in_process_worker(db: Database, config: Config, **run: float) -> AsyncIterator[Worker]:
    options = WorkerOptions(
        global_limit=config.concurrency.global_limit,
        per_server=config.concurrency.per_server,
        poll=0.05,
        cancel_poll=0.1,
        maintenance_every=0.3,
        lease=10.0,
        grace=1.0,
        run=RunOptions(**run),
    )
    worker = Worker(db, config, registry=make_registry(), options=options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 60)


async def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_sigkill_the_worker_while_fifty_tasks_run_then_restart(
    fleet: Fleet, tmp_path: Path
) -> None:
    hosts = [fleet.fresh_root(h) for h in fleet.take(5)]
    db, sites = await _store(tmp_path, hosts, 10)
    config = bed_config(db.path, fleet, global_limit=50, per_server=10)
    engine = Engine(db, config, registry=make_registry())
    once = await engine.queue("test.mark", sites[0::2], {"seconds": 6})
    again = await engine.queue("test.mark-again", sites[1::2], {"seconds": 6})
    all_ids = [*once.task_ids, *again.task_ids]
    root_of = {}
    for task in await engine.tasks(limit=100):
        root_of[task.id] = next(h.root for h in hosts if h.name == task.server)

    log = tmp_path / "worker.log"
    first = start_worker(config, lease=5, log=log)
    try:

        async def all_marked() -> bool:
            return all((root_of[i] / "marks" / str(i)).exists() for i in all_ids)

        await _wait_for(all_marked, 90, "50 running steps")

        async def marked_lines_stored() -> bool:
            for i in all_ids:
                if not any(line.stream == "stdout" for line in await engine.log(i)):
                    return False
            return True

        # (so a resumed step that read its output from the start would store it twice)
        await _wait_for(marked_lines_stored, 30, "the first line of each step in the store")
        running = await engine.tasks(state=TaskState.RUNNING, limit=100)
        assert len(running) == 50
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    second = start_worker(config, lease=5, log=log)
    try:
        tasks = await engine.wait(all_ids, timeout=180)
    finally:
        _stop_process(second)
    by_id = {t.id: t for t in tasks}
    assert len(tasks) == 50, "0 tasks lost"
    async with db.read() as conn:
        counts = await task_queries.counts(conn)
    assert "running" not in counts and "queued" not in counts, counts
    for task_id in again.task_ids:
        assert by_id[task_id].state is TaskState.SUCCEEDED, by_id[task_id].result
    runs_of = {i: (root_of[i] / "marks" / str(i)).read_text().count("run ") for i in all_ids}
    for task_id in once.task_ids:
        task = by_id[task_id]
        assert task.state in (TaskState.SUCCEEDED, TaskState.INTERRUPTED), task.result
        assert runs_of[task_id] == 1, f"non-idempotent task {task_id} ran {runs_of[task_id]} times"
    reconciled = [by_id[i] for i in once.task_ids if by_id[i].state is TaskState.SUCCEEDED]
    assert reconciled, "the detached steps were re-attached to, not abandoned"
    assert all(t.attempt == 2 for t in reconciled)
    for task in reconciled:  # the resumed step went on from the lines already stored
        out = [line.text for line in await engine.log(task.id) if line.stream == "stdout"]
        assert out == [f"marked task {task.id}", "slept 6 s"], out
    # the worker's log has its own lines, not asyncssh's five or so per command
    text = log.read_text()
    assert "started on" in text, text[-2000:]
    assert "chan=" not in text, [line for line in text.splitlines() if "chan=" in line][:5]
    await db.close()


async def test_sshd_killed_during_a_remote_step_real_outcome_recovered(
    fleet: Fleet, tmp_path: Path
) -> None:
    host = fleet.fresh_root(fleet.take(1)[0])
    db, sites = await _store(tmp_path, [host], 2)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config, registry=make_registry())
    ok = await engine.queue("test.sleep", [sites[0]], {"seconds": 20, "code": 0})
    bad = await engine.queue("test.sleep", [sites[1]], {"seconds": 20, "code": 3})
    try:
        async with in_process_worker(db, config, reattach_window=60, unknown_recheck=1):

            async def started() -> bool:
                return all(
                    (host.root / "pids" / f"{i}.sleep").exists()
                    for i in (*ok.task_ids, *bad.task_ids)
                )

            await _wait_for(started, 30, "the remote steps")
            with fleet.stopped(host):
                await asyncio.sleep(6)
            good = await _settled(engine, ok.task_ids[0])
            failed = await _settled(engine, bad.task_ids[0])
        log = [line.text for line in await engine.log(good.id)]
        bad_log = [line.text for line in await engine.log(failed.id)]
    finally:
        fleet.start(host)
        await db.close()
    assert good.state is TaskState.SUCCEEDED, "\n".join(log)
    assert failed.state is TaskState.FAILED, "\n".join(bad_log)
    assert failed.state is TaskState.FAILED and "exited with 3" in failed.result
    assert "woke up" in log
    assert any("re-attached" in line for line in log)


async def test_sshd_down_past_the_reattach_window_unknown_then_reconciled(
    fleet: Fleet, tmp_path: Path
) -> None:
    host = fleet.fresh_root(fleet.take(1)[0])
    db, sites = await _store(tmp_path, [host], 1)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config, registry=make_registry())
    batch = await engine.queue("test.sleep", sites, {"seconds": 12, "code": 0})
    [task_id] = batch.task_ids
    seen_unknown = False
    try:
        async with in_process_worker(db, config, reattach_window=2, unknown_recheck=1):

            async def started() -> bool:
                return (host.root / "pids" / f"{task_id}.sleep").exists()

            await _wait_for(started, 30, "the remote step")
            with fleet.stopped(host):
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    task = await engine.task(task_id)
                    assert task is not None
                    assert task.state is not TaskState.SUCCEEDED, "success without a record"
                    if task.state is TaskState.UNKNOWN:
                        seen_unknown = True
                        break
                    await asyncio.sleep(0.2)
            task = await _settled(engine, task_id)
    finally:
        fleet.start(host)
        await db.close()
    assert seen_unknown
    assert task.state is TaskState.SUCCEEDED, task.result
    assert task.attempt >= 2


async def _settled(engine: Engine, task_id: int, timeout: float = 90) -> Task:
    """The task once it left running, queued and unknown (the last is final for a
    waiter, but a worker reads the target's record again and settles it)."""
    unsettled = (TaskState.QUEUED, TaskState.RUNNING, TaskState.UNKNOWN)
    deadline = time.monotonic() + timeout
    while True:
        task = await engine.task(task_id)
        assert task is not None
        if task.state not in unsettled:
            return task
        assert time.monotonic() < deadline, f"still {task.state}: {task.result}"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("kind", ["test.sleep", "test.inline-sleep"])
async def test_cancel_a_running_remote_sleep_leaves_no_process(
    fleet: Fleet, tmp_path: Path, kind: str
) -> None:
    host = fleet.fresh_root(fleet.take(1)[0])
    db, sites = await _store(tmp_path, [host], 1)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config, registry=make_registry())
    batch = await engine.queue(kind, sites, {"seconds": 600})
    [task_id] = batch.task_ids
    names = ("sh", "sleep") if kind == "test.sleep" else ("inline",)
    try:
        async with in_process_worker(db, config):

            async def started() -> bool:
                return all((host.root / "pids" / f"{task_id}.{n}").exists() for n in names)

            await _wait_for(started, 30, "the remote sleep")
            pids = [int((host.root / "pids" / f"{task_id}.{n}").read_text()) for n in names]
            if kind == "test.inline-sleep":
                pids += _children(pids[0])
            assert alive_pids(pids) == pids
            began = time.monotonic()
            await engine.cancel(task_id)
            while alive_pids(pids):
                assert time.monotonic() - began < 10, f"left on the target: {alive_pids(pids)}"
                await asyncio.sleep(0.05)
            gone_after = time.monotonic() - began
            [task] = await engine.wait([task_id], timeout=30)
    finally:
        await db.close()
    assert gone_after < 10
    assert task.state is TaskState.CANCELLED, task.result


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                out.append(int(entry.name))
    return out


async def test_four_hundred_tasks_over_eight_sites_never_overlap(
    fleet: Fleet, tmp_path: Path
) -> None:
    hosts = [fleet.fresh_root(h) for h in fleet.take(2)]
    db, sites = await _store(tmp_path, hosts, 4)
    config = bed_config(db.path, fleet, global_limit=4, per_server=8)
    engine = Engine(db, config, registry=make_registry())
    ids: list[int] = []
    for _ in range(50):
        ids += (await engine.queue("test.overlap", sites)).task_ids
    assert len(ids) == 400
    workers = [
        start_worker(config, locked=False, lease=30, log=tmp_path / f"w{n}.log") for n in range(4)
    ]
    overlaps: list[object] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            async with db.read() as conn:
                cursor = await conn.execute(
                    "SELECT target_key, count(*) FROM tasks WHERE state = 'running'"
                    " GROUP BY target_key HAVING count(*) > 1"
                )
                overlaps += await cursor.fetchall()
                counts = await task_queries.counts(conn)
            if counts.get("succeeded", 0) + counts.get("failed", 0) == 400:
                break
            await asyncio.sleep(0.05)
    finally:
        for proc in workers:
            _stop_process(proc)
    tasks = await engine.wait(ids, timeout=30)
    await db.close()
    assert overlaps == []
    assert {t.state for t in tasks} == {TaskState.SUCCEEDED}, {t.result for t in tasks}
    # (a worker claims a successor in the same transaction that ends a task, so the
    # busiest workers keep their slots; at least two processes must have competed)
    assert len({t.worker for t in tasks}) >= 2
    # in the store: per site, each task started after the previous one finished
    by_site: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for t in tasks:
        assert t.started_at is not None and t.finished_at is not None
        by_site[t.target.key].append((t.started_at, t.finished_at))
    for spans in by_site.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end
    # on the targets: a flock-guarded log of start/end per site, never interleaved
    for host in hosts:
        lines = (host.root / "overlap.log").read_text().splitlines()
        assert not [line for line in lines if line.startswith("OVERLAP")]
        open_site: dict[str, str] = {}
        for line in lines:
            event, site, task = line.split()
            if event == "start":
                assert site not in open_site, f"{site}: {task} started while {open_site[site]} ran"
                open_site[site] = task
            else:
                assert open_site.pop(site) == task
        assert len(lines) == 2 * 200


@pytest.mark.parametrize("how", ["re-attach", "new-attempt"])
async def test_a_step_resumed_after_a_dropped_connection_stores_each_line_once(
    fleet: Fleet, tmp_path: Path, how: str
) -> None:
    """sshd dies mid-step. 're-attach': the same attempt re-attaches once it is back;
    'new-attempt': the task first ends unknown, then a new attempt re-attaches. Either
    way every stdout and stderr line is stored once, whole, on its own stream."""
    host = fleet.fresh_root(fleet.take(1)[0])
    db, sites = await _store(tmp_path, [host], 1)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config, registry=make_registry())
    n = 60  # about 7 s: the drop after line 8 always falls inside the step
    batch = await engine.queue("test.ticks", sites, {"n": n, "pause": 0.1})
    [task_id] = batch.task_ids
    window = 60.0 if how == "re-attach" else 0.5
    try:
        async with in_process_worker(db, config, reattach_window=window, unknown_recheck=0.5):

            async def some_lines() -> bool:
                lines = await engine.log(task_id)
                return sum(line.stream == "stdout" for line in lines) >= 8

            await _wait_for(some_lines, 30, "the first lines")
            running = await engine.task(task_id)
            assert running is not None and running.state is TaskState.RUNNING
            with fleet.stopped(host):
                if how == "new-attempt":

                    async def unknown() -> bool:
                        task = await engine.task(task_id)
                        return task is not None and task.state is TaskState.UNKNOWN

                    await _wait_for(unknown, 30, "an unknown outcome")
                else:
                    await asyncio.sleep(2)
            task = await _settled(engine, task_id)
        lines = await engine.log(task_id)
    finally:
        fleet.start(host)
        await db.close()
    text = [line.text for line in lines]
    assert task.state is TaskState.SUCCEEDED, "\n".join(text)
    out = [line.text for line in lines if line.stream == "stdout"]
    err = [line.text for line in lines if line.stream == "stderr"]
    assert (out, err) == ticks_expected(n)
    assert any(t.startswith("connection lost") for t in text)
    if how == "re-attach":
        assert (
            task.attempt == 1 and "re-attached; the outcome comes from the target's record" in text
        )
    else:
        assert task.attempt >= 2 and any("re-attaching to its record" in t for t in text)


async def test_server_verify_task_records_health_on_the_test_bed(
    fleet: Fleet, tmp_path: Path
) -> None:
    host = fleet.fresh_root(fleet.take(1)[0])
    db, _ = await _store(tmp_path, [host], 0)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config)  # the built-in kinds, as users have them
    try:
        async with in_process_worker(db, config):
            first = await engine.queue("server.verify", [host.name])
            [ok] = await engine.wait(first.task_ids, timeout=60)
            async with db.read() as conn:
                healthy = await server_queries.health_of(conn, host.name)
            again = await engine.queue("server.verify", [host.name])  # idempotent
            [ok_again] = await engine.wait(again.task_ids, timeout=60)
            with fleet.stopped(host):
                down = await engine.queue("server.verify", [host.name])
                [failed] = await engine.wait(down.task_ids, timeout=60)
            async with db.read() as conn:
                after = await server_queries.health_of(conn, host.name)
        log = [line.text for line in await engine.log(ok.id)]
    finally:
        fleet.start(host)
        await db.close()
    assert ok.state is TaskState.SUCCEEDED, "\n".join(log)
    assert ok_again.state is TaskState.SUCCEEDED, ok_again.result
    assert ok.result.startswith("ok: ") and "checks passed" in ok.result
    assert any(line.startswith("facts: ok") for line in log)
    assert "health recorded: ok" in log
    assert healthy is not None and healthy.health is Health.OK and healthy.reason == ""
    assert healthy.facts["cpus"] == os.cpu_count()
    assert (host.root / "platforms").is_dir(), "verify laid out the server's root"
    assert failed.state is TaskState.FAILED and "unreachable" in failed.result
    assert failed.attempt == 1
    assert after is not None and after.health is Health.UNREACHABLE and after.reason
    assert after.facts["cpus"] == healthy.facts["cpus"], "what was learnt is kept"
    assert after.checked_at is not None and healthy.checked_at is not None
    assert after.checked_at > healthy.checked_at

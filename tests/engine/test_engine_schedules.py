"""Schedules fire once per run however many workers look; retention keeps the store
bounded; kinds come from entry points; args never carry secrets."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_kinds import TEST_ECHO, make_registry
from enginekit import add_inventory, local_config, local_server, python_env

from cockpit.config import Config, Retention
from cockpit.engine import Engine, Priority, Registry, TaskKind, TaskState
from cockpit.engine.logs import Redactor
from cockpit.engine.model import check_args
from cockpit.engine.schedules import fire_due, next_run
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import ValidationError
from cockpit.store import Database, open_store
from cockpit.store import logs as log_queries
from cockpit.store import schedules as schedule_queries
from cockpit.store import tasks as task_queries


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    store = await open_store(tmp_path / "cockpit.db")
    await add_inventory(store, [local_server("l0", tmp_path / "h0")], 3)
    try:
        yield store
    finally:
        await store.close()


def engine_for(db: Database, **config: object) -> Engine:
    return Engine(db, Config(store=db.path, **config), registry=make_registry())  # type: ignore[arg-type]


async def _make_due(db: Database, name: str) -> None:
    async with db.write() as conn:
        await conn.execute("UPDATE schedules SET next_run = 1 WHERE name = ?", (name,))


async def test_a_due_schedule_fires_once_even_with_several_workers(db: Database) -> None:
    engine = engine_for(db)
    schedule = await engine.add_schedule("every-minute", "* * * * *", "test.echo", ["*"])
    assert schedule.next_run is not None and schedule.next_run > time.time()
    await _make_due(db, "every-minute")
    registry = make_registry()
    fired = await asyncio.gather(*(fire_due(db, registry) for _ in range(4)))
    assert sorted(fired) == [0, 0, 0, 3]
    tasks = await engine.tasks()
    assert len(tasks) == 3
    assert {t.priority for t in tasks} == {Priority.SCHEDULED}
    assert {t.queued_by for t in tasks} == {"schedule every-minute"}
    [after] = [s for s in await engine.schedules() if s.name == "every-minute"]
    assert after.last_run is not None and after.next_run is not None
    assert after.next_run > time.time() and after.last_batch == tasks[0].batch_id
    # fired again while the first batch still waits: no pile-up per target
    await _make_due(db, "every-minute")
    assert await fire_due(db, registry) == 0
    assert len(await engine.tasks()) == 3


async def test_selectors_and_pausing(db: Database) -> None:
    engine = engine_for(db)
    await engine.add_schedule("some", "0 3 * * *", "test.echo", ["server=l0"])
    await engine.add_schedule("one", "0 3 * * *", "test.echo", ["site1.l0.example"])
    await engine.pause_schedule("one")
    await _make_due(db, "some")
    await _make_due(db, "one")
    assert await fire_due(db, make_registry()) == 3
    resumed = await engine.pause_schedule("one", False)
    assert not resumed.paused and resumed.next_run is not None and resumed.next_run > time.time()
    with pytest.raises(ValidationError, match="does not select"):
        await engine.add_schedule("x", "0 3 * * *", "test.echo", ["colour=red"])
    with pytest.raises(ValidationError, match="5 fields"):
        await engine.add_schedule("x", "@hourly please", "test.echo", ["*"])


async def test_the_retention_schedule_is_there_and_starts_counting(db: Database) -> None:
    async with db.read() as conn:
        row = await schedule_queries.get(conn, "store-retention")
    assert row is not None and row["next_run"] is None and row["kind"] == "store.prune"
    assert await fire_due(db, make_registry()) == 0  # first look: computes the next run
    async with db.read() as conn:
        row = await schedule_queries.get(conn, "store-retention")
    assert row is not None and row["next_run"] > time.time()


def test_next_run_follows_cron() -> None:
    base = time.mktime((2026, 1, 5, 10, 7, 0, 0, 0, -1))  # local time
    assert next_run("*/15 * * * *", base) == time.mktime((2026, 1, 5, 10, 15, 0, 0, 0, -1))
    assert next_run("30 2 * * *", base) == time.mktime((2026, 1, 6, 2, 30, 0, 0, 0, -1))


async def test_prune_keeps_the_last_n_per_target_and_recent_failures(db: Database) -> None:
    engine = engine_for(db, retention=Retention(keep_per_target=2, failed_days=7))
    site = "site0.l0.example"
    ids: list[int] = []
    for _ in range(6):
        ids += (await engine.queue("test.echo", [site])).task_ids
    old_failure, new_failure = ids[0], ids[1]
    async with db.write() as conn:
        await conn.execute("UPDATE tasks SET state = 'succeeded', finished_at = 1")
        await conn.execute(
            "UPDATE tasks SET state = 'failed', finished_at = ? WHERE id = ?",
            (time.time() - 30 * 86400, old_failure),
        )
        await conn.execute(
            "UPDATE tasks SET state = 'failed', finished_at = ? WHERE id = ?",
            (time.time(), new_failure),
        )
        await log_queries.append(conn, [(i, 1, 0.0, "stdout", "x") for i in ids])
    running = await engine.queue("test.echo", [site])  # queued: never pruned
    async with db.write() as conn:  # and kept queued while the prune runs
        await conn.execute("UPDATE tasks SET not_before = 1e12 WHERE state = 'queued'")
    batch = await engine.queue("store.prune", ["store"])
    worker = Worker(db, engine.config, registry=make_registry(), options=WorkerOptions(poll=0.05))
    handle = asyncio.create_task(worker.run())
    try:
        [pruned] = await engine.wait(batch.task_ids, timeout=30)
    finally:
        worker.stop()
        await handle
    assert pruned.state is TaskState.SUCCEEDED and pruned.result == "removed 3 tasks"
    left = {t.id for t in await engine.tasks(target=site, limit=100)}
    assert left == {new_failure, ids[4], ids[5], *running.task_ids}
    async with db.read() as conn:
        assert [await log_queries.count(conn, i) for i in ids] == [0, 1, 0, 0, 1, 1]


def test_args_never_carry_secrets() -> None:
    assert check_args({"keep": 3, "paths": ["/srv"], "opts": {"gzip": True}}) == {
        "keep": 3,
        "paths": ["/srv"],
        "opts": {"gzip": True},
    }
    for bad in (
        {"password": "x"},
        {"db_pass": "x"},
        {"opts": {"api_key": "x"}},
        {"auth": "x"},
        {"Bad-Key": 1},
        {"blob": b"bytes"},
        {"text": "nul\x00"},
    ):
        with pytest.raises(ValidationError):
            check_args(bad)


def test_redactor_replaces_every_secret_longest_first() -> None:
    redact = Redactor(["abc", "abcdef"])
    assert redact("x abcdef y abc z") == "x *** y *** z"
    assert redact("no secret here") == "no secret here"
    assert Redactor()("plain") == "plain"


_PLUGIN = """
from cockpit.engine import Step, TargetKind, TaskKind


async def _hello(ctx):
    await ctx.sh("echo hello from a plugin")


KINDS = [TaskKind("plugin.hello", TargetKind.SERVER, True, "say hello", (Step("hello", _hello),))]
"""


def test_kinds_come_from_the_entry_point_group(tmp_path: Path) -> None:
    """A package installed beside Cockpit (its dist-info on the path) adds a kind through
    ``cockpit.tasks``; a broken entry point is skipped with a warning."""
    site = tmp_path / "site"
    (site / "cockpit_hello_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "cockpit_hello_plugin.py").write_text(_PLUGIN)
    info = site / "cockpit_hello_plugin-1.0.dist-info"
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cockpit-hello-plugin\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[cockpit.tasks]\nhello = cockpit_hello_plugin:KINDS\nbroken = no_such_module_here:KINDS\n"
    )
    env = python_env()
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env.pop("COCKPIT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", "from cockpit.cli import main; main()", "task", "kinds"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "plugin.hello\tserver\tidempotent\tsay hello" in done.stdout
    assert "server.ping\tserver" in done.stdout
    assert "task plugin broken" in done.stderr and "no_such_module_here" in done.stderr


def test_a_kind_is_registered_once() -> None:
    registry = Registry([TEST_ECHO])
    assert registry.get("test.echo") is TEST_ECHO
    with pytest.raises(ValueError, match="twice"):
        registry.add(TaskKind("test.echo", TEST_ECHO.target, True, "dup", ()))
    with pytest.raises(ValidationError, match="no such task kind"):
        registry.get("test.nope")


async def test_worker_is_not_needed_to_read_an_empty_engine(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "empty.db")
    try:
        engine = Engine(store, local_config(store.path))
        assert await engine.tasks() == []
        assert (await engine.counts())[TaskState.QUEUED] == 0
        assert not engine.worker_status().running
        names = [k.name for k in engine.kinds()]
        assert names == sorted(names)
        assert {"server.ping", "server.verify", "store.prune"} <= set(names)
        async with store.read() as conn:
            assert await task_queries.counts(conn) == {}
    finally:
        await store.close()

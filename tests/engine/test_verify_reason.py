"""A failed ``server.verify`` says why in its task log (and in its result), on the test bed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from engine_kinds import make_registry
from enginekit import add_inventory, bed_config, bed_server
from testbed import Fleet

from cockpit.config import Config
from cockpit.engine import Engine, TaskState
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Health, Service, ServiceKind
from cockpit.store import Database, open_store
from cockpit.store import servers as server_queries


@asynccontextmanager
async def _worker(db: Database, config: Config) -> AsyncIterator[Worker]:
    options = WorkerOptions(
        global_limit=config.concurrency.global_limit,
        per_server=config.concurrency.per_server,
        poll=0.05,
        cancel_poll=0.1,
        maintenance_every=0.3,
        lease=10.0,
        grace=1.0,
    )
    worker = Worker(db, config, registry=make_registry(), options=options)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 60)


async def test_a_failed_verify_says_why_in_its_task_log(fleet: Fleet, tmp_path: Path) -> None:
    down_host, broken_host = (fleet.fresh_root(h) for h in fleet.take(2))
    # A reachable server whose declared web server is not installed: verify fails a check.
    broken = dataclasses.replace(
        bed_server(broken_host),
        services=(Service(ServiceKind.HTTP, "nginx", {"binary": "cockpit-no-such-nginx"}),),
    )
    db = await open_store(tmp_path / "data" / "cockpit.db")
    await add_inventory(db, [bed_server(down_host), broken], 0)
    config = bed_config(db.path, fleet)
    engine = Engine(db, config)
    try:
        async with _worker(db, config):
            with fleet.stopped(down_host):
                down = await engine.queue("server.verify", [down_host.name])
                [unreachable] = await engine.wait(down.task_ids, timeout=60)
            check = await engine.queue("server.verify", [broken.name])
            [failed] = await engine.wait(check.task_ids, timeout=60)
        async with db.read() as conn:
            down_health = await server_queries.health_of(conn, down_host.name)
            broken_health = await server_queries.health_of(conn, broken.name)
        down_log = [line.text for line in await engine.log(unreachable.id)]
        broken_log = [line.text for line in await engine.log(failed.id)]
    finally:
        fleet.start(down_host)
        await db.close()

    assert unreachable.state is TaskState.FAILED, "\n".join(down_log)
    assert down_health is not None and down_health.health is Health.UNREACHABLE
    assert down_health.reason.startswith("connect: ")
    # The log says what failed and why, in the words the store keeps for the server's row.
    assert any(line.startswith("connect: failed (") for line in down_log), down_log
    assert any(down_health.reason in line for line in down_log), down_log
    assert "health recorded: unreachable" in down_log
    assert down_health.reason in unreachable.result

    assert failed.state is TaskState.FAILED, "\n".join(broken_log)
    assert broken_health is not None and broken_health.health is Health.FAILED
    assert "cockpit-no-such-nginx not found" in broken_health.reason
    assert any(
        line.startswith("http/nginx: installed: failed (") and "cockpit-no-such-nginx" in line
        for line in broken_log
    ), broken_log
    assert any(broken_health.reason in line for line in broken_log), broken_log
    assert "health recorded: failed" in broken_log
    assert broken_health.reason in failed.result

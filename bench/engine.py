"""Task engine benchmarks; prints figures (for docs/benchmarks.md).

    python bench/engine.py [--hosts 50] [--tasks 500] [--skip-remote]

1. Enqueue 10,000 tasks as one batch (target: under 1 s).
2. Claims per second with 1 and 4 claimer processes (claim one task per
   transaction, then end it in another: what a worker does, minus the work).
3. End to end: 500 trivial remote tasks (``echo ok``) over 50 test-bed hosts through
   the engine (a worker with the default limits: 16 at once, 4 per server) against
   the same commands from a bare asyncssh script with the same concurrency (target:
   the engine within 1.5x). Needs root and the test bed (tests/testbed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
for entry in (str(REPO), str(TESTS), str(TESTS / "engine")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from engine_kinds import make_registry  # noqa: E402
from enginekit import add_inventory, bed_config, bed_server, local_server  # noqa: E402

from cockpit.config import Config  # noqa: E402
from cockpit.engine import Engine, Priority, TaskState  # noqa: E402
from cockpit.engine.worker import Worker, WorkerOptions  # noqa: E402
from cockpit.model import Site  # noqa: E402
from cockpit.store import open_store  # noqa: E402
from cockpit.store import platforms as platform_queries  # noqa: E402
from cockpit.store import servers as server_queries  # noqa: E402
from cockpit.store import sites as site_queries  # noqa: E402
from cockpit.store.sites import RefIds  # noqa: E402

CLAIMER = r"""
import asyncio, sys, time, json
from pathlib import Path
from cockpit.store import open_store
from cockpit.store import tasks as q

async def main(store, name, seconds):
    db = await open_store(Path(store))
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        async with db.write() as conn:
            rows = await q.claim(conn, name, lease=60, per_server=10**6)
        if not rows:
            break
        async with db.write() as conn:
            await q.finish(conn, rows[0]["id"], name, rows[0]["attempt"], "succeeded", "")
        n += 1
    await db.close()
    print(json.dumps({"claims": n}))

asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
"""


async def bench_enqueue(tmp: Path) -> float:
    db = await open_store(tmp / "enqueue.db")
    try:
        [server] = [local_server("l0", tmp / "l0")]
        await add_inventory(db, [server], 0)
        domains = [f"s{i}.bulk.example" for i in range(10_000)]
        async with db.write() as conn:
            refs = RefIds(
                platforms=await platform_queries.ids(conn),
                clients={},
                servers=await server_queries.ids(conn),
            )
            await site_queries.insert_many(
                conn, [Site(domain=d, platform="p-l0") for d in domains], refs
            )
        engine = Engine(db, Config(store=db.path), registry=make_registry())
        times = []
        for _ in range(3):
            began = time.perf_counter()
            batch = await engine.queue("test.echo", domains, priority=Priority.SCHEDULED)
            times.append(time.perf_counter() - began)
            assert len(batch.task_ids) == 10_000
        return min(times)
    finally:
        await db.close()


async def bench_claims(tmp: Path, processes: int, seconds: float = 5.0) -> float:
    store = tmp / f"claims{processes}.db"
    db = await open_store(store)
    try:
        [server] = [local_server("l0", tmp / "l0c")]
        await add_inventory(db, [server], 0)
        from cockpit.store import tasks as task_queries

        async with db.write() as conn:
            batch = await task_queries.insert_batch(conn, "bench", "bench")
            for round_ in range(40):
                await task_queries.insert_tasks(
                    conn,
                    kind="test.echo",
                    target_kind="site",
                    targets={f"t{i}.r{round_}.example": "l0" for i in range(1000)},
                    args="{}",
                    priority=0,
                    idempotent=True,
                    max_attempts=1,
                    batch_id=int(batch["id"]),
                    queued_by="bench",
                )
    finally:
        await db.close()
    env = dict(os.environ, PYTHONPATH=str(REPO))
    began = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(store), f"c{n}", str(seconds)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(processes)
    ]
    total = 0
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 60)
        total += json.loads(out)["claims"]
    elapsed = time.perf_counter() - began
    return total / elapsed


async def bench_remote(tmp: Path, hosts_wanted: int, tasks: int) -> tuple[float, float]:
    from testbed import Fleet

    fleet = Fleet.create()
    try:
        hosts = [fleet.fresh_root(h) for h in fleet.take(hosts_wanted)]
        per_host = max(1, tasks // len(hosts))
        bare = await _bare_asyncssh(hosts, per_host, concurrency=16)
        db = await open_store(tmp / "remote.db")
        try:
            sites = await add_inventory(db, [bed_server(h) for h in hosts], per_host)
            config: Config = bed_config(db.path, fleet)
            # The queueing and waiting side has its own connections, as the TUI or the
            # CLI in another process would.
            front = await open_store(db.path)
            engine = Engine(front, config, registry=make_registry())
            options = WorkerOptions.from_config(config, poll=0.05)
            worker = Worker(db, config, registry=make_registry(), options=options)
            began = time.perf_counter()
            batch = await engine.queue("test.echo", sites)
            handle = asyncio.create_task(worker.run())
            done = await engine.wait(batch.task_ids, poll=0.05)
            through_engine = time.perf_counter() - began
            worker.stop()
            await handle
            await front.close()
            assert {t.state for t in done} == {TaskState.SUCCEEDED}
        finally:
            await db.close()
        return bare, through_engine
    finally:
        fleet.close()


async def _bare_asyncssh(hosts: list, per_host: int, concurrency: int) -> float:  # type: ignore[type-arg]
    import asyncssh

    began = time.perf_counter()
    conns = {}
    limit = asyncio.Semaphore(concurrency)

    async def connect(host):  # type: ignore[no-untyped-def]
        return await asyncssh.connect(**host.asyncssh_options(), kex_algs=["curve25519-sha256"])

    async def one(host) -> None:  # type: ignore[no-untyped-def]
        async with limit:
            if host.name not in conns:  # one connection per host, shared
                conns[host.name] = asyncio.ensure_future(connect(host))
            conn = await conns[host.name]
            result = await conn.run("/bin/sh -s", input="echo ok\n", check=True)
            assert result.stdout == "ok\n"

    await asyncio.gather(*(one(h) for h in hosts for _ in range(per_host)))
    elapsed = time.perf_counter() - began
    for future in conns.values():
        (await future).close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--skip-remote", action="store_true")
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-") as name:
        tmp = Path(name)
        enqueue = await bench_enqueue(tmp)
        print(f"enqueue 10,000 tasks as one batch: {enqueue:.3f} s (target < 1 s)")
        for n in (1, 4):
            rates = [await bench_claims(tmp / f"r{n}-{i}", n) for i in range(1)]
            print(f"claims/s with {n} claimer process(es): {statistics.median(rates):.0f}")
        if not ns.skip_remote:
            bare, engine = await bench_remote(tmp, ns.hosts, ns.tasks)
            print(
                f"{ns.tasks} trivial remote tasks over {ns.hosts} hosts: engine {engine:.2f} s, "
                f"bare asyncssh {bare:.2f} s, ratio {engine / bare:.2f}x (target <= 1.5x)"
            )


if __name__ == "__main__":
    asyncio.run(main())

"""The task engine: enqueue, claims under contention, and remote tasks against a bare peer.

    python -m bench engine                         # writes its section of docs/benchmarks.md
    python -m bench.engine --hosts 10 --tasks 100 --no-write

1. Enqueue 10,000 tasks as one batch through ``Engine.queue`` (target: under 1 s).
2. Claims per second with 1 and 4 claimer processes on one store: each claims one task
   per transaction and ends it in another (what a worker does, minus the work); every
   "database is locked" is counted.
3. End to end: 500 trivial remote tasks (``echo ok``) over 50 test-bed hosts (10 sites
   each) through the engine, against the same commands from a bare asyncssh script, the
   peer, with the same concurrency (16 at once), the same algorithms and the targets in
   the same order (the hosts in turn). The engine is
   a real worker process (``cockpit worker`` with the test kinds), started and idle
   before the clock starts; the time runs from queueing the batch until the last task
   is stored as succeeded. Cold: new connections (a new worker, a new peer process);
   warm: a second batch over the connections already open (target: within 1.5x).

Needs root: it starts its own sshd fleet on 127.0.0.2… (tests/testbed, loopback only,
login user ``cockpit-tb`` with a plain shell). Nothing here runs inside pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.report import Section, ms, table

REPO = Path(__file__).resolve().parent.parent
for _entry in (str(REPO), str(REPO / "tests"), str(REPO / "tests" / "engine")):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

ENQUEUE = 10_000
KEX = ["curve25519-sha256"]
CIPHERS = ["aes128-gcm@openssh.com"]
CONCURRENCY = 16  # the engine's default global limit; the peer gets the same
TITLE = "Task engine: enqueue, claims, remote tasks against a bare peer"


def _env() -> dict[str, str]:
    paths = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "engine")]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


# ---------------------------------------------------------------------------
# 1. enqueue
# ---------------------------------------------------------------------------


async def bench_enqueue(tmp: Path, repeat: int = 5) -> list[float]:
    """Seconds to queue 10,000 tasks as one batch (each run into its own store)."""
    from engine_kinds import make_registry
    from enginekit import add_inventory, local_server

    from cockpit.config import Config
    from cockpit.engine import Engine, Priority
    from cockpit.model import Site
    from cockpit.store import open_store
    from cockpit.store import platforms as platform_queries
    from cockpit.store import servers as server_queries
    from cockpit.store import sites as site_queries
    from cockpit.store.sites import RefIds

    samples = []
    domains = [f"s{i}.bulk.example" for i in range(ENQUEUE)]
    for n in range(repeat):
        db = await open_store(tmp / f"enqueue{n}.db")
        try:
            await add_inventory(db, [local_server("l0", tmp / "l0")], 0)
            async with db.write() as conn:
                refs = RefIds(
                    platforms=await platform_queries.ids(conn),
                    clients={},
                    servers=await server_queries.ids(conn),
                )
                sites = [Site(domain=d, platform="p-l0") for d in domains]
                await site_queries.insert_many(conn, sites, refs)
            engine = Engine(db, Config(store=db.path), registry=make_registry())
            began = time.perf_counter()
            batch = await engine.queue("test.echo", domains, priority=Priority.SCHEDULED)
            samples.append(time.perf_counter() - began)
            assert len(batch.task_ids) == ENQUEUE
            assert (await engine.batch_counts(batch.id))["queued"] == ENQUEUE
        finally:
            await db.close()
    return samples


# ---------------------------------------------------------------------------
# 2. claims
# ---------------------------------------------------------------------------


async def _claimer(store: Path, name: str, start_at: float, seconds: float) -> dict[str, Any]:
    from cockpit.store import StoreError, open_store
    from cockpit.store import tasks as task_queries

    db = await open_store(store, migrate=False)
    claims = locked = errors = 0
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                async with db.write() as conn:
                    rows = await task_queries.claim(conn, name, lease=60, per_server=10**6)
                if not rows:
                    break
                async with db.write() as conn:
                    row = rows[0]
                    await task_queries.finish(
                        conn, row["id"], name, row["attempt"], "succeeded", ""
                    )
                claims += 1
            except StoreError as exc:
                errors += 1
                locked += "locked" in str(exc)
    finally:
        await db.close()
    return {"claims": claims, "locked": locked, "errors": errors}


async def bench_claims(tmp: Path, processes: int, seconds: float = 5.0) -> dict[str, float]:
    """Claims per second of ``processes`` claimer processes started together."""
    from cockpit.store import open_store
    from cockpit.store import tasks as task_queries

    store = tmp / f"claims{processes}.db"
    db = await open_store(store)
    try:
        async with db.write() as conn:
            batch = await task_queries.insert_batch(conn, "bench", "bench")
            for round_ in range(40):  # 40,000 tasks, far more than are claimed
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
    start_at = time.time() + 2.0  # every process imported and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.engine", "--child", "claimer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=_env(),
        )
        for _ in range(processes)
    ]
    spec = {"store": str(store), "start_at": start_at, "seconds": seconds}
    reports = []
    for n, proc in enumerate(procs):
        out, _ = proc.communicate(json.dumps({**spec, "name": f"c{n}"}), timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"claimer {n} failed (exit {proc.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    total = sum(r["claims"] for r in reports)
    return {
        "rate": total / seconds,
        "claims": total,
        "locked": sum(r["locked"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
    }


# ---------------------------------------------------------------------------
# 3. remote tasks: the engine against a bare asyncssh script
# ---------------------------------------------------------------------------


async def _peer(spec: dict[str, Any]) -> dict[str, Any]:
    """The peer: one asyncssh connection per host (opened by the first command on it),
    ``/bin/sh -s`` with ``echo ok`` on stdin per task, at most ``concurrency`` at once,
    the hosts taken in turn (its best order: connections open in parallel)."""
    import asyncssh

    hosts: list[dict[str, Any]] = spec["hosts"]
    per_host: int = spec["per_host"]
    limit = asyncio.Semaphore(spec["concurrency"])
    conns: dict[str, asyncio.Future[Any]] = {}

    async def one(host: dict[str, Any]) -> None:
        async with limit:
            key = host["host"]
            if key not in conns:
                conns[key] = asyncio.ensure_future(
                    asyncssh.connect(**host, kex_algs=KEX, encryption_algs=CIPHERS)
                )
            conn = await conns[key]
            result = await conn.run("/bin/sh -s", input="echo ok\n", check=True)
            assert result.stdout == "ok\n"

    async def round_() -> tuple[float, float]:
        began, cpu = time.perf_counter(), time.process_time()
        # host after host, round after round: the first 16 commands open 16 connections
        await asyncio.gather(*(one(h) for _ in range(per_host) for h in hosts))
        return time.perf_counter() - began, time.process_time() - cpu

    cold = await round_()
    warm = [await round_() for _ in range(spec["warm_rounds"])]
    for future in conns.values():
        conn = await future
        conn.close()
        await conn.wait_closed()
    return {
        "cold": cold[0],
        "warm": [w for w, _ in warm],
        "cold_cpu": cold[1],
        "warm_cpu": [c for _, c in warm],
    }


def run_peer(hosts: Sequence[Any], per_host: int, warm_rounds: int) -> dict[str, Any]:
    spec = {
        "hosts": [h.asyncssh_options() for h in hosts],
        "per_host": per_host,
        "concurrency": CONCURRENCY,
        "warm_rounds": warm_rounds,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.engine", "--child", "peer"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=_env(),
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the peer failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def run_engine(
    tmp: Path, fleet: Any, hosts: Sequence[Any], per_host: int, warm_rounds: int, n: int
) -> dict[str, Any]:
    """One cold batch on a new worker process, then ``warm_rounds`` batches on it."""
    from engine_kinds import make_registry
    from enginekit import add_inventory, bed_config, bed_server, start_worker

    from cockpit.engine import Engine, TaskState
    from cockpit.engine.daemon import status
    from cockpit.store import open_store

    db = await open_store(tmp / f"remote{n}" / "cockpit.db")
    worker = None
    try:
        by_host = await add_inventory(db, [bed_server(h) for h in hosts], per_host)
        # the targets in the peer's order: host after host, round after round (the
        # inventory lists them host by host, which would queue a host's sites together)
        sites = [by_host[h * per_host + i] for i in range(per_host) for h in range(len(hosts))]
        config = bed_config(db.path, fleet, global_limit=CONCURRENCY, per_server=4)
        engine = Engine(db, config, registry=make_registry())
        worker = start_worker(config, locked=True, log=tmp / f"worker{n}.log")
        deadline = time.monotonic() + 60
        while not status(config).running or status(config).pid is None:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the worker did not start; see {tmp / f'worker{n}.log'}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # its first recovery pass is done: idle, no connection

        async def batch() -> tuple[float, float]:
            began, cpu = time.perf_counter(), _cpu(worker.pid) + time.process_time()
            queued = await engine.queue("test.echo", sites)  # notifies the worker
            done = await engine.wait(queued.task_ids, poll=0.02, timeout=600)
            elapsed = time.perf_counter() - began
            used = _cpu(worker.pid) + time.process_time() - cpu
            states = {t.state for t in done}
            assert states == {TaskState.SUCCEEDED}, {t.result for t in done}
            return elapsed, used

        cold = await batch()
        warm = [await batch() for _ in range(warm_rounds)]
        return {
            "cold": cold[0],
            "warm": [w for w, _ in warm],
            "cold_cpu": cold[1],
            "warm_cpu": [c for _, c in warm],
        }
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        await db.close()


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_remote(
    tmp: Path, hosts_wanted: int, tasks: int, repeat: int, warm_rounds: int
) -> dict[str, Any]:
    from testbed import Fleet

    engine: list[dict[str, Any]] = []
    peer: list[dict[str, Any]] = []
    with Fleet.create() as fleet:
        hosts = [fleet.fresh_root(h) for h in fleet.take(hosts_wanted)]
        per_host = max(1, tasks // len(hosts))
        for n in range(repeat):  # alternated, so drifting load hits both alike
            print(f"   remote round {n + 1}/{repeat}: peer …", file=sys.stderr, flush=True)
            peer.append(run_peer(hosts, per_host, warm_rounds))
            print(f"   remote round {n + 1}/{repeat}: engine …", file=sys.stderr, flush=True)
            engine.append(asyncio.run(run_engine(tmp, fleet, hosts, per_host, warm_rounds, n)))
    return {
        "hosts": len(hosts),
        "tasks": per_host * len(hosts),
        "engine": engine,
        "peer": peer,
    }


# ---------------------------------------------------------------------------
# the section
# ---------------------------------------------------------------------------


def _verdict(ratio: float) -> str:
    return "met" if ratio <= 1.5 else "**not met**"


def _s(samples: Sequence[float]) -> str:
    """Median (min–max) in seconds."""
    return f"{statistics.median(samples):.2f} s ({min(samples):.2f}–{max(samples):.2f})"


def fsync_latency(directory: Path, count: int = 50) -> tuple[float, float]:
    """Median and 90th percentile (ms) of an fsync after a 16 KiB write in ``directory``:
    what every durable commit of the store waits for, whatever else the disk does."""
    samples = []
    fd, name = tempfile.mkstemp(dir=directory)
    try:
        for _ in range(count):
            os.write(fd, b"\0" * 16384)
            began = time.perf_counter()
            os.fsync(fd)
            samples.append((time.perf_counter() - began) * 1000)
            time.sleep(0.002)
    finally:
        os.close(fd)
        os.unlink(name)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


def measure(hosts: int, tasks: int, repeat: int, warm_rounds: int) -> str:
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-engine-") as name:
        tmp = Path(name)
        fsync_before = fsync_latency(tmp)
        print("   enqueue …", file=sys.stderr, flush=True)
        enqueue = asyncio.run(bench_enqueue(tmp))
        claims = {}
        for processes in (1, 4):
            print(f"   claims, {processes} process(es) …", file=sys.stderr, flush=True)
            claims[processes] = asyncio.run(bench_claims(tmp, processes))
        remote = bench_remote(tmp, hosts, tasks, repeat, warm_rounds) if tasks else None
        fsync_after = fsync_latency(tmp)
    load_after = os.getloadavg()[0]

    enqueue_median = statistics.median(enqueue)
    parts = [
        f"Load average {load_before:.2f} before, {load_after:.2f} after (2 cores shared "
        "with other work: compare the ratios, not the absolute times). An fsync on the "
        f"store's disk took {fsync_before[0]:.2f} ms (p90 {fsync_before[1]:.2f}) before, "
        f"{fsync_after[0]:.2f} ms (p90 {fsync_after[1]:.2f}) after: every commit of the "
        "store waits for one, and a task's slot passes to the next task only once its "
        "end is committed; the bare script stores nothing.",
        "",
        f"**Enqueue** {ENQUEUE:,} tasks as one batch (`Engine.queue`: validation, target "
        f"lookup, one transaction), median of {len(enqueue)} (min–max):",
        "",
        table(
            ["operation", "time", "target", "met"],
            [
                [
                    f"queue {ENQUEUE:,} tasks",
                    ms(enqueue),
                    "< 1 s",
                    "yes" if enqueue_median < 1.0 else "**no**",
                ]
            ],
        ),
        "",
        "**Claims** per second: claimer processes on one store, each claiming one task per "
        "transaction (BEGIN IMMEDIATE) and ending it in another, for 5 s:",
        "",
        table(
            ["processes", "claims/s", "claims", '"database is locked"', "other errors"],
            [
                [p, f"{c['rate']:,.0f}", f"{c['claims']:,.0f}", c["locked"], c["errors"]]
                for p, c in claims.items()
            ],
        ),
    ]
    if remote is not None:
        engine_cold = [r["cold"] for r in remote["engine"]]
        peer_cold = [r["cold"] for r in remote["peer"]]
        engine_warm = [w for r in remote["engine"] for w in r["warm"]]
        peer_warm = [w for r in remote["peer"] for w in r["warm"]]
        cold_ratio = statistics.median(engine_cold) / statistics.median(peer_cold)
        warm_ratio = statistics.median(engine_warm) / statistics.median(peer_warm)
        count, nhosts = remote["tasks"], remote["hosts"]
        import asyncssh

        parts += [
            "",
            f"**Remote tasks**: {count} trivial tasks (`echo ok` through `/bin/sh -s`) over "
            f"{nhosts} loopback sshd hosts of the test bed, {count // nhosts} per host, 16 at "
            "once. Engine: a worker process with the default limits (16 in all, 4 per "
            "server), timed from queueing the batch to the last task stored as succeeded "
            "(claims, step journal, log lines, final states all in the store). Peer: a bare "
            "asyncssh script (one connection per host, a semaphore of 16, `conn.run`). Both "
            "take the targets in the same order, the hosts in turn (so that connections "
            "open in parallel); both "
            f"use {KEX[0]} and {CIPHERS[0]} (asyncssh {asyncssh.__version__}). Cold: new "
            f"connections; warm: again over the open ones. Median of {len(engine_cold)} cold "
            f"and {len(engine_warm)} warm batches (min–max):",
            "",
            table(
                ["", "engine", "bare asyncssh", "engine / peer", "target"],
                [
                    ["cold", _s(engine_cold), _s(peer_cold), f"{cold_ratio:.2f}×", "≤ 1.5×"],
                    ["warm", _s(engine_warm), _s(peer_warm), f"{warm_ratio:.2f}×", "≤ 1.5×"],
                ],
            ),
            "",
            "Client CPU per task (the worker process and the queueing one for the "
            "engine, the script's process for the peer; sshd not counted), median:",
            "",
            table(
                ["", "engine", "bare asyncssh", "engine / peer"],
                [
                    [
                        label,
                        f"{statistics.median(e) / count * 1000:.2f} ms",
                        f"{statistics.median(p) / count * 1000:.2f} ms",
                        f"{statistics.median(e) / statistics.median(p):.2f}×",
                    ]
                    for label, e, p in (
                        (
                            "cold",
                            [r["cold_cpu"] for r in remote["engine"]],
                            [r["cold_cpu"] for r in remote["peer"]],
                        ),
                        (
                            "warm",
                            [c for r in remote["engine"] for c in r["warm_cpu"]],
                            [c for r in remote["peer"] for c in r["warm_cpu"]],
                        ),
                    )
                ],
            ),
            "",
            f"Wall time per task: engine {statistics.median(engine_warm) / count * 1000:.1f} ms, "
            f"peer {statistics.median(peer_warm) / count * 1000:.1f} ms (warm, "
            f"{CONCURRENCY} at once). Target within 1.5×: cold (end to end, connections "
            f"included) {cold_ratio:.2f}×, "
            + _verdict(cold_ratio)
            + f"; warm {warm_ratio:.2f}×, "
            + _verdict(warm_ratio)
            + ". The engine does what the bare script does not: each task is claimed with "
            "its target read, journalled, logged and ended in the store, with durable "
            "commits (fsync); the tasks that end together share one transaction, which "
            "also claims their successors, handed to SQLite's thread in one round trip.",
        ]
    return "\n".join(parts) + "\n"


def run() -> Section:
    """The section of docs/benchmarks.md: 500 tasks over 50 hosts, 3 rounds."""
    text = measure(hosts=50, tasks=500, repeat=3, warm_rounds=2)
    return Section("engine", TITLE, text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--child", choices=("claimer", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--hosts", type=int, default=50, help="test-bed hosts")
    parser.add_argument("--tasks", type=int, default=500, help="remote tasks (0: skip)")
    parser.add_argument("--repeat", type=int, default=3, help="cold rounds of each")
    parser.add_argument("--warm", type=int, default=2, help="warm batches per round")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.child == "claimer":
        spec = json.loads(sys.stdin.read())
        report = asyncio.run(
            _claimer(Path(spec["store"]), spec["name"], spec["start_at"], spec["seconds"])
        )
        print(json.dumps(report))
        return 0
    if args.child == "peer":
        print(json.dumps(asyncio.run(_peer(json.loads(sys.stdin.read())))))
        return 0
    text = measure(args.hosts, args.tasks, args.repeat, args.warm)
    print(text)
    if not args.no_write:
        from bench.report import write

        write(Section("engine", TITLE, text))
    return 0


if __name__ == "__main__":
    sys.exit(main())

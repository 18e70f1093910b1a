"""Claims under contention: real processes on one store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from enginekit import HERE, python_env

from cockpit.store import open_store
from cockpit.store import tasks as task_queries

WRITERS = 8
CLAIMS = 200
TARGETS = 40


async def test_eight_writer_processes_claim_without_locks_or_double_claims(tmp_path: Path) -> None:
    store = tmp_path / "cockpit.db"
    db = await open_store(store)
    try:
        async with db.write() as conn:
            batch = await task_queries.insert_batch(conn, "contention", "test")
            ids = []
            for _round in range(WRITERS * CLAIMS // TARGETS):
                ids += await task_queries.insert_tasks(
                    conn,
                    kind="test.echo",
                    target_kind="site",
                    targets={f"t{i}.example": "srv" for i in range(TARGETS)},
                    args="{}",
                    priority=0,
                    idempotent=True,
                    max_attempts=1,
                    batch_id=int(batch["id"]),
                    queued_by="test",
                )
    finally:
        await db.close()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "claimer_proc.py"), str(store), f"w{n}", str(CLAIMS),
             str(tmp_path / f"w{n}.json")],
            env=python_env(),
        )
        for n in range(WRITERS)
    ]  # fmt: skip
    for proc in procs:
        assert proc.wait(timeout=300) == 0
    results = [json.loads((tmp_path / f"w{n}.json").read_text()) for n in range(WRITERS)]
    claimed = [task for r in results for task in r["claimed"]]
    assert sum(r["locked"] for r in results) == 0, [r["errors"][:3] for r in results]
    assert all(not r["errors"] for r in results), [r["errors"][:3] for r in results]
    assert len(claimed) == WRITERS * CLAIMS
    doubles = [task for task, n in Counter(claimed).items() if n > 1]
    assert doubles == [], f"claimed twice: {doubles[:10]}"
    db = await open_store(store)
    try:
        async with db.read() as conn:
            counts = await task_queries.counts(conn)
            rows = await task_queries.list_tasks(conn, limit=-1)
    finally:
        await db.close()
    assert counts == {"succeeded": WRITERS * CLAIMS}
    # each task was ended by the worker that claimed it, exactly once
    owner = {task: f"w{n}" for n, r in enumerate(results) for task in r["claimed"]}
    assert all(row["result"] == owner[row["id"]] and row["attempt"] == 1 for row in rows)

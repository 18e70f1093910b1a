"""A claimer process for the contention tests: claims tasks, holds each briefly, ends it.

    python claimer_proc.py STORE WORKER_NAME CLAIMS OUT_JSON

Writes {"claimed": [...ids], "locked": n, "errors": [...]} to OUT_JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from cockpit.store import StoreError, open_store
from cockpit.store import tasks as task_queries


async def main(store: Path, name: str, wanted: int, out: Path) -> None:
    db = await open_store(store)
    claimed: list[int] = []
    locked = 0
    errors: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while len(claimed) < wanted and time.monotonic() < deadline:
            try:
                async with db.write() as conn:
                    rows = await task_queries.claim(conn, name, lease=60, per_server=1000)
            except StoreError as exc:
                locked += "locked" in str(exc)
                errors.append(str(exc))
                continue
            if not rows:
                await asyncio.sleep(0.005)
                continue
            row = rows[0]
            claimed.append(int(row["id"]))
            await asyncio.sleep(0.001)
            try:
                async with db.write() as conn:
                    ok = await task_queries.finish(
                        conn, row["id"], name, row["attempt"], "succeeded", name
                    )
                if not ok:
                    errors.append(f"task {row['id']} was not ours to finish")
            except StoreError as exc:
                locked += "locked" in str(exc)
                errors.append(str(exc))
    finally:
        await db.close()
    out.write_text(json.dumps({"claimed": claimed, "locked": locked, "errors": errors}))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))

"""A caller cancelled at any point of a transaction never leaves the store unusable."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cockpit.store import open_store


async def test_cancelled_transactions_leave_no_transaction_open(tmp_path: Path) -> None:
    db = await open_store(tmp_path / "c.db")
    try:
        async with db.write() as conn:
            await conn.execute("CREATE TABLE t (n INTEGER)")

        async def writer(n: int) -> None:
            async with db.write() as conn:
                await conn.execute("INSERT INTO t VALUES (?)", (n,))

        async def reader() -> None:
            async with db.read() as conn:
                await conn.execute("SELECT count(*) FROM t")

        for i in range(300):
            task = asyncio.create_task(writer(i) if i % 2 else reader())
            for _ in range(i % 7):  # cancel at a different point each time
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            # Whatever the cancelled call left behind, both connections still work.
            await writer(-1)
            await reader()
        assert not db._writer.in_transaction
    finally:
        await db.close()

"""The store: Cockpit's inventory and state in one SQLite file (aiosqlite).

No SQL lives outside this package. Open it with :func:`open_store`; read with
``async with store.read() as db`` and write with ``async with store.write() as db``,
then call the entity modules (:mod:`.servers`, :mod:`.sites`, …) with ``db``.
"""

from __future__ import annotations

from pathlib import Path

from cockpit.store.db import Database
from cockpit.store.errors import ConflictError, NotFoundError, StoreError

__all__ = ["ConflictError", "Database", "NotFoundError", "StoreError", "open_store"]


async def open_store(path: Path, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the store at ``path`` and bring its schema up to date."""
    db = await Database.open(path)
    if migrate:
        try:
            await db.migrate()
        except BaseException:
            await db.close()
            raise
    return db

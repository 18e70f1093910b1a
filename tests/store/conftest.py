"""Fixtures of the store tests: a fresh store, the sample inventory in it, a tmpfs."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from storekit import insert_inventory, sample_inventory

from cockpit.store import Database, open_store


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "cockpit" / "cockpit.db"


@pytest.fixture
async def store(store_path: Path) -> AsyncIterator[Database]:
    db = await open_store(store_path)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def filled(store: Database) -> Database:
    """The store with :func:`sample_inventory` in it."""
    await insert_inventory(store, sample_inventory())
    return store


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``tmpfs(size)`` mounts a fresh tmpfs of that size (``"2m"``) and returns its path.

    Skips the test when mounting is not permitted (not root, no CAP_SYS_ADMIN).
    """
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs{len(mounted)}"
        where.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=False)

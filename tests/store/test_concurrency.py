"""Several processes on one store: writers queue on BEGIN IMMEDIATE, none fails "locked"."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storekit import python_env

from cockpit.model import Client
from cockpit.store import clients as client_queries
from cockpit.store import open_store
from cockpit.store.migrate import LATEST

WRITERS = 8
TRANSACTIONS = 200

#: One writer process: waits for the start signal, then runs its write transactions
#: through Database.write(), each a read-modify-write of a shared counter plus two
#: rows of its own. Prints a JSON report.
WRITER = r"""
import asyncio, json, sys, time
from pathlib import Path
from cockpit.model import Client
from cockpit.store import StoreError, open_store
from cockpit.store import clients

async def main(path, me, count, go):
    started = time.monotonic()
    db = await open_store(Path(path))
    opened = time.monotonic() - started
    print("ready", flush=True)
    while not Path(go).exists():
        await asyncio.sleep(0.002)
    errors = []
    start = time.monotonic()
    try:
        for n in range(count):
            try:
                async with db.write() as conn:
                    counter = await clients.get(conn, "counter")
                    quotas = dict(counter.quotas)
                    quotas["sites"] += 1
                    await clients.update_many(conn, [Client("counter", quotas=quotas)])
                    await clients.insert_many(
                        conn, [Client(f"w{me}-{n}-a"), Client(f"w{me}-{n}-b")]
                    )
            except StoreError as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        await db.close()
    print(json.dumps({"errors": errors, "seconds": time.monotonic() - start, "open": opened}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
"""

#: A reader process: until told to stop, reads through Database.read() and checks that
#: it never sees half a transaction (the writers' rows come in pairs).
READER = r"""
import asyncio, json, sys
from pathlib import Path
from cockpit.store import open_store

async def main(path, stop):
    db = await open_store(Path(path))
    reads, odd = 0, 0
    print("ready", flush=True)
    try:
        while not Path(stop).exists():
            async with db.read() as conn:
                async with conn.execute(
                    "SELECT count(*) FROM clients WHERE name LIKE 'w%'"
                ) as cursor:
                    (rows,) = await cursor.fetchone()
                async with conn.execute(
                    "SELECT json_extract(quotas, '$.sites') FROM clients WHERE name = 'counter'"
                ) as cursor:
                    (counter,) = await cursor.fetchone()
            reads += 1
            if rows != 2 * counter:
                odd += 1
            await asyncio.sleep(0.001)
    finally:
        await db.close()
    print(json.dumps({"reads": reads, "inconsistent": odd}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=python_env(),
    )


def wait_ready(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.wait(10)
            pytest.fail(f"a child did not start: {line}{proc.stderr.read() if proc.stderr else ''}")


def report(proc: subprocess.Popen[str], timeout: float) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return dict(json.loads(out.strip().splitlines()[-1]))


async def test_eight_writer_processes_never_see_database_is_locked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shared" / "cockpit.db"
    db = await open_store(path)
    async with db.write() as conn:
        await client_queries.insert_many(conn, [Client("counter", quotas={"sites": 0})])
    await db.close()

    go, stop = tmp_path / "go", tmp_path / "stop"
    reader = spawn(READER, str(path), str(stop))
    writers = [
        spawn(WRITER, str(path), str(me), str(TRANSACTIONS), str(go)) for me in range(WRITERS)
    ]
    try:
        wait_ready([reader, *writers])
        started = time.monotonic()
        go.touch()
        reports = [report(proc, timeout=120) for proc in writers]
        elapsed = time.monotonic() - started
        stop.touch()
        seen = report(reader, timeout=30)
    finally:
        for proc in [reader, *writers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    errors = [e for r in reports for e in r["errors"]]  # type: ignore[attr-defined]
    assert errors == [], errors[:5]
    assert not any("locked" in e for e in errors)

    con = sqlite3.connect(path)
    try:
        names = {row[0] for row in con.execute("SELECT name FROM clients")}
        (counter,) = con.execute(
            "SELECT json_extract(quotas, '$.sites') FROM clients WHERE name = 'counter'"
        ).fetchone()
    finally:
        con.close()
    expected = {
        f"w{me}-{n}-{half}" for me in range(WRITERS) for n in range(TRANSACTIONS) for half in "ab"
    }
    assert names == expected | {"counter"}
    assert counter == WRITERS * TRANSACTIONS, "an update was lost: writes were not serialised"
    assert seen["inconsistent"] == 0, "a reader saw half a transaction"
    assert int(seen["reads"]) > 0  # type: ignore[call-overload]
    with capsys.disabled():
        per = sorted(float(r["seconds"]) for r in reports)  # type: ignore[arg-type]
        print(
            f"\n  {WRITERS} writers x {TRANSACTIONS} transactions: {elapsed:.1f} s in all, "
            f"{WRITERS * TRANSACTIONS / elapsed:.0f} commits/s, slowest writer {per[-1]:.1f} s; "
            f"reader made {seen['reads']} consistent reads"
        )


async def test_processes_creating_the_same_new_store_at_once(tmp_path: Path) -> None:
    """The first open of a store switches it to WAL and migrates it: racing openers all
    succeed, and the schema is built once."""
    path = tmp_path / "new" / "cockpit.db"
    go = tmp_path / "go"
    opener = r"""
import asyncio, json, sys, time
from pathlib import Path
from cockpit.model import Client
from cockpit.store import open_store
from cockpit.store import clients

async def main(path, me, go):
    print("ready", flush=True)
    while not Path(go).exists():
        await asyncio.sleep(0.001)
    db = await open_store(Path(path))
    try:
        for n in range(20):
            async with db.write() as conn:
                await clients.insert_many(conn, [Client(f"o{me}-{n}")])
    finally:
        await db.close()
    print(json.dumps({"ok": True}))

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
"""
    procs = [spawn(opener, str(path), str(me), str(go)) for me in range(WRITERS)]
    try:
        wait_ready(procs)
        go.touch()
        for proc in procs:
            assert report(proc, timeout=60) == {"ok": True}
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA user_version").fetchone() == (LATEST,)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert con.execute("SELECT count(*) FROM clients").fetchone() == (WRITERS * 20,)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()

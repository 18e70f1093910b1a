"""`cockpit status` as on-call runs it: a real process, Nagios exit codes, JSON that
validates, Prometheus that parses, a live --watch, and a start-up that loads neither
Textual nor asyncssh."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from statuskit import all_healthy, fleet_store

from cockpit.status import output
from cockpit.store import metrics

REPO = Path(__file__).resolve().parents[2]
COCKPIT = str(Path(sys.executable).parent / "cockpit")


def cockpit(store: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "COCKPIT_CONFIG"}
    return subprocess.run(
        [COCKPIT, "--store", str(store), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "XDG_CONFIG_HOME": str(store.parent / "xdg")},
        cwd=REPO,
    )


async def _store(tmp_path: Path, state: str) -> Path:
    db = await fleet_store(tmp_path / "c.db")
    now = time.time()
    try:
        await all_healthy(db, at=now)
        async with db.write() as conn:
            if state == "warning":
                await metrics.record_server(
                    conn,
                    "web1",
                    at=now,
                    reachable=True,
                    data={**(await _data(conn, "web1")), "pending_reboot": True},
                )
            elif state == "critical":
                await metrics.record_server(conn, "web2", at=now, reachable=False, error="refused")
            elif state == "unknown":
                await metrics.record_server(conn, "web2", at=now - 7200, reachable=True, data={})
    finally:
        await db.close()
    return tmp_path / "c.db"


async def _data(conn: object, name: str) -> dict[str, object]:
    rows = await metrics.servers_now(conn)  # type: ignore[arg-type]
    return dict(next(r for r in rows if r.name == name).data)


@pytest.mark.parametrize(
    ("state", "code"), [("ok", 0), ("warning", 1), ("critical", 2), ("unknown", 3)]
)
async def test_exit_codes_are_nagios_ones(tmp_path: Path, state: str, code: int) -> None:
    store = await _store(tmp_path, state)
    done = await asyncio.to_thread(cockpit, store, "status")
    assert done.returncode == code, done.stdout + done.stderr
    assert done.stdout.startswith(f"COCKPIT {state.upper()} - ")


async def test_json_and_prometheus_from_the_command(tmp_path: Path) -> None:
    store = await _store(tmp_path, "critical")
    as_json = await asyncio.to_thread(cockpit, store, "status", "--json")
    assert as_json.returncode == 2
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, output.schema(), format_checker=jsonschema.FormatChecker())
    assert [p["check"] for p in document["problems"]] == ["server.unreachable"]
    prom = await asyncio.to_thread(cockpit, store, "status", "--prometheus")
    assert prom.returncode == 2
    families = {f.name: f for f in text_string_to_metric_families(prom.stdout)}
    assert families["cockpit_status"].samples[0].value == 2


async def test_since_decides_which_failed_tasks_count(tmp_path: Path) -> None:
    store = await _store(tmp_path, "ok")
    import sqlite3

    con = sqlite3.connect(store)
    con.execute("INSERT INTO batches (label, queued_by, created_at) VALUES ('t', 't', 0)")
    con.execute(
        "INSERT INTO tasks (kind, target_kind, target_key, server, state, idempotent,"
        " created_at, finished_at, result) VALUES ('site.backup', 'site', 's1.web1.example',"
        " 'web1', 'failed', 1, ?, ?, 'disk full')",
        (time.time() - 7200, time.time() - 7000),
    )
    con.commit()
    con.close()
    recent = await asyncio.to_thread(cockpit, store, "status", "--since", "1h")
    assert recent.returncode == 0, recent.stdout
    day = await asyncio.to_thread(cockpit, store, "status", "--since", "1d")
    assert day.returncode == 1 and "site.backup on site:s1.web1.example ended failed" in day.stdout
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(time.time() - 3 * 3600))
    assert (await asyncio.to_thread(cockpit, store, "status", "--since", stamp)).returncode == 1


@pytest.mark.parametrize(
    "args", [["--bogus"], ["--since", "last tuesday"], ["--json", "--prometheus"]]
)
async def test_bad_input_is_unknown(tmp_path: Path, args: list[str]) -> None:
    store = await _store(tmp_path, "ok")
    done = await asyncio.to_thread(cockpit, store, "status", *args)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr


def test_startup_loads_neither_textual_nor_asyncssh(tmp_path: Path) -> None:
    store = tmp_path / "c.db"
    probe = (
        "import sys\n"
        "from cockpit.cli import main\n"
        "try:\n"
        f"    main(['--store', {str(store)!r}, 'status'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('LOADED', sorted(m for m in ('textual', 'asyncssh') if m in sys.modules), code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert "LOADED [] 3" in done.stdout, done.stdout + done.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "cockpit.status.evaluate" in imported
    assert not {m for m in imported if m.startswith(("textual", "asyncssh"))}


async def test_watch_redraws_until_interrupted(tmp_path: Path) -> None:
    store = await _store(tmp_path, "warning")
    proc = subprocess.Popen(
        [COCKPIT, "--store", str(store), "status", "--watch", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )
    try:
        await asyncio.sleep(3.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert out.count("COCKPIT WARNING - ") >= 2
    assert "\x1b" not in out  # a pipe gets plain blocks, no cursor movement


def _watch_output(store: Path, *args: str, seconds: float = 3.0) -> tuple[int, str, str]:
    proc = subprocess.Popen(
        [COCKPIT, "--store", str(store), "status", "--watch", "0.5", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "XDG_CONFIG_HOME": str(store.parent / "xdg")},
    )
    try:
        time.sleep(seconds)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


async def test_watch_json_is_one_document_a_line(tmp_path: Path) -> None:
    store = await _store(tmp_path, "warning")
    code, out, err = await asyncio.to_thread(_watch_output, store, "--json")
    assert code == 1, err
    lines = out.splitlines()
    assert len(lines) >= 2
    for line in lines:  # no header line: every line is a whole document
        document = json.loads(line)
        jsonschema.validate(document, output.schema(), format_checker=jsonschema.FormatChecker())
        assert document["state"] == "WARNING"


async def test_watch_prometheus_rounds_each_parse_alone(tmp_path: Path) -> None:
    store = await _store(tmp_path, "critical")
    code, out, err = await asyncio.to_thread(_watch_output, store, "--prometheus")
    assert code == 2, err
    rounds = [r for r in out.split("\n\n") if r.strip()]
    assert len(rounds) >= 2
    for text in rounds:
        families = {f.name: f for f in text_string_to_metric_families(text + "\n")}
        assert families["cockpit_status"].samples[0].value == 2


async def test_a_store_that_cannot_be_read_is_unknown(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database, " * 512)
    done = await asyncio.to_thread(cockpit, garbage, "status")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "cannot be used" in done.stderr and "Traceback" not in done.stderr
    assert garbage.read_bytes() == b"not a database, " * 512  # nothing stored is lost


async def test_refresh_collects_first(tmp_path: Path) -> None:
    """A new store's only server is this machine (local transport): --refresh reads it."""
    store = tmp_path / "fresh.db"
    before = await asyncio.to_thread(cockpit, store, "status", "--json")
    assert before.returncode == 3
    assert [p["check"] for p in json.loads(before.stdout)["problems"]] == ["server.stale"]
    after = await asyncio.to_thread(cockpit, store, "status", "--json", "--refresh")
    document = json.loads(after.stdout)
    jsonschema.validate(document, output.schema(), format_checker=jsonschema.FormatChecker())
    [server] = document["servers"]
    assert server["name"] == "localhost" and server["reachable"] is True
    assert server["collected_at"] is not None and server["cpus"] == os.cpu_count()
    assert "server.stale" not in {p["check"] for p in document["problems"]}
    assert after.returncode == document["exit_code"]
    assert after.stderr.startswith("collected 1 servers"), after.stderr  # in every format


async def test_a_refresh_that_times_out_is_unknown_not_ok(tmp_path: Path) -> None:
    """A good collection is on record, then the server stops answering: a listener that
    accepts and never speaks. --refresh must not present the old statistics as OK."""
    silent: list[asyncio.StreamWriter] = []

    async def accept_and_hang(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        silent.append(writer)

    listener = await asyncio.start_server(accept_and_hang, "127.0.0.61", 0)
    port = listener.sockets[0].getsockname()[1]
    db = await fleet_store(tmp_path / "c.db", servers=1)
    try:
        await all_healthy(db, at=time.time())
    finally:
        await db.close()
    import sqlite3

    con = sqlite3.connect(tmp_path / "c.db")
    con.execute("UPDATE servers SET address = '127.0.0.61', port = ? WHERE name = 'web1'", (port,))
    con.commit()
    con.close()
    store = tmp_path / "c.db"
    try:
        assert (await asyncio.to_thread(cockpit, store, "status")).returncode == 0
        started = time.monotonic()
        done = await asyncio.to_thread(cockpit, store, "status", "--refresh", "--timeout", "3")
        took = time.monotonic() - started
        as_json = await asyncio.to_thread(
            cockpit, store, "status", "--json", "--refresh", "--timeout", "3"
        )
    finally:
        listener.close()
        for writer in silent:
            writer.close()
        await listener.wait_closed()
    assert silent, "the refresh never connected to the listener"
    assert took < 30
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("COCKPIT UNKNOWN - "), done.stdout
    assert "server.timeout" in done.stdout and "no answer within 3 s" in done.stdout
    assert "timed out on 1: web1" in done.stderr
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, output.schema(), format_checker=jsonschema.FormatChecker())
    [problem] = [p for p in document["problems"] if p["check"] == "server.timeout"]
    assert problem["state"] == "UNKNOWN" and problem["subject"] == "web1"
    assert "the statistics shown are from" in problem["reason"]
    assert as_json.returncode == document["exit_code"] == 3


@pytest.mark.parametrize(
    ("name", "cause"), [("bad name!", "whitespace"), ("-x.example", "site: "), ("", "site: ")]
)
async def test_quota_set_refuses_a_bad_site_name_with_a_usage_error(
    tmp_path: Path, name: str, cause: str
) -> None:
    store = await _store(tmp_path, "ok")
    done = await asyncio.to_thread(cockpit, store, "quota", "set", "--disk-mb", "5", "--", name)
    assert done.returncode == 2, done.stdout + done.stderr  # bad input, as docs/cli.md says
    assert "Traceback" not in done.stderr
    assert "Invalid value for SITE" in done.stderr and cause in done.stderr, done.stderr
    good = await asyncio.to_thread(
        cockpit, store, "quota", "set", "s0.web1.example", "--disk-mb", "5"
    )
    assert good.returncode == 0 and "quota of s0.web1.example: set" in good.stdout
    listed = await asyncio.to_thread(cockpit, store, "quota", "list")
    assert listed.stdout.split()[:2] == ["s0.web1.example", "disk_mb=5"]

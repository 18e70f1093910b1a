"""`cockpit task|worker|schedule` as a user runs them: real processes, a detached worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from enginekit import local_config, python_env

from cockpit.engine import Engine
from cockpit.engine.daemon import log_path
from cockpit.store import open_store

CLI = "from cockpit.cli import main; main()"


class Cli:
    def __init__(self, tmp: Path) -> None:
        self.store = tmp / "data" / "cockpit.db"
        self.env = python_env()
        self.env["XDG_DATA_HOME"] = str(tmp / "xdg-data")
        self.env["XDG_CONFIG_HOME"] = str(tmp / "xdg-config")
        self.env.pop("COCKPIT_CONFIG", None)

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", CLI, "--store", str(self.store), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(tmp_path)
    try:
        yield runner
    finally:
        runner("worker", "stop", "--timeout", "30")


def test_run_wait_starts_a_detached_worker_and_reports(cli: Cli) -> None:
    kinds = cli("task", "kinds")
    assert kinds.returncode == 0, kinds.stderr
    assert "server.ping\tserver\tidempotent" in kinds.stdout
    assert "server.verify\tserver\tidempotent" in kinds.stdout
    assert "store.prune\tcontrol\tidempotent" in kinds.stdout

    done = cli("task", "run", "server.ping", "localhost", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "batch 1: queued 1 server.ping (task 1)" in done.stdout
    assert "\tsucceeded\tserver.ping\tserver:localhost\t1\t" in done.stdout

    status = cli("worker", "status")
    assert status.returncode == 0 and "pid" in status.stdout
    pid = int(status.stdout.split("(pid ")[1].split(")")[0])
    assert os.getsid(pid) == pid, "the worker runs in its own session (setsid)"

    log = cli("task", "log", "1")
    assert log.returncode == 0
    assert os.uname().sysname in log.stdout  # uname -a
    assert "# step 1/1 probe: succeeded in" in log.stdout
    follow = cli("task", "log", "1", "--follow")
    assert follow.returncode == 0 and follow.stdout == log.stdout

    show = cli("task", "show", "1")
    assert "state:      succeeded" in show.stdout and "#1 probe: succeeded" in show.stdout
    listed = cli("task", "list", "--state", "succeeded")
    assert listed.stdout.startswith("1\tsucceeded\tserver.ping")

    retry = cli("task", "retry", "1")
    assert retry.returncode == 0 and "task 2: queued (retry of 1)" in retry.stdout
    assert cli("task", "cancel", "1").returncode == 1  # already ended

    stop = cli("worker", "stop")
    assert stop.returncode == 0 and "worker stopped" in stop.stdout
    assert cli("worker", "status").returncode == 1
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists()


def test_bad_input_exits_2(cli: Cli) -> None:
    assert cli("task", "run", "server.ping", "nosuch", "--no-start").returncode == 2
    assert cli("task", "run", "no.such.kind", "localhost", "--no-start").returncode == 2
    bad_arg = cli("task", "run", "server.ping", "localhost", "--arg", "password=x", "--no-start")
    assert bad_arg.returncode == 2 and "secret" in bad_arg.stderr
    assert cli("task", "show", "42").returncode == 2
    assert cli("task", "cancel", "42").returncode == 2
    assert cli("task", "log", "42").returncode == 2


def test_cancel_a_queued_task_without_a_worker(cli: Cli) -> None:
    queued = cli("task", "run", "server.ping", "localhost", "--no-start")
    assert queued.returncode == 0
    cancelled = cli("task", "cancel", "1")
    assert cancelled.returncode == 0 and "\tcancelled\t" in cancelled.stdout
    assert cli("task", "list").stdout.startswith("1\tcancelled")


def test_schedules_are_managed_from_the_cli(cli: Cli) -> None:
    listed = cli("schedule", "list")
    assert listed.returncode == 0
    # (other default schedules may be listed too, in name order)
    lines = listed.stdout.splitlines()
    assert any(
        line.startswith("store-retention\t17 3 * * *\tstore.prune\tstore\tactive") for line in lines
    ), listed.stdout
    added = cli("schedule", "add", "hourly-ping", "0 * * * *", "server.ping", "*")
    assert added.returncode == 0, added.stderr
    assert "schedule hourly-ping: next run" in added.stdout
    assert cli("schedule", "add", "bad", "61 * * * *", "server.ping", "*").returncode == 2
    assert cli("schedule", "add", "bad", "0 * * * *", "server.ping", "nosuch").returncode == 2
    assert cli("schedule", "add", "bad", "0 * * * *", "server.ping", "client=x").returncode == 2
    assert cli("schedule", "add", "hourly-ping", "0 * * * *", "server.ping", "*").returncode == 2
    assert cli("schedule", "pause", "hourly-ping").returncode == 0
    assert "hourly-ping\t0 * * * *\tserver.ping\t*\tpaused" in cli("schedule", "list").stdout
    assert cli("schedule", "resume", "hourly-ping").returncode == 0
    assert cli("schedule", "remove", "hourly-ping").returncode == 0
    assert "hourly-ping" not in cli("schedule", "list").stdout
    assert cli("schedule", "remove", "hourly-ping").returncode == 2
    # args are read by the kind's declared params, as `task run --arg` reads them
    deep = cli("schedule", "add", "deep", "7 * * * *", "stats.sites", "*", "--arg", "deep=yes")
    assert deep.returncode == 0, deep.stderr
    assert "deep\t7 * * * *\tstats.sites\t*\tactive" in cli("schedule", "list").stdout
    with sqlite3.connect(cli.store) as con:
        (stored,) = con.execute("SELECT args FROM schedules WHERE name = 'deep'").fetchone()
    assert json.loads(stored) == {"deep": True}  # a boolean, not the text "yes"
    unknown = cli("schedule", "add", "x", "0 * * * *", "nosuch.kind", "*", "--arg", "a=1")
    assert unknown.returncode == 2 and "nosuch.kind" in unknown.stderr, unknown


def test_worker_start_status_stop(cli: Cli) -> None:
    assert cli("worker", "status").returncode == 1
    none = cli("worker", "stop")
    assert none.returncode == 0 and "no worker was running" in none.stdout
    started = cli("worker", "start")
    assert started.returncode == 0, started.stderr
    again = cli("worker", "start")
    assert again.returncode == 0 and again.stdout == started.stdout  # the same worker
    status = cli("worker", "status")
    assert status.returncode == 0 and status.stdout.startswith("worker ")
    stopped = cli("worker", "stop")
    assert stopped.returncode == 0 and "worker stopped" in stopped.stdout
    assert cli("worker", "status").returncode == 1


async def test_start_worker_from_threads_starts_one_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the TUI does: Engine.start_worker through asyncio.to_thread, maybe several
    times at once. One worker starts; a call while it runs starts nothing."""
    for name, value in python_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("COCKPIT_CONFIG", raising=False)
    db = await open_store(tmp_path / "data" / "cockpit.db")
    config = local_config(db.path)
    engine = Engine(db, config)
    try:
        statuses = await asyncio.gather(*(asyncio.to_thread(engine.start_worker) for _ in range(4)))
        assert all(s.running for s in statuses)
        [pid] = {s.pid for s in statuses}
        assert pid is not None and os.getsid(pid) == pid
        log = log_path(config)
        deadline = time.monotonic() + 20
        while " started on " not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        again = await asyncio.to_thread(engine.start_worker)
        assert again.pid == pid and again.worker_id == statuses[0].worker_id
        assert engine.worker_status().pid == pid
    finally:
        stopped = await asyncio.to_thread(engine.stop_worker)
        await db.close()
    assert stopped
    text = log.read_text()
    assert "a worker already runs" not in text, "more than one worker was spawned"
    assert text.count(" started on ") == 1, "one worker started, and only once"


def test_exit_codes_of_run_wait_retry_and_follow(cli: Cli, tmp_path: Path) -> None:
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(
        "version: 1\nservers:\n- {name: nowhere, address: 127.0.0.1, port: 1, user: root}\n"
    )
    applied = cli("inventory", "apply", str(inventory))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    failed = cli("task", "run", "server.verify", "nowhere", "--wait")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "\tfailed\tserver.verify\tserver:nowhere\t1\t" in failed.stdout
    assert "unreachable" in failed.stdout
    assert cli("worker", "stop").returncode == 0
    queued = cli("task", "run", "server.ping", "localhost", "--no-start")
    task_id = queued.stdout.split("(task ")[1].split(")")[0]
    not_ended = cli("task", "retry", task_id)
    assert not_ended.returncode == 1 and "can be retried once it ends" in not_ended.stderr
    assert cli("task", "cancel", task_id).returncode == 0
    follow = cli("task", "log", task_id, "--follow")
    assert follow.returncode == 4, "ended without success or failure: 4"


def test_a_worker_outlives_the_terminal_that_started_it(cli: Cli) -> None:
    """Closing a terminal (or losing the SSH session) kills the processes of its session:
    here its whole process group gets SIGKILL once the command has returned."""
    shell = subprocess.Popen(
        [sys.executable, "-c", CLI, "--store", str(cli.store), "task", "run", "server.ping",
         "localhost"],
        env=cli.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    out, err = shell.communicate(timeout=120)
    assert shell.returncode == 0, out + err
    status = cli("worker", "status")
    assert status.returncode == 0
    pid = int(status.stdout.split("(pid ")[1].split(")")[0])
    with contextlib.suppress(ProcessLookupError):  # (nothing left in it: detached)
        os.killpg(shell.pid, signal.SIGKILL)  # the session's process group
    time.sleep(0.5)
    after = cli("worker", "status")
    assert after.returncode == 0 and f"(pid {pid})" in after.stdout
    done = cli("task", "run", "server.ping", "localhost", "--wait")
    assert done.returncode == 0, done.stdout + done.stderr

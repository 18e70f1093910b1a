"""SVG snapshots of the log view (pytest-textual-snapshot) at 80x24 and 160x50.

The logs are written through the engine's log writer with fixed times (shown in UTC), so
the pictures do not move. Review a changed snapshot as you review code:
``pytest tests/tui/test_log_snapshots.py --snapshot-update`` rewrites them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_log import seed_task
from textual.pilot import Pilot

from cockpit.app import make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.model import Server
from cockpit.screens.log import LogScreen

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]

SnapCompare = Callable[..., bool]

LOG: list[tuple[str, str]] = [
    ("engine", "starting server.ping on server:web1, attempt 1 (worker web-ops:4242:a1b2c3)"),
    ("engine", "step 1/2 probe: started"),
    ("stdout", "Linux web1 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64 GNU/Linux"),
    ("stdout", "0.42 0.35 0.30 1/213 4242"),
    ("engine", "step 1/2 probe: succeeded in 0.21 s"),
    ("engine", "step 2/2 reload: started"),
    ("stdout", "Reloading nginx configuration: nginx."),
    (
        "stderr",
        'nginx: [warn] conflicting server name "www.example.com" on 0.0.0.0:80, ignored',
    ),
    ("stdout", "remote says \x1b[31mred\x1b[0m and [bold]not markup[/bold] \x1b]0;title\x07 here"),
    *[
        ("stdout", f'127.0.0.1 - - "GET /wp-login.php?attempt={n} HTTP/1.1" 200 {512 + n}')
        for n in range(1, 25)
    ],
    ("stderr", "error: upstream timed out (110: Connection timed out) while reading headers"),
    *[("stdout", f"retrying upstream {n}/3") for n in range(1, 4)],
    ("stderr", "error: upstream timed out again; giving up"),
    ("engine", "step 2/2 reload: failed after 3.02 s: the command exited with 1"),
    ("engine", "failed at step 2/2 reload: the command exited with 1"),
]


@pytest.fixture(autouse=True)
def fixed_version_and_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.fixture
def log_cockpit(store_path: Path) -> Iterator[Cockpit]:
    """A store with one failed task (id 1) and a batch of two succeeded tasks (id 2)."""

    async def build() -> Cockpit:
        cockpit = await Cockpit.open(Config(store=store_path))
        for name in ("web1", "web2", "db1"):
            await cockpit.add_server(Server(name=name, address="10.0.0.1", environment="prod"))
        await seed_task(
            cockpit, LOG, target="web1", end="failed", result="step 2/2 reload: exited with 1"
        )
        await seed_task(
            cockpit,
            [
                ("engine", "step 1/1 probe: started"),
                *LOG[2:4],
                ("stderr", "load is high on {task}"),
            ],
            batch_targets=["web2", "db1"],
            result="load 0.42 0.35 0.30",
            t0=1_714_532_460.0,
        )
        return cockpit

    cockpit = asyncio.run(build())
    try:
        yield cockpit
    finally:
        asyncio.run(cockpit.close())


def open_log(*pressed: str, argument: str = "1", max_lines: int | None = None) -> Any:
    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        await pilot.pause()
        if max_lines is None:
            await pilot.press("colon", *f"log {argument}", "enter")
        else:
            await app.push_screen(LogScreen.for_task(int(argument), max_lines=max_lines))
        deadline = time.monotonic() + 10
        while not (isinstance(app.screen, LogScreen) and app.screen.opened):
            assert time.monotonic() < deadline, "the log view did not open"
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        for key in pressed:
            await pilot.press(key)
        await pilot.pause(0.2)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_a_failed_task_with_times_and_a_search(
    snap_compare: SnapCompare, log_cockpit: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(log_cockpit, start_worker=False)
    keys = ("t", "slash", *"error", "enter", "n")
    assert snap_compare(app, terminal_size=size, run_before=open_log(*keys))


@pytest.mark.parametrize("size", SIZES)
def test_a_batch_merged(
    snap_compare: SnapCompare, log_cockpit: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(log_cockpit, start_worker=False)
    assert snap_compare(app, terminal_size=size, run_before=open_log(argument="batch 2"))


def test_filtered_with_context_and_wrapped(snap_compare: SnapCompare, log_cockpit: Cockpit) -> None:
    app = make_app(log_cockpit, start_worker=False)
    keys = ("ampersand", *"~error|warn", "enter", "plus", "w", "g")
    assert snap_compare(app, run_before=open_log(*keys))


def test_lines_dropped_from_a_small_window_without_colour(
    snap_compare: SnapCompare, log_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(log_cockpit, start_worker=False)
    assert snap_compare(app, run_before=open_log("g", max_lines=20))

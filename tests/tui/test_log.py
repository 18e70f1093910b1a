"""The live log view driven like a user drives it: a real store, real log lines (written by
a real worker running a real task, or through the engine's log writer), keys in, screen
and state out."""

from __future__ import annotations

import asyncio
import base64
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.pilot import Pilot
from tuikit import screen_text

from cockpit.app import CockpitApp, known_binding_ids, make_app
from cockpit.core import Cockpit
from cockpit.engine import (
    Batch,
    Engine,
    LogLine,
    LogStream,
    Registry,
    Step,
    TargetKind,
    TaskContext,
    TaskKind,
)
from cockpit.engine.logs import LogWriter
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Server, Transport
from cockpit.screens.help import HelpScreen
from cockpit.screens.log import LogScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.store import tasks as task_queries
from cockpit.textsafe import sanitize_line
from cockpit.widgets.log_view import Grep, LogView, safe_text

SIZE = (80, 24)
T0 = 1_714_532_400.0  # 2024-05-01 03:00:00 UTC

# -- a real task kind that talks until told to stop ------------------------------------------

_CHATTER = r"""
stop=$1 i=0
while [ ! -e "$stop" ]; do
    i=$((i + 1))
    echo "tick $i"
    if [ $((i % 5)) -eq 0 ]; then echo "warning $i: disk is slow" >&2; fi
    sleep 0.02
done
echo "stopped after $i ticks"
"""


async def _chatter(ctx: TaskContext) -> None:
    await ctx.sh(_CHATTER, [str(ctx.args["stop"])])
    ctx.summary("chatted")


CHATTER = TaskKind(
    name="test.chatter",
    target=TargetKind.SERVER,
    idempotent=True,
    description="print a line every 20 ms (a warning on stderr every fifth) until args.stop exists",
    steps=(Step("chatter", _chatter),),
)


def registry() -> Registry:
    reg = Registry.default()
    reg.add(CHATTER)
    return reg


async def queue_chatter(cockpit: Cockpit, targets: Sequence[str], stop: Path) -> Batch:
    """Queue the chatter kind (through an engine that knows it) on ``targets``."""
    engine = Engine(cockpit.db, cockpit.config, registry=registry())
    return await engine.queue(CHATTER.name, targets, {"stop": str(stop)})


@asynccontextmanager
async def running_worker(cockpit: Cockpit) -> AsyncIterator[Worker]:
    """A real worker (in this loop) with the chatter kind, claiming at once."""
    worker = Worker(
        cockpit.db,
        cockpit.config,
        registry=registry(),
        options=WorkerOptions(poll=0.05, cancel_poll=0.1, maintenance_every=5.0, schedules=False),
        worker_id="test-log-worker",
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def add_local_server(cockpit: Cockpit, name: str, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    await cockpit.add_server(
        Server(
            name=name, address="127.0.0.1", transport=Transport.LOCAL, root=str(root), user="root"
        )
    )


# -- tasks with known lines, through the engine's log writer ---------------------------------


async def seed_task(
    cockpit: Cockpit,
    lines: Sequence[tuple[str, str]],
    *,
    target: str = "localhost",
    end: str | None = "succeeded",
    result: str = "answered",
    t0: float = T0,
    step: float = 0.25,
    batch_targets: Sequence[str] | None = None,
) -> list[int]:
    """Queue ``server.ping`` (on ``target``, or on each of ``batch_targets`` as one batch),
    claim it as a worker would, write ``lines`` (stream, text) through the engine's log
    writer, and end it in state ``end`` (None: leave it running). Returns the task ids."""
    targets = list(batch_targets or [target])
    batch = await cockpit.tasks.queue("server.ping", targets)
    writer = LogWriter(cockpit.db)
    async with cockpit.db.write() as conn:
        claimed = await task_queries.claim(
            conn, "seed-worker", lease=3600, per_server=100, limit=len(targets)
        )
    assert sorted(int(r["id"]) for r in claimed) == sorted(batch.task_ids)
    for n, task_id in enumerate(sorted(batch.task_ids)):
        for seq, (stream, text) in enumerate(lines, 1):
            shown = text.format(task=task_id) if "{task}" in text else text
            writer.add((task_id, seq, t0 + n * step / 2 + seq * step, stream, shown))
    await writer.flush()
    if end is not None:
        async with cockpit.db.write() as conn:
            for task_id in batch.task_ids:
                await task_queries.finish(conn, task_id, "seed-worker", 1, end, result)
    return sorted(batch.task_ids)


def numbered(count: int, *, every_stderr: int = 0, heading_at: int = 0) -> list[tuple[str, str]]:
    out = []
    for i in range(1, count + 1):
        if heading_at and i == heading_at:
            out.append(("engine", "step 1/2 probe: started"))
        elif every_stderr and i % every_stderr == 0:
            out.append(("stderr", f"error {i}: something failed"))
        else:
            out.append(("stdout", f"line {i} of the log"))
    return out


# -- driving the app ---------------------------------------------------------------------------


def app_for(cockpit: Cockpit, **kwargs: Any) -> CockpitApp:
    return make_app(cockpit, start_worker=False, **kwargs)


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], what: str, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; the screen:\n{screen_text(pilot.app)}"
            )
        await pilot.pause(0.05)


async def open_log(pilot: Pilot[Any], argument: str) -> LogScreen:
    await pilot.press("colon", *argument and f"log {argument}", "enter")
    app = pilot.app
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, LogScreen) and app.screen.opened,
        f"the log view of {argument}",
    )
    screen = app.screen
    assert isinstance(screen, LogScreen)
    await settle_view(pilot, screen.log_view)
    return screen


async def settle_view(pilot: Pilot[Any], view: LogView) -> None:
    """Until the lines written to the view are drawn (nothing waits in its buffer)."""
    await wait_until(pilot, lambda: view.pending_count == 0, "the view to flush")
    await pilot.pause()


def view_of(app: App[Any]) -> LogView:
    return app.screen.query_one(LogView)


def rows_text(view: LogView) -> list[str]:
    """The rows the view draws now, as text."""
    height = view.scrollable_content_region.height
    return [view.render_line(y).text for y in range(height)]


# -- following a running task --------------------------------------------------------------


async def test_follows_a_running_task_pauses_and_resumes_at_the_bottom(
    fresh_cockpit: Cockpit, tmp_path: Path
) -> None:
    await add_local_server(fresh_cockpit, "box", tmp_path / "box")
    stop = tmp_path / "stop"
    batch = await queue_chatter(fresh_cockpit, ["box"], stop)
    [task_id] = batch.task_ids
    app = app_for(fresh_cockpit)
    async with running_worker(fresh_cockpit), app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await wait_until(pilot, lambda: view.line_count >= 40, "40 lines")
        assert view.following
        assert "● following" in screen_text(app)
        # Following: the newest line is on the last row, and more keep coming.
        await settle_view(pilot, view)
        assert view.is_vertical_scroll_end
        seen = view.line_count
        await wait_until(pilot, lambda: view.line_count >= seen + 20, "more lines")
        await settle_view(pilot, view)
        newest = view.shown_lines()[-1]
        assert newest in rows_text(view)[-1]
        text = screen_text(app)
        assert "task 1 test.chatter on server:box" in text
        assert "● running" in text
        # stderr lines are marked in the gutter (not only by colour)
        assert any(row.startswith("!warning ") for row in rows_text(view))

        # Pause: the view stays put while lines keep arriving.
        await pilot.press("f")
        assert not view.following
        top = rows_text(view)[0]
        scroll_y = view.scroll_y
        count = view.line_count
        await wait_until(pilot, lambda: view.line_count >= count + 25, "lines while paused")
        await settle_view(pilot, view)
        assert view.scroll_y == scroll_y
        assert rows_text(view)[0] == top
        assert view.new_while_paused >= 25
        assert "‖ paused +" in screen_text(app)

        # Scrolling up also pauses; G follows again, from the bottom.
        await pilot.press("f")
        assert view.following and view.is_vertical_scroll_end
        await pilot.press("k")
        assert not view.following
        await pilot.press("G")
        await settle_view(pilot, view)
        assert view.following and view.is_vertical_scroll_end

        # The top of the log: the engine's own lines and the step heading.
        await pilot.press("g")
        rows = rows_text(view)
        assert rows[0].startswith("›starting test.chatter on server:box")
        assert rows[1].startswith("▶step 1/1 chatter: started")

        # The task ends: the view says so and has every line the store has.
        stop.touch()
        await wait_until(pilot, lambda: not view.live, "the end of the task", timeout=20)
        await settle_view(pilot, view)
        stored = await fresh_cockpit.tasks.log(task_id, limit=100_000)
        assert view.line_count == len(stored)
        assert view.shown_lines() == [sanitize_line(line.text) for line in stored]
        await wait_until(pilot, lambda: "✓ succeeded" in screen_text(app), "the final state")
        assert "■ ended" in screen_text(app)


async def test_flushes_in_batches_not_per_line(fresh_cockpit: Cockpit) -> None:
    """Lines written one call at a time are drawn together, at most 50 ms later: one flush
    (one ``LogView.Changed``, one refresh), not one per line."""
    [task_id] = await seed_task(fresh_cockpit, [], end=None)
    changes: list[tuple[float, int]] = []
    seen: list[LogView.Changed] = []

    def hook(message: Any) -> None:  # (called again as a message bubbles up: count it once)
        if isinstance(message, LogView.Changed) and not any(m is message for m in seen):
            seen.append(message)
            changes.append((time.monotonic(), message.view.line_count))

    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await pilot.pause(0.2)
        changes.clear()
        seen.clear()
        started = time.monotonic()
        for seq in range(1, 501):
            view.write_lines([LogLine(task_id, seq, T0 + seq, LogStream.STDOUT, f"one {seq}")])
        assert view.pending_count == 500 and view.line_count == 0
        await wait_until(pilot, lambda: view.line_count == 500, "500 lines drawn")
        await pilot.pause(0.2)
        assert [count for _, count in changes] == [500]
        assert changes[0][0] - started < 0.5  # (50 ms, and a loaded machine)


# -- search, filter ----------------------------------------------------------------------------


async def test_search_highlights_and_n_N_move_between_matches(fresh_cockpit: Cockpit) -> None:
    [task_id] = await seed_task(fresh_cockpit, numbered(200, every_stderr=10))
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await pilot.press("g", "slash", *"ERROR 1", "enter")  # any case
        # error 10, 100 … 190: 11 matches
        assert view.match_count == 11
        assert view.current_match == 0
        assert not view.following
        assert "/ERROR 1 1/11" in screen_text(app)

        def current_row() -> str:
            for y in range(view.scrollable_content_region.height):
                strip = view.render_line(y)
                for segment in strip:
                    if segment.style and segment.style.underline and segment.style.reverse:
                        return strip.text
            return ""

        assert "error 10: something failed" in current_row()
        await pilot.press("n")
        assert view.current_match == 1
        assert "error 100: something failed" in current_row()
        await pilot.press("N", "N")
        assert view.current_match == 10  # round to the last
        assert "error 190: something failed" in current_row()
        await pilot.press("n")
        assert view.current_match == 0
        # every match on screen is highlighted (reverse), not only the current one
        await pilot.press("n", "n")  # error 110, 120: both on screen
        marked = [
            segment.text
            for y in range(view.scrollable_content_region.height)
            for segment in view.render_line(y)
            if segment.style and segment.style.reverse
        ]
        assert marked.count("error 1") >= 2
        # a regular expression; a broken one is flagged and the last good search stays
        await pilot.press("slash")
        await pilot.press(*["backspace"] * 7, *"~error 1[05]0")
        assert view.match_count == 2
        await pilot.press("backspace", "backspace", "backspace", "backspace")  # "~error 1["
        assert screen._bar("search").error is not None
        assert view.search_text == "~error 1[05]"  # the last one that compiled
        # esc in the bar clears the search
        await pilot.press("escape")
        assert view.search_text == "" and view.match_count == 0
        assert not view.check_action("next_match", ())  # n does nothing now


async def test_filter_keeps_matching_lines_inverts_and_keeps_context(
    fresh_cockpit: Cockpit,
) -> None:
    lines = numbered(120, every_stderr=10)
    [task_id] = await seed_task(fresh_cockpit, lines)
    texts = [text for _, text in lines]
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await pilot.press("ampersand", *"error", "enter")
        assert view.shown_lines() == [t for t in texts if "error" in t]
        assert "&error: 12" in screen_text(app)
        # two lines of context around each match (grep -C2)
        await pilot.press("plus", "plus")
        assert view.context == 2
        expected = []
        for i, text in enumerate(texts):
            near = any("error" in texts[j] for j in range(max(0, i - 2), min(len(texts), i + 3)))
            if near:
                expected.append(text)
        assert view.shown_lines() == expected
        # context lines are drawn dim; matching ones are not
        for y in range(view.scrollable_content_region.height):
            strip = view.render_line(y)
            body = [s for s in strip if s.text.strip() and s.style is not None]
            if not body:
                continue
            dim = any(s.style.dim for s in body if isinstance(s.style, Style))
            assert dim == ("error" not in strip.text), strip.text
        await pilot.press("minus", "minus")
        assert view.context == 0
        # inverted: everything but the errors
        await pilot.press("ampersand", "home", "exclamation_mark", "enter")
        assert view.filter_text == "!error"
        assert view.shown_lines() == [t for t in texts if "error" not in t]
        # nothing passes: the view says so
        await pilot.press("ampersand", *["backspace"] * 6, *"no such thing", "enter")
        assert view.shown_count == 0
        assert "no line passes the filter" in screen_text(app)
        # a broken regex is flagged, the last good filter stays
        await pilot.press("ampersand", "home", "~", "end", "(")
        assert screen._bar("filter").error is not None
        assert view.filter_text == "~no such thing"
        # esc clears the bar's filter; esc again goes back, to the overview it came from
        assert "overview › log" in screen_text(app).splitlines()[0]
        await pilot.press("escape")
        assert view.filter_text == "" and view.shown_count == 120
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_filter_applies_to_lines_that_arrive_later(fresh_cockpit: Cockpit) -> None:
    [task_id] = await seed_task(fresh_cockpit, numbered(30, every_stderr=10), end=None)
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        screen.apply_filter("error", context=1)
        assert view.shown_count == 8  # 9, 10, 11 · 19, 20, 21 · 29, 30 (the last line)
        writer = LogWriter(fresh_cockpit.db)
        for seq in range(31, 61):
            text = f"error {seq}: late" if seq % 10 == 0 else f"line {seq} of the log"
            writer.add((task_id, seq, T0 + seq, "stdout", text))
        await writer.flush()
        await wait_until(pilot, lambda: view.line_count == 60, "the late lines")
        await settle_view(pilot, view)
        want = [
            "error 40: late",
            "error 50: late",
            "error 60: late",
        ]
        shown = view.shown_lines()
        assert all(w in shown for w in want)
        assert "line 31 of the log" in shown  # after-context of error 30
        assert "line 39 of the log" in shown and "line 41 of the log" in shown
        assert "line 35 of the log" not in shown


# -- wrap, timestamps, sideways ------------------------------------------------------------------


async def test_wrap_and_timestamps(fresh_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    long = "BEGIN " + "x" * 150 + " END"
    lines = [("stdout", "short one"), ("stdout", long), ("stderr", "after the long one")]
    [task_id] = await seed_task(fresh_cockpit, lines)
    app = app_for(fresh_cockpit)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await open_log(pilot, str(task_id))
            view = screen.log_view
            rows = rows_text(view)
            assert rows[1].startswith(" BEGIN xxx") and "END" not in rows[1]
            # sideways (no wrap): l shows the end of the long line
            for _ in range(12):
                await pilot.press("l")
            assert "END" in rows_text(view)[1]
            await pilot.press("w")
            assert view.wrap and view.scroll_x == 0
            rows = rows_text(view)
            joined = "".join(r[1:].rstrip() for r in rows[1:4])
            assert joined == long.replace(" END", "") + " END" or long in joined
            assert rows[4].startswith("!after the long one")
            assert "wrap" in screen_text(app)
            # timestamps (local time: UTC here), each line's own
            await pilot.press("t")
            rows = rows_text(view)
            assert rows[0].startswith(" 03:00:00.250 short one")
            assert rows[1].startswith(" 03:00:00.500 BEGIN")
            # continuation rows are indented under the text
            assert rows[2].startswith(" " * 14 + "x")
            await pilot.press("w", "t")
            assert rows_text(view)[0].startswith(" short one")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# -- saving, copying -------------------------------------------------------------------------------


async def test_save_writes_the_whole_log_from_the_store(
    fresh_cockpit: Cockpit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    lines = numbered(300, every_stderr=25)
    lines.append(("stdout", "an escape \x1b]0;owned\x07 and [bold]markup[/bold]"))
    [task_id] = await seed_task(fresh_cockpit, lines)
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        # a view that keeps only the last 50 lines: the save still has all 301
        await pilot.pause()
        screen = LogScreen.for_task(task_id, max_lines=50)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.opened, "the view")
        await settle_view(pilot, screen.log_view)
        assert screen.log_view.line_count == 50
        await pilot.press("s")
        bar = screen._bar("save")
        assert bar.input.value == f"task-{task_id}.log"
        await pilot.press("enter")
        target = tmp_path / f"task-{task_id}.log"
        await wait_until(pilot, target.exists, "the saved file")
        want = [sanitize_line(text) for _, text in lines]
        assert target.read_text(encoding="utf-8").splitlines() == want
        assert "an escape  and [bold]markup[/bold]" in want[-1]  # the OSC is gone
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left
        # the file is renamed into place before the view says so
        await wait_until(
            pilot,
            lambda: any(f"saved 301 lines to {target}" in n.message for n in app._notifications),
            "the saved notice",
        )

        # with a filter and its context; an existing file needs a second enter
        screen.apply_filter("error", context=1)
        await pilot.press("s")
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "exists: enter again replaces it" in screen_text(app), "the warning"
        )
        assert len(target.read_text().splitlines()) == 301
        before = target.stat().st_ino
        await pilot.press("enter")
        await wait_until(pilot, lambda: target.stat().st_ino != before, "the file replaced")
        expected = [
            text
            for i, text in enumerate(want)
            if any("error" in want[j] for j in range(max(0, i - 1), min(len(want), i + 2)))
        ]
        assert expected[-1] == want[-1]  # the line after error 300
        assert target.read_text().splitlines() == expected

        # a directory that does not exist is refused, naming it
        await pilot.press("s", *["backspace"] * 20, *"nowhere/x.log", "enter")
        await wait_until(pilot, lambda: screen._bar("save").error is not None, "the refusal")
        assert screen._bar("save").error == f"no directory {tmp_path / 'nowhere'}"
        await pilot.press("escape")
        assert not screen._bar("save").is_open


async def test_copy_puts_the_lines_on_screen_on_the_clipboard_with_osc52(
    fresh_cockpit: Cockpit,
) -> None:
    lines = numbered(40)
    lines[38] = ("stdout", "hostile \x1b]52;c;ZXZpbA==\x07 [red]x[/red]")
    [task_id] = await seed_task(fresh_cockpit, lines)
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        real_write = driver.write

        def recording(data: str) -> None:
            written.append(data)
            real_write(data)

        driver.write = recording  # type: ignore[method-assign]
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        on_screen = view.screen_lines()
        assert on_screen[-1] == "line 40 of the log"
        await pilot.press("y")
        expected = "\n".join(on_screen) + "\n"
        assert app.clipboard == expected
        assert "hostile  [red]x[/red]" in app.clipboard
        payload = base64.b64encode(expected.encode()).decode()
        osc = [w for w in written if w.startswith("\x1b]52;")]
        assert osc == [f"\x1b]52;c;{payload}\a"]
        # Y: every line shown (the filter applied)
        screen.apply_filter("~^line [0-9] ")
        await pilot.press("Y")
        assert app.clipboard == "".join(f"line {i} of the log\n" for i in range(1, 10))
        assert any("copied 9 lines shown" in n.message for n in app._notifications)


# -- bounded memory -------------------------------------------------------------------------------


async def test_lines_beyond_the_window_are_dropped_and_said_so(fresh_cockpit: Cockpit) -> None:
    [task_id] = await seed_task(fresh_cockpit, numbered(250), end=None)
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = LogScreen.for_task(task_id, max_lines=100)
        await app.push_screen(screen)
        await wait_until(pilot, lambda: screen.opened, "the view")
        view = screen.log_view
        await settle_view(pilot, view)
        # opened on the last 100 lines: the 150 before were never loaded
        assert view.line_count == 100 and view.dropped == 150
        assert view.shown_lines()[0] == "line 151 of the log"
        # more arrive while following: the oldest fall out
        writer = LogWriter(fresh_cockpit.db)
        for seq in range(251, 331):
            writer.add((task_id, seq, T0 + seq, "stdout", f"line {seq} of the log"))
        await writer.flush()
        await wait_until(pilot, lambda: view.received == 180, "80 more lines")
        await settle_view(pilot, view)
        assert view.line_count == 100 and view.dropped == 230
        assert view.shown_lines()[0] == "line 231 of the log"
        assert "230 dropped" in screen_text(app)
        await pilot.press("g")
        assert rows_text(view)[0].startswith(" ── 230 earlier lines dropped (this view keeps 100")
        assert rows_text(view)[1] == " line 231 of the log".ljust(len(rows_text(view)[1]))


def test_the_view_keeps_its_place_while_old_lines_fall_out() -> None:
    """Paused in the middle of a flood: the lines on screen stay on screen while they are in
    the window, and a flood far bigger than the window never grows it."""

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield LogView(max_lines=1000, id="log")

    async def run() -> None:
        app = Host()
        async with app.run_test(size=SIZE) as pilot:
            view = app.query_one(LogView)

            def write(start: int, count: int) -> None:
                view.write_lines(
                    [
                        LogLine(1, seq, T0 + seq, LogStream.STDOUT, f"flood {seq}")
                        for seq in range(start, start + count)
                    ]
                )

            write(1, 1000)
            await settle_view(pilot, view)
            for _ in range(5):
                await pilot.press("pageup")
            assert not view.following
            top = rows_text(view)[1]
            write(1001, 300)
            await settle_view(pilot, view)
            assert view.dropped == 300
            assert rows_text(view)[1] == top
            # a burst bigger than the window: only the last max_lines are ever kept
            write(1301, 25_000)
            await settle_view(pilot, view)
            assert view.line_count == 1000
            assert view.dropped == 26_300 - 1000
            assert view.shown_lines()[-1] == "flood 26300"

    asyncio.run(run())


# -- remote text is shown as text ---------------------------------------------------------------


HOSTILE = [
    ("stdout", "clear \x1b[2J\x1b[H screen"),
    ("stdout", "title \x1b]0;pwned\x07 set"),
    ("stdout", "[bold red]not markup[/] and [link=http://x]no link[/link]"),
    ("stderr", "c1 \x9b31m csi and \x9dosc\x9c"),
    ("stdout", "bidi \u202etxet desrever\u202c end"),
    ("stdout", "tab\there and cr\rhere"),
    ("stdout", "bell \x07 nul \x00 del \x7f"),
]


async def test_escape_sequences_and_markup_in_remote_lines_show_literally(
    fresh_cockpit: Cockpit,
) -> None:
    [task_id] = await seed_task(fresh_cockpit, HOSTILE)
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        text = screen_text(app)
        assert "[bold red]not markup[/] and [link=http://x]no link[/link]" in text
        assert "clear  screen" in text
        assert "title  set" in text
        assert "bidi \\u202etxet desrever\\u202c end" in text
        assert "cr\\x0dhere" in text
        assert "bell \\x07 nul \\x00 del \\x7f" in text
        for y in range(view.scrollable_content_region.height):
            for segment in view.render_line(y):
                assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in segment.text), repr(
                    segment.text
                )
                assert segment.style is None or segment.style.link is None


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii",
        "héllo wörld ✓ 漢字",
        "\x1b[31mred\x1b[0m",
        "a\tb",
        "a\rb\nc",
        "\u00a0nbsp",
        "\u200bzero width",
        "\u202e bidi",
        "\x9b1m",
        "",
    ],
)
def test_the_fast_path_agrees_with_the_sanitiser(text: str) -> None:
    assert safe_text(text) == sanitize_line(text)


def test_grep_selects_like_grep_c() -> None:
    items = list(range(30))
    hits = {3, 4, 15, 29}
    assert list(Grep.select(items, lambda i: i in hits, 0)) == [3, 4, 15, 29]
    assert list(Grep.select(items, lambda i: i in hits, 2)) == [
        1, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 27, 28, 29,
    ]  # fmt: skip
    assert list(Grep.select(items, lambda i: i not in hits, 0)) == [
        i for i in items if i not in hits
    ]


# -- merged batch logs ---------------------------------------------------------------------------


async def test_a_batch_merges_its_tasks_logs_with_a_prefix(fresh_cockpit: Cockpit) -> None:
    for name in ("alpha", "bravo-long-server-name"):
        await fresh_cockpit.add_server(Server(name=name, address="10.0.0.1"))
    lines = [
        ("stdout", "hello from {task}"),
        ("stderr", "oops in {task}"),
        ("stdout", "bye {task}"),
    ]
    ids = await seed_task(
        fresh_cockpit, lines, batch_targets=["alpha", "bravo-long-server-name"], step=1.0
    )
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        batch_id = (await fresh_cockpit.tasks.task(ids[0])).batch_id  # type: ignore[union-attr]
        screen = await open_log(pilot, f"batch {batch_id}")
        view = screen.log_view
        a, b = ids
        # by time: the second task's lines are half a step after the first's
        assert view.shown_lines() == [
            f"alpha                  hello from {a}",
            f"bravo-long-server-name hello from {b}",
            f"alpha                  oops in {a}",
            f"bravo-long-server-name oops in {b}",
            f"alpha                  bye {a}",
            f"bravo-long-server-name bye {b}",
        ]
        text = screen_text(app)
        assert f"batch {batch_id} server.ping  2 tasks: ✓ 2 succeeded" in text
        assert "!alpha                  oops in" in text
        assert not view.live


async def test_a_running_batch_is_followed_live(fresh_cockpit: Cockpit, tmp_path: Path) -> None:
    for name in ("east", "west"):
        await add_local_server(fresh_cockpit, name, tmp_path / name)
    stop = tmp_path / "stop"
    batch = await queue_chatter(fresh_cockpit, ["east", "west"], stop)
    app = app_for(fresh_cockpit)
    async with running_worker(fresh_cockpit), app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, f"batch {batch.id}")
        view = screen.log_view

        def both_talk() -> bool:
            shown = view.shown_lines()
            return any(s.startswith("east tick 10") for s in shown) and any(
                s.startswith("west tick 10") for s in shown
            )

        await wait_until(pilot, both_talk, "both tasks' lines")
        assert view.live
        stop.touch()
        await wait_until(pilot, lambda: not view.live, "the end of the batch", timeout=20)
        await settle_view(pilot, view)
        for task_id in batch.task_ids:
            stored = await fresh_cockpit.tasks.log(task_id, limit=100_000)
            label = (
                "east" if (await fresh_cockpit.tasks.task(task_id)).target.key == "east" else "west"
            )  # type: ignore[union-attr]
            mine = [s[5:] for s in view.shown_lines() if s.startswith(label + " ")]
            assert mine == [line.text for line in stored]
        await wait_until(pilot, lambda: "✓ 2 succeeded" in screen_text(app), "the final counts")


# -- the command line, keys, sizes, colour --------------------------------------------------------


async def test_log_command_errors_and_missing_tasks(fresh_cockpit: Cockpit) -> None:
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("colon", *"log nope", "enter")
        await pilot.pause()
        assert any(":log takes a task id or 'batch ID'" in n.message for n in app._notifications)
        screen = await open_log(pilot, "42")
        assert "no task 42 in the store" in screen_text(app)
        assert not screen.log_view.live
        await pilot.press("escape")
        screen = await open_log(pilot, "batch 9")
        assert "no batch 9 in the store" in screen_text(app)


async def test_opening_the_same_log_again_goes_back_to_it(fresh_cockpit: Cockpit) -> None:
    [task_id] = await seed_task(fresh_cockpit, numbered(5))
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        first = await open_log(pilot, str(task_id))
        await pilot.press("colon", *"sites", "enter")
        await pilot.pause(0.2)
        assert app.screen is not first
        await pilot.press("colon", *f"log #{task_id}", "enter")
        await pilot.pause(0.2)
        assert app.screen is first
        assert sum(isinstance(s, LogScreen) for s in app.screen_stack) == 1


def test_every_binding_has_an_id_and_none_uses_ctrl_a_or_b() -> None:
    for cls in (LogView, LogScreen):
        for binding in cls.BINDINGS:
            assert isinstance(binding, Binding)
            assert binding.id and binding.id.startswith("log."), binding
            keys = binding.key.split(",")
            assert not {"ctrl+a", "ctrl+b"} & set(keys), binding
            assert binding.id in known_binding_ids()


async def test_log_keys_can_be_remapped(fresh_cockpit: Cockpit) -> None:
    [task_id] = await seed_task(fresh_cockpit, numbered(60))
    app = app_for(fresh_cockpit, keymap={"log.follow": "p", "log.wrap": "W"})
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await pilot.press("p")
        assert not view.following
        await pilot.press("p", "W")
        assert view.following and view.wrap
        await pilot.press("f", "w")  # the old keys no longer do it
        assert view.following and view.wrap
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {entry.binding_id: entry.keys for entry in app.screen.entries}
        assert listed["log.follow"] == ("p",)
        assert listed["log.wrap"] == ("W",)
        assert "log.search" in listed and "log.save" in listed


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_works_at_80x24_and_without_colour(
    fresh_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    [task_id] = await seed_task(fresh_cockpit, numbered(100, every_stderr=7, heading_at=1))
    app = app_for(fresh_cockpit)
    assert app.no_color
    async with app.run_test(size=size) as pilot:
        screen = await open_log(pilot, str(task_id))
        view = screen.log_view
        await pilot.press("g")
        text = screen_text(app)
        assert "▶step 1/2 probe: started" in text
        assert "!error 7: something failed" in text
        await pilot.press("slash", *"error 14", "enter")
        text = screen_text(app)
        assert "/ Search" in text and "& Filter" in text
        assert "Command" in text  # the footer keeps ":" at 80 columns
        # without colour, meaning rests on text styles: the match is reversed, stderr marked
        strips = [view.render_line(y) for y in range(view.scrollable_content_region.height)]
        assert any(
            s.style is not None and s.style.reverse and s.text == "error 14"
            for strip in strips
            for s in strip
        )


async def test_a_typed_filter_or_search_shows_as_typed_in_the_status(
    fresh_cockpit: Cockpit,
) -> None:
    [task_id] = await seed_task(fresh_cockpit, [("stdout", "a [b]bold[/b] claim")])
    app = app_for(fresh_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_log(pilot, str(task_id))
        await pilot.press("ampersand", *"[b]", "enter", "slash", *"[/b]", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "&[b]: 1" in text
        assert "/[/b] 1/1" in text
        assert screen.log_view.shown_lines() == ["a [b]bold[/b] claim"]

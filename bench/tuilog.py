"""The live log view under a flood: lines per second into the view, keys answered meanwhile.

Target (issue 6): at least 50,000 log lines per second into the view, with key-to-paint
latency under 100 ms during the flood.

1. **The whole path, as a user runs it.** A real worker (a child process, the engine's
   ``Worker``) runs a task that prints ``FLOOD_LINES`` lines (``seq`` through the local
   transport); the worker redacts them and writes them to the store in batches. The
   installed ``cockpit`` runs in a pseudo-terminal (80x24, TERM=xterm-256color) with the
   task's log open (``:log 1``): it follows the store through the core
   (``Engine.follow_log``) into the log view. The rate is read from the bytes the program
   writes to the terminal (the view's status: ``N lines · M dropped``), so it is what a
   user sees. Meanwhile ``f`` (pause / follow) is pressed every ~150 ms and timed from
   the write of the key to the bytes of the new state (``paused`` / ``following``) on
   the terminal: key to paint.
2. **The widget's own ceiling.** The log view alone in a headless app (80x24), fed
   prepared lines as fast as it takes them (a new chunk whenever fewer than 10,000 wait),
   plain, then with a filter and a search active; ``f`` is posted every 50 ms and timed
   to the action running. Textual's ``Log`` widget, fed the same chunks with
   ``write_lines``, is the reference.

Run ``python -m bench tuilog``. ``python -m bench.tuilog --worker STORE`` is the worker
process of part 1 (it knows the flood task kind).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import gc
import os
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.report import Section, table

if TYPE_CHECKING:
    from cockpit.engine import TaskKind

REPO = Path(__file__).resolve().parent.parent
FLOOD_LINES = 500_000
PIPELINE_RUNS = 3
WIDGET_LINES = 1_000_000
REFERENCE_LINES = 200_000
SIZE = (80, 24)
TEXT = "the quick brown fox jumps over the lazy dog"
FLOOD_KIND = "bench.flood"


def flood_kind() -> TaskKind:
    """Print ``args.lines`` numbered lines (``seq``) through ``ctx.sh``, as a step does."""
    from cockpit.engine import Step, TargetKind, TaskContext, TaskKind

    async def flood(ctx: TaskContext) -> None:
        count = str(ctx.args.get("lines", FLOOD_LINES))
        await ctx.sh(f'seq -f "flood line %.0f: {TEXT}" 1 "$1"', [count])

    return TaskKind(
        name=FLOOD_KIND,
        target=TargetKind.SERVER,
        idempotent=True,
        description="print args.lines lines as fast as the target can",
        steps=(Step("flood", flood),),
    )


def registry() -> Any:
    from cockpit.engine import Registry

    reg = Registry.default()
    reg.add(flood_kind())
    return reg


# -- part 1: the worker process ---------------------------------------------------------


async def _work(store: Path, task_id: int) -> None:
    from cockpit.config import Config
    from cockpit.engine import Engine
    from cockpit.engine.worker import Worker, WorkerOptions
    from cockpit.store import open_store

    db = await open_store(store)
    try:
        config = Config(store=store)
        worker = Worker(
            db,
            config,
            registry=registry(),
            options=WorkerOptions(poll=0.05, schedules=False, maintenance_every=60.0),
        )
        running = asyncio.create_task(worker.run())
        await Engine(db, config).wait([task_id], poll=0.1, timeout=600)
        worker.stop()
        await running
    finally:
        await db.close()


async def _prepare(store: Path, lines: int) -> int:
    from cockpit.config import Config
    from cockpit.core import Cockpit
    from cockpit.engine import Engine

    async with await Cockpit.open(Config(store=store)) as cockpit:  # registers localhost
        engine = Engine(cockpit.db, cockpit.config, registry=registry())
        batch = await engine.queue(FLOOD_KIND, ["localhost"], {"lines": lines})
    return batch.task_ids[0]


async def _stored(store: Path, task_id: int) -> tuple[int, float, float, float, float]:
    """Lines stored, first and last line times, task start and end."""
    from cockpit.config import Config
    from cockpit.core import Cockpit

    async with await Cockpit.open(Config(store=store)) as cockpit:
        engine = cockpit.tasks
        task = await engine.task(task_id)
        assert task is not None and task.started_at is not None and task.finished_at is not None
        first = (await engine.log(task_id, limit=1))[0]
        tail = await engine.log_tail(task_id, 1)
        return tail[0].seq, first.at, tail[0].at, task.started_at, task.finished_at


class Pty:
    """A program in a pseudo-terminal; what it writes is collected with arrival times."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = bytearray()

    def read(self, timeout: float) -> bytes:
        if select.select([self.master], [], [], timeout)[0]:
            try:
                data = os.read(self.master, 1 << 18)
            except OSError:
                return b""
            self.output += data
            return data
        return b""

    def wait_for(self, pattern: bytes, timeout: float = 30.0, start: int = 0) -> float:
        compiled = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if compiled.search(self.output, start):
                return time.perf_counter()
            self.read(0.01)
        raise TimeoutError(f"{pattern!r} never showed; last output {bytes(self.output[-300:])!r}")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        try:
            os.write(self.master, b"q")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


_COUNTS = re.compile(rb"([\d,]+) lines(?: \xc2\xb7 ([\d,]+) dropped)?")


def _total(match: re.Match[bytes]) -> int:
    lines = int(match.group(1).replace(b",", b""))
    dropped = int(match.group(2).replace(b",", b"")) if match.group(2) else 0
    return lines + dropped


@dataclass
class Pipeline:
    lines: int = 0
    seen: list[tuple[float, int]] = field(default_factory=list)  # (wall time, lines shown)
    keys: list[float] = field(default_factory=list)
    made_rate: float = 0.0
    writer_rate: float = 0.0
    task_seconds: float = 0.0
    behind: float = 0.0
    rss: float = 0.0

    def rate(self, low: float = 0.1, high: float = 0.9) -> float:
        """Lines per second while the count went from ``low`` to ``high`` of the total."""
        total = self.lines
        a = next(p for p in self.seen if p[1] >= low * total)
        b = next(p for p in self.seen if p[1] >= high * total)
        return (b[1] - a[1]) / max(1e-9, b[0] - a[0])

    def overall(self) -> float:
        first, last = self.seen[0], self.seen[-1]
        return (last[1] - first[1]) / max(1e-9, last[0] - first[0])


def measure_pipeline(home: Path, lines: int = FLOOD_LINES) -> Pipeline:
    store = home / "cockpit.db"
    task_id = asyncio.run(_prepare(store, lines))
    exe = Path(sys.executable).parent / "cockpit"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
    }
    env.pop("NO_COLOR", None)
    result = Pipeline()
    # read-only: the TUI starts no worker of its own; ours knows the flood kind
    term = Pty([str(exe), "--store", str(store), "--read-only"], env, SIZE)
    worker: subprocess.Popen[bytes] | None = None
    try:
        term.wait_for(rb"localhost")
        term.send(f":log {task_id}\r".encode())
        term.wait_for(rb"no log lines yet")
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.tuilog", "--worker", str(store), str(task_id)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        expect_paused = True
        sent_at: float | None = None
        sent_from = 0
        next_key = time.perf_counter() + 0.3
        last_total = 0
        ended_at: float | None = None
        deadline = time.perf_counter() + 300
        scanned = 0
        ended_from = 0
        while time.perf_counter() < deadline:
            term.read(0.002)
            now = time.perf_counter()
            out = term.output
            # the counts, as they arrive (the last one in this read)
            found = None
            for match in _COUNTS.finditer(out, max(0, scanned - 64)):
                found = match
            scanned = len(out)
            if found is not None:
                total = _total(found)
                if total != last_total:
                    last_total = total
                    result.seen.append((time.time(), total))
            if sent_at is not None:
                want = rb"paused" if expect_paused else rb"following"
                if re.search(want, out[sent_from:]):
                    result.keys.append(now - sent_at)
                    sent_at = None
                    expect_paused = not expect_paused
                    next_key = now + 0.15
                elif now - sent_at > 5:
                    raise TimeoutError("a key got no answer in 5 s")
            if ended_at is None and out.find("■ ended".encode(), ended_from) >= 0:
                ended_at = now
                sent_at = None  # a key in flight now finds "ended", not its state
            ended_from = max(0, len(out) - 16)
            if ended_at is not None:
                if sent_at is None and now - ended_at > 0.5:
                    break
                continue
            if sent_at is None and now >= next_key and result.seen:
                sent_from = len(out)
                sent_at = time.perf_counter()
                term.send(b"f")
        if worker.wait(timeout=120) != 0:
            assert worker.stderr is not None
            raise RuntimeError(f"the worker failed: {worker.stderr.read().decode()[-500:]}")
        result.rss = term.rss_mb()
    finally:
        term.close()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
    stored, first_at, last_at, started, finished = asyncio.run(_stored(store, task_id))
    result.lines = stored
    result.made_rate = stored / max(1e-9, last_at - first_at)
    result.writer_rate = stored / max(1e-9, finished - started)
    result.task_seconds = finished - started
    shown_all = next((t for t, n in result.seen if n >= stored), None)
    if shown_all is None:
        raise RuntimeError(f"the view never showed all {stored:,} lines (last {last_total:,})")
    result.behind = shown_all - finished  # every line was in the store when the task ended
    return result


# -- part 2: the widget alone ------------------------------------------------------------


@dataclass
class Ceiling:
    name: str
    lines: int
    seconds: float
    dropped: int
    keys: list[float]

    @property
    def rate(self) -> float:
        return self.lines / self.seconds


def _lines(first: int, count: int) -> list[Any]:
    """Lines ``first`` … ``first + count - 1`` of a flood (one in ten on stderr), made when
    needed, as the store's reader makes them."""
    from cockpit.engine import LogLine, LogStream

    now = time.time()
    streams = (LogStream.STDOUT,) * 9 + (LogStream.STDERR,)
    return [
        LogLine(1, i, now, streams[i % 10], f"flood line {i}: {TEXT}")
        for i in range(first, first + count)
    ]


async def _widget_ceiling(count: int, *, setup: Callable[[Any], None] | None = None) -> Ceiling:
    from textual.app import App, ComposeResult

    from cockpit.widgets.log_view import LogView

    handled: list[float] = []

    class TimedView(LogView):
        def action_toggle_follow(self) -> None:
            handled.append(time.perf_counter())
            super().action_toggle_follow()

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield TimedView(id="log")

        def on_mount(self) -> None:
            gc.freeze()  # as the cockpit app does once it is up

        def on_unmount(self) -> None:
            gc.unfreeze()

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        view = app.query_one(TimedView)
        if setup is not None:
            setup(view)
        await pilot.pause()
        posted: list[float] = []

        async def press_keys() -> None:
            from textual import events

            while True:
                await asyncio.sleep(0.05)
                posted.append(time.perf_counter())
                app.post_message(events.Key("f", "f"))

        presser = asyncio.create_task(press_keys())
        chunk = 5000
        start = time.perf_counter()
        sent = 0
        while sent < count:
            if view.pending_count < 10_000:
                view.write_lines(_lines(sent + 1, chunk))
                sent += chunk
            await asyncio.sleep(0.002)
        while view.pending_count:
            await asyncio.sleep(0.002)
        view.flush()
        seconds = time.perf_counter() - start
        presser.cancel()
        keys = [h - p for p, h in zip(posted, handled, strict=False)]
        return Ceiling("", count, seconds, view.overflowed, keys)


async def _textual_log(count: int) -> Ceiling:
    from textual.app import App, ComposeResult
    from textual.widgets import Log

    class Host(App[None]):
        def compose(self) -> ComposeResult:
            yield Log(max_lines=100_000)

    app = Host()
    async with app.run_test(size=SIZE) as pilot:
        log = app.query_one(Log)
        await pilot.pause()
        start = time.perf_counter()
        for i in range(0, count, 5000):
            log.write_lines([line.text for line in _lines(i + 1, 5000)])
            await asyncio.sleep(0.002)
        await pilot.pause()
        await app.workers.wait_for_complete()
        seconds = time.perf_counter() - start
    return Ceiling("", count, seconds, 0, [])


def _filtered(view: Any) -> None:
    view.set_filter("~[02468]:")  # about half the lines
    view.set_search("fox")


def _ms(samples: list[float]) -> str:
    if not samples:
        return "-"
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return (
        f"median {statistics.median(samples) * 1000:.0f} ms, p95 {p95 * 1000:.0f}, "
        f"max {max(samples) * 1000:.0f} ({len(samples)} keys)"
    )


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _spread(values: list[float], unit: str, scale: float = 1.0) -> str:
    """The median of the runs, and each run."""
    each = ", ".join(f"{v * scale:,.0f}" for v in values)
    return f"{statistics.median(values) * scale:,.0f} {unit} (runs: {each})"


def run() -> Section:
    load_before = _load()
    pipes: list[Pipeline] = []
    for _ in range(PIPELINE_RUNS):
        with tempfile.TemporaryDirectory(prefix="cockpit-bench-tuilog-") as tmp:
            pipes.append(measure_pipeline(Path(tmp)))
    plain = asyncio.run(_widget_ceiling(WIDGET_LINES))
    filtered = asyncio.run(_widget_ceiling(WIDGET_LINES, setup=_filtered))
    reference = asyncio.run(_textual_log(REFERENCE_LINES))
    load_after = _load()
    target_rate = "≥ 50,000"
    keys = [k for pipe in pipes for k in pipe.keys]
    rows = [
        [
            "the task's command prints its lines (as the worker reads them)",
            _spread([p.made_rate for p in pipes], "lines/s"),
            "",
        ],
        [
            "the worker: lines into the store, over the task's run",
            _spread([p.writer_rate for p in pipes], "lines/s"),
            "",
        ],
        [
            "store → follow_log → view, on the terminal (first line shown → last)",
            _spread([p.overall() for p in pipes], "lines/s"),
            target_rate,
        ],
        [
            "the same, the middle of the flood (10 % → 90 % of the lines)",
            _spread([p.rate() for p in pipes], "lines/s"),
            "",
        ],
        [
            "the last line on the terminal, after the task ended",
            _spread([p.behind for p in pipes], "ms", 1000),
            "",
        ],
        ["`f` → new state on the terminal, during the floods", _ms(keys), "< 100 ms"],
        [
            "resident memory of `cockpit` after the flood",
            _spread([p.rss for p in pipes], "MB"),
            "",
        ],
    ]
    ceiling = [
        [
            "log view, plain",
            f"{plain.rate:,.0f} lines/s",
            f"{plain.dropped:,}",
            _ms(plain.keys),
        ],
        [
            "log view, a filter and a search active",
            f"{filtered.rate:,.0f} lines/s",
            f"{filtered.dropped:,}",
            _ms(filtered.keys),
        ],
        [
            "Textual `Log`, `write_lines` of the same chunks (reference)",
            f"{reference.rate:,.0f} lines/s",
            "-",
            "-",
        ],
    ]
    body = (
        f"**The whole path**, {PIPELINE_RUNS} runs. A task prints {pipes[0].lines:,} lines "
        "(`seq` through the local transport); the installed `cockpit` runs in "
        f"a pseudo-terminal of {SIZE[0]}x{SIZE[1]} with the task's log open and follows it "
        "from the store. Rates are read from the view's status line in the bytes written to "
        "the terminal; keys are timed from their write to the new state's bytes. The worker "
        "and the TUI share this machine's cores with each other (and with anything else "
        "running).\n\n"
        + table(["step", "measured", "target"], rows)
        + f"\n\n**The widget's own ceiling.** The log view alone in a headless app "
        f"({SIZE[0]}x{SIZE[1]}, rendering but no terminal), fed {WIDGET_LINES:,} prepared "
        "lines as fast as it takes them; `f` posted every 50 ms and timed to its action "
        f"(the paint follows on the next frame, ≤ 17 ms). Textual's `Log`, fed "
        f"{REFERENCE_LINES:,} lines in the same chunks, for reference.\n\n"
        + table(["widget", "lines in", "dropped", "key → action"], ceiling)
        + "\n\nThe view keeps the last 100,000 lines (the rest are counted as dropped and "
        "stay in the store). The machine's load average when the run began: "
        f"{load_before}; when it ended: {load_after}. Every figure here is wall time and "
        "moves with that load (a process gets a smaller share of a core, and its pauses "
        "grow)."
    )
    return Section("tuilog", "TUI log view under a flood", body)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tuilog", description=__doc__)
    parser.add_argument("--worker", nargs=2, metavar=("STORE", "TASK"), help="run the worker")
    args = parser.parse_args()
    if args.worker:
        store, task = args.worker
        asyncio.run(_work(Path(store), int(task)))
        return
    section = run()
    print(section.body)


if __name__ == "__main__":
    main()

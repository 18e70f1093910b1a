"""The TUI on a 100,000-site store: first paint, filter keystrokes, scrolling, memory.

Targets (issue 6): first paint < 1 s, a filter keystroke to a repainted list < 100 ms.

The app opens on the overview. Its first paint (its list on screen, the on-call status
still being checked), its inventory counts and its on-call section (``cockpit status``'s
evaluation of every check, which names the servers here: none was ever collected) are
timed from the process start as three rows.

The installed ``cockpit`` runs in a pseudo-terminal (80x24, TERM=xterm-256color), as a
user runs it; every figure is wall time from writing a key (or starting the process) to
the expected text in the bytes the program writes to the terminal: what a user sees,
painting included. Headless Pilot runs (``App.run_test``) add Pilot's own waiting to
every step, so they are not used for latency here.
"""

from __future__ import annotations

import asyncio
import fcntl
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
from pathlib import Path

from bench.report import Section, table

SITES = 100_000
SERVERS = 20
PLATFORMS = 100
CLIENTS = 50
SIZE = (80, 24)
_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


async def build_store(path: Path) -> None:
    """20 servers, 100 platforms, 50 clients and 100,000 sites, in one transaction."""
    from cockpit.model import Client, HttpsMode, Platform, PlatformType, Server, Site, SiteStatus
    from cockpit.store import clients as client_queries
    from cockpit.store import open_store
    from cockpit.store import platforms as platform_queries
    from cockpit.store import servers as server_queries
    from cockpit.store import sites as site_queries
    from cockpit.store.rows import trusted

    servers = [
        Server(
            name=f"web{i:02d}",
            address=f"10.0.0.{i + 10}",
            environment="prod" if i % 4 else "staging",
        )
        for i in range(SERVERS)
    ]
    platforms = [
        Platform(f"pf{i:03d}", f"web{i % SERVERS:02d}", PlatformType.PHP, f"/srv/pf{i:03d}")
        for i in range(PLATFORMS)
    ]
    clients = [Client(f"client{i:02d}", f"ops@client{i}.example") for i in range(CLIENTS)]
    sites = [
        trusted(
            Site,
            id=None,
            domain=f"{_WORDS[n % 8]}-{n:06d}.example.com",
            platform=f"pf{n % PLATFORMS:03d}",
            client=f"client{n % CLIENTS:02d}",
            aliases=(),
            redirection=None,
            db_server=None,
            https=(HttpsMode.OFF, HttpsMode.ON, HttpsMode.REQUIRED)[n % 3],
            status=SiteStatus.DISABLED if n % 17 == 0 else SiteStatus.ENABLED,
        )
        for n in range(SITES)
    ]
    db = await open_store(path)
    try:
        async with db.write() as conn:
            await server_queries.insert_many(conn, servers)
            await client_queries.insert_many(conn, clients)
            server_ids = await server_queries.ids(conn)
            await platform_queries.insert_many(conn, platforms, server_ids)
            refs = site_queries.RefIds(
                platforms=await platform_queries.ids(conn),
                clients=await client_queries.ids(conn),
                servers=server_ids,
            )
            await site_queries.insert_many(conn, sites, refs)
    finally:
        await db.close()


# -- the real command in a pty ---------------------------------------------------------------


_POSITION = re.compile(rb"(\d[\d,]*) of 100,000")


class Pty:
    """``cockpit`` running in a pseudo-terminal; what it writes is collected."""

    def __init__(self, argv: list[str], env: dict[str, str], size: tuple[int, int]) -> None:
        self.master, slave = os.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    def wait_for(self, pattern: bytes, timeout: float = 30.0) -> tuple[float, re.Match[bytes]]:
        """Seconds from :attr:`started` until ``pattern`` (a regex) shows in the output."""
        compiled = re.compile(pattern)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            found = compiled.search(self.output)
            if found:
                return time.perf_counter() - self.started, found
            ready, _, _ = select.select([self.master], [], [], 0.005)
            if ready:
                try:
                    self.output += os.read(self.master, 1 << 16)
                except OSError:
                    break
        raise TimeoutError(f"{pattern!r} never showed; last output: {self.output[-300:]!r}")

    def wait_for_position_above(self, position: int, timeout: float = 30.0) -> tuple[float, int]:
        """Seconds until the list shows a cursor position ("N of 100,000") past ``position``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            took, _ = self.wait_for(rb"of 100,000", timeout=deadline - time.perf_counter())
            shown = [int(m.replace(b",", b"")) for m in _POSITION.findall(self.output)]
            if shown and max(shown) > position:
                return took, max(shown)
            ready, _, _ = select.select([self.master], [], [], 0.005)
            if ready:
                self.output += os.read(self.master, 1 << 16)
        raise TimeoutError(f"the position never passed {position}")

    def drain(self, quiet: float = 0.2) -> None:
        """Read until the program has written nothing for ``quiet`` seconds."""
        while select.select([self.master], [], [], quiet)[0]:
            try:
                os.read(self.master, 1 << 16)
            except OSError:
                return

    def send(self, keys: bytes) -> None:
        self.output = b""
        self.started = time.perf_counter()
        os.write(self.master, keys)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        for line in status.splitlines():
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


def _ms(samples: list[float]) -> str:
    med = statistics.median(samples)
    if len(samples) == 1:
        return f"{med * 1000:.0f} ms"
    return (
        f"median {med * 1000:.0f} ms (min {min(samples) * 1000:.0f}, max {max(samples) * 1000:.0f})"
    )


def domains() -> list[str]:
    return [f"{_WORDS[n % 8]}-{n:06d}.example.com" for n in range(SITES)]


def measure(
    store: Path, home: Path, runs: int = 3
) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
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
    names = domains()
    needle = "charlie-0999"
    counts = {i: sum(1 for d in names if needle[:i] in d) for i in range(1, len(needle) + 1)}
    launch, counted, oncall = [], [], []
    sites, keys, pages, jumps, marks, clears = [], [], [], [], [], []
    per_key: dict[int, list[float]] = {i: [] for i in range(1, len(needle) + 1)}
    memory: list[list[str]] = []
    for run in range(runs):
        # Read-only: the bench browses; a writable TUI would start a detached worker.
        term = Pty([str(exe), "--store", str(store), "--read-only"], env, SIZE)
        try:
            # The app opens on the overview: its list first, then the inventory counts,
            # then the on-call findings (the servers never collected, web00 first).
            launch.append(term.wait_for(rb"overview \[")[0])
            counted.append(term.wait_for(rb"100,000")[0])
            oncall.append(term.wait_for(rb"web00")[0])
            term.drain()
            term.send(b"1")
            term.wait_for(rb"1 of 20")
            term.drain()
            if run == 0:
                memory.append(["servers list open", f"{term.rss_mb():.0f} MB"])
            term.send(b"3")
            sites.append(term.wait_for(rb"1 of 100,000")[0])
            term.drain()
            term.send(b"/")
            term.drain()
            for i in range(1, len(needle) + 1):
                term.send(needle[i - 1].encode())
                shown = f"[{counts[i]:,}] /{needle[:i]}".encode()
                took = term.wait_for(re.escape(shown))[0]
                keys.append(took)
                per_key[i].append(took)
            term.drain()
            term.send(b"\x1b")  # esc: clears the filter
            clears.append(term.wait_for(rb"sites \[100,000\]")[0])
            term.drain()
            position = 1
            for _ in range(20):
                term.send(b"\x1b[6~")  # pagedown
                took, position = term.wait_for_position_above(position)
                pages.append(took)
                term.drain(0.05)
            term.send(b"G")
            jumps.append(term.wait_for(rb"100,000 of 100,000")[0])
            term.drain()
            term.send(b"*")
            marks.append(term.wait_for(rb"100,000 marked")[0])
            term.drain()
            if run == 0:
                memory.append(
                    ["100,000-site list filtered, scrolled, all marked", f"{term.rss_mb():.0f} MB"]
                )
        finally:
            term.close()
    rows = [
        ["process start → overview on screen (first paint)", _ms(launch), "< 1 s"],
        ["process start → overview's inventory counts on screen", _ms(counted), ""],
        ["process start → on-call section complete (it names the servers)", _ms(oncall), ""],
        ["`3` → first page of the 100,000-site list on screen", _ms(sites), "< 1 s"],
        [
            f"filter keystroke → list repainted (typing `{needle}`, {len(keys)} keys)",
            _ms(keys),
            "< 100 ms",
        ],
        ["`esc` (clear the filter) → 100,000 rows again", _ms(clears), ""],
        [f"a page of scrolling (pagedown, {len(pages)} pages)", _ms(pages), ""],
        ["`G` → the last of 100,000 rows on screen", _ms(jumps), ""],
        ["`*` → all 100,000 marked (a filter, no rows read)", _ms(marks), ""],
    ]
    typed = [
        [f"`{needle[:i]}`", f"{counts[i]:,}", f"{statistics.median(per_key[i]) * 1000:.0f} ms"]
        for i in per_key
    ]
    return rows, typed, memory


def run() -> Section:
    with tempfile.TemporaryDirectory(prefix="cockpit-bench-tui-") as tmp:
        home = Path(tmp)
        store = home / "cockpit.db"
        start = time.perf_counter()
        asyncio.run(build_store(store))
        built = time.perf_counter() - start
        rows, typed, memory = measure(store, home)
    body = (
        f"A store of {SITES:,} sites on {SERVERS} servers and {PLATFORMS} platforms "
        f"(built in {built:.1f} s). The installed `cockpit` runs in a pseudo-terminal of "
        f"{SIZE[0]}x{SIZE[1]} (TERM=xterm-256color); each time runs from the write of the key "
        "(or the process start) to the bytes of the expected text on the terminal (the "
        "list's count and filter in its title, the cursor position under it). Three "
        "launches; every keystroke of every launch is a sample.\n\n"
        + table(["step", "wall time", "target"], rows)
        + "\n\n`esc` includes the terminal's escape-key timeout (a lone ESC byte is only known "
        "not to start a sequence after a pause). Each filter keystroke, median of the runs "
        "(short needles match most domains: the count is a scan; longer ones use the "
        "trigram index):\n\n"
        + table(["filter", "matches", "key → repainted"], typed)
        + "\n\nResident memory of the `cockpit` process (VmRSS, first launch):\n\n"
        + table(["", "RSS"], memory)
    )
    return Section("tui", "TUI at 100,000 sites", body)

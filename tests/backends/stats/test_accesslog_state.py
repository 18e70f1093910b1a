"""Incremental collection through the local transport: appends, partial lines, rotation
(with writes after the ``mv``), compression, truncation, a rewritten file, the two-phase
commit and its compare-and-swap — for both engines (the Python program and the awk
fallback), which must agree."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from logtruth import Truth, as_bytes, generate

from cockpit.backends.local import LocalTransport
from cockpit.backends.stats import accesslog as al
from cockpit.backends.stats import collect as c
from cockpit.backends.stats import fallback
from cockpit.backends.stats.collect import (
    AccessLogError,
    AccessLogReport,
    Engine,
    LogSpec,
    MinuteSample,
)
from cockpit.backends.transport import Result, Transport
from cockpit.model import Server

ENGINES: list[Engine] = ["python", "awk"]


class Bed:
    def __init__(self, tmp_path: Path) -> None:
        self.server = Server(
            name="local", address="127.0.0.1", transport="local", root=str(tmp_path / "root")
        )
        self.transport = LocalTransport(self.server)
        self.logs = tmp_path / "logs"
        self.logs.mkdir()
        self.seed = 0
        self.clock = 1740787200

    def chunk(
        self, fmt: str = "cockpit", n: int = 300, label: str = "label.example"
    ) -> tuple[bytes, Truth]:
        self.seed += 1
        lines, truth = generate(fmt, n, seed=self.seed, start=self.clock, label=label)
        self.clock += 3600
        return as_bytes(lines), truth

    def append(self, name: str, data: bytes) -> None:
        with open(self.logs / name, "ab") as f:
            f.write(data)

    async def collect(
        self, paths: Sequence[str | LogSpec], engine: Engine, *, commit: bool = True
    ) -> AccessLogReport:
        return await c.collect_access_log_report(
            self.transport, self.server, paths, engine=engine, commit=commit
        )


def table(samples: Sequence[MinuteSample]) -> dict[tuple[str, int], list[int]]:
    return {
        (s.vhost, s.minute): [
            s.requests,
            s.bytes_sent,
            s.status_1xx,
            s.status_2xx,
            s.status_3xx,
            s.status_4xx,
            s.status_5xx,
        ]
        for s in samples
    }


def assert_exact(report: AccessLogReport, *truths: Truth) -> None:
    want = Truth()
    for t in truths:
        want.merge(t)
    assert table(report.samples) == want.minutes
    assert report.malformed == want.malformed
    assert report.lines == want.lines
    for s in report.samples:
        assert s.histogram == _hist(want.rt_ms.get((s.vhost, s.minute), []))


def _hist(values: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        b = al.rt_bucket(v)
        out[b] = out.get(b, 0) + 1
    return out


def events(report: AccessLogReport) -> list[list[str]]:
    return [[e.replace(str(Path(f.path).parent) + "/", "") for e in f.events] for f in report.files]


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(tmp_path)


@pytest.mark.parametrize("engine", ENGINES)
async def test_incremental_collection_is_exact_through_rotation_and_truncation(
    bed: Bed, engine: Engine
) -> None:
    log = str(bed.logs / "site.access.log")
    seen: list[list[list[str]]] = []

    async def step(*truths: Truth) -> AccessLogReport:
        report = await bed.collect([log], engine)
        assert report.committed
        assert_exact(report, *truths)
        seen.append(events(report))
        return report

    await step()  # not there yet
    a, ta = bed.chunk()
    one, t_one = generate("cockpit", 1, seed=500, start=bed.clock, garbage=0)
    partial = as_bytes(one)
    bed.append("site.access.log", a + partial[:25])  # a line being written
    r = await step(ta)
    assert r.files[0].offset == len(a)
    b, tb = bed.chunk()
    bed.append("site.access.log", partial[25:] + b)  # the line completed, more after it
    await step(t_one, tb)
    await step()  # nothing new

    # logrotate without copytruncate: mv, the server still writes to the old file, then reopens
    os.rename(log, log + ".1")
    c1, tc1 = bed.chunk()
    bed.append("site.access.log.1", c1)
    d, td = bed.chunk()
    bed.append("site.access.log", d)
    await step(tc1, td)
    e, te = bed.chunk()
    bed.append("site.access.log.1", e)  # a late write to the rotated file
    f, tf = bed.chunk()
    bed.append("site.access.log", f)
    await step(te, tf)

    # the rotated file compressed (gone): nothing more from it, the live one goes on
    with open(log + ".1", "rb") as src, gzip.open(log + ".1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(log + ".1")
    g, tg = bed.chunk()
    bed.append("site.access.log", g)
    await step(tg)

    # copytruncate: copied away, emptied in place, written again (less than before)
    shutil.copy(log, log + ".2")
    os.truncate(log, 0)
    h, th = bed.chunk(n=20)
    bed.append("site.access.log", h)
    await step(th)

    # emptied and rewritten past the old offset before we looked: the fingerprint tells
    os.truncate(log, 0)
    i, ti = bed.chunk(n=400)
    bed.append("site.access.log", i)
    await step(ti)

    assert seen == [
        [["missing"]],
        [["new"]],
        [["appended"]],
        [["unchanged"]],
        [["rotated:site.access.log.1"]],
        [["retired:site.access.log.1", "appended"]],
        [["appended"]],
        [["truncated"]],
        [["replaced"]],
    ]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_run_without_commit_is_repeated(bed: Bed, engine: Engine) -> None:
    log = str(bed.logs / "a.log")
    a, ta = bed.chunk()
    bed.append("a.log", a)
    first = await bed.collect([log], engine, commit=False)
    again = await bed.collect([log], engine, commit=False)
    assert not first.committed and table(first.samples) == table(again.samples) == ta.minutes
    done = await bed.collect([log], engine)
    assert done.committed and table(done.samples) == ta.minutes
    assert (await bed.collect([log], engine)).samples == []


async def test_the_two_engines_take_turns_on_one_state(bed: Bed) -> None:
    log = str(bed.logs / "a.log")
    truths = []
    engines: list[Engine] = ["python", "awk", "python", "awk"]
    for engine in engines:
        data, t = bed.chunk(fmt="vhost_combined")
        bed.append("a.log", data)
        report = await bed.collect([LogSpec(log, "vhost_combined")], engine)
        assert_exact(report, t)
        truths.append(t)
    state = json.loads(Path(c.state_path(bed.server)).read_text())
    assert state["gen"] == 4


@pytest.mark.parametrize("engine", ENGINES)
async def test_several_logs_and_a_combined_one(bed: Bed, engine: Engine) -> None:
    a, ta = bed.chunk(fmt="cockpit")
    b, tb = bed.chunk(fmt="combined", label="b.example")
    bed.append("a.example.access.log", a)
    bed.append("b.example.access.log", b)
    report = await bed.collect(
        [
            str(bed.logs / "a.example.access.log"),
            LogSpec(str(bed.logs / "b.example.access.log"), "combined"),
        ],
        engine,
    )
    assert_exact(report, ta, tb)
    assert {s.vhost for s in report.samples} >= {"b.example", "site1.example"}
    assert [f.malformed for f in report.files] == [ta.malformed, tb.malformed]


async def test_the_program_commits_only_its_own_run(bed: Bed, tmp_path: Path) -> None:
    """Two runs race: only the last run's token commits; a commit after another engine
    moved the state on is refused."""
    log = bed.logs / "a.log"
    data, _ = bed.chunk()
    bed.append("a.log", data)
    state = tmp_path / "state.json"

    def run(*args: str) -> tuple[int, list[dict[str, object]]]:
        out = subprocess.run(
            [sys.executable, str(al.__file__), "--state", str(state), *args],
            capture_output=True,
            text=True,
        )
        return out.returncode, [json.loads(x) for x in out.stdout.splitlines()]

    code1, out1 = run("--log", "cockpit", "-", str(log))
    code2, out2 = run("--log", "cockpit", "-", str(log))
    assert code1 == code2 == 0
    token1, token2 = out1[-1]["token"], out2[-1]["token"]
    code, out = run("--commit", str(token1))
    assert code == al.EXIT_COMMIT and out[0]["ok"] is False
    code, out = run("--commit", str(token2))
    assert code == 0 and out[0]["ok"] is True and out[0]["gen"] == 1
    code, out = run("--commit", str(token2))
    assert code == al.EXIT_COMMIT  # once only
    code, out = run("--log", "cockpit", "-", str(log))
    token3 = out[-1]["token"]
    assert out[-1]["bytes"] == 0
    # the awk commit takes the same lock and bumps the generation
    new = tmp_path / "new.json"
    new.write_text(al.State(2, {}).dumps())
    result = subprocess.run(
        ["sh", "-c", fallback.COMMIT, "-", str(state), str(new), "1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    code, out = run("--commit", str(token3))  # the awk commit dropped this pending state
    assert code == al.EXIT_COMMIT and "no pending state" in str(out[0]["reason"])
    code, out = run("--log", "cockpit", "-", str(log))
    token4 = out[-1]["token"]
    state.write_text(al.State(3, {}).dumps())  # someone else moved the state on
    code, out = run("--commit", str(token4))
    assert code == al.EXIT_COMMIT and "moved on" in str(out[0]["reason"])
    # and a stale awk commit is refused too
    new.write_text(al.State(2, {}).dumps())
    result = subprocess.run(
        ["sh", "-c", fallback.COMMIT, "-", str(state), str(new), "1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 5 and not new.exists()
    assert json.loads(state.read_text())["gen"] == 3


def test_parallel_run_of_the_program_over_a_rotation(bed: Bed, tmp_path: Path) -> None:
    log = bed.logs / "a.log"
    state = tmp_path / "s.json"
    a, _ = bed.chunk(n=4000)  # read and committed by the first run
    bed.append("a.log", a)
    base = [sys.executable, str(al.__file__), "--state", str(state), "--autocommit", "--jobs", "3"]
    subprocess.run([*base, "--log", "cockpit", "-", str(log)], check=True, capture_output=True)
    os.rename(log, str(log) + "-20250301")
    b, tb = bed.chunk(n=5000)
    bed.append("a.log-20250301", b)
    d, td = bed.chunk(n=6000)
    bed.append("a.log", d)
    out = subprocess.run(
        [*base, "--parallel-min", "0", "--log", "cockpit", "-", str(log)],
        check=True,
        capture_output=True,
        text=True,
    )
    recs = [json.loads(x) for x in out.stdout.splitlines()]
    want = Truth()
    want.merge(tb)
    want.merge(td)
    got = {
        (r["vhost"], r["minute"]): [r["requests"], r["bytes"], *r["status"]]
        for r in recs
        if r["t"] == "minute"
    }
    assert got == want.minutes
    assert recs[-1]["malformed"] == want.malformed and recs[-1]["jobs"] == 3


async def test_auto_falls_back_to_awk_without_python3(bed: Bed) -> None:
    class NoPython(Transport):
        def __init__(self, inner: LocalTransport) -> None:
            super().__init__(inner.server)
            self.inner = inner

        async def run_script(self, script: str, args: Sequence[str] = (), **kw: object) -> Result:
            return await self.inner.run_script(
                script.replace("command -v python3", "command -v no-such-python3"),
                args,
                **kw,  # type: ignore[arg-type]
            )

        async def upload(
            self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
        ) -> None:
            await self.inner.upload(data, remote_path, mode=mode, sudo=sudo)

        async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
            return await self.inner.download(remote_path, sudo=sudo)

        async def close(self) -> None:
            await self.inner.close()

    a, ta = bed.chunk()
    bed.append("a.log", a)
    report = await c.collect_access_log_report(
        NoPython(bed.transport), bed.server, [str(bed.logs / "a.log")]
    )
    assert report.engine == "mawk"
    assert_exact(report, ta)
    assert not Path(c.program_path(bed.server)).exists()
    with pytest.raises(AccessLogError, match="no python3"):
        await c.collect_access_log_report(
            NoPython(bed.transport), bed.server, [str(bed.logs / "a.log")], engine="python"
        )


async def test_the_program_is_uploaded_once_and_old_versions_removed(bed: Bed) -> None:
    calls: list[str] = []

    class Counting(LocalTransport):
        async def upload(
            self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
        ) -> None:
            calls.append(remote_path)
            await super().upload(data, remote_path, mode=mode, sudo=sudo)

    t = Counting(bed.server)
    log = str(bed.logs / "a.log")
    await c.collect_access_log_report(t, bed.server, [log])
    await c.collect_access_log_report(t, bed.server, [log])
    prog = Path(c.program_path(bed.server))
    assert calls == [str(prog)]
    assert prog.read_bytes() == c.PROGRAM and (prog.stat().st_mode & 0o777) == 0o644
    assert (prog.parent.parent / "state").stat().st_mode & 0o777 == 0o700
    stale = prog.parent / "cockpit-accesslog-0123456789abcdef.py"
    stale.write_text("old")
    prog.unlink()
    await c.collect_access_log_report(t, bed.server, [log])
    assert not stale.exists() and prog.exists() and len(calls) == 2


async def test_a_corrupt_state_is_set_aside(bed: Bed) -> None:
    log = str(bed.logs / "a.log")
    a, ta = bed.chunk()
    bed.append("a.log", a)
    state = Path(c.state_path(bed.server))
    state.parent.mkdir(parents=True)
    state.write_text("{not json")
    report = await bed.collect([log], "python")
    assert_exact(report, ta)
    assert report.notes and "unreadable state moved" in report.notes[0]
    assert list(state.parent.glob("accesslog-default.json.corrupt-*"))


def test_the_state_lock_times_out(tmp_path: Path) -> None:
    state = str(tmp_path / "s.json")
    with al.Locked(state), pytest.raises(TimeoutError), al.Locked(state, timeout=0.3):
        pass
    with al.Locked(state, timeout=0.3):
        pass


async def test_a_directory_or_nothing_is_missing_not_an_error(bed: Bed) -> None:
    (bed.logs / "dir.log").mkdir()
    for engine in ENGINES:
        report = await bed.collect([str(bed.logs / "dir.log"), str(bed.logs / "none.log")], engine)
        assert [f.events for f in report.files] == [("missing",), ("missing",)]
        assert report.samples == []


def test_log_specs_are_checked() -> None:
    assert LogSpec("/var/log/nginx/a.example.access.log").label == "a.example"
    assert LogSpec("/var/log/nginx/b.example.log", vhost="b.example").label == "b.example"
    assert LogSpec("/var/log/apache2/access.log").label == "access"
    for bad in ["relative.log", "/with space.log", "/tab\t.log", "/nl\n.log"]:
        with pytest.raises(ValueError):
            LogSpec(bad)
    with pytest.raises(ValueError, match="unknown log format"):
        LogSpec("/a.log", "json")
    with pytest.raises(ValueError, match="listed twice"):
        c._specs(["/a.log", LogSpec("/a.log")])
    server = Server(name="x", address="127.0.0.1")
    with pytest.raises(ValueError):
        c.state_path(server, "../evil")


def test_samples_merge_exactly() -> None:
    a = MinuteSample(
        "a.example", 60, 3, 300, status_2xx=2, status_5xx=1, response_ms=((5, 2), (150, 1))
    )
    b = MinuteSample("www.a.example", 60, 1, 50, status_3xx=1, response_ms=((5, 1),))
    d = MinuteSample("a.example", 120, 1, 10, status_4xx=1)
    merged = c.merge_samples([a, b, d], vhost="a.example")
    assert merged == [
        MinuteSample("a.example", 60, 4, 350, 0, 2, 1, 0, 1, ((5, 3), (150, 1))),
        MinuteSample("a.example", 120, 1, 10, 0, 0, 0, 1, 0, ()),
    ]
    assert (
        merged[0].p50_ms == 5.0
        and merged[0].p95_ms == (al.bucket_bounds(150)[0] + al.bucket_bounds(150)[1]) / 2
    )
    assert merged[1].p50_ms is None
    assert merged[0].start.isoformat() == "1970-01-01T00:01:00+00:00"


def test_parse_local_matches_the_truth(tmp_path: Path) -> None:
    lines, truth = generate("cockpit", 20000, seed=77)
    path = tmp_path / "a.log"
    path.write_bytes(as_bytes(lines))
    report = c.parse_local_report([str(path)], jobs=2, parallel_min=0)
    assert table(report.samples) == truth.minutes and report.malformed == truth.malformed
    assert table(c.parse_local(str(path), jobs=1)) == truth.minutes


async def test_parse_local_from_the_event_loop(tmp_path: Path) -> None:
    """Called from a thread of a running app: the pool must not fork a threaded process."""
    lines, truth = generate("vhost_combined", 5000, seed=78)
    path = tmp_path / "a.log"
    path.write_bytes(as_bytes(lines))
    samples = await c.parse_local_async(LogSpec(str(path), "vhost_combined"), jobs=2)
    assert table(samples) == truth.minutes
    report = await asyncio.to_thread(
        c.parse_local_report, [LogSpec(str(path), "vhost_combined")], jobs=2, parallel_min=0
    )
    assert table(report.samples) == truth.minutes

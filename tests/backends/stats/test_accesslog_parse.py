"""The aggregator's parsing, arithmetic and planning, on generated lines with known truth."""

from __future__ import annotations

import ast
import glob
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logtruth import Truth, as_bytes, generate

from cockpit.backends.stats import accesslog as al
from cockpit.backends.stats import formats
from cockpit.backends.stats.fallback import AWK_KERNEL

SOURCE = Path(al.__file__)
FMTS = ("cockpit", "vhost_combined", "combined")


def decoded(raw: al.Raw, fmt: str, label: str = "label.example") -> tuple[al.Totals, int]:
    totals: al.Totals = {}
    bad = al.Decoder().add(raw, fmt, label, totals)
    return totals, bad


def as_truth(totals: al.Totals) -> dict[tuple[str, int], list[int]]:
    return {k: [m.requests, m.bytes, *m.status] for k, m in totals.items()}


def check_against(truth: Truth, totals: al.Totals, malformed: int) -> None:
    assert malformed == truth.malformed
    assert as_truth(totals) == truth.minutes
    for key, m in totals.items():
        expected = Counter(al.rt_bucket(ms) for ms in truth.rt_ms.get(key, []))
        assert m.histogram == dict(expected), key


# -- exact totals ------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["nginx", "apache"])
@pytest.mark.parametrize("fmt", FMTS)
def test_generated_lines_give_exact_totals(fmt: str, style: str) -> None:
    lines, truth = generate(fmt, 20000, seed=len(fmt) * 7 + len(style), style=style)
    raw: al.Raw = {}
    bad = al.scan_lines(lines, fmt, raw)
    totals, later = decoded(raw, fmt)
    check_against(truth, totals, bad + later)
    assert truth.malformed > 100  # the garbage really was there


@pytest.mark.parametrize("fmt", FMTS)
def test_fast_path_agrees_with_the_careful_parser(fmt: str) -> None:
    """Every line the fast path takes, the regex path would have read the same way."""
    lines, _ = generate(fmt, 20000, seed=99, style="apache")
    fast: al.Raw = {}
    bad_fast = al.scan_lines(lines, fmt, fast)
    careful: al.Raw = {}
    bad_careful = al._slow(lines, fmt, careful)
    t_fast, later_fast = decoded(fast, fmt)
    t_careful, later_careful = decoded(careful, fmt)
    assert as_truth(t_fast) == as_truth(t_careful)
    assert bad_fast + later_fast == bad_careful + later_careful


def test_nginx_lines_from_the_wild() -> None:
    """Lines as nginx 1.22 wrote them for odd requests (captured from a real server)."""
    text = (
        b'_:28411 127.0.0.1 0.001 - [25/Nov/2026:22:20:37 +0000] "GET / HTTP/1.1" 400 309 "-" "-"\n'
        b'a\\x22b:28411 127.0.0.1 0.000 - [25/Nov/2026:22:20:37 +0000] "GET / HTTP/1.1" 200 145 "-" "-"\n'
        b'_:28411 127.0.0.1 0.001 - [25/Nov/2026:22:20:37 +0000] "GET /a b HTTP/1.1" 400 309 "-" "-"\n'
        b'x:28411 127.0.0.1 0.000 a b c [25/Nov/2026:22:20:37 +0000] "GET / HTTP/1.1" 200 145 "-" "a\\x22b\\x5Cc"\n'
        b'_:28411 127.0.0.1 0.000 - [25/Nov/2026:22:20:37 +0000] "GARBAGE" 400 309 "-" "-"\n'
        b'_:28411 127.0.0.1 0.000 - [25/Nov/2026:22:20:37 +0000] "\\x16\\x03\\x01\\x00" 400 309 "-" "-"\n'
        b'[::1]:28411 127.0.0.1 0.250 - [25/Nov/2026:22:20:37 +0000] "GET http://[::1]:99/ HTTP/1.1" 200 145 "-" "-"\n'
    )
    lines = text.split(b"\n")[:-1]
    raw: al.Raw = {}
    assert al.scan_lines(lines, "cockpit", raw) == 0
    totals, bad = decoded(raw, "cockpit")
    assert bad == 0
    minute = al.minute_of(b"[25/Nov/2026:22:20", b"+0000]")
    got = {v: (m.requests, m.bytes, m.status) for (v, _), m in totals.items()}
    assert got == {
        "_": (4, 309 * 4, [0, 0, 0, 4, 0]),
        "a\\x22b": (1, 145, [0, 1, 0, 0, 0]),
        "x": (1, 145, [0, 1, 0, 0, 0]),
        "[::1]": (1, 145, [0, 1, 0, 0, 0]),
    }
    assert {m for (_, m) in totals} == {minute}
    assert minute is not None and totals[("[::1]", minute)].histogram == {al.rt_bucket(250): 1}


# -- fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "ms"),
    [
        (b"0.005", 5),
        (b"1.5", 1500),
        (b"12.345", 12345),
        (b"1.2345", 1234),
        (b"12", 12),
        (b"0", 0),
        (b"-", None),
        (b"", None),
        (b"1.", None),
        (b".5", None),
        (b"abc", None),
        (b"1.x", None),
    ],
)
def test_response_time_field(raw: bytes, ms: int | None) -> None:
    assert al.parse_rt(raw) == ms


@pytest.mark.parametrize(
    ("token", "name"),
    [
        (b"site.example:443", "site.example"),
        (b"Site.Example", "site.example"),
        (b"[::1]:80", "[::1]"),
        (b"[::1]", "[::1]"),
        (b"::1", "::1"),
        (b"host:", "host:"),
        (b"host:http", "host:http"),
        (b"", ""),
    ],
)
def test_vhost_names(token: bytes, name: str) -> None:
    assert al.vhost_name(token) == name


@settings(max_examples=300, deadline=None)
@given(
    epoch=st.integers(min_value=0, max_value=4102444800),
    zone=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_minute_of_matches_the_calendar(epoch: int, zone: int) -> None:
    from logtruth import clf_time

    text = clf_time(epoch, zone).encode()  # [dd/Mon/yyyy:hh:mm:ss +hhmm]
    assert al.minute_of(text[:18], text[22:]) == epoch - epoch % 60


@pytest.mark.parametrize(
    "text",
    [
        b"[30/Feb/2024:00:00:00 +0000]",
        b"[29/Feb/2023:00:00:00 +0000]",
        b"[01/Foo/2024:00:00:00 +0000]",
        b"[01/Mar/2024:24:00:00 +0000]",
        b"[01/Mar/2024:00:60:00 +0000]",
        b"[01/Mar/2024:00:00:00 +2400]",
        b"[01/Mar/2024:00:00:00 +0060]",
        b"[01/Mar/2024:00:00:00 *0000]",
        b"[1/Mar/2024:00:00:00 +0000] ",
        b"[0x/Mar/2024:00:00:00 +0000]",
        b"[00/Mar/2024:00:00:00 +0000]",
        b"[01/Mar/0000:00:00:00 +0000]",
    ],
)
def test_minute_of_refuses_impossible_times(text: bytes) -> None:
    assert al.minute_of(text[:18], text[22:]) is None


def test_minute_of_leap_day_and_zones() -> None:
    assert al.minute_of(b"[29/Feb/2024:23:59", b"+0000]") == 1709251140
    assert al.minute_of(b"[01/Mar/2024:01:29", b"+0130]") == 1709251140
    assert al.minute_of(b"[29/Feb/2024:18:59", b"-0500]") == 1709251140


# -- histogram -------------------------------------------------------------------------------


def test_buckets_cover_every_millisecond_in_order() -> None:
    previous = -1
    for ms in [*range(0, 20000), *range(20000, 10**7, 997), 10**7 - 1]:
        b = al.rt_bucket(ms)
        low, high = al.bucket_bounds(b)
        assert low <= ms < high, (ms, b, low, high)
        assert b >= previous
        previous = b
        assert (high - low) / max(low, 1) <= 0.1 or high - low == 1
    assert al.rt_bucket(10**7 - 1) == al.HIST_BUCKETS - 1
    assert al.rt_bucket(10**9) == al.HIST_BUCKETS - 1
    assert al.rt_bucket(-5) == 0
    for i in range(al.HIST_BUCKETS):  # every bucket is reachable, bounds tile the range
        low, high = al.bucket_bounds(i)
        assert al.rt_bucket(low) == al.rt_bucket(high - 1) == i
        assert i == 0 or al.bucket_bounds(i - 1)[1] == low


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=600_000), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.95, 0.99, 0.01, 1.0]),
)
def test_percentiles_are_within_five_percent(values: list[int], q: float) -> None:
    hist = Counter(al.rt_bucket(v) for v in values)
    exact = sorted(values)[max(1, math.ceil(q * len(values))) - 1]  # nearest rank
    got = al.percentile(dict(hist), q)
    assert got is not None
    if exact < 100:
        assert got == exact
    else:
        assert abs(got - exact) <= 0.05 * exact + 0.5


def test_percentile_of_nothing() -> None:
    assert al.percentile({}, 0.5) is None


# -- byte ranges -------------------------------------------------------------------------------


def test_a_partial_last_line_waits(tmp_path: Path) -> None:
    lines, truth = generate("cockpit", 50, seed=3, garbage=0)
    data = as_bytes(lines)
    path = tmp_path / "log"
    path.write_bytes(data + lines[0][:30])
    fd = os.open(path, os.O_RDONLY)
    try:
        r = al.scan_range(fd, "cockpit", 0, path.stat().st_size)
    finally:
        os.close(fd)
    assert (r.lines, r.malformed, r.consumed) == (50, 0, len(data))
    check_against(truth, decoded(r.raw, "cockpit")[0], r.malformed)


def test_a_line_longer_than_a_block_is_malformed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(al, "BLOCK", 4096)
    lines, truth = generate("vhost_combined", 200, seed=4, garbage=0)
    data = as_bytes(lines[:100]) + b"x" * 10000 + b"\n" + as_bytes(lines[100:])
    path = tmp_path / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        r = al.scan_range(fd, "vhost_combined", 0, len(data))
    finally:
        os.close(fd)
    truth.bad()
    assert (r.lines, r.consumed) == (201, len(data))
    check_against(truth, decoded(r.raw, "vhost_combined")[0], r.malformed)


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_parallel_pieces_add_up_to_the_serial_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    monkeypatch.setattr(al, "BLOCK", 64 * 1024)  # many blocks per piece (forked workers see it)
    lines, truth = generate("cockpit", 30000, seed=5)
    data = as_bytes(lines) + b"partial"
    path = tmp_path / "log"
    path.write_bytes(data)
    st_ = path.stat()
    fd = os.open(path, os.O_RDONLY)
    try:
        seg = al.Segment(
            fd if method == "fork" else -1,
            str(path),
            st_.st_dev,
            st_.st_ino,
            "cockpit",
            0,
            len(data),
        )
        serial = al.scan_segments([seg], 1)[0]
        ctx = multiprocessing.get_context(method)
        parallel = al.scan_segments(
            [seg, seg._replace(start=len(data) // 2 - 1000)], 3, context=ctx, parallel_min=0
        )
    finally:
        os.close(fd)
    assert parallel[0].raw == serial.raw
    assert (parallel[0].lines, parallel[0].malformed, parallel[0].consumed) == (
        serial.lines,
        serial.malformed,
        serial.consumed,
    )
    assert serial.consumed == len(data) - len(b"partial")
    totals, later = decoded(serial.raw, "cockpit")
    check_against(truth, totals, serial.malformed + later)
    # the second segment starts mid-file: at a line start (it was planned there) or not,
    # it still ends where the first does
    assert parallel[1].consumed == serial.consumed


def test_line_cuts_fall_on_line_starts(tmp_path: Path) -> None:
    lines, _ = generate("combined", 3000, seed=6, garbage=0)
    data = as_bytes(lines)
    path = tmp_path / "log"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        cuts = al._line_starts(fd, 0, len(data), 7)
    finally:
        os.close(fd)
    assert cuts[0] == 0 and cuts[-1] == len(data) and cuts == sorted(set(cuts))
    assert all(data[c - 1 : c] == b"\n" for c in cuts[1:-1])
    assert len(cuts) == 8


# -- the awk kernel: the same sums -------------------------------------------------------------


def awk_raw(awk: str, fmt: str, data: bytes, tmp_path: Path) -> tuple[al.Raw, list[int]]:
    path = tmp_path / "awk-input"
    path.write_bytes(data)
    out = subprocess.run(
        [awk, "-v", f"fmt={fmt}", "-v", f"total={len(data)}", "-v", "seg=7", AWK_KERNEL, str(path)],
        capture_output=True,
        check=True,
        env={"LC_ALL": "C", "PATH": os.defpath},
    )
    raw: al.Raw = {}
    end: list[int] = []
    for line in out.stdout.split(b"\n"):
        f = line.split(b"\t")
        if f[0] == b"K":
            assert f[1] == b"7"
            raw[tuple(f[2:-2])] = [int(f[-2]), int(f[-1])]
        elif f[0] == b"E":
            end = [int(x) for x in f[2:]]
    return raw, end


@pytest.mark.parametrize("awk", ["mawk", "gawk"])
@pytest.mark.parametrize("style", ["nginx", "apache"])
@pytest.mark.parametrize("fmt", FMTS)
def test_the_awk_kernel_finds_the_same_sums(awk: str, fmt: str, style: str, tmp_path: Path) -> None:
    if shutil.which(awk) is None:
        pytest.fail(f"{awk} is missing: scripts/test installs it (TEST_PACKAGES in scripts/lib.sh)")
    lines, truth = generate(fmt, 5000, seed=11, style=style)
    data = as_bytes(lines) + b"a partial line"
    raw, end = awk_raw(awk, fmt, data, tmp_path)
    fd = os.open(tmp_path / "awk-input", os.O_RDONLY)
    try:
        py = al.scan_range(fd, fmt, 0, len(data))
    finally:
        os.close(fd)
    assert raw == py.raw
    assert end == [py.lines, py.malformed, py.consumed] == [len(lines), end[1], len(data) - 14]
    check_against(truth, decoded(raw, fmt)[0], end[1] + decoded(raw, fmt)[1])


@pytest.mark.parametrize("awk", ["mawk", "gawk"])
def test_the_awk_kernel_drops_a_partial_last_line_that_was_malformed(
    awk: str, tmp_path: Path
) -> None:
    raw, end = awk_raw(awk, "cockpit", b"garbage\nmore garbage", tmp_path)
    assert raw == {} and end == [1, 1, 8]
    raw, end = awk_raw(awk, "cockpit", b"", tmp_path)
    assert raw == {} and end == [0, 0, 0]


# -- the program is self-contained, stdlib only, Python 3.9 -------------------------------------


def test_the_program_parses_as_python_3_9() -> None:
    ast.parse(SOURCE.read_text(), feature_version=(3, 9))


def test_the_program_imports_only_the_standard_library() -> None:
    tree = ast.parse(SOURCE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            names.add((node.module or "").split(".")[0])
    assert names - {"__future__"} <= set(sys.stdlib_module_names), names


def _pythons() -> list[str]:
    """A Python 3.9 when one is installed (the oldest the program supports), and the
    system's python3 (what Debian servers run it with)."""
    old = sorted(
        glob.glob("/root/.pyenv/versions/3.9*/bin/python3") + glob.glob("/usr/bin/python3.9")
    )
    return old[:1] + [p for p in ["/usr/bin/python3"] if os.path.exists(p)]


@pytest.mark.parametrize("python", _pythons())
def test_the_program_runs_alone_under_old_and_system_pythons(python: str, tmp_path: Path) -> None:
    program = tmp_path / "cockpit-accesslog.py"
    shutil.copy(SOURCE, program)  # outside the package: nothing of Cockpit importable
    lines, truth = generate("cockpit", 3000, seed=12)
    log = tmp_path / "a.log"
    log.write_bytes(as_bytes(lines))
    out = subprocess.run(
        [
            python,
            "-I",
            str(program),
            "--whole",
            "--jobs",
            "2",
            "--parallel-min",
            "0",
            "--log",
            "cockpit",
            "x",
            str(log),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    recs = [json.loads(line) for line in out.stdout.splitlines()]
    end = recs[-1]
    assert end["t"] == "end" and end["lines"] == 3000 and end["malformed"] == truth.malformed
    got = {
        (r["vhost"], r["minute"]): [r["requests"], r["bytes"], *r["status"]]
        for r in recs
        if r["t"] == "minute"
    }
    assert got == truth.minutes


def test_formats_module_and_program_agree() -> None:
    assert formats.FORMATS == al.FORMATS
    assert formats.NGINX_LOG_FORMAT.startswith(
        "log_format cockpit '$host:$server_port $remote_addr $request_time "
    )
    assert (
        formats.nginx_access_log("/var/log/nginx/a.access.log")
        == "access_log /var/log/nginx/a.access.log cockpit;"
    )


# -- planning ----------------------------------------------------------------------------------


def obs(ino: int, size: int, head: bytes = b"first line\n", path: str = "/l/a.log") -> al.FileObs:
    return al.FileObs(path, 1, ino, size, head[: al.FP_LEN])


def entry(
    ino: int, off: int, head: bytes = b"first line\n", retired: tuple[al.Track, ...] = ()
) -> al.Entry:
    return al.Entry(al.Track(1, ino, off, head[: al.FP_LEN]), retired)


def starts(p: al.Plan) -> list[tuple[str, int, int]]:
    return [(s.obs.path, s.obs.ino, s.start) for s in p.segments]


NOW = 1_800_000_000.0


def test_plan_new_appended_unchanged() -> None:
    none: list[al.FileObs] = []
    p = al.plan(None, obs(5, 100), lambda: none, NOW)
    assert (starts(p), p.events) == ([("/l/a.log", 5, 0)], ["new"])
    p = al.plan(entry(5, 60), obs(5, 100), lambda: none, NOW)
    assert (starts(p), p.events) == ([("/l/a.log", 5, 60)], ["appended"])
    p = al.plan(entry(5, 100), obs(5, 100), lambda: none, NOW)
    assert p.events == ["unchanged"]


def test_plan_truncated_and_replaced() -> None:
    p = al.plan(entry(5, 60), obs(5, 20), list, NOW)
    assert (starts(p), p.events) == ([("/l/a.log", 5, 0)], ["truncated"])
    p = al.plan(entry(5, 60), obs(5, 500, b"another first line"), list, NOW)
    assert (starts(p), p.events) == ([("/l/a.log", 5, 0)], ["replaced"])


def test_plan_rotation_finishes_the_old_file_by_inode() -> None:
    rotated = obs(5, 90, path="/l/a.log.1")
    decoy = obs(9, 900, path="/l/a.log.2")
    called = []

    def candidates() -> list[al.FileObs]:
        called.append(1)
        return [decoy, rotated]

    p = al.plan(entry(5, 60), obs(6, 10, b"new file"), candidates, NOW)
    assert starts(p) == [("/l/a.log.1", 5, 60), ("/l/a.log", 6, 0)]
    assert p.events == ["rotated:/l/a.log.1"]
    assert p.segments[0].since == NOW and p.segments[1].since == 0.0
    assert called == [1]
    nxt = al.next_entry(p.segments, [90, 10])
    assert nxt is not None and nxt.cur == al.Track(1, 6, 10, b"new file")
    assert nxt.retired == (al.Track(1, 5, 90, b"first line\n", NOW),)
    # the retired file keeps being read while it grows (nginx not reopened yet)…
    p2 = al.plan(nxt, obs(6, 10, b"new file"), lambda: [obs(5, 120, path="/l/a.log.1")], NOW + 60)
    assert starts(p2) == [("/l/a.log.1", 5, 90), ("/l/a.log", 6, 10)]
    assert p2.events == ["retired:/l/a.log.1", "unchanged"]
    # …until it is gone (compressed), or too old
    p3 = al.plan(nxt, obs(6, 10, b"new file"), lambda: [], NOW + 120)
    assert starts(p3) == [("/l/a.log", 6, 10)]
    p4 = al.plan(
        nxt,
        obs(6, 10, b"new file"),
        lambda: [obs(5, 120, path="/l/a.log.1")],
        NOW + al.RETIRED_MAX_AGE + 1,
    )
    assert starts(p4) == [("/l/a.log", 6, 10)]


def test_plan_rotation_with_the_old_file_gone_or_not_ours() -> None:
    p = al.plan(entry(5, 60), obs(6, 10), list, NOW)
    assert (starts(p), p.events) == ([("/l/a.log", 6, 0)], ["rotated:lost-rest"])
    # same inode number, other content (inode reused): not the file we were reading
    p = al.plan(entry(5, 60), obs(6, 10), lambda: [obs(5, 90, b"other", "/l/a.log.1")], NOW)
    assert p.events == ["rotated:lost-rest"]
    # our file, but shorter than what we read: not trustworthy either
    p = al.plan(entry(5, 60), obs(6, 10), lambda: [obs(5, 30, path="/l/a.log.1")], NOW)
    assert p.events == ["rotated:lost-rest"]


def test_plan_missing_file() -> None:
    p = al.plan(entry(5, 60), None, lambda: [obs(5, 70, path="/l/a.log-20250301")], NOW)
    assert (starts(p), p.events) == ([("/l/a.log-20250301", 5, 60)], ["rotated:/l/a.log-20250301"])
    nxt = al.next_entry(p.segments, [70])
    assert nxt is not None and nxt.cur is None and len(nxt.retired) == 1
    p = al.plan(nxt, obs(8, 5, b"fresh"), lambda: [obs(5, 70, path="/l/a.log-20250301")], NOW + 60)
    assert starts(p) == [("/l/a.log-20250301", 5, 70), ("/l/a.log", 8, 0)]
    assert p.events == ["new"]
    assert al.plan(None, None, list, NOW).events == ["missing"]
    assert al.plan(entry(5, 60), None, list, NOW).events == ["missing:lost-rest"]
    assert al.next_entry([], []) is None


def test_rotation_candidates(tmp_path: Path) -> None:
    for name in [
        "a.log",
        "a.log.1",
        "a.log.2.gz",
        "a.log-20250301",
        "a.log-20250302.xz",
        "a.logger",
        "b.log.1",
    ]:
        (tmp_path / name).write_text("x")
    found = [Path(p).name for p in al.rotation_candidates(str(tmp_path / "a.log"))]
    assert found == ["a.log-20250301", "a.log.1"]


def test_state_round_trips_through_json() -> None:
    state = al.State(7, {"/l/a.log": entry(5, 60, retired=(al.Track(1, 4, 10, b"\x00\xff", NOW),))})
    text = state.dumps()
    assert text.startswith('{"version": 1, "gen": 7, ')  # the awk commit reads it so
    assert al.State.from_json(json.loads(text)) == state

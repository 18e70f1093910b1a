"""Cockpit's access-log aggregator: per vhost, per minute, only totals leave the server.

This module is two things at once:

* a **self-contained program** (Python >= 3.9, standard library only, no import from
  Cockpit) that Cockpit uploads to ``<server root>/lib/cockpit-accesslog-<hash>.py`` and
  runs there as root, niced (see :mod:`cockpit.backends.stats.collect`);
* the **library** Cockpit itself imports to parse logs in-process (``parse_local``) and
  to turn the awk fallback's raw sums into the same records.

Keep it that way: stdlib imports only, syntax a Python 3.9 parser accepts (the tests
check both, and run it under 3.9 when one is installed).

Formats (see :mod:`cockpit.backends.stats.formats` for the server-side lines):

``cockpit``        ``$host:$server_port $remote_addr $request_time $remote_user [$time_local]
                   "$request" $status $bytes_sent "$http_referer" "$http_user_agent"`` —
                   Apache's vhost_combined with the response time in the identd slot
                   (seconds with a decimal point, nginx; or whole milliseconds, Apache's
                   ``%{ms}T``).
``vhost_combined`` the same without response time (identd field ignored).
``combined``       ``$remote_addr - $remote_user [$time_local] "$request" $status
                   $body_bytes_sent "$http_referer" "$http_user_agent"``: no vhost field;
                   each file's lines go to the vhost label given with it.

Parsing. A line is split on single spaces (``bytes.split``, no regex): a fast path that
is exact whenever the request's opening quote is the 7th token and its closing quote the
9th, which the checks below enforce (nginx escapes ``"`` inside values as ``\\x22``,
Apache as ``\\"``; a token ending in ``\\"`` is refused). Anything else — spaces in the
user or the request, an escaped quote, ``-`` for the size — goes to a careful regex; a
line that fails it too is counted as *malformed* and never stops the run. Sums are kept
per raw key (vhost token, minute text, zone, status[, response time]) and only turned into
numbers once per distinct key, at the end.

Response times go into a fixed histogram of 550 buckets: whole milliseconds below 100 ms,
then two significant digits (100–109 ms, 110–119 ms, …, 1.0–1.1 s, …, up to 10^7 ms).
Histograms of minutes add up exactly; a percentile read from one is the bucket's
midpoint, within 5 % of the true value (exact below 100 ms).

Incremental state (``--state FILE``, JSON): per log path the (device, inode, offset) read
so far and a fingerprint (its first 64 bytes). On each run:

* same inode, fingerprint intact, size >= offset: read [offset, size);
* same inode, size < offset (``copytruncate``, ``: > log``): read from 0;
* same inode but a different fingerprint (truncated and rewritten, inode reused): from 0;
* a new inode (rotated): the old inode is looked for among the rotation candidates in the
  directory (``access.log.1``, ``access.log-20250301``…, not compressed ones); if found,
  its rest is read from the old offset, and it stays *retired*-tracked (its new lines
  too, e.g. written between ``mv`` and ``nginx -s reopen``) until it disappears or 3 days
  pass; the new file is read from 0. If the old file is gone (already compressed), the
  unread rest is lost and the file report says so.

Only complete lines are consumed; a partial last line waits for the next run. New
offsets are written as a *pending* state with a token; ``--commit TOKEN`` makes it the
state (a compare-and-swap on the state's generation, under the state's flock), so a
collector that lost the output simply runs again and gets the same lines again.

Parallelism: the byte ranges to read are cut at line boundaries into pieces, which a
``fork`` pool of ``--jobs`` processes (default: every CPU this process may use) scans;
ranges under 16 MB are read in one process. Output: JSON lines on stdout (``minute``,
``file`` and a final ``end`` record), a few hundred bytes per vhost and minute.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

PROGRAM_VERSION = 1
FORMATS = ("cockpit", "vhost_combined", "combined")
BLOCK = 8 << 20  # bytes read and split at once
PARALLEL_MIN = 16 << 20  # less than this to read: one process
FP_LEN = 64  # fingerprint: the first bytes of a file
RETIRED_MAX_AGE = 3 * 86400.0
LOCK_TIMEOUT = 120.0
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".lzma", ".Z", ".zip", ".br")
EXIT_USAGE, EXIT_COMMIT, EXIT_LOCK = 2, 5, 6  # (the launcher checks python >= 3.9)

# A raw key: the undecoded fields of a line, per format (see _scan_*).
RawKey = tuple[bytes, ...]
Raw = dict[RawKey, list[int]]  # key -> [lines, bytes]

# ---------------------------------------------------------------------------------------
# Response-time histogram
# ---------------------------------------------------------------------------------------

HIST_BUCKETS = 550
_POW10 = (1, 10, 100, 1000, 10000, 100000, 1000000)


def rt_bucket(ms: int) -> int:
    """The histogram bucket of a response time in whole milliseconds."""
    if ms < 100:
        return ms if ms > 0 else 0
    e = len(str(ms)) - 2  # ms has e + 2 digits
    if e > 5:
        return HIST_BUCKETS - 1
    return 100 + (e - 1) * 90 + ms // _POW10[e] - 10


def bucket_bounds(index: int) -> tuple[int, int]:
    """[low, high) milliseconds of a bucket."""
    if index < 100:
        return index, index + 1
    e, lead = divmod(index - 100, 90)
    scale = _POW10[min(e + 1, 6)]
    return (lead + 10) * scale, (lead + 11) * scale


def percentile(histogram: dict[int, int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in milliseconds: the midpoint of the bucket holding the
    rank ``ceil(q * n)`` (exact for buckets one millisecond wide), None when empty."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(q * total - 1e-9))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            low, high = bucket_bounds(index)
            return float(low) if high - low == 1 else (low + high) / 2.0
    return None  # pragma: no cover - rank <= total


def parse_rt(raw: bytes) -> int | None:
    """Milliseconds from ``0.123`` (seconds, nginx) or ``123`` (milliseconds, Apache)."""
    if b"." in raw:
        whole, _, frac = raw.partition(b".")
        if not whole.isdigit() or not frac.isdigit():
            return None
        return int(whole) * 1000 + int((frac + b"000")[:3])
    if raw.isdigit():
        return int(raw)
    return None


# ---------------------------------------------------------------------------------------
# The scanners: a list of lines -> raw sums; refused lines go to `slow`
# ---------------------------------------------------------------------------------------


def _scan_vhost(lines: list[bytes], agg: Raw, slow: list[bytes]) -> None:
    get = agg.get
    for line in lines:
        p = line.split(b" ", 11)
        try:
            if p[6][0] != 34 or p[8][-1] != 34 or p[8][-2] == 92 or not p[10].isdigit():
                slow.append(line)
                continue
        except IndexError:
            slow.append(line)
            continue
        size = int(p[10])
        key = (p[0], p[4][:-3], p[5], p[9])
        entry = get(key)
        if entry is None:
            agg[key] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size


def _scan_cockpit(lines: list[bytes], agg: Raw, slow: list[bytes]) -> None:
    get = agg.get
    for line in lines:
        p = line.split(b" ", 11)
        try:
            if p[6][0] != 34 or p[8][-1] != 34 or p[8][-2] == 92 or not p[10].isdigit():
                slow.append(line)
                continue
        except IndexError:
            slow.append(line)
            continue
        size = int(p[10])
        key = (p[0], p[4][:-3], p[5], p[9], p[2])
        entry = get(key)
        if entry is None:
            agg[key] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size


def _scan_combined(lines: list[bytes], agg: Raw, slow: list[bytes]) -> None:
    get = agg.get
    for line in lines:
        p = line.split(b" ", 10)
        try:
            if p[5][0] != 34 or p[7][-1] != 34 or p[7][-2] == 92 or not p[9].isdigit():
                slow.append(line)
                continue
        except IndexError:
            slow.append(line)
            continue
        size = int(p[9])
        key = (p[3][:-3], p[4], p[8])
        entry = get(key)
        if entry is None:
            agg[key] = [1, size]
        else:
            entry[0] += 1
            entry[1] += size


_TIME = rb"(\[\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d):\d\d ([+-]\d{4}\]) "
_REQUEST = rb'"(?:[^"\\]|\\.)*" (\d{3}) (\d+|-)(?=\s|\Z)'
# vhost formats: host, ip, identd (or response time), user (may hold spaces), time, request…
_SLOW_VHOST = re.compile(rb"(\S*) \S* (\S*) .*? " + _TIME + _REQUEST, re.S)
_SLOW_COMBINED = re.compile(rb"\S* \S* .*? " + _TIME + _REQUEST, re.S)


def _slow(lines: Iterable[bytes], fmt: str, agg: Raw) -> int:
    """Parse the lines the fast path refused; returns how many are malformed."""
    bad = 0
    combined = fmt == "combined"
    pattern = _SLOW_COMBINED if combined else _SLOW_VHOST
    for line in lines:
        m = pattern.match(line)
        if m is None:
            bad += 1
            continue
        g = m.groups()
        if combined:
            key: RawKey = (g[0], g[1], g[2])
            size = g[3]
        elif fmt == "cockpit":
            key = (g[0], g[2], g[3], g[4], g[1])
            size = g[5]
        else:
            key = (g[0], g[2], g[3], g[4])
            size = g[5]
        n = 0 if size == b"-" else int(size)
        entry = agg.get(key)
        if entry is None:
            agg[key] = [1, n]
        else:
            entry[0] += 1
            entry[1] += n
    return bad


_SCANNERS: dict[str, Callable[[list[bytes], Raw, list[bytes]], None]] = {
    "cockpit": _scan_cockpit,
    "vhost_combined": _scan_vhost,
    "combined": _scan_combined,
}


def scan_lines(lines: list[bytes], fmt: str, agg: Raw) -> int:
    """Add complete lines (without their newline) to ``agg``; returns the malformed count."""
    slow: list[bytes] = []
    _SCANNERS[fmt](lines, agg, slow)
    return _slow(slow, fmt, agg) if slow else 0


def merge_raw(into: Raw, other: Raw) -> None:
    get = into.get
    for key, value in other.items():
        entry = get(key)
        if entry is None:
            into[key] = value
        else:
            entry[0] += value[0]
            entry[1] += value[1]


def _find_newline(fd: int, pos: int, end: int) -> int:
    """Offset of the first newline in [pos, end) of ``fd``, or -1."""
    while pos < end:
        buf = os.pread(fd, min(1 << 20, end - pos), pos)
        if not buf:
            return -1
        i = buf.find(b"\n")
        if i >= 0:
            return pos + i
        pos += len(buf)
    return -1


class RangeResult(NamedTuple):
    raw: Raw
    lines: int
    malformed: int
    consumed: int  # the offset after the last complete line read


def scan_range(fd: int, fmt: str, start: int, end: int) -> RangeResult:
    """Aggregate the complete lines in [start, end) of ``fd`` (``start`` begins a line)."""
    agg: Raw = {}
    collecting = gc.isenabled()
    gc.disable()  # millions of short-lived tuples, no cycles: the collector only costs here
    try:
        return _scan_blocks(fd, fmt, start, end, agg)
    finally:
        if collecting:
            gc.enable()


def _scan_blocks(fd: int, fmt: str, start: int, end: int, agg: Raw) -> RangeResult:
    nlines = bad = 0
    pos = start
    while pos < end:
        want = min(BLOCK, end - pos)
        buf = os.pread(fd, want, pos)
        if not buf:
            break
        last = buf.rfind(b"\n")
        if last < 0:
            if len(buf) < BLOCK:
                break  # a partial last line: it waits for the next run
            newline = _find_newline(fd, pos + len(buf), end)  # a line longer than BLOCK
            if newline < 0:
                break
            nlines += 1
            bad += 1
            pos = newline + 1
            continue
        lines = buf.split(b"\n")
        lines.pop()  # what follows the last newline
        nlines += len(lines)
        bad += scan_lines(lines, fmt, agg)
        pos += last + 1
    return RangeResult(agg, nlines, bad, pos)


# ---------------------------------------------------------------------------------------
# Raw sums -> records
# ---------------------------------------------------------------------------------------

_MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def minute_of(tmin: bytes, zone: bytes) -> int | None:
    """UTC epoch seconds of the minute ``[dd/Mon/yyyy:hh:mm`` in zone ``+hhmm]``, or None."""
    if len(tmin) != 18 or len(zone) != 6 or tmin[:1] != b"[" or zone[5:] != b"]":
        return None
    if tmin[3:4] != b"/" or tmin[7:8] != b"/" or tmin[12:13] != b":" or tmin[15:16] != b":":
        return None
    month = _MONTHS.get(tmin[4:7])
    digits = tmin[1:3] + tmin[8:12] + tmin[13:15] + tmin[16:18] + zone[1:5]
    if month is None or zone[:1] not in (b"+", b"-") or not digits.isdigit():
        return None
    day, year, hour, minute = int(tmin[1:3]), int(tmin[8:12]), int(tmin[13:15]), int(tmin[16:18])
    zh, zm = int(zone[1:3]), int(zone[3:5])
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if year < 1 or not 1 <= day <= _MDAYS[month - 1] + (month == 2 and leap):
        return None
    if hour > 23 or minute > 59 or zh > 23 or zm > 59:
        return None
    offset = (zh * 60 + zm) * 60
    if zone[:1] == b"-":
        offset = -offset
    return (_days(year, month, day) * 24 + hour) * 3600 + minute * 60 - offset


_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days(y: int, m: int, d: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (no calendar/locale import:
    the program starts every minute on every server)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def vhost_name(token: bytes) -> str:
    """``site.example:443`` -> ``site.example`` (``[::1]:80`` -> ``[::1]``), lower case."""
    host, sep, port = token.rpartition(b":")
    if sep and port.isdigit() and (b":" not in host or host.endswith(b"]")):
        token = host
    return token.decode("utf-8", "replace").lower()


class Minute:
    """Totals of one vhost in one minute."""

    __slots__ = ("bytes", "histogram", "requests", "status")

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.status = [0, 0, 0, 0, 0]  # 1xx..5xx; other codes count only in requests
        self.histogram: dict[int, int] = {}

    def add(self, other: Minute) -> None:
        self.requests += other.requests
        self.bytes += other.bytes
        for i in range(5):
            self.status[i] += other.status[i]
        for b, n in other.histogram.items():
            self.histogram[b] = self.histogram.get(b, 0) + n

    def record(self, vhost: str, minute: int) -> dict[str, Any]:
        return {
            "t": "minute",
            "vhost": vhost,
            "minute": minute,
            "requests": self.requests,
            "bytes": self.bytes,
            "status": list(self.status),
            "rt": [[b, self.histogram[b]] for b in sorted(self.histogram)],
            "p50": percentile(self.histogram, 0.50),
            "p95": percentile(self.histogram, 0.95),
        }


Totals = dict[tuple[str, int], Minute]


class Decoder:
    """Turns raw keys into (vhost, minute, status class, bucket), caching each field."""

    def __init__(self) -> None:
        self.minutes: dict[tuple[bytes, bytes], int | None] = {}
        self.vhosts: dict[bytes, str] = {}
        self.buckets: dict[bytes, int | None] = {}

    def add(self, raw: Raw, fmt: str, label: str, into: Totals) -> int:
        """Add ``raw`` sums to ``into``; returns the lines found malformed now (a bad time
        or status: the fields were where they belong, their values are not valid)."""
        bad = 0
        minutes, vhosts, buckets = self.minutes, self.vhosts, self.buckets
        for key, (n, size) in raw.items():
            if fmt == "combined":
                vhost = label
                tmin, zone, status = key[0], key[1], key[2]
            else:
                token = key[0]
                vhost = vhosts.get(token) or vhosts.setdefault(token, vhost_name(token) or label)
                tmin, zone, status = key[1], key[2], key[3]
            mkey = (tmin, zone)
            if mkey in minutes:
                minute = minutes[mkey]
            else:
                minute = minutes[mkey] = minute_of(tmin, zone)
            if minute is None or len(status) != 3 or not status.isdigit():
                bad += n
                continue
            slot = into.get((vhost, minute))
            if slot is None:
                slot = into[(vhost, minute)] = Minute()
            slot.requests += n
            slot.bytes += size
            klass = status[0] - 49  # b"1" -> 0
            if 0 <= klass < 5:
                slot.status[klass] += n
            if fmt == "cockpit":
                rt = key[4]
                if rt in buckets:
                    bucket = buckets[rt]
                else:
                    ms = parse_rt(rt)
                    bucket = buckets[rt] = None if ms is None else rt_bucket(ms)
                if bucket is not None:
                    slot.histogram[bucket] = slot.histogram.get(bucket, 0) + n
        return bad


# ---------------------------------------------------------------------------------------
# Parallel scanning of byte ranges
# ---------------------------------------------------------------------------------------


class Segment(NamedTuple):
    """A byte range of one open file to aggregate."""

    fd: int  # -1: open ``path`` (and check its inode) in the worker
    path: str
    dev: int
    ino: int
    fmt: str
    start: int
    end: int


class _Piece(NamedTuple):
    segment: int
    fd: int
    path: str
    dev: int
    ino: int
    fmt: str
    start: int
    end: int


def _piece_worker(piece: _Piece) -> tuple[int, int, RangeResult]:
    fd = piece.fd
    if fd >= 0:
        return piece.segment, piece.start, scan_range(fd, piece.fmt, piece.start, piece.end)
    fd = os.open(piece.path, os.O_RDONLY)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (piece.dev, piece.ino):
            raise OSError(errno.ESTALE, "the file was replaced while being read", piece.path)
        return piece.segment, piece.start, scan_range(fd, piece.fmt, piece.start, piece.end)
    finally:
        os.close(fd)


def _line_starts(fd: int, start: int, end: int, parts: int) -> list[int]:
    """``parts`` + 1 offsets from ``start`` to ``end``, the inner ones at line starts."""
    cuts = [start]
    step = (end - start) // parts
    for i in range(1, parts):
        newline = _find_newline(fd, start + i * step - 1, end)
        if newline < 0 or newline + 1 >= end:
            break
        if newline + 1 > cuts[-1]:
            cuts.append(newline + 1)
    cuts.append(end)
    return cuts


def cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def scan_segments(
    segments: Sequence[Segment],
    jobs: int,
    *,
    context: Any = None,
    parallel_min: int = PARALLEL_MIN,
) -> list[RangeResult]:
    """Scan each segment, in ``jobs`` processes when there is enough to read.

    ``context`` is a multiprocessing context (default ``fork``, which lets the workers
    read through the already open descriptors); with another one, segments need
    ``fd == -1`` and the workers open the path again (checking the inode)."""
    total = sum(max(0, s.end - s.start) for s in segments)
    results: list[RangeResult | None] = [None] * len(segments)
    if jobs <= 1 or total < parallel_min:
        for i, s in enumerate(segments):
            results[i] = _piece_worker(_Piece(i, *s))[2]
        return [r for r in results if r is not None]
    target = max(1 << 20, total // (jobs * 4))
    pieces: list[_Piece] = []
    for i, s in enumerate(segments):
        size = s.end - s.start
        parts = max(1, min(size // target, 1024))
        if parts > 1:
            fd = s.fd if s.fd >= 0 else os.open(s.path, os.O_RDONLY)
            try:
                cuts = _line_starts(fd, s.start, s.end, parts)
            finally:
                if s.fd < 0:
                    os.close(fd)
        else:
            cuts = [s.start, s.end]
        for a, b in zip(cuts, cuts[1:]):  # noqa: B905, RUF007 (Python 3.9)
            pieces.append(_Piece(i, s.fd, s.path, s.dev, s.ino, s.fmt, a, b))
    if len(pieces) == len(segments) and sum(1 for p in pieces if p.end > p.start) <= 1:
        return [_piece_worker(p)[2] for p in pieces]  # nothing to share out
    pieces.sort(key=lambda p: p.start - p.end)  # biggest first
    if context is None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
    partial: list[dict[int, RangeResult]] = [{} for _ in segments]
    with context.Pool(min(jobs, len(pieces))) as pool:
        for seg, start, result in pool.imap_unordered(_piece_worker, pieces):
            partial[seg][start] = result
    out = []
    for i, s in enumerate(segments):
        parts_done = partial[i]
        if not parts_done:
            out.append(RangeResult({}, 0, 0, s.start))
            continue
        raw: Raw = {}
        nlines = bad = 0
        for start in sorted(parts_done):
            r = parts_done[start]
            merge_raw(raw, r.raw)
            nlines += r.lines
            bad += r.malformed
        out.append(RangeResult(raw, nlines, bad, parts_done[max(parts_done)].consumed))
    return out


# ---------------------------------------------------------------------------------------
# Incremental state
# ---------------------------------------------------------------------------------------


class Track(NamedTuple):
    """How far one file (an inode) has been read."""

    dev: int
    ino: int
    off: int
    fp: bytes  # its first bytes when last seen
    since: float = 0.0  # when it was retired (rotated away), 0 for the current file

    def to_json(self) -> dict[str, Any]:
        return {
            "dev": self.dev,
            "ino": self.ino,
            "off": self.off,
            "fp": self.fp.hex(),
            "since": self.since,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Track:
        return cls(
            int(d["dev"]),
            int(d["ino"]),
            int(d["off"]),
            bytes.fromhex(d["fp"]),
            float(d.get("since", 0)),
        )


class Entry(NamedTuple):
    """What the state remembers about one log path."""

    cur: Track | None
    retired: tuple[Track, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "cur": None if self.cur is None else self.cur.to_json(),
            "retired": [t.to_json() for t in self.retired],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        cur = d.get("cur")
        return cls(
            None if cur is None else Track.from_json(cur),
            tuple(Track.from_json(t) for t in d.get("retired", ())),
        )


class State(NamedTuple):
    gen: int
    files: dict[str, Entry]

    def to_json(self) -> dict[str, Any]:
        # "version" and "gen" first: the awk fallback's commit reads "gen" with sed.
        return {
            "version": 1,
            "gen": self.gen,
            "files": {p: e.to_json() for p, e in sorted(self.files.items())},
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> State:
        if d.get("version") != 1:
            raise ValueError(f"unknown state version {d.get('version')!r}")
        return cls(int(d["gen"]), {p: Entry.from_json(e) for p, e in d.get("files", {}).items()})

    def dumps(self) -> str:
        return json.dumps(self.to_json(), separators=(", ", ": "))


EMPTY_STATE = State(0, {})


class FileObs(NamedTuple):
    """A regular file as seen now."""

    path: str
    dev: int
    ino: int
    size: int
    head: bytes  # its first FP_LEN bytes
    fd: int = -1


def fp_matches(head: bytes, fp: bytes) -> bool:
    return len(head) >= len(fp) and head[: len(fp)] == fp


class Planned(NamedTuple):
    obs: FileObs
    start: int
    since: float  # 0: the current file; else retired since


class Plan(NamedTuple):
    segments: list[Planned]
    events: list[str]


def plan(
    entry: Entry | None,
    obs: FileObs | None,
    candidates: Callable[[], Sequence[FileObs]],
    now: float,
) -> Plan:
    """What to read of one log path, from what the state remembers and what is there now.

    ``candidates()`` lists the rotation candidates next to the path (called only when a
    rotated file must be found). Pure: the same function plans for both engines."""
    segs: list[Planned] = []
    events: list[str] = []
    found: list[FileObs] | None = None
    taken: set[tuple[int, int]] = set()

    def locate(track: Track) -> FileObs | None:
        nonlocal found
        if found is None:
            found = list(candidates())
        for c in found:
            if (c.dev, c.ino) == (track.dev, track.ino) and fp_matches(c.head, track.fp):
                return c if c.size >= track.off else None
        return None

    cur = entry.cur if entry is not None else None
    for track in entry.retired if entry is not None else ():
        if now - track.since > RETIRED_MAX_AGE or (track.dev, track.ino) in taken:
            continue
        if obs is not None and (obs.dev, obs.ino) == (track.dev, track.ino):
            continue  # it came back under the live name: followed as the current file
        old = locate(track)
        if old is not None:
            segs.append(Planned(old, track.off, track.since))
            taken.add((track.dev, track.ino))
            if old.size > track.off:
                events.append(f"retired:{old.path}")
    if obs is None:
        if cur is not None:
            old = locate(cur)
            if old is not None and (old.dev, old.ino) not in taken:
                segs.append(Planned(old, cur.off, now))
                events.append(f"rotated:{old.path}")
            else:
                events.append("missing:lost-rest")
        else:
            events.append("missing")
        return Plan(segs, events)
    if cur is None:
        events.append("new")
        start = 0
    elif (obs.dev, obs.ino) == (cur.dev, cur.ino):
        if obs.size < cur.off:
            events.append("truncated")
            start = 0
        elif not fp_matches(obs.head, cur.fp):
            events.append("replaced")  # emptied and written past our offset, or inode reused
            start = 0
        else:
            events.append("appended" if obs.size > cur.off else "unchanged")
            start = cur.off
    else:
        old = locate(cur)
        if old is not None and (old.dev, old.ino) not in taken:
            segs.append(Planned(old, cur.off, now))
            events.append(f"rotated:{old.path}")
        else:
            events.append("rotated:lost-rest")
        start = 0
    segs.append(Planned(obs, start, 0.0))
    return Plan(segs, events)


def next_entry(planned: Sequence[Planned], consumed: Sequence[int]) -> Entry | None:
    """The state entry after reading ``planned`` up to ``consumed``."""
    cur: Track | None = None
    retired: list[Track] = []
    for p, off in zip(planned, consumed):  # noqa: B905 (Python 3.9 has no strict=)
        track = Track(p.obs.dev, p.obs.ino, off, p.obs.head[:FP_LEN], p.since)
        if p.since:
            retired.append(track)
        else:
            cur = track
    if cur is None and not retired:
        return None
    return Entry(cur, tuple(retired))


def rotation_candidates(path: str) -> list[str]:
    """Files next to ``path`` a rotation may have renamed it to (not compressed ones)."""
    directory, base = os.path.split(path)
    try:
        names = os.listdir(directory or ".")
    except OSError:
        return []
    out = []
    for name in names:
        if (
            len(name) > len(base)
            and name.startswith(base)
            and name[len(base)] in ".-"
            and not name.endswith(COMPRESSED)
        ):
            out.append(os.path.join(directory, name))
    return sorted(out)


def open_obs(path: str) -> FileObs | None:
    """Open a regular file and describe it (None if it is missing or not a file)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None
        return FileObs(path, st.st_dev, st.st_ino, st.st_size, os.pread(fd, FP_LEN, 0), fd)
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------------------
# A whole run
# ---------------------------------------------------------------------------------------


class LogSpec(NamedTuple):
    fmt: str
    label: str  # the vhost of lines without one (format "combined")
    path: str


class FileReport(NamedTuple):
    path: str
    events: list[str]
    read: int  # bytes consumed
    lines: int
    malformed: int
    offset: int | None  # where the current file is now read to
    error: str = ""

    def record(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "t": "file",
            "path": self.path,
            "events": self.events,
            "read": self.read,
        }
        d.update(lines=self.lines, malformed=self.malformed, offset=self.offset)
        if self.error:
            d["error"] = self.error
        return d


class RunResult(NamedTuple):
    totals: Totals
    files: list[FileReport]
    state: State
    bytes: int
    lines: int
    malformed: int


def aggregate(
    specs: Sequence[LogSpec],
    state: State,
    *,
    jobs: int,
    now: float | None = None,
    context: Any = None,
    parallel_min: int = PARALLEL_MIN,
    whole: bool = False,
) -> RunResult:
    """Read what is new in each log (everything with ``whole``) and sum it up.

    Returns the totals, a report per file and the next state (generation unchanged)."""
    now = time.time() if now is None else now
    opened: list[int] = []
    try:
        plans: list[tuple[LogSpec, Plan, str]] = []
        for spec in specs:
            error = ""
            try:
                obs = open_obs(spec.path)
                if obs is not None:
                    opened.append(obs.fd)

                def candidates(path: str = spec.path) -> list[FileObs]:
                    out = []
                    for c in rotation_candidates(path):
                        o = open_obs(c)
                        if o is not None:
                            opened.append(o.fd)
                            out.append(o)
                    return out

                if whole:
                    p = Plan([Planned(obs, 0, 0.0)] if obs else [], ["whole" if obs else "missing"])
                else:
                    p = plan(state.files.get(spec.path), obs, candidates, now)
            except OSError as exc:
                p, error = Plan([], ["error"]), f"{exc.strerror or exc}"
            plans.append((spec, p, error))
        # Workers that are not forked cannot use our descriptors: they reopen the path.
        reopen = context is not None and context.get_start_method() != "fork"
        segments = [
            Segment(
                -1 if reopen else pl.obs.fd,
                pl.obs.path,
                pl.obs.dev,
                pl.obs.ino,
                spec.fmt,
                pl.start,
                pl.obs.size,
            )
            for spec, p, _ in plans
            for pl in p.segments
        ]
        results = scan_segments(segments, jobs, context=context, parallel_min=parallel_min)
    finally:
        for fd in opened:
            with contextlib.suppress(OSError):
                os.close(fd)
    totals: Totals = {}
    decoder = Decoder()
    files: dict[str, Entry] = dict(state.files)
    reports = []
    k = 0
    for spec, p, error in plans:
        mine = results[k : k + len(p.segments)]
        k += len(p.segments)
        read = sum(r.consumed - pl.start for r, pl in zip(mine, p.segments))  # noqa: B905 (Python 3.9)
        nlines = sum(r.lines for r in mine)
        bad = sum(r.malformed for r in mine)
        for r in mine:
            bad += decoder.add(r.raw, spec.fmt, spec.label, totals)
        if not error:
            entry = next_entry(p.segments, [r.consumed for r in mine])
            if entry is None:
                files.pop(spec.path, None)
            else:
                files[spec.path] = entry
        cur = files.get(spec.path)
        offset = cur.cur.off if cur is not None and cur.cur is not None and not error else None
        reports.append(FileReport(spec.path, p.events, read, nlines, bad, offset, error))
    requested = {s.path for s in specs}
    for path in list(files):
        if path not in requested and not os.path.exists(path):
            del files[path]  # a log nobody asks about any more, and gone
    return RunResult(
        totals,
        reports,
        State(state.gen, files),
        sum(r.read for r in reports),
        sum(r.lines for r in reports),
        sum(r.malformed for r in reports),
    )


def records(totals: Totals) -> list[dict[str, Any]]:
    return [totals[key].record(*key) for key in sorted(totals)]


# ---------------------------------------------------------------------------------------
# State files: pending + commit, under a lock
# ---------------------------------------------------------------------------------------


def _write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_state(path: str) -> tuple[State, str]:
    """The committed state (empty when missing); a corrupt file is set aside, with a note."""
    try:
        with open(path, encoding="utf-8") as f:
            return State.from_json(json.load(f)), ""
    except FileNotFoundError:
        return EMPTY_STATE, ""
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        aside = f"{path}.corrupt-{int(time.time())}"
        os.replace(path, aside)
        return EMPTY_STATE, f"unreadable state moved to {aside}: {exc}"


class Locked:
    """An exclusive flock on ``<state>.lock`` (the awk fallback's commit takes the same)."""

    def __init__(self, state_path: str, timeout: float = LOCK_TIMEOUT) -> None:
        self.path = state_path + ".lock"
        self.timeout = timeout
        self.fd = -1

    def __enter__(self) -> Locked:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(self.fd)
                    raise TimeoutError(f"{self.path} is held by another run") from exc
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def commit(state_path: str, token: str) -> tuple[bool, str, int]:
    """Make the pending state of run ``token`` the state (if nothing committed since)."""
    pending_path = state_path + ".pending"
    try:
        with open(pending_path, encoding="utf-8") as f:
            pending = json.load(f)
    except FileNotFoundError:
        return False, "no pending state (superseded by a later run?)", -1
    if pending.get("token") != token:
        return False, "the pending state belongs to another run", -1
    current, _ = load_state(state_path)
    if current.gen != pending["base_gen"]:
        return False, f"the state moved on (generation {current.gen})", current.gen
    new = State.from_json(pending["state"])._replace(gen=current.gen + 1)
    _write_atomic(state_path, new.dumps() + "\n")
    os.unlink(pending_path)
    return True, "", new.gen


# ---------------------------------------------------------------------------------------
# The program
# ---------------------------------------------------------------------------------------


def _emit(record: dict[str, Any], out: Any) -> None:
    out.write(json.dumps(record, separators=(",", ":")) + "\n")


def main(argv: Sequence[str] | None = None, out: Any = None) -> int:
    import argparse

    out = sys.stdout if out is None else out
    ap = argparse.ArgumentParser(
        prog="cockpit-accesslog", description="per-vhost, per-minute access log totals"
    )
    ap.add_argument("--state", help="the state file (incremental runs)")
    ap.add_argument("--whole", action="store_true", help="read whole files, no state")
    ap.add_argument(
        "--commit", metavar="TOKEN", help="commit the pending state of run TOKEN and exit"
    )
    ap.add_argument("--autocommit", action="store_true", help="commit at once (no second step)")
    ap.add_argument("--jobs", type=int, default=0, help="processes (default: every usable CPU)")
    ap.add_argument("--parallel-min", type=int, default=PARALLEL_MIN, help=argparse.SUPPRESS)
    ap.add_argument("--now", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--log", nargs=3, action="append", default=[], metavar=("FORMAT", "VHOST", "PATH")
    )
    a = ap.parse_args(argv)
    if a.commit:
        if not a.state:
            ap.error("--commit needs --state")
        with Locked(a.state):
            ok, why, gen = commit(a.state, a.commit)
        _emit({"t": "commit", "ok": ok, "token": a.commit, "gen": gen, "reason": why}, out)
        return 0 if ok else EXIT_COMMIT
    if not a.whole and not a.state:
        ap.error("give --state FILE, or --whole")
    specs = []
    for fmt, label, path in a.log:
        if fmt not in FORMATS:
            ap.error(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
        specs.append(LogSpec(fmt, label, path))
    jobs = a.jobs if a.jobs > 0 else cpu_count()
    started = time.perf_counter()
    token = os.urandom(8).hex()
    if a.whole:
        result = aggregate(specs, EMPTY_STATE, jobs=jobs, parallel_min=a.parallel_min, whole=True)
        note = ""
    else:
        with Locked(a.state):
            state, note = load_state(a.state)
            result = aggregate(specs, state, jobs=jobs, now=a.now, parallel_min=a.parallel_min)
            pending = {"token": token, "base_gen": state.gen, "state": result.state.to_json()}
            _write_atomic(a.state + ".pending", json.dumps(pending) + "\n")
            if a.autocommit:
                commit(a.state, token)
    for rec in records(result.totals):
        _emit(rec, out)
    for report in result.files:
        _emit(report.record(), out)
    end = {"t": "end", "engine": "python", "version": PROGRAM_VERSION, "token": token}
    end.update(python=sys.version.split()[0], jobs=jobs, bytes=result.bytes, lines=result.lines)
    end.update(malformed=result.malformed, seconds=round(time.perf_counter() - started, 3))
    end.update(committed=bool(a.autocommit and not a.whole), note=note)
    _emit(end, out)
    out.flush()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except TimeoutError as exc:
        sys.stdout.write(json.dumps({"t": "error", "error": str(exc)}) + "\n")
        sys.exit(EXIT_LOCK)
    except BrokenPipeError:  # pragma: no cover - the reader went away
        sys.exit(1)

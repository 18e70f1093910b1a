"""Access-log statistics, the local side: run the aggregator on a server, read its totals.

    samples = await collect_access_logs(transport, server, ["/var/log/nginx/a.example.access.log"])

The aggregator (:mod:`~cockpit.backends.stats.accesslog`) is uploaded once to
``<server root>/lib/cockpit-accesslog-<hash>.py`` (atomically, mode 0644; a new Cockpit
version has a new hash, and older copies are removed then) and run there as root under
``nice``, with its state in ``<server root>/state/accesslog-<name>.json``. Only totals come
back: one JSON line per vhost and minute.

A collection is two steps: the *run* reads what is new and leaves the next offsets as a
pending state; the *commit* (done here once the output has been read in full) makes them
the state. A collection that fails between the two — a dropped connection, a timeout — is
simply repeated: the next run reads the same lines again. A commit that reports "moved on"
means another collector committed in between; this one's samples are discarded (raised
as :class:`AccessLogError`), so nothing is counted twice.

Servers without python3 >= 3.9 get the awk fallback (:mod:`~cockpit.backends.stats.fallback`):
the same plan and the same totals, in three round trips and one process.

:func:`parse_local` runs the same aggregator in this process (whole files, no state), on
every core.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

from cockpit.backends.stats import accesslog as _al
from cockpit.backends.stats import fallback
from cockpit.backends.stats.formats import COCKPIT, FORMATS
from cockpit.backends.transport import Result, Transport, TransportError
from cockpit.model import Server

#: The program text uploaded to servers, and its version tag.
PROGRAM: Final = Path(_al.__file__).read_bytes()
PROGRAM_HASH: Final = hashlib.sha256(PROGRAM).hexdigest()[:16]

_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_UNSAFE_PATH_RE: Final = re.compile(r"[\x00-\x20\x7f]")
_NO_PYTHON, _UPLOAD = 64, 65

Engine = Literal["auto", "python", "awk"]


class AccessLogError(Exception):
    """The aggregation did not complete (its output, if any, must not be used)."""


@dataclass(frozen=True, slots=True)
class LogSpec:
    """One log to read: its path, its format, and (format ``combined``, whose lines name
    no vhost) the vhost its lines belong to — by default the file name without
    ``.access.log`` / ``.log``."""

    path: str
    format: str = COCKPIT
    vhost: str = ""

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or _UNSAFE_PATH_RE.search(self.path):
            raise ValueError(
                f"a log path must be absolute, without spaces or controls: {self.path!r}"
            )
        if self.format not in FORMATS:
            raise ValueError(f"unknown log format {self.format!r}; known: {', '.join(FORMATS)}")
        if _UNSAFE_PATH_RE.search(self.vhost):
            raise ValueError(f"a vhost label has no spaces or controls: {self.vhost!r}")

    @property
    def label(self) -> str:
        if self.vhost:
            return self.vhost
        name = self.path.rsplit("/", 1)[-1]
        for suffix in (".access.log", "_access.log", "-access.log", ".log"):
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name


@dataclass(frozen=True, slots=True)
class MinuteSample:
    """What one vhost served in one minute."""

    vhost: str
    minute: int  # UTC epoch seconds of the minute's start
    requests: int
    bytes_sent: int
    status_1xx: int = 0
    status_2xx: int = 0
    status_3xx: int = 0
    status_4xx: int = 0
    status_5xx: int = 0
    #: Response times: (bucket, count) pairs of the fixed histogram (see
    #: :func:`~cockpit.backends.stats.accesslog.bucket_bounds`); empty without timings.
    response_ms: tuple[tuple[int, int], ...] = ()

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.minute, UTC)

    @property
    def histogram(self) -> dict[int, int]:
        return dict(self.response_ms)

    @property
    def p50_ms(self) -> float | None:
        return _al.percentile(self.histogram, 0.50)

    @property
    def p95_ms(self) -> float | None:
        return _al.percentile(self.histogram, 0.95)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> MinuteSample:
        s = [int(x) for x in rec["status"]]
        return cls(
            vhost=str(rec["vhost"]),
            minute=int(rec["minute"]),
            requests=int(rec["requests"]),
            bytes_sent=int(rec["bytes"]),
            status_1xx=s[0],
            status_2xx=s[1],
            status_3xx=s[2],
            status_4xx=s[3],
            status_5xx=s[4],
            response_ms=tuple((int(b), int(n)) for b, n in rec.get("rt", ())),
        )


def merge_samples(
    samples: Iterable[MinuteSample], *, vhost: str | None = None
) -> list[MinuteSample]:
    """Sum samples per (vhost, minute) — or per minute under one ``vhost`` name (a site
    and its aliases, a client's sites): histograms add up exactly."""
    acc: dict[tuple[str, int], _al.Minute] = {}
    for s in samples:
        key = (vhost if vhost is not None else s.vhost, s.minute)
        m = acc.get(key)
        if m is None:
            m = acc[key] = _al.Minute()
        m.requests += s.requests
        m.bytes += s.bytes_sent
        for i, n in enumerate(
            (s.status_1xx, s.status_2xx, s.status_3xx, s.status_4xx, s.status_5xx)
        ):
            m.status[i] += n
        for b, n in s.response_ms:
            m.histogram[b] = m.histogram.get(b, 0) + n
    return [MinuteSample.from_record(acc[k].record(*k)) for k in sorted(acc)]


@dataclass(frozen=True, slots=True)
class FileReport:
    """What one run did with one log path."""

    path: str
    events: tuple[str, ...]  # new, appended, unchanged, truncated, replaced, rotated:PATH,
    #                          rotated:lost-rest, retired:PATH, missing[:lost-rest], error
    read: int  # bytes consumed
    lines: int
    malformed: int
    offset: int | None
    error: str = ""

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> FileReport:
        return cls(
            path=str(rec["path"]),
            events=tuple(str(e) for e in rec["events"]),
            read=int(rec["read"]),
            lines=int(rec["lines"]),
            malformed=int(rec["malformed"]),
            offset=None if rec.get("offset") is None else int(rec["offset"]),
            error=str(rec.get("error", "")),
        )


@dataclass(frozen=True, slots=True)
class AccessLogReport:
    samples: list[MinuteSample]
    files: list[FileReport]
    engine: str  # "python" or the awk used ("mawk", "gawk", "awk")
    bytes: int
    lines: int
    malformed: int
    seconds: float
    committed: bool
    token: str = ""
    notes: tuple[str, ...] = field(default=())


def state_path(server: Server, name: str = "default") -> str:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"a state name is [a-z0-9_-], up to 64 characters: {name!r}")
    return f"{server.root}/state/accesslog-{name}.json"


def program_path(server: Server) -> str:
    return f"{server.root}/lib/cockpit-accesslog-{PROGRAM_HASH}.py"


def _specs(paths: Sequence[str | LogSpec]) -> list[LogSpec]:
    out = [p if isinstance(p, LogSpec) else LogSpec(p) for p in paths]
    if len({s.path for s in out}) != len(out):
        raise ValueError("a log path is listed twice")
    return out


# -- the python engine ---------------------------------------------------------------------

#: Args: ROOT PROGRAM NICE ARGS... Runs the uploaded program, or says what is missing.
_LAUNCH: Final = f"""
root=$1 prog=$2 nice_level=$3
shift 3
if ! command -v python3 >/dev/null 2>&1 ||
   ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    echo "cockpit-accesslog: no python3 >= 3.9"
    exit {_NO_PYTHON}
fi
[ -d "$root/state" ] || mkdir -p -m 700 -- "$root/state" || exit 1
if [ ! -f "$prog" ]; then
    mkdir -p -m 755 -- "$root/lib" || exit 1
    for old in "$root"/lib/cockpit-accesslog-*.py; do
        [ -f "$old" ] && rm -f -- "$old"
    done
    echo "cockpit-accesslog: upload needed"
    exit {_UPLOAD}
fi
exec nice -n "$nice_level" python3 -I "$prog" "$@"
"""


def _error(what: str, result: Result) -> AccessLogError:
    detail = " ".join([*result.stderr[-5:], *result.stdout[-2:]])[:800]
    outcome = "an unknown outcome" if result.unknown else f"exit {result.exit_code}"
    return AccessLogError(
        f"{what}: {outcome}{': ' + result.reason if result.reason else ''} {detail}".strip()
    )


def _json_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise AccessLogError(f"the aggregator printed a broken line: {line[:200]!r}") from exc
        if isinstance(rec, dict):
            out.append(rec)
    return out


async def _run_python(
    transport: Transport,
    server: Server,
    args: list[str],
    *,
    nice: int,
    sudo: bool,
    timeout: float | None,
) -> Result | None:
    """The program's run, uploading it first if needed; None when python3 is missing."""
    prog = program_path(server)
    launch = [server.root, prog, str(nice), *args]
    result = await transport.run_script(_LAUNCH, launch, sudo=sudo, capture=True, timeout=timeout)
    if result.exit_code == _UPLOAD:
        try:
            await transport.upload(PROGRAM, prog, mode=0o644, sudo=sudo)
        except TransportError as exc:
            raise AccessLogError(f"cannot upload the aggregator to {prog}: {exc}") from exc
        result = await transport.run_script(
            _LAUNCH, launch, sudo=sudo, capture=True, timeout=timeout
        )
    return None if result.exit_code == _NO_PYTHON else result


async def _python_engine(
    transport: Transport,
    server: Server,
    specs: list[LogSpec],
    state: str,
    *,
    commit: bool,
    jobs: int | None,
    nice: int,
    sudo: bool,
    timeout: float | None,
) -> AccessLogReport | None:
    args = ["--state", state]
    if jobs:
        args += ["--jobs", str(jobs)]
    for s in specs:
        args += ["--log", s.format, s.label, s.path]
    result = await _run_python(transport, server, args, nice=nice, sudo=sudo, timeout=timeout)
    if result is None:
        return None
    if not result.ok:
        raise _error("the access-log aggregator failed", result)
    recs = _json_lines(result.stdout)
    end = next((r for r in recs if r.get("t") == "end"), None)
    if end is None:
        raise AccessLogError("the aggregator's output ended early (no end record)")
    token = str(end["token"])
    committed = False
    if commit:
        done = await _run_python(
            transport,
            server,
            ["--state", state, "--commit", token],
            nice=nice,
            sudo=sudo,
            timeout=timeout,
        )
        if done is None or not done.ok:
            reason = ""
            if done is not None:
                reason = next(
                    (
                        str(r.get("reason"))
                        for r in _json_lines(done.stdout)
                        if r.get("t") == "commit"
                    ),
                    "",
                )
            raise AccessLogError(
                f"the new offsets were not committed ({reason or 'no answer'}); samples discarded"
            )
        committed = True
    return AccessLogReport(
        samples=[MinuteSample.from_record(r) for r in recs if r.get("t") == "minute"],
        files=[FileReport.from_record(r) for r in recs if r.get("t") == "file"],
        engine="python",
        bytes=int(end["bytes"]),
        lines=int(end["lines"]),
        malformed=int(end["malformed"]),
        seconds=float(end["seconds"]),
        committed=committed,
        token=token,
        notes=(str(end["note"]),) if end.get("note") else (),
    )


# -- the awk engine ------------------------------------------------------------------------


def _obs_line(parts: list[str]) -> _al.FileObs | None:
    _, dev, ino, size, path, head = parts
    if dev == "-":
        return None
    return _al.FileObs(path, int(dev), int(ino), int(size), bytes.fromhex(head))


async def _awk_engine(
    transport: Transport,
    server: Server,
    specs: list[LogSpec],
    state: str,
    *,
    commit: bool,
    nice: int,
    sudo: bool,
    timeout: float | None,
) -> AccessLogReport:
    started = time.perf_counter()
    now = time.time()
    seen = await transport.run_script(
        fallback.OBSERVE,
        [state, *(s.path for s in specs)],
        sudo=sudo,
        capture=True,
        timeout=timeout,
    )
    if not seen.ok:
        raise _error("cannot look at the logs", seen)
    current = _al.EMPTY_STATE
    state_b64: list[str] = []
    observed: dict[str, _al.FileObs | None] = {}
    candidates: dict[str, list[_al.FileObs]] = {s.path: [] for s in specs}
    last = ""
    for line in seen.stdout:
        parts = line.split("\t")
        if parts[0] == "S" and len(parts) == 2:
            state_b64.append(parts[1])
        elif parts[0] == "P" and len(parts) == 6:
            last = parts[4]
            observed[last] = _obs_line(parts)
        elif parts[0] == "C" and len(parts) == 6 and last in candidates:
            obs = _obs_line(parts)
            if obs is not None:
                candidates[last].append(obs)
    if state_b64:
        try:
            current = _al.State.from_json(json.loads(base64.b64decode("".join(state_b64))))
        except (ValueError, KeyError, TypeError) as exc:
            raise AccessLogError(f"the state file {state} is unreadable: {exc}") from exc
    plans = []
    for s in specs:
        found = candidates[s.path]

        def listed(found: list[_al.FileObs] = found) -> list[_al.FileObs]:
            return found

        plans.append(_al.plan(current.files.get(s.path), observed.get(s.path), listed, now))
    args = [str(nice)]
    segments: list[tuple[LogSpec, _al.Planned]] = []
    for s, p in zip(specs, plans, strict=True):
        for planned in p.segments:
            o = planned.obs
            args += [
                str(len(segments)),
                s.format,
                o.path,
                str(o.dev),
                str(o.ino),
                str(planned.start),
                str(o.size),
            ]
            segments.append((s, planned))
    scanned = await transport.run_script(
        fallback.SCAN, args, sudo=sudo, capture=True, timeout=timeout
    )
    if not scanned.ok:
        raise _error("the awk aggregation failed", scanned)
    raw: list[_al.Raw] = [{} for _ in segments]
    ends: dict[int, tuple[int, int, int]] = {}
    failed: dict[int, str] = {}
    awk = "awk"
    for line in scanned.stdout:
        parts = line.split("\t")
        kind = parts[0]
        if kind == "K" and len(parts) >= 5:
            seg = int(parts[1])
            key = tuple(p.encode("utf-8") for p in parts[2:-2])
            raw[seg][key] = [int(parts[-2]), int(parts[-1])]
        elif kind == "E" and len(parts) == 5:
            ends[int(parts[1])] = (int(parts[2]), int(parts[3]), int(parts[4]))
        elif kind == "X" and len(parts) == 3:
            failed[int(parts[1])] = parts[2]
        elif kind == "A" and len(parts) == 2:
            awk = parts[1]
    key_len = {"cockpit": 5, "vhost_combined": 4, "combined": 3}
    decoder = _al.Decoder()
    totals: _al.Totals = {}
    files = dict(current.files)
    reports = []
    k = 0
    for s, p in zip(specs, plans, strict=True):
        consumed, nlines, bad, read, errors = [], 0, 0, 0, []
        for planned in p.segments:
            if k in ends:
                n, m, used = ends[k]
                odd = {key: v for key, v in raw[k].items() if len(key) != key_len[s.format]}
                for key, v in odd.items():  # a field held a tab: not a line we can trust
                    del raw[k][key]
                    m += v[0]
                nlines += n
                bad += m + decoder.add(raw[k], s.format, s.label, totals)
                consumed.append(planned.start + used)
                read += used
            else:
                errors.append(f"{planned.obs.path}: {failed.get(k, 'no result')}")
                consumed.append(planned.start)
            k += 1
        entry = _al.next_entry(p.segments, consumed)
        if errors:
            pass  # keep the old entry: the next run tries again
        elif entry is None:
            files.pop(s.path, None)
        else:
            files[s.path] = entry
        e = files.get(s.path)
        offset = e.cur.off if e is not None and e.cur is not None and not errors else None
        reports.append(
            FileReport(s.path, tuple(p.events), read, nlines, bad, offset, "; ".join(errors))
        )
    new_state = _al.State(current.gen + 1, files)
    token = os.urandom(8).hex()
    committed = False
    if commit:
        tmp = f"{state}.new-{token}"
        try:
            await transport.upload((new_state.dumps() + "\n").encode(), tmp, mode=0o600, sudo=sudo)
        except TransportError as exc:
            raise AccessLogError(f"cannot upload the new state: {exc}") from exc
        done = await transport.run_script(
            fallback.COMMIT,
            [state, tmp, str(current.gen)],
            sudo=sudo,
            capture=True,
            timeout=timeout,
        )
        if not done.ok:
            raise AccessLogError(
                f"the new offsets were not committed ({' '.join(done.stdout)[:200] or 'no answer'}); samples discarded"
            )
        committed = True
    return AccessLogReport(
        samples=[MinuteSample.from_record(r) for r in _al.records(totals)],
        files=reports,
        engine=awk,
        bytes=sum(r.read for r in reports),
        lines=sum(r.lines for r in reports),
        malformed=sum(r.malformed for r in reports),
        seconds=round(time.perf_counter() - started, 3),
        committed=committed,
        token=token,
    )


# -- the API ---------------------------------------------------------------------------------


async def collect_access_log_report(
    transport: Transport,
    server: Server,
    paths: Sequence[str | LogSpec],
    *,
    name: str = "default",
    engine: Engine = "auto",
    commit: bool = True,
    jobs: int | None = None,
    nice: int = 10,
    sudo: bool = True,
    timeout: float | None = 600.0,
) -> AccessLogReport:
    """Read what is new in ``paths`` on ``server`` and return its per-minute totals.

    ``name`` picks the state (one per independent collector). ``engine`` "auto" runs the
    Python program, or the awk fallback when the server has no python3 >= 3.9.
    ``commit=False`` leaves the offsets where they were (a dry run: the next run sees
    the same lines). ``jobs`` caps the processes on the server (default: every CPU).
    Raises :class:`AccessLogError` when the run or its commit failed."""
    specs = _specs(paths)
    state = state_path(server, name)
    if not 0 <= nice <= 19:
        raise ValueError("nice is 0 to 19")
    if engine != "awk":
        report = await _python_engine(
            transport,
            server,
            specs,
            state,
            commit=commit,
            jobs=jobs,
            nice=nice,
            sudo=sudo,
            timeout=timeout,
        )
        if report is not None:
            return report
        if engine == "python":
            raise AccessLogError(f"{server.name} has no python3 >= 3.9")
    return await _awk_engine(
        transport, server, specs, state, commit=commit, nice=nice, sudo=sudo, timeout=timeout
    )


async def collect_access_logs(
    transport: Transport,
    server: Server,
    paths: Sequence[str | LogSpec],
    **options: Any,
) -> list[MinuteSample]:
    """The samples of :func:`collect_access_log_report` (same options)."""
    return (await collect_access_log_report(transport, server, paths, **options)).samples


# -- in this process -------------------------------------------------------------------------


def _context() -> Any:
    import multiprocessing

    # fork shares the open descriptors and needs no re-import; a process with other
    # threads (an asyncio app's executor) forks only from a clean server process.
    method = "fork" if threading.active_count() == 1 else "forkserver"
    return multiprocessing.get_context(method)


def parse_local_report(
    paths: Sequence[str | LogSpec], *, jobs: int | None = None, parallel_min: int = _al.PARALLEL_MIN
) -> AccessLogReport:
    """Aggregate whole local files in this process, on ``jobs`` processes (default all)."""
    specs = _specs(paths)
    started = time.perf_counter()
    result = _al.aggregate(
        [_al.LogSpec(s.format, s.label, s.path) for s in specs],
        _al.EMPTY_STATE,
        jobs=jobs or _al.cpu_count(),
        context=_context(),
        parallel_min=parallel_min,
        whole=True,
    )
    return AccessLogReport(
        samples=[MinuteSample.from_record(r) for r in _al.records(result.totals)],
        files=[FileReport.from_record(f.record()) for f in result.files],
        engine="python",
        bytes=result.bytes,
        lines=result.lines,
        malformed=result.malformed,
        seconds=round(time.perf_counter() - started, 3),
        committed=False,
    )


def parse_local(
    path: str | LogSpec, *, format: str = COCKPIT, vhost: str = "", jobs: int | None = None
) -> list[MinuteSample]:
    """Per-vhost, per-minute totals of a whole local log file (every core)."""
    spec = path if isinstance(path, LogSpec) else LogSpec(str(path), format, vhost)
    return parse_local_report([spec], jobs=jobs).samples


async def parse_local_async(path: str | LogSpec, **options: Any) -> list[MinuteSample]:
    """:func:`parse_local` off the event loop."""
    return await asyncio.to_thread(parse_local, path, **options)

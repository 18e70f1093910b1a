"""Access-log aggregation: Cockpit's aggregator against its peers, in one run, on one file.

    python -m bench accesslog --no-write          # through the harness (1 GiB log)
    python -m bench.accesslog --size-mb 256 --repeat 2

A generated ``vhost_combined`` log (12 vhosts with Zipf-like popularity, ~100 requests a
second, the shape of the issue's peer bench) is written to /tmp, read once so the page
cache holds it, and deleted at the end. Each tool computes per-vhost sums over the whole
file; every figure is from this run:

* ``wc -l``: the floor (no parsing at all);
* mawk and gawk running Cockpit's awk kernel (``fallback.AWK_KERNEL``): the *same* sums as
  Cockpit (per vhost and minute: requests, bytes, 1xx–5xx), and the issue's simpler
  per-vhost-bytes program, to relate to the issue's figures;
* goaccess (Debian's package, installed with apt-get when missing and run as root) on a
  slice, as the issue's peer bench did (it slows down as it grows);
* Cockpit's aggregator as a server runs it: ``python3 -I cockpit-accesslog.py`` (the
  uploaded program, Debian's python3), a fresh state, every core, then one process —
  whole process, state file, JSON out; and in-process (``parse_local``), which is how
  Cockpit parses a log it has locally.

MB = 10^6 bytes. Wall times are the best of ``repeat`` runs (median in brackets); "MB per
CPU-s" divides by the user+system time of the process and its children, which the other
loads on a shared machine disturb less than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.report import Section, table  # noqa: E402
from cockpit.backends.stats import accesslog as al  # noqa: E402
from cockpit.backends.stats import collect  # noqa: E402
from cockpit.backends.stats.fallback import AWK_KERNEL  # noqa: E402

SIZE_MB = int(os.environ.get("COCKPIT_BENCH_ACCESSLOG_MB", "1024"))  # MiB of log
REPEAT = 3
GOACCESS_SLICE_MB = 100
GOACCESS_VHOSTS_SLICE_MB = 50
# The issue's peer program: bandwidth and hits per vhost only.
ISSUE_AWK = (
    '{ i = index($1, ":"); v = substr($1, 1, i - 1); h[v]++; if ($11 != "-") b[v] += $11 } '
    'END { for (v in b) printf "%s\\t%d\\t%.0f\\n", v, h[v], b[v] }'
)
GOACCESS_PANELS = [
    "VISITORS",
    "REQUESTS",
    "REQUESTS_STATIC",
    "NOT_FOUND",
    "HOSTS",
    "OS",
    "BROWSERS",
    "VISIT_TIMES",
    "REFERRERS",
    "REFERRING_SITES",
    "KEYPHRASES",
    "STATUS_CODES",
    "REMOTE_USER",
    "CACHE_STATUS",
    "GEO_LOCATION",
    "MIME_TYPE",
    "TLS_TYPE",
]


# ---------------------------------------------------------------------------------------
# The log
# ---------------------------------------------------------------------------------------

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "curl/8.5.0",
    "python-requests/2.31.0",
)


def generate(path: Path, size_mb: int, *, seed: int = 1, vhosts: int = 12) -> int:
    """Write ~``size_mb`` MiB of ``vhost_combined`` lines; returns the number of lines."""
    rnd = random.Random(seed)
    hosts = [f"site{i}.example.org:{rnd.choice((80, 443, 443, 443))}" for i in range(1, vhosts + 1)]
    weights = [1.0 / i for i in range(1, vhosts + 1)]  # Zipf-like
    ips = [".".join(str(rnd.randint(1, 254)) for _ in range(4)) for _ in range(20000)]
    words = [
        "index",
        "about",
        "blog",
        "post",
        "img",
        "static",
        "assets",
        "api",
        "v1",
        "user",
        "cart",
        "search",
        "feed",
        "wp-content",
        "uploads",
        "2024",
        "2025",
        "news",
        "docs",
        "login",
    ]
    suffixes = [
        "",
        ".html",
        ".php",
        ".css",
        ".js",
        ".png",
        ".jpg",
        ".webp",
        ".svg",
        ".json",
        ".woff2",
    ]
    paths = []
    for _ in range(8000):
        p = "/" + "/".join(rnd.choices(words, k=rnd.randint(1, 4))) + rnd.choice(suffixes)
        paths.append(
            p
            + (
                f"?id={rnd.randint(1, 99999)}&page={rnd.randint(1, 50)}"
                if rnd.random() < 0.2
                else ""
            )
        )
    requests = [
        f"{m} {p} {v}"
        for m, p, v in zip(
            rnd.choices(["GET"] * 90 + ["POST"] * 7 + ["HEAD"] * 2 + ["PUT"], k=8000),
            paths,
            rnd.choices(["HTTP/1.1"] * 6 + ["HTTP/2.0"] * 3 + ["HTTP/1.0"], k=8000),
            strict=True,
        )
    ]
    statuses = [200] * 80 + [304] * 8 + [301] * 3 + [302] * 2 + [404] * 5 + [500, 403]
    referers = (
        ["-"] * 5
        + [f"https://{h.split(':')[0]}/{rnd.choice(words)}" for h in hosts]
        + ["https://www.google.com/", "https://duckduckgo.com/"]
    )
    start = 1740787200  # 2025-03-01 00:00 UTC
    target = size_mb << 20
    written = lines = 0
    batch = 50000
    with open(path, "w", encoding="ascii", buffering=1 << 22) as out:
        while written < target:
            h = rnd.choices(hosts, weights=weights, k=batch)
            ip = rnd.choices(ips, k=batch)
            rq = rnd.choices(requests, k=batch)
            st = rnd.choices(statuses, k=batch)
            rf = rnd.choices(referers, k=batch)
            ua = rnd.choices(_AGENTS, k=batch)
            sizes = [int(rnd.lognormvariate(8.5, 1.6)) for _ in range(batch)]
            stamps: dict[int, str] = {}
            chunk = []
            for i in range(batch):
                second = (lines + i) // 100
                stamp = stamps.get(second)
                if stamp is None:
                    t = time.gmtime(start + second)
                    stamp = stamps[second] = (
                        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
                    )
                s = st[i]
                chunk.append(
                    f'{h[i]} {ip[i]} - - [{stamp}] "{rq[i]}" {s} {0 if s == 304 else sizes[i]} "{rf[i]}" "{ua[i]}"\n'
                )
            text = "".join(chunk)
            out.write(text)
            written += len(text)
            lines += batch
    return lines


# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------


@dataclass
class Timing:
    walls: list[float]
    cpus: list[float]
    output: bytes = b""

    @property
    def best(self) -> float:
        return min(self.walls)

    @property
    def cpu(self) -> float:
        return self.cpus[self.walls.index(self.best)]


def run_timed(
    argv: list[str], *, repeat: int, env: dict[str, str] | None = None, keep: bool = False
) -> Timing:
    """Wall and CPU (user+sys of the process and the children it waited for) per run."""
    walls, cpus = [], []
    output = b""
    for _ in range(repeat):
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, env=env)
            assert proc.stdout is not None
            out = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            walls.append(time.perf_counter() - t0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {err.read()[-500:]!r}")
        cpus.append(usage.ru_utime + usage.ru_stime)
        if keep:
            output = out
    return Timing(walls, cpus, output)


def run_in_process(fn: object, *, repeat: int) -> Timing:
    walls, cpus = [], []
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        walls.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(
            (r1.ru_utime - r0.ru_utime)
            + (r1.ru_stime - r0.ru_stime)
            + (c1.ru_utime - c0.ru_utime)
            + (c1.ru_stime - c0.ru_stime)
        )
    return Timing(walls, cpus)


def ensure_goaccess() -> str | None:
    """goaccess's path, installing Debian's package when missing (root only)."""
    found = shutil.which("goaccess")
    if found or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(
        [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=300",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "goaccess",
        ],
        env=env,
        capture_output=True,
        check=False,
    )
    return shutil.which("goaccess")


def system_python() -> str:
    """The python3 a Debian server runs the program with (else this one)."""
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def _awk_totals(output: bytes) -> dict[tuple[str, int], list[int]]:
    raw: al.Raw = {}
    for line in output.split(b"\n"):
        f = line.split(b"\t")
        if f[0] == b"K":
            raw[tuple(f[2:-2])] = [int(f[-2]), int(f[-1])]
    totals: al.Totals = {}
    al.Decoder().add(raw, "vhost_combined", "", totals)
    return {k: [m.requests, m.bytes, *m.status] for k, m in totals.items()}


def _program_totals(output: bytes) -> dict[tuple[str, int], list[int]]:
    out = {}
    for line in output.splitlines():
        r = json.loads(line)
        if r["t"] == "minute":
            out[(r["vhost"], r["minute"])] = [r["requests"], r["bytes"], *r["status"]]
    return out


# ---------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------


def run(size_mb: int = SIZE_MB, repeat: int = REPEAT) -> Section:
    cores = al.cpu_count()
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="cockpit-bench-accesslog-", dir="/tmp"))
    try:
        log = work / "access.log"
        t0 = time.perf_counter()
        nlines = generate(log, size_mb)
        gen_s = time.perf_counter() - t0
        size = log.stat().st_size
        mb = size / 1e6
        subprocess.run(
            ["cat", str(log)], stdout=subprocess.DEVNULL, check=True
        )  # into the page cache
        kernel = work / "kernel.awk"
        kernel.write_text(AWK_KERNEL)
        program = work / f"cockpit-accesslog-{collect.PROGRAM_HASH}.py"
        program.write_bytes(collect.PROGRAM)
        c_env = {"LC_ALL": "C", "PATH": os.defpath}
        py = system_python()
        py_version = subprocess.run(
            [py, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True
        ).stdout.strip()

        rows: list[tuple[str, str, Timing, str]] = []

        def program_argv(jobs: int, python: str = py) -> list[str]:
            state = work / f"state-{time.perf_counter_ns()}.json"  # fresh: the whole file is new
            return [
                python,
                "-I",
                str(program),
                "--state",
                str(state),
                "--jobs",
                str(jobs),
                "--log",
                "vhost_combined",
                "-",
                str(log),
            ]

        def program_timed(jobs: int, python: str = py) -> Timing:
            walls, cpus, output = [], [], b""
            for _ in range(repeat):
                t = run_timed(program_argv(jobs, python), repeat=1, keep=True)
                walls += t.walls
                cpus += t.cpus
                output = t.output
            return Timing(walls, cpus, output)

        wc = run_timed(["wc", "-l", str(log)], repeat=repeat)
        rows.append(("`wc -l` (floor)", "counts lines", wc, ""))
        awks = {}
        for awk in ("mawk", "gawk"):
            if shutil.which(awk) is None:
                continue
            t = run_timed(
                [awk, "-v", "fmt=vhost_combined", "-f", str(kernel), str(log)],
                repeat=repeat,
                env=c_env,
                keep=True,
            )
            awks[awk] = t
            rows.append(
                (
                    f"{awk}, Cockpit's awk kernel",
                    "same sums as Cockpit (per vhost and minute)",
                    t,
                    "",
                )
            )
        for awk in ("mawk", "gawk"):
            if shutil.which(awk) is None:
                continue
            t = run_timed([awk, ISSUE_AWK, str(log)], repeat=repeat, env=c_env)
            rows.append((f"{awk}, the issue's program", "requests and bytes per vhost only", t, ""))

        all_cores = program_timed(cores)
        one = program_timed(1)
        rows.append(
            (
                f"Cockpit on-server, {cores} processes",
                f"`python3 -I` (Debian's {py_version}), fresh state",
                all_cores,
                "",
            )
        )
        rows.append(("Cockpit on-server, 1 process", "the same with `--jobs 1`", one, ""))
        if os.path.realpath(py) != os.path.realpath(sys.executable):
            here = program_timed(1, python=sys.executable)
            rows.append(
                (
                    "Cockpit program, 1 process, this interpreter",
                    f"`{sys.executable} -I` (Python {sys.version.split()[0]}): the build matters",
                    here,
                    "",
                )
            )
        local = run_in_process(
            lambda: collect.parse_local_report(
                [collect.LogSpec(str(log), "vhost_combined")], jobs=cores
            ),
            repeat=repeat,
        )
        rows.append(
            (
                f"Cockpit `parse_local`, {cores} processes",
                f"in this process (Python {sys.version.split()[0]})",
                local,
                "",
            )
        )

        # The per-minute cost when nothing is new (state committed): what an idle server pays.
        state = work / "steady.json"
        subprocess.run(
            [
                py,
                "-I",
                str(program),
                "--state",
                str(state),
                "--autocommit",
                "--log",
                "vhost_combined",
                "-",
                str(log),
            ],
            check=True,
            capture_output=True,
        )
        idle = run_timed(
            [
                py,
                "-I",
                str(program),
                "--state",
                str(state),
                "--log",
                "vhost_combined",
                "-",
                str(log),
            ],
            repeat=repeat,
        )

        # Cross-check: the program and the awk kernel find the same totals.
        check = ""
        if "mawk" in awks:
            same = _awk_totals(awks["mawk"].output) == _program_totals(all_cores.output)
            check = "identical" if same else "DIFFERENT"
            if not same:
                raise AssertionError("Cockpit's program and the mawk kernel disagree")

        goaccess = ensure_goaccess()
        ga_rows: list[list[object]] = []
        ga_version = ""
        if goaccess:
            banner = subprocess.run([goaccess, "--version"], capture_output=True, text=True).stdout
            found = re.search(r"\d+(?:\.\d+)+", banner)
            ga_version = f"goaccess {found.group() if found else banner.strip()[:40]}"
            for slice_mb, panels in (
                (GOACCESS_SLICE_MB, []),
                (GOACCESS_VHOSTS_SLICE_MB, GOACCESS_PANELS),
            ):
                part = work / f"slice-{slice_mb}.log"
                with open(log, "rb") as src, open(part, "wb") as dst:
                    dst.write(src.read(slice_mb << 20))
                argv = [
                    goaccess,
                    str(part),
                    "--no-global-config",
                    "--log-format=VCOMBINED",
                    "--no-progress",
                    "-o",
                    str(work / "ga.json"),
                ]
                argv += [f"--ignore-panel={p}" for p in panels]
                t = run_timed(argv, repeat=1)
                what = "all panels" if not panels else "VHOSTS panel only"
                ga_rows.append(
                    [
                        f"goaccess, {slice_mb} MiB slice, {what}",
                        f"{part.stat().st_size / 1e6 / t.best:,.1f}",
                        f"{part.stat().st_size / 1e6 / t.cpu:,.1f}",
                        "",
                    ]
                )
                part.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mawk_rate = mb / awks["mawk"].best if "mawk" in awks else None
    mawk_cpu_rate = mb / awks["mawk"].cpu if "mawk" in awks else None

    def ratio(rate: float, base: float | None) -> str:
        return f"{rate / base:.2f}×" if base else "–"

    table_rows = []
    for name, how, t, _ in rows:
        rate, cpu_rate = mb / t.best, mb / t.cpu if t.cpu > 0 else float("inf")
        median = mb / statistics.median(t.walls)
        table_rows.append(
            [
                name,
                how,
                f"{rate:,.0f} ({median:,.0f})",
                f"{cpu_rate:,.0f}" if cpu_rate != float("inf") else "–",
                ratio(rate, mawk_rate),
                ratio(cpu_rate, mawk_cpu_rate),
            ]
        )
    for ga in ga_rows:
        table_rows.append(
            [
                ga[0],
                f"{ga_version}, `--log-format=VCOMBINED --no-global-config -o json`",
                ga[1],
                ga[2],
                ratio(float(str(ga[1]).replace(",", "")), mawk_rate),
                ratio(float(str(ga[2]).replace(",", "")), mawk_cpu_rate),
            ]
        )

    server_rate = mb / all_cores.best
    local_rate = mb / local.best
    load_after = os.getloadavg()
    body = (
        f"A generated `vhost_combined` log of {mb:,.0f} MB ({nlines:,} lines, 12 vhosts, written in {gen_s:.0f} s), "
        f"page-cached; best of {repeat} runs per tool. Load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"(a shared {cores}-core machine: read the ratios).\n\n"
        + table(
            [
                "tool",
                "what it computes / how it runs",
                "MB/s wall, best (median)",
                "MB per CPU-s",
                "vs mawk (wall)",
                "vs mawk (CPU)",
            ],
            table_rows,
        )
        + "\n\n"
        f"- Cockpit's totals and the mawk kernel's: {check or 'not compared (no mawk)'} (every vhost, minute, status class and byte).\n"
        f"- Target ≥ mawk on the server, all cores: {ratio(server_rate, mawk_rate)} mawk's wall-clock rate "
        f"({'met' if mawk_rate and server_rate >= mawk_rate else 'NOT met'}).\n"
        f"- Target ≥ 150 MB/s parsing locally: {local_rate:,.0f} MB/s ({'met' if local_rate >= 150 else 'NOT met'} on this machine).\n"
        f"- An incremental run with nothing new (committed state, the every-minute cost on an idle server): "
        f"{min(idle.walls) * 1000:.0f} ms wall, {idle.cpu * 1000:.0f} ms CPU (python3 start included).\n"
        "- On a server the program runs under `nice -n 10`; here it is not niced, like its peers.\n"
        f"- goaccess: Debian's {ga_version or 'goaccess (not available)'}, timed once per slice (it slows down as data grows; "
        "the issue measured 2.6–12 MB/s)."
    )
    return Section("accesslog", "Access-log aggregation (issue 7)", body)


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.accesslog", description=__doc__.split("\n")[0]
    )
    ap.add_argument(
        "--size-mb", type=int, default=SIZE_MB, help="MiB of generated log (default %(default)s)"
    )
    ap.add_argument("--repeat", type=int, default=REPEAT)
    a = ap.parse_args()
    print(run(a.size_mb, a.repeat).body)
    return 0


if __name__ == "__main__":
    sys.exit(main())

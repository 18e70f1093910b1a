"""Transport benchmark: Cockpit's SSH transport against its peers, in one run.

    python -m bench.transport                   # 10 and 50 hosts, 200 MB stream
    python -m bench.transport --hosts 10 --stream-mb 50 --repeat 3

Needs root (it starts its own sshd fleet on 127.0.0.2… through tests/testbed, loopback
only) and, for the parallel-ssh column, ``pip install parallel-ssh``.

Fan-out (``cat /proc/loadavg`` on N hosts):

* cold, whole process: a fresh Python process connects to N hosts, runs the command
  once on each and exits; wall time and the process's CPU time per host. Cockpit's
  SshPool, parallel-ssh (libssh2), a plain asyncssh gather, and OpenSSH (one ``ssh``
  per host, curve25519 key exchange).
* warm: the command again over connections that are already open, median of rounds:
  Cockpit's pool (in-process), asyncssh (in-process), parallel-ssh (same client), and
  OpenSSH through an open ControlMaster (one ``ssh`` process per host: the warm floor).

Streaming: 200 MB of log-like lines through one command, delivered line by line by
Cockpit's transport (the connection already open), against ``ssh host cat FILE >
/dev/null`` (which includes OpenSSH's handshake, and through a ControlMaster without it).

Nothing here runs inside pytest; MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

COMMAND = ["cat", "/proc/loadavg"]
KEX = "curve25519-sha256"


# ---------------------------------------------------------------------------
# Children: one process per measured client (so "cold" includes start and imports)
# ---------------------------------------------------------------------------


def _hosts(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec["hosts"])


def child_cockpit(spec: dict[str, Any]) -> dict[str, Any]:
    from cockpit.backends.hostkeys import KnownHosts
    from cockpit.backends.ssh import SshPool
    from cockpit.config import SshDefaults
    from cockpit.model import Server

    async def main() -> dict[str, Any]:
        pool = SshPool(
            SshDefaults(identity_files=(Path(spec["client_key"]),)),
            known_hosts=KnownHosts(Path(spec["known_hosts"]), extra=[]),
            ssh_config=[],
        )
        servers = [
            Server(name=h["name"], address=h["address"], port=h["port"], user=h["user"])
            for h in _hosts(spec)
        ]
        transports = [pool.transport(s) for s in servers]

        async def round_() -> None:
            results = await asyncio.gather(*(t.run(COMMAND, capture=True) for t in transports))
            assert all(r.ok and r.stdout for r in results), results

        t0, c0 = time.perf_counter(), time.process_time()
        await round_()
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        warm = []
        for _ in range(spec["rounds"]):
            t = time.perf_counter()
            await round_()
            warm.append(time.perf_counter() - t)
        await pool.close()
        return {"first": first, "first_cpu": first_cpu, "warm": warm}

    return asyncio.run(main())


def child_asyncssh(spec: dict[str, Any]) -> dict[str, Any]:
    import asyncssh

    async def main() -> dict[str, Any]:
        opts = {
            "client_keys": [spec["client_key"]],
            "known_hosts": spec["known_hosts"],
            "agent_path": None,
            "config": None,
        }
        t0, c0 = time.perf_counter(), time.process_time()
        conns = await asyncio.gather(
            *(
                asyncssh.connect(h["address"], port=h["port"], username=h["user"], **opts)
                for h in _hosts(spec)
            )
        )
        cmd = " ".join(COMMAND)

        async def round_() -> None:
            outs = await asyncio.gather(*(c.run(cmd, check=True) for c in conns))
            assert all(o.stdout for o in outs)

        await round_()
        first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
        warm = []
        for _ in range(spec["rounds"]):
            t = time.perf_counter()
            await round_()
            warm.append(time.perf_counter() - t)
        for c in conns:
            c.close()
        return {"first": first, "first_cpu": first_cpu, "warm": warm}

    return asyncio.run(main())


def child_pssh(spec: dict[str, Any]) -> dict[str, Any]:
    from pssh.clients import ParallelSSHClient

    hosts = _hosts(spec)
    # parallel-ssh does not check host keys against a known_hosts file by default.
    client = ParallelSSHClient(
        [h["address"] for h in hosts],
        user=hosts[0]["user"],
        port=hosts[0]["port"],
        pkey=spec["client_key"],
        pool_size=max(len(hosts), 10),
        num_retries=1,
        timeout=30,
    )
    cmd = " ".join(COMMAND)

    def round_() -> None:
        output = client.run_command(cmd)
        client.join(output)
        texts = ["".join(o.stdout) for o in output]
        assert all(o.exit_code == 0 for o in output) and all(texts)

    t0, c0 = time.perf_counter(), time.process_time()
    round_()
    first, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    warm = []
    for _ in range(spec["rounds"]):
        t = time.perf_counter()
        round_()
        warm.append(time.perf_counter() - t)
    return {"first": first, "first_cpu": first_cpu, "warm": warm}


def child_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Cockpit: one remote `cat FILE`, every line delivered to a handler; connection warm."""
    from cockpit.backends.hostkeys import KnownHosts
    from cockpit.backends.ssh import SshPool
    from cockpit.backends.transport import Line
    from cockpit.config import SshDefaults
    from cockpit.model import Server

    async def main() -> dict[str, Any]:
        pool = SshPool(
            SshDefaults(identity_files=(Path(spec["client_key"]),)),
            known_hosts=KnownHosts(Path(spec["known_hosts"]), extra=[]),
            ssh_config=[],
        )
        h = _hosts(spec)[0]
        t = pool.transport(
            Server(name=h["name"], address=h["address"], port=h["port"], user=h["user"])
        )
        assert (await t.run(["true"])).ok  # connect first: transfer only
        cipher = pool.connections(t.server)[0].get_extra_info("send_cipher")
        rates: list[float] = []
        cpu_rates: list[float] = []
        lines = 0
        for _ in range(spec["repeat"]):
            count = 0

            def on_line(line: Line) -> None:
                nonlocal count
                count += 1

            start, cpu = time.perf_counter(), time.process_time()
            result = await t.run(["cat", spec["file"]], on_line=on_line)
            elapsed = time.perf_counter() - start
            assert result.ok, result
            lines = count
            rates.append(spec["bytes"] / elapsed / 1e6)
            cpu_rates.append(spec["bytes"] / (time.process_time() - cpu) / 1e6)
        await pool.close()
        # the peer's reference paths, same host, same cipher: asyncssh 256 KiB chunk reads,
        # without and with line splitting (lines counted, no object per line)
        import asyncssh

        refs: dict[str, list[float]] = {"chunks": [], "chunks-split": []}
        ref_cpu: dict[str, list[float]] = {"chunks": [], "chunks-split": []}
        async with asyncssh.connect(
            h["address"],
            port=h["port"],
            username=h["user"],
            client_keys=[spec["client_key"]],
            known_hosts=spec["known_hosts"],
            agent_path=None,
            config=None,
            encryption_algs=["aes128-gcm@openssh.com"],
        ) as conn:
            for mode, values in refs.items():
                for _ in range(spec["repeat"]):
                    start, cpu = time.perf_counter(), time.process_time()
                    async with conn.create_process(f"cat {spec['file']}", encoding=None) as proc:
                        rest, n = b"", 0
                        while chunk := await proc.stdout.read(262144):
                            if mode == "chunks-split":
                                parts = (rest + chunk).split(b"\n")
                                rest = parts.pop()
                                n += len(parts)
                        await proc.wait()
                    values.append(spec["bytes"] / (time.perf_counter() - start) / 1e6)
                    ref_cpu[mode].append(spec["bytes"] / (time.process_time() - cpu) / 1e6)
        return {
            "rates": rates,
            "cpu_rates": cpu_rates,
            "lines": lines,
            "cipher": cipher,
            "refs": refs,
            "ref_cpu": ref_cpu,
        }

    return asyncio.run(main())


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "cockpit": child_cockpit,
    "asyncssh": child_asyncssh,
    "pssh": child_pssh,
    "stream": child_stream,
}


# ---------------------------------------------------------------------------
# The parent: fleet, measurements, table
# ---------------------------------------------------------------------------


def run_child(kind: str, spec: dict[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds, CPU seconds (user+sys of the child) and the child's own report."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench.transport", "--child", kind],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{done.stderr[-3000:]}")
    return wall, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def run_timed(
    argvs: Sequence[Sequence[str]], stdout: int | None = subprocess.DEVNULL
) -> tuple[float, float]:
    """Start every argv at once, wait for all; wall and CPU seconds (all children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(list(a), stdout=stdout, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        for a in argvs
    ]
    failures = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            failures.append(err.decode(errors="replace"))
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if failures:
        raise RuntimeError(f"{len(failures)} ssh processes failed: {failures[0][-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ssh_argv(config: Path, name: str, *extra: str) -> list[str]:
    return ["ssh", "-F", str(config), *extra, name, "--", *COMMAND]


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def fanout(fleet: Any, n: int, repeat: int, rounds: int, have_pssh: bool) -> list[dict[str, Any]]:
    hosts = fleet.take(n)
    spec = {
        "hosts": [
            {"name": h.name, "address": h.address, "port": h.port, "user": h.user} for h in hosts
        ],
        "client_key": str(fleet.client_key),
        "known_hosts": str(fleet.known_hosts),
        "rounds": rounds,
    }
    config = fleet.ssh_config()
    rows: list[dict[str, Any]] = []
    kinds = ["cockpit", "asyncssh"] + (["pssh"] if have_pssh else [])
    labels = {
        "cockpit": "Cockpit SshPool",
        "asyncssh": "asyncssh gather",
        "pssh": "parallel-ssh",
    }
    for kind in kinds:
        walls, cpus, firsts, first_cpus = [], [], [], []
        for _ in range(repeat):  # cold: connect, run once, exit
            wall, cpu, report = run_child(kind, {**spec, "rounds": 0})
            walls.append(wall)
            cpus.append(cpu)
            firsts.append(report["first"])
            first_cpus.append(report["first_cpu"])
        warms = run_child(kind, spec)[2]["warm"]  # warm: rounds over the open connections
        rows.append(
            {
                "tool": labels[kind],
                "n": n,
                "cold_process": med(walls),
                "cold_inproc": med(firsts),
                "cpu_per_host_ms": med(cpus) / n * 1000,
                "inproc_cpu_per_host_ms": med(first_cpus) / n * 1000,
                "warm": med(warms),
            }
        )
    # OpenSSH: one ssh per host, new connections (curve25519, like the others)
    walls, cpus = [], []
    plain = [
        ssh_argv(config, h.name, "-o", "ControlPath=none", "-o", f"KexAlgorithms={KEX}")
        for h in hosts
    ]
    for _ in range(repeat):
        wall, cpu = run_timed(plain)
        walls.append(wall)
        cpus.append(cpu)
    # OpenSSH over an open ControlMaster per host: the warm floor
    cm = fleet.bed / "cm-%h"
    masters = [
        ["ssh", "-F", str(config), "-o", "ControlMaster=yes", "-o", "ControlPersist=120",
         "-o", f"ControlPath={cm}", "-N", "-f", h.name]
        for h in hosts
    ]  # fmt: skip
    run_timed(masters)
    try:
        cm_walls = [
            run_timed(
                [
                    ssh_argv(config, h.name, "-o", f"ControlPath={cm}", "-o", "ControlMaster=no")
                    for h in hosts
                ]
            )[0]
            for _ in range(max(3, rounds // 2))
        ]
    finally:
        run_timed(
            [
                ["ssh", "-F", str(config), "-o", f"ControlPath={cm}", "-O", "exit", h.name]
                for h in hosts
            ]
        )
    rows.append(
        {
            "tool": "OpenSSH (ssh per host / ControlMaster)",
            "n": n,
            "cold_process": med(walls),
            "cold_inproc": None,
            "cpu_per_host_ms": med(cpus) / n * 1000,
            "inproc_cpu_per_host_ms": None,
            "warm": med(cm_walls),
        }
    )
    return rows


def make_stream_file(path: Path, megabytes: int) -> int:
    block = bytearray()
    i = 0
    while len(block) < 1_000_000:
        i += 1
        block += (
            f'10.0.{i % 250}.{i % 199} - - [25/Nov/2025:21:{i % 60:02d}:00 +0000] "GET /site/{i}/page'
            f'?q={i * 7} HTTP/1.1" {200 + i % 4} {i * 13 % 99999} "-" "Mozilla/5.0 bench"\n'
        ).encode()
    with path.open("wb") as f:
        for _ in range(megabytes):
            f.write(block)
    path.chmod(0o644)
    return path.stat().st_size


def stream(fleet: Any, megabytes: int, repeat: int) -> list[dict[str, Any]]:
    host = fleet.take(1)[0]
    path = fleet.bed / f"stream-{megabytes}m.log"
    size = make_stream_file(path, megabytes)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=True)  # page cache
    spec = {
        "hosts": [
            {"name": host.name, "address": host.address, "port": host.port, "user": host.user}
        ],
        "client_key": str(fleet.client_key),
        "known_hosts": str(fleet.known_hosts),
        "file": str(path),
        "bytes": size,
        "repeat": repeat,
    }
    _, _, report = run_child("stream", spec)
    rows = [
        {
            "tool": f"Cockpit run(cat), every line delivered as a Line ({report['cipher']}, "
            f"{report['lines']} lines)",
            "mbps": med(report["rates"]),
            "cpu_mbps": med(report["cpu_rates"]),
        },
        {
            "tool": "asyncssh 256 KiB chunk reads + bytes.split, lines only counted (aes128-gcm)",
            "mbps": med(report["refs"]["chunks-split"]),
            "cpu_mbps": med(report["ref_cpu"]["chunks-split"]),
        },
        {
            "tool": "asyncssh 256 KiB chunk reads, no line splitting (aes128-gcm)",
            "mbps": med(report["refs"]["chunks"]),
            "cpu_mbps": med(report["ref_cpu"]["chunks"]),
        },
    ]
    config = fleet.ssh_config()
    for cipher in ("default", "aes128-gcm@openssh.com"):
        extra = ["-o", "ControlPath=none", "-o", f"KexAlgorithms={KEX}"]
        if cipher != "default":
            extra += ["-c", cipher]
        argv = ["ssh", "-F", str(config), *extra, host.name, "--", "cat", str(path)]
        timed = [run_timed([argv]) for _ in range(repeat)]
        rows.append(
            {
                "tool": f"ssh host cat FILE > /dev/null (cipher {cipher}, handshake included)",
                "mbps": size / med([w for w, _ in timed]) / 1e6,
                "cpu_mbps": size / med([c for _, c in timed]) / 1e6,
            }
        )
    path.unlink()
    return rows


def fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.0f} ms" if unit == "s" else f"{value:.1f}"


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}×"


def report(fan: list[dict[str, Any]], streams: list[dict[str, Any]], note: str) -> str:
    out = [f"# Transport benchmark\n\n{note}\n"]
    for n in sorted({r["n"] for r in fan}):
        rows = [r for r in fan if r["n"] == n]
        ours = rows[0]
        out.append(f"\n## `{' '.join(COMMAND)}` on {n} hosts\n")
        out.append(
            "| tool | cold, whole process | Cockpit ÷ tool | CPU/host, whole process "
            "| cold, in process | CPU/host, in process | warm round | Cockpit ÷ tool |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            inproc_cpu = r["inproc_cpu_per_host_ms"]
            out.append(
                f"| {r['tool']} | {fmt(r['cold_process'])} | {ratio(ours['cold_process'], r['cold_process'])} "
                f"| {r['cpu_per_host_ms']:.1f} ms | {fmt(r['cold_inproc'])} "
                f"| {'—' if inproc_cpu is None else f'{inproc_cpu:.1f} ms'} "
                f"| {fmt(r['warm'])} | {ratio(ours['warm'], r['warm'])} |"
            )
    if streams:
        ours = streams[0]["mbps"]
        out.append("\n## 200 MB through one command\n" if streams else "")
        out.append("| path | MB/s (wall) | Cockpit ÷ path | MB per client CPU-second |")
        out.append("|---|---:|---:|---:|")
        for r in streams:
            out.append(
                f"| {r['tool']} | {r['mbps']:.0f} | {ours / r['mbps']:.2f}× | {r['cpu_mbps']:.0f} |"
            )
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--hosts", default="10,50", help="host counts, comma separated")
    parser.add_argument("--repeat", type=int, default=3, help="cold runs per tool (median)")
    parser.add_argument("--rounds", type=int, default=10, help="warm rounds (median)")
    parser.add_argument("--stream-mb", type=int, default=200, help="0 skips the stream test")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.child:
        spec = json.loads(sys.stdin.read())
        print(json.dumps(CHILDREN[args.child](spec)))
        return 0

    from testbed import Fleet

    try:
        import pssh  # noqa: F401

        have_pssh = True
    except ImportError:
        have_pssh = False
        print("parallel-ssh is not installed: its column is skipped", file=sys.stderr)
    counts = [int(x) for x in args.hosts.split(",") if x]
    with Fleet.create() as fleet:
        fleet.take(max(counts))
        fan: list[dict[str, Any]] = []
        for n in counts:
            print(f"fan-out on {n} hosts …", file=sys.stderr)
            fan += fanout(fleet, n, args.repeat, args.rounds, have_pssh)
        streams = stream(fleet, args.stream_mb, 3) if args.stream_mb else []
    load = os.getloadavg()
    note = (
        f"{os.cpu_count()} CPUs, load average before the end {load[0]:.2f}; "
        f"cold = median of {args.repeat} fresh processes, warm = median of {args.rounds} rounds; "
        "loopback sshd (OpenSSH) started by tests/testbed."
    )
    text = report(fan, streams, note)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"fanout": fan, "stream": streams}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

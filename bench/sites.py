"""A site's data: backup, restore, clone and migrate through Cockpit vs the plain tools.

    python -m bench sites                              # writes its section of docs/benchmarks.md
    python -m bench.sites --mb 64 --files 1000 --rows 50000 --no-write

One PHP site on MariaDB, with N MB of incompressible files (uploads: photos, archives)
in F files and a table of M rows (~200 bytes each), on two test-bed hosts (tb2, tb3:
sshd on 127.0.0.2/3, each with its own nginx and php-fpm, the machine's MariaDB). Each
operation is timed from queueing the task until it is stored as succeeded (a worker in
this process, over SSH), against the plain tools doing the same over ``ssh`` as root:

- backup: ``tar -czf`` of the data paths and ``mysqldump | gzip`` into the backup dir;
  Cockpit: ``site.backup`` (zstd members, sha256 of each, a manifest, an atomic rename).
- restore: extract the archive over the data paths, drop and load the database;
  Cockpit: ``site.restore`` (a safety backup first, unpack and check beside the live
  paths, swap, load, then settings, pool, vhost and the health probe).
- clone on one server: the naive backup-then-restore path (tar + mysqldump, extract
  into the new site, create and load a database); Cockpit: ``site.clone`` (a new site
  installed, data copied with ``cp --reflink=auto``, the database dumped and loaded).
- clone to the other server: tar + mysqldump on tb2, ``scp -3`` of both files to tb3,
  extract and load there; Cockpit: ``site.clone`` to a platform on tb3 (data and dump
  streamed through the worker, no archive).
- the same clone against the best plain path: ``ssh tb2 tar -c | ssh tb3 tar -x`` and
  ``ssh tb2 mysqldump | ssh tb3 mysql``, streamed through this machine as Cockpit does;
- migrate to the other server: Cockpit: ``site.migrate`` (as the clone, then the site
  removed from tb2). The test bed's hosts share one MariaDB, which the migration detects
  (a probe table): the database stays in place, so this figure has no dump and load in
  it, and the plain paths it is compared with move the files only (``tar -czf``, ``scp
  -3``, extract; and ``ssh tb2 tar -c | ssh tb3 tar -x``).
- upgrade on one server: ``site.migrate`` to another platform on tb3 (a docroot built
  from the new codebase beside the live one, the data paths copied in with ``cp
  --reflink=auto``, swapped in, settings, pool, vhost, health); no database work. Plain:
  ``cp -a`` of the data paths and two renames each.

Needs root (it starts its own sshd fleet on loopback). Nothing here runs inside pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.report import Section, table

REPO = Path(__file__).resolve().parent.parent
for _entry in (str(REPO), str(REPO / "tests"), str(REPO / "tests" / "tasks")):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

TITLE = "Site data: backup, restore, clone and migrate vs tar + mysqldump + scp"
#: The issue's figure: 1 GB in 20,000 files and a ~200 MB table (about 10 minutes here);
#: smaller runs through the environment (COCKPIT_BENCH_SITE_MB=64 …) or the options.
MB = int(os.environ.get("COCKPIT_BENCH_SITE_MB", "1024"))
FILES = int(os.environ.get("COCKPIT_BENCH_SITE_FILES", "20000"))
ROWS = int(os.environ.get("COCKPIT_BENCH_SITE_ROWS", "1000000"))


def _populate(web: Path, mb: int, files: int, owner: str) -> None:
    """``files`` files of random bytes, ``mb`` MB in all, in dirs of 100."""
    size = mb * 1024 * 1024 // max(1, files)
    block = os.urandom(size + 4096)
    for i in range(files):
        sub = web / "uploads" / f"{i // 100:04d}"
        if i % 100 == 0:
            sub.mkdir(parents=True, exist_ok=True)
        start = (i * 7919) % 4096
        (sub / f"f{i:06d}.bin").write_bytes(block[start : start + size])
    subprocess.run(["chown", "-R", f"{owner}:www-data", str(web / "uploads")], check=True)


def _mysql(sql: str, database: str | None = None) -> str:
    argv = ["mariadb", "--protocol=tcp", "-h", "127.0.0.1", "-u", "root", "-N", "-B"]
    if database:
        argv += ["-D", database]
    return subprocess.run(argv, input=sql, capture_output=True, text=True, check=True).stdout


def _fill_database(database: str, rows: int) -> None:
    _mysql(
        "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(64), body TEXT);\n"
        f"INSERT INTO posts SELECT seq, CONCAT('post ', seq), REPEAT(MD5(seq), 5)"
        f" FROM seq_1_to_{rows};\n",
        database,
    )


def _checksum(database: str) -> str:
    return _mysql("CHECKSUM TABLE posts;", database).split()[-1]


class Plain:
    """The plain tools over ``ssh`` (as root through sudo) with the fleet's config."""

    def __init__(self, config: Path) -> None:
        self.config = config

    def ssh(self, host: str, script: str) -> None:
        command = "sudo -n /bin/sh -c " + shlex.quote("set -e\n" + script)
        subprocess.run(
            ["ssh", "-F", str(self.config), host, command], check=True, capture_output=True
        )

    def stream(self, src_host: str, src_script: str, dst_host: str, dst_script: str) -> None:
        """``ssh src … | ssh dst …`` through this machine."""

        def argv(host: str, script: str) -> list[str]:
            command = "sudo -n /bin/sh -c " + shlex.quote("set -e\n" + script)
            return ["ssh", "-F", str(self.config), host, command]

        sender = subprocess.Popen(argv(src_host, src_script), stdout=subprocess.PIPE)
        assert sender.stdout is not None
        receiver = subprocess.run(argv(dst_host, dst_script), stdin=sender.stdout, check=False)
        sender.stdout.close()
        if sender.wait() != 0 or receiver.returncode != 0:
            raise RuntimeError(f"streaming from {src_host} to {dst_host} failed")

    def scp3(self, src: str, dst: str) -> None:
        subprocess.run(
            ["scp", "-3", "-q", "-F", str(self.config), src, dst], check=True, capture_output=True
        )


def _archive(site: str, out: str, database: str) -> str:
    return (
        f"mkdir -p {out}\n"
        f"tar -C {site} -czf {out}/files.tgz web private\n"
        f"mysqldump -h 127.0.0.1 -u root --single-transaction {database} | gzip > {out}/db.sql.gz\n"
    )


def _unpack(site: str, out: str, database: str) -> str:
    return (
        f"mkdir -p {site}\n"
        f"rm -rf {site}/web {site}/private\n"
        f"tar -C {site} -xzf {out}/files.tgz\n"
        f"mariadb -h 127.0.0.1 -u root -e 'DROP DATABASE IF EXISTS `{database}`; CREATE DATABASE `{database}`'\n"
        f"gunzip < {out}/db.sql.gz | mariadb -h 127.0.0.1 -u root {database}\n"
    )


async def _measure(label: str, fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    elapsed = time.perf_counter() - start
    print(f"   {label}: {elapsed:.1f} s", flush=True)
    return elapsed


async def bench(mb: int, files: int, rows: int) -> list[tuple[str, float, float]]:
    from sitekit import cockpit, make_bed
    from testbed import Fleet

    from cockpit.engine import TaskState
    from cockpit.model import DbEngine, Platform, Site, derive_db_name, derive_unix_user
    from cockpit.store import backups as backup_queries

    results: list[tuple[str, float, float]] = []
    with Fleet.create() as fleet, tempfile.TemporaryDirectory() as tmp:
        bed = await asyncio.to_thread(make_bed, fleet)
        try:
            a, b = bed.a, bed.b
            plain = Plain(fleet.ssh_config())
            domain = bed.domain("bench")
            async with cockpit(bed, Path(tmp)) as cp:

                async def ok(kind: str, target: str, args: dict[str, object] | None = None) -> None:
                    task = await cp.run(kind, target, args, timeout=7200)
                    if task.state is not TaskState.SUCCEEDED:
                        raise RuntimeError(f"{kind}: {task.result}\n{await cp.log_text(task)}")

                await cp.add(
                    [a.server(), b.server()],
                    [
                        Platform("php-a", a.name, "php", f"{a.root}/platforms/php-bench"),
                        Platform("php-b", b.name, "php", f"{b.root}/platforms/php-bench"),
                    ],
                    [Site(domain, "php-a")],
                )
                await ok("platform.install", "php-a")
                await ok("platform.install", "php-b")
                await ok("site.install", domain, {"db_engine": "mysql"})
                site_dir = a.site_dir(domain)
                database = derive_db_name(domain, DbEngine.MYSQL)
                print(f"   populating {mb} MB in {files} files and {rows} rows", flush=True)
                await asyncio.to_thread(
                    _populate, site_dir / "web", mb, files, derive_unix_user(domain)
                )
                await asyncio.to_thread(_fill_database, database, rows)
                checksum = _checksum(database)

                # backup
                out = f"{a.root}/plain-{domain[:10]}"
                t_cp = await _measure("cockpit backup", lambda: ok("site.backup", domain))
                t_plain = await _measure(
                    "plain backup",
                    lambda: asyncio.to_thread(
                        plain.ssh, a.name, _archive(str(site_dir), out, database)
                    ),
                )
                results.append(("backup", t_cp, t_plain))

                # restore (over the live site)
                async with cp.db.read() as conn:
                    backup = await backup_queries.latest_for_site(conn, domain)
                assert backup is not None
                t_cp = await _measure(
                    "cockpit restore", lambda: ok("site.restore", domain, {"backup": backup.id})
                )
                assert _checksum(database) == checksum
                t_plain = await _measure(
                    "plain restore",
                    lambda: asyncio.to_thread(
                        plain.ssh, a.name, _unpack(str(site_dir), out, database)
                    ),
                )
                assert _checksum(database) == checksum
                results.append(("restore (Cockpit: with a safety backup first)", t_cp, t_plain))

                # clone on one server
                clone = bed.domain("clone")
                t_cp = await _measure(
                    "cockpit clone", lambda: ok("site.clone", domain, {"domain": clone})
                )
                assert _checksum(derive_db_name(clone, DbEngine.MYSQL)) == checksum
                naive = f"naive_{domain[5:13]}"
                naive_site = f"{a.root}/naive-{domain[:10]}"

                def plain_clone() -> None:
                    plain.ssh(
                        a.name,
                        _archive(str(site_dir), f"{out}-c", database)
                        + _unpack(naive_site, f"{out}-c", naive),
                    )

                t_plain = await _measure("plain clone", lambda: asyncio.to_thread(plain_clone))
                results.append(("clone on one server", t_cp, t_plain))

                # clone to the other server
                clone_b = bed.domain("cloneb")
                t_cp = await _measure(
                    "cockpit clone to tb3",
                    lambda: ok("site.clone", domain, {"domain": clone_b, "platform": "php-b"}),
                )
                assert _checksum(derive_db_name(clone_b, DbEngine.MYSQL)) == checksum
                out_b = f"{b.root}/plain-{domain[:10]}"
                naive_b = f"naiveb_{domain[5:13]}"

                def plain_copy() -> None:
                    plain.ssh(a.name, _archive(str(site_dir), f"{out}-x", database))
                    plain.ssh(b.name, f"mkdir -p {out_b}\nchown {b.host.user} {out_b}")
                    plain.ssh(a.name, f"chmod -R a+rX {out}-x")
                    for name in ("files.tgz", "db.sql.gz"):
                        plain.scp3(f"{a.name}:{out}-x/{name}", f"{b.name}:{out_b}/{name}")
                    plain.ssh(b.name, _unpack(f"{b.root}/naive-{domain[:10]}", out_b, naive_b))

                t_plain = await _measure("plain copy to tb3", lambda: asyncio.to_thread(plain_copy))
                results.append(("clone to another server", t_cp, t_plain))
                naive_s = f"naives_{domain[5:13]}"
                stream_site = f"{b.root}/stream-{domain[:10]}"

                def plain_stream() -> None:
                    plain.stream(
                        a.name, f"tar -C {site_dir} -cf - web private",
                        b.name, f"mkdir -p {stream_site}\ntar -C {stream_site} -xf -",
                    )  # fmt: skip
                    _mysql(f"CREATE DATABASE `{naive_s}`;")
                    plain.stream(
                        a.name, f"mysqldump -h 127.0.0.1 -u root --single-transaction {database}",
                        b.name, f"mariadb -h 127.0.0.1 -u root {naive_s}",
                    )  # fmt: skip

                t_stream = await _measure(
                    "plain stream to tb3", lambda: asyncio.to_thread(plain_stream)
                )
                assert _checksum(naive_s) == checksum
                results.append(
                    (
                        "clone to another server, vs streaming (tar → tar, mysqldump → mysql)",
                        t_cp,
                        t_stream,
                    )
                )

                # migrate to the other server. The hosts share one MariaDB, which the
                # migration finds out: the database stays, so the plain paths it is
                # compared with move the files only (run first: the migration removes
                # the site from tb2).
                files_site = f"{b.root}/files-{domain[:10]}"
                files_stream = f"{b.root}/filess-{domain[:10]}"

                def plain_files_copy() -> None:
                    plain.ssh(
                        a.name,
                        f"mkdir -p {out}-f\ntar -C {site_dir} -czf {out}-f/files.tgz web private",
                    )
                    plain.ssh(a.name, f"chmod -R a+rX {out}-f")
                    plain.scp3(f"{a.name}:{out}-f/files.tgz", f"{b.name}:{out_b}/files-only.tgz")
                    plain.ssh(
                        b.name,
                        f"mkdir -p {files_site}\ntar -C {files_site} -xzf {out_b}/files-only.tgz",
                    )

                def plain_files_stream() -> None:
                    plain.stream(
                        a.name, f"tar -C {site_dir} -cf - web private",
                        b.name, f"mkdir -p {files_stream}\ntar -C {files_stream} -xf -",
                    )  # fmt: skip

                t_files = await _measure(
                    "plain files-only copy to tb3", lambda: asyncio.to_thread(plain_files_copy)
                )
                t_files_stream = await _measure(
                    "plain files-only stream to tb3", lambda: asyncio.to_thread(plain_files_stream)
                )
                t_cp = await _measure(
                    "cockpit migrate to tb3",
                    lambda: ok("site.migrate", domain, {"platform": "php-b"}),
                )
                assert _checksum(database) == checksum
                results.append(
                    (
                        "migrate to another server, database shared (stays), vs files only: "
                        "tar -z, scp -3, extract",
                        t_cp,
                        t_files,
                    )
                )
                results.append(
                    (
                        "migrate to another server, database shared (stays), vs files only "
                        "streamed (tar → tar)",
                        t_cp,
                        t_files_stream,
                    )
                )

                # upgrade on one server: to another platform on tb3 (a docroot built
                # from its codebase, the data paths copied in, swapped); no database
                # work on either side. Plain: cp -a of the data paths, then renames.
                await cp.add(
                    [],
                    [Platform("php-b2", b.name, "php", f"{b.root}/platforms/php-bench2")],
                )
                await ok("platform.install", "php-b2")
                t_cp = await _measure(
                    "cockpit upgrade on tb3",
                    lambda: ok("site.migrate", domain, {"platform": "php-b2"}),
                )
                live = b.site_dir(domain)

                def plain_upgrade() -> None:
                    plain.ssh(
                        b.name,
                        "".join(
                            f"cp -a {live}/{p} {live}/{p}.plain-new\n"
                            f"mv {live}/{p} {live}/{p}.plain-old\n"
                            f"mv {live}/{p}.plain-new {live}/{p}\n"
                            f"rm -rf {live}/{p}.plain-old\n"
                            for p in ("web", "private")
                        ),
                    )

                t_plain = await _measure(
                    "plain upgrade on tb3", lambda: asyncio.to_thread(plain_upgrade)
                )
                assert _checksum(database) == checksum
                results.append(
                    (
                        "upgrade on one server (to another platform), database untouched, "
                        "vs cp -a of the data paths + renames",
                        t_cp,
                        t_plain,
                    )
                )
                for path in (f"{out}-f", files_site, files_stream):
                    subprocess.run(["rm", "-rf", path], check=False)
                for name in (naive, naive_b, naive_s):
                    _mysql(f"DROP DATABASE IF EXISTS `{name}`;")
                for path in (
                    out,
                    f"{out}-c",
                    f"{out}-x",
                    naive_site,
                    out_b,
                    f"{b.root}/naive-{domain[:10]}",
                    stream_site,
                ):
                    subprocess.run(["rm", "-rf", path], check=False)
        finally:
            await asyncio.to_thread(_close, bed)
    return results


def _close(bed: Any) -> None:
    from sitekit import close_bed

    close_bed(bed)


def section(results: list[tuple[str, float, float]], mb: int, files: int, rows: int) -> Section:
    rows_out = [
        (name, f"{cp:.1f} s", f"{plain:.1f} s", f"{cp / plain:.2f}") for name, cp, plain in results
    ]
    body = (
        f"One PHP site on MariaDB: {mb} MB of incompressible files in {files} files and a "
        f"table of {rows:,} rows (~200 bytes each), on two test-bed hosts on one machine "
        "(sshd on loopback, ext4: `cp --reflink=auto` copies). Wall time from queueing the "
        "task to its success; the plain tools run as one `ssh` command each (tar -z, "
        "mysqldump | gzip, scp -3 through this machine). Ratio = Cockpit / plain (below 1: "
        "Cockpit is faster).\n\n"
        + table(["operation", "Cockpit", "plain tools", "ratio"], rows_out)
        + "\n\nCockpit's times include what the plain commands do not: installing the new "
        "site (user, dirs, pool, vhost, health probe), checksums of every member and of the "
        "archive, and for a restore a whole safety backup first. Most of the backup's lead "
        "is the compressor (zstd on both cores, which passes incompressible data through, "
        "against single-threaded gzip). Between servers, Cockpit streams through the "
        "worker like `ssh | ssh` does, and loses a little to it (it also installs the site "
        "and checks it answers); scp -3 of two archives is the slow path it avoids. The test "
        "bed's two hosts share one MariaDB: a migration between them keeps the database "
        "where it is, so its rows compare it with plain paths that move the files only; "
        "a migration between two database servers (dump, load, drop) is not measured here."
    )
    return Section("sites", TITLE, body)


def run() -> Section:
    results = asyncio.run(bench(MB, FILES, ROWS))
    return section(results, MB, FILES, ROWS)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sites", description=__doc__)
    parser.add_argument("--mb", type=int, default=MB)
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result = section(
        asyncio.run(bench(args.mb, args.files, args.rows)), args.mb, args.files, args.rows
    )
    print(result.body)
    if not args.no_write:
        from bench.report import write

        write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

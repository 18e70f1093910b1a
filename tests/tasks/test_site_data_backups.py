"""Where backups are and how long they are kept, end to end on the test bed's two hosts:
a backup stays on the server it was made on when its site migrates, and is restored
from there (a tar archive streamed across; a restic snapshot refused plainly) and
deleted there; the retention policy (config ``backups``, task ``site.backup-prune``)
removes real archives on their servers, and only those it does not keep."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sitekit import Cockpit, HostBed, SiteBed, mysql

from cockpit.config import BackupRetention, Config, ConfigError, load_config
from cockpit.engine import Engine, TaskState
from cockpit.engine.recipes import Registry
from cockpit.engine.runner import RunOptions
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.model import Backup, BackupReason, DbEngine, Platform, Service, Site, ValidationError
from cockpit.model import derive_db_name as db_name
from cockpit.store import backups as backup_queries
from cockpit.store import open_store
from cockpit.store import servers as server_queries
from cockpit.tasks.site_data import KINDS, retention_verdicts

# -- the policy, without the test bed --------------------------------------------------

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _made(id_: int, days_ago: float, reason: BackupReason = BackupReason.BACKUP) -> Backup:
    return dataclasses.replace(
        Backup(
            site="shop.example",
            location=f"/srv/cockpit/backups/shop.example/b{id_}.tar",
            size=id_,
            sha256=f"{id_:064x}",
            created=NOW - timedelta(days=days_ago),
            server="web1",
            reason=reason,
        ),
        id=id_,
    )


def test_the_newest_and_the_young_are_kept() -> None:
    backups = [_made(i, days) for i, days in enumerate([0.5, 1, 2, 10, 29.9, 30, 45, 400], 1)]
    verdicts = retention_verdicts(backups, BackupRetention(keep_last=3, keep_days=30), NOW)
    assert [v.backup.id for v in verdicts] == [1, 2, 3, 4, 5, 6, 7, 8]  # newest first
    assert [v.keep for v in verdicts] == [True, True, True, True, True, False, False, False]
    assert verdicts[0].why == "one of the newest 3"
    assert verdicts[3].why == "younger than 30 days"
    assert verdicts[5].why == "older than 30 days, not one of the newest 3"
    # the newest are kept however old they are; keep_days 0 keeps no more than those
    old = [_made(i, 1000 + i) for i in range(1, 6)]
    kept = [v.backup.id for v in retention_verdicts(old, BackupRetention(2, 0), NOW) if v.keep]
    assert kept == [1, 2]


def test_safety_and_delete_backups_have_their_own_days() -> None:
    backups = [
        _made(1, 1),
        _made(2, 500, BackupReason.SAFETY),
        _made(3, 900, BackupReason.DELETE),
        _made(4, 5, BackupReason.SAFETY),
        _made(5, 600),
        _made(6, 700),
    ]
    # by default they stay until deleted by hand, and do not count among the newest
    verdicts = {v.backup.id: v for v in retention_verdicts(backups, BackupRetention(2, 30), NOW)}
    assert {i for i, v in verdicts.items() if not v.keep} == {6}
    assert verdicts[2].why == "a safety backup: kept until deleted"
    assert verdicts[3].why == "a backup taken before the delete: kept until deleted"
    assert verdicts[5].why == "one of the newest 2"
    policy = BackupRetention(keep_last=2, keep_days=30, safety_days=30, delete_days=1000)
    verdicts = {v.backup.id: v for v in retention_verdicts(backups, policy, NOW)}
    assert {i for i, v in verdicts.items() if not v.keep} == {2, 6}
    assert verdicts[2].why == "a safety backup, older than 30 days"
    assert verdicts[4].why == "a safety backup, younger than 30 days"
    assert verdicts[3].why == "a backup taken before the delete, younger than 1000 days"


def test_the_policy_reads_from_the_config_with_located_errors(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "backups:\n"
        "  keep_last: 5\n"
        "  delete_days: 90\n"
        "  sites:\n"
        "    Shop.Example:\n"
        "      keep_last: 30\n"
        "      safety_days: 7\n"
    )
    backups = load_config(path).backups
    assert (backups.keep_last, backups.keep_days, backups.safety_days) == (5, 30, None)
    shop = backups.for_site("shop.example")
    assert (shop.keep_last, shop.keep_days, shop.safety_days, shop.delete_days) == (30, 30, 7, 90)
    assert backups.for_site("other.example") is backups
    assert Config().backups == BackupRetention(10, 30, None, None)
    for text, where in (
        ("backups:\n  keep_last: 0\n", ":2:3: backups.keep_last: must be at least 1"),
        ("backups:\n  keep_days: ten\n", ":2:3: backups.keep_days: must be a whole number"),
        (
            "backups:\n  keep_lats: 3\n",
            "backups.keep_lats: unknown key (did you mean 'keep_last'?)",
        ),
        ("backups:\n  sites:\n    'a b.example': {}\n", ':3:5: backups.sites["a b.example"]'),
        (
            "backups:\n  sites:\n    a.example:\n      safety_days: -1\n",
            ':4:7: backups.sites["a.example"].safety_days: must be at least 0',
        ),
        ("backups:\n  password: x\n", "secrets go in the secrets file"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError) as refused:
            load_config(path)
        assert where in str(refused.value), text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"keep_last": 0}, "args.keep_last"),
        ({"keep_last": True}, "args.keep_last"),
        ({"keep_days": "30"}, "args.keep_days"),
        ({"safety_days": -1}, "args.safety_days"),
        ({"delete_days": 10**6}, "args.delete_days"),
        ({"dry_run": "yes"}, "args.dry_run"),
        ({"older_than": 3}, "args.older_than"),
    ],
)
def test_prune_args_are_checked_at_queue_time(args: dict[str, Any], field: str) -> None:
    kind = next(k for k in KINDS if k.name == "site.backup-prune")
    assert kind.check_args is not None
    with pytest.raises(ValidationError) as refused:
        kind.check_args(dict(args))
    assert refused.value.field == field
    good = {"keep_last": 3, "keep_days": 0, "safety_days": None, "dry_run": True}
    assert kind.check_args(dict(good)) == good
    assert "site.backup-prune" in Registry.default()


# -- end to end ------------------------------------------------------------------------


async def _ok(cp: Cockpit, kind: str, target: str, args: dict[str, object] | None = None) -> str:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.SUCCEEDED, f"{kind} {target}: {task.result}\n{log}"
    return log


async def _failed(cp: Cockpit, kind: str, target: str, args: dict[str, object]) -> str:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.FAILED, f"{kind} {target} did not fail\n{log}"
    return f"{task.result}\n{log}"


@contextlib.asynccontextmanager
async def _cockpit(bed: SiteBed, tmp_path: Path, **changes: Any) -> AsyncIterator[Cockpit]:
    """Like sitekit's, with config changes (the worker's tasks read their policy there)."""
    config = dataclasses.replace(bed.config(tmp_path), **changes)
    db = await open_store(config.store)
    options = WorkerOptions(
        global_limit=8, per_server=4, poll=0.05, cancel_poll=0.2, maintenance_every=5.0,
        lease=60.0, grace=5.0, run=RunOptions(),
    )  # fmt: skip
    worker = Worker(db, config, options=options)
    runner = asyncio.create_task(worker.run())
    try:
        yield Cockpit(db, config, Engine(db, config), worker)
    finally:
        worker.stop()
        await asyncio.wait_for(runner, 60)
        await db.close()


async def _backups(cp: Cockpit, domain: str) -> list[Backup]:
    async with cp.db.read() as conn:
        return await backup_queries.list_for_site(conn, domain)


def _leftovers(*roots: Path) -> list[str]:
    marks = (".cockpit-new-", ".cockpit-old-", ".staging-", ".unpack-", ".work-", ".partial")
    found: list[str] = []
    for root in roots:
        if root.exists():
            found += [str(p) for p in root.rglob("*") if any(m in p.name for m in marks)]
    return sorted(found)


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                   check=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        with contextlib.suppress(OSError):
            path.rmdir()


def _with_backup_service(host: HostBed, service: Service) -> Any:
    base = host.server()
    return dataclasses.replace(base, services=(*base.services, service))


async def test_backups_stay_on_their_server_after_a_migration(bed: SiteBed, tmp_path: Path) -> None:
    """Made on a; the site migrates to b. A tar backup is restored on b from a (streamed
    across, checked against its sha256; a full disk on b stops it with nothing changed);
    a restic backup is refused plainly; both are deleted where they are."""
    a, b = bed.a, bed.b
    domain = bed.domain("home")
    db = db_name(domain, DbEngine.MYSQL)
    repo = a.root / f"restic-{domain[:8]}"
    async with _cockpit(bed, tmp_path) as cp:
        await cp.add(
            [
                _with_backup_service(a, Service("backup", "restic", {"repository": str(repo)})),
                b.server(),
            ],
            [
                Platform("php-a", a.name, "php", f"{a.root}/platforms/php-{domain[:8]}"),
                Platform("php-b", b.name, "php", f"{b.root}/platforms/php-{domain[:8]}"),
            ],
            [Site(domain, "php-a")],
        )
        await _ok(cp, "platform.install", "php-a")
        await _ok(cp, "platform.install", "php-b")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        web = a.site_dir(domain) / "web"
        mysql(f"CREATE TABLE `{db}`.t (v TEXT); INSERT INTO `{db}`.t VALUES ('backed up');")
        (web / "page.html").write_text("backed up\n")
        (web / "big.bin").write_bytes(os.urandom(3_000_000))  # incompressible: a big archive
        await _ok(cp, "site.backup", domain, {"backend": "tar"})
        await _ok(cp, "site.backup", domain, {"backend": "restic"})
        restic, tar = await _backups(cp, domain)
        assert (tar.backend, restic.backend) == ("tar", "restic")
        assert tar.server == restic.server == a.name
        assert tar.reason is restic.reason is BackupReason.BACKUP
        assert tar.location.startswith(f"{a.root}/backups/{domain}/")
        archive = Path(tar.location)
        tar_bytes = archive.read_bytes()

        await _ok(cp, "site.migrate", domain, {"platform": "php-b"})
        web = b.site_dir(domain) / "web"
        mysql(f"UPDATE `{db}`.t SET v = 'changed';")
        (web / "page.html").write_text("changed\n")
        (web / "big.bin").unlink()
        assert [(x.id, x.server) for x in await _backups(cp, domain)] == [
            (restic.id, a.name), (tar.id, a.name)
        ]  # fmt: skip

        # b's backups go to a small disk: the safety backup fits, the fetched copy does not
        with _tmpfs(b.root / f"small-{domain[:9]}", "1500k") as small:
            async with cp.db.write() as conn:
                await server_queries.update_many(
                    conn, [_with_backup_service(b, Service("backup", "tar", {"dir": str(small)}))]
                )
            out = await _failed(cp, "site.restore", domain, {"backup": tar.id})
            assert "failed at step fetch" in out and f"from {a.name} to {b.name}" in out
            assert "No space left on device" in out
            assert (await b.aget(domain, "/page.html")).text == "changed\n"
            assert mysql(f"SELECT v FROM `{db}`.t;").stdout.strip() == "changed"
            assert _leftovers(small, b.site_dir(domain)) == []
            safety = next(x for x in await _backups(cp, domain) if x.id not in (tar.id, restic.id))
            assert (safety.server, safety.reason) == (b.name, BackupReason.SAFETY)
            assert safety.location.startswith(f"{small}/{domain}/")
            await _ok(cp, "site.backup-delete", domain, {"backup": safety.id})
            assert not os.path.exists(safety.location)
            async with cp.db.write() as conn:
                await server_queries.update_many(conn, [b.server()])

        log = await _ok(cp, "site.restore", domain, {"backup": tar.id})
        assert f"({a.name}:{tar.location}," in log and f"it is fetched from {a.name} first" in log
        assert f"fetched backup #{tar.id} from {a.name} to {b.name}" in log
        assert (await b.aget(domain, "/page.html")).text == "backed up\n"
        assert len((web / "big.bin").read_bytes()) == 3_000_000
        assert mysql(f"SELECT v FROM `{db}`.t;").stdout.strip() == "backed up"
        assert archive.read_bytes() == tar_bytes  # the original is where it was, untouched
        assert _leftovers(b.root / "backups", a.root / "backups", b.site_dir(domain)) == []
        safety = next(x for x in await _backups(cp, domain) if x.id not in (tar.id, restic.id))
        assert (safety.server, safety.reason) == (b.name, BackupReason.SAFETY)

        # a restic snapshot stays in a's repository: refused before anything changes
        out = await _failed(cp, "site.restore", domain, {"backup": restic.id})
        assert "failed at step check" in out
        assert f"a restic backup cannot be copied to another server. Restore it on {a.name}" in out
        assert (await b.aget(domain, "/page.html")).text == "backed up\n"
        assert len(await _backups(cp, domain)) == 3

        # deleted where they are, with no server to name; a wrong one is refused
        out = await _failed(cp, "site.backup-delete", domain, {"backup": tar.id, "server": b.name})
        assert f"backup #{tar.id} is on {a.name}, not on {b.name}" in out
        assert archive.exists()
        await _ok(cp, "site.backup-delete", domain, {"backup": tar.id})
        assert not archive.exists() and not Path(f"{tar.location}.sha256").exists()
        assert Path(restic.location).is_file()
        await _ok(cp, "site.backup-delete", domain, {"backup": restic.id})
        assert not Path(restic.location).exists()
        assert [x.id for x in await _backups(cp, domain)] == [safety.id]


async def test_the_retention_policy_removes_real_archives(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    domain = bed.domain("keep")
    policy = BackupRetention(keep_last=2, keep_days=30)
    async with _cockpit(bed, tmp_path, backups=policy) as cp:
        await cp.add(
            [host.server()],
            [Platform("st", host.name, "static", f"{host.root}/platforms/st-{domain[:8]}")],
            [Site(domain, "st")],
        )
        await _ok(cp, "platform.install", "st")
        await _ok(cp, "site.install", domain)
        page = host.site_dir(domain) / "web" / "page.html"
        for n in range(4):
            page.write_text(f"version {n}\n")
            await _ok(cp, "site.backup", domain)
        await _ok(cp, "site.restore", domain)  # the newest: a safety backup first
        made = await _backups(cp, domain)
        assert [x.reason for x in made] == [BackupReason.SAFETY] + [BackupReason.BACKUP] * 4
        safety, b4, b3, b2, b1 = made
        assert all(Path(x.location).is_file() for x in made)

        # all younger than 30 days: nothing to remove
        log = await _ok(cp, "site.backup-prune", domain)
        assert _line(log, f"keep {_shown(b2)}").endswith(": younger than 30 days")
        assert _line(log, f"keep {_shown(b4)}").endswith(": one of the newest 2")
        assert _line(log, f"keep {_shown(safety)}").endswith(
            ": a safety backup: kept until deleted"
        )
        assert f"{host.name}:{b2.location}" in _line(log, f"keep {_shown(b2)}")
        assert await _backups(cp, domain) == made

        # the two oldest made 40 days ago: they go, from the disk and from the store
        async with cp.db.write() as conn:
            for old in (b1, b2):
                await conn.execute(
                    "UPDATE backups SET created = ? WHERE id = ?",
                    ((old.created - timedelta(days=40)).isoformat(timespec="microseconds"),
                     old.id),
                )  # fmt: skip
        b1, b2 = (dataclasses.replace(x, created=x.created - timedelta(days=40)) for x in (b1, b2))
        task = await cp.run("site.backup-prune", domain, {"dry_run": True})
        assert task.state is TaskState.SUCCEEDED and task.result.startswith("would remove 2")
        assert len(await _backups(cp, domain)) == 5 and Path(b1.location).is_file()

        task = await cp.run("site.backup-prune", domain)
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert task.result.startswith("removed 2 (") and task.result.endswith("; 3 kept")
        for gone in (b1, b2):
            assert _line(log, f"remove {_shown(gone)}").endswith(
                ": older than 30 days, not one of the newest 2"
            )
            assert _line(log, f"removed {_shown(gone)}")
            assert not Path(gone.location).exists()
            assert not Path(f"{gone.location}.sha256").exists()
        assert await _backups(cp, domain) == [safety, b4, b3]
        assert all(Path(x.location).is_file() for x in (safety, b4, b3))

        # idempotent: nothing more to do; then the safety backup's own days
        task = await cp.run("site.backup-prune", domain)
        assert task.state is TaskState.SUCCEEDED and task.result == "nothing to remove; 3 kept"
        log = await _ok(cp, "site.backup-prune", domain, {"safety_days": 0})
        assert _line(log, f"removed {_shown(safety)}") and not Path(safety.location).exists()
        assert await _backups(cp, domain) == [b4, b3]
        # what is left restores (the newest: version 3)
        page.write_text("changed\n")
        await _ok(cp, "site.restore", domain, {"backup": b4.id})
        assert (await host.aget(domain, "/page.html")).text == "version 3\n"


async def test_an_archive_that_cannot_be_removed_keeps_its_row(
    bed: SiteBed, tmp_path: Path
) -> None:
    """The prune goes on with the others and fails, naming it; the row stays for the next run."""
    host = bed.b
    domain = bed.domain("stuck")
    async with _cockpit(bed, tmp_path, backups=BackupRetention(keep_last=1, keep_days=0)) as cp:
        await cp.add(
            [host.server()],
            [Platform("st", host.name, "static", f"{host.root}/platforms/st-{domain[:8]}")],
            [Site(domain, "st")],
        )
        await _ok(cp, "platform.install", "st")
        await _ok(cp, "site.install", domain)
        for _ in range(3):
            await _ok(cp, "site.backup", domain)
        newest, middle, oldest = await _backups(cp, domain)
        # a file that is a mount point cannot be removed (EBUSY), even by root
        subprocess.run(["mount", "--bind", oldest.location, oldest.location], check=True)
        try:
            out = await _failed(cp, "site.backup-prune", domain, {})
            assert "removed 1 " in out and f"could not remove 1: #{oldest.id} on {host.name}" in out
            assert _line(out, f"removed {_shown(middle)}") and not Path(middle.location).exists()
            assert Path(oldest.location).is_file()
            assert await _backups(cp, domain) == [newest, oldest]
        finally:
            subprocess.run(["umount", oldest.location], check=False)
        await _ok(cp, "site.backup-prune", domain)
        assert await _backups(cp, domain) == [newest] and not Path(oldest.location).exists()


def _shown(backup: Backup) -> str:
    return f"#{backup.id} of {backup.created:%Y-%m-%d %H:%M} UTC ("


def _line(log: str, start: str) -> str:
    """The one line of ``log`` that starts with ``start``."""
    (line,) = [line for line in log.splitlines() if line.startswith(start)]
    return line

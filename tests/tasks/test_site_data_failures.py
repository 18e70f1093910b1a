"""Failures injected late in restore, clone and same-server migrate: after files and
database were swapped (restore), after the clone's site was made, after a new
platform's docroot was built and swapped in. Each leaves the previous state serving
and nothing of the failed task behind."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sitekit import Cockpit, HostBed, SiteBed, cockpit, mysql, mysql_has, unix_user_exists
from test_site_data import leftovers, tree

from cockpit.backends.secrets import SecretStore, site_db_password_key
from cockpit.backends.services.render import BUILTIN_TEMPLATES
from cockpit.config import config_dir
from cockpit.engine import TaskState
from cockpit.model import DbEngine, Platform, Site, derive_db_name, derive_db_user
from cockpit.model import derive_unix_user as unix_user


async def _ok(cp: Cockpit, kind: str, target: str, args: dict[str, object] | None = None) -> str:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.SUCCEEDED, f"{kind} {target}: {task.result}\n{log}"
    return log


async def _failed(cp: Cockpit, kind: str, target: str, args: dict[str, object]) -> tuple[str, str]:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.FAILED, f"{kind} {target}: {task.state}\n{log}"
    return task.result or "", log


def _break_vhost_template() -> None:
    """A user override of the nginx vhost template that ``nginx -t`` refuses."""
    text = (BUILTIN_TEMPLATES / "nginx" / "vhost.conf.j2").read_text()
    broken = text.replace(
        "    add_header {{ config_header }}",
        "    cockpit_no_such_directive on;\n    add_header {{ config_header }}",
        1,
    )
    assert broken != text
    target = config_dir() / "templates" / "nginx" / "vhost.conf.j2"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(broken)


def _rows(domain: str) -> list[str]:
    db = derive_db_name(domain, DbEngine.MYSQL)
    return mysql(f"SELECT id, body FROM `{db}`.notes ORDER BY id;").stdout.splitlines()


def _notes(domain: str, *rows: str) -> None:
    db = derive_db_name(domain, DbEngine.MYSQL)
    mysql(
        f"CREATE TABLE `{db}`.notes (id INT PRIMARY KEY, body TEXT);"
        f" INSERT INTO `{db}`.notes VALUES " + ", ".join(rows) + ";"
    )


def _owned(path: Path, domain: str) -> None:
    os.chown(path, pwd.getpwnam(unix_user(domain)).pw_uid, -1)


@contextlib.contextmanager
def _small_root(host: HostBed, size: str) -> Iterator[Path]:
    root = host.root.parent / f"small-{secrets.token_hex(3)}"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(root)], check=True
    )
    os.chown(root, pwd.getpwnam(host.host.user).pw_uid, -1)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
        with contextlib.suppress(OSError):
            root.rmdir()


async def test_a_restore_refused_at_the_vhost_puts_files_and_rows_back(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("rb")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:8]}")],
            [Site(domain, "php")],
        )
        await _ok(cp, "platform.install", "php")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        _notes(domain, "(1, 'backed up')", "(2, 'gone later')")
        (site_dir / "web" / "page.txt").write_text("backed up\n")
        await _ok(cp, "site.backup", domain)

        # what the site holds when the restore starts, different from the backup
        db = derive_db_name(domain, DbEngine.MYSQL)
        mysql(
            f"UPDATE `{db}`.notes SET body = 'live' WHERE id = 1; DELETE FROM `{db}`.notes WHERE id = 2;"
        )
        mysql(f"INSERT INTO `{db}`.notes VALUES (3, 'added since');")
        (site_dir / "web" / "page.txt").write_text("live\n")
        (site_dir / "web" / "new.txt").write_text("new since\n")
        _owned(site_dir / "web" / "new.txt", domain)
        (site_dir / "private" / "key.txt").write_text("private since\n")
        rows, files = _rows(domain), tree(site_dir)
        vhost = host.vhost_file(domain).read_bytes()
        assert rows == ["1\tlive", "3\tadded since"]

        _break_vhost_template()
        result, log = await _failed(cp, "site.restore", domain, {})
        assert "failed at step vhost" in result, log
        # the swap happened before the failure, and was undone
        assert "swapped in" in log and "the database" in log and "holds the backup's data" in log
        assert "rollback of load database: done" in log and "rollback of files: done" in log
        assert f"loaded the safety backup's dump into {db} again" in log
        assert _rows(domain) == rows
        assert tree(site_dir) == files
        assert host.vhost_file(domain).read_bytes() == vhost
        assert (await host.aget(domain, "/page.txt")).text == "live\n"
        assert (await host.aget(domain, "/new.txt")).text == "new since\n"
        assert leftovers(site_dir, host.root / "backups") == []
        # the site's own credentials still work after the reload
        user = derive_db_user(domain, DbEngine.MYSQL)
        assert mysql_has(db, user) == (True, True)


async def test_a_clone_refused_at_the_vhost_leaves_nothing(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    source, clone = bed.domain("vs"), bed.domain("vc")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{source[:8]}")],
            [Site(source, "php")],
        )
        await _ok(cp, "platform.install", "php")
        await _ok(cp, "site.install", source, {"db_engine": "mysql"})
        _notes(source, "(1, 'source')")
        (host.site_dir(source) / "web" / "data.txt").write_text("source\n")
        before, vhost = tree(host.site_dir(source)), host.vhost_file(source).read_bytes()

        _break_vhost_template()
        result, log = await _failed(cp, "site.clone", source, {"domain": clone})
        assert "failed at step target vhost" in result, log
        assert "rollback of copy database" in log or "target database: done" in log
        assert not host.site_dir(clone).exists()
        assert not host.vhost_file(clone).exists() and not host.vhost_link(clone).exists()
        assert not host.pool_file(clone).exists() and not host.record_file(clone).exists()
        assert not unix_user_exists(unix_user(clone))
        assert mysql_has(
            derive_db_name(clone, DbEngine.MYSQL), derive_db_user(clone, DbEngine.MYSQL)
        ) == (False, False)
        assert await cp.site(clone) is None
        store = SecretStore(cp.config.store.parent / "secrets")
        assert store.get(*site_db_password_key(clone)) is None
        # the source: untouched and serving
        assert tree(host.site_dir(source)) == before
        assert host.vhost_file(source).read_bytes() == vhost
        assert _rows(source) == ["1\tsource"]
        assert (await host.aget(source, "/data.txt")).text == "source\n"
        assert leftovers(host.site_dir(source), host.root / "backups") == []


async def _two_php_platforms(cp: Cockpit, host: HostBed, domain: str, root: str) -> None:
    own = root == str(host.root)
    server = host.server() if own else host.server(root=root, name=f"{host.name}small")
    await cp.add(
        [server],
        [
            Platform("php1", server.name, "php", f"{root}/platforms/php1-{domain[:8]}"),
            Platform("php2", server.name, "php", f"{root}/platforms/php2-{domain[:8]}"),
        ],
        [Site(domain, "php1")],
    )
    await _ok(cp, "platform.install", "php1")
    await _ok(cp, "platform.install", "php2")
    await _ok(cp, "site.install", domain, {"db_engine": "mysql"})


async def test_an_upgrade_refused_at_the_vhost_stays_on_its_platform(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("uv")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        await _two_php_platforms(cp, host, domain, str(host.root))
        _notes(domain, "(1, 'kept')")
        (site_dir / "web" / "data.txt").write_text("stays\n")
        (site_dir / "private" / "key.txt").write_text("private\n")
        before, vhost = tree(site_dir), host.vhost_file(domain).read_bytes()
        record = host.record_file(domain).read_bytes()

        _break_vhost_template()
        result, log = await _failed(cp, "site.migrate", domain, {"platform": "php2"})
        assert "failed at step target vhost" in result, log
        # the new docroot was built and swapped in before the failure, then undone
        assert "built 1 fresh path(s)" in log
        assert "rollback of swap: done" in log and "rollback of rebuild docroot: done" in log
        assert tree(site_dir) == before
        assert host.vhost_file(domain).read_bytes() == vhost
        assert host.record_file(domain).read_bytes() == record
        assert (await host.aget(domain, "/data.txt")).text == "stays\n"
        assert _rows(domain) == ["1\tkept"]
        site = await cp.site(domain)
        assert site is not None and site.platform == "php1"
        assert leftovers(site_dir, host.root / "backups") == []


async def test_an_upgrade_that_fills_the_disk_stays_on_its_platform(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("uf")
    with _small_root(host, "2500k") as small:
        site_dir = host.site_dir(domain, str(small))
        async with cockpit(bed, tmp_path) as cp:
            await _two_php_platforms(cp, host, domain, str(small))
            (site_dir / "web" / "big.bin").write_bytes(os.urandom(1_500_000))
            _owned(site_dir / "web" / "big.bin", domain)
            before, vhost = tree(site_dir), host.vhost_file(domain).read_bytes()

            result, log = await _failed(cp, "site.migrate", domain, {"platform": "php2"})
            assert "failed at step rebuild docroot" in result, log
            assert "KiB free there)" in log and "removed the half-built paths" in log
            assert tree(site_dir) == before
            assert host.vhost_file(domain).read_bytes() == vhost
            assert (await host.aget(domain, "/big.bin")).status == 200
            site = await cp.site(domain)
            assert site is not None and site.platform == "php1"
            assert leftovers(small) == []
            # the space is free again: the same upgrade goes through
            (site_dir / "web" / "big.bin").unlink()
            await _ok(cp, "site.migrate", domain, {"platform": "php2"})
            assert (await host.aget(domain, "/")).status == 200
            site = await cp.site(domain)
            assert site is not None and site.platform == "php2"
            assert leftovers(small) == []

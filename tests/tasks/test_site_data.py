"""Backup, backup-delete and restore end to end on the test bed: real nginx, php-fpm,
MariaDB and PostgreSQL, tasks run by an in-process worker over SSH."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import grp
import hashlib
import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sitekit import Cockpit, SiteBed, cockpit, mysql, mysql_has, psql, unix_user_exists

from cockpit.backends.backup import parse_manifest
from cockpit.backends.secrets import SecretStore, db_admin_key
from cockpit.engine import TaskState
from cockpit.model import (
    Backup,
    DbEngine,
    Platform,
    Service,
    Site,
    SiteStatus,
    derive_db_name,
    derive_db_user,
    derive_unix_user,
)
from cockpit.store import backups as backup_queries
from cockpit.store import servers as server_queries


async def _ok(cp: Cockpit, kind: str, target: str, args: dict[str, object] | None = None) -> str:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.SUCCEEDED, f"{kind} {target}: {task.result}\n{log}"
    return log


def wp_rows(domain: str) -> list[str]:
    db = derive_db_name(domain, DbEngine.MYSQL)
    out = mysql(
        f"SELECT ID, post_title, MD5(post_content) FROM `{db}`.wp_posts ORDER BY ID;"
        f" SELECT option_name, option_value FROM `{db}`.wp_options"
        " WHERE option_name IN ('siteurl', 'home', 'blogname') ORDER BY option_name;"
    ).stdout
    return out.splitlines()


def pg_rows(domain: str) -> list[str]:
    db = derive_db_name(domain, DbEngine.PGSQL)
    return psql("SELECT id, body FROM notes ORDER BY id;", database=db).stdout.splitlines()


def _owner(uid: int, gid: int) -> tuple[str, str]:
    """Owners by name: a site deleted and restored gets its user back, not always its uid."""
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"#{uid}"
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = f"#{gid}"
    return user, group


def tree(path: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``path`` with its owner (by name), mode and content hash."""
    out: dict[str, tuple[object, ...]] = {}
    for entry in [path, *sorted(path.rglob("*"))]:
        st = entry.lstat()
        rel = str(entry.relative_to(path))
        if entry.is_symlink():
            content: object = os.readlink(entry)
        elif entry.is_dir():
            content = "dir"
        else:
            content = hashlib.sha256(entry.read_bytes()).hexdigest()
        out[rel] = (*_owner(st.st_uid, st.st_gid), st.st_mode & 0o7777, content)
    return out


def leftovers(*roots: Path) -> list[str]:
    marks = (".cockpit-new-", ".cockpit-old-", ".cockpit-undone-", ".cockpit-copy", ".staging-",
             ".unpack-", ".work-", ".partial")  # fmt: skip
    found = []
    for root in roots:
        if root.exists():
            found += [str(p) for p in root.rglob("*") if any(m in p.name for m in marks)]
    return sorted(found)


async def test_wordpress_backup_delete_restore(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    domain = bed.domain("bk")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("wp", host.name, "wordpress", host.wordpress_root)],
            [Site(domain, "wp")],
        )
        await _ok(cp, "platform.verify", "wp")
        platform = await cp.platform("wp")
        assert platform is not None and platform.release
        await _ok(cp, "site.install", domain, {"title": "Backed-up"})
        uploads = site_dir / "web" / "wp-content" / "uploads"
        (uploads / "2024").mkdir()
        (uploads / "2024" / "photo.bin").write_bytes(os.urandom(200_000))
        os.chown(uploads / "2024" / "photo.bin", *_ids(derive_unix_user(domain), "www-data"))
        db = derive_db_name(domain, DbEngine.MYSQL)
        mysql(
            f"UPDATE `{db}`.wp_posts SET post_content = 'ünïcödé \\'quoted\\' body' WHERE ID = 1;"
        )
        rows = wp_rows(domain)
        data = {p: tree(p) for p in (uploads, site_dir / "private")}
        config = (site_dir / "web" / "wp-config.php").read_bytes()

        log = await _ok(cp, "site.backup", domain)
        assert "step 3/4 archive: succeeded" in log
        (backup,) = await cp_backups(cp, domain)
        assert backup.backend == "tar" and backup.size == os.path.getsize(backup.location)
        assert hashlib.sha256(Path(backup.location).read_bytes()).hexdigest() == backup.sha256
        manifest = parse_manifest(_member(backup.location, "manifest.json"))
        assert manifest.site == domain and manifest.platform_type == "wordpress"
        assert manifest.release == platform.release
        assert manifest.db_engine is DbEngine.MYSQL and manifest.database == db
        assert [m.path for m in manifest.files] == [
            str(site_dir / "web" / "wp-config.php"), str(uploads), str(site_dir / "private")
        ]  # fmt: skip

        # delete (disabled first): its own backup is taken and kept
        await _ok(cp, "site.disable", domain)
        log = await _ok(cp, "site.delete", domain)
        assert "the site's data is kept in backup" in log
        assert not site_dir.exists() and not unix_user_exists(derive_unix_user(domain))
        assert mysql_has(db, derive_db_user(domain, DbEngine.MYSQL)) == (False, False)
        assert len(await cp_backups(cp, domain)) == 2

        # restore the first backup: installed again, same content and rows
        log = await _ok(cp, "site.restore", domain, {"backup": backup.id})
        assert "the site is not installed: installing it first" in log
        assert "nothing installed: no safety backup" in log
        assert wp_rows(domain) == rows
        assert {p: tree(p) for p in data} == data
        assert (site_dir / "web" / "wp-config.php").read_bytes() != config  # new credentials
        response = await host.aget(domain, "/wp-login.php")
        assert response.status == 200 and 'id="loginform"' in response.text
        home = await host.aget(domain, "/?p=1")
        assert home.status == 200 and "ünïcödé" in home.text and "Backed-up" in home.text
        site = await cp.site(domain)
        assert site is not None and site.status is SiteStatus.ENABLED
        assert leftovers(site_dir, host.root / "backups") == []

        # backup-delete: gone from the server and from the store
        await _ok(cp, "site.backup-delete", domain, {"backup": backup.id})
        assert not os.path.exists(backup.location)
        assert not os.path.exists(f"{backup.location}.sha256")
        assert backup.id not in [b.id for b in await cp_backups(cp, domain)]
        refused = await cp.run("site.backup-delete", domain, {"backup": backup.id})
        assert refused.state is TaskState.FAILED and f"no backup #{backup.id}" in refused.result


async def test_php_site_on_postgresql_restore_over_itself(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.b
    domain = bed.domain("pgr")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:8]}")],
            [Site(domain, "php")],
        )
        await _ok(cp, "platform.install", "php")
        await _ok(cp, "site.install", domain, {"db_engine": "pgsql"})
        db, user = derive_db_name(domain, DbEngine.PGSQL), derive_db_user(domain, DbEngine.PGSQL)
        psql(
            f'SET ROLE "{user}"; CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);'
            " INSERT INTO notes VALUES (1, 'one'), (2, 'twö'), (3, repeat('x', 9000));",
            database=db,
        )
        (site_dir / "web" / "hello.txt").write_text("before\n")
        rows, web = pg_rows(domain), tree(site_dir / "web")

        await _ok(cp, "site.backup", domain, {"compression": "gzip"})
        (backup,) = await cp_backups(cp, domain)
        assert _member(backup.location, "manifest.json").count(b'"gzip"') == 1

        psql("UPDATE notes SET body = 'changed'; DELETE FROM notes WHERE id = 3;", database=db)
        (site_dir / "web" / "hello.txt").write_text("after\n")
        (site_dir / "web" / "new.txt").write_text("new\n")
        changed_rows, changed_web = pg_rows(domain), tree(site_dir / "web")

        log = await _ok(cp, "site.restore", domain)  # the newest backup
        assert "safety backup #" in log
        assert pg_rows(domain) == rows and tree(site_dir / "web") == web
        assert (await host.aget(domain, "/hello.txt")).text == "before\n"
        # the restored tables still belong to the site's role
        psql(f"SET ROLE \"{user}\"; INSERT INTO notes VALUES (4, 'four');", database=db)
        backups = await cp_backups(cp, domain)
        assert len(backups) == 2  # the safety backup is kept
        safety = next(b for b in backups if b.id != backup.id)

        # the safety backup holds the state just before the restore
        await _ok(cp, "site.restore", domain, {"backup": safety.id})
        assert pg_rows(domain) == changed_rows and tree(site_dir / "web") == changed_web
        assert leftovers(site_dir, host.root / "backups") == []


async def test_a_full_disk_during_the_safety_backup_changes_nothing(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("full")
    site_dir = host.site_dir(domain)
    small = host.root / f"small-{domain[:9]}"
    async with cockpit(bed, tmp_path) as cp:
        base = host.server()
        await cp.add(
            [base],
            [Platform("st", host.name, "static", f"{host.root}/platforms/st-{domain[:8]}")],
            [Site(domain, "st")],
        )
        await _ok(cp, "platform.install", "st")
        await _ok(cp, "site.install", domain)
        (site_dir / "web" / "page.html").write_text("first\n")
        (site_dir / "web" / "big.bin").write_bytes(os.urandom(600_000))
        await _ok(cp, "site.backup", domain)  # into <root>/backups
        (site_dir / "web" / "page.html").write_text("second\n")
        before = tree(site_dir)
        # From now on the server's backups go to a small tmpfs.
        small.mkdir(exist_ok=True)
        _mount_tmpfs(small, "300k")
        server = dataclasses.replace(
            base, services=(*base.services, Service("backup", "tar", {"dir": str(small)}))
        )
        async with cp.db.write() as conn:
            await server_queries.update_many(conn, [server])
        try:
            task = await cp.run("site.restore", domain)
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step safety archive" in task.result
            assert "No space left on device" in log
            assert tree(site_dir) == before
            assert (await host.aget(domain, "/page.html")).text == "second\n"
            assert len(await cp_backups(cp, domain)) == 1
            assert leftovers(site_dir, small, host.root / "backups") == []
            assert [p.name for p in small.iterdir()] in ([], [domain])
            if (small / domain).exists():
                assert list((small / domain).iterdir()) == []
        finally:
            _umount(small)


async def test_a_refused_grant_while_restoring_a_deleted_site_leaves_nothing(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    domain = bed.domain("rg")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:8]}")],
            [Site(domain, "php")],
        )
        await _ok(cp, "platform.install", "php")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        await _ok(cp, "site.backup", domain)
        await _ok(cp, "site.delete", domain, {"force": True})
        with _grantless_admin() as (admin, password):
            SecretStore(cp.config.store.parent / "secrets").put(
                *db_admin_key(host.name, "mysql"), value=password
            )
            async with cp.db.write() as conn:
                await server_queries.update_many(conn, [host.server(mysql={"admin_user": admin})])
            task = await cp.run("site.restore", domain)
            log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert "failed at step database" in task.result and "denied" in log.lower()
        assert not host.site_dir(domain).exists()
        assert not unix_user_exists(derive_unix_user(domain))
        assert mysql_has(
            derive_db_name(domain, DbEngine.MYSQL), derive_db_user(domain, DbEngine.MYSQL)
        ) == (False, False)
        assert not host.vhost_file(domain).exists() and not host.pool_file(domain).exists()
        site = await cp.site(domain)
        assert site is not None and site.status is SiteStatus.DELETED
        assert len(await cp_backups(cp, domain)) == 2  # nothing added, nothing lost


# -- helpers ---------------------------------------------------------------------------


async def cp_backups(cp: Cockpit, domain: str) -> list[Backup]:
    async with cp.db.read() as conn:
        return await backup_queries.list_for_site(conn, domain)


def _member(archive: str, name: str) -> bytes:
    return subprocess.run(["tar", "-xOf", archive, name], capture_output=True, check=True).stdout


@contextlib.contextmanager
def _grantless_admin() -> Iterator[tuple[str, str]]:
    """A MariaDB admin that may create databases and users, but not GRANT."""
    name = f"ck_nogrant_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    mysql(
        f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}';"
        f" GRANT CREATE, DROP, CREATE USER, SELECT ON *.* TO '{name}'@'127.0.0.1';"
    )
    try:
        yield name, password
    finally:
        mysql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1';", check=False)


def _ids(user: str, group: str) -> tuple[int, int]:
    import grp
    import pwd

    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


def _mount_tmpfs(path: Path, size: str) -> None:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], check=False)


async def test_restic_backups_through_the_tasks(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.b
    domain = bed.domain("rs")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        base = host.server()
        repo = host.root / f"restic-{domain[:8]}"
        server = dataclasses.replace(
            base,
            services=(*base.services, Service("backup", "restic", {"repository": str(repo)})),
        )
        await cp.add(
            [server],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:8]}")],
            [Site(domain, "php")],
        )
        await _ok(cp, "platform.install", "php")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        db = derive_db_name(domain, DbEngine.MYSQL)
        mysql(f"CREATE TABLE `{db}`.t (v TEXT); INSERT INTO `{db}`.t VALUES ('first');")
        (site_dir / "web" / "page.html").write_text("first\n")
        await _ok(cp, "site.backup", domain)
        (backup,) = await cp_backups(cp, domain)
        assert backup.backend == "restic"
        assert backup.location == f"{repo}/snapshots/{backup.sha256}"
        assert os.path.isfile(backup.location)
        mysql(f"UPDATE `{db}`.t SET v = 'second';")
        (site_dir / "web" / "page.html").write_text("second\n")

        await _ok(cp, "site.restore", domain, {"backup": backup.id})
        assert mysql(f"SELECT v FROM `{db}`.t;").stdout.strip() == "first"
        assert (await host.aget(domain, "/page.html")).text == "first\n"
        # the safety backup went to the same repository, and holds "second"
        safety = next(b for b in await cp_backups(cp, domain) if b.id != backup.id)
        assert safety.location.startswith(f"{repo}/snapshots/")
        await _ok(cp, "site.backup-delete", domain, {"backup": backup.id})
        assert not os.path.exists(backup.location)
        assert os.path.isfile(safety.location)
        assert leftovers(site_dir, host.root / "backups") == []


async def test_a_dropped_connection_during_the_unpack_is_ridden_out(
    bed: SiteBed, tmp_path: Path
) -> None:
    """sshd dies while the backup is being unpacked (detached on the server): the unpack
    goes on there, the worker re-attaches once sshd is back and reads its outcome."""
    host = bed.b
    domain = bed.domain("drop")
    site_dir = host.site_dir(domain)
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("st", host.name, "static", f"{host.root}/platforms/st-{domain[:8]}")],
            [Site(domain, "st")],
        )
        await _ok(cp, "platform.install", "st")
        await _ok(cp, "site.install", domain)
        with open(site_dir / "web" / "big.bin", "wb") as f:
            for _ in range(8):
                f.write(os.urandom(32 * 1024 * 1024))
        (site_dir / "web" / "page.html").write_text("backed up\n")
        await _ok(cp, "site.backup", domain)
        (site_dir / "web" / "page.html").write_text("changed\n")

        batch = await cp.engine.queue("site.restore", [domain])
        cp.worker.wake()
        (task_id,) = batch.task_ids
        deadline = asyncio.get_running_loop().time() + 120
        while not any(
            line.text.endswith(" unpack: started") for line in await cp.engine.log(task_id)
        ):
            assert asyncio.get_running_loop().time() < deadline, "the unpack never started"
            await asyncio.sleep(0.05)
        with bed.fleet.stopped(host.host):
            await asyncio.sleep(3)
        (task,) = await cp.engine.wait([task_id], poll=0.1, timeout=300)
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert "re-attached" in log
        assert (site_dir / "web" / "page.html").read_text() == "backed up\n"
        assert (await host.aget(domain, "/page.html")).text == "backed up\n"
        assert leftovers(site_dir, host.root / "backups") == []

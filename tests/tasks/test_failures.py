"""Injected failures: a refused GRANT, a failing ``nginx -t``, a full disk. Each leaves
no residue (no vhost, pool, database, database user, Unix user or files) and the
previous state serving: a neighbour site answers as before, its vhost byte for byte."""

from __future__ import annotations

import contextlib
import dataclasses
import grp
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sitekit import Cockpit, HostBed, SiteBed, cockpit, mysql, mysql_has, unix_user_exists

from cockpit.backends.secrets import SecretStore, db_admin_key, site_db_password_key
from cockpit.backends.services.render import BUILTIN_TEMPLATES
from cockpit.config import config_dir
from cockpit.engine import TaskState
from cockpit.model import (
    DbEngine,
    Platform,
    Service,
    Site,
    SiteStatus,
    derive_db_name,
    derive_db_user,
)
from cockpit.model import derive_unix_user as unix_user
from cockpit.store import servers as server_queries


async def _platforms(cp: Cockpit, *names: str) -> None:
    for name in names:
        task = await cp.run("platform.install", name)
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)


async def _neighbour(cp: Cockpit, host: HostBed, domain: str) -> bytes:
    """A static site that must keep serving whatever happens next; its vhost's bytes."""
    task = await cp.run("site.install", domain)
    assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
    assert (await host.aget(domain)).status == 200
    return host.vhost_file(domain).read_bytes()


def _assert_no_residue(host: HostBed, domain: str, *, root: str | None = None) -> None:
    assert not host.site_dir(domain, root).exists()
    assert not host.vhost_file(domain).exists() and not host.vhost_link(domain).exists()
    assert not host.pool_file(domain).exists()
    assert not host.record_file(domain, root).exists()
    assert not unix_user_exists(unix_user(domain))
    assert mysql_has(
        derive_db_name(domain, DbEngine.MYSQL), derive_db_user(domain, DbEngine.MYSQL)
    ) == (
        False,
        False,
    )
    leftovers = list(host.fpm_dir.joinpath("pool.d").glob(".*cockpit*")) + list(
        (host.nginx_dir / "sites-available").glob(".*cockpit*")
    )
    assert leftovers == []


async def _still_serving(host: HostBed, neighbour: str, vhost: bytes) -> None:
    response = await host.aget(neighbour)
    assert response.status == 200 and f"{neighbour} is served by Cockpit" in response.text
    assert host.vhost_file(neighbour).read_bytes() == vhost


@contextlib.contextmanager
def _grantless_admin() -> Iterator[tuple[str, str]]:
    """A MariaDB admin that may create databases and users but not GRANT."""
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


async def test_a_refused_grant_leaves_no_residue(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    neighbour, domain = bed.domain("nb"), bed.domain("grant")
    with _grantless_admin() as (admin, password):
        async with cockpit(bed, tmp_path) as cp:
            SecretStore(cp.config.store.parent / "secrets").put(
                *db_admin_key(host.name, "mysql"), value=password
            )
            await cp.add(
                [host.server(mysql={"admin_user": admin})],
                [
                    Platform("static", host.name, "static", f"{host.root}/platforms/empty"),
                    Platform("php", host.name, "php", f"{host.root}/platforms/php"),
                ],
                [Site(neighbour, "static"), Site(domain, "php")],
            )
            await _platforms(cp, "static", "php")
            vhost = await _neighbour(cp, host, neighbour)
            task = await cp.run("site.install", domain, {"db_engine": "mysql"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step database" in task.result
            assert "Access denied" in log or "denied" in log.lower()
            assert "dropped the half-made database" in log
            _assert_no_residue(host, domain)
            assert (
                SecretStore(cp.config.store.parent / "secrets").get(*site_db_password_key(domain))
                is None
            )
            await _still_serving(host, neighbour, vhost)


def _broken_nginx_template() -> None:
    """A user override of the vhost template that nginx -t refuses."""
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


async def test_a_failing_config_test_leaves_no_residue_and_the_previous_config(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    neighbour, domain = bed.domain("nb"), bed.domain("ngx")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [
                Platform("static", host.name, "static", f"{host.root}/platforms/empty"),
                Platform("php", host.name, "php", f"{host.root}/platforms/php"),
            ],
            [Site(neighbour, "static"), Site(domain, "php")],
        )
        await _platforms(cp, "static", "php")
        vhost = await _neighbour(cp, host, neighbour)
        _broken_nginx_template()

        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert "failed at step vhost" in task.result and "config test" in task.result
        for undone in ("php pool", "database", "unix user", "directories"):
            assert f"rollback of {undone}: done" in log
        _assert_no_residue(host, domain)
        await _still_serving(host, neighbour, vhost)

        # disabling the neighbour through the broken template fails the same way: it
        # stays enabled, in the store and on the wire
        task = await cp.run("site.disable", neighbour)
        assert task.state is TaskState.FAILED and "config test" in task.result
        await _still_serving(host, neighbour, vhost)
        assert (await cp.site(neighbour)).status is SiteStatus.ENABLED  # type: ignore[union-attr]


@contextlib.contextmanager
def _small_tmpfs(path: Path, size: str) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=755", "tmpfs", str(path)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


async def test_a_full_disk_leaves_no_residue(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    neighbour, domain = bed.domain("nb"), bed.domain("full")
    root = host.root / f"small-{secrets.token_hex(3)}"
    root.mkdir(mode=0o755)
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server(root=str(root))],
            [
                Platform("static", host.name, "static", f"{root}/platforms/empty"),
                Platform("big", host.name, "php", f"{root}/platforms/big"),
            ],
            [Site(neighbour, "static"), Site(domain, "big")],
        )
        await _platforms(cp, "big", "static")
        # a codebase of 4 MB, for sites on a file system of 1 MB
        (root / "platforms" / "big" / "index.php").write_text("<?php echo 'big';\n")
        (root / "platforms" / "big" / "blob.bin").write_bytes(secrets.token_bytes(4 << 20))
        with _small_tmpfs(root / "sites", "1m"):
            vhost = await _neighbour(cp, host, neighbour)
            task = await cp.run("site.install", domain, {"db_engine": "mysql"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step codebase" in task.result
            assert "No space left on device" in log
            _assert_no_residue(host, domain, root=str(root))
            await _still_serving(host, neighbour, vhost)
            used = subprocess.run(
                ["df", "--output=used", "-B1", str(root / "sites")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
            assert int(used) < 1 << 20
            # the neighbour goes before the file system does
            task = await cp.run("site.delete", neighbour, {"force": True, "skip_backup": True})
            assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)


async def test_a_failed_one_step_install_removes_the_platform_codebase_too(
    bed: SiteBed, tmp_path: Path
) -> None:
    """site.install with a source made the WordPress codebase: a failing vhost takes it
    away again with the rest of the site."""
    host = bed.b
    domain = bed.domain("one")
    root = f"{host.root}/platforms/wp-{secrets.token_hex(3)}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()], [Platform("wpx", host.name, "wordpress", root)], [Site(domain, "wpx")]
        )
        _broken_nginx_template()
        task = await cp.run("site.install", domain, {"source": "/usr/share/wordpress"})
        log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert "failed at step vhost" in task.result
        assert "rollback of platform codebase: done" in log
        assert not Path(root).exists()
        assert (await cp.platform("wpx")).release == ""  # type: ignore[union-attr]
        assert not list(Path(root).parent.glob(".cockpit-codebase.*"))
        _assert_no_residue(host, domain)


@contextlib.contextmanager
def _select_only_admin() -> Iterator[tuple[str, str]]:
    """A MariaDB admin that may read, and neither drop a database nor a user."""
    name = f"ck_nodrop_{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(18)
    mysql(
        f"CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}';"
        f" GRANT SELECT ON *.* TO '{name}'@'127.0.0.1';"
    )
    try:
        yield name, password
    finally:
        mysql(f"DROP USER IF EXISTS '{name}'@'127.0.0.1';", check=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_a_refused_database_drop_puts_the_site_back_as_it_was(
    bed: SiteBed, tmp_path: Path
) -> None:
    """site.delete drops the database before it removes any file: a refused DROP puts
    vhost and pool back, and the (disabled) site serves its page as before."""
    host = bed.a
    domain = bed.domain("nodrop")
    database, db_user = (
        derive_db_name(domain, DbEngine.MYSQL),
        derive_db_user(domain, DbEngine.MYSQL),
    )
    with _select_only_admin() as (admin, password):
        async with cockpit(bed, tmp_path) as cp:
            base = host.server()
            await cp.add(
                [base],
                [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:9]}")],
                [Site(domain, "php")],
            )
            await _platforms(cp, "php")
            task = await cp.run("site.install", domain, {"db_engine": "mysql"})
            assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
            task = await cp.run("site.disable", domain)
            assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
            vhost, pool = host.vhost_file(domain).read_bytes(), host.pool_file(domain).read_bytes()
            files = _files(host.site_dir(domain))
            assert (await host.aget(domain)).status == 503
            # from now on the server's MariaDB admin may not drop anything
            SecretStore(cp.config.store.parent / "secrets").put(
                *db_admin_key(host.name, "mysql"), value=password
            )
            services = tuple(
                dataclasses.replace(s, settings={**s.settings, "admin_user": admin})
                if s.type == "mysql"
                else s
                for s in base.services
            )
            async with cp.db.write() as conn:
                await server_queries.update_many(
                    conn, [dataclasses.replace(base, services=services)]
                )

            task = await cp.run("site.delete", domain, {"skip_backup": True})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step database" in task.result
            assert "vhost and pool put back" in task.result
            assert "rollback of vhost: done" in log and "rollback of php pool: done" in log
            assert host.vhost_file(domain).read_bytes() == vhost
            assert host.pool_file(domain).read_bytes() == pool
            assert _files(host.site_dir(domain)) == files
            assert host.record_file(domain).exists() and unix_user_exists(unix_user(domain))
            assert mysql_has(database, db_user) == (True, True)
            response = await host.settled(domain, 503)
            assert response.status == 503
            assert (await cp.site(domain)).status is SiteStatus.DISABLED  # type: ignore[union-attr]

            # the admin may drop again: the delete goes through
            SecretStore(cp.config.store.parent / "secrets").delete(
                *db_admin_key(host.name, "mysql")
            )
            async with cp.db.write() as conn:
                await server_queries.update_many(conn, [base])
            task = await cp.run("site.delete", domain, {"skip_backup": True})
            assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
            _assert_no_residue(host, domain)


async def test_a_full_backup_disk_before_a_delete_removes_nothing(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    domain = bed.domain("fullbk")
    small = host.root / f"small-{secrets.token_hex(3)}"
    small.mkdir(mode=0o700)
    async with cockpit(bed, tmp_path) as cp:
        base = host.server()
        await cp.add(
            [base],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:9]}")],
            [Site(domain, "php")],
        )
        await _platforms(cp, "php")
        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        (host.site_dir(domain) / "web" / "big.bin").write_bytes(secrets.token_bytes(600_000))
        vhost, pool = host.vhost_file(domain).read_bytes(), host.pool_file(domain).read_bytes()
        files = _files(host.site_dir(domain))
        server = dataclasses.replace(
            base, services=(*base.services, Service("backup", "tar", {"dir": str(small)}))
        )
        async with cp.db.write() as conn:
            await server_queries.update_many(conn, [server])
        with _small_tmpfs(small, "300k"):
            task = await cp.run("site.delete", domain, {"force": True})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step backup" in task.result
            assert "No space left on device" in log
            assert host.vhost_file(domain).read_bytes() == vhost
            assert host.pool_file(domain).read_bytes() == pool
            assert _files(host.site_dir(domain)) == files
            assert mysql_has(
                derive_db_name(domain, DbEngine.MYSQL), derive_db_user(domain, DbEngine.MYSQL)
            ) == (True, True)
            assert (await host.aget(domain)).status == 200
        task = await cp.run("site.delete", domain, {"force": True, "skip_backup": True})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        _assert_no_residue(host, domain)


async def test_a_delete_failing_after_the_database_puts_nothing_back(
    bed: SiteBed, tmp_path: Path
) -> None:
    """Once the database is dropped, a failing file removal (an immutable file) puts no
    vhost back for files that are partly gone; the result says what is left."""
    host = bed.a
    domain = bed.domain("stuck")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:9]}")],
            [Site(domain, "php")],
        )
        await _platforms(cp, "php")
        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        stuck = host.site_dir(domain) / "web" / "stuck.txt"
        stuck.write_text("stuck\n")
        subprocess.run(["chattr", "+i", str(stuck)], check=True)
        try:
            task = await cp.run("site.delete", domain, {"force": True, "skip_backup": True})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step files" in task.result
            assert "already removed, and not put back" in task.result
            assert f"left: the files in {host.site_dir(domain)}" in task.result
            assert "not put back: the database or files are gone" in log
            assert not host.vhost_file(domain).exists() and not host.pool_file(domain).exists()
            assert mysql_has(
                derive_db_name(domain, DbEngine.MYSQL), derive_db_user(domain, DbEngine.MYSQL)
            ) == (False, False)
        finally:
            subprocess.run(["chattr", "-i", str(stuck)], check=False)
        task = await cp.run("site.delete", domain, {"force": True, "skip_backup": True})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        _assert_no_residue(host, domain)


async def test_enable_through_a_broken_vhost_template_leaves_the_site_disabled(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    domain = bed.domain("enbl")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("static", host.name, "static", f"{host.root}/platforms/empty")],
            [Site(domain, "static")],
        )
        await _platforms(cp, "static")
        await _neighbour(cp, host, domain)
        task = await cp.run("site.disable", domain)
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        disabled = host.vhost_file(domain).read_bytes()
        assert (await host.aget(domain)).status == 503
        _broken_nginx_template()

        task = await cp.run("site.enable", domain)
        log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert "failed at step vhost" in task.result and "config test" in task.result
        assert host.vhost_file(domain).read_bytes() == disabled
        response = await host.settled(domain, 503)
        assert response.status == 503 and "This site is disabled" in response.text
        assert (await cp.site(domain)).status is SiteStatus.DISABLED  # type: ignore[union-attr]


async def test_a_failed_install_again_puts_the_previous_settings_back(
    bed: SiteBed, tmp_path: Path
) -> None:
    """Installing an installed site again rewrites settings that drifted; a later
    failure (a refused vhost) puts the previous text back, owner and mode as the
    platform's config file says (0640 site user:web group)."""
    host = bed.a
    domain = bed.domain("setb")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php", host.name, "php", f"{host.root}/platforms/php-{domain[:9]}")],
            [Site(domain, "php")],
        )
        await _platforms(cp, "php")
        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        settings = host.site_dir(domain) / "private" / "settings.php"
        drifted = settings.read_text() + "// edited by hand\n"
        settings.write_text(drifted)
        _broken_nginx_template()
        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert f"drift in {settings}" in log and "rollback of settings: done" in log
        assert settings.read_text() == drifted
        info = settings.stat()
        assert oct(info.st_mode & 0o7777) == oct(0o640)
        assert pwd.getpwuid(info.st_uid).pw_name == unix_user(domain)
        assert grp.getgrgid(info.st_gid).gr_name == "www-data"
        assert (await host.aget(domain)).status == 200

"""Clone and migrate end to end on the test bed's two hosts, with injected failures.

The two hosts are one machine: they share the Unix users and the database servers
(each has its own root, nginx and php-fpm). A migration between them finds that out
(machine id, a probe table) and leaves the shared user and database in place.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

from sitekit import Cockpit, HostBed, SiteBed, cockpit, mysql, mysql_has, psql, unix_user_exists

from cockpit.backends.secrets import SecretStore, db_admin_key, site_db_password_key
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


def _hashes(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _owners(path: Path) -> set[str]:
    return {pwd.getpwuid(p.lstat().st_uid).pw_name for p in [path, *path.rglob("*")]}


def _wp_posts(domain: str) -> list[str]:
    db = derive_db_name(domain, DbEngine.MYSQL)
    return mysql(
        f"SELECT ID, post_title, MD5(post_content) FROM `{db}`.wp_posts ORDER BY ID;"
    ).stdout.splitlines()


def _wp_option(domain: str, name: str) -> str:
    db = derive_db_name(domain, DbEngine.MYSQL)
    return mysql(
        f"SELECT option_value FROM `{db}`.wp_options WHERE option_name = '{name}';"
    ).stdout.strip()


def _leftovers(*roots: Path) -> list[str]:
    marks = (".cockpit-new-", ".cockpit-old-", ".cockpit-undone-", ".cockpit-copy", ".staging-",
             ".unpack-", ".work-", ".partial")  # fmt: skip
    found: list[str] = []
    for root in roots:
        if root.exists():
            found += [str(p) for p in root.rglob("*") if any(m in p.name for m in marks)]
    return sorted(found)


async def _wordpress(cp: Cockpit, host: HostBed, domain: str, platform: str = "wp") -> None:
    await _ok(cp, "site.install", domain, {"title": "Original"})
    db = derive_db_name(domain, DbEngine.MYSQL)
    mysql(
        f"UPDATE `{db}`.wp_posts SET post_content ="
        f" 'See <a href=\"http://{domain}/about/\">about</a>' WHERE ID = 1;"
    )
    uploads = host.site_dir(domain) / "web" / "wp-content" / "uploads"
    (uploads / "photo.bin").write_bytes(os.urandom(150_000))
    os.chown(
        uploads / "photo.bin",
        pwd.getpwnam(unix_user(domain)).pw_uid,
        grp.getgrnam("www-data").gr_gid,
    )


async def test_clone_a_wordpress_site_on_its_server(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    source, clone = bed.domain("src"), bed.domain("cln")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("wp", host.name, "wordpress", host.wordpress_root)],
            [Site(source, "wp")],
        )
        await _wordpress(cp, host, source)
        posts = _wp_posts(source)
        uploads = host.site_dir(source) / "web" / "wp-content" / "uploads"
        files = _hashes(uploads)

        log = await _ok(cp, "site.clone", source, {"domain": clone})
        assert f"URLs rewritten: http://{source} -> http://{clone}" in log
        # the clone: served, its own files, user, database and credentials
        login = await host.aget(clone, "/wp-login.php")
        assert login.status == 200 and 'id="loginform"' in login.text
        post = await host.aget(clone, "/?p=1")
        assert post.status == 200 and f"http://{clone}/about/" in post.text
        assert source not in post.text
        assert _wp_option(clone, "siteurl") == f"http://{clone}"
        assert _wp_option(clone, "home") == f"http://{clone}"
        assert [r.split("\t")[:2] for r in _wp_posts(clone)] == [r.split("\t")[:2] for r in posts]
        clone_uploads = host.site_dir(clone) / "web" / "wp-content" / "uploads"
        assert _hashes(clone_uploads) == files
        assert _owners(clone_uploads) == {unix_user(clone)}
        store = SecretStore(cp.config.store.parent / "secrets")
        assert store.get(*site_db_password_key(clone)) != store.get(*site_db_password_key(source))
        config = (host.site_dir(clone) / "web" / "wp-config.php").read_text()
        assert (
            derive_db_name(clone, DbEngine.MYSQL) in config
            and derive_db_name(source, DbEngine.MYSQL) not in config
        )
        assert (await cp.site(clone)) is not None
        # the source: untouched and serving
        assert _wp_posts(source) == posts and _hashes(uploads) == files
        assert _wp_option(source, "siteurl") == f"http://{source}"
        assert (await host.aget(source, "/?p=1")).status == 200
        refused = await cp.run("site.clone", source, {"domain": clone})
        assert refused.state is TaskState.FAILED and "already in the inventory" in refused.result
        assert _leftovers(host.site_dir(source), host.site_dir(clone), host.root / "backups") == []


async def test_clone_to_the_other_server_on_postgresql(bed: SiteBed, tmp_path: Path) -> None:
    a, b = bed.a, bed.b
    source, clone = bed.domain("pgs"), bed.domain("pgc")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [a.server(), b.server()],
            [
                Platform("php-a", a.name, "php", f"{a.root}/platforms/php-{source[:8]}"),
                Platform("php-b", b.name, "php", f"{b.root}/platforms/php-{source[:8]}"),
            ],
            [Site(source, "php-a")],
        )
        await _ok(cp, "platform.install", "php-a")
        await _ok(cp, "platform.install", "php-b")
        await _ok(cp, "site.install", source, {"db_engine": "pgsql"})
        db, user = derive_db_name(source, DbEngine.PGSQL), derive_db_user(source, DbEngine.PGSQL)
        psql(
            f'SET ROLE "{user}"; CREATE TABLE notes (id INT PRIMARY KEY, body TEXT);'
            " INSERT INTO notes VALUES (1, 'one'), (2, 'twö');",
            database=db,
        )
        (a.site_dir(source) / "web" / "data.txt").write_text("from a\n")
        (a.site_dir(source) / "private" / "secret.txt").write_text("private\n")
        os.chown(
            a.site_dir(source) / "private" / "secret.txt",
            pwd.getpwnam(unix_user(source)).pw_uid,
            -1,
        )

        log = await _ok(cp, "site.clone", source, {"domain": clone, "platform": "php-b"})
        assert "streamed" in log
        assert (await b.aget(clone, "/data.txt")).text == "from a\n"
        assert (b.site_dir(clone) / "private" / "secret.txt").read_text() == "private\n"
        assert _owners(b.site_dir(clone) / "private") == {unix_user(clone)}
        cdb, cuser = derive_db_name(clone, DbEngine.PGSQL), derive_db_user(clone, DbEngine.PGSQL)
        assert psql(
            "SELECT id, body FROM notes ORDER BY id;", database=cdb
        ).stdout.splitlines() == [
            "1|one",
            "2|twö",
        ]
        owner = psql("SELECT tableowner FROM pg_tables WHERE tablename = 'notes';", database=cdb)
        assert owner.stdout.strip() == cuser
        assert not a.site_dir(clone).exists() and not a.vhost_file(clone).exists()
        assert (await a.aget(source, "/data.txt")).text == "from a\n"
        assert _leftovers(a.root / "backups", b.root / "backups", b.site_dir(clone)) == []


async def test_migrate_wordpress_to_another_platform_on_its_server(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("mig")
    wp2 = f"{host.root}/platforms/wp2-{domain[:8]}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [
                Platform("wp", host.name, "wordpress", host.wordpress_root),
                Platform("wp2", host.name, "wordpress", wp2),
            ],
            [Site(domain, "wp")],
        )
        await _ok(cp, "platform.install", "wp2", {"source": "/usr/share/wordpress"})
        await _wordpress(cp, host, domain)
        posts = _wp_posts(domain)
        web = host.site_dir(domain) / "web"
        uploads = _hashes(web / "wp-content" / "uploads")
        assert (
            os.stat(web / "wp-login.php").st_ino
            == os.stat(Path(host.wordpress_root) / "wp-login.php").st_ino
        )

        await _ok(cp, "site.migrate", domain, {"platform": "wp2"})
        # the docroot is wp2's code now (hard links), the site's data came along
        assert os.stat(web / "wp-login.php").st_ino == os.stat(Path(wp2) / "wp-login.php").st_ino
        assert _hashes(web / "wp-content" / "uploads") == uploads
        assert _wp_posts(domain) == posts
        login = await host.aget(domain, "/wp-login.php")
        assert login.status == 200 and 'id="loginform"' in login.text
        site = await cp.site(domain)
        assert site is not None and site.platform == "wp2"
        assert '"platform": "wp2"' in host.record_file(domain).read_text()
        assert _leftovers(host.site_dir(domain), host.root / "backups") == []
        # and back again, with the verify finding nothing to change
        await _ok(cp, "site.migrate", domain, {"platform": "wp"})
        verify = await cp.run("site.verify", domain)
        assert verify.result == "no drift", await cp.log_text(verify)


async def test_migrate_between_servers(bed: SiteBed, tmp_path: Path) -> None:
    a, b = bed.a, bed.b
    domain = bed.domain("mvs")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [a.server(), b.server()],
            [
                Platform("php-a", a.name, "php", f"{a.root}/platforms/php-{domain[:8]}"),
                Platform("php-b", b.name, "php", f"{b.root}/platforms/php-{domain[:8]}"),
            ],
            [Site(domain, "php-a")],
        )
        await _ok(cp, "platform.install", "php-a")
        await _ok(cp, "platform.install", "php-b")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        db = derive_db_name(domain, DbEngine.MYSQL)
        mysql(f"CREATE TABLE `{db}`.t (v TEXT); INSERT INTO `{db}`.t VALUES ('kept');")
        (a.site_dir(domain) / "web" / "data.txt").write_text("moved\n")
        assert (await a.aget(domain, "/data.txt")).text == "moved\n"

        log = await _ok(cp, "site.migrate", domain, {"platform": "php-b"})
        assert "use the same database server" in log and "are one machine" in log
        # it answers on b, with its data; a has nothing of it any more
        assert (await b.aget(domain, "/data.txt")).text == "moved\n"
        assert mysql(f"SELECT v FROM `{db}`.t;").stdout.strip() == "kept"
        assert not a.site_dir(domain).exists() and not a.vhost_file(domain).exists()
        assert not a.pool_file(domain).exists() and not a.record_file(domain).exists()
        assert (await a.aget(domain, "/data.txt")).status != 200
        assert b.record_file(domain).exists()
        site = await cp.site(domain)
        assert site is not None and site.platform == "php-b"
        assert unix_user_exists(unix_user(domain))  # shared with b: kept
        assert _leftovers(a.root / "backups", b.root / "backups", b.site_dir(domain)) == []


# -- injected failures ------------------------------------------------------------------


@contextlib.contextmanager
def _grantless_admin() -> Iterator[tuple[str, str]]:
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


async def test_a_clone_that_fills_the_disk_leaves_nothing(bed: SiteBed, tmp_path: Path) -> None:
    a, b = bed.a, bed.b
    source, clone = bed.domain("fs"), bed.domain("fc")
    with _small_root(b, "600k") as small:
        async with cockpit(bed, tmp_path) as cp:
            await cp.add(
                [a.server(), b.server(root=str(small), name="tb3small")],
                [
                    Platform("st-a", a.name, "static", f"{a.root}/platforms/st-{source[:8]}"),
                    Platform("st-s", "tb3small", "static", f"{small}/platforms/st"),
                ],
                [Site(source, "st-a")],
            )
            await _ok(cp, "platform.install", "st-a")
            await _ok(cp, "platform.install", "st-s")
            await _ok(cp, "site.install", source)
            (a.site_dir(source) / "web" / "big.bin").write_bytes(os.urandom(1_500_000))
            before = _hashes(a.site_dir(source))
            task = await cp.run("site.clone", source, {"domain": clone, "platform": "st-s"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step copy files" in task.result
            assert "KiB free there)" in log, log
            assert not (small / "sites" / clone).exists()
            assert not b.vhost_file(clone).exists() and not b.pool_file(clone).exists()
            assert not unix_user_exists(unix_user(clone))
            assert await cp.site(clone) is None
            assert _hashes(a.site_dir(source)) == before
            assert (await a.aget(source, "/")).status == 200
            assert _leftovers(small, a.root / "backups") == []


async def test_a_refused_grant_during_a_migration_keeps_the_site_where_it_was(
    bed: SiteBed, tmp_path: Path
) -> None:
    a, b = bed.a, bed.b
    domain = bed.domain("mg")
    with _grantless_admin() as (admin, password):
        async with cockpit(bed, tmp_path) as cp:
            await cp.add(
                [a.server(), b.server(name="tb3nogrant", mysql={"admin_user": admin})],
                [
                    Platform("php-a", a.name, "php", f"{a.root}/platforms/php-{domain[:8]}"),
                    Platform("php-n", "tb3nogrant", "php", f"{b.root}/platforms/php-n{domain[:8]}"),
                ],
                [Site(domain, "php-a")],
            )
            SecretStore(cp.config.store.parent / "secrets").put(
                *db_admin_key("tb3nogrant", "mysql"), value=password
            )
            await _ok(cp, "platform.install", "php-a")
            await _ok(cp, "platform.install", "php-n")
            await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
            (a.site_dir(domain) / "web" / "data.txt").write_text("stays\n")
            vhost = a.vhost_file(domain).read_bytes()
            db, user = (
                derive_db_name(domain, DbEngine.MYSQL),
                derive_db_user(domain, DbEngine.MYSQL),
            )
            # b's admin may create databases and users but not GRANT: the site's database
            # on b cannot be made. (b shares a's database server: the one a uses must
            # survive the undo.)
            task = await cp.run("site.migrate", domain, {"platform": "php-n"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step target database" in task.result and "denied" in log.lower()
            assert not b.site_dir(domain).exists() and not b.vhost_file(domain).exists()
            assert not b.pool_file(domain).exists() and not b.record_file(domain).exists()
            assert a.vhost_file(domain).read_bytes() == vhost
            assert (await a.aget(domain, "/data.txt")).text == "stays\n"
            assert mysql_has(db, user) == (True, True)
            site = await cp.site(domain)
            assert site is not None and site.platform == "php-a"


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


async def test_a_refused_vhost_during_a_migration_keeps_the_site_where_it_was(
    bed: SiteBed, tmp_path: Path
) -> None:
    a, b = bed.a, bed.b
    domain = bed.domain("mv")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [a.server(), b.server()],
            [
                Platform("st-a", a.name, "static", f"{a.root}/platforms/st-{domain[:8]}"),
                Platform("st-b", b.name, "static", f"{b.root}/platforms/st-{domain[:8]}"),
            ],
            [Site(domain, "st-a")],
        )
        await _ok(cp, "platform.install", "st-a")
        await _ok(cp, "platform.install", "st-b")
        await _ok(cp, "site.install", domain)
        (a.site_dir(domain) / "web" / "data.txt").write_text("stays\n")
        vhost = a.vhost_file(domain).read_bytes()
        _broken_nginx_template()
        task = await cp.run("site.migrate", domain, {"platform": "st-b"})
        log = await cp.log_text(task)
        assert task.state is TaskState.FAILED, log
        assert "failed at step target vhost" in task.result
        assert not b.site_dir(domain).exists() and not b.vhost_file(domain).exists()
        assert not b.record_file(domain).exists()
        assert a.vhost_file(domain).read_bytes() == vhost and a.record_file(domain).exists()
        assert (await a.aget(domain, "/data.txt")).text == "stays\n"
        assert unix_user_exists(unix_user(domain))
        site = await cp.site(domain)
        assert site is not None and site.platform == "st-a"
        assert _leftovers(a.root / "backups", b.root / "backups") == []


async def test_a_refused_grant_during_a_clone_leaves_nothing(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.a
    source, clone = bed.domain("gs"), bed.domain("gc")
    with _grantless_admin() as (admin, password):
        async with cockpit(bed, tmp_path) as cp:
            await cp.add(
                [host.server(), host.server(name="tb2nogrant", mysql={"admin_user": admin})],
                [
                    Platform("php", host.name, "php", f"{host.root}/platforms/php-{source[:8]}"),
                    Platform(
                        "php-n", "tb2nogrant", "php", f"{host.root}/platforms/php-{source[:8]}"
                    ),
                ],
                [Site(source, "php")],
            )
            SecretStore(cp.config.store.parent / "secrets").put(
                *db_admin_key("tb2nogrant", "mysql"), value=password
            )
            await _ok(cp, "platform.install", "php")
            await _ok(cp, "site.install", source, {"db_engine": "mysql"})
            (host.site_dir(source) / "web" / "data.txt").write_text("source\n")
            task = await cp.run("site.clone", source, {"domain": clone, "platform": "php-n"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step target database" in task.result and "denied" in log.lower()
            assert "dropped the half-made database" in log
            assert not host.site_dir(clone).exists() and not host.vhost_file(clone).exists()
            assert not host.pool_file(clone).exists() and not unix_user_exists(unix_user(clone))
            assert mysql_has(
                derive_db_name(clone, DbEngine.MYSQL), derive_db_user(clone, DbEngine.MYSQL)
            ) == (False, False)
            assert await cp.site(clone) is None
            store = SecretStore(cp.config.store.parent / "secrets")
            assert store.get(*site_db_password_key(clone)) is None
            assert (await host.aget(source, "/data.txt")).text == "source\n"


async def test_a_migration_that_fills_the_disk_keeps_the_site_where_it_was(
    bed: SiteBed, tmp_path: Path
) -> None:
    a, b = bed.a, bed.b
    domain = bed.domain("mf")
    with _small_root(b, "600k") as small:
        async with cockpit(bed, tmp_path) as cp:
            await cp.add(
                [a.server(), b.server(root=str(small), name="tb3small")],
                [
                    Platform("st-a", a.name, "static", f"{a.root}/platforms/st-{domain[:8]}"),
                    Platform("st-s", "tb3small", "static", f"{small}/platforms/st"),
                ],
                [Site(domain, "st-a")],
            )
            await _ok(cp, "platform.install", "st-a")
            await _ok(cp, "platform.install", "st-s")
            await _ok(cp, "site.install", domain)
            (a.site_dir(domain) / "web" / "big.bin").write_bytes(os.urandom(1_500_000))
            before = _hashes(a.site_dir(domain))
            vhost = a.vhost_file(domain).read_bytes()
            task = await cp.run("site.migrate", domain, {"platform": "st-s"})
            log = await cp.log_text(task)
            assert task.state is TaskState.FAILED, log
            assert "failed at step copy files" in task.result and "KiB free there)" in log
            assert not (small / "sites" / domain).exists()
            assert not b.vhost_file(domain).exists() and not b.pool_file(domain).exists()
            assert _hashes(a.site_dir(domain)) == before
            assert a.vhost_file(domain).read_bytes() == vhost
            assert (await a.aget(domain, "/big.bin")).status == 200
            assert unix_user_exists(unix_user(domain))
            site = await cp.site(domain)
            assert site is not None and site.platform == "st-a"
            assert _leftovers(small, a.root / "backups") == []


async def test_a_copy_between_servers_maps_the_site_users_files_by_number(
    bed: SiteBed,
) -> None:
    """The receiving server may not know the source site's user by name (it never does
    for a clone): its files arrive with the sender's numbers and are given to the target
    site's user; files of other owners keep theirs."""
    from sitekit import make_pool

    from cockpit.backends.backup.stream import pipe
    from cockpit.tasks.site_data import _RECEIVE, _SEND

    a, b = bed.a, bed.b
    src = a.root / f"src-{secrets.token_hex(3)}"
    dst = b.root / f"dst-{secrets.token_hex(3)}"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "mine.txt").write_text("site\n")
    (src / "web.txt").write_text("web\n")
    os.chown(src / "sub" / "mine.txt", 54321, 54321)  # no such user or group anywhere
    os.chown(src / "sub", 54321, 54321)
    os.chown(src / "web.txt", pwd.getpwnam("www-data").pw_uid, grp.getgrnam("www-data").gr_gid)
    pool = make_pool(bed.fleet)
    try:
        piped = await pipe(
            pool.transport(a.server()), _SEND, ["dir", str(src)],
            pool.transport(b.server()), _RECEIVE, ["dir", str(dst), "", "54321", "54321", "cockpit-tb"],
        )  # fmt: skip
    finally:
        await pool.close()
    assert piped.ok, piped.lines
    tb = pwd.getpwnam("cockpit-tb").pw_uid, grp.getgrnam("cockpit-tb").gr_gid
    for path in (dst / "sub", dst / "sub" / "mine.txt"):
        assert (path.stat().st_uid, path.stat().st_gid) == tb
    assert pwd.getpwuid((dst / "web.txt").stat().st_uid).pw_name == "www-data"
    assert (dst / "sub" / "mine.txt").read_text() == "site\n"
    subprocess.run(["rm", "-rf", str(src), str(dst)], check=False)

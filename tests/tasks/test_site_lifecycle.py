"""The site lifecycle end to end on the test bed: install, verify, disable, enable,
delete and login-reset of static, PHP (MariaDB and PostgreSQL) and WordPress sites, with
real nginx, php-fpm, databases and HTTP requests."""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import stat
from pathlib import Path

from sitekit import (
    Cockpit,
    SiteBed,
    cockpit,
    mysql_has,
    pgsql_has,
    unix_user_exists,
)

from cockpit.backends.secrets import SecretStore, site_db_password_key
from cockpit.engine import TaskState
from cockpit.model import DbEngine, Platform, Site, SiteStatus, derive_db_name, derive_db_user
from cockpit.model import derive_unix_user as unix_user
from cockpit.store import backups as backup_queries
from cockpit.tasks.site import BACKUP_HOOK, admin_password_key, login_link_key


async def _backups(cp: Cockpit, domain: str) -> list[object]:
    async with cp.db.read() as conn:
        return list(await backup_queries.list_for_site(conn, domain))


def _owner(path: Path) -> tuple[str, str, int]:
    st = os.stat(path)
    import grp

    return (
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
        stat.S_IMODE(st.st_mode),
    )


async def _ok(cp: Cockpit, kind: str, target: str, args: dict[str, object] | None = None) -> str:
    task = await cp.run(kind, target, args)
    log = await cp.log_text(task)
    assert task.state is TaskState.SUCCEEDED, f"{kind} {target}: {task.result}\n{log}"
    return log


async def test_static_site_install_verify_disable_enable_delete(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("st")
    alias = f"www.{domain}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("static1", host.name, "static", f"{host.root}/platforms/static1")],
            [Site(domain, "static1", aliases=(alias,))],
        )
        await _ok(cp, "platform.install", "static1")
        log = await _ok(cp, "site.install", domain)
        assert "step 13/13 record: succeeded" in log

        # served, under its alias too, by the real nginx, with the placeholder page
        response = await host.aget(domain)
        assert response.status == 200 and f"{domain} is served by Cockpit" in response.text
        assert (await host.aget(alias)).status == 200
        # owners and modes
        user = unix_user(domain)
        site_dir = host.site_dir(domain)
        assert _owner(site_dir) == (user, "www-data", 0o750)
        assert _owner(site_dir / "web") == (user, "www-data", 0o2750)
        assert _owner(site_dir / "tmp") == (user, user, 0o700)
        assert pwd.getpwnam(user).pw_gecos == f"cockpit site {domain}"
        record = json.loads(host.record_file(domain).read_text())
        assert record["db_engine"] is None and record["unix_user"] == user
        assert stat.S_IMODE(os.stat(host.record_file(domain)).st_mode) == 0o600

        # verify: nothing to do, then drift put back and shown as a diff
        verify = await cp.run("site.verify", domain)
        assert verify.state is TaskState.SUCCEEDED and verify.result == "no drift"
        os.chmod(site_dir, 0o755)
        vhost = host.vhost_file(domain)
        vhost.write_text(vhost.read_text().replace("index index.html", "index nope.html"))
        host.reload_nginx()
        verify = await cp.run("site.verify", domain)
        log = await cp.log_text(verify)
        assert verify.state is TaskState.SUCCEEDED, log
        assert verify.result == "converged: directories, vhost"
        assert (
            "-    index nope.html index.htm;" in log and "+    index index.html index.htm;" in log
        )
        assert f"fixed {site_dir}: {user}:www-data 755 -> {user}:www-data 750" in log
        assert stat.S_IMODE(os.stat(site_dir).st_mode) == 0o750
        assert "nope.html" not in vhost.read_text()

        # disable: the disabled page, the data untouched; enable: served again
        (site_dir / "web" / "data.txt").write_text("kept\n")
        await _ok(cp, "site.disable", domain)
        response = await host.aget(domain)
        assert response.status == 503 and "This site is disabled" in response.text
        assert (await cp.site(domain)).status is SiteStatus.DISABLED  # type: ignore[union-attr]
        assert (site_dir / "web" / "data.txt").read_text() == "kept\n"
        await _ok(cp, "site.enable", domain)
        assert (await host.aget(domain, "/data.txt")).text == "kept\n"
        # a static site has no admin login to reset
        refused = await cp.run("site.login-reset", domain)
        assert refused.state is TaskState.FAILED
        assert "the static platform has no admin login to reset" in refused.result
        assert (await cp.site(domain)).status is SiteStatus.ENABLED  # type: ignore[union-attr]

        # delete: refused while enabled; then a backup first: without a backup
        # implementation the delete is refused, with one it is taken and kept
        refused = await cp.run("site.delete", domain)
        assert refused.state is TaskState.FAILED and "is enabled" in refused.result
        await _ok(cp, "site.disable", domain)
        task = await cp.run("site.delete", domain)
        log = await cp.log_text(task)
        if importlib.util.find_spec(BACKUP_HOOK[0]) is None:
            assert task.state is TaskState.FAILED, log
            assert "takes a backup first" in task.result
            assert host.vhost_file(domain).exists() and site_dir.exists()
            await _ok(cp, "site.delete", domain, {"skip_backup": True})
        else:
            assert task.state is TaskState.SUCCEEDED, log
            assert "step 2/8 backup: succeeded" in log
            assert await _backups(cp, domain)
        assert not site_dir.exists()
        assert not host.vhost_file(domain).exists() and not host.vhost_link(domain).exists()
        assert not host.record_file(domain).exists()
        assert not unix_user_exists(user)
        assert (await cp.site(domain)).status is SiteStatus.DELETED  # type: ignore[union-attr]
        assert (await host.aget(domain)).status != 200


async def test_php_site_on_postgresql(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.b
    domain = bed.domain("pg")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php1", host.name, "php", f"{host.root}/platforms/php1")],
            [Site(domain, "php1")],
        )
        await _ok(cp, "platform.install", "php1")
        log = await _ok(cp, "site.install", domain, {"db_engine": "pgsql"})
        database, user = derive_db_name(domain, "pgsql"), derive_db_user(domain, "pgsql")
        assert pgsql_has(database, user) == (True, True)
        password = SecretStore(cp.config.store.parent / "secrets").get(
            *site_db_password_key(domain)
        )
        assert password and password not in log
        # nor in the store: the database file and its write-ahead log hold no secret
        store_files = sorted(cp.config.store.parent.glob(cp.config.store.name + "*"))
        assert cp.config.store in store_files
        for path in store_files:
            assert password.encode() not in path.read_bytes(), path

        site_dir = host.site_dir(domain)
        settings = site_dir / "private" / "settings.php"
        assert _owner(settings) == (unix_user(domain), "www-data", 0o640)
        assert password in settings.read_text()
        # the site's PHP reads its settings and talks to its database over PDO
        app = site_dir / "web" / "db.php"
        app.write_text(
            "<?php $s = require __DIR__ . '/../private/settings.php'; $d = $s['db'];\n"
            "$pdo = new PDO(\"pgsql:host={$d['host']};port={$d['port']};dbname={$d['name']}\","
            " $d['user'], $d['password']);\n"
            "$pdo->exec('CREATE TABLE IF NOT EXISTS t (v text)');\n"
            "$pdo->exec(\"INSERT INTO t VALUES ('row from php')\");\n"
            "echo $pdo->query('SELECT v FROM t')->fetchColumn(), ' as ', "
            "$pdo->query('SELECT current_user')->fetchColumn(), ' uid ', posix_geteuid() ?? '';\n"
        )
        os.chown(app, pwd.getpwnam(unix_user(domain)).pw_uid, pwd.getpwnam("www-data").pw_gid)
        response = await host.aget(domain, "/db.php")
        assert response.status == 200, response.text
        assert response.text.startswith(f"row from php as {user}")
        assert f"uid {pwd.getpwnam(unix_user(domain)).pw_uid}" in response.text

        verify = await cp.run("site.verify", domain)
        assert verify.state is TaskState.SUCCEEDED and verify.result == "no drift", (
            await cp.log_text(verify)
        )
        # credentials drift (someone edited the settings): put back, shown redacted
        settings.write_text(settings.read_text().replace(password, "wrong-password-123"))
        verify = await cp.run("site.verify", domain)
        log = await cp.log_text(verify)
        assert verify.result == "converged: settings", log
        assert password not in log and "***" in log
        assert password in settings.read_text()

        await _ok(cp, "site.delete", domain, {"force": True, "skip_backup": True})
        assert pgsql_has(database, user) == (False, False)
        assert not host.pool_file(domain).exists()
        assert (
            SecretStore(cp.config.store.parent / "secrets").get(*site_db_password_key(domain))
            is None
        )


async def test_wordpress_site_install_login_reset_verify_delete(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("wp")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("wp", host.name, "wordpress", host.wordpress_root)],
            [Site(domain, "wp")],
        )
        await _ok(cp, "platform.verify", "wp")
        assert (await cp.platform("wp")).release == "6.1.9"  # type: ignore[union-attr]
        log = await _ok(cp, "site.install", domain, {"title": "Cockpit-test"})
        assert "wordpress: installed" in log
        database, user = (
            derive_db_name(domain, DbEngine.MYSQL),
            derive_db_user(domain, DbEngine.MYSQL),
        )
        assert mysql_has(database, user) == (True, True)

        docroot = host.site_dir(domain) / "web"
        config = docroot / "wp-config.php"
        assert _owner(config) == (unix_user(domain), "www-data", 0o640)
        # the code is the platform's, hard-linked and root's: the site cannot change it
        platform_file = Path(host.wordpress_root) / "wp-login.php"
        assert os.stat(docroot / "wp-login.php").st_ino == os.stat(platform_file).st_ino
        assert _owner(docroot / "wp-login.php")[0] == "root"
        assert _owner(docroot / "wp-content" / "uploads") == (unix_user(domain), "www-data", 0o2750)

        login = await host.aget(domain, "/wp-login.php")
        assert login.status == 200 and 'id="loginform"' in login.text
        home = await host.aget(domain, "/")
        assert home.status == 200 and "Cockpit-test" in home.text

        # a one-time login link: kept in the secrets store, never in the log
        task = await cp.run("site.login-reset", domain)
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        store = SecretStore(cp.config.store.parent / "secrets")
        link = store.get(*login_link_key(domain))
        assert link and link.startswith(f"http://{domain}/wp-login.php?action=rp&key=")
        assert link not in log and link.split("key=")[1].split("&")[0] not in log
        path = link.split(domain, 1)[1]
        reset = await host.aget(domain, path)
        assert reset.status in (200, 302)
        assert store.get(*admin_password_key(domain))

        verify = await cp.run("site.verify", domain)
        assert verify.result == "no drift", await cp.log_text(verify)

        await _ok(cp, "site.delete", domain, {"force": True, "skip_backup": True})
        assert mysql_has(database, user) == (False, False)
        assert not host.site_dir(domain).exists() and not unix_user_exists(unix_user(domain))
        assert os.path.exists(platform_file)


async def test_https_required_with_an_alias_redirected_to_the_domain(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    domain = bed.domain("tls")
    alias = f"www.{domain}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("static2", host.name, "static", f"{host.root}/platforms/static2")],
            [Site(domain, "static2", aliases=(alias,), redirection=domain, https="required")],
        )
        await _ok(cp, "platform.install", "static2")
        log = await _ok(cp, "site.install", domain)
        assert f"https://{domain}:{host.https_port}/: 200" in log  # the health probe
        plain = await host.aget(domain)
        assert plain.status == 301
        assert plain.headers["location"] == f"https://{domain}:{host.https_port}/"
        moved = await host.aget(alias)
        assert moved.status == 301  # straight to the HTTPS domain, in one hop
        assert moved.headers["location"] == f"https://{domain}:{host.https_port}/"
        served = await host.aget(domain, https=True)
        assert served.status == 200 and f"{domain} is served by Cockpit" in served.text
        moved = await host.aget(alias, https=True)
        assert moved.status == 301
        assert moved.headers["location"] == f"https://{domain}:{host.https_port}/"
        cert = Path(host.root) / "certs" / domain
        assert stat.S_IMODE(os.stat(cert / "privkey.pem").st_mode) == 0o600
        verify = await cp.run("site.verify", domain)
        assert verify.result == "no drift", await cp.log_text(verify)
        await _ok(cp, "site.delete", domain, {"force": True, "skip_backup": True})
        assert not cert.exists()


async def test_install_again_on_a_live_site_changes_nothing_and_verify_finds_pool_drift(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("again")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("php3", host.name, "php", f"{host.root}/platforms/php3-{domain[:8]}")],
            [Site(domain, "php3", aliases=(f"www.{domain}",))],
        )
        await _ok(cp, "platform.install", "php3")
        await _ok(cp, "site.install", domain, {"db_engine": "mysql"})
        settings = host.site_dir(domain) / "private" / "settings.php"
        before = {
            path: path.read_bytes()
            for path in (host.vhost_file(domain), host.pool_file(domain), settings)
        }
        vhost_mtime = host.vhost_file(domain).stat().st_mtime_ns

        task = await cp.run("site.install", domain, {"db_engine": "mysql"})
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert task.result == f"installed {domain} (php, mysql)"
        assert f"Unix user {unix_user(domain)}: already there" in log
        assert "converged" in log and "settings: unchanged" in log
        assert ": unchanged" in log.split("php-fpm pool", 1)[1].splitlines()[0]
        assert "applied" not in [line for line in log.splitlines() if "vhost " in line][-1]
        assert {path: path.read_bytes() for path in before} == before
        assert host.vhost_file(domain).stat().st_mtime_ns == vhost_mtime
        assert "rollback" not in log
        assert (await host.aget(domain)).status == 200

        # pool drift (someone edited the pool): verify says so and puts it back
        pool = host.pool_file(domain)
        pool.write_text(pool.read_text().replace("pm.max_children", "; pm.max_children", 1))
        assert pool.read_bytes() != before[pool]
        verify = await cp.run("site.verify", domain)
        log = await cp.log_text(verify)
        assert verify.state is TaskState.SUCCEEDED, log
        assert verify.result == "converged: php pool", log
        assert "drift in the php-fpm pool" in log and "; pm.max_children" in log
        assert pool.read_bytes() == before[pool]
        assert (await host.aget(domain)).status == 200
        await _ok(cp, "site.delete", domain, {"force": True, "skip_backup": True})

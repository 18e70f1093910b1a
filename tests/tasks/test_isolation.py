"""Isolation between sites, tested for real: site A's PHP (over HTTP, through nginx and
its own php-fpm pool) tries to read site B's settings and files and B's database; the
Unix users are tried directly too. Each probe has its positive control (B reads its
own), so a broken setup cannot pass for isolation."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
from pathlib import Path

import pytest
from sitekit import Cockpit, HostBed, SiteBed, cockpit, mysql, psql

from cockpit.backends.secrets import SecretStore, site_db_password_key
from cockpit.engine import TaskState
from cockpit.model import DbEngine, Platform, Site, derive_db_name, derive_db_user
from cockpit.model import derive_unix_user as unix_user

PROBE = """<?php
header('Content-Type: application/json');
function tryread($p) {{ $r = @file_get_contents($p); return $r === false ? 'denied' : 'read'; }}
$out = [];
$out['own_settings'] = tryread({own_settings!r});
$out['other_settings'] = tryread({other_settings!r});
$out['other_file'] = tryread({other_file!r});
$out['other_dir'] = @scandir({other_dir!r}) === false ? 'denied' : 'listed';
$out['passwd_shadow'] = tryread('/etc/shadow');
$s = require {own_settings!r};
$d = $s['db'];
$scheme = $d['engine'] === 'pgsql' ? 'pgsql' : 'mysql';
function connect($scheme, $d, $db) {{
    $pdo = new PDO("$scheme:host={{$d['host']}};port={{$d['port']}};dbname=$db", $d['user'], $d['password']);
    $pdo->setAttribute(PDO::ATTR_ERRMODE, PDO::ERRMODE_EXCEPTION);
    return $pdo;
}}
try {{ $own = connect($scheme, $d, $d['name']); $own->query('SELECT 1'); $out['own_db'] = 'ok'; }}
catch (Exception $e) {{ $out['own_db'] = 'denied: ' . $e->getMessage(); }}
try {{ connect($scheme, $d, {other_db!r})->query('SELECT v FROM secrets')->fetchAll(); $out['other_db'] = 'read'; }}
catch (Exception $e) {{ $out['other_db'] = 'denied'; }}
if ($scheme === 'mysql') {{
    try {{ $own->query('SELECT v FROM `' . {other_db!r} . '`.secrets')->fetchAll(); $out['other_db_via_own'] = 'read'; }}
    catch (Exception $e) {{ $out['other_db_via_own'] = 'denied'; }}
}}
echo json_encode($out);
"""


async def _install_pair(cp: Cockpit, host: HostBed, a: str, b: str, engine: DbEngine) -> None:
    await cp.add(
        [host.server()],
        [Platform("php", host.name, "php", f"{host.root}/platforms/php")],
        [Site(a, "php"), Site(b, "php")],
    )
    for task in (
        await cp.run("platform.install", "php"),
        await cp.run("site.install", a, {"db_engine": engine.value}),
        await cp.run("site.install", b, {"db_engine": engine.value}),
    ):
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)


def _place(host: HostBed, domain: str, name: str, text: str) -> None:
    path = host.site_dir(domain) / "web" / name
    path.write_text(text)
    os.chown(path, pwd.getpwnam(unix_user(domain)).pw_uid, pwd.getpwnam("www-data").pw_gid)
    path.chmod(0o640)


def _probe(host: HostBed, me: str, other: str, engine: DbEngine) -> dict[str, str]:
    settings = lambda d: str(host.site_dir(d) / "private" / "settings.php")  # noqa: E731
    _place(
        host,
        me,
        "probe.php",
        PROBE.format(
            own_settings=settings(me),
            other_settings=settings(other),
            other_file=str(host.site_dir(other) / "web" / "secret.txt"),
            other_dir=str(host.site_dir(other)),
            other_db=derive_db_name(other, engine),
        ),
    )
    response = host.get(me, "/probe.php")
    assert response.status == 200, response.text
    result: dict[str, str] = json.loads(response.body)
    return result


def _runuser_cat(user: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", "cat", "--", str(path)],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip


@pytest.mark.parametrize("engine", [DbEngine.MYSQL, DbEngine.PGSQL])
async def test_a_site_cannot_read_another_sites_files_or_database(
    bed: SiteBed, tmp_path: Path, engine: DbEngine
) -> None:
    host = bed.a if engine is DbEngine.MYSQL else bed.b
    a, b = bed.domain("isoa"), bed.domain("isob")
    async with cockpit(bed, tmp_path) as cp:
        await _install_pair(cp, host, a, b, engine)
        for domain in (a, b):
            _place(host, domain, "secret.txt", f"secret of {domain}\n")
            db, user = derive_db_name(domain, engine), derive_db_user(domain, engine)
            if engine is DbEngine.MYSQL:
                mysql(
                    f"CREATE TABLE `{db}`.secrets (v TEXT); INSERT INTO `{db}`.secrets VALUES ('s');"
                )
            else:
                psql(
                    f"SET ROLE \"{user}\"; CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('s');",
                    database=db,
                )
        store = SecretStore(cp.config.store.parent / "secrets")
        assert store.get(*site_db_password_key(a)) != store.get(*site_db_password_key(b))

        # over HTTP: A's PHP against B, and B's PHP against A
        for me, other in ((a, b), (b, a)):
            seen = _probe(host, me, other, engine)
            assert seen["own_settings"] == "read", seen  # the positive control
            assert seen["own_db"] == "ok", seen
            assert seen["other_settings"] == "denied", seen
            assert seen["other_file"] == "denied", seen
            assert seen["other_dir"] == "denied", seen
            assert seen["passwd_shadow"] == "denied", seen
            assert seen["other_db"] == "denied", seen
            if engine is DbEngine.MYSQL:
                assert seen["other_db_via_own"] == "denied", seen
        # each site reads its own secret file through the web server
        assert (await host.aget(a, "/secret.txt")).text == f"secret of {a}\n"

        # the Unix users themselves, without PHP's open_basedir in the way
        b_settings = host.site_dir(b) / "private" / "settings.php"
        refused = _runuser_cat(unix_user(a), b_settings)
        assert refused.returncode != 0 and "Permission denied" in refused.stderr
        allowed = _runuser_cat(unix_user(b), b_settings)
        assert allowed.returncode == 0 and "password" in allowed.stdout
        refused = _runuser_cat(unix_user(a), host.site_dir(b) / "web" / "secret.txt")
        assert refused.returncode != 0

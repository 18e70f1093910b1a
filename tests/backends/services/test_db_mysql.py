"""The mysql plugin against the machine's real MariaDB, from test host tb2 over SSH."""

from __future__ import annotations

from pathlib import Path

import pytest
from svckit import DbBed, server_for, unique_db_name
from testbed import MariaDBAdmin, TestHost

from cockpit.backends.secrets import SecretStore, db_admin_key
from cockpit.backends.services.base import CheckStatus, ServiceError
from cockpit.backends.services.mysql import MysqlService, native_password_hash
from cockpit.backends.ssh import SshPool
from cockpit.model import Service


async def test_create_grant_use_and_drop(mysql_bed: DbBed, mariadb_admin: MariaDBAdmin) -> None:
    creds = await mysql_bed.create()
    assert mariadb_admin.database_exists(creds.database)
    assert mariadb_admin.user_exists(creds.user)
    assert "password" not in repr(creds) and creds.password not in repr(creds)
    assert creds.password not in str(creds.to_json())
    rows = await mysql_bed.db.query_as(
        mysql_bed.transport,
        creds,
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40));\n"
        "INSERT INTO t VALUES (1, 'één'), (2, 'two');\n"
        "SELECT name, CHAR_LENGTH(name) FROM t ORDER BY id;\n",
    )
    assert rows == ["één\t3", "two\t3"]  # stored as utf8mb4, not double-encoded
    # Only this database: no global privileges, no GRANT OPTION.
    grants = mariadb_admin.execute(f"SHOW GRANTS FOR '{creds.user}'@'127.0.0.1';")
    assert "GRANT USAGE ON *.*" in grants
    # (--batch output doubles backslashes)
    escaped = creds.database.replace("_", "\\_")
    assert f"ON `{escaped}`.*" in grants.replace("\\\\", "\\")
    assert "WITH GRANT OPTION" not in grants
    await mysql_bed.db.drop_database(mysql_bed.transport, creds.database, creds.user)
    assert not mariadb_admin.database_exists(creds.database)
    assert not mariadb_admin.user_exists(creds.user)
    # Dropping again is fine (idempotent).
    await mysql_bed.db.drop_database(mysql_bed.transport, creds.database, creds.user)
    assert not await mysql_bed.db.database_exists(mysql_bed.transport, creds.database)


async def test_a_site_user_cannot_read_another_sites_database(mysql_bed: DbBed) -> None:
    base = unique_db_name()
    # "_" is a wildcard in GRANT: an unescaped grant on x_a_b would cover x_acb too.
    a = await mysql_bed.create(f"{base}_a_b")
    b = await mysql_bed.create(f"{base}_acb")
    await mysql_bed.db.query_as(
        mysql_bed.transport, b, "CREATE TABLE secret (v TEXT); INSERT INTO secret VALUES ('b');\n"
    )
    for sql in (
        f"SELECT v FROM `{b.database}`.secret;\n",
        f"USE `{b.database}`;\n",
        f"CREATE TABLE `{b.database}`.intruder (v INT);\n",
    ):
        with pytest.raises(ServiceError) as denied:
            await mysql_bed.db.query_as(mysql_bed.transport, a, sql)
        assert "denied" in str(denied.value)
    visible = await mysql_bed.db.query_as(mysql_bed.transport, a, "SHOW DATABASES;\n")
    assert b.database not in visible and a.database in visible
    assert await mysql_bed.db.query_as(mysql_bed.transport, b, "SELECT v FROM secret;\n") == ["b"]


async def test_ensure_converges_and_rotates_the_password(mysql_bed: DbBed) -> None:
    first = await mysql_bed.create()
    await mysql_bed.db.query_as(mysql_bed.transport, first, "CREATE TABLE kept (v INT);\n")
    same = await mysql_bed.db.ensure_database(
        mysql_bed.transport, first.database, first.user, password=first.password
    )
    assert same == first
    assert await mysql_bed.db.query_as(mysql_bed.transport, same, "SHOW TABLES;\n") == ["kept"]
    rotated = await mysql_bed.db.ensure_database(mysql_bed.transport, first.database, first.user)
    assert rotated.password != first.password
    assert await mysql_bed.db.query_as(mysql_bed.transport, rotated, "SHOW TABLES;\n") == ["kept"]
    with pytest.raises(ServiceError, match="denied"):
        await mysql_bed.db.query_as(mysql_bed.transport, first, "SELECT 1;\n")


async def test_dump_and_load_through_remote_files(mysql_bed: DbBed) -> None:
    source = await mysql_bed.create()
    long_text = "x" * 200_000  # one very long INSERT line: files, not line-split streams
    await mysql_bed.db.query_as(
        mysql_bed.transport,
        source,
        "CREATE TABLE t (id INT PRIMARY KEY, v LONGTEXT);\n"
        f"INSERT INTO t VALUES (1, 'ünï ''quoted'' \\\\ back'), (2, '{long_text}');\n",
    )
    dump = f"{mysql_bed.server.root}/backups/{source.database}.sql"
    assert (await mysql_bed.transport.run_script('mkdir -p -- "$(dirname -- "$1")"', [dump])).ok
    await mysql_bed.db.dump_database(mysql_bed.transport, source.database, dump)
    mode = await mysql_bed.transport.run_script('stat -c %a -- "$1"', [dump], capture=True)
    assert mode.stdout == ["600"]
    target = await mysql_bed.create()
    await mysql_bed.db.load_database(mysql_bed.transport, target.database, target.user, dump)
    rows = await mysql_bed.db.query_as(
        mysql_bed.transport, target, "SELECT id, CHAR_LENGTH(v), LEFT(v, 20) FROM t ORDER BY id;\n"
    )
    assert rows == ["1\t19\tünï 'quoted' \\\\ back", f"2\t200000\t{'x' * 20}"]
    with pytest.raises(ServiceError):
        await mysql_bed.db.load_database(
            mysql_bed.transport, target.database, target.user, f"{dump}.missing"
        )


async def test_verify_check_creates_and_drops_a_scratch_database(
    mysql_bed: DbBed, mariadb_admin: MariaDBAdmin
) -> None:
    checks = await mysql_bed.db.check(mysql_bed.transport)
    assert [c.status for c in checks] == [CheckStatus.OK, CheckStatus.OK], checks
    assert "MariaDB" in checks[0].reason
    leftover = mariadb_admin.execute(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'cockpit\\_verify\\_%';"
    )
    assert leftover.strip() == "0"


async def test_production_defaults_unix_socket_root_through_sudo(
    testhost: TestHost, pool: SshPool, mariadb_admin: MariaDBAdmin
) -> None:
    """Debian's default: root logs in over the socket (unix_socket auth), through sudo."""
    service = Service(
        "db", "mysql", {"user_hosts": "localhost,127.0.0.1", "site_host": "127.0.0.1"}
    )
    server = server_for(testhost, service)
    plugin = MysqlService(server, service)
    checks = await plugin.check(pool.transport(server))
    assert all(c.ok for c in checks), checks


async def test_admin_password_comes_from_the_secret_store(
    testhost: TestHost, pool: SshPool, mariadb_admin: MariaDBAdmin, tmp_path: Path
) -> None:
    admin = unique_db_name("adm")
    password = "Adm1n-" + admin.replace("_", "-") + "-pw"
    mariadb_admin.execute(
        f"CREATE USER '{admin}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{native_password_hash(password)}';\n"
        f"GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'127.0.0.1' WITH GRANT OPTION;\n"
    )
    try:
        service = Service("db", "mysql", {**_settings(), "admin_user": admin})
        server = server_for(testhost, service)
        store = SecretStore(tmp_path / "secrets")
        without = MysqlService(server, service, secret_store=store)
        checks = await without.check(pool.transport(server))
        assert checks[0].status is CheckStatus.FAILED and "denied" in checks[0].reason
        store.put(*db_admin_key(server.name, "mysql"), value=password)
        assert (store.path(*db_admin_key(server.name, "mysql")).stat().st_mode & 0o777) == 0o600
        with_password = MysqlService(server, service, secret_store=store)
        checks = await with_password.check(pool.transport(server))
        assert all(c.ok for c in checks), checks
    finally:
        mariadb_admin.execute(f"DROP USER IF EXISTS '{admin}'@'127.0.0.1';\n")


def _settings() -> dict[str, str | int | bool]:
    from svckit import TESTBED_DB_SETTINGS

    return dict(TESTBED_DB_SETTINGS["mysql"])

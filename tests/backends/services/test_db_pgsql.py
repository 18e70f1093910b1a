"""The pgsql plugin against the machine's real PostgreSQL, from test host tb2 over SSH."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from svckit import DbBed, ScramPostgres, server_for, unique_db_name
from testbed import PostgresAdmin, TestHost

from cockpit.backends.secrets import SecretStore, db_admin_key
from cockpit.backends.services.base import CheckStatus, ServiceError
from cockpit.backends.services.pgsql import PgsqlService, scram_sha256_verifier
from cockpit.backends.ssh import SshPool
from cockpit.model import Service


async def test_create_grant_use_and_drop(pgsql_bed: DbBed, postgres_admin: PostgresAdmin) -> None:
    creds = await pgsql_bed.create()
    assert postgres_admin.database_exists(creds.database)
    assert postgres_admin.role_exists(creds.user)
    owner = postgres_admin.execute(
        f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{creds.database}';"
    )
    assert owner.strip() == creds.user
    attrs = postgres_admin.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
        f"FROM pg_roles WHERE rolname = '{creds.user}';"
    )
    assert attrs.strip() == "f|f|f|f|f"
    stored = postgres_admin.execute(
        f"SELECT rolpassword FROM pg_authid WHERE rolname = '{creds.user}';"
    )
    assert stored.startswith("SCRAM-SHA-256$4096:")  # a verifier, never the password
    rows = await pgsql_bed.db.query_as(
        pgsql_bed.transport,
        creds,
        "CREATE TABLE t (id int PRIMARY KEY, name text);\n"
        "INSERT INTO t VALUES (1, 'één'), (2, 'two');\n"
        "SELECT name, length(name) FROM t ORDER BY id;\n",
    )
    assert rows == ["één\t3", "two\t3"]
    await pgsql_bed.db.drop_database(pgsql_bed.transport, creds.database, creds.user)
    assert not postgres_admin.database_exists(creds.database)
    assert not postgres_admin.role_exists(creds.user)
    await pgsql_bed.db.drop_database(pgsql_bed.transport, creds.database, creds.user)


async def test_a_site_user_cannot_read_another_sites_database(pgsql_bed: DbBed) -> None:
    a = await pgsql_bed.create()
    b = await pgsql_bed.create()
    await pgsql_bed.db.query_as(
        pgsql_bed.transport, b, "CREATE TABLE secret (v text); INSERT INTO secret VALUES ('b');\n"
    )
    # a cannot even connect to b's database.
    intruder = type(a)(a.engine, b.database, a.user, a.password, a.host, a.port)
    with pytest.raises(ServiceError, match="permission denied for database"):
        await pgsql_bed.db.query_as(pgsql_bed.transport, intruder, "SELECT v FROM secret;\n")
    # Nor can it read b's tables from anywhere else (no cross-database queries in PG,
    # and b's schema objects belong to b).
    assert await pgsql_bed.db.query_as(pgsql_bed.transport, b, "SELECT v FROM secret;\n") == ["b"]
    # b's password does not open a's database either.
    swapped = type(b)(b.engine, a.database, b.user, b.password, b.host, b.port)
    with pytest.raises(ServiceError, match="permission denied for database"):
        await pgsql_bed.db.query_as(pgsql_bed.transport, swapped, "SELECT 1;\n")


async def test_ensure_converges_and_rotates_the_password(scram_bed: DbBed) -> None:
    """On a cluster that enforces SCRAM passwords (the machine's own trusts 127.0.0.1)."""
    first = await scram_bed.create()
    await scram_bed.db.query_as(scram_bed.transport, first, "CREATE TABLE kept (v int);\n")
    same = await scram_bed.db.ensure_database(
        scram_bed.transport, first.database, first.user, password=first.password
    )
    assert same == first
    tables = "SELECT tablename FROM pg_tables WHERE schemaname = 'public';\n"
    assert await scram_bed.db.query_as(scram_bed.transport, same, tables) == ["kept"]
    rotated = await scram_bed.db.ensure_database(scram_bed.transport, first.database, first.user)
    assert rotated.password != first.password
    assert await scram_bed.db.query_as(scram_bed.transport, rotated, tables) == ["kept"]
    with pytest.raises(ServiceError, match="password authentication failed"):
        await scram_bed.db.query_as(scram_bed.transport, first, "SELECT 1;\n")


async def test_dump_and_load_keep_the_site_as_owner(
    pgsql_bed: DbBed, postgres_admin: PostgresAdmin
) -> None:
    source = await pgsql_bed.create()
    await pgsql_bed.db.query_as(
        pgsql_bed.transport,
        source,
        "CREATE TABLE t (id int PRIMARY KEY, v text);\n"
        "INSERT INTO t VALUES (1, 'ünï ''quoted'' \\ back'), (2, repeat('x', 200000));\n",
    )
    dump = f"{pgsql_bed.server.root}/backups/{source.database}.sql"
    assert (await pgsql_bed.transport.run_script('mkdir -p -- "$(dirname -- "$1")"', [dump])).ok
    await pgsql_bed.db.dump_database(pgsql_bed.transport, source.database, dump)
    mode = await pgsql_bed.transport.run_script('stat -c %a -- "$1"', [dump], capture=True)
    assert mode.stdout == ["600"]
    target = await pgsql_bed.create()
    await pgsql_bed.db.load_database(pgsql_bed.transport, target.database, target.user, dump)
    rows = await pgsql_bed.db.query_as(
        pgsql_bed.transport, target, "SELECT id, length(v), left(v, 20) FROM t ORDER BY id;\n"
    )
    assert rows == ["1\t19\tünï 'quoted' \\ back", f"2\t200000\t{'x' * 20}"]
    owner = postgres_admin.execute(
        "SELECT tableowner FROM pg_tables WHERE tablename = 't';", database=target.database
    )
    assert owner.strip() == target.user
    # Loading into a database that already has the table fails loudly, all or nothing.
    with pytest.raises(ServiceError, match="already exists"):
        await pgsql_bed.db.load_database(pgsql_bed.transport, target.database, target.user, dump)
    count = await pgsql_bed.db.query_as(pgsql_bed.transport, target, "SELECT count(*) FROM t;\n")
    assert count == ["2"]


async def test_verify_check_creates_and_drops_a_scratch_database(
    pgsql_bed: DbBed, postgres_admin: PostgresAdmin
) -> None:
    checks = await pgsql_bed.db.check(pgsql_bed.transport)
    assert [c.status for c in checks] == [CheckStatus.OK, CheckStatus.OK], checks
    assert checks[0].reason.startswith("PostgreSQL")
    left = postgres_admin.execute(
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'cockpit_verify_%';"
    )
    assert left.strip() == "0"


async def test_production_defaults_peer_login_as_postgres(
    testhost: TestHost, pool: SshPool, postgres_admin: PostgresAdmin
) -> None:
    """Debian's default: psql runs as the postgres Unix user (runuser via sudo), peer login."""
    service = Service("db", "pgsql")
    server = server_for(testhost, service)
    checks = await PgsqlService(server, service).check(pool.transport(server))
    assert all(c.ok for c in checks), checks


async def test_admin_password_comes_from_the_secret_store(
    testhost: TestHost, pool: SshPool, scram_postgres: ScramPostgres, tmp_path: Path
) -> None:
    service = Service("db", "pgsql", scram_postgres.settings())
    server = server_for(testhost, service)
    store = SecretStore(tmp_path / "secrets")
    checks = await PgsqlService(server, service, secret_store=store).check(pool.transport(server))
    assert checks[0].status is CheckStatus.FAILED
    assert "password" in checks[0].reason  # no password supplied / authentication failed
    store.put(*db_admin_key(server.name, "pgsql"), value="wrong-password-0123456789")
    checks = await PgsqlService(server, service, secret_store=store).check(pool.transport(server))
    assert checks[0].status is CheckStatus.FAILED
    assert "password authentication failed" in checks[0].reason
    store.put(*db_admin_key(server.name, "pgsql"), value=scram_postgres.admin_password)
    assert (store.path(*db_admin_key(server.name, "pgsql")).stat().st_mode & 0o777) == 0o600
    checks = await PgsqlService(server, service, secret_store=store).check(pool.transport(server))
    assert all(c.ok for c in checks), checks


async def test_an_admin_that_is_not_a_superuser_works(
    scram_bed: DbBed, scram_postgres: ScramPostgres, tmp_path: Path
) -> None:
    """Managed servers give a CREATEDB CREATEROLE admin, not a superuser: it must do."""
    admin = unique_db_name("mgr")
    password = secrets.token_urlsafe(24)
    # Made with the superuser admin of the SCRAM cluster, through the plugin's own door.
    await scram_bed.db._admin_sql(  # type: ignore[attr-defined]
        scram_bed.transport,
        f"CREATE ROLE \"{admin}\" LOGIN CREATEDB CREATEROLE PASSWORD '{scram_sha256_verifier(password)}';\n",
        what="create a non-superuser admin",
    )
    try:
        service = Service("db", "pgsql", {**scram_postgres.settings(), "admin_user": admin})
        server = server_for(scram_bed.host, service)
        store = SecretStore(tmp_path / "manager-secrets")  # not scram_bed's own store
        store.put(*db_admin_key(server.name, "pgsql"), value=password)
        plugin = PgsqlService(server, service, secret_store=store)
        transport = scram_bed.transport
        checks = await plugin.check(transport)
        assert all(c.ok for c in checks), checks
        creds = await plugin.ensure_database(transport, unique_db_name(), unique_db_name())
        try:
            await plugin.query_as(
                transport, creds, "CREATE TABLE t (v int); INSERT INTO t VALUES (7);\n"
            )
            dump = f"{server.root}/backups/{creds.database}.sql"
            assert (await transport.run_script('mkdir -p -- "$(dirname -- "$1")"', [dump])).ok
            await plugin.dump_database(transport, creds.database, dump)
            copy = await plugin.ensure_database(transport, unique_db_name(), unique_db_name())
            try:
                await plugin.load_database(transport, copy.database, copy.user, dump)
                owner = "SELECT tableowner FROM pg_tables WHERE tablename = 't';\n"
                assert await plugin.query_as(transport, copy, owner) == [copy.user]
            finally:
                await plugin.drop_database(transport, copy.database, copy.user)
        finally:
            await plugin.drop_database(transport, creds.database, creds.user)
        assert not await plugin.user_exists(transport, creds.user)
    finally:
        await scram_bed.db._admin_sql(  # type: ignore[attr-defined]
            scram_bed.transport, f'DROP ROLE IF EXISTS "{admin}";\n', what="drop the admin"
        )

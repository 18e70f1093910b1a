"""Fixtures of the service plugin tests (helpers in svckit.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from svckit import (
    TESTBED_DB_SETTINGS,
    DbBed,
    ScramPostgres,
    WebBed,
    bed_ports,
    make_pool,
    scram_postgres_cluster,
    server_for,
    start_bed,
    stop_bed,
)
from testbed import Fleet, MariaDBAdmin, PostgresAdmin, TestHost

from cockpit.backends.secrets import SecretStore, db_admin_key
from cockpit.backends.services import get_service
from cockpit.backends.services.db import DbService
from cockpit.backends.services.pgsql import PgsqlService
from cockpit.backends.ssh import SshPool
from cockpit.model import Service


@pytest.fixture
async def pool(testhost: TestHost) -> AsyncIterator[SshPool]:
    p = make_pool(testhost)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def nginx_bed(testhost: TestHost, fleet: Fleet, pool: SshPool) -> AsyncIterator[WebBed]:
    ports = bed_ports(fleet)
    bed = await start_bed(testhost, pool, "nginx", ports.nginx_http, ports.nginx_https)
    try:
        yield bed
    finally:
        await stop_bed(bed)


@pytest.fixture
async def apache_bed(testhost: TestHost, fleet: Fleet, pool: SshPool) -> AsyncIterator[WebBed]:
    ports = bed_ports(fleet)
    bed = await start_bed(testhost, pool, "apache", ports.apache_http, ports.apache_https)
    try:
        yield bed
    finally:
        await stop_bed(bed)


@pytest.fixture
def user_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user template override dir (``$XDG_CONFIG_HOME/cockpit/templates``)."""
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    templates = config_home / "cockpit" / "templates"
    templates.mkdir(parents=True)
    return templates


def _db_bed(host: TestHost, pool: SshPool, engine: str, **settings: str | int | bool) -> DbBed:
    service = Service("db", engine, {**TESTBED_DB_SETTINGS[engine], **settings})
    server = server_for(host, service)
    plugin = get_service("db", engine)(server, service)
    assert isinstance(plugin, DbService)
    return DbBed(host, server, pool.transport(server), plugin)


@pytest.fixture
async def mysql_bed(
    testhost: TestHost, pool: SshPool, mariadb_admin: MariaDBAdmin
) -> AsyncIterator[DbBed]:
    """The mysql plugin on test host tb2, reaching the machine's MariaDB over TCP."""
    bed = _db_bed(testhost, pool, "mysql")
    try:
        yield bed
    finally:
        await bed.cleanup()


@pytest.fixture
async def pgsql_bed(
    testhost: TestHost, pool: SshPool, postgres_admin: PostgresAdmin
) -> AsyncIterator[DbBed]:
    """The pgsql plugin on test host tb2, reaching the machine's PostgreSQL over TCP."""
    bed = _db_bed(testhost, pool, "pgsql")
    try:
        yield bed
    finally:
        await bed.cleanup()


@pytest.fixture(scope="session")
def scram_postgres(postgres_admin: PostgresAdmin) -> Iterator[ScramPostgres]:
    """A private PostgreSQL cluster that enforces SCRAM passwords and logs every statement."""
    with scram_postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
async def scram_bed(
    testhost: TestHost, pool: SshPool, scram_postgres: ScramPostgres, tmp_path: Path
) -> AsyncIterator[DbBed]:
    """The pgsql plugin on tb2 against the SCRAM cluster, its admin password in a secret store."""
    store = SecretStore(tmp_path / "secrets")
    store.put(*db_admin_key(testhost.name, "pgsql"), value=scram_postgres.admin_password)
    service = Service("db", "pgsql", scram_postgres.settings())
    server = server_for(testhost, service)
    bed = DbBed(
        testhost, server, pool.transport(server), PgsqlService(server, service, secret_store=store)
    )
    try:
        yield bed
    finally:
        await bed.cleanup()

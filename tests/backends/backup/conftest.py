"""Fixtures of the backup plugin tests: a site's files on a test host, its database on
the machine's MariaDB or PostgreSQL, and the backup plugins bound to that host."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

_SERVICES = str(Path(__file__).resolve().parent.parent / "services")
if _SERVICES not in sys.path:
    sys.path.insert(0, _SERVICES)

from backupkit import SiteBed, make_site_bed  # noqa: E402
from svckit import make_pool  # noqa: E402
from testbed import MariaDBAdmin, PostgresAdmin, TestHost  # noqa: E402

from cockpit.backends.ssh import SshPool  # noqa: E402


@pytest.fixture
async def pool(testhost: TestHost) -> AsyncIterator[SshPool]:
    p = make_pool(testhost)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def mysql_site(
    testhost: TestHost, pool: SshPool, mariadb_admin: MariaDBAdmin
) -> AsyncIterator[SiteBed]:
    """A site on tb2 with files and a MariaDB database with rows."""
    bed = await make_site_bed(testhost, pool, "mysql")
    try:
        yield bed
    finally:
        await bed.cleanup()


@pytest.fixture
async def pgsql_site(
    testhost: TestHost, pool: SshPool, postgres_admin: PostgresAdmin
) -> AsyncIterator[SiteBed]:
    """A site on tb2 with files and a PostgreSQL database with rows."""
    bed = await make_site_bed(testhost, pool, "pgsql")
    try:
        yield bed
    finally:
        await bed.cleanup()


@pytest.fixture(params=["mysql", "pgsql"])
async def any_site(
    request: pytest.FixtureRequest,
    testhost: TestHost,
    pool: SshPool,
    mariadb_admin: MariaDBAdmin,
    postgres_admin: PostgresAdmin,
) -> AsyncIterator[SiteBed]:
    """A site on tb2 with files and rows, once with MariaDB and once with PostgreSQL."""
    bed = await make_site_bed(testhost, pool, request.param)
    try:
        yield bed
    finally:
        await bed.cleanup()

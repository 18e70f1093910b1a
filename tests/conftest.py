"""Shared fixtures: the test bed (real sshd on loopback, MariaDB, PostgreSQL).

    def test_uname(fleet: Fleet) -> None:
        for host in fleet.take(3):           # tb2..tb4 on 127.0.0.2..4, started on demand
            out = subprocess.run(["ssh", "-F", str(fleet.ssh_config()), host.name, "--",
                                  "uname", "-n"], capture_output=True, check=True)

    async def test_asyncssh(testhost: TestHost) -> None:   # one host, fresh empty root
        async with asyncssh.connect(**testhost.asyncssh_options()) as conn: ...

    def test_db(mariadb_db: MariaDBFactory, postgres_db: PostgresFactory) -> None:
        db = mariadb_db()                    # dropped (with its user) after the test
        pg = postgres_db()

Tests that use these fixtures are marked ``testbed`` (``-m "not testbed"`` deselects them).
When a prerequisite is missing they fail, pointing at scripts/test; with COCKPIT_TESTBED=off
they are skipped instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings as hypothesis_settings

# In CI, property tests explore a fixed set of examples (the same on every run), so a
# rare counterexample found by chance on a developer's machine never turns main red at
# random; developers' runs keep exploring new examples.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from testbed import (  # noqa: E402
    Fleet,
    MariaDBAdmin,
    MariaDBFactory,
    PostgresAdmin,
    PostgresFactory,
    TestbedError,
    TestHost,
)

TESTBED_FIXTURES = frozenset(
    {"fleet", "testhost", "mariadb_admin", "mariadb_db", "postgres_admin", "postgres_db"}
)


def testbed_off() -> bool:
    return os.environ.get("COCKPIT_TESTBED", "").strip().lower() == "off"


def _unavailable(error: Exception | str) -> NoReturn:
    if testbed_off():
        pytest.skip("test bed disabled (COCKPIT_TESTBED=off)")
    pytest.fail(f"test bed unavailable: {error}", pytrace=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TESTBED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.testbed)


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """The session's sshd fleet; ``fleet.take(n)`` starts hosts tb2..tb(n+1) on demand."""
    if testbed_off():
        _unavailable("COCKPIT_TESTBED=off")
    error: TestbedError | None = None
    try:
        bed = Fleet.create()
    except TestbedError as e:
        error = e
    if error is not None:
        _unavailable(error)
    try:
        yield bed
    finally:
        bed.close()


@pytest.fixture
def testhost(fleet: Fleet) -> TestHost:
    """One running test host (tb2) with a fresh, empty root directory for this test."""
    return fleet.fresh_root(fleet.take(1)[0])


@pytest.fixture(scope="session")
def mariadb_admin() -> MariaDBAdmin:
    """Admin connection parameters for MariaDB on 127.0.0.1:3306 (root, no password)."""
    if testbed_off():
        _unavailable("COCKPIT_TESTBED=off")
    admin = MariaDBAdmin()
    error: TestbedError | None = None
    try:
        admin.check()
    except TestbedError as e:
        error = e
    if error is not None:
        _unavailable(error)
    return admin


@pytest.fixture
def mariadb_db(
    mariadb_admin: MariaDBAdmin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MariaDBFactory]:
    """``mariadb_db()`` creates a database + user (random password); all dropped afterwards."""
    factory = MariaDBFactory(mariadb_admin, tmp_path_factory.mktemp("mariadb"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgres_admin() -> PostgresAdmin:
    """Admin connection parameters for PostgreSQL on 127.0.0.1:5432 (superuser root)."""
    if testbed_off():
        _unavailable("COCKPIT_TESTBED=off")
    admin = PostgresAdmin()
    error: TestbedError | None = None
    try:
        admin.check()
    except TestbedError as e:
        error = e
    if error is not None:
        _unavailable(error)
    return admin


@pytest.fixture
def postgres_db(
    postgres_admin: PostgresAdmin, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PostgresFactory]:
    """``postgres_db()`` creates a database + owner role (random password); dropped afterwards."""
    factory = PostgresFactory(postgres_admin, tmp_path_factory.mktemp("postgres"))
    yield factory
    factory.drop_all()

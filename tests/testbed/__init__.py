"""The test bed: real sshd on loopback, MariaDB and PostgreSQL on 127.0.0.1.

Use it through the fixtures in tests/conftest.py (``fleet``, ``testhost``, ``mariadb_admin``,
``mariadb_db``, ``postgres_admin``, ``postgres_db``); see sshd.py and databases.py for details.
Set ``COCKPIT_TESTBED=off`` to skip every test that needs it (otherwise a missing prerequisite
fails loudly, pointing at scripts/test).
"""

from .databases import (
    MariaDBAdmin,
    MariaDBDatabase,
    MariaDBFactory,
    PostgresAdmin,
    PostgresDatabase,
    PostgresFactory,
)
from .sshd import (
    BASH_USER,
    LOGIN_USER,
    TCSH_USER,
    Fleet,
    TestbedError,
    TestHost,
    temporary_known_hosts,
)

__all__ = [
    "BASH_USER",
    "LOGIN_USER",
    "TCSH_USER",
    "Fleet",
    "MariaDBAdmin",
    "MariaDBDatabase",
    "MariaDBFactory",
    "PostgresAdmin",
    "PostgresDatabase",
    "PostgresFactory",
    "TestHost",
    "TestbedError",
    "temporary_known_hosts",
]

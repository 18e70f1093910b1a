"""MariaDB and PostgreSQL on 127.0.0.1 for tests, through their command-line clients.

The servers are the machine's own (scripts/test starts them and lets ``root`` log in from
127.0.0.1 without a password). Each test database comes with its own role and a random
password; the password never appears in an argv: MariaDB reads it from a 0600
``--defaults-extra-file``, psql from a 0600 ``PGPASSFILE``. SQL goes to the clients on stdin.
Names look like ``tb_gw0_1f2e3d4c`` (worker + random), so parallel sessions never collide.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .sshd import HINT, TestbedError, worker_number


def _unique_name(prefix: str) -> str:
    return f"{prefix}_gw{worker_number()}_{secrets.token_hex(4)}"


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def _client(argv: list[str], sql: str, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            argv, input=sql, text=True, capture_output=True, env=env, timeout=60, check=False
        )
    except FileNotFoundError as e:
        raise TestbedError(f"{argv[0]} is not installed. {HINT}") from e
    if done.returncode != 0:
        raise TestbedError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _pg_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra or {})
    return env


# -- MariaDB ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MariaDBAdmin:
    """Admin access: ``root`` over TCP on 127.0.0.1, no password."""

    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"

    def argv(self, *extra: str) -> list[str]:
        return [
            "mariadb", "--no-defaults", "--protocol=tcp", "-h", self.host, "-P", str(self.port),
            "-u", self.user, "--batch", "--skip-column-names", *extra,
        ]  # fmt: skip

    def execute(self, sql: str) -> str:
        """Run ``sql`` (fed on stdin) and return the tab-separated output."""
        return _client(self.argv(), sql)

    def check(self) -> None:
        try:
            self.execute("SELECT 1;")
        except TestbedError as e:
            raise TestbedError(
                f"MariaDB is not reachable as {self.user}@{self.host}:{self.port}: {e}. {HINT}"
            ) from None

    def database_exists(self, name: str) -> bool:
        out = self.execute(
            f"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{name}';"
        )
        return out.strip() == "1"

    def user_exists(self, name: str) -> bool:
        out = self.execute(f"SELECT COUNT(*) FROM mysql.user WHERE user = '{name}';")
        return out.strip() != "0"


@dataclass(frozen=True)
class MariaDBDatabase:
    """A database with its own user (granted ALL on it, from 127.0.0.1 and localhost)."""

    name: str
    user: str
    password: str = field(repr=False)
    host: str
    port: int
    defaults_file: Path  # 0600 [client] file: host, port, user, password, database

    def argv(self, *extra: str) -> list[str]:
        """``mariadb`` logged in as this database's user (``--defaults-extra-file`` first)."""
        return ["mariadb", f"--defaults-extra-file={self.defaults_file}", "--batch",
                "--skip-column-names", *extra]  # fmt: skip

    def execute(self, sql: str) -> str:
        return _client(self.argv(), sql)


class MariaDBFactory:
    """Creates databases + users; ``drop_all()`` removes what it created."""

    def __init__(self, admin: MariaDBAdmin, directory: Path) -> None:
        self.admin = admin
        self.directory = directory
        self.created: list[MariaDBDatabase] = []

    def __call__(self, prefix: str = "tb") -> MariaDBDatabase:
        name = _unique_name(prefix)
        password = secrets.token_urlsafe(18)
        defaults = _write_private(
            self.directory / f"{name}.cnf",
            "[client]\n"
            f"host={self.admin.host}\nport={self.admin.port}\nprotocol=tcp\n"
            f"user={name}\npassword={password}\ndatabase={name}\n",
        )
        db = MariaDBDatabase(name, name, password, self.admin.host, self.admin.port, defaults)
        self.created.append(db)
        self.admin.execute(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4;\n"
            + "".join(
                f"CREATE USER '{name}'@'{h}' IDENTIFIED BY '{password}';\n"
                f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{name}'@'{h}';\n"
                for h in ("127.0.0.1", "localhost")
            )
        )
        return db

    def drop(self, db: MariaDBDatabase) -> None:
        self.admin.execute(
            f"DROP DATABASE IF EXISTS `{db.name}`;\n"
            f"DROP USER IF EXISTS '{db.user}'@'127.0.0.1', '{db.user}'@'localhost';\n"
        )
        db.defaults_file.unlink(missing_ok=True)

    def drop_all(self) -> None:
        errors = []
        while self.created:
            db = self.created.pop()
            try:
                self.drop(db)
            except TestbedError as e:
                errors.append(str(e))
        if errors:
            raise TestbedError("could not drop MariaDB test databases: " + "; ".join(errors))


# -- PostgreSQL ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresAdmin:
    """Admin access: superuser ``root`` over TCP on 127.0.0.1, no password."""

    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "root"
    database: str = "postgres"

    def argv(self, *extra: str, database: str | None = None) -> list[str]:
        return [
            "psql", "-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1",
            "-h", self.host, "-p", str(self.port), "-U", self.user,
            "-d", database or self.database, *extra,
        ]  # fmt: skip

    def execute(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` (fed on stdin; each statement in its own transaction)."""
        return _client(self.argv(database=database), sql, env=_pg_env())

    def check(self) -> None:
        try:
            self.execute("SELECT 1;")
        except TestbedError as e:
            raise TestbedError(
                f"PostgreSQL is not reachable as {self.user}@{self.host}:{self.port}: {e}. {HINT}"
            ) from None

    def database_exists(self, name: str) -> bool:
        return self.execute(f"SELECT 1 FROM pg_database WHERE datname = '{name}';").strip() == "1"

    def role_exists(self, name: str) -> bool:
        return self.execute(f"SELECT 1 FROM pg_roles WHERE rolname = '{name}';").strip() == "1"


@dataclass(frozen=True)
class PostgresDatabase:
    """A database owned by its own login role."""

    name: str
    user: str
    password: str = field(repr=False)
    host: str
    port: int
    passfile: Path  # 0600 PGPASSFILE with this role's password

    def env(self) -> dict[str, str]:
        """Environment for libpq clients (psql, pg_dump) to log in as this role."""
        return _pg_env(
            {
                "PGHOST": self.host,
                "PGPORT": str(self.port),
                "PGUSER": self.user,
                "PGDATABASE": self.name,
                "PGPASSFILE": str(self.passfile),
            }
        )

    def argv(self, *extra: str) -> list[str]:
        """``psql`` for this database; run it with ``env=db.env()``."""
        return ["psql", "-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1", *extra]

    def execute(self, sql: str) -> str:
        return _client(self.argv(), sql, env=self.env())

    @property
    def dsn(self) -> str:
        """A libpq URI without the password (it comes from the passfile)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.name}"


class PostgresFactory:
    """Creates databases + owner roles; ``drop_all()`` removes what it created."""

    def __init__(self, admin: PostgresAdmin, directory: Path) -> None:
        self.admin = admin
        self.directory = directory
        self.created: list[PostgresDatabase] = []

    def __call__(self, prefix: str = "tb") -> PostgresDatabase:
        name = _unique_name(prefix)
        password = secrets.token_urlsafe(18)
        passfile = _write_private(
            self.directory / f"{name}.pgpass",
            f"{self.admin.host}:{self.admin.port}:*:{name}:{password}\n",
        )
        db = PostgresDatabase(name, name, password, self.admin.host, self.admin.port, passfile)
        self.created.append(db)
        self.admin.execute(
            f"CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}';\n"
            f'CREATE DATABASE "{name}" OWNER "{name}";\n'
        )
        return db

    def drop(self, db: PostgresDatabase) -> None:
        self.admin.execute(
            f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE);\nDROP ROLE IF EXISTS "{db.user}";\n'
        )
        db.passfile.unlink(missing_ok=True)

    def drop_all(self) -> None:
        errors = []
        while self.created:
            db = self.created.pop()
            try:
                self.drop(db)
            except TestbedError as e:
                errors.append(str(e))
        if errors:
            raise TestbedError("could not drop PostgreSQL test databases: " + "; ".join(errors))

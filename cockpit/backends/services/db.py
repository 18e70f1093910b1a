"""The db kind: a database and its user per site, dumps and loads, and a working check.

Rules every database plugin keeps:

- Database and user names are validated (:func:`~cockpit.model.validate_db_identifier`)
  before anything is sent; SQL is built only from validated names and generated
  passwords of ``A-Z a-z 0-9 _ -``.
- Credentials and SQL travel in files of a private remote workspace: a ``mktemp -d``
  dir (0700) under the server's ``tmp`` dir, each file uploaded atomically with mode
  0600, the whole dir removed afterwards. SQL reaches the client on its stdin (a shell
  redirect), credentials through an option file (``--defaults-file``) or
  ``PGPASSFILE``. Nothing secret is ever in an argv or in an environment variable
  other than a file path.
- A generated password is returned in :class:`DbCredentials` (its repr hides it); the
  caller keeps it in the secrets store (:mod:`cockpit.backends.secrets`).
"""

from __future__ import annotations

import abc
import contextlib
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from cockpit.backends.secrets import db_admin_key
from cockpit.backends.services.base import (
    Check,
    Detected,
    ServiceError,
    ServicePlugin,
    run_step,
)
from cockpit.backends.transport import Transport, TransportError
from cockpit.model import (
    DbEngine,
    ServiceKind,
    ValidationError,
    validate_db_identifier,
    validate_path,
)

__all__ = [
    "PASSWORD_RE",
    "DbCredentials",
    "DbService",
    "Workspace",
    "generate_password",
]

#: What a password Cockpit sends in SQL may look like (``secrets.token_urlsafe``'s
#: alphabet): nothing that a quote or an option file could trip on.
PASSWORD_RE: Final = re.compile(r"[A-Za-z0-9_-]{16,128}")

_MKTEMP: Final = r"""
base=$1 owner=$2
umask 077
if ! [ -d "$base" ]; then base=/tmp; fi
dir=$(mktemp -d -- "$base/cockpit-db.XXXXXXXXXX") || exit 1
if [ -n "$owner" ]; then chown -- "$owner" "$dir" || { rm -rf -- "$dir"; exit 1; }; fi
printf '%s\n' "$dir"
"""

_RMTEMP: Final = r"""
case $1 in */cockpit-db.*) rm -rf -- "$1" ;; *) exit 2 ;; esac
"""


def generate_password() -> str:
    """A new database password: 192 random bits, URL-safe base64 (32 characters)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class DbCredentials:
    """How a site reaches its database. ``repr`` never shows the password."""

    engine: DbEngine
    database: str
    user: str
    password: str = field(repr=False)
    host: str
    port: int

    def to_json(self) -> dict[str, Any]:
        """Everything but the password (that lives in the secrets store only)."""
        return {
            "engine": self.engine.value,
            "database": self.database,
            "user": self.user,
            "host": self.host,
            "port": self.port,
        }


class Workspace:
    """A private dir on the server for option files and SQL; see :meth:`DbService.workspace`."""

    def __init__(self, transport: Transport, path: str, *, sudo: bool) -> None:
        self.transport = transport
        self.path = path
        self.sudo = sudo
        self._count = 0

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    async def put(self, name: str, data: str) -> str:
        """Upload ``data`` as a 0600 file of the workspace; return its path."""
        path = self.file(name)
        try:
            await self.transport.upload(data.encode("utf-8"), path, mode=0o600, sudo=self.sudo)
        except TransportError as exc:
            # The message of an upload error never carries the data.
            raise ServiceError(f"cannot write {path} on the server: {exc}") from exc
        return path

    async def put_sql(self, sql: str) -> str:
        self._count += 1
        return await self.put(f"query-{self._count}.sql", sql)


class DbService(ServicePlugin, abc.ABC):
    """Base of the database plugins (mysql for MariaDB/MySQL, pgsql)."""

    kind: ClassVar[ServiceKind] = ServiceKind.DB
    engine: ClassVar[DbEngine]

    # -- names and secrets ------------------------------------------------------------

    def database_name(self, value: object) -> str:
        return validate_db_identifier(value, self.engine, "database", user=False)

    def user_name(self, value: object) -> str:
        return validate_db_identifier(value, self.engine, "database user", user=True)

    @staticmethod
    def checked_password(password: str | None) -> str:
        if password is None:
            return generate_password()
        if not isinstance(password, str) or not PASSWORD_RE.fullmatch(password):
            raise ValidationError(
                "password", "must be 16-128 of A-Z, a-z, 0-9, '_', '-' (as generated)"
            )
        return password

    def admin_password(self) -> str | None:
        """The admin password from the secrets store, or None (socket/peer login)."""
        if self.secret_store is None:
            return None
        return self.secret_store.get(*db_admin_key(self.server.name, self.type))

    @property
    def sudo(self) -> bool:
        return self.bool_setting("sudo")

    # -- the workspace ----------------------------------------------------------------

    def workspace_owner(self) -> str:
        """The Unix user the database client runs as, if not the transport's (pgsql)."""
        return ""

    @contextlib.asynccontextmanager
    async def workspace(self, transport: Transport) -> AsyncIterator[Workspace]:
        """A fresh 0700 dir under the server's tmp dir, removed on the way out."""
        result = await run_step(
            transport,
            "create a private workspace",
            _MKTEMP,
            [self.paths.tmp, self.workspace_owner()],
            sudo=self.sudo,
            time_limit=60,
        )
        path = result.stdout[-1].strip() if result.ok and result.stdout else ""
        if not path.startswith("/") or "/cockpit-db." not in path:
            raise ServiceError(
                "cannot create a private workspace on the server", output=result.stderr
            )
        validate_path(path, "workspace")
        try:
            yield Workspace(transport, path, sudo=self.sudo)
        finally:
            # On failure the dir stays: 0700, holding 0600 files.
            with contextlib.suppress(ServiceError, TransportError):
                await run_step(
                    transport,
                    "remove the workspace",
                    _RMTEMP,
                    [path],
                    sudo=self.sudo,
                    time_limit=60,
                )

    # -- what a plugin implements -----------------------------------------------------

    @abc.abstractmethod
    async def ensure_database(
        self, transport: Transport, database: str, user: str, *, password: str | None = None
    ) -> DbCredentials:
        """Create (or converge) ``database`` and ``user`` with privileges on that database
        only. The user's password is set to ``password`` (a new random one if None)."""

    @abc.abstractmethod
    async def drop_database(self, transport: Transport, database: str, user: str) -> None:
        """Drop ``database`` and ``user`` (idempotent)."""

    @abc.abstractmethod
    async def database_exists(self, transport: Transport, database: str) -> bool: ...

    @abc.abstractmethod
    async def user_exists(self, transport: Transport, user: str) -> bool: ...

    @abc.abstractmethod
    async def dump_database(self, transport: Transport, database: str, path: str) -> None:
        """Write a dump of ``database`` to ``path`` on the server (mode 0600, atomically)."""

    @abc.abstractmethod
    async def load_database(
        self, transport: Transport, database: str, user: str, path: str
    ) -> None:
        """Load the dump at ``path`` on the server into ``database`` (owned by ``user``)."""

    @abc.abstractmethod
    async def query_as(
        self, transport: Transport, credentials: DbCredentials, sql: str
    ) -> list[str]:
        """Run ``sql`` logged in as a site's user; the output rows, tab-separated.
        Raises :class:`ServiceError` when the server refuses."""

    @abc.abstractmethod
    async def version(self, transport: Transport) -> str:
        """The server's version string (through the admin login)."""

    # -- shared -----------------------------------------------------------------------

    def credentials(self, database: str, user: str, password: str) -> DbCredentials:
        return DbCredentials(
            self.engine,
            database,
            user,
            password,
            self.setting("site_host"),
            self.int_setting("port"),
        )

    async def detect(self, transport: Transport) -> Detected:
        try:
            version = await self.version(transport)
        except ServiceError:
            return Detected(False)
        return Detected(True, version)

    async def check(self, transport: Transport) -> list[Check]:
        """The admin login works, can create a database and a user, grant, and the user
        can log in to it; the scratch database and user are dropped again."""
        label = self.label
        try:
            version = await self.version(transport)
        except (ServiceError, TransportError) as exc:
            return [Check.failed(f"{label}: admin login", str(exc))]
        checks = [Check.passed(f"{label}: admin login", version, version=version)]
        scratch = f"cockpit_verify_{secrets.token_hex(4)}"
        name = f"{label}: create, grant and drop a scratch database"
        failure: Exception | None = None
        try:
            creds = await self.ensure_database(transport, scratch, scratch)
            rows = await self.query_as(transport, creds, "SELECT 42;")
            if rows[-1:] != ["42"]:
                raise ServiceError(f"the scratch user read {rows!r} instead of 42")
        except (ServiceError, TransportError, ValidationError) as exc:
            failure = exc
        # Dropped whatever happened above (a half-made scratch user included).
        try:
            await self.drop_database(transport, scratch, scratch)
            if failure is None and await self.database_exists(transport, scratch):
                raise ServiceError(f"the scratch database {scratch} is still there after DROP")
        except (ServiceError, TransportError) as exc:
            failure = failure or exc
        if failure is not None:
            checks.append(Check.failed(name, str(failure)))
        else:
            checks.append(Check.passed(name, f"{scratch} created, used by its user and dropped"))
        return checks


def tsv(lines: Sequence[str]) -> list[str]:
    """Rows of a client's batch output (empty lines dropped)."""
    return [line for line in lines if line != ""]

"""What the database plugins that drive their server through its command-line clients
share (``mysql``, ``pgsql``): the admin's SQL, the version, dumps and loads.

Each of these steps runs in a private workspace (:meth:`DbService.workspace`): the
admin's credentials go in a 0600 file of it (or none, for a socket or peer login), the
SQL in another, read by the client on its stdin. A plugin supplies what is its own
engine's: the credentials file (:meth:`ClientDbService.admin_login`), how its client
runs a SQL file as the admin (:meth:`ClientDbService.admin_statements`), its dump and
load scripts and their arguments. Names are validated here before anything is sent.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Final

from cockpit.backends.services.base import ServiceError, run_step
from cockpit.backends.services.db import DbService, Workspace, tsv
from cockpit.backends.transport import Transport
from cockpit.model import validate_path

__all__ = ["DUMP_TO_OUT", "ClientDbService"]

#: The end of a dump script: runs the command in ``"$@"`` with its output to a 0600
#: partial file beside ``$out``, renamed to ``$out`` when complete, removed when not.
DUMP_TO_OUT: Final = r"""
umask 077
tmp="$out.cockpit-partial"
if "$@" > "$tmp"; then
    sync -- "$tmp" 2>/dev/null
    mv -f -- "$tmp" "$out"
else
    rc=$?
    rm -f -- "$tmp"
    exit "$rc"
fi
"""


class ClientDbService(DbService, abc.ABC):
    """A database plugin that runs its engine's clients on the server."""

    #: The SQL that prints the server's version (its last row).
    version_sql: ClassVar[str]
    #: The script that dumps a database to a file (arguments: :meth:`dump_args`).
    dump_script: ClassVar[str]
    #: The script that loads a dump into a database (arguments: :meth:`load_args`).
    load_script: ClassVar[str]

    # -- what a plugin implements -----------------------------------------------------

    @abc.abstractmethod
    async def admin_login(self, ws: Workspace) -> str:
        """Put the admin's credentials in a 0600 file of ``ws``; its path, or "" when
        the admin logs in without one."""

    @abc.abstractmethod
    async def admin_statements(
        self, ws: Workspace, login: str, sql: str, *, what: str
    ) -> list[str]:
        """Run ``sql`` as the admin (credentials file ``login``); the output rows."""

    @abc.abstractmethod
    def dump_args(self, ws: Workspace, login: str, database: str, path: str) -> list[str]:
        """The arguments of :attr:`dump_script`."""

    @abc.abstractmethod
    def load_args(
        self, ws: Workspace, login: str, database: str, user: str, path: str
    ) -> list[str]:
        """The arguments of :attr:`load_script`."""

    # -- shared -----------------------------------------------------------------------

    async def run_sql_file(
        self, ws: Workspace, script: str, args: list[str], *, what: str
    ) -> list[str]:
        """Run a client ``script`` that reads a SQL file of ``ws``; its output rows."""
        result = await run_step(ws.transport, what, script, args, sudo=self.sudo, time_limit=600)
        if not result.ok:
            raise ServiceError(
                f"{self.label}: {what} failed (exit {result.exit_code})", output=result.stderr
            )
        return tsv(result.stdout)

    async def _admin_sql(self, transport: Transport, sql: str, *, what: str) -> list[str]:
        """Run ``sql`` as the admin in a workspace of its own."""
        async with self.workspace(transport) as ws:
            login = await self.admin_login(ws)
            return await self.admin_statements(ws, login, sql, what=what)

    async def version(self, transport: Transport) -> str:
        rows = await self._admin_sql(transport, self.version_sql, what="read the server version")
        if not rows:
            raise ServiceError(f"{self.label}: the server did not say its version")
        return rows[-1]

    async def dump_database(self, transport: Transport, database: str, path: str) -> None:
        database = self.database_name(database)
        path = validate_path(path, "dump path")
        async with self.workspace(transport) as ws:
            login = await self.admin_login(ws)
            result = await run_step(
                transport,
                f"dump {database}",
                self.dump_script,
                self.dump_args(ws, login, database, path),
                sudo=self.sudo,
                time_limit=None,
            )
        if not result.ok:
            raise ServiceError(f"{self.label}: dumping {database} failed", output=result.stderr)

    async def load_database(
        self, transport: Transport, database: str, user: str, path: str
    ) -> None:
        database = self.database_name(database)
        user = self.user_name(user)
        path = validate_path(path, "dump path")
        async with self.workspace(transport) as ws:
            login = await self.admin_login(ws)
            result = await run_step(
                transport,
                f"load {database}",
                self.load_script,
                self.load_args(ws, login, database, user, path),
                sudo=self.sudo,
                time_limit=None,
            )
        if not result.ok:
            raise ServiceError(
                f"{self.label}: loading into {database} failed", output=result.stderr
            )

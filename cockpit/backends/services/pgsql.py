"""PostgreSQL through ``psql`` and ``pg_dump``.

By default the clients run as the ``postgres`` Unix user (``runuser``, through sudo) and
log in over the socket by peer authentication, as on a stock Debian server. With
``host`` set they use TCP, and an admin password (from the secrets store) goes in a
0600 ``PGPASSFILE``.

A site's role owns its database; ``CONNECT`` is revoked from ``PUBLIC`` on it, so no
other site's role can even connect. The role's password is sent as a SCRAM-SHA-256
verifier computed here: the clear password never reaches the server (nor its logs,
whatever ``log_statement`` says).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import ClassVar, Final

from cockpit.backends.services.base import Setting, SettingKind
from cockpit.backends.services.db import DbCredentials, Workspace
from cockpit.backends.services.dbclient import DUMP_TO_OUT, ClientDbService
from cockpit.backends.transport import Transport
from cockpit.model import DbEngine, ValidationError

__all__ = ["PgsqlService", "scram_sha256_verifier"]

_ENV: Final = r"""
unset PGPASSWORD PGPASSFILE PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE \
    PGSERVICEFILE PGOPTIONS PGAPPNAME PGCONNECT_TIMEOUT
run_as() {
    if [ -n "$os_user" ]; then
        chown -R -- "$os_user" "$dir" || exit 1
        runuser -u "$os_user" -- "$@"
    else
        "$@"
    fi
}
cd /
if [ -n "$passfile" ]; then PGPASSFILE=$passfile; export PGPASSFILE; fi
"""

#: Args: workspace, os user, host, port, user, database, sql file, passfile ("" none).
_SQL: Final = (
    r"""
dir=$1 os_user=$2 host=$3 port=$4 user=$5 db=$6 sql=$7 passfile=$8
"""
    + _ENV
    + r"""
set -- psql -X -q -A -t -w -v ON_ERROR_STOP=1 -F "$(printf '\t')" -p "$port" -U "$user" -d "$db"
if [ -n "$host" ]; then set -- "$@" -h "$host"; fi
run_as "$@" < "$sql"
"""
)

#: Args: workspace, os user, host, port, user, database, dump file, passfile ("" none).
_DUMP: Final = (
    r"""
dir=$1 os_user=$2 host=$3 port=$4 user=$5 db=$6 out=$7 passfile=$8
"""
    + _ENV
    + r"""
set -- pg_dump -w --no-owner --no-privileges -p "$port" -U "$user" -d "$db"
if [ -n "$host" ]; then set -- "$@" -h "$host"; fi
set -- run_as "$@"
"""
    + DUMP_TO_OUT
)

#: The dump is loaded in one transaction with the site's role as the current role, so
#: everything it creates belongs to the site. Args: as for _DUMP (the dump file to
#: read), then the site's role.
_LOAD: Final = (
    r"""
dir=$1 os_user=$2 host=$3 port=$4 user=$5 db=$6 in=$7 passfile=$8 owner=$9
"""
    + _ENV
    + r"""
[ -r "$in" ] || { echo "cockpit: cannot read the dump $in" >&2; exit 66; }
set -- psql -X -q -w -v ON_ERROR_STOP=1 --single-transaction -p "$port" -U "$user" -d "$db"
if [ -n "$host" ]; then set -- "$@" -h "$host"; fi
{ printf 'SET ROLE "%s";\n' "$owner"; cat -- "$in"; } | run_as "$@"
"""
)


def scram_sha256_verifier(
    password: str, *, iterations: int = 4096, salt: bytes | None = None
) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    ``password`` must be ASCII without controls (SASLprep is then the identity), as
    Cockpit's generated passwords are.
    """
    if not password.isascii() or not password.isprintable():
        raise ValidationError("password", "must be printable ASCII")
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("ascii"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _passfile_field(value: str) -> str:
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValidationError("password", "must be one line")
    return value.replace("\\", "\\\\").replace(":", "\\:")


class PgsqlService(ClientDbService):
    type: ClassVar[str] = "pgsql"
    description: ClassVar[str] = "PostgreSQL"
    engine: ClassVar[DbEngine] = DbEngine.PGSQL
    version_sql: ClassVar[str] = "SELECT version();\n"
    dump_script: ClassVar[str] = _DUMP
    load_script: ClassVar[str] = _LOAD
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        "host": Setting(
            SettingKind.OPTIONAL_ADDRESS,
            "",
            "the admin connects over TCP to this host (empty: socket)",
        ),
        "port": Setting(SettingKind.PORT, 5432, "the server's port"),
        "admin_user": Setting(SettingKind.WORD, "postgres", "the admin role"),
        "os_user": Setting(
            SettingKind.OPTIONAL_UNIX_USER,
            "postgres",
            "run the admin clients as this Unix user (peer login); empty: as the login user or root",
        ),
        "sudo": Setting(
            SettingKind.BOOL, True, "run the clients through sudo (needed for os_user)"
        ),
        "maintenance_db": Setting(
            SettingKind.WORD, "postgres", "the database the admin connects to"
        ),
        "site_host": Setting(SettingKind.WORD, "127.0.0.1", "the host sites connect to"),
    }

    def workspace_owner(self) -> str:
        return self.setting("os_user")

    async def admin_login(self, ws: Workspace) -> str:
        password = self.admin_password()
        if not password:
            return ""
        line = f"*:*:*:{_passfile_field(self.setting('admin_user'))}:{_passfile_field(password)}\n"
        return await ws.put("admin.pgpass", line)

    def _admin_args(self) -> tuple[str, str, str, str]:
        return (
            self.setting("os_user"),
            self.setting("host"),
            str(self.int_setting("port")),
            self.setting("admin_user"),
        )

    async def admin_statements(
        self, ws: Workspace, login: str, sql: str, *, what: str
    ) -> list[str]:
        return await self._run_sql(
            ws, sql, *self._admin_args(), self.setting("maintenance_db"),
            passfile=login, what=what,
        )  # fmt: skip

    def dump_args(self, ws: Workspace, login: str, database: str, path: str) -> list[str]:
        return [ws.path, *self._admin_args(), database, path, login]

    def load_args(
        self, ws: Workspace, login: str, database: str, user: str, path: str
    ) -> list[str]:
        return [ws.path, *self._admin_args(), database, path, login, user]

    async def _run_sql(
        self,
        ws: Workspace,
        sql: str,
        os_user: str,
        host: str,
        port: str,
        user: str,
        database: str,
        *,
        passfile: str,
        what: str,
    ) -> list[str]:
        path = await ws.put_sql(sql)
        args = [ws.path, os_user, host, port, user, database, path, passfile]
        return await self.run_sql_file(ws, _SQL, args, what=what)

    # -- the service ------------------------------------------------------------------

    async def ensure_database(
        self, transport: Transport, database: str, user: str, *, password: str | None = None
    ) -> DbCredentials:
        database = self.database_name(database)
        user = self.user_name(user)
        password = self.checked_password(password)
        verifier = scram_sha256_verifier(password)
        # A new role has no special attributes; one that has some loses them (that part
        # needs a superuser, and only runs when there is something to take away). An
        # admin that is not a superuser (CREATEROLE, as on managed servers) becomes a
        # member of the site's role, which it needs to give it a database and to load
        # dumps as it.
        sql = "\n".join(
            [
                f"SELECT 'CREATE ROLE \"{user}\" LOGIN' WHERE NOT EXISTS "
                f"(SELECT FROM pg_catalog.pg_roles WHERE rolname = '{user}')\\gexec",
                f'SELECT \'ALTER ROLE "{user}" WITH NOSUPERUSER NOCREATEDB NOCREATEROLE '
                "NOREPLICATION NOBYPASSRLS' FROM pg_catalog.pg_roles "
                f"WHERE rolname = '{user}' AND (rolsuper OR rolcreatedb OR rolcreaterole "
                "OR rolreplication OR rolbypassrls)\\gexec",
                f"SELECT format('GRANT \"{user}\" TO %I', current_user) WHERE NOT "
                "(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) "
                f"AND NOT pg_catalog.pg_has_role(current_user, '{user}', 'MEMBER')\\gexec",
                f"ALTER ROLE \"{user}\" WITH LOGIN PASSWORD '{verifier}';",
                f'SELECT \'CREATE DATABASE "{database}" OWNER "{user}"\' WHERE NOT EXISTS '
                f"(SELECT FROM pg_catalog.pg_database WHERE datname = '{database}')\\gexec",
                f'ALTER DATABASE "{database}" OWNER TO "{user}";',
                f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;',
                f'GRANT ALL ON DATABASE "{database}" TO "{user}";',
                "",
            ]
        )
        await self._admin_sql(transport, sql, what=f"create the database {database}")
        return self.credentials(database, user, password)

    async def drop_database(self, transport: Transport, database: str, user: str) -> None:
        database = self.database_name(database)
        user = self.user_name(user)
        sql = f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE);\nDROP ROLE IF EXISTS "{user}";\n'
        await self._admin_sql(transport, sql, what=f"drop the database {database}")

    async def database_exists(self, transport: Transport, database: str) -> bool:
        database = self.database_name(database)
        rows = await self._admin_sql(
            transport,
            f"SELECT count(*) FROM pg_catalog.pg_database WHERE datname = '{database}';\n",
            what=f"look for the database {database}",
        )
        return rows[-1:] == ["1"]

    async def user_exists(self, transport: Transport, user: str) -> bool:
        user = self.user_name(user)
        rows = await self._admin_sql(
            transport,
            f"SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = '{user}';\n",
            what=f"look for the role {user}",
        )
        return rows[-1:] == ["1"]

    async def query_as(
        self, transport: Transport, credentials: DbCredentials, sql: str
    ) -> list[str]:
        database = self.database_name(credentials.database)
        user = self.user_name(credentials.user)
        password = self.checked_password(credentials.password)
        async with self.workspace(transport) as ws:
            passfile = await ws.put("user.pgpass", f"*:*:*:{user}:{_passfile_field(password)}\n")
            return await self._run_sql(
                ws, sql, "", credentials.host, str(credentials.port), user, database,
                passfile=passfile, what=f"query as {user}",
            )  # fmt: skip

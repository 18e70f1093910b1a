"""MariaDB and MySQL through their command-line clients (``mariadb`` or ``mysql``).

The admin logs in with an option file (``--defaults-file``: only that file is read, so a
``~/.my.cnf`` on the server cannot change who we are). By default the client runs as
root through sudo and logs in over the Unix socket (Debian's ``unix_socket`` root);
with ``host`` set it uses TCP, and an admin password comes from the secrets store.

A site's user gets ``ALL PRIVILEGES`` on its database only, from each host of
``user_hosts``. The database name is escaped in the GRANT (``_`` is a wildcard there:
``shop_db`` would also match ``shopxdb``). On MariaDB the password is sent already
hashed (``IDENTIFIED BY PASSWORD '*…'``), so no server log can hold it in clear.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from typing import ClassVar, Final

from cockpit.backends.secrets import SecretStore
from cockpit.backends.services.base import Setting, SettingKind
from cockpit.backends.services.db import DbCredentials, Workspace
from cockpit.backends.services.dbclient import DUMP_TO_OUT, ClientDbService
from cockpit.backends.transport import Transport
from cockpit.model import (
    DbEngine,
    Server,
    Service,
    ValidationError,
    validate_hostname,
    validate_path,
)

__all__ = ["MysqlService", "native_password_hash"]

_HOST_PATTERN_RE: Final = re.compile(r"[0-9.%_]+")

#: Finds the client when the setting names none.
_FIND_CLIENT: Final = r"""
if [ -z "$client" ]; then
    client=$(command -v mariadb || command -v mysql) ||
        { echo "cockpit: neither mariadb nor mysql (the client) is installed" >&2; exit 127; }
fi
"""

#: Run one SQL file through the client. Args: workspace, client, option file, sql file,
#: database ("" for none).
_SQL: Final = (
    r"""
dir=$1 client=$2 cnf=$3 sql=$4 db=$5
"""
    + _FIND_CLIENT
    + r"""
if [ -n "$db" ]; then
    exec "$client" --defaults-file="$cnf" --batch --skip-column-names --database="$db" < "$sql"
fi
exec "$client" --defaults-file="$cnf" --batch --skip-column-names < "$sql"
"""
)

#: Args: workspace, dump tool, option file, database, dump file.
_DUMP: Final = (
    r"""
dir=$1 dump=$2 cnf=$3 db=$4 out=$5
if [ -z "$dump" ]; then
    dump=$(command -v mariadb-dump || command -v mysqldump) ||
        { echo "cockpit: neither mariadb-dump nor mysqldump is installed" >&2; exit 127; }
fi
set -- "$dump" --defaults-file="$cnf" --single-transaction --routines --triggers --events \
    --hex-blob --default-character-set=utf8mb4 "$db"
"""
    + DUMP_TO_OUT
)

#: Args: workspace, client, option file, database, dump file.
_LOAD: Final = (
    r"""
dir=$1 client=$2 cnf=$3 db=$4 in=$5
"""
    + _FIND_CLIENT
    + r"""
[ -r "$in" ] || { echo "cockpit: cannot read the dump $in" >&2; exit 66; }
exec "$client" --defaults-file="$cnf" --batch --database="$db" < "$in"
"""
)


def native_password_hash(password: str) -> str:
    """MySQL's ``mysql_native_password`` hash: ``*`` + upper hex SHA1(SHA1(password))."""
    inner = hashlib.sha1(password.encode("utf-8")).digest()  # noqa: S324 - the protocol's hash
    return "*" + hashlib.sha1(inner).hexdigest().upper()  # noqa: S324


def _grant_pattern(database: str) -> str:
    """A database name as a GRANT pattern: ``_`` and ``%`` are wildcards there."""
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def _account(user: str, host: str) -> str:
    return f"'{user}'@'{host}'"


def _validate_account_host(host: str, field: str = "user_hosts") -> str:
    """``localhost``, an IP address, a host name, or a pattern of digits, '.', '%', '_'."""
    if host == "localhost":
        return host
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if _HOST_PATTERN_RE.fullmatch(host) and len(host) <= 60:
        return host
    return validate_hostname(host, field)


def _option(value: str) -> str:
    """A value for a MySQL option file, double-quoted with its escapes."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ValidationError("option", "must be one line")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MysqlService(ClientDbService):
    type: ClassVar[str] = "mysql"
    description: ClassVar[str] = "MariaDB or MySQL"
    engine: ClassVar[DbEngine] = DbEngine.MYSQL
    version_sql: ClassVar[str] = "SELECT VERSION();\n"
    dump_script: ClassVar[str] = _DUMP
    load_script: ClassVar[str] = _LOAD
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        "client": Setting(SettingKind.OPTIONAL_WORD, "", "the client (empty: mariadb, then mysql)"),
        "dump": Setting(
            SettingKind.OPTIONAL_WORD, "", "the dump tool (empty: mariadb-dump, then mysqldump)"
        ),
        "host": Setting(
            SettingKind.OPTIONAL_ADDRESS,
            "",
            "the admin connects over TCP to this host (empty: socket)",
        ),
        "port": Setting(SettingKind.PORT, 3306, "the server's TCP port"),
        "socket": Setting(
            SettingKind.OPTIONAL_PATH, "", "the server's Unix socket (empty: default)"
        ),
        "admin_user": Setting(SettingKind.WORD, "root", "the admin account"),
        "sudo": Setting(SettingKind.BOOL, True, "run the clients as root (unix_socket login)"),
        "user_hosts": Setting(
            SettingKind.WORD_LIST,
            "localhost",
            "hosts a site's user may connect from, comma-separated",
        ),
        "site_host": Setting(SettingKind.WORD, "localhost", "the host sites connect to"),
    }

    def __init__(
        self,
        server: Server,
        service: Service | None = None,
        *,
        secret_store: SecretStore | None = None,
    ) -> None:
        super().__init__(server, service, secret_store=secret_store)
        self.user_hosts = [
            _validate_account_host(h.strip())
            for h in self.setting("user_hosts").split(",")
            if h.strip()
        ]
        if not self.user_hosts:
            raise ValidationError(
                "service.mysql.settings.user_hosts", "must name at least one host"
            )
        self._flavour: str | None = None

    # -- option files -----------------------------------------------------------------

    def _option_file(self, user: str, password: str | None, *, host: str, port: int) -> str:
        # --defaults-file reads nothing else, not even the distribution's client charset.
        lines = ["[client]", f"user={_option(user)}", "default-character-set=utf8mb4"]
        if password:
            lines.append(f"password={_option(password)}")
        if host and host != "localhost":
            lines += [f"host={_option(host)}", f"port={port}", "protocol=tcp"]
        else:
            socket = self.setting("socket")
            if socket:
                lines.append(f"socket={_option(validate_path(socket, 'socket'))}")
            lines.append("protocol=socket")
        return "\n".join(lines) + "\n"

    async def admin_login(self, ws: Workspace) -> str:
        text = self._option_file(
            self.setting("admin_user"),
            self.admin_password(),
            host=self.setting("host"),
            port=self.int_setting("port"),
        )
        return await ws.put("admin.cnf", text)

    async def _sql(
        self, ws: Workspace, cnf: str, sql: str, *, database: str = "", what: str
    ) -> list[str]:
        path = await ws.put_sql(sql)
        args = [ws.path, self.setting("client"), cnf, path, database]
        return await self.run_sql_file(ws, _SQL, args, what=what)

    async def admin_statements(
        self, ws: Workspace, login: str, sql: str, *, what: str
    ) -> list[str]:
        return await self._sql(ws, login, sql, what=what)

    def dump_args(self, ws: Workspace, login: str, database: str, path: str) -> list[str]:
        return [ws.path, self.setting("dump"), login, database, path]

    def load_args(
        self, ws: Workspace, login: str, database: str, user: str, path: str
    ) -> list[str]:
        return [ws.path, self.setting("client"), login, database, path]

    async def _is_mariadb(self, ws: Workspace, cnf: str) -> bool:
        if self._flavour is None:
            rows = await self._sql(ws, cnf, self.version_sql, what="read the server version")
            self._flavour = rows[-1] if rows else ""
        return "mariadb" in self._flavour.lower()

    # -- the service ------------------------------------------------------------------

    async def version(self, transport: Transport) -> str:
        self._flavour = await super().version(transport)
        return self._flavour

    async def ensure_database(
        self, transport: Transport, database: str, user: str, *, password: str | None = None
    ) -> DbCredentials:
        database = self.database_name(database)
        user = self.user_name(user)
        password = self.checked_password(password)
        async with self.workspace(transport) as ws:
            cnf = await self.admin_login(ws)
            if await self._is_mariadb(ws, cnf):
                identified = f"IDENTIFIED BY PASSWORD '{native_password_hash(password)}'"
            else:
                identified = f"IDENTIFIED BY '{password}'"
            statements = [
                f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4;",
            ]
            for host in self.user_hosts:
                account = _account(user, host)
                statements += [
                    f"CREATE USER IF NOT EXISTS {account} {identified};",
                    f"ALTER USER {account} {identified};",
                    f"GRANT ALL PRIVILEGES ON `{_grant_pattern(database)}`.* TO {account};",
                ]
            await self._sql(
                ws, cnf, "\n".join(statements) + "\n", what=f"create the database {database}"
            )
        return self.credentials(database, user, password)

    async def drop_database(self, transport: Transport, database: str, user: str) -> None:
        database = self.database_name(database)
        user = self.user_name(user)
        async with self.workspace(transport) as ws:
            cnf = await self.admin_login(ws)
            rows = await self._sql(
                ws,
                cnf,
                f"SELECT Host FROM mysql.user WHERE User = '{user}';\n",
                what=f"list the accounts of {user}",
            )
            hosts = {_validate_account_host(h, "mysql.user host") for h in rows} | set(
                self.user_hosts
            )
            statements = [f"DROP DATABASE IF EXISTS `{database}`;"]
            statements += [f"DROP USER IF EXISTS {_account(user, h)};" for h in sorted(hosts)]
            await self._sql(
                ws, cnf, "\n".join(statements) + "\n", what=f"drop the database {database}"
            )

    async def database_exists(self, transport: Transport, database: str) -> bool:
        database = self.database_name(database)
        rows = await self._admin_sql(
            transport,
            f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{database}';\n",
            what=f"look for the database {database}",
        )
        return rows[-1:] == ["1"]

    async def user_exists(self, transport: Transport, user: str) -> bool:
        user = self.user_name(user)
        rows = await self._admin_sql(
            transport,
            f"SELECT COUNT(*) FROM mysql.user WHERE User = '{user}';\n",
            what=f"look for the user {user}",
        )
        return bool(rows) and rows[-1] != "0"

    async def query_as(
        self, transport: Transport, credentials: DbCredentials, sql: str
    ) -> list[str]:
        database = self.database_name(credentials.database)
        user = self.user_name(credentials.user)
        password = self.checked_password(credentials.password)
        async with self.workspace(transport) as ws:
            cnf = await ws.put(
                "user.cnf",
                self._option_file(user, password, host=credentials.host, port=credentials.port),
            )
            return await self._sql(ws, cnf, sql, database=database, what=f"query as {user}")

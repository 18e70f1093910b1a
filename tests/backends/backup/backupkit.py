"""Helpers of the backup tests: a site's files and database on a test host.

The test bed's hosts run on this machine, so a test reads a site's tree directly (as
root) to compare it with what a restore gave back; everything Cockpit does goes
through the real SSH transport.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from svckit import TESTBED_DB_SETTINGS, server_for, unique_db_name
from testbed import TestHost

from cockpit.backends.backup import BackupSource, SiteDatabase
from cockpit.backends.backup.restic import ResticBackupService
from cockpit.backends.backup.tar import TarBackupService
from cockpit.backends.secrets import SecretStore
from cockpit.backends.services import get_service
from cockpit.backends.services.db import DbCredentials, DbService
from cockpit.backends.ssh import SshPool
from cockpit.backends.transport import Transport
from cockpit.backends.verify import lay_out
from cockpit.model import Server, Service

#: A tree with what a site's files hold: dirs, an empty dir, a name with spaces and
#: non-ASCII letters, a symlink, a file of another owner and mode, some binary data.
_POPULATE = r"""
site=$1
mkdir -p -- "$site/web/wp-content/uploads/2024" "$site/web/wp-content/uploads/empty dir" \
    "$site/private/keys" || exit 1
printf 'hello from the site\n' > "$site/web/index.html"
printf '<?php define("DB_NAME", "x");\n' > "$site/web/wp-config.php"
printf '<?php echo "ünïcödé";\n' > "$site/web/wp-content/uploads/naïve café.php"
head -c 300000 /dev/urandom > "$site/web/wp-content/uploads/2024/photo.bin"
ln -s 2024/photo.bin "$site/web/wp-content/uploads/latest.bin"
printf 'secret\n' > "$site/private/keys/app.key"
chown -R www-data:www-data -- "$site/web/wp-content/uploads"
chmod 640 -- "$site/web/wp-config.php" "$site/private/keys/app.key"
chmod 2775 -- "$site/web/wp-content/uploads"
chmod 750 -- "$site/private"
"""

ROWS_SQL = {
    "mysql": (
        "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(200), body LONGTEXT);\n"
        "INSERT INTO posts VALUES (1, 'first ''post''', 'ünï \\\\ back'), (2, 'two', REPEAT('x', 70000)),"
        " (3, 'three', NULL);\n"
    ),
    "pgsql": (
        "CREATE TABLE posts (id INT PRIMARY KEY, title VARCHAR(200), body TEXT);\n"
        "INSERT INTO posts VALUES (1, 'first ''post''', 'ünï \\ back'), (2, 'two', repeat('x', 70000)),"
        " (3, 'three', NULL);\n"
    ),
}
SELECT_ROWS = "SELECT id, title, md5(coalesce(body, '-')) FROM posts ORDER BY id;\n"


@dataclass
class SiteBed:
    host: TestHost
    pool: SshPool
    server: Server
    transport: Transport
    db: DbService
    engine: str
    domain: str
    site_dir: str
    creds: DbCredentials
    secrets_dir: Path
    created: list[tuple[str, str]] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)

    @property
    def root(self) -> str:
        return self.server.root

    def tar(self, **settings: str | int | bool) -> TarBackupService:
        return TarBackupService(self.server, Service("backup", "tar", settings))

    def restic(self, **settings: str | int | bool) -> ResticBackupService:
        return ResticBackupService(
            self.server,
            Service("backup", "restic", settings),
            secret_store=SecretStore(self.secrets_dir),
        )

    @property
    def paths(self) -> tuple[str, ...]:
        """The site's data paths, as a WordPress platform lists them (the last one
        does not exist)."""
        return (
            f"{self.site_dir}/web/wp-config.php",
            f"{self.site_dir}/web/wp-content/uploads",
            f"{self.site_dir}/private",
            f"{self.site_dir}/web/wp-content/cache",
        )

    def source(self, *, with_db: bool = True) -> BackupSource:
        return BackupSource(
            site=self.domain,
            server=self.server.name,
            platform="wp6",
            platform_type="wordpress",
            release="6.1.1",
            paths=self.paths,
            database=SiteDatabase(self.db, self.creds.database) if with_db else None,
        )

    async def new_database(self) -> DbCredentials:
        name = unique_db_name("bk")
        self.created.append((name, name))
        return await self.db.ensure_database(self.transport, name, name)

    async def rows(self, creds: DbCredentials | None = None) -> list[str]:
        return await self.db.query_as(self.transport, creds or self.creds, SELECT_ROWS)

    async def sh(self, script: str, *args: str) -> list[str]:
        result = await self.transport.run_script(script, list(args), sudo=True, capture=True)
        assert result.ok, (result.exit_code, result.stderr)
        return result.stdout

    def mount_tmpfs(self, path: str, size: str) -> None:
        os.makedirs(path, exist_ok=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", path], check=True
        )
        self.mounts.append(path)

    async def cleanup(self) -> None:
        shutil.rmtree(self.secrets_dir, ignore_errors=True)
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", path], check=False)
        for database, user in reversed(self.created):
            await self.db.drop_database(self.transport, database, user)


def tree(path: str | Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``path``: type, mode, owner and group names, and content (a
    file's sha256, a link's target); the top dir itself as ``.``."""
    import grp
    import pwd

    out: dict[str, tuple[object, ...]] = {}
    base = Path(path)
    for entry in [base, *sorted(base.rglob("*"))]:
        st = entry.lstat()
        rel = "." if entry == base else str(entry.relative_to(base))
        owner = pwd.getpwuid(st.st_uid).pw_name
        group = grp.getgrgid(st.st_gid).gr_name
        if stat.S_ISLNK(st.st_mode):
            content: object = ("link", os.readlink(entry))
        elif stat.S_ISDIR(st.st_mode):
            content = "dir"
        else:
            content = hashlib.sha256(entry.read_bytes()).hexdigest()
        out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), owner, group, content)
    return out


def leftovers(directory: str | Path) -> list[str]:
    """Names under ``directory`` (recursively) that a failed or finished job may leave."""
    base = Path(directory)
    if not base.exists():
        return []
    marks = (".staging-", ".unpack-", ".partial", ".tmp", ".cockpit-", ".restic")
    return sorted(
        str(p.relative_to(base)) for p in base.rglob("*") if any(m in p.name for m in marks)
    )


async def make_site_bed(host: TestHost, pool: SshPool, engine: str) -> SiteBed:
    service = Service("db", engine, TESTBED_DB_SETTINGS[engine])
    server = server_for(host, service)
    transport = pool.transport(server)
    await lay_out(transport, server)
    db = get_service("db", engine)(server, service)
    assert isinstance(db, DbService)
    name = unique_db_name("st")
    domain = name.replace("_", "-") + ".example"
    site_dir = f"{server.root}/sites/{domain}"
    secrets_dir = Path(f"/tmp/cockpit-backup-secrets-{secrets.token_hex(4)}")
    bed = SiteBed(host, pool, server, transport, db, engine, domain, site_dir, None, secrets_dir)  # type: ignore[arg-type]
    bed.created.append((name, name))
    bed.creds = await db.ensure_database(transport, name, name)
    await db.query_as(transport, bed.creds, ROWS_SQL[engine])
    await bed.sh(_POPULATE, site_dir)
    return bed

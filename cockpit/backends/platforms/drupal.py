"""``drupal``: Drupal multi-site platforms driven by drush, MariaDB/MySQL or PostgreSQL.

The platform root is the Drupal docroot (the dir with ``index.php`` and ``core/``; for
a Composer project, its ``web`` dir). Every site of the platform is served from it, as
Drupal's multi-site layout wants: the site's settings are
``<root>/sites/<domain>/settings.php`` (its database credentials and hash salt, 0640
site user:web group), its public files ``<root>/sites/<domain>/files``, its private
files and config sync dir under ``<server root>/sites/<domain>/private``.

drush does the Drupal work, as the site's user: ``site:install`` (reading the database
from settings.php, so no password is ever in an argv; the generated admin password it
prints is filtered out of the log), ``updatedb`` and ``cache:rebuild`` after a
migration, ``user:login`` for a one-time login link. drush is looked up as
``<root>/../vendor/bin/drush`` (a Composer project), then on the PATH.

What is verified where drush is absent: the codebase install, the release detection
from ``core/lib/Drupal.php``, the layout and the rendered settings.php; the drush steps
themselves need a server with drush.
"""

from __future__ import annotations

from typing import ClassVar, Final

from cockpit.backends.platforms.base import (
    ConfigFile,
    HealthCheck,
    InstallOptions,
    PlatformError,
    PlatformPlugin,
    SiteLayout,
    app_secret,
    db_values,
    site_layout,
)
from cockpit.backends.services.base import run_step
from cockpit.backends.services.db import DbCredentials
from cockpit.backends.transport import LineHandler, Transport
from cockpit.model import DbEngine, Site, validate_path

__all__ = ["DrupalPlatform"]

_SITE_DIRS: Final = r"""
sitedir=$1 files=$2 user=$3 group=$4 private=$5
mkdir -p -- "$sitedir" "$files" "$private/files" "$private/config-sync" || exit 1
chown -- "$user:$group" "$sitedir" "$files" "$private/files" "$private/config-sync" &&
    chmod 2750 -- "$sitedir" "$files" "$private/files" "$private/config-sync"
"""

#: Runs drush as the site user, with the lines that carry a password filtered out.
#: Args: user, root, uri, then drush's own arguments.
_DRUSH: Final = r"""
user=$1 root=$2 uri=$3
shift 3
cd / || exit 1
drush="$(dirname -- "$root")/vendor/bin/drush"
[ -x "$drush" ] || drush=$(command -v drush) ||
    { echo "cockpit: drush is not installed (composer require drush/drush)" >&2; exit 127; }
out=$(mktemp) || exit 1
trap 'rm -f -- "$out"' EXIT
chmod 600 -- "$out"
runuser -u "$user" -- "$drush" --root="$root" --uri="$uri" --yes "$@" > "$out" 2>&1
rc=$?
grep -iv 'password' -- "$out"
exit "$rc"
"""


class DrupalPlatform(PlatformPlugin):
    type: ClassVar[str] = "drupal"
    description: ClassVar[str] = "Drupal multi-site (drush), MariaDB/MySQL or PostgreSQL"
    uses_php: ClassVar[bool] = True
    db_engines: ClassVar[tuple[DbEngine, ...]] = (DbEngine.MYSQL, DbEngine.PGSQL)
    db_required: ClassVar[bool] = True
    supports_login_reset: ClassVar[bool] = True
    has_installer: ClassVar[bool] = True
    single_site: ClassVar[bool] = False
    profile: ClassVar[str] = "standard"
    app_name: ClassVar[str] = "Drupal"
    codebase_marker: ClassVar[str | None] = "core/lib/Drupal.php"
    release_file: ClassVar[str | None] = "core/lib/Drupal.php"
    release_sed: ClassVar[str] = r"s/.*const VERSION = '\([^']*\)'.*/\1/p"

    def site_subdir(self, domain: str) -> str:
        return validate_path(f"{self.root}/sites/{domain}", "drupal site dir")

    def layout(self, server_root: str, domain: str) -> SiteLayout:
        return site_layout(
            server_root,
            domain,
            docroot=self.root,
            files_dir=f"{self.site_subdir(domain)}/files",
            extra_php_dirs=(self.root,),
        )

    def settings_path(self, domain: str) -> str:
        return f"{self.site_subdir(domain)}/settings.php"

    def data_paths(self, layout: SiteLayout) -> list[str]:
        return [self.settings_path(layout.domain), layout.files_dir, layout.private_dir]

    def health(self, site: Site) -> HealthCheck:
        return HealthCheck("/user/login", 200, "user-login-form")

    def config_files(
        self,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        master_secret: str,
    ) -> list[ConfigFile]:
        if credentials is None:
            raise PlatformError("a Drupal site needs a database")
        names = [site.domain, *(a for a in site.aliases if not a.startswith("*."))]
        text = self.render(
            "platforms/drupal/settings.php.j2",
            {
                "domain": site.domain,
                "driver": credentials.engine.value,
                **db_values(credentials),
                "hash_salt": app_secret(master_secret, "drupal/hash_salt"),
                "private_dir": layout.private_dir,
                "tmp_dir": layout.tmp_dir,
                "trusted_hosts": [name.split(".") for name in names],
            },
        )
        return [ConfigFile(self.settings_path(site.domain), text)]

    async def prepare_site(self, transport: Transport, layout: SiteLayout, web_group: str) -> None:
        result = await run_step(
            transport,
            "create the Drupal site dirs",
            _SITE_DIRS,
            [self.site_subdir(layout.domain), layout.files_dir, layout.unix_user, web_group,
             layout.private_dir],
            sudo=True,
        )  # fmt: skip
        if not result.ok:
            raise PlatformError("cannot create the Drupal site dirs", output=result.stderr)

    async def drush(
        self,
        transport: Transport,
        layout: SiteLayout,
        site: Site,
        *args: str,
        what: str,
        on_line: LineHandler | None = None,
    ) -> list[str]:
        """Run drush for the site, as its user; its output without password lines."""
        result = await run_step(
            transport,
            what,
            _DRUSH,
            [layout.unix_user, self.root, f"http://{site.domain}", *args],
            sudo=True,
            on_line=on_line,
            time_limit=None,
        )
        if not result.ok:
            raise PlatformError(
                f"{what} failed (exit {result.exit_code})", output=[*result.stdout, *result.stderr]
            )
        return result.stdout

    async def install_app(
        self,
        transport: Transport,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        options: InstallOptions,
        admin_password: str,
        *,
        on_line: LineHandler | None = None,
    ) -> bool:
        status = await self.drush(
            transport, layout, site, "status", "--field=bootstrap", what="ask drush for the status"
        )
        if any("Successful" in line for line in status):
            return False
        email = options.admin_email or f"admin@{site.domain}"
        await self.drush(
            transport, layout, site,
            "site:install", self.profile, f"--sites-subdir={site.domain}",
            f"--site-name={options.title}", f"--account-name={options.admin_user}",
            f"--account-mail={email}", f"--site-mail={email}",
            what="install Drupal (drush site:install)", on_line=on_line,
        )  # fmt: skip
        return True

    async def update(self, transport: Transport, layout: SiteLayout, site: Site) -> None:
        """After a migration to a new release: database updates, then a cache rebuild."""
        await self.drush(transport, layout, site, "updatedb", what="drush updatedb")
        await self.drush(transport, layout, site, "cache:rebuild", what="drush cache:rebuild")

    async def login_link(self, transport: Transport, layout: SiteLayout, site: Site) -> str:
        out = await self.drush(
            transport, layout, site, "user:login", "--no-browser", what="drush user:login"
        )
        for line in reversed(out):
            if line.startswith(("http://", "https://")):
                return line.strip()
        raise PlatformError("drush gave no login link")

"""``wordpress``: WordPress sites on a shared, read-only codebase, MariaDB/MySQL only.

The platform's codebase comes from a dir on the server (Debian's ``wordpress`` package
puts one in ``/usr/share/wordpress``; its ``wp-config.php`` and ``.htaccess`` point into
``/etc/wordpress`` and are left out, its symbolic links into ``/usr/share/javascript``
and ``/usr/share/php`` are copied as files) or from a release tarball
(``wordpress-X.Y.tar.gz``). The copy belongs to root.

Each site's docroot is a hard-linked copy of the codebase (the files stay root's, so
the site's PHP cannot change them; a copy, reflinked where it can, when the file
system refuses links), with the site's own ``wp-config.php`` (its database credentials
and keys, 0640 site user:web group) and ``wp-content/uploads`` (the site's files).

Installing runs WP-CLI (``wp core install``, the admin password read from a 0600 file
through ``--prompt``) when the server has it, else WordPress's own ``wp_install()``
through PHP, as the site user. The health answer is ``/wp-login.php`` with its login
form (an uninstalled WordPress redirects it to the installer instead). The one-time
login link is WordPress's own password-reset link for the admin.
"""

from __future__ import annotations

import json
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
from cockpit.backends.transport import LineHandler, Transport, TransportError
from cockpit.model import DbEngine, Site

__all__ = ["WordpressPlatform"]

#: WordPress's keys and salts (wp-config.php), each derived from the site's secret.
KEY_NAMES: Final = (
    "AUTH_KEY",
    "SECURE_AUTH_KEY",
    "LOGGED_IN_KEY",
    "NONCE_KEY",
    "AUTH_SALT",
    "SECURE_AUTH_SALT",
    "LOGGED_IN_SALT",
    "NONCE_SALT",
)

_UPLOADS: Final = r"""
dir=$1 user=$2 group=$3
mkdir -p -- "$dir" && chown -- "$user:$group" "$dir" && chmod 2750 -- "$dir"
"""

#: WP-CLI, as the site user. Args: user, docroot, url, title, admin, email, password file.
_WP_CLI_INSTALL: Final = r"""
user=$1 docroot=$2 url=$3 title=$4 admin=$5 email=$6 pwfile=$7
cd / || exit 1
wp=$(command -v wp) || exit 127
trap 'rm -f -- "$pwfile"' EXIT
if runuser -u "$user" -- "$wp" --path="$docroot" core is-installed >/dev/null 2>&1; then
    echo "cockpit: WordPress is already installed"
    exit 0
fi
runuser -u "$user" -- "$wp" --path="$docroot" core install --url="$url" --title="$title" \
    --admin_user="$admin" --admin_email="$email" --skip-email --prompt=admin_password < "$pwfile"
"""

_HAS_WP_CLI: Final = "command -v wp >/dev/null 2>&1"


def _php_string(value: str) -> str:
    """A PHP single-quoted string literal of ``value`` (JSON-checked plain text)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class WordpressPlatform(PlatformPlugin):
    type: ClassVar[str] = "wordpress"
    description: ClassVar[str] = "WordPress (a shared read-only codebase, MariaDB/MySQL)"
    uses_php: ClassVar[bool] = True
    db_engines: ClassVar[tuple[DbEngine, ...]] = (DbEngine.MYSQL,)
    db_required: ClassVar[bool] = True
    supports_login_reset: ClassVar[bool] = True
    has_installer: ClassVar[bool] = True
    app_name: ClassVar[str] = "WordPress"
    codebase_marker: ClassVar[str | None] = "wp-includes/version.php"
    #: Files of a source codebase that are not WordPress's (Debian's point into /etc).
    codebase_left_out: ClassVar[tuple[str, ...]] = ("wp-config.php", ".htaccess")
    release_file: ClassVar[str | None] = "wp-includes/version.php"
    release_sed: ClassVar[str] = r"s/^\$wp_version = '\([^']*\)';.*/\1/p"
    TABLE_PREFIX: ClassVar[str] = "wp_"

    def layout(self, server_root: str, domain: str) -> SiteLayout:
        base = site_layout(server_root, domain)
        return site_layout(server_root, domain, files_dir=f"{base.docroot}/wp-content/uploads")

    def config_path(self, layout: SiteLayout) -> str:
        return f"{layout.docroot}/wp-config.php"

    def data_paths(self, layout: SiteLayout) -> list[str]:
        # The docroot is the platform's code (hard links) but for the config and uploads.
        return [self.config_path(layout), layout.files_dir, layout.private_dir]

    def health(self, site: Site) -> HealthCheck:
        return HealthCheck("/wp-login.php", 200, 'id="loginform"')

    # -- a site -----------------------------------------------------------------------

    def config_files(
        self,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        master_secret: str,
    ) -> list[ConfigFile]:
        if credentials is None:
            raise PlatformError("a WordPress site needs a database")
        keys = {name: app_secret(master_secret, f"wordpress/{name}") for name in KEY_NAMES}
        text = self.render(
            "platforms/wordpress/wp-config.php.j2",
            {
                "domain": site.domain,
                **db_values(credentials),
                "keys": keys,
                "table_prefix": self.TABLE_PREFIX,
                "files_dir": layout.files_dir,
            },
        )
        return [ConfigFile(self.config_path(layout), text)]

    async def prepare_site(self, transport: Transport, layout: SiteLayout, web_group: str) -> None:
        result = await run_step(
            transport,
            "create the uploads dir",
            _UPLOADS,
            [layout.files_dir, layout.unix_user, web_group],
            sudo=True,
        )
        if not result.ok:
            raise PlatformError(f"cannot create {layout.files_dir}", output=result.stderr)

    def _bootstrap(self, layout: SiteLayout, site: Site, *, installing: bool) -> str:
        """PHP that loads WordPress from the site's docroot as if for a request to it."""
        host = _php_string(site.domain)
        lines = [
            "<?php",
            "define('WP_HTTP_BLOCK_EXTERNAL', true);",
            f"$_SERVER['HTTP_HOST'] = {host};",
            f"$_SERVER['SERVER_NAME'] = {host};",
            "$_SERVER['REQUEST_URI'] = '/';",
            "$_SERVER['REQUEST_METHOD'] = 'GET';",
            "$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';",
        ]
        if installing:
            lines += [
                "define('WP_INSTALLING', true);",
                "function wp_new_blog_notification() {}",
            ]
        lines.append(f"require {_php_string(layout.docroot + '/wp-load.php')};")
        return "\n".join(lines) + "\n"

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
        email = options.admin_email or f"admin@{site.domain}"
        url = options.url or f"http://{site.domain}"
        has_cli = await run_step(transport, "look for WP-CLI", _HAS_WP_CLI)
        if has_cli.ok:
            pwfile = f"{layout.tmp_dir}/.cockpit-admin-password"
            try:
                await transport.upload(
                    (admin_password + "\n").encode(), pwfile, mode=0o600, sudo=True
                )
            except TransportError as exc:
                raise PlatformError(f"cannot hand the admin password to WP-CLI: {exc}") from exc
            result = await run_step(
                transport,
                "install WordPress (WP-CLI)",
                _WP_CLI_INSTALL,
                [layout.unix_user, layout.docroot, url, options.title, options.admin_user,
                 email, pwfile],
                sudo=True,
                on_line=on_line,
            )  # fmt: skip
            if not result.ok:
                raise PlatformError(
                    "wp core install failed", output=[*result.stdout, *result.stderr]
                )
            return not any("already installed" in line for line in result.stdout)
        code = self._bootstrap(layout, site, installing=True) + "\n".join(
            [
                "require_once ABSPATH . 'wp-admin/includes/upgrade.php';",
                'if (is_blog_installed()) { echo "cockpit: WordPress is already installed\\n"; exit(0); }',
                f"$r = wp_install({_php_string(options.title)}, {_php_string(options.admin_user)}, "
                f"{_php_string(email)}, true, '', {_php_string(admin_password)});",
                'if (is_wp_error($r)) { fwrite(STDERR, $r->get_error_message() . "\\n"); exit(1); }',
                f"update_option('siteurl', {_php_string(url)});",
                f"update_option('home', {_php_string(url)});",
                'echo "cockpit: WordPress is installed\\n";',
                "",
            ]
        )
        out = await self.run_php_as(
            transport, layout, code, what="install WordPress", on_line=on_line
        )
        return not any("already installed" in line for line in out)

    async def login_link(self, transport: Transport, layout: SiteLayout, site: Site) -> str:
        code = self._bootstrap(layout, site, installing=False) + "\n".join(
            [
                "$users = get_users(['role' => 'administrator', 'orderby' => 'ID', 'number' => 1]);",
                'if (!$users) { fwrite(STDERR, "no administrator\\n"); exit(1); }',
                "$u = $users[0];",
                "$key = get_password_reset_key($u);",
                'if (is_wp_error($key)) { fwrite(STDERR, $key->get_error_message() . "\\n"); exit(1); }',
                "echo 'cockpit-link ', json_encode(network_site_url('wp-login.php?action=rp&key=' . "
                "$key . '&login=' . rawurlencode($u->user_login), 'login')), \"\\n\";",
                "",
            ]
        )
        out = await self.run_php_as(transport, layout, code, what="make a login link")
        for line in out:
            if line.startswith("cockpit-link "):
                link = json.loads(line.removeprefix("cockpit-link "))
                if isinstance(link, str) and link.startswith(("http://", "https://")):
                    return link
        raise PlatformError("WordPress gave no login link")

    async def rewrite_urls(
        self,
        transport: Transport,
        layout: SiteLayout,
        credentials: DbCredentials | None,
        old: str,
        new: str,
    ) -> None:
        for url in (old, new):
            if not url.startswith(("http://", "https://")) or not all(
                c.isalnum() or c in ".:/-_" for c in url
            ):
                raise PlatformError(f"not a plain site URL: {url!r}")
        # The site's own domain is the new one by now: load WordPress for it.
        host = new.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        site = Site(domain=host, platform=self.platform.name)
        code = self._bootstrap(layout, site, installing=False) + "\n".join(
            [
                f"$old = {_php_string(old)}; $new = {_php_string(new)};",
                "global $wpdb;",
                "foreach (['siteurl', 'home'] as $o) {",
                "    update_option($o, str_replace($old, $new, get_option($o)));",
                "}",
                '$wpdb->query($wpdb->prepare("UPDATE {$wpdb->posts} SET post_content = '
                'REPLACE(post_content, %s, %s), guid = REPLACE(guid, %s, %s)", $old, $new, $old, $new));',
                'echo "cockpit: URLs rewritten\\n";',
                "",
            ]
        )
        await self.run_php_as(transport, layout, code, what="rewrite the site's URLs")

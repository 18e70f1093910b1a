"""``php``: a PHP application behind the site's own php-fpm pool, with an optional
database (MariaDB/MySQL or PostgreSQL).

The site's settings are ``<site>/private/settings.php``, outside the docroot: a PHP file
returning an array (``$s = require '/…/private/settings.php'; $s['db']['password']``),
readable only by the site user and the web server. A new site's docroot is filled
from the platform's codebase, or gets a placeholder ``index.php``.
"""

from __future__ import annotations

from typing import ClassVar

from cockpit.backends.platforms.base import ConfigFile, SiteLayout, db_values
from cockpit.backends.platforms.static import StaticPlatform
from cockpit.backends.services.db import DbCredentials
from cockpit.model import DbEngine, Site

__all__ = ["PhpPlatform"]


class PhpPlatform(StaticPlatform):
    type: ClassVar[str] = "php"
    description: ClassVar[str] = "a PHP application (php-fpm), with an optional database"
    uses_php: ClassVar[bool] = True
    db_engines: ClassVar[tuple[DbEngine, ...]] = (DbEngine.MYSQL, DbEngine.PGSQL)
    index_template: ClassVar[str] = "platforms/php/index.php.j2"
    index_name: ClassVar[str] = "index.php"
    index_names: ClassVar[tuple[str, ...]] = ("index.php", "index.html", "index.htm")

    def settings_path(self, layout: SiteLayout) -> str:
        return f"{layout.private_dir}/settings.php"

    def config_files(
        self,
        layout: SiteLayout,
        site: Site,
        credentials: DbCredentials | None,
        master_secret: str,
    ) -> list[ConfigFile]:
        if credentials is None:
            return []
        text = self.render(
            "platforms/php/settings.php.j2",
            {
                "domain": site.domain,
                "engine": credentials.engine.value,
                **db_values(credentials),
            },
        )
        return [ConfigFile(self.settings_path(layout), text)]

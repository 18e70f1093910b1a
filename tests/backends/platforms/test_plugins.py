"""The platform plugins without a server: registry, layouts, rendered settings, engines."""

from __future__ import annotations

import pytest

from cockpit.backends.platforms import (
    BUILTINS,
    UnknownPlatformError,
    get_platform,
    known_types,
    plugin_for,
)
from cockpit.backends.platforms.base import InstallOptions, app_secret
from cockpit.backends.services.db import DbCredentials
from cockpit.backends.services.render import TemplateValueError
from cockpit.model import DbEngine, Platform, PlatformType, Site, ValidationError

ROOT = "/srv/cockpit"


def _platform(kind: str, root: str = f"{ROOT}/platforms/p") -> Platform:
    return Platform("p", "web1", kind, root)


def _creds(engine: DbEngine = DbEngine.MYSQL, password: str = "A" * 32) -> DbCredentials:
    return DbCredentials(engine, "shop_example", "shop_example", password, "127.0.0.1", 3306)


def test_every_model_platform_type_has_a_plugin_registered_under_its_name() -> None:
    assert set(known_types()) >= {t.value for t in PlatformType}
    for name in BUILTINS:
        assert get_platform(name).type == name
    with pytest.raises(UnknownPlatformError, match="known: drupal, php, static, wordpress"):
        get_platform("joomla")


def test_a_plugin_refuses_a_platform_of_another_type() -> None:
    with pytest.raises(ValidationError):
        get_platform("wordpress")(_platform("static"))


def test_layouts() -> None:
    static = plugin_for(_platform("static")).layout(ROOT, "shop.example")
    assert static.site_dir == f"{ROOT}/sites/shop.example"
    assert static.docroot == f"{ROOT}/sites/shop.example/web" == static.files_dir
    assert static.unix_user == "s_shop_example" and static.own_docroot
    wp = plugin_for(_platform("wordpress"))
    layout = wp.layout(ROOT, "shop.example")
    assert layout.files_dir == f"{ROOT}/sites/shop.example/web/wp-content/uploads"
    assert wp.data_paths(layout) == [
        f"{ROOT}/sites/shop.example/web/wp-config.php",
        layout.files_dir,
        layout.private_dir,
    ]
    drupal = plugin_for(_platform("drupal", "/srv/drupal10"))
    layout = drupal.layout(ROOT, "shop.example")
    assert layout.docroot == "/srv/drupal10" and not layout.own_docroot
    assert layout.files_dir == "/srv/drupal10/sites/shop.example/files"
    assert layout.php_dirs == ("/srv/drupal10", f"{ROOT}/sites/shop.example")


def test_wordpress_config_is_stable_and_holds_the_sites_own_credentials() -> None:
    wp = plugin_for(_platform("wordpress"))
    site = Site("shop.example", "p")
    layout = wp.layout(ROOT, site.domain)
    (first,) = wp.config_files(layout, site, _creds(), "master-secret")
    (again,) = wp.config_files(layout, site, _creds(), "master-secret")
    (other,) = wp.config_files(layout, site, _creds(), "another-secret")
    assert first.text == again.text != other.text
    assert first.path.endswith("/web/wp-config.php") and first.mode == 0o640
    assert "define('DB_PASSWORD', '" + "A" * 32 + "');" in first.text
    assert "define('DB_HOST', '127.0.0.1:3306');" in first.text
    assert app_secret("master-secret", "wordpress/AUTH_KEY") in first.text


def test_drupal_settings_per_engine_and_trusted_hosts_escaped() -> None:
    drupal = plugin_for(_platform("drupal", "/srv/d"))
    site = Site("shop.example", "p", aliases=("www.shop.example",))
    layout = drupal.layout(ROOT, site.domain)
    (mysql,) = drupal.config_files(layout, site, _creds(), "m")
    assert "'driver' => 'mysql'" in mysql.text
    assert "'namespace' => 'Drupal\\\\mysql\\\\Driver\\\\Database\\\\mysql'" in mysql.text
    assert "'^shop\\.example$'," in mysql.text and "'^www\\.shop\\.example$'," in mysql.text
    (pgsql,) = drupal.config_files(layout, site, _creds(DbEngine.PGSQL), "m")
    assert "'driver' => 'pgsql'" in pgsql.text
    assert pgsql.path == "/srv/d/sites/shop.example/settings.php"


def test_a_password_a_template_could_trip_on_is_refused() -> None:
    php = plugin_for(_platform("php"))
    site = Site("shop.example", "p")
    with pytest.raises(TemplateValueError):
        php.config_files(
            php.layout(ROOT, site.domain), site, _creds(password="x'; system('id"), "m"
        )


def test_database_engine_choice() -> None:
    wp = plugin_for(_platform("wordpress"))
    both = [DbEngine.MYSQL, DbEngine.PGSQL]
    assert wp.choose_engine(None, both) is DbEngine.MYSQL
    with pytest.raises(ValidationError, match="supports: mysql"):
        wp.choose_engine("pgsql", both)
    with pytest.raises(ValidationError, match="needs a database"):
        wp.choose_engine("none", both)
    with pytest.raises(ValidationError, match="none offered"):
        wp.choose_engine(None, [DbEngine.PGSQL])
    php = plugin_for(_platform("php"))
    assert php.choose_engine(None, []) is None
    assert php.choose_engine("pgsql", both) is DbEngine.PGSQL
    with pytest.raises(ValidationError, match="offers no pgsql"):
        php.choose_engine("pgsql", [DbEngine.MYSQL])
    assert plugin_for(_platform("static")).choose_engine(None, both) is None


def test_install_options_are_validated() -> None:
    InstallOptions("My-site_1.0", "admin", "a@b.example")
    for title in ("", "x" * 81, "it's", "a$b"):
        with pytest.raises(ValidationError):
            InstallOptions(title)
    with pytest.raises(ValidationError):
        InstallOptions("t", admin_user="root;id")

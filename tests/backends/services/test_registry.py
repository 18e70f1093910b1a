"""The service registry: entry points (built-ins and third parties), errors that list types."""

from __future__ import annotations

import sys
import textwrap
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockpit.backends import services
from cockpit.backends.services import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    PluginLoadError,
    UnknownServiceError,
    get_service,
    known_types,
    plugin_for,
    registry,
)
from cockpit.backends.services.apache import ApacheService
from cockpit.backends.services.mysql import MysqlService
from cockpit.backends.services.nginx import NginxService
from cockpit.backends.services.pgsql import PgsqlService
from cockpit.model import Server, Service, ServiceKind, ValidationError

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    services.reload_registry()
    yield
    services.reload_registry()


def test_the_builtins_are_declared_as_entry_points_in_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][ENTRY_POINT_GROUP] == dict(BUILTINS)


def test_builtins_load() -> None:
    assert get_service("http", "nginx") is NginxService
    assert get_service(ServiceKind.HTTP, "apache") is ApacheService
    assert get_service("db", "mysql") is MysqlService
    assert get_service("db", "pgsql") is PgsqlService
    assert set(registry()) >= {
        (ServiceKind.HTTP, "nginx"),
        (ServiceKind.HTTP, "apache"),
        (ServiceKind.DB, "mysql"),
        (ServiceKind.DB, "pgsql"),
    }


def test_an_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownServiceError) as error:
        get_service("http", "lighttpd")
    assert "http/apache, http/nginx" in str(error.value)
    with pytest.raises(UnknownServiceError, match="known dns types: none"):
        get_service("dns", "bind")
    with pytest.raises(ValidationError):
        get_service("mail", "postfix")


def _install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry_points: str, module: str
) -> None:
    """A third-party distribution on sys.path: a module and its entry points."""
    site = tmp_path / "site"
    (site / "acme_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "acme_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acme-plugin\nVersion: 1.0\n"
    )
    (site / "acme_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        textwrap.dedent(entry_points)
    )
    (site / "acme_cockpit_plugin.py").write_text(textwrap.dedent(module))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "acme_cockpit_plugin", raising=False)


def test_a_third_party_package_adds_a_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_distribution(
        tmp_path,
        monkeypatch,
        """
        [cockpit.services]
        http.caddy = acme_cockpit_plugin:CaddyService
        http.broken = acme_cockpit_plugin:Missing
        http.liar = acme_cockpit_plugin:CaddyService
        not-a-kind-and-type = acme_cockpit_plugin:CaddyService
        """,
        """
        from cockpit.backends.services.nginx import NginxService

        class CaddyService(NginxService):
            type = "caddy"
            description = "Caddy (test plugin)"
        """,
    )
    services.reload_registry()
    assert "http/caddy" in known_types("http")
    caddy = get_service("http", "caddy")
    assert caddy.__name__ == "CaddyService" and caddy.description == "Caddy (test plugin)"
    server = Server(name="web1", address="127.0.0.9", services=(Service("http", "caddy"),))
    plugin = plugin_for(server, "http")
    assert isinstance(plugin, caddy) and plugin.server is server
    with pytest.raises(PluginLoadError, match="cannot be loaded"):
        get_service("http", "broken")
    with pytest.raises(PluginLoadError, match="declares http/caddy"):
        get_service("http", "liar")
    # A broken plugin is left out of the registry; the others still load.
    loaded = registry()
    assert (ServiceKind.HTTP, "caddy") in loaded and (ServiceKind.HTTP, "broken") not in loaded
    assert (ServiceKind.HTTP, "nginx") in loaded


def test_plugin_for_binds_the_configured_service_and_checks_settings() -> None:
    service = Service("db", "mysql", {"port": 3307, "user_hosts": "localhost,10.0.0.%"})
    server = Server(name="db1", address="127.0.0.9", services=(service,))
    plugin = plugin_for(server, "db")
    assert isinstance(plugin, MysqlService)
    assert plugin.settings["port"] == 3307 and plugin.user_hosts == ["localhost", "10.0.0.%"]
    with pytest.raises(UnknownServiceError, match="no http service"):
        plugin_for(server, "http")
    bad = Server(name="db1", address="127.0.0.9", services=(Service("db", "mysql", {"prot": 1}),))
    with pytest.raises(ValidationError, match="unknown setting for db/mysql; valid: admin_user"):
        plugin_for(bad, "db")
    wrong = Server(
        name="db1", address="127.0.0.9", services=(Service("db", "pgsql", {"port": 99999}),)
    )
    with pytest.raises(ValidationError, match="port"):
        plugin_for(wrong, "db")

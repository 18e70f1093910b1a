"""Rendering vhosts: the whitelist on every printed value, overrides, strictness, stable ids.

No server needed: this is the rendering alone (the real nginx/apache tests are next door).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from cockpit.backends.services.apache import ApacheService
from cockpit.backends.services.http import Vhost
from cockpit.backends.services.nginx import NginxService
from cockpit.backends.services.php import PhpPool, render_pool
from cockpit.backends.services.render import (
    TemplateError,
    TemplateValueError,
    refuse_unsafe,
    render_template,
    template_environment,
)
from cockpit.model import Server, Service, Site, ValidationError

FORBIDDEN = [
    "a\nb", "a\rb", "a;b", "a{b", "a}b", 'a"b', "a'b", "a$b", "a\\b", "a b", "a\tb", "a#b", "a~b",
    "a%b", "a,b", "a=b", "a*b", "**.x", "a`b", "a|b", "a&b", "a<b", "a>b", "a(b", "a)b", "a!b", "[zz]", "[::1];", "*;", "a*:b",
    "é", "a\x00b", "a\x1b[31m", "a\u202eb", "x.*",
]  # fmt: skip
ALLOWED = ["shop.example.test", "*.shop.example.test", "/srv/www/a+b@c/x-y_z.conf", "127.0.0.1:8080",
           "https://www.example.test:8443", "", "0f3a", "unix:/run/php/x.sock", "*:80",
           "[::1]", "[2001:db8::1]:8080"]  # fmt: skip


@pytest.mark.parametrize("value", FORBIDDEN)
def test_finalize_refuses_unsafe_values(value: str) -> None:
    with pytest.raises(TemplateValueError, match="refusing to print"):
        refuse_unsafe(value)


@pytest.mark.parametrize("value", [*ALLOWED, 0, 443, 65535])
def test_finalize_passes_safe_values_unchanged(value: object) -> None:
    assert refuse_unsafe(value) == value


@pytest.mark.parametrize("value", [True, None, 1.5, b"abc", ["a"], {"a": 1}])
def test_finalize_refuses_other_types(value: object) -> None:
    with pytest.raises(TemplateValueError):
        refuse_unsafe(value)


def _override(tmp_path: Path, name: str, text: str) -> jinja2.Environment:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return template_environment(tmp_path)


def test_a_value_is_refused_not_escaped(tmp_path: Path) -> None:
    env = _override(tmp_path, "t.j2", "server_name {{ name }};\n")
    assert (
        render_template("t.j2", {"name": "ok.example.test"}, env=env)
        == "server_name ok.example.test;\n"
    )
    with pytest.raises(TemplateValueError, match=r"t\.j2: refusing to print 'x;"):
        render_template("t.j2", {"name": "x; include /etc/shadow"}, env=env)
    # Literal template text is the admin's: it may say anything.
    env = _override(tmp_path, "u.j2", 'return 301 "$scheme://{{ name }}";\n')
    assert "$scheme://a.example.test" in render_template(
        "u.j2", {"name": "a.example.test"}, env=env
    )


def test_strict_undefined_and_syntax_errors_are_template_errors(tmp_path: Path) -> None:
    env = _override(tmp_path, "v.j2", "{{ missing }}\n")
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        render_template("v.j2", {}, env=env)
    env = _override(tmp_path, "w.j2", "{% if %}\n")
    with pytest.raises(TemplateError, match=r"w\.j2:1: template syntax error"):
        render_template("w.j2", {}, env=env)
    with pytest.raises(TemplateError, match="not found"):
        render_template("nope/nothing.j2", {}, env=env)


def test_a_join_with_spaces_is_refused_loop_instead(tmp_path: Path) -> None:
    env = _override(tmp_path, "j.j2", "server_name {{ names | join(' ') }};\n")
    with pytest.raises(TemplateValueError):
        render_template("j.j2", {"names": ["a.test", "b.test"]}, env=env)


def _server(kind: str = "nginx", **settings: str | int | bool) -> tuple[Server, Service]:
    service = Service("http", kind, settings)
    return Server(
        name="web1", address="127.0.0.9", root="/srv/cockpit", services=(service,)
    ), service


def test_user_override_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    server, service = _server()
    vhost = Vhost(Site(domain="a.example.test", platform="p"), "/srv/cockpit/sites/a/web")
    builtin = NginxService(server, service).render(vhost)
    override = tmp_path / "cockpit/templates/nginx/vhost.conf.j2"
    override.parent.mkdir(parents=True)
    override.write_text("# mine {{ domain }} {{ config_id }}\n")
    mine = NginxService(server, service).render(vhost)
    assert mine.text.startswith("# mine a.example.test ")
    assert mine.config_id != builtin.config_id


def test_config_id_is_stable_and_tracks_content() -> None:
    server, service = _server(http_port=8080)
    plugin = NginxService(server, service)
    site = Site(domain="a.example.test", platform="p", aliases=("b.example.test",))
    one = plugin.render(Vhost(site, "/srv/x"))
    assert plugin.render(Vhost(site, "/srv/x")) == one
    assert f"add_header X-Cockpit-Config {one.config_id} always;" in one.text
    assert plugin.render(Vhost(site, "/srv/y")).config_id != one.config_id


def test_https_needs_a_certificate() -> None:
    with pytest.raises(ValidationError, match="needs a certificate"):
        Vhost(Site(domain="a.example.test", platform="p", https="on"), "/srv/x")


def test_apache_canonical_name_is_never_a_wildcard() -> None:
    server, service = _server("apache")
    site = Site(domain="a.example.test", platform="p", aliases=("*.b.example.test", "c.example.test"),
                redirection="c.example.test")  # fmt: skip
    text = ApacheService(server, service).render(Vhost(site, "/srv/x")).text
    assert "ServerName *" not in text
    assert "    ServerName a.example.test\n    ServerAlias *.b.example.test\n" in text
    assert "<VirtualHost *:80>" in text


def test_ipv6_listen_addresses_are_bracketed() -> None:
    server, service = _server(listen_address="::1", http_port=8080)
    text = (
        NginxService(server, service)
        .render(Vhost(Site(domain="a.example.test", platform="p"), "/srv/x"))
        .text
    )
    assert "listen [::1]:8080;" in text


def test_php_pool_renders() -> None:
    pool = PhpPool("a-example-test", "s_a_example_test", "s_a_example_test", "/run/php/a.sock",
                   "www-data", "www-data", "/srv/a/web", "/srv/a/tmp")  # fmt: skip
    text = render_pool(pool)
    assert "[a-example-test]\n" in text and "listen = /run/php/a.sock\n" in text
    assert "php_admin_value[open_basedir] = /srv/a/web:/srv/a/tmp\n" in text
    with pytest.raises(ValidationError):
        PhpPool("a", "bad user", "g", "/run/x.sock", "w", "w", "/srv", "/tmp")

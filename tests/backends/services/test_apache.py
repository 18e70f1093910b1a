"""Apache vhosts on a real Apache 2.4 (its own ports), over SSH: apply, serve, roll back."""

from __future__ import annotations

from pathlib import Path

import pytest
from svckit import WebBed

from cockpit.backends.services.base import CheckStatus
from cockpit.backends.services.certs import SelfSigned
from cockpit.backends.services.http import CONFIG_HEADER, ApplyError, Vhost
from cockpit.backends.services.render import BUILTIN_TEMPLATES
from cockpit.model import Site

DOMAIN = "blog.example.test"


def site(**kwargs: object) -> Site:
    return Site(domain=DOMAIN, platform="p1", **kwargs)  # type: ignore[arg-type]


async def test_apply_serves_the_site(apache_bed: WebBed) -> None:
    docroot = await apache_bed.docroot(DOMAIN)
    result = await apache_bed.http.apply_site(apache_bed.transport, Vhost(site(), docroot))
    assert result.changed and result.status == 200
    response = await apache_bed.get(DOMAIN)
    assert response.status == 200 and response.body == b"hello from blog.example.test\n"
    assert response.headers[CONFIG_HEADER.lower()] == result.config_id
    assert await apache_bed.exists(apache_bed.http.link_path(DOMAIN))
    # The server's default vhost answers other names (403), not the site.
    assert (await apache_bed.get("other.example.test")).status == 403
    again = await apache_bed.http.apply_site(apache_bed.transport, Vhost(site(), docroot))
    assert not again.changed


async def test_aliases_redirection_and_disabled(apache_bed: WebBed) -> None:
    docroot = await apache_bed.docroot(DOMAIN)
    http = apache_bed.http
    aliases = ("www.blog.example.test", "*.blogs.example.test")
    await http.apply_site(
        apache_bed.transport, Vhost(site(aliases=aliases, redirection=DOMAIN), docroot)
    )
    assert (await apache_bed.get(DOMAIN)).status == 200
    for name in ("www.blog.example.test", "a.blogs.example.test"):
        moved = await apache_bed.get(name, "/p?q=1")
        assert moved.status == 301
        assert moved.headers["location"] == f"http://{DOMAIN}:{apache_bed.http_port}/p?q=1"
    disabled = await http.apply_site(
        apache_bed.transport, Vhost(site(aliases=aliases, status="disabled"), docroot)
    )
    assert disabled.status == 503
    for name in (DOMAIN, "www.blog.example.test"):
        response = await apache_bed.get(name, "/any/page")
        assert response.status == 503 and b"This site is disabled" in response.body


async def test_https_with_a_self_signed_certificate(apache_bed: WebBed) -> None:
    docroot = await apache_bed.docroot(DOMAIN)
    http = apache_bed.http
    await SelfSigned(http).ensure(apache_bed.transport, DOMAIN, [DOMAIN], reload=False)
    cert = http.certificate_paths(DOMAIN)
    await http.apply_site(apache_bed.transport, Vhost(site(https="on"), docroot, certificate=cert))
    assert (await apache_bed.get(DOMAIN)).status == 200
    assert (await apache_bed.get(DOMAIN, https=True)).status == 200
    await http.apply_site(
        apache_bed.transport, Vhost(site(https="required"), docroot, certificate=cert)
    )
    plain = await apache_bed.get(DOMAIN, "/x")
    assert plain.status == 301
    assert plain.headers["location"] == f"https://{DOMAIN}:{apache_bed.https_port}/x"


async def test_a_broken_override_leaves_the_live_config_byte_identical(
    apache_bed: WebBed, user_templates: Path
) -> None:
    docroot = await apache_bed.docroot(DOMAIN)
    http = apache_bed.http
    good = await http.apply_site(apache_bed.transport, Vhost(site(), docroot))
    live = http.vhost_path(DOMAIN)
    before = await apache_bed.read(live)
    original = (BUILTIN_TEMPLATES / "apache/vhost.conf.j2").read_text()
    (user_templates / "apache").mkdir()
    (user_templates / "apache/vhost.conf.j2").write_text(
        original.replace(
            "    DocumentRoot {{ docroot }}",
            "    NoSuchDirective on\n    DocumentRoot {{ docroot }}",
        )
    )
    with pytest.raises(ApplyError) as failure:
        await http.apply_site(
            apache_bed.transport, Vhost(site(aliases=("x.example.test",)), docroot)
        )
    assert failure.value.stage == "config test" and failure.value.restored
    assert "NoSuchDirective" in str(failure.value)
    assert await apache_bed.read(live) == before
    response = await apache_bed.get(DOMAIN)
    assert response.status == 200 and response.headers[CONFIG_HEADER.lower()] == good.config_id


async def test_check_reports_the_config_test_and_modules(apache_bed: WebBed) -> None:
    checks = await apache_bed.http.check(apache_bed.transport)
    by_name = {c.name: c for c in checks}
    assert by_name["http/apache: installed"].status is CheckStatus.OK
    assert by_name["http/apache: installed"].reason.startswith("Apache 2.4")
    assert by_name["http/apache: config test"].status is CheckStatus.OK
    assert by_name["http/apache: modules"].status is CheckStatus.OK
    assert by_name["http/apache: probe tool"].reason.endswith("curl")

"""Certificates: self-signed with openssl, and ACME for real, offline.

ACME: Debian's ``pebble`` (Let's Encrypt's test CA) runs on 127.0.0.1 with ``-dnsserver``
pointing at a small DNS responder of this test (``svckit.DnsResponder``) that answers
A 127.0.0.2 for the test's domains, so pebble's validation authority really fetches the
HTTP-01 token from the nginx vhost Cockpit configured on test host tb2. The ACME
client is lego, run on the host over SSH (sudo), trusting pebble's TLS CA through
``acme_ca_bundle``. Pebble's always-valid mode is NOT used.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from svckit import Pebble, WebBed, bed_ports, pebble_server, start_bed, stop_bed
from testbed import Fleet, TestHost

from cockpit.backends.services.certs import (
    Acme,
    CertificateError,
    SelfSigned,
    authority_for,
    read_certificate,
)
from cockpit.backends.services.http import Vhost
from cockpit.backends.ssh import SshPool
from cockpit.model import Site

DOMAIN = "shop.example.test"
WWW = "www.shop.example.test"


@pytest.fixture(scope="session")
def pebble(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    # The work dir must be readable by root over SSH+sudo (it is: same machine, root).
    with pebble_server(bed_ports(fleet).nginx_http, tmp_path_factory.mktemp("pebble")) as server:
        yield server


@pytest.fixture
async def acme_bed(
    testhost: TestHost, fleet: Fleet, pool: SshPool, pebble: Pebble
) -> AsyncIterator[WebBed]:
    ports = bed_ports(fleet)
    bed = await start_bed(
        testhost,
        pool,
        "nginx",
        ports.nginx_http,
        ports.nginx_https,
        certificates="acme",
        acme_directory=pebble.directory,
        acme_email="hostmaster@example.org",
        acme_ca_bundle=str(pebble.ca_bundle),
    )
    for name in (DOMAIN, WWW):
        pebble.dns.records[name] = testhost.address
    try:
        yield bed
    finally:
        await stop_bed(bed)


def sha256_of_der(der: bytes | None) -> str:
    assert der is not None
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


async def test_acme_issue_serve_and_renew_with_pebble(
    acme_bed: WebBed, pebble: Pebble, tmp_path: Path
) -> None:
    http = acme_bed.http
    docroot = await acme_bed.docroot(DOMAIN)
    site = Site(domain=DOMAIN, platform="p1", aliases=(WWW,))
    await http.apply_site(acme_bed.transport, Vhost(site, docroot))
    authority = authority_for(http)
    assert isinstance(authority, Acme)
    lines: list[str] = []
    first = await authority.ensure(
        acme_bed.transport, DOMAIN, [DOMAIN, WWW], on_line=lambda line: lines.append(line.text)
    )
    assert first.issued and first.reason == "no certificate yet"
    info = first.info
    assert "Pebble Intermediate CA" in info.issuer and not info.self_signed
    assert set(info.names) == {DOMAIN, WWW}
    assert info.days_left() > 365  # pebble issues for five years
    # Pebble's validation authority asked our resolver, then fetched the token from nginx.
    assert (DOMAIN, 1) in pebble.dns.queries
    access = (await acme_bed.read(f"{acme_bed.conf_dir}/logs/{DOMAIN}.access.log")).decode()
    assert "/.well-known/acme-challenge/" in access and "Pebble-VA" in access
    assert any("acme: Validations succeeded" in line or "validated" in line for line in lines)
    # Served over HTTPS, verified against pebble's root for real.
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(pebble.root_pem())
    cert = http.certificate_paths(DOMAIN)
    secured = Site(domain=DOMAIN, platform="p1", aliases=(WWW,), https="required")
    await http.apply_site(acme_bed.transport, Vhost(secured, docroot, certificate=cert))
    response = await acme_bed.get(WWW, https=True, cafile=str(root))
    assert response.status == 200 and response.body.startswith(b"hello")
    assert sha256_of_der(response.peer_certificate) == info.fingerprint
    key_mode = await acme_bed.transport.run_script(
        'stat -c %a -- "$1"', [cert.key], sudo=True, capture=True
    )
    assert key_mode.stdout == ["600"]
    # Valid for years: nothing to do.
    again = await authority.ensure(acme_bed.transport, DOMAIN, [DOMAIN, WWW])
    assert not again.issued and again.info.serial == info.serial
    # Renewal when within the window: a new certificate, served after the reload.
    renewed = await authority.ensure(acme_bed.transport, DOMAIN, [DOMAIN, WWW], renew_days=100_000)
    assert renewed.issued and "expires in" in renewed.reason
    assert renewed.info.serial != info.serial
    for _ in range(50):
        served = await acme_bed.get(DOMAIN, https=True, cafile=str(root))
        if sha256_of_der(served.peer_certificate) == renewed.info.fingerprint:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("nginx still serves the old certificate")


async def test_an_acme_failure_is_loud_and_keeps_the_old_certificate(
    acme_bed: WebBed, pebble: Pebble
) -> None:
    http = acme_bed.http
    docroot = await acme_bed.docroot(DOMAIN)
    await http.apply_site(acme_bed.transport, Vhost(Site(domain=DOMAIN, platform="p1"), docroot))
    authority = Acme(http)
    await authority.ensure(acme_bed.transport, DOMAIN, [DOMAIN])
    cert_path = http.certificate_paths(DOMAIN).certificate
    before = await acme_bed.read(cert_path)
    # A name that resolves to an address where nothing answers: the challenge fails.
    pebble.dns.records["dead.shop.example.test"] = "127.0.0.254"
    with pytest.raises(CertificateError) as failure:
        await authority.ensure(acme_bed.transport, DOMAIN, [DOMAIN, "dead.shop.example.test"])
    message = str(failure.value)
    assert "did not issue" in message and "dead.shop.example.test" in message
    assert "connection refused" in message.lower() or "connect" in message.lower()
    assert await acme_bed.read(cert_path) == before
    # A name our resolver does not know: NXDOMAIN, also loud.
    with pytest.raises(CertificateError, match=r"nowhere\.shop\.example\.test"):
        await authority.issue(acme_bed.transport, DOMAIN, [DOMAIN, "nowhere.shop.example.test"])
    assert await acme_bed.read(cert_path) == before


async def test_acme_without_a_contact_address_fails_before_contacting_anyone(
    nginx_bed: WebBed,
) -> None:
    http = type(nginx_bed.http)(nginx_bed.server, nginx_bed.server.services[0])
    object.__setattr__(
        http, "settings", {**http.settings, "certificates": "acme", "acme_email": ""}
    )
    with pytest.raises(CertificateError, match="acme_email"):
        await authority_for(http).ensure(nginx_bed.transport, DOMAIN, [DOMAIN])


async def test_self_signed_converges_and_follows_the_names(nginx_bed: WebBed) -> None:
    authority = SelfSigned(nginx_bed.http)
    first = await authority.ensure(nginx_bed.transport, DOMAIN, [DOMAIN])
    assert first.issued and first.info.self_signed and first.info.names == (DOMAIN,)
    assert 800 < first.info.days_left() <= 825
    again = await authority.ensure(nginx_bed.transport, DOMAIN, [DOMAIN])
    assert not again.issued
    wider = await authority.ensure(
        nginx_bed.transport, DOMAIN, [DOMAIN, WWW, "*.shops.example.test"]
    )
    assert wider.issued and "does not cover" in wider.reason
    assert set(wider.info.names) == {DOMAIN, WWW, "*.shops.example.test"}
    paths = nginx_bed.http.certificate_paths(DOMAIN)
    modes = await nginx_bed.transport.run_script(
        'stat -c "%a %U" -- "$1" "$2"', [paths.key, paths.certificate], sudo=True, capture=True
    )
    assert modes.stdout == ["600 root", "644 root"]
    assert await read_certificate(nginx_bed.transport, f"{paths.certificate}.none") is None
    json_info = wider.to_json()
    assert json_info["certificate"]["not_after"] and json_info["certificate"]["days_left"] > 800

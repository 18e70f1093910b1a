"""site.cert-renew on the test bed: a certificate is renewed when due (and served after
the reload), left alone when not, and nothing is asked of the server for a site without
HTTPS. The ACME exchange itself is tested against pebble in
tests/backends/services/test_certs.py; here the site's authority is the built-in
self-signed one, through the same ``ensure``."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import time
from pathlib import Path

import pytest
from sitekit import SiteBed, cockpit

from cockpit.engine import TaskState
from cockpit.model import Platform, Site, ValidationError


def _served_fingerprint(address: str, port: int, name: str) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection((address, port), timeout=20) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der
    return hashlib.sha256(der).hexdigest()


def _file_fingerprint(path: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(path.read_text())).hexdigest()


async def test_a_certificate_is_renewed_when_due_and_left_alone_when_not(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.b
    secure, plain = bed.domain("renew"), bed.domain("plain")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("static3", host.name, "static", f"{host.root}/platforms/static3")],
            [Site(secure, "static3", https="on"), Site(plain, "static3")],
        )
        for kind, target in (
            ("platform.install", "static3"),
            ("site.install", secure),
            ("site.install", plain),
        ):
            task = await cp.run(kind, target)
            assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        cert = Path(host.root) / "certs" / secure / "fullchain.pem"
        first = _file_fingerprint(cert)
        assert _served_fingerprint(host.address, host.https_port, secure) == first

        # not due: nothing issued, the same certificate served
        task = await cp.run("site.cert-renew", secure)
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert task.result.startswith("not due:"), task.result
        assert _file_fingerprint(cert) == first

        # due (the window is wider than the certificate's life): renewed, reloaded, served
        task = await cp.run("site.cert-renew", secure, {"days": 3650})
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert task.result.startswith("renewed: the certificate expires in"), task.result
        renewed = _file_fingerprint(cert)
        assert renewed != first
        # a signalled reload returns before nginx's new workers take over
        deadline = time.monotonic() + 20
        while _served_fingerprint(host.address, host.https_port, secure) != renewed:
            assert time.monotonic() < deadline, "nginx still serves the old certificate"
            await asyncio.sleep(0.1)

        # a site without HTTPS: decided from the store, no certificate appears
        task = await cp.run("site.cert-renew", plain)
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert "HTTPS off: no certificate to renew" in log
        assert not (Path(host.root) / "certs" / plain).exists()


@pytest.mark.parametrize("days", [0, -1, 3651, "30", True, 1.5])
async def test_a_renewal_window_that_is_not_a_whole_number_of_days_is_refused(
    bed: SiteBed, tmp_path: Path, days: object
) -> None:
    domain = bed.domain("window")
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [bed.b.server()],
            [Platform("static4", bed.b.name, "static", f"{bed.b.root}/platforms/static4")],
            [Site(domain, "static4", https="on")],
        )
        with pytest.raises(ValidationError, match=r"args\.days"):
            await cp.run("site.cert-renew", domain, {"days": days})

"""Platform tasks on the test bed (install from a dir and from a tarball, verify, lock,
unlock, delete refused while it has sites), and hostile names refused before any
remote command runs."""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from sitekit import SiteBed, cockpit

from cockpit.backends.transport import LineHandler, LinesHandler, Result, Transport
from cockpit.engine import TaskState
from cockpit.model import Platform, Server, Site, ValidationError


async def test_platform_install_verify_lock_unlock_delete(bed: SiteBed, tmp_path: Path) -> None:
    host = bed.b
    domain = bed.domain("pl")
    wp_root = f"{host.root}/platforms/wp-{domain.split('.')[0]}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [Platform("wp2", host.name, "wordpress", wp_root)],
            [Site(domain, "wp2")],
        )
        missing = await cp.run("platform.verify", "wp2")
        assert missing.state is TaskState.FAILED and "missing" in missing.result

        task = await cp.run("platform.install", "wp2", {"source": "/usr/share/wordpress"})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        assert (await cp.platform("wp2")).release == "6.1.9"  # type: ignore[union-attr]
        assert not Path(wp_root, "wp-config.php").exists()  # Debian's, pointing into /etc
        assert not Path(wp_root, "wp-includes", "ID3", "getid3.lib.php").is_symlink()
        verify = await cp.run("platform.verify", "wp2")
        assert verify.state is TaskState.SUCCEEDED
        assert verify.result == "wordpress 6.1.9, 1 sites"
        # installing again converges (the codebase is there)
        again = await cp.run("platform.install", "wp2", {"source": "/usr/share/wordpress"})
        assert again.state is TaskState.SUCCEEDED, await cp.log_text(again)

        # a locked platform takes no new sites
        assert (await cp.run("platform.lock", "wp2")).state is TaskState.SUCCEEDED
        assert (await cp.platform("wp2")).locked  # type: ignore[union-attr]
        refused = await cp.run("site.install", domain)
        assert refused.state is TaskState.FAILED and "locked" in refused.result
        assert not host.site_dir(domain).exists()
        assert (await cp.run("platform.unlock", "wp2")).state is TaskState.SUCCEEDED
        assert not (await cp.platform("wp2")).locked  # type: ignore[union-attr]

        # delete: refused while it has a site, done once the site is deleted
        refused = await cp.run("platform.delete", "wp2")
        assert refused.state is TaskState.FAILED and "still has 1 site" in refused.result
        assert Path(wp_root, "wp-login.php").exists()
        gone = await cp.run("site.delete", domain, {"force": True, "skip_backup": True})
        assert gone.state is TaskState.SUCCEEDED, await cp.log_text(gone)
        task = await cp.run("platform.delete", "wp2")
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        assert not Path(wp_root).exists()


async def test_platform_install_from_a_tarball(bed: SiteBed, tmp_path: Path) -> None:
    """A release tarball with one top dir (as drupal-X.Y.Z.tar.gz is): unpacked, its
    top dir taken as the codebase, the release read from core/lib/Drupal.php."""
    host = bed.a
    skeleton = tmp_path / "drupal-10.2.3"
    (skeleton / "core" / "lib").mkdir(parents=True)
    (skeleton / "core" / "lib" / "Drupal.php").write_text(
        "<?php\nclass Drupal {\n  const VERSION = '10.2.3';\n}\n"
    )
    (skeleton / "index.php").write_text("<?php\n")
    tarball = Path(host.root) / "drupal-10.2.3.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(skeleton, arcname="drupal-10.2.3")
    root = f"{host.root}/platforms/d10-{tmp_path.name[-6:]}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add([host.server()], [Platform("d10", host.name, "drupal", root)])
        task = await cp.run("platform.install", "d10", {"source": str(tarball)})
        assert task.state is TaskState.SUCCEEDED, await cp.log_text(task)
        assert Path(root, "index.php").exists() and Path(root, "core/lib/Drupal.php").exists()
        assert (await cp.platform("d10")).release == "10.2.3"  # type: ignore[union-attr]
        # a source that is not a Drupal codebase: refused, nothing left
        (tmp_path / "other").mkdir()
        bad = Path(host.root) / "not-drupal.tar.gz"
        with tarfile.open(bad, "w:gz") as tar:
            tar.add(tmp_path / "other", arcname="other")
        await cp.add([], [Platform("bad", host.name, "drupal", f"{root}-bad")])
        task = await cp.run("platform.install", "bad", {"source": str(bad)})
        assert task.state is TaskState.FAILED and "not a codebase" in task.result
        assert not Path(f"{root}-bad").exists()
        assert not list(Path(root).parent.glob(".cockpit-codebase.*"))
        assert (await cp.run("platform.delete", "d10")).state is TaskState.SUCCEEDED
        assert not Path(root).exists()
    tarball.unlink()
    bad.unlink()


async def test_a_single_site_platform_and_its_site_in_one_step(
    bed: SiteBed, tmp_path: Path
) -> None:
    """site.install with a source installs a missing WordPress codebase first; a
    multi-site platform (Drupal) and a missing source are refused, nothing made."""
    host = bed.a
    domain, other = bed.domain("one"), bed.domain("dr")
    wp_root = f"{host.root}/platforms/wp1-{domain.split('.')[0]}"
    d_root = f"{host.root}/platforms/d1-{domain.split('.')[0]}"
    async with cockpit(bed, tmp_path) as cp:
        await cp.add(
            [host.server()],
            [
                Platform("wp1", host.name, "wordpress", wp_root),
                Platform("d1", host.name, "drupal", d_root),
            ],
            [Site(domain, "wp1"), Site(other, "d1")],
        )
        refused = await cp.run("site.install", domain)
        assert refused.state is TaskState.FAILED
        assert "run platform.install first, or give site.install a source" in refused.result
        refused = await cp.run("site.install", other, {"source": "/usr/share/wordpress"})
        assert refused.state is TaskState.FAILED and "holds many sites" in refused.result
        assert not Path(d_root).exists() and not host.site_dir(other).exists()

        task = await cp.run("site.install", domain, {"source": "/usr/share/wordpress"})
        log = await cp.log_text(task)
        assert task.state is TaskState.SUCCEEDED, log
        assert "the codebase of wp1 is missing: installing it first" in log
        assert task.result == f"installed {domain} (wordpress, mysql)"
        assert Path(wp_root, "wp-login.php").exists()
        assert (await cp.platform("wp1")).release == "6.1.9"  # type: ignore[union-attr]
        response = await host.aget(domain, "/wp-login.php")
        assert response.status == 200 and 'id="loginform"' in response.text
        # again: the codebase is there, nothing is made twice
        again = await cp.run("site.install", domain, {"source": "/usr/share/wordpress"})
        assert again.state is TaskState.SUCCEEDED, await cp.log_text(again)
        assert "the platform's codebase is there" in await cp.log_text(again)
        gone = await cp.run("site.delete", domain, {"force": True, "skip_backup": True})
        assert gone.state is TaskState.SUCCEEDED, await cp.log_text(gone)
        assert (await cp.run("platform.delete", "wp1")).state is TaskState.SUCCEEDED


HOSTILE = [
    "a.example; touch /tmp/pwned",
    "$(reboot).example",
    "`id`.example",
    "../../etc.example",
    "a.example\nb",
    "-rf.example",
    "a..example",
    "x.example/../../",
    "*.example",
    "a b.example",
    "ex\u0430mple.com",  # a Cyrillic 'а'
    "ＡＢ.example",
]


@pytest.mark.parametrize("domain", HOSTILE)
def test_hostile_domains_are_refused_by_the_model(domain: str) -> None:
    with pytest.raises(ValidationError):
        Site(domain, "p")


class _Refusing(Transport):
    """A transport that records every remote operation asked of it and runs none."""

    def __init__(self, server: Server, calls: list[str]) -> None:
        super().__init__(server)
        self.calls = calls

    async def run_script(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
        on_lines: LinesHandler | None = None,
    ) -> Result:
        self.calls.append(f"run_script {list(args)!r}")
        raise AssertionError("a remote command ran")

    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        self.calls.append(f"upload {remote_path}")
        raise AssertionError("a remote upload ran")

    async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
        self.calls.append(f"download {remote_path}")
        raise AssertionError("a remote download ran")

    async def close(self) -> None:
        return None


async def test_a_hostile_domain_in_the_store_is_refused_before_any_remote_command(
    bed: SiteBed, tmp_path: Path
) -> None:
    """The store's rows are trusted as written: a row written behind Cockpit's back
    still never reaches a remote command."""
    host = bed.a
    calls: list[str] = []
    async with cockpit(bed, tmp_path, transport_factory=lambda s: _Refusing(s, calls)) as cp:
        await cp.add([host.server()], [Platform("p", host.name, "static", f"{host.root}/p")])
        hostile = [d for d in HOSTILE if 3 <= len(d) <= 253]
        async with cp.db.write() as conn:
            for domain in hostile:
                await conn.execute(
                    "INSERT INTO sites (platform_id, domain) "
                    "SELECT id, ? FROM platforms WHERE name = 'p'",
                    (domain,),
                )
        for kind, args in SITE_KINDS.items():
            for domain in hostile:
                task = await cp.run(kind, domain, dict(args))
                assert task.state is TaskState.FAILED, (kind, domain)
                assert "refused before any remote command" in task.result, (kind, task.result)
    assert calls == []


#: Every site kind, with the args it needs to be queued.
SITE_KINDS: dict[str, dict[str, object]] = {
    "site.install": {"source": "/usr/share/wordpress"},
    "site.verify": {},
    "site.disable": {},
    "site.enable": {},
    "site.delete": {"skip_backup": True, "force": True},
    "site.login-reset": {},
    "site.cert-renew": {},
    "site.backup": {},
    "site.backup-delete": {"backup": 1},
    "site.backup-prune": {},
    "site.restore": {},
    "site.clone": {"domain": "clone-target.example"},
    "site.migrate": {"platform": "p"},
}

#: Every platform kind, with the args it needs to be queued.
PLATFORM_KINDS: dict[str, dict[str, object]] = {
    "platform.install": {"source": "/usr/share/wordpress"},
    "platform.verify": {},
    "platform.lock": {},
    "platform.unlock": {},
    "platform.delete": {},
}


def test_every_site_and_platform_kind_is_in_the_hostile_test() -> None:
    from cockpit.engine import Registry

    names = {k.name for k in Registry.default() if k.name.startswith(("site.", "platform."))}
    assert names == set(SITE_KINDS) | set(PLATFORM_KINDS)


async def test_a_hostile_platform_in_the_store_is_refused_before_any_remote_command(
    bed: SiteBed, tmp_path: Path
) -> None:
    host = bed.a
    calls: list[str] = []
    hostile = {
        "p1": "/srv/$(reboot)",
        "p2": "/srv/a b",
        "p3": "/srv/../etc",
        "p4": "/srv/x\nrm -rf /",
        "p;id": "/srv/ok",
        "$(id)": "/srv/ok2",
        "-rf": "/srv/ok3",
    }
    async with cockpit(bed, tmp_path, transport_factory=lambda s: _Refusing(s, calls)) as cp:
        await cp.add([host.server()])
        async with cp.db.write() as conn:
            for name, root in hostile.items():
                await conn.execute(
                    "INSERT INTO platforms (server_id, type, name, root) "
                    "SELECT id, 'wordpress', ?, ? FROM servers",
                    (name, root),
                )
        for kind, args in PLATFORM_KINDS.items():
            for name in hostile:
                task = await cp.run(kind, name, dict(args))
                assert task.state is TaskState.FAILED, (kind, name)
                assert "refused before any remote command" in task.result, (kind, task.result)
    assert calls == []

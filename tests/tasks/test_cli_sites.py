"""The site lifecycle through the real `cockpit` command, as a user runs it: `site
add` (a WordPress site and its platform in one step), `task run site.install` with a
source, HTTP 200, disable, delete (`--force`), `site remove`; a detached worker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sitekit import SiteBed

from cockpit.config import load_config
from cockpit.core import Cockpit

COCKPIT = Path(sys.executable).parent / "cockpit"


class Cli:
    def __init__(self, bed: SiteBed, tmp: Path) -> None:
        config = bed.config(tmp)
        self.config_file = tmp / "config.yaml"
        self.config_file.write_text(
            yaml.safe_dump(
                {
                    "store": str(config.store),
                    "ssh": {
                        "identity_files": [str(p) for p in config.ssh.identity_files],
                        "known_hosts": str(config.ssh.known_hosts),
                        "connect_timeout": 10,
                    },
                }
            )
        )
        self.env = {
            **os.environ,
            "COCKPIT_CONFIG": str(self.config_file),
            "XDG_DATA_HOME": str(tmp / "xdg-data"),
            "NO_COLOR": "1",
        }

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(COCKPIT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout


@pytest.fixture
def cli(bed: SiteBed, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(bed, tmp_path)
    try:
        yield runner
    finally:
        runner("worker", "stop", "--timeout", "30")


async def _add_server(cli: Cli, bed: SiteBed) -> None:
    cockpit = await Cockpit.open(load_config(cli.config_file))
    try:
        await cockpit.add_server(bed.a.server())
    finally:
        await cockpit.close()


def test_a_wordpress_site_added_installed_disabled_deleted_removed(
    bed: SiteBed, cli: Cli, tmp_path: Path
) -> None:
    host = bed.a
    domain = bed.domain("cli")
    name = f"wp-{domain.split('.')[0]}"
    root = f"{host.root}/platforms/{name}"
    asyncio.run(_add_server(cli, bed))

    # bad input: a clear message, exit 2, nothing stored
    bad = cli(
        "site", "add", "a;b.example", "--platform", name, "--type", "wordpress",
        "--server", host.name,
    )  # fmt: skip
    assert bad.returncode == 2 and "site.domain" in bad.stderr, bad.stderr
    assert name not in cli.ok("platform", "list")
    nowhere = cli("site", "add", domain, "--platform", name)
    assert nowhere.returncode == 2 and f"no platform {name}" in nowhere.stderr

    out = cli.ok(
        "site", "add", domain, "--platform", name, "--type", "wordpress",
        "--server", host.name, "--root", root, "--alias", f"www.{domain}", "--client", "acme",
    )  # fmt: skip
    assert f"site {domain} on {name} (and the platform {name})" in out
    assert f"{name}\t{host.name}\twordpress\t{root}\t-" in cli.ok("platform", "list")
    again = cli("site", "add", domain, "--platform", name)
    assert again.returncode == 2 and "already" in again.stderr

    install = cli(
        "task", "run", "site.install", domain, "--arg", "source=/usr/share/wordpress", "--wait"
    )
    assert install.returncode == 0, (install.stdout, install.stderr)
    assert f"installed {domain} (wordpress, mysql)" in install.stdout
    assert f"{name}\t{host.name}\twordpress\t{root}\t6.1.9" in cli.ok("platform", "list")
    response = host.get(domain, "/wp-login.php")
    assert response.status == 200 and 'id="loginform"' in response.text
    assert host.get(f"www.{domain}", "/wp-login.php").status in (200, 301)

    # installed: it cannot leave the inventory, and an enabled site is not deleted
    refused = cli("site", "remove", domain)
    assert refused.returncode == 1 and "run site.delete first" in refused.stderr
    enabled = cli("task", "run", "site.delete", domain, "--wait")
    assert enabled.returncode == 1 and "disable it first" in enabled.stdout
    assert host.site_dir(domain).exists()

    cli.ok("task", "run", "site.disable", domain, "--wait")
    assert host.get(domain, "/wp-login.php").status == 503

    # --force as the flag (site.delete's force arg), no backup kept here
    delete = cli(
        "task", "run", "site.delete", domain, "--force", "--arg", "skip_backup=true", "--wait"
    )
    assert delete.returncode == 0, (delete.stdout, delete.stderr)
    assert f"deleted {domain}" in delete.stdout
    assert not host.site_dir(domain).exists() and not host.vhost_file(domain).exists()
    # a kind without a force arg refuses the flag
    odd = cli("task", "run", "site.install", domain, "--force")
    assert odd.returncode == 2 and "args.force" in odd.stderr

    cli.ok("site", "remove", domain)
    gone = cli("site", "remove", domain)
    assert gone.returncode == 2 and f"no site {domain}" in gone.stderr


async def test_the_core_adds_and_removes_sites_with_their_refusals(tmp_path: Path) -> None:
    """Cockpit.add_site / add_platform / remove_site on a store alone (no server runs)."""
    from datetime import UTC, datetime

    from cockpit.config import Config
    from cockpit.engine import Engine
    from cockpit.model import Backup, Platform, Site, ValidationError
    from cockpit.store import backups as backup_queries
    from cockpit.store.errors import ConflictError, NotFoundError

    config = Config(store=tmp_path / "data" / "cockpit.db")
    cockpit = await Cockpit.open(config)
    try:
        server = (await cockpit.servers())[0].name
        wp = Platform("wp", server, "wordpress", "/srv/wp")
        with pytest.raises(ValidationError):
            await cockpit.add_site(Site("a.example", "other"), platform=wp)
        await cockpit.add_site(Site("a.example", "wp", client="acme"), platform=wp)
        assert (await cockpit.platform("wp")) == wp
        assert [c.name for c in await cockpit.clients()] == ["acme"]
        with pytest.raises(ConflictError, match=r"a site a\.example already"):
            await cockpit.add_site(Site("a.example", "wp"))
        with pytest.raises(ConflictError, match="platform named wp already"):
            await cockpit.add_platform(wp)
        with pytest.raises(NotFoundError):
            await cockpit.add_site(Site("b.example", "nowhere"))
        assert await cockpit.site("b.example") is None

        # a task queued on it, then a backup of it: each keeps the row
        engine = Engine(cockpit.db, config)
        await engine.queue("site.verify", ["a.example"], None, start_worker=False)
        with pytest.raises(ConflictError, match="queued or running"):
            await cockpit.remove_site("a.example")
        async with cockpit.db.write() as conn:
            await conn.execute("UPDATE tasks SET state = 'failed'")
        async with cockpit.db.write() as conn:
            await backup_queries.add(
                conn,
                Backup("a.example", "/srv/b.tar", 1, "0" * 64, datetime.now(UTC), server=server),
            )
        with pytest.raises(ConflictError, match=r"backups of a\.example"):
            await cockpit.remove_site("a.example")
        assert await cockpit.site("a.example") is not None
        async with cockpit.db.write() as conn:
            await conn.execute("DELETE FROM backups")
            await conn.execute("UPDATE tasks SET state = 'succeeded'")
        with pytest.raises(ConflictError, match=r"run site\.delete first"):
            await cockpit.remove_site("a.example")
        async with cockpit.db.write() as conn:
            await conn.execute("UPDATE tasks SET state = 'failed'")
        await cockpit.remove_site("a.example")
        assert await cockpit.site("a.example") is None
    finally:
        await cockpit.close()

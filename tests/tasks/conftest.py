"""Fixtures of the site and platform task tests (helpers in sitekit.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sitekit import SiteBed, close_bed, make_bed
from testbed import Fleet


@pytest.fixture(scope="session")
def site_bed(fleet: Fleet) -> Iterator[SiteBed]:
    """Two hosts (tb2, tb3), each with nginx and php-fpm running, Cockpit's layout, and a
    WordPress codebase on tb2; torn down (with every site the tests left) at the end."""
    bed = make_bed(fleet)
    try:
        yield bed
    finally:
        close_bed(bed)


@pytest.fixture
def bed(
    site_bed: SiteBed, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SiteBed]:
    """The session's hosts, with this test's own (empty) template override dir; the
    sites this test made are removed after it."""
    config_home = tmp_path_factory.mktemp("xdg-config")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    before = set(site_bed.domains)
    for host in site_bed.hosts:
        host.ensure_running()
    try:
        yield site_bed
    finally:
        mine = sorted(site_bed.domains - before)
        site_bed.forget(mine)
        site_bed.domains.difference_update(mine)

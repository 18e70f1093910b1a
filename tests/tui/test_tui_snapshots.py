"""SVG snapshots of the main views (pytest-textual-snapshot), on a deterministic fleet.

Review a changed snapshot as you review code: ``pytest tests/tui --snapshot-update``
rewrites them, ``snapshot_report.html`` shows the differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from tuikit import settle

from cockpit.app import make_app
from cockpit.core import Cockpit

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 50), id="160x50")]

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def fixed_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The header shows Cockpit's version: pinned here so a release leaves snapshots alone."""
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")


def keys(*pressed: str) -> Callable[[Pilot[Any]], Any]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_servers_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys())


@pytest.mark.parametrize("size", SIZES)
def test_sites_view(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit, size: tuple[int, int]
) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, terminal_size=size, run_before=keys("3", "j", "j"))


def test_sites_view_filtered(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("3", "slash", *"golf-0001"))


def test_help_over_the_sites_view(snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit) -> None:
    app = make_app(fleet_cockpit_sync)
    assert snap_compare(app, run_before=keys("3", "question_mark"))


def test_servers_view_mono_read_only(
    snap_compare: SnapCompare, fleet_cockpit_sync: Cockpit
) -> None:
    app = make_app(fleet_cockpit_sync, theme="cockpit-mono", read_only=True)
    assert snap_compare(app, run_before=keys())

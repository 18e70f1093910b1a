"""The footer at 80 columns and wider: every key it shows is whole, the view's own keys
come first, ``? Help`` is always there, what does not fit is dropped whole (least
important first), a keymap's key is the one shown, and without colour a separator keeps
the keys apart."""

from __future__ import annotations

from typing import Any

import pytest
from rich.cells import cell_len
from test_habits import VIEWS
from tuikit import screen_text, settle

from cockpit.app import CockpitApp, make_app
from cockpit.core import Cockpit
from cockpit.screens.base import ViewScreen
from cockpit.widgets.footer import SEPARATOR, CockpitFooter, FooterEntry, entry_text, fit_entries

Tasks = tuple[Cockpit, dict[str, int]]


@pytest.fixture
async def views_cockpit(tasks_cockpit: Tasks) -> Tasks:
    cockpit, batches = tasks_cockpit
    await cockpit.tasks.add_schedule("nightly", "0 3 * * *", "server.ping", ["*"])
    return cockpit, batches


def footer_of(app: Any) -> CockpitFooter:
    screen = app.screen
    assert isinstance(screen, ViewScreen), screen
    return screen.query_one(CockpitFooter)


def check_footer(app: Any, view: str) -> list[FooterEntry]:
    """The footer's last row holds exactly its entries, each whole; ``?`` is one of them;
    the first entry left out would not have fitted."""
    footer = footer_of(app)
    width = app.size.width
    entries = footer.entries()
    assert entries, view
    keys = [e for e in entries if not e.has_class("-command-palette")]
    palettes = [e for e in entries if e.has_class("-command-palette")]
    row = screen_text(app).splitlines()[-1]
    left = "".join(e.text for e in keys)
    assert row.startswith(left), f"{view}: {row!r} does not start with {left!r}"
    if palettes:
        assert row.rstrip().endswith(palettes[0].text.rstrip()), f"{view}: {row!r}"
    else:
        assert row[len(left) :].strip() == "", f"{view}: {row!r}"
    # each entry ends on a whole description (not a word cut by the edge)
    for entry in keys:
        assert entry.text.rstrip().endswith(f"{entry.key_display} {entry.description}"), view
    assert cell_len(left) + sum(cell_len(p.text) + 1 for p in palettes) <= width, view
    # ? is always shown, with its description
    assert any(e.binding_id == "app.help" for e in keys), f"{view}: no help in {row!r}"
    assert "? Help" in row, f"{view}: {row!r}"
    # what was left out did not fit: the app's keys and the palette go before the view's
    # own, and the first of the view's own keys left out would not have fitted
    shown = {e.action for e in entries}
    own = [
        b.binding
        for b in app.screen.active_bindings.values()
        if b.binding.show and b.node is not app
    ]
    left_out = [b for b in own if b.action not in shown]
    if left_out:
        own_actions = {b.action for b in own}
        assert not palettes, view
        assert all(e.binding_id == "app.help" or e.action in own_actions for e in keys), view
        extra = entry_text(
            app.get_key_display(left_out[0]),
            left_out[0].description,
            compact=footer.compact,
            separated=app.no_color,
        )
        assert cell_len(left) + cell_len(extra.plain) > width, view
    return entries


@pytest.mark.parametrize("view", list(VIEWS))
async def test_at_80_columns_every_view_ends_its_footer_on_a_whole_key(
    views_cockpit: Tasks, view: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cockpit, _batches = views_cockpit
    monkeypatch.setattr(CockpitApp, "WORKER_POLL_SECONDS", 3600.0)
    app = make_app(cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await VIEWS[view](pilot)
        await settle(pilot)
        entries = check_footer(app, view)
        # the view's own keys come first: the first entry is not one of the app's
        own = [
            b.binding.action
            for b in app.screen.active_bindings.values()
            if b.binding.show and b.node is not app
        ]
        if own:
            assert entries[0].action == own[0], view


async def test_the_least_important_keys_go_first_and_come_back_when_wider(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        wide = [e.text.strip() for e in footer_of(app).entries()]
        assert wide[-4:] == ["? Help", ": Command", "q Quit", "^p palette"]
        assert not footer_of(app).compact
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert footer_of(app).compact
        narrow = [e.text.strip() for e in check_footer(app, "servers at 80")]
        # the palette is the first to go
        assert narrow == wide[:-1]
        await pilot.resize_terminal(60, 24)
        await settle(pilot)
        # then quit and the command line: the servers list's own keys all still show
        tight = [e.text.strip() for e in check_footer(app, "servers at 60")]
        assert tight == wide[:-3]
        assert tight[-1] == "? Help"
        await pilot.resize_terminal(50, 24)
        await settle(pilot)
        # then the list's own keys, from the last: help stays
        tighter = [e.text.strip() for e in check_footer(app, "servers at 50")]
        assert tighter == [*wide[: len(tighter) - 1], "? Help"]
        assert "S Stats" not in tighter and "⏎ Open" in tighter
        await pilot.resize_terminal(160, 50)
        await settle(pilot)
        assert [e.text.strip() for e in footer_of(app).entries()] == wide


async def test_a_keymap_override_shows_the_new_key(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="sites", keymap={"app.help": "f1", "table.sort": "s"})
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        row = screen_text(app).splitlines()[-1]
        assert "f1 Help" in row and "? Help" not in row
        assert "s Sort" in row and "o Sort" not in row
        help_entry = next(e for e in footer_of(app).entries() if e.binding_id == "app.help")
        assert help_entry.key == "f1"
        await pilot.press("f1")
        await settle(pilot)
        assert "Keys of" in screen_text(app)


async def test_without_colour_a_separator_keeps_the_keys_apart(
    fleet_cockpit: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(fleet_cockpit, start_view="sites")
    assert app.no_color
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        entries = check_footer(app, "sites without colour")
        row = screen_text(app).splitlines()[-1]
        keys = [e for e in entries if not e.has_class("-command-palette")]
        assert row.startswith("⏎ Open " + SEPARATOR + "o Sort " + SEPARATOR + "space Mark")
        assert row.count(SEPARATOR.strip()) == len(keys) - 1
        assert "? Help" in row


def test_fitting_drops_the_least_important_whole_and_never_the_pinned() -> None:
    widths = [(5, 7), (5, 7), (6, 8), (4, 6)]
    assert fit_entries(widths, frozenset({2}), 100) == [0, 1, 2, 3]
    assert fit_entries(widths, frozenset({2}), 5 + 7 + 8 + 6) == [0, 1, 2, 3]
    assert fit_entries(widths, frozenset({2}), 5 + 7 + 8 + 6 - 1) == [0, 1, 2]
    assert fit_entries(widths, frozenset({2}), 5 + 8) == [0, 2]
    assert fit_entries(widths, frozenset({2}), 3) == [2]

"""Task arguments from the TUI: a kind's declared params are asked for in a form, checked
by the kind's own check (the one queueing runs), shown in the confirmation and queued
with the batch; a clone takes one target; esc and read-only mode queue nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from textual.message import Message
from textual.notifications import Notify
from textual.pilot import Pilot
from textual.widgets import Input
from tuikit import BACKUPS, PLATFORMS, screen_text, settle, site_domain

from cockpit.app import known_binding_ids, make_app
from cockpit.core import Cockpit
from cockpit.screens.actions import TaskMenuScreen
from cockpit.screens.args import ArgsScreen, Cycle
from cockpit.screens.batch import BatchScreen
from cockpit.screens.confirm import ConfirmTaskScreen, Danger
from cockpit.screens.sites import SitesScreen

SIZE = (120, 40)


def collect(kind: type[Message], into: list[Any]) -> Any:
    def hook(message: Message) -> None:
        if isinstance(message, kind) and all(m is not message for m in into):
            into.append(message)

    return hook


async def wait_for(pilot: Any, predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot)
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")


async def open_form(pilot: Any, *keys: str) -> ArgsScreen:
    await pilot.press(*keys)
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ArgsScreen), "the form")
    form = pilot.app.screen
    assert isinstance(form, ArgsScreen)
    return form


async def choose_kind(pilot: Any, name: str) -> None:
    """``t``, then ``name`` picked in the menu by moving to it."""
    await pilot.press("t")
    await settle(pilot)
    menu = pilot.app.screen
    assert isinstance(menu, TaskMenuScreen)
    at = [k.name for k in menu.kinds].index(name)
    await pilot.press(*["j"] * at, "enter")


async def test_migrate_asks_for_the_platform_and_queues_it(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "3", "M")  # site.migrate on the cursor row
        assert form.info.name == "site.migrate"
        assert isinstance(app.focused, Input) and app.focused.id == "arg-platform"
        text = screen_text(app)
        assert "site.migrate on 1 site" in text and "platform *" in text
        assert "the platform to move to" in text
        # The platforms of the store are suggested (→ takes the suggestion).
        assert form.names["platform"] == sorted(p.name for p in PLATFORMS)
        await pilot.press(*"drup", "right")
        await settle(pilot)
        assert app.focused.value == "drupal-10"
        await pilot.press("enter")  # no required field left empty: done
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"platform": "drupal-10"}
        assert confirm.request.danger is Danger.DANGEROUS
        assert "with platform=drupal-10" in screen_text(app)
        assert await cockpit.tasks.tasks(kind="site.migrate") == []  # not before the word
        await pilot.press(*site_domain(0), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        (task,) = await cockpit.tasks.tasks(kind="site.migrate")
        assert task.target.key == site_domain(0)
        assert dict(task.args) == {"platform": "drupal-10"}


async def test_migrate_of_marked_sites_takes_one_platform_for_all(
    fleet_cockpit: Cockpit,
) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "space", "j", "space", "j", "space")
        await settle(pilot)
        form = await open_form(pilot, "M")
        assert form.count == 3
        await pilot.press(*"static", "tab", "space", "enter")  # skip_probe: true
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"platform": "static", "skip_probe": True}
        assert confirm.request.expected == "3"
        await pilot.press("3", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        tasks = await cockpit.tasks.tasks(kind="site.migrate")
        assert len(tasks) == 3 and len({t.batch_id for t in tasks}) == 1
        assert {tuple(sorted(t.args.items())) for t in tasks} == {
            (("platform", "static"), ("skip_probe", True))
        }


async def test_an_unknown_platform_is_refused_in_the_form(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "3", "M")
        await pilot.press("enter")  # the required field empty: the kind's check says so
        await settle(pilot)
        assert app.screen is form
        assert "platform" in form.shown_errors
        assert "args.platform" in form.shown_errors["platform"]
        await pilot.press(*"nowhere", "enter")
        await settle(pilot)
        assert app.screen is form
        assert "no such platform" in form.shown_errors["platform"]
        assert "no such platform" in screen_text(app)
        assert await cockpit.tasks.tasks(kind="site.migrate") == []


async def test_a_bad_clone_domain_is_shown_on_its_field_and_nothing_queued(
    fleet_cockpit: Cockpit,
) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "j")  # the second row
        await settle(pilot)
        await pilot.press("t")
        await settle(pilot)
        text = screen_text(app)  # "…": a form opens first
        assert "site.clone…" in text and "site.migrate…" in text and "site.backup…" not in text
        await pilot.press("escape")
        await settle(pilot)
        await choose_kind(pilot, "site.clone")
        await wait_for(pilot, lambda: isinstance(app.screen, ArgsScreen), "the form")
        form = app.screen
        assert isinstance(form, ArgsScreen)
        assert "domain *" in screen_text(app)
        await pilot.press(*"not a domain!", "enter")
        await settle(pilot)
        assert app.screen is form
        assert list(form.shown_errors) == ["domain"]
        assert form.shown_errors["domain"].startswith("args.domain: ")
        assert "args.domain" in screen_text(app)
        assert isinstance(app.focused, Input) and app.focused.id == "arg-domain"
        assert await cockpit.tasks.tasks(kind="site.clone") == []
        # Fixed, with a choice cycled on the https field: the confirmation, then queued.
        await pilot.press("ctrl+u", *"copy.example.org", "tab", "tab", "right", "right")
        await settle(pilot)
        https = form.query_one("#arg-https", Cycle)
        assert https.value == "on"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"domain": "copy.example.org", "https": "on"}
        assert confirm.request.danger is Danger.CAUTION
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        (task,) = await cockpit.tasks.tasks(kind="site.clone")
        assert task.target.key == site_domain(8)
        assert dict(task.args) == {"domain": "copy.example.org", "https": "on"}


async def test_esc_in_the_form_queues_nothing(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_form(pilot, "3", "M")
        await pilot.press(*"static", "escape")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert await cockpit.tasks.tasks() == []


async def test_a_clone_on_two_marked_sites_is_refused(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    notes: list[Notify] = []
    app = make_app(cockpit)
    async with app.run_test(size=SIZE, message_hook=collect(Notify, notes)) as pilot:
        await settle(pilot)
        await pilot.press("3", "space", "j", "space")
        await settle(pilot)
        await choose_kind(pilot, "site.clone")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)  # no form, no confirmation
        messages = [n.notification.message for n in notes]
        assert any("site.clone" in m and "one site at a time, not on 2" in m for m in messages)
        assert await cockpit.tasks.tasks() == []


async def test_optional_arguments_from_the_confirmation(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "b")  # site.backup: no required param, straight to confirm
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        assert "a arguments" in screen_text(app)
        form = await open_form(pilot, "a")
        assert form.info.name == "site.backup"
        await pilot.press("tab", "space", "space")  # compression: (default) → zstd → gzip
        await settle(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"compression": "gzip"}
        assert "with compression=gzip" in screen_text(app)
        # Back to the form: it is filled with what was chosen.
        form = await open_form(pilot, "a")
        assert form.query_one("#arg-compression", Cycle).value == "gzip"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        (task,) = await cockpit.tasks.tasks(kind="site.backup")
        assert dict(task.args) == {"compression": "gzip"}


async def test_a_restore_asks_which_backup_suggesting_the_sites_own(
    fleet_cockpit: Cockpit,
) -> None:
    cockpit = fleet_cockpit
    app = make_app(cockpit)
    domain = BACKUPS[0].site
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *domain, "enter")
        await settle(pilot)
        form = await open_form(pilot, "R")  # dangerous, optional params: the form first
        ids = [str(b.id) for b in await cockpit.backups(domain)]
        assert len(ids) == 2 and sorted(form.names["backup"]) == sorted(ids)
        await pilot.press(*"first")
        await pilot.press("enter")
        await settle(pilot)
        assert "backup id" in form.shown_errors["backup"]
        await pilot.press("ctrl+u", *form.names["backup"][0], "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"backup": int(form.names["backup"][0])}
        assert "a arguments" not in screen_text(app)  # a dangerous one types its word
        await pilot.press("escape")
        await settle(pilot)
        assert await cockpit.tasks.tasks() == []


async def test_read_only_refuses_a_task_with_arguments(fleet_cockpit: Cockpit) -> None:
    cockpit = fleet_cockpit
    notes: list[Notify] = []
    app = make_app(cockpit, read_only=True)
    async with app.run_test(size=SIZE, message_hook=collect(Notify, notes)) as pilot:
        await settle(pilot)
        await pilot.press("3", "M")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        messages = [n.notification.message for n in notes]
        assert any("queueing a task is disabled: Cockpit is read-only" in m for m in messages)
        assert await cockpit.tasks.tasks() == []


async def test_the_forms_keys_can_be_remapped(fleet_cockpit: Cockpit) -> None:
    ids = {"args.submit", "args.cancel", "args.next", "confirm.args", "cycle.next"}
    assert ids <= known_binding_ids()
    app = make_app(fleet_cockpit, keymap={"confirm.args": "e", "args.submit": "f5"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "b")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        await open_form(pilot, "e")
        await pilot.press("tab", "space", "f5")  # compression: zstd; then done
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "the confirm")
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.args == {"compression": "zstd"}


def test_the_migrate_form_with_an_error_snapshot(
    snap_compare: Callable[..., bool],
    fleet_cockpit_sync: Cockpit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("cockpit.screens.base.__version__", "1.2.3")  # the header's
    app = make_app(fleet_cockpit_sync)

    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        await open_form(pilot, "3", "M")
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.press(*"nowhere", "enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)

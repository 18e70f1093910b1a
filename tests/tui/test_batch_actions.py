"""Batch actions from marks: a task on the marked rows (or the cursor row), one
confirmation, ONE batch queued through the core, its progress view; a real worker runs
``server.ping`` on this machine; read-only mode refuses every changing action."""

from __future__ import annotations

import getpass
import time
from collections.abc import Iterator
from typing import Any

import pytest
from textual.app import App
from textual.message import Message
from textual.notifications import Notify
from tuikit import screen_text, settle, site_domain, site_kind

from cockpit.app import CockpitApp, make_app
from cockpit.core import Cockpit
from cockpit.engine import Engine, Registry, TaskState
from cockpit.engine.builtin import BUILTIN_KINDS, SERVER_PING
from cockpit.messages import BatchQueued
from cockpit.screens.actions import TaskMenuScreen, danger_of
from cockpit.screens.batch import BatchScreen
from cockpit.screens.confirm import ConfirmTaskScreen, Danger
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.sites import SitesScreen
from cockpit.screens.tasks import TasksScreen
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.resource_table import ResourceTable

SIZE = (120, 36)

#: Kinds on sites as plugins register them: a safe one, a dangerous one, one with no key.
SITE_KINDS = (
    site_kind("site.backup", description="Dump the database and the files"),
    site_kind("site.delete", idempotent=False, description="Remove the vhost, files, database"),
    site_kind("site.flush-cache", description="Empty the page cache"),
)


@pytest.fixture
def with_site_kinds(fleet_cockpit: Cockpit) -> Cockpit:
    """The fleet, its engine knowing the built-in kinds and :data:`SITE_KINDS`."""
    registry = Registry(BUILTIN_KINDS)
    for kind in SITE_KINDS:
        registry.add(kind)
    fleet_cockpit.tasks = Engine(fleet_cockpit.db, fleet_cockpit.config, registry=registry)
    return fleet_cockpit


def collect(kind: type[Message], into: list[Any]) -> Any:
    def hook(message: Message) -> None:
        if isinstance(message, kind) and all(m is not message for m in into):
            into.append(message)

    return hook


def messages(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


async def wait_for(pilot: Any, predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot)
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")


async def test_marked_sites_are_queued_as_one_batch(with_site_kinds: Cockpit) -> None:
    cockpit = with_site_kinds
    queued: list[BatchQueued] = []
    app = make_app(cockpit)
    async with app.run_test(size=SIZE, message_hook=collect(BatchQueued, queued)) as pilot:
        await settle(pilot)
        await pilot.press("3", "space", "j", "j", "space")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        await pilot.press("b")  # site.backup has a key of its own
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.task == "site.backup"
        assert confirm.request.count == 2 and confirm.request.danger is Danger.SAFE
        text = screen_text(app)
        assert "site.backup 2 sites?" in text and "Dump the database" in text
        await pilot.press("l")  # the exact targets
        await settle(pilot)
        text = screen_text(app)
        assert site_domain(0) in text and site_domain(16) in text  # alpha-0, alpha-16
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        assert len(queued) == 1
        batch = await cockpit.tasks.batch(queued[0].batch_id)
        assert batch is not None and queued[0].targets == 2 and queued[0].kind == "site.backup"
        tasks = await cockpit.tasks.tasks(batch=batch.id)
        assert sorted(t.target.key for t in tasks) == [site_domain(0), site_domain(16)]
        assert {t.queued_by for t in tasks} == {getpass.getuser()}
        assert {t.state for t in tasks} == {TaskState.QUEUED}
        assert app.screen.batch_id == batch.id  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: "2 tasks: 2 queued" in screen_text(app), "the counts")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert app.screen.table.marks.count == 0  # queued: the marks are spent


async def test_with_no_marks_the_cursor_row_is_the_target(with_site_kinds: Cockpit) -> None:
    cockpit = with_site_kinds
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "j", "t")
        await settle(pilot)
        menu = app.screen
        assert isinstance(menu, TaskMenuScreen)
        # Only the kinds on sites, read from the engine (server.ping acts on servers).
        assert [k.name for k in menu.kinds] == [
            "site.backup",
            "site.delete",
            "site.flush-cache",
        ]
        assert "on 1 site" in screen_text(app)
        await pilot.press("j", "j", "enter")  # site.flush-cache: no key of its own
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        assert app.screen.request.task == "site.flush-cache" and app.screen.request.count == 1
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        (task,) = await cockpit.tasks.tasks(kind="site.flush-cache")
        assert task.target.key == site_domain(8)  # the second row: alpha-000008


async def test_a_dangerous_task_on_everything_filtered_needs_the_count(
    with_site_kinds: Cockpit,
) -> None:
    cockpit = with_site_kinds
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"golf", "enter", "asterisk")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SitesScreen)
        count = screen.table.marks.count
        assert count == sum(1 for n in range(300) if n % 8 == 6)  # every golf site
        await pilot.press("D")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.danger is Danger.DANGEROUS
        assert f"type {count} + enter" in screen_text(app)
        await pilot.press(*str(count - 1), "enter")  # the wrong count is refused
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        assert await cockpit.tasks.tasks(kind="site.delete") == []
        await pilot.press(*["backspace"] * len(str(count - 1)), *str(count), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        tasks = await cockpit.tasks.tasks(kind="site.delete", limit=100)
        assert len(tasks) == count and len({t.batch_id for t in tasks}) == 1
        assert all(t.target.key.startswith("golf-") for t in tasks)


async def test_a_dangerous_task_on_one_target_needs_its_name(with_site_kinds: Cockpit) -> None:
    cockpit = with_site_kinds
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "D")  # the cursor row only
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.expected == site_domain(0)
        assert f"type {site_domain(0)} + enter" in screen_text(app)
        await pilot.press("1", "enter")  # the count is not enough for one target
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        await pilot.press("backspace", *site_domain(0), "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        (task,) = await cockpit.tasks.tasks(kind="site.delete")
        assert task.target.key == site_domain(0)


def test_danger_levels_follow_the_verb_and_idempotence() -> None:
    infos = {k.name: k.info() for k in SITE_KINDS}
    assert danger_of(infos["site.backup"]) is Danger.SAFE
    assert danger_of(infos["site.delete"]) is Danger.DANGEROUS
    assert danger_of(infos["site.flush-cache"]) is Danger.CAUTION
    assert danger_of(site_kind("site.backup-delete").info()) is Danger.DANGEROUS
    assert danger_of(site_kind("site.verify", idempotent=False).info()) is Danger.CAUTION


async def test_a_verb_key_with_no_such_kind_does_nothing(fleet_cockpit: Cockpit) -> None:
    registry = Registry([SERVER_PING])  # no kind acts on sites
    fleet_cockpit.tasks = Engine(fleet_cockpit.db, fleet_cockpit.config, registry=registry)
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "b", "D")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        await pilot.press("t")
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        assert any("no task kind acts on sites" in m for m in messages(app))
        assert await fleet_cockpit.tasks.tasks() == []


async def test_read_only_refuses_every_changing_action(
    tasks_cockpit: tuple[Cockpit, dict[str, int]],
) -> None:
    cockpit, batches = tasks_cockpit
    registry = Registry(BUILTIN_KINDS)
    registry.add(SITE_KINDS[0])
    cockpit.tasks = Engine(cockpit.db, cockpit.config, registry=registry)
    await cockpit.tasks.add_schedule("nightly", "0 3 * * *", "server.ping", ["*"])
    before = await cockpit.tasks.counts()
    app = make_app(cockpit, read_only=True, start_worker=True)
    notes: list[Notify] = []  # (shown notifications expire: collected as they are posted)
    async with app.run_test(size=SIZE, message_hook=collect(Notify, notes)) as pilot:
        await settle(pilot)
        assert not app.autostart_worker  # never a worker from a read-only app
        assert not cockpit.tasks.worker_status().running
        await pilot.press("1", "space", "t")  # servers: mark, then the task menu
        await settle(pilot)
        assert isinstance(app.screen, ServersScreen)
        await pilot.press("3", "b")  # sites: the backup key
        await settle(pilot)
        await pilot.press("6", "c", "j", "c")  # tasks: cancel the queued, the running one
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        await pilot.press("colon", *"tasks failed", "enter")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("colon", *f"batch {batches['backup']}", "enter")
        await settle(pilot)
        await pilot.press("C", "R")
        await settle(pilot)
        assert isinstance(app.screen, BatchScreen)
        await pilot.press("7", "slash", *"nightly", "enter", "p", "d")
        await settle(pilot)
        assert isinstance(app.screen, SchedulesScreen)
        refused = [
            n.notification.message
            for n in notes
            if "is disabled: Cockpit is read-only" in n.notification.message
        ]
        whats = {m.split(" is disabled")[0] for m in refused}
        assert whats == {
            "queueing a task",
            "cancelling a task",
            "retrying a task",
            "cancelling the rest of a batch",
            "retrying failed tasks",
            "pausing or resuming a schedule",
            "removing a schedule",
        }
        assert await cockpit.tasks.counts() == before
        (nightly,) = [s for s in await cockpit.tasks.schedules() if s.name == "nightly"]
        assert not nightly.paused


# -- a real worker -----------------------------------------------------------------------------


@pytest.fixture
def stop_worker(fresh_cockpit: Cockpit) -> Iterator[Cockpit]:
    """A fresh store whose worker (if the app starts one) is stopped after the test."""
    try:
        yield fresh_cockpit
    finally:
        fresh_cockpit.tasks.stop_worker(timeout=30)


async def test_the_app_starts_a_worker_that_runs_a_queued_ping(
    stop_worker: Cockpit, monkeypatch: pytest.MonkeyPatch
) -> None:
    cockpit = stop_worker
    monkeypatch.setattr(CockpitApp, "AUTOSTART_WORKER", True)
    queued: list[BatchQueued] = []
    app = make_app(cockpit)
    async with app.run_test(size=SIZE, message_hook=collect(BatchQueued, queued)) as pilot:
        await wait_for(pilot, lambda: app.worker_running is True, "the worker to start")
        status = cockpit.tasks.worker_status()
        assert status.running and status.pid is not None
        header = app.screen.query_one(CockpitHeader)
        assert header.worker is True
        assert " worker " in screen_text(app).splitlines()[0]
        await pilot.press("1")
        await settle(pilot)
        row = app.screen.query_one(ResourceTable).current_row
        assert row is not None and row.key == "localhost"
        await pilot.press("p")  # server.ping on localhost, the cursor row
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        assert app.screen.request.task == "server.ping"
        await pilot.press("enter")  # safe: enter confirms
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch view")
        await wait_for(pilot, lambda: "1 task: 1 ok" in screen_text(app), "the ping to end")
        (task,) = await cockpit.tasks.tasks(batch=queued[0].batch_id)
        assert task.state is TaskState.SUCCEEDED and task.result.startswith("load ")
        lines = await cockpit.tasks.log(task.id)
        assert any("Linux" in line.text for line in lines)  # uname -a, run by the worker
        assert "100% done" in screen_text(app)
    # The worker outlives the app (stopped by the fixture).
    assert cockpit.tasks.worker_status().running

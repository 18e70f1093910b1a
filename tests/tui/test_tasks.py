"""The task views driven with Pilot over a real store: the tasks list (live), a task's
detail, a batch's progress, the schedules, the audit trail and the overview's findings."""

from __future__ import annotations

import time
from typing import Any

from textual.app import App
from tuikit import TASKS_NOW, screen_text, settle, site_domain

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.engine import TaskState
from cockpit.engine.builtin import SERVER_PING
from cockpit.engine.queue import queue_tasks
from cockpit.messages import Scope
from cockpit.screens.batch import BatchScreen
from cockpit.screens.confirm import ConfirmTaskScreen
from cockpit.screens.help import HelpScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.task import TaskScreen
from cockpit.screens.tasks import AuditScreen, TaskListScreen, TasksScreen
from cockpit.store import tasks as task_queries
from cockpit.widgets.resource_table import ResourceTable

SIZE = (120, 36)
Tasks = tuple[Cockpit, dict[str, int]]


def table_of(app: App[Any]) -> ResourceTable:
    return app.screen.query_one(ResourceTable)


def keys_of(app: App[Any]) -> list[str]:
    table = table_of(app)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


async def command(pilot: Any, line: str) -> None:
    await pilot.press("colon", *line, "enter")
    await settle(pilot)


async def wait_for(pilot: Any, predicate: Any, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle(pilot)
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")


def messages(app: App[Any]) -> list[str]:
    return [n.message for n in app._notifications]


# -- the tasks list --------------------------------------------------------------------------


async def test_six_opens_the_tasks_newest_first_with_counts(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        assert keys_of(app) == [str(n) for n in range(22, 0, -1)]
        await wait_for(pilot, lambda: "22 tasks: 15 ok" in screen_text(app), "the counts")
        text = screen_text(app)
        assert "22 tasks: 15 ok, 2 failed, 1 cancelled, 3 running, 1 queued" in text
        assert "no worker runs: queued tasks wait" in text
        assert "alice" in text and "bob" in text  # who queued each task
        assert "step upload failed: the command exited with 2" in text


async def test_tasks_filter_sort_and_state_scope(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "tasks failed")
        assert keys_of(app) == ["18", "17"]
        await pilot.press("escape")  # back to the servers
        await settle(pilot)
        await pilot.press("6", "slash", *"golf", "enter")
        await settle(pilot)
        assert keys_of(app) == ["17", "9"]  # golf-000014 and golf-000006
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TasksScreen)
        screen.table.sort_by("target")
        await settle(pilot)
        assert keys_of(app)[:2] == ["3", "11"]  # alpha-000000, alpha-000008
        await pilot.press("O")  # reversed
        await settle(pilot)
        assert keys_of(app)[0] == "2"  # web2
        screen.table.sort_by("id", descending=False)  # oldest first, paged from the store
        await settle(pilot)
        assert keys_of(app) == [str(n) for n in range(1, 23)]


async def test_help_lists_the_task_keys_with_their_ids(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6", "question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for binding_id in ("tasks.cancel", "tasks.batch", "tasks.log", "view.filter"):
            assert binding_id in text
        # the cursor is on task 22 (queued): it cannot be retried, so "r" is not offered
        assert "tasks.retry" not in text


async def test_rows_that_change_state_are_refreshed_in_place(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6", "j", "j")  # the cursor on task 20 (running)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TaskListScreen)
        await wait_for(pilot, lambda: screen.counts is not None, "the first look")
        reloads = screen.list_reloads
        # A worker ends task 20 (as a worker does: through the store, fenced by its attempt).
        async with cockpit.db.write() as conn:
            assert await task_queries.finish(conn, 20, "tuikit:1:000000", 1, "failed", "boom")

        def failed_shown() -> bool:
            row = screen.table.row_at(2)
            return row is not None and row.key == "20" and row.cells[1].text == "failed"

        await wait_for(pilot, failed_shown, "task 20 failed in its row")
        assert screen.list_reloads == reloads  # the row was replaced, the list not read again
        assert screen.row_refreshes >= 1
        assert "3 failed" in screen_text(app)

        # New tasks go on top: the list is read again, the cursor stays on task 20.
        async with cockpit.db.write() as conn:
            await queue_tasks(
                conn, SERVER_PING, ["web1"], None, priority=10, label="", queued_by="x"
            )
        await wait_for(pilot, lambda: screen.table.row_count == 23, "the new task")
        assert screen.list_reloads == reloads + 1
        assert keys_of(app)[0] == "23"
        current = screen.table.current_row
        assert current is not None and current.key == "20"


async def test_a_task_leaving_the_state_of_the_list_leaves_the_list(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "tasks queued")
        assert keys_of(app) == ["22"]
        await cockpit.tasks.cancel(22)
        await wait_for(pilot, lambda: table_of(app).row_count == 0, "the list to empty")
        assert "no queued tasks" in screen_text(app)


async def test_cancel_and_retry_from_the_list(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        await pilot.press("c")  # task 22, queued
        await wait_for(pilot, lambda: "task 22 cancelled" in messages(app), "the cancel")
        task = await cockpit.tasks.task(22)
        assert task is not None and task.state is TaskState.CANCELLED
        await pilot.press("j")  # task 21, running: asked to stop
        await settle(pilot)
        await pilot.press("c")
        await wait_for(pilot, lambda: "task 21 asked to stop" in messages(app), "the request")
        task = await cockpit.tasks.task(21)
        assert task is not None and task.cancel_requested
        await command(pilot, "tasks failed")
        await pilot.press("r")  # task 18
        await wait_for(
            pilot, lambda: any("task 18 queued again" in m for m in messages(app)), "retry"
        )
        retried = await cockpit.tasks.tasks(target=site_domain(15), limit=5)
        assert retried[0].retry_of == 18 and retried[0].state is TaskState.QUEUED


# -- a task's detail ---------------------------------------------------------------------------


async def test_enter_opens_a_task_with_its_steps_and_who_queued_it(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    async with cockpit.db.write() as conn:  # task 18's journal, as its worker wrote it
        await task_queries.step_started(conn, 18, 1, 0, "dump", detached=False, run_attempt=1)
        await task_queries.step_ended(conn, 18, 1, 0, "succeeded")
        await task_queries.step_started(conn, 18, 1, 1, "upload", detached=True, run_attempt=1)
        await task_queries.step_ended(conn, 18, 1, 1, "failed", "exit 2: no space left")
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "tasks failed")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, TaskScreen) and screen.task_id == 18
        text = screen_text(app)
        for expected in (
            "Task 18",
            "site.backup",
            "site hotel-000015.example.com",
            "By         alice",
            "Batch      2  site.backup (20 tasks)",
            "Attempts   1 of 3",
            "✓ 1. dump  succeeded",
            "✗ 2. upload  failed",
            "exit 2: no space left",
            "(detached)",
            "step upload failed: the command exited with 2",
        ):
            assert expected in text, expected
        await pilot.press("t")  # its target
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen) and app.screen.domain == site_domain(15)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("r")  # retry: the new task opens
        await wait_for(
            pilot,
            lambda: isinstance(app.screen, TaskScreen) and app.screen.task_id == 23,
            "the retry",
        )
        await wait_for(
            pilot, lambda: "Retry of   task 18" in screen_text(app), "the retry's detail"
        )
        await pilot.press("b")
        await settle(pilot)
        assert isinstance(app.screen, BatchScreen) and app.screen.batch_id == 2


async def test_a_running_task_detail_follows_its_steps(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, "tasks running")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TaskScreen) and app.screen.task_id == 21
        assert "step upload" in screen_text(app)
        async with cockpit.db.write() as conn:
            await task_queries.finish(conn, 21, "tuikit:1:000000", 1, "succeeded", "43 MiB")
        await wait_for(pilot, lambda: "43 MiB" in screen_text(app), "the end of the task")
        assert "State      succeeded" in screen_text(app)


async def test_a_site_detail_shows_its_last_tasks_and_t_lists_them(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, f"s /{site_domain(15)}")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, SiteScreen)
        text = screen_text(app)
        assert "Last tasks (1)" in text
        assert "18 failed      site.backup        05-01 03:00:17 by alice" in text
        await pilot.press("T")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        assert keys_of(app) == ["18"]


# -- a batch's progress ------------------------------------------------------------------------


async def test_batch_progress_counts_cancel_the_rest_and_retry_the_failed(
    tasks_cockpit: Tasks,
) -> None:
    cockpit, batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, f"batch {batches['backup']}")
        screen = app.screen
        assert isinstance(screen, BatchScreen)
        await wait_for(pilot, lambda: "80% done" in screen_text(app), "the counts")
        text = screen_text(app)
        assert "site.backup by alice at 05-01 03:00:00" in text
        assert "20 tasks: 14 ok, 2 failed, 3 running, 1 queued" in text

        await pilot.press("C")  # cancel the rest: 3 running and 1 queued
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmTaskScreen)
        assert confirm.request.count == 4 and confirm.request.danger.value == "caution"
        await pilot.press("l")
        await settle(pilot)
        assert "22 site.backup delta-000019.example.com (queued)" in screen_text(app)
        await pilot.press("y")
        await wait_for(
            pilot,
            lambda: any("1 cancelled, 3 running asked to stop" in m for m in messages(app)),
            "the cancel",
        )
        assert (await cockpit.tasks.task(22)).state is TaskState.CANCELLED  # type: ignore[union-attr]
        for running in (19, 20, 21):
            task = await cockpit.tasks.task(running)
            assert task is not None and task.cancel_requested

        await pilot.press("R")  # retry the 2 failed
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        assert app.screen.request.count == 2
        await pilot.press("y")
        await wait_for(pilot, lambda: "2 retries" in screen_text(app), "the retries")
        assert "22 tasks: 14 ok, 2 failed, 1 cancelled, 3 running, 2 queued" in screen_text(app)
        retries = [t for t in await cockpit.tasks.tasks(batch=batches["backup"]) if t.retry_of]
        assert sorted(t.retry_of for t in retries) == [17, 18]  # type: ignore[type-var]
        assert all(t.queued_by == retries[0].queued_by for t in retries)
        # Retried already: R offers nothing more to retry than what failed since.
        await pilot.press("R")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        await pilot.press("l")
        await settle(pilot)
        assert "no targets" in screen_text(app)
        await pilot.press("n")
        await settle(pilot)


async def test_enter_in_a_batch_opens_the_task_log_and_d_its_detail(tasks_cockpit: Tasks) -> None:
    from cockpit.screens.log import LogScreen

    cockpit, batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await command(pilot, f"batch {batches['ping']}")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, TaskScreen) and app.screen.task_id == 2
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)


# -- schedules, audit ------------------------------------------------------------------------------


async def test_schedules_pause_resume_and_remove_with_confirmation(fleet_cockpit: Cockpit) -> None:
    await fleet_cockpit.tasks.add_schedule("hourly-ping", "0 * * * *", "server.ping", ["*"])
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        assert isinstance(app.screen, SchedulesScreen)
        assert "hourly-ping" in keys_of(app)
        await pilot.press("slash", *"hourly", "enter")
        await settle(pilot)
        assert keys_of(app) == ["hourly-ping"]
        assert "0 * * * *" in screen_text(app) and "active" in screen_text(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: "schedule hourly-ping paused" in messages(app), "pause")
        schedules = {s.name: s for s in await fleet_cockpit.tasks.schedules()}
        assert schedules["hourly-ping"].paused
        await wait_for(pilot, lambda: "paused" in screen_text(app), "the paused row")
        await pilot.press("p")
        await wait_for(pilot, lambda: "schedule hourly-ping resumed" in messages(app), "resume")
        assert not {s.name: s for s in await fleet_cockpit.tasks.schedules()}["hourly-ping"].paused
        await pilot.press("d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmTaskScreen)
        await pilot.press("n")  # kept
        await settle(pilot)
        assert "hourly-ping" in {s.name for s in await fleet_cockpit.tasks.schedules()}
        await pilot.press("d", "y")
        await wait_for(pilot, lambda: "schedule hourly-ping removed" in messages(app), "removal")
        assert "hourly-ping" not in {s.name for s in await fleet_cockpit.tasks.schedules()}
        await wait_for(pilot, lambda: table_of(app).row_count == 0, "the list without it")


async def test_audit_shows_who_queued_what(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await command(pilot, "audit alice")
        assert isinstance(app.screen, AuditScreen)
        assert len(keys_of(app)) == 20
        header = screen_text(app).splitlines()[3]
        assert header.split()[:3] == ["QUEUED▲", "BY", "KIND"] or "BY" in header
        await pilot.press("slash", "ctrl+u", *"bob", "enter")
        await settle(pilot)
        assert keys_of(app) == ["2", "1"]


# -- the overview -------------------------------------------------------------------------------


async def test_the_overview_reports_failed_tasks_and_links_into_them(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    # A failure of the last hour (the fixture's are old: history, not a problem).
    await cockpit.tasks.cancel(22)  # (the queued task would be claimed first)
    async with cockpit.db.write() as conn:
        _batch, (task_id,) = await queue_tasks(
            conn, SERVER_PING, ["db1"], None, priority=10, label="", queued_by="carol"
        )
        (row,) = await task_queries.claim(conn, "tuikit:2:000000", lease=60, per_server=100)
        assert row["id"] == task_id
        await task_queries.finish(conn, task_id, "tuikit:2:000000", 1, "failed", "refused")
    app = make_app(cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        assert isinstance(app.screen, OverviewScreen)
        text = screen_text(app)
        assert "✗" in text and "tasks failed" in text
        assert "1 in the last 24 h; newest: server.ping on db1" in text
        finding = app.screen.findings["tasks:failed"]
        assert finding.count == 3 and finding.severity == "bad"
        index = keys_of(app).index("tasks:failed")
        app.screen.table.move_cursor(index)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TasksScreen)
        assert app.screen.scope == Scope("state", "failed")
        assert keys_of(app) == [str(task_id), "18", "17"]


async def test_old_failures_are_history_not_a_problem(tasks_cockpit: Tasks) -> None:
    cockpit, _batches = tasks_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        finding = app.screen.findings["tasks:failed"]  # type: ignore[attr-defined]
        assert finding.severity == "info" and finding.note == "none in the last 24 h"
        queued = app.screen.findings["tasks:queued"]  # type: ignore[attr-defined]
        assert queued.severity == "bad" and queued.note == "no worker runs: they wait"
        assert "tasks queued" in screen_text(app).splitlines()[1]  # in the verdict
        assert time.time() > TASKS_NOW  # the fixture's tasks are from 2024

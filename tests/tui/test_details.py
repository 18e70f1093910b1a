"""The backup and schedule details: what they show, their keys (a restore or a delete from a
backup, through the form and the confirmation; pausing a schedule), stored text that
would attack the terminal, and how they are reached and left."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType
from textual.notifications import Notify
from tuikit import TAGGED_LOCATION, add_details, add_tasks, build_store, screen_text
from tuikit import settle as settle_keys

from cockpit.app import make_app
from cockpit.config import Config
from cockpit.core import Cockpit
from cockpit.screens.args import ArgsScreen
from cockpit.screens.backup import BackupScreen, made_by_tag, render_backup
from cockpit.screens.backups import BackupsScreen
from cockpit.screens.batch import BatchScreen
from cockpit.screens.confirm import ConfirmTaskScreen, Danger
from cockpit.screens.schedule import ScheduleScreen, cron_meaning, render_schedule
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.task import TaskScreen
from cockpit.widgets.resource_table import ResourceTable

SIZE = (120, 40)
SITE = "alpha-000000.example.com"

Details = tuple[Cockpit, dict[str, int]]


@pytest.fixture
async def details_cockpit(store_path: Path) -> AsyncIterator[Details]:
    """The fleet, its two batches (tuikit.add_tasks) and the backups and schedules of
    tuikit.add_details; the ids: ``tagged``, ``hostile`` (backups), ``batch`` (the backup
    batch the nightly schedule queued)."""
    await build_store(store_path, 300)
    batches = await add_tasks(store_path)
    ids = await add_details(store_path, batches["backup"])
    cockpit = await Cockpit.open(Config(store=store_path))
    try:
        yield cockpit, {**ids, "batch": batches["backup"]}
    finally:
        await cockpit.close()


async def wait_for(pilot: Any, predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await settle_keys(pilot)
        if predicate():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{screen_text(pilot.app)}")


async def command(pilot: Any, line: str) -> None:
    await pilot.press("colon", *line, "enter")
    await settle_keys(pilot)


def loaded(app: Any, kind: type[BackupScreen] | type[ScheduleScreen]) -> bool:
    return isinstance(app.screen, kind) and app.screen.detail is not None


def plain(renderable: RenderableType) -> str:
    """What a renderable writes to a terminal, control characters and all."""
    console = Console(width=120, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def notes_into(into: list[Notify]) -> Any:
    def hook(message: Any) -> None:
        if isinstance(message, Notify):
            into.append(message)

    return hook


# -- the backup -------------------------------------------------------------------------------


async def test_enter_on_a_backup_shows_it_and_opens_its_site_and_the_task_that_made_it(
    details_cockpit: Details,
) -> None:
    cockpit, ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await pilot.press("5")
        await wait_for(pilot, lambda: app.screen.query_one(ResourceTable).row_count == 4, "rows")
        listed = app.screen
        assert isinstance(listed, BackupsScreen)
        await pilot.press("j", "enter")  # newest first: the second is the tagged one
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        screen = app.screen
        assert isinstance(screen, BackupScreen) and screen.backup_id == ids["tagged"]
        text = screen_text(app)
        lines = text.splitlines()
        assert f"backups › backup {ids['tagged']}" in lines[0]  # the breadcrumbs
        for shown in (
            f"Site        {SITE}",
            "Platform    wp-6-5  (wordpress, on web1)",
            "Server      web1",
            "Made        2024-05-01 03:01:00 UTC",
            "Why         backup",
            "Backend     tar",
            "Size        7.0 MiB  (7,340,032 bytes)",
            f"SHA-256     {'c' * 64}",
            TAGGED_LOCATION,
            "Newest      yes: the newest of the site's 2",
            "Task        3  site.backup  succeeded",
            "by alice",
        ):
            assert shown in text, shown
        # t: the task that made it (its tag is in the archive's name); esc: back.
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TaskScreen), "the task")
        assert app.screen.task_id == 3  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle_keys(pilot)
        assert app.screen is screen
        await pilot.press("s")
        await wait_for(pilot, lambda: isinstance(app.screen, SiteScreen), "the site")
        assert app.screen.domain == SITE  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle_keys(pilot)
        await pilot.press("escape")
        await settle_keys(pilot)
        assert app.screen is listed


async def restore_or_delete(details_cockpit: Details, key: str, kind: str) -> None:
    cockpit, ids = details_cockpit
    backup = ids["tagged"]
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await command(pilot, f"backup {backup}")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        await wait_for(pilot, lambda: app.task_kinds is not None, "the task kinds")
        # Cancelled at the confirmation: nothing is queued.
        for answer in ("escape", SITE):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, ArgsScreen), "the form")
            form = app.screen
            assert isinstance(form, ArgsScreen) and form.info.name == kind
            assert form.values == {"backup": backup}  # the backup filled in
            assert sorted(form.names["backup"]) == sorted([str(ids["tagged"]), str(ids["hostile"])])
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmTaskScreen), "confirm")
            confirm = app.screen
            assert isinstance(confirm, ConfirmTaskScreen)
            assert confirm.request.task == kind
            assert confirm.request.args == {"backup": backup}
            assert confirm.request.danger is Danger.DANGEROUS
            assert confirm.request.expected == SITE  # the site's name is typed, not "1"
            assert f"with backup={backup}" in screen_text(app)
            assert await cockpit.tasks.tasks(kind=kind) == []
            if answer == "escape":
                await pilot.press("escape")
                await wait_for(pilot, lambda: isinstance(app.screen, BackupScreen), "back")
                assert await cockpit.tasks.tasks(kind=kind) == []
            else:
                await pilot.press(*answer, "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch")
        (task,) = await cockpit.tasks.tasks(kind=kind)
        assert task.target.key == SITE
        assert dict(task.args) == {"backup": backup}
        assert app.screen.batch_id == task.batch_id  # type: ignore[attr-defined]


async def test_R_restores_the_site_from_the_backup_after_its_name_is_typed(
    details_cockpit: Details,
) -> None:
    await restore_or_delete(details_cockpit, "R", "site.restore")


async def test_D_deletes_the_backup_after_the_sites_name_is_typed(
    details_cockpit: Details,
) -> None:
    await restore_or_delete(details_cockpit, "D", "site.backup-delete")


async def test_a_backup_with_a_hostile_path_is_shown_harmless(details_cockpit: Details) -> None:
    cockpit, ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await command(pilot, f"backup {ids['hostile']}")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        text = screen_text(app)
        screen = app.screen
        assert isinstance(screen, BackupScreen) and screen.detail is not None
        body = plain(render_backup(screen.backup_id, screen.detail))
        for raw in ("\x1b", "\x07", "pwned"):
            assert raw not in body, repr(raw)
        # … shown as plain text: the markup as typed, the bell made visible.
        assert "/var/backups/[red]boom[/red]\\x07/old.tar" in text
        assert "Why         safety" in text
        assert f"Newest      no: backup {ids['tagged']} of 2024-05-01 03:01 is newer" in text
        assert "no task on record names this backup" in text
        # No task made it: t is not offered.
        assert "Task" not in screen_text(app).splitlines()[-1]


async def test_backup_commands_and_a_backup_not_in_the_store(details_cockpit: Details) -> None:
    cockpit, _ids = details_cockpit
    notes: list[Notify] = []
    app = make_app(cockpit)
    async with app.run_test(size=SIZE, message_hook=notes_into(notes)) as pilot:
        await settle_keys(pilot)
        await command(pilot, "backup 999")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        assert "No backup 999 in the store" in screen_text(app)
        footer = screen_text(app).splitlines()[-1]
        assert "Restore" not in footer and "Site" not in footer
        await command(pilot, "backup nine")
        await wait_for(pilot, lambda: bool(notes), "the error")
        assert ":backup takes a backup id" in str(notes[-1].notification.message)
        await command(pilot, "backup")  # bare: the list
        await wait_for(pilot, lambda: isinstance(app.screen, BackupsScreen), "the list")


async def test_read_only_shows_a_backup_but_does_not_restore_it(details_cockpit: Details) -> None:
    cockpit, ids = details_cockpit
    app = make_app(cockpit, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await command(pilot, f"backup {ids['tagged']}")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        await pilot.press("R")
        await settle_keys(pilot)
        await pilot.pause(0.2)
        assert isinstance(app.screen, BackupScreen)
        assert await cockpit.tasks.tasks(kind="site.restore") == []


def test_the_task_that_made_a_tar_backup_is_in_its_name() -> None:
    assert made_by_tag(TAGGED_LOCATION) == 3
    assert made_by_tag("/b/x.example.com-20240501t030000z-t42-safety.tar") == 42
    assert made_by_tag("/b/x.example.com/2024-05-01.tar.gz") is None
    assert made_by_tag("/srv/restic/snapshots/0a1b2c3d") is None


# -- the schedule -----------------------------------------------------------------------------


async def test_enter_on_a_schedule_shows_it_its_last_runs_and_pauses_it(
    details_cockpit: Details,
) -> None:
    cockpit, ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await pilot.press("7", "slash", *"nightly", "enter")
        await wait_for(pilot, lambda: app.screen.query_one(ResourceTable).row_count == 1, "1 row")
        listed = app.screen
        assert isinstance(listed, SchedulesScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: loaded(app, ScheduleScreen), "the schedule")
        screen = app.screen
        assert isinstance(screen, ScheduleScreen)
        text = screen_text(app)
        assert "schedules › schedule nightly" in text.splitlines()[0]
        for shown in (
            "Cron        0 3 * * *  (every day at 03:00, local time)",
            "Kind        site.backup",
            "Targets (2) client=acme",
            "bravo-000001.example.com",
            "Args        compression=zstd",
            "note=[red]boom[/red]\\x07",  # the escapes gone, the bell visible, no markup
            "State       active",
            "Next run    05-02 03:00:00",
            "Last run    05-01 03:00:00",
            "By          alice",
            "Last runs (1)",
        ):
            assert shown in text, shown
        assert screen.detail is not None
        body = plain(render_schedule(screen.schedule_name, screen.detail))
        assert "\x1b" not in body and "pwned" not in body
        # Its last run: the backup batch, 20 tasks (14 ok, 2 failed, 3 running, 1 queued).
        runs = screen.query_one("#runs", ResourceTable)
        await wait_for(pilot, lambda: runs.row_count == 1, "the runs")
        row = runs.row_at(0)
        assert row is not None and row.key == str(ids["batch"])
        assert [c.text for c in row.cells[2:6]] == ["20", "14", "2", "4"]
        # tab: the runs; enter opens the batch; esc back.
        await pilot.press("tab")
        await settle_keys(pilot)
        assert app.focused is runs
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, BatchScreen), "the batch")
        assert app.screen.batch_id == ids["batch"]  # type: ignore[attr-defined]
        await pilot.press("escape")
        await settle_keys(pilot)
        assert app.screen is screen
        # p: paused in the store (as `cockpit schedule pause` does), then resumed.
        await pilot.press("p")
        await wait_for(pilot, lambda: "State       paused" in screen_text(app), "paused")
        (nightly,) = [s for s in await cockpit.tasks.schedules() if s.name == "nightly"]
        assert nightly.paused
        assert "Next run    - (paused)" in screen_text(app)
        # Back on the list, it says so.
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is listed, "the list")
        await wait_for(
            pilot, lambda: "paused" in [c.text for c in listed.table.row_at(0).cells], "paused row"
        )
        await pilot.press("enter")
        await wait_for(pilot, lambda: loaded(app, ScheduleScreen), "the schedule again")
        await pilot.press("p")
        await wait_for(pilot, lambda: "State       active" in screen_text(app), "resumed")
        (nightly,) = [s for s in await cockpit.tasks.schedules() if s.name == "nightly"]
        assert not nightly.paused and nightly.next_run is not None


async def test_a_paused_schedule_that_never_ran_and_one_not_in_the_store(
    details_cockpit: Details,
) -> None:
    cockpit, _ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await command(pilot, "schedule hourly")
        await wait_for(pilot, lambda: loaded(app, ScheduleScreen), "the schedule")
        text = screen_text(app)
        assert "Cron        15 * * * *  (every hour at minute 15, local time)" in text
        assert "State       paused" in text and "Next run    - (paused)" in text
        assert "it has not run yet" in text and "no batch queued by this schedule" in text
        footer = text.splitlines()[-1]
        assert "Last batch" not in footer and "Pause/resume" in footer
        assert app.screen.query_one("#detail").has_class("-paused")
        await command(pilot, "schedule nosuch")
        await wait_for(pilot, lambda: loaded(app, ScheduleScreen), "the schedule")
        assert "No schedule nosuch in the store" in screen_text(app)
        assert "Pause/resume" not in screen_text(app).splitlines()[-1]
        await command(pilot, "schedule")  # bare: the list
        await wait_for(pilot, lambda: isinstance(app.screen, SchedulesScreen), "the list")


@pytest.mark.parametrize(
    ("cron", "meaning"),
    [
        ("0 3 * * *", "every day at 03:00"),
        ("15 * * * *", "every hour at minute 15"),
        ("*/10 * * * *", "every 10 minutes"),
        ("30 2 * * 0", "every Sunday at 02:30"),
        ("30 2 * * 7", "every Sunday at 02:30"),
        ("0 4 1 * *", "on day 1 of every month at 04:00"),
        ("0 4 1 1 *", None),
        ("0 4 * * 1-5", None),
        ("0 25 * * *", None),
        ("nonsense", None),
    ],
)
def test_common_cron_lines_read_plainly(cron: str, meaning: str | None) -> None:
    assert cron_meaning(cron) == meaning


async def test_keys_typed_in_one_go_act_on_the_backup_detail_they_open(
    details_cockpit: Details,
) -> None:
    """``5 j enter s``: the backup's detail opens (found by a worker) before ``s`` acts."""
    cockpit, ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await pilot.press("5", "j", "enter", "s")
        await wait_for(pilot, lambda: isinstance(app.screen, SiteScreen), "the site")
        stack = [type(s).__name__ for s in app.screen_stack]
        assert stack[-3:] == ["BackupsScreen", "BackupScreen", "SiteScreen"]
        assert app.screen_stack[-2].backup_id == ids["tagged"]  # type: ignore[attr-defined]
        assert app.screen.domain == SITE  # type: ignore[attr-defined]


async def test_the_task_that_made_a_backup_is_found_by_its_summary(
    details_cockpit: Details,
) -> None:
    """Backup 1's name carries no task tag: the site.backup task whose summary names it."""
    cockpit, _ids = details_cockpit
    app = make_app(cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle_keys(pilot)
        await command(pilot, "backup 1")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "the backup")
        text = screen_text(app)
        assert "Task        4  site.backup  succeeded" in text
        assert "Newest      no: backup 2 of 2024-05-02 03:00 is newer" in text
        # Backup 2 (restic) is named by no task.
        await command(pilot, "backup 2")
        await wait_for(pilot, lambda: loaded(app, BackupScreen), "backup 2")
        assert app.screen.backup_id == 2  # type: ignore[attr-defined]
        assert "no task on record names this backup" in screen_text(app)

"""The confirmation before a batch is queued, on its own (it is wired to tasks with the engine)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from textual.app import App
from textual.widgets import Input
from tuikit import screen_text, settle

from cockpit.screens.confirm import ConfirmTaskScreen, Danger, TaskConfirmation
from cockpit.widgets.resource_table import ResourceTable


class Host(App[None]):
    """An app that opens one confirmation and records its answer."""

    def __init__(self, request: TaskConfirmation) -> None:
        super().__init__()
        self.request = request
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(ConfirmTaskScreen(self.request), self.answers.append)


def sites(n: int) -> list[str]:
    return [f"site{i:05d}.example.com" for i in range(n)]


@pytest.mark.parametrize("key", ["y", "enter"])
async def test_a_safe_task_is_confirmed_with_y_or_enter(key: str) -> None:
    app = Host(TaskConfirmation("backup", 300, description="Dump each database and its files"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "backup 300 sites?" in text
        assert "safe: reads or copies" in text
        assert "Dump each database" in text
        await pilot.press(key)
        await settle(pilot)
        assert app.answers == [True]


async def test_n_and_esc_cancel() -> None:
    for key in ("n", "escape"):
        app = Host(TaskConfirmation("verify", 1, noun="servers"))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            assert "verify 1 server?" in screen_text(app)
            await pilot.press(key)
            await settle(pilot)
            assert app.answers == [False]


async def test_a_caution_task_needs_y_not_enter() -> None:
    app = Host(TaskConfirmation("disable", 12, danger=Danger.CAUTION))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "caution: changes the targets" in screen_text(app)
        await pilot.press("enter")
        await settle(pilot)
        assert app.answers == []
        await pilot.press("y")
        await settle(pilot)
        assert app.answers == [True]


async def test_a_dangerous_task_needs_the_count_typed() -> None:
    app = Host(TaskConfirmation("delete", 287, danger=Danger.DANGEROUS))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ConfirmTaskScreen)
        assert isinstance(screen.focused, Input)
        text = screen_text(app)
        assert "DANGEROUS" in text and "type 287 + enter" in text
        await pilot.press("y", "enter")  # y is text here, and "y" is not the count
        await settle(pilot)
        assert app.answers == []
        assert "type 287 exactly to queue (not 'y')" in screen_text(app)
        await pilot.press("backspace", *"28", "enter")
        await settle(pilot)
        assert app.answers == []
        await pilot.press("7", "enter")
        await settle(pilot)
        assert app.answers == [True]


async def test_a_dangerous_task_may_ask_for_a_word_and_esc_still_cancels() -> None:
    app = Host(TaskConfirmation("restore", 1, danger=Danger.DANGEROUS, word="restore"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"1", "enter")
        await settle(pilot)
        assert app.answers == []
        await pilot.press("escape")
        await settle(pilot)
        assert app.answers == [False]


async def test_the_targets_are_read_only_when_listed() -> None:
    calls = 0

    async def targets() -> Sequence[str]:
        nonlocal calls
        calls += 1
        return sites(300)

    app = Host(TaskConfirmation("backup", 300, targets=targets))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert calls == 0
        assert "site00000" not in screen_text(app)
        await pilot.press("l")
        await settle(pilot)
        assert calls == 1
        table = app.screen.query_one(ResourceTable)
        assert table.row_count == 300
        assert "site00000.example.com" in screen_text(app)
        await pilot.press("G")  # the list scrolls with vim keys
        await settle(pilot)
        assert "site00299.example.com" in screen_text(app)
        await pilot.press("l")  # hides it again
        await settle(pilot)
        assert "site00299.example.com" not in screen_text(app)
        await pilot.press("l", "y")
        await settle(pilot)
        assert calls == 1
        assert app.answers == [True]


async def test_a_dangerous_task_lists_its_targets_with_ctrl_t() -> None:
    app = Host(
        TaskConfirmation("delete", 2, danger=Danger.DANGEROUS, targets=["a.example", "b.example"])
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+t")
        await settle(pilot)
        assert "b.example" in screen_text(app)
        assert isinstance(app.screen.focused, Input)  # still typing the count
        await pilot.press("2", "enter")
        await settle(pilot)
        assert app.answers == [True]

"""The one confirmation before a batch of tasks is queued.

:class:`ConfirmTaskScreen` shows the task, how many targets, its danger level and, on a
toggle (``l`` or ctrl+t), the exact targets (read only when asked for: they may be
100,000 sites). It dismisses with ``True`` (queue it) or ``False``.

- *safe* tasks (verify, backup): ``y`` or ``enter``;
- *caution* (changes that are easily undone: enable, disable, install): ``y`` only;
- *dangerous* (delete, restore, migrate): type the number of targets (or the word the
  caller asks for) and ``enter``. Anything else is refused, with a note saying what to type.

``n`` or ``esc`` cancels, always. The task's arguments, when it has any, are shown
(sanitised); when the kind takes some and the task is not dangerous, ``a`` closes the
dialog asking for them (:attr:`ConfirmTaskScreen.wants_args`; the caller opens the form).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from cockpit.screens.args import shown_args
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, ListSource, ResourceTable, Row, cell

__all__ = ["ConfirmTaskScreen", "Danger", "TaskConfirmation"]


class Danger(enum.StrEnum):
    SAFE = "safe"
    CAUTION = "caution"
    DANGEROUS = "dangerous"


_DANGER_NOTE = {
    Danger.SAFE: "safe: reads or copies, changes nothing on the targets",
    Danger.CAUTION: "caution: changes the targets (can be undone)",
    Danger.DANGEROUS: "DANGEROUS: destroys or replaces data on the targets",
}

Targets = Sequence[str] | Callable[[], Awaitable[Sequence[str]]]


@dataclass(frozen=True, slots=True)
class TaskConfirmation:
    """What is about to be queued."""

    task: str  # the task kind: "backup"
    count: int  # how many targets
    noun: str = "sites"  # what the targets are (plural)
    danger: Danger = Danger.SAFE
    description: str = ""
    #: What to type for a dangerous task (default: the count, as digits).
    word: str | None = None
    #: The exact targets, or a coroutine function reading them (called on the toggle).
    targets: Targets = ()
    #: The task's arguments (shown; queued with it).
    args: Mapping[str, Any] = field(default_factory=dict)
    #: Whether the kind takes arguments ``a`` may ask for.
    has_params: bool = False

    @property
    def expected(self) -> str:
        return self.word if self.word is not None else str(self.count)

    @property
    def title(self) -> str:
        noun = self.noun if self.count != 1 else self.noun.removesuffix("s")
        return f"{self.task} {self.count:,} {noun}"


_TARGET_COLUMNS = (Column("target", "Target", width=20, flex=1),)


class ConfirmTaskScreen(ModalScreen[bool]):
    """Confirm (or not) one batch of tasks."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel"),
        Binding("n", "cancel", "Cancel", show=False, id="confirm.no"),
        Binding("y", "confirm", "Confirm", id="confirm.yes"),
        Binding("enter", "confirm_enter", "Confirm", show=False, id="confirm.enter"),
        Binding("l,ctrl+t", "toggle_targets", "List targets", id="confirm.targets"),
        Binding("a", "edit_args", "Arguments", id="confirm.args"),
    ]

    DEFAULT_CSS = """
    ConfirmTaskScreen {
        align: center middle;
        & > Vertical {
            width: 72;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: round $primary;
            border-title-color: $text-primary;
            border-subtitle-color: $text-muted;
            background: $surface;
            padding: 0 1;
        }
        &.-caution > Vertical { border: round $warning; }
        &.-dangerous > Vertical { border: heavy $error; border-title-color: $text-error; }
        & #confirm-title { text-style: bold; }
        & #confirm-danger { color: $text-success; }
        &.-caution #confirm-danger { color: $text-warning; text-style: bold; }
        &.-dangerous #confirm-danger { color: $text-error; text-style: bold reverse; }
        & #confirm-description { color: $text-muted; }
        & #confirm-args { color: $text-accent; }
        & #confirm-targets-box { height: auto; }
        & #confirm-targets { height: 12; display: none; border: none; padding: 0; }
        & #confirm-targets.-shown { display: block; }
        & #confirm-word { margin-top: 1; }
        & #confirm-note { color: $text-error; text-style: bold; display: none; }
        & #confirm-note.-shown { display: block; }
        & #confirm-keys { color: $text-muted; margin-top: 1; }
    }
    """

    class Refused(Message):
        """A dangerous task's word was typed wrong (the dialog stays open)."""

        def __init__(self, typed: str) -> None:
            self.typed = typed
            super().__init__()

    def __init__(self, request: TaskConfirmation) -> None:
        super().__init__(classes=f"-{request.danger.value}")
        self.request = request
        self.targets_shown = False
        self._targets_loaded = False
        #: Dismissed (with ``False``) to have the arguments asked for.
        self.wants_args = False

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical() as box:
            box.border_title = " confirm "
            box.border_subtitle = f" {request.danger.value} "
            yield Label(Text(sanitize(request.title) + "?"), id="confirm-title")
            yield Label(Text(_DANGER_NOTE[request.danger]), id="confirm-danger")
            if request.description:
                yield Static(Text(sanitize(request.description)), id="confirm-description")
            if request.args:
                yield Static(Text("with " + shown_args(request.args)), id="confirm-args")
            # The list of targets is mounted (and read) on the first toggle only.
            yield Vertical(id="confirm-targets-box")
            if request.danger is Danger.DANGEROUS:
                yield Input(
                    placeholder=f"type {request.expected} to confirm",
                    id="confirm-word",
                )
                yield Label("", id="confirm-note", markup=False)
            yield Label(Text(self._keys_text()), id="confirm-keys")

    def _keys_text(self) -> str:
        danger = self.request.danger
        confirm = {
            Danger.SAFE: "y/enter queue",
            Danger.CAUTION: "y queue",
            Danger.DANGEROUS: f"type {self.request.expected} + enter to queue",
        }[danger]
        shown = "hide" if self.targets_shown else "list"
        if danger is Danger.DANGEROUS:
            return f"{confirm} · esc cancel · ctrl+t {shown} targets"
        args = " · a arguments" if self.request.has_params else ""
        return f"{confirm} · n/esc cancel · l/ctrl+t {shown} targets{args}"

    def on_mount(self) -> None:
        if self.request.danger is Danger.DANGEROUS:
            self.query_one("#confirm-word", Input).focus()

    async def _target_rows(self) -> list[Row]:
        targets = self.request.targets
        keys = await targets() if callable(targets) else targets
        self._targets_loaded = True
        return [Row(key, (cell(key),)) for key in keys]

    # -- keys ------------------------------------------------------------------------------

    def _typing(self) -> bool:
        return isinstance(self.focused, Input)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit_args":
            return self.request.has_params and self.request.danger is not Danger.DANGEROUS
        if action in ("confirm", "confirm_enter") and self.request.danger is Danger.DANGEROUS:
            return False  # only the typed word confirms
        return not (action == "confirm_enter" and self.request.danger is not Danger.SAFE)

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_confirm_enter(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_edit_args(self) -> None:
        self.wants_args = True
        self.dismiss(False)

    def action_toggle_targets(self) -> None:
        self.targets_shown = not self.targets_shown
        tables = self.query("#confirm-targets").results(ResourceTable)
        table = next(tables, None)
        if table is None:
            table = ResourceTable(
                _TARGET_COLUMNS,
                ListSource(self._target_rows, _TARGET_COLUMNS),
                noun="targets",
                empty_text="no targets",
                id="confirm-targets",
            )
            self.query_one("#confirm-targets-box").mount(table)
        table.set_class(self.targets_shown, "-shown")
        if self.targets_shown and self.request.danger is not Danger.DANGEROUS:
            table.focus()
        self.query_one("#confirm-keys", Label).update(Text(self._keys_text()))

    @on(Input.Submitted, "#confirm-word")
    def _word_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        if typed == self.request.expected:
            self.dismiss(True)
            return
        note = self.query_one("#confirm-note", Label)
        note.update(f"type {self.request.expected} exactly to queue (not {typed!r})")
        note.add_class("-shown")
        self.post_message(self.Refused(typed))

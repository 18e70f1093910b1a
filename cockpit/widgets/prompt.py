"""A one-line prompt that lives in a view, hidden until opened: the ``:`` command line
and the ``/`` filter are both one of these.

It opens *synchronously* (:meth:`PromptBar.open` moves the focus at once): keys typed
right after ``:`` or ``/`` (a fast typist, a paste, ``tmux send-keys``) land in it,
not in the list underneath. The keys that open it should be priority bindings so they
run before the next key is dispatched. :attr:`PromptBar.pending` counts the submissions
and cancellations posted that the view has not handled yet, so keys typed after
``enter`` or ``esc`` can wait for the view to take the focus back.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Input, Label

__all__ = ["PromptBar"]


class PromptBar(Horizontal):
    """A prompt character and an input; ``enter`` submits, ``esc`` cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="prompt.cancel"),
        Binding("tab", "complete", "Complete", show=False, id="prompt.complete"),
    ]

    DEFAULT_CSS = """
    PromptBar {
        height: 1;
        background: $panel;
        display: none;
        &.-active { display: block; }
        & > .prompt--char { width: 2; padding: 0 0 0 1; color: $text-accent; text-style: bold; }
        & > .prompt--note {
            width: auto;
            max-width: 60%;
            padding: 0 1;
            color: $text-muted;
            display: none;
        }
        &.-note > .prompt--note { display: block; }
        &.-error > .prompt--note { display: block; color: $text-error; text-style: bold; }
        &.-error > .prompt--char { color: $text-error; }
        & > Input {
            height: 1;
            width: 1fr;
            border: none;
            padding: 0 1 0 0;
            background: $panel;
            &:focus { border: none; background: $panel; }
        }
    }
    """

    class Submitted(Message):
        def __init__(self, bar: PromptBar, value: str) -> None:
            self.bar = bar
            self.value = value
            super().__init__()

        @property
        def control(self) -> PromptBar:
            return self.bar

    class Cancelled(Message):
        def __init__(self, bar: PromptBar) -> None:
            self.bar = bar
            super().__init__()

        @property
        def control(self) -> PromptBar:
            return self.bar

    def __init__(
        self,
        prompt: str,
        *,
        value: str = "",
        placeholder: str = "",
        suggester: Suggester | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self._prompt = prompt
        self._value = value
        self._placeholder = placeholder
        self._suggester = suggester
        self._error: str | None = None
        self._note: tuple[str, bool] = ("", False)
        #: How many submissions and cancellations were posted, and the view above handled.
        self.posted = 0
        self.handled = 0

    def compose(self) -> ComposeResult:
        yield Label(self._prompt, classes="prompt--char")
        yield Input(
            value=self._value,
            placeholder=self._placeholder,
            suggester=self._suggester,
            select_on_focus=False,  # keys typed right after "/" append, in order
        )
        yield Label("", classes="prompt--note", markup=False)

    @property
    def error(self) -> str | None:
        """What is wrong with the text typed (shown at the right of the bar), if anything."""
        return self._error

    def set_note(self, note: str | None, *, error: bool = False) -> None:
        """Show ``note`` at the right of the bar (in the error colour with ``error``)."""
        shown = (note or "", error)
        if shown == self._note:
            return  # unchanged: no relayout on every keystroke
        self._note = shown
        self._error = note if error else None
        self.query_one(".prompt--note", Label).update(note or "")
        self.set_class(bool(note) and not error, "-note")
        self.set_class(bool(note) and error, "-error")

    @property
    def input(self) -> Input:
        return self.query_one(Input)

    @property
    def value(self) -> str:
        return self.input.value

    @property
    def pending(self) -> int:
        """Submissions and cancellations posted that the view has not handled yet."""
        return self.posted - self.handled

    @property
    def is_open(self) -> bool:
        return self.has_class("-active")

    def open(self) -> None:
        """Show the prompt and focus it now (not after a refresh)."""
        self.add_class("-active")
        field = self.input
        self.screen.set_focus(field)
        field.cursor_position = len(field.value)

    def close(self, *, keep_visible: bool = False) -> None:
        self.set_class(keep_visible, "-active")

    def action_cancel(self) -> None:
        self._post_and_follow(self.Cancelled(self))

    def action_complete(self) -> None:
        field = self.input
        field.cursor_position = len(field.value)
        field.action_cursor_right()  # at the end of the line this takes the suggestion

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._post_and_follow(self.Submitted(self, event.value))

    def _post_and_follow(self, message: Message) -> None:
        """Post ``message`` and count it in :attr:`handled` once the screen has handled it
        (a callback queued behind it at each node it bubbles through)."""
        self.posted += 1
        self.post_message(message)
        self.call_later(self._behind, self.parent)

    def _behind(self, node: DOMNode | None) -> None:
        if node is None:
            self.handled += 1
        elif isinstance(node, Screen):
            node.call_later(self._count)
        else:
            node.call_later(self._behind, node.parent)

    def _count(self) -> None:
        self.handled += 1

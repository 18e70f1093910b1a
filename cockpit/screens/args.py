"""The arguments of a task, asked for before it is confirmed.

:class:`ArgsScreen` has one field per parameter the kind declares (:class:`Param`), in
its order: required ones are marked ``*``; a choice or a yes/no is a :class:`Cycle`
(``space``, ``←``/``→``); platform, server and backup fields suggest the names in the
store (``→`` takes the suggestion). ``enter`` moves to the next required field still
empty and, when there is none, submits: type a migration's platform, ``enter``, done.
``tab``/``shift+tab`` move through every field (the optional ones too); ``ctrl+s``
submits from anywhere; ``esc`` cancels.

On submit the values are checked by the kind's own check (the one queueing runs, passed
in as ``validate``): an error is shown under the field it names, and the form stays.
A platform or server name must also be one the store knows. The screen dismisses with
the checked args, or ``None`` when cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Input, Label, Static

from cockpit.engine.model import KindInfo, Param
from cockpit.model import ValidationError
from cockpit.textsafe import sanitize

__all__ = ["ArgsScreen", "Cycle", "shown_args"]

#: What an unset optional choice shows.
DEFAULT = "(default)"

Validate = Callable[[Mapping[str, Any]], dict[str, Any]]


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def shown_args(args: Mapping[str, Any]) -> str:
    """``platform=wp-6-5 skip_probe=true``: args as one line (sanitised)."""
    return sanitize(" ".join(f"{key}={_text(value)}" for key, value in args.items()))


class Cycle(Widget, can_focus=True):
    """A value among a few: ``space``/``→`` the next, ``←`` the previous."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space,right,l", "step(1)", "Next value", show=False, id="cycle.next"),
        Binding("left,h", "step(-1)", "Previous value", show=False, id="cycle.previous"),
    ]

    DEFAULT_CSS = """
    Cycle {
        height: 1;
        width: auto;
        min-width: 12;
        padding: 0 1 0 0;
        background: $boost;
        &:focus { background: $accent 30%; text-style: bold; }
    }
    """

    index: reactive[int] = reactive(0)

    def __init__(self, values: Sequence[str], value: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values = tuple(values)
        self.set_reactive(Cycle.index, self.values.index(value) if value in self.values else 0)

    @property
    def value(self) -> str:
        return self.values[self.index]

    def render(self) -> Text:
        shown = self.value or DEFAULT
        return Text(f"‹ {sanitize(shown)} ›")

    def action_step(self, by: int) -> None:
        self.index = (self.index + by) % len(self.values)


class ArgsScreen(ModalScreen[dict[str, Any] | None]):
    """Ask for a task's args; dismiss with them checked, or ``None``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="args.cancel"),
        Binding("enter", "next_field", "Next", show=False, id="args.next"),
        Binding("ctrl+s", "submit", "Done", id="args.submit"),
    ]

    DEFAULT_CSS = """
    ArgsScreen {
        align: center middle;
        & > Vertical {
            width: 80;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: round $primary;
            border-title-color: $text-primary;
            background: $surface;
            padding: 0 1;
        }
        & #args-title { text-style: bold; }
        & #args-fields { height: auto; max-height: 70vh; margin-top: 1; }
        & .arg-row { height: 1; }
        & .arg-name { width: 16; }
        & .arg-name.-required { text-style: bold; }
        & .arg-help { color: $text-muted; padding-left: 16; }
        & Input { width: 1fr; }
        & .arg-error { color: $text-error; text-style: bold; display: none; width: 100%; }
        & .arg-error.-shown { display: block; }
        & #args-error { color: $text-error; text-style: bold; display: none; width: 100%; }
        & #args-error.-shown { display: block; }
        & #args-keys { color: $text-muted; margin-top: 1; }
    }
    """

    def __init__(
        self,
        info: KindInfo,
        count: int,
        noun: str,
        validate: Validate,
        *,
        names: Mapping[str, Sequence[str]] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.info = info
        self.count = count
        self.noun = noun
        self.validate = validate
        #: Names the store knows, by param kind (``platform``, ``server``, ``backup``).
        self.names = dict(names or {})
        self.values = dict(values or {})
        #: The errors shown, by field name (``""``: one about no field in particular).
        self.shown_errors: dict[str, str] = {}

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        noun = self.noun if self.count != 1 else self.noun.removesuffix("s")
        with Vertical() as box:
            box.border_title = " arguments "
            title = f"{self.info.name} on {self.count:,} {noun}"
            yield Label(Text(sanitize(title)), id="args-title")
            with VerticalScroll(id="args-fields"):
                for param in self.info.params:
                    yield from self._field(param)
            yield Label("", id="args-error", markup=False)
            yield Static(Text(self._keys_text()), id="args-keys")

    def _field(self, param: Param) -> ComposeResult:
        mark = " *" if param.required else ""
        name = Label(Text(sanitize(param.name + mark)), classes="arg-name")
        name.set_class(param.required, "-required")
        current = self.values.get(param.name)
        field: Widget
        if param.kind == "bool" or param.choices:
            choices = ("true", "false") if param.kind == "bool" else param.choices
            values = choices if param.required else ("", *choices)
            text = "" if current is None else _text(current)
            field = Cycle(values, text, id=f"arg-{param.name}")
        else:
            known = self.names.get(param.kind)
            field = Input(
                value="" if current is None else str(current),
                placeholder=self._placeholder(param),
                suggester=SuggestFromList(known, case_sensitive=False) if known else None,
                compact=True,
                id=f"arg-{param.name}",
            )
        yield Horizontal(name, field, classes="arg-row")
        yield Static(Text(sanitize(param.help)), classes="arg-help")
        yield Label("", id=f"err-{param.name}", classes="arg-error", markup=False)

    def _placeholder(self, param: Param) -> str:
        need = "required" if param.required else "optional"
        known = self.names.get(param.kind)
        if known:
            listed = ", ".join(known[:4]) + (", …" if len(known) > 4 else "")
            return sanitize(f"{need}: {param.kind} ({listed})")
        return need if param.kind == "text" else f"{need}: {param.kind}"

    def _keys_text(self) -> str:
        return (
            "* required · enter done · tab next field · space/←/→ change a choice · "
            "→ take the suggestion · esc cancel"
        )

    def on_mount(self) -> None:
        fields = self._fields()
        if fields:
            fields[0].focus()

    # -- fields ----------------------------------------------------------------------------

    def _fields(self) -> list[Widget]:
        return [self.query_one(f"#arg-{p.name}") for p in self.info.params]

    def _read(self) -> dict[str, Any]:
        """The typed values (blank ones left out), converted by each param's kind."""
        out: dict[str, Any] = {}
        for param in self.info.params:
            widget = self.query_one(f"#arg-{param.name}")
            text = widget.value if isinstance(widget, Cycle | Input) else ""
            if text.strip():
                out[param.name] = param.parse(text)
        return out

    def _param_of(self, field: str) -> Param | None:
        for param in self.info.params:
            if field in (param.name, param.error_field) or field.startswith(
                (f"{param.error_field}.", f"{param.error_field}[")
            ):
                return param
        return None

    def _clear_errors(self) -> None:
        for label in self.query(".arg-error").results(Label):
            label.update("")
            label.remove_class("-shown")
        general = self.query_one("#args-error", Label)
        general.update("")
        general.remove_class("-shown")
        self.shown_errors = {}

    def show_error(self, exc: ValidationError) -> None:
        """The error under the field it names (that field focused), else under the form."""
        param = self._param_of(exc.field)
        if param is None:
            label = self.query_one("#args-error", Label)
        else:
            label = self.query_one(f"#err-{param.name}", Label)
            self.query_one(f"#arg-{param.name}").focus()
        message = sanitize(str(exc))
        label.update(message)
        label.add_class("-shown")
        self.shown_errors[param.name if param is not None else ""] = message

    def _check_known(self, args: Mapping[str, Any]) -> None:
        for param in self.info.params:
            known = self.names.get(param.kind)
            if known is None or param.kind not in ("platform", "server"):
                continue
            value = args.get(param.name)
            if value is not None and value not in known:
                listed = ", ".join(known[:6]) + (", …" if len(known) > 6 else "")
                raise ValidationError(
                    param.error_field, f"no such {param.kind} (known: {listed or 'none'})", value
                )

    # -- keys ------------------------------------------------------------------------------

    def action_next_field(self) -> None:
        """To the next required field still empty; when there is none, submit."""
        focused = self.focused
        for param in self.info.params:
            widget = self.query_one(f"#arg-{param.name}")
            empty = isinstance(widget, Input) and not widget.value.strip()
            if param.required and empty and widget is not focused:
                widget.focus()
                return
        self.action_submit()

    @on(Input.Submitted)
    def _entered(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_next_field()

    def action_submit(self) -> None:
        self._clear_errors()
        try:
            args = self._read()
            clean = self.validate(args)
            self._check_known(clean)
        except ValidationError as exc:
            self.show_error(exc)
            return
        self.dismiss(clean)

    def action_cancel(self) -> None:
        self.dismiss(None)

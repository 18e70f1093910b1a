"""``?``: the keys of the current view, generated from its active bindings (so a
keymap override shows up here as it is), with each binding's id for the config."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import ActiveBinding, Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from cockpit.widgets.scrolling import scroll, scroll_bindings

__all__ = ["HelpScreen", "KeyHelp", "describe_bindings"]


@dataclass(frozen=True, slots=True)
class KeyHelp:
    group: str
    keys: tuple[str, ...]
    description: str
    binding_id: str | None


def _group(namespace: DOMNode) -> str:
    if isinstance(namespace, App):
        return "Global"
    if isinstance(namespace, Screen):
        return "View"
    return {"ResourceTable": "List"}.get(type(namespace).__name__, type(namespace).__name__)


def _key_order(display: str) -> tuple[int, str]:
    """Printable one-character keys first (``k`` before ``↑``), then the named ones."""
    return (0 if len(display) == 1 and display.isascii() else 1, display)


def describe_bindings(app: App[Any], active: Mapping[str, ActiveBinding]) -> list[KeyHelp]:
    """The active bindings of a screen, one entry per binding (its keys merged: a binding id
    remaps them together), groups in order."""
    merged: dict[tuple[str, str, str, str | None], list[str]] = {}
    for active_binding in active.values():
        binding = active_binding.binding
        palette = binding.action == "command_palette"
        if (
            binding.system
            or not active_binding.enabled
            or not (binding.id or binding.show or palette)
        ):
            continue
        group = _group(active_binding.node)
        description = "Command palette" if palette else binding.description or binding.action
        key = (group, binding.action, description, binding.id)
        merged.setdefault(key, []).append(app.get_key_display(binding))
    order = {"View": 0, "List": 1, "Global": 2}
    entries = [
        KeyHelp(group, tuple(sorted(keys, key=_key_order)), description, binding_id)
        for (group, _action, description, binding_id), keys in merged.items()
    ]
    entries.sort(key=lambda e: order.get(e.group, 3))
    return entries


def render_help(entries: Iterable[KeyHelp], title: str) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{title}\n", "bold")
    group = None
    for entry in entries:
        if entry.group != group:
            group = entry.group
            text.append(f"\n {group}\n", "bold underline")
        keys = " ".join(entry.keys)
        text.append(f"  {keys:<14}", "bold")
        text.append(f" {entry.description:<22}")
        if entry.binding_id:
            text.append(f" {entry.binding_id}", "dim")
        text.append("\n")
    text.append("\nRemap keys in config.yaml: keymap: {binding.id: 'key,key'}", "dim")
    return text


class HelpScreen(ModalScreen[None]):
    """The keys of the view underneath."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
        *scroll_bindings("help"),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: auto;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: round $primary;
            border-title-color: $text-primary;
            background: $surface;
            padding: 0 1;
        }
        & Static { width: auto; }
    }
    """

    def __init__(self, entries: list[KeyHelp], title: str) -> None:
        super().__init__()
        self.entries = entries
        self.title_text = title

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroller:
            scroller.border_title = " keys "
            scroller.border_subtitle = " esc closes "
            yield Static(render_help(self.entries, self.title_text), id="help-body")

    def action_close(self) -> None:
        self.dismiss()

    def action_scroll(self, how: str) -> None:
        scroll(self.query_one(VerticalScroll), how)

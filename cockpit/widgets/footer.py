"""The bottom bar: the keys of the view, most important first, each shown whole.

Textual's :class:`~textual.widgets.Footer` lays its keys out in a row and cuts the row at
the edge of the terminal, often in the middle of a word. This footer orders the keys by
importance and leaves out, whole, the least important ones that do not fit:

* the view's own keys come first (the focused widget's, then the view's, as bound);
* then ``? Help``, which is always shown: it lists every key;
* then the keys of the whole app (``:`` command line, ``q`` quit), which one learns once;
* last the command palette (``^p``), on the right edge.

What does not fit is dropped from the end of that order. Without colour (``NO_COLOR``)
a key and its description are not told apart by colour, so a ``·`` separates the keys.
Each key's text, spacing included, is built here, so the footer knows its width before
laying it out; keys keep their ids and show the key a keymap bound them to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

__all__ = ["CockpitFooter", "FooterEntry", "entry_text", "fit_entries"]

#: Separates two keys when colour does not.
SEPARATOR = "· "


def entry_text(
    key: str,
    description: str,
    *,
    compact: bool,
    separated: bool,
    key_style: Style | None = None,
    description_style: Style | None = None,
) -> Text:
    """One key as the footer shows it, spacing included (its width is its cell length).

    ``separated``: a separator goes before it (no colour, and not the first key).
    """
    text = Text(no_wrap=True, end="")
    if separated:
        text.append(SEPARATOR)
    if compact:
        text.append(key, key_style or "")
        if description:
            text.append(" " + description, description_style or "")
        text.append(" ")
    else:
        text.append(f" {key} ", key_style or "")
        if description:
            text.append(description + " ", description_style or "")
    return text


@dataclass(frozen=True)
class _Candidate:
    binding: Binding
    key_display: str
    enabled: bool
    tooltip: str
    pinned: bool


def fit_entries(widths: Sequence[tuple[int, int]], pinned: frozenset[int], room: int) -> list[int]:
    """Which entries to show: ``widths`` holds, in order of importance, each entry's width
    alone and its width after another entry (with a separator). The least important ones
    (the last) are dropped, whole, until the rest fit in ``room``; ``pinned`` ones never.
    Returns the indexes kept, in order."""
    kept = list(range(len(widths)))

    def width(indexes: list[int]) -> int:
        return sum(widths[i][0] if n == 0 else widths[i][1] for n, i in enumerate(indexes))

    while width(kept) > room:
        droppable = [i for i in kept if i not in pinned]
        if not droppable:
            break
        kept.remove(droppable[-1])
    return kept


class FooterEntry(FooterKey):
    """One key of the :class:`CockpitFooter`: it renders :func:`entry_text`.

    It is Textual's footer key (not exported by ``textual.widgets``), for its click, hover,
    dimming when disabled, and the themes' footer colours."""

    DEFAULT_CSS = """
    FooterEntry, FooterEntry.-compact {
        margin: 0;
        padding: 0;
        .footer-key--key { padding: 0; }
        .footer-key--description { padding: 0; }
    }
    """

    def __init__(
        self,
        key: str,
        key_display: str,
        description: str,
        action: str,
        *,
        disabled: bool = False,
        tooltip: str = "",
        classes: str = "",
        separated: bool = False,
        compact: bool = False,
        binding_id: str | None = None,
    ) -> None:
        super().__init__(
            key, key_display, description, action, disabled, tooltip=tooltip, classes=classes
        )
        self.separated = separated
        self.set_reactive(FooterKey.compact, compact)
        self.set_class(compact, "-compact", update=False)
        #: The id of the binding (``app.help``): what a keymap refers to.
        self.binding_id = binding_id

    @property
    def text(self) -> str:
        """What the entry reads, without styles."""
        return entry_text(
            self.key_display, self.description, compact=self.compact, separated=self.separated
        ).plain

    def render(self) -> Text:
        text = entry_text(
            self.key_display,
            self.description,
            compact=self.compact,
            separated=self.separated,
            key_style=self.get_component_rich_style("footer-key--key"),
            description_style=self.get_component_rich_style("footer-key--description"),
        )
        text.stylize_before(self.rich_style)
        return text


class CockpitFooter(Footer):
    """The keys of the screen it is on, dropping whole the least important ones that do not
    fit (see the module's description). Compact (less spacing) below ``compact_below``
    columns."""

    DEFAULT_CSS = """
    CockpitFooter, CockpitFooter.-compact {
        FooterEntry { margin: 0; }
        FooterEntry.-command-palette { padding-right: 0; }
    }
    """

    #: The binding that is always shown.
    ALWAYS: ClassVar[str] = "help"
    #: The order of the app's own keys (actions), after the view's and help.
    APP_ORDER: ClassVar[tuple[str, ...]] = ("help", "command", "quit")
    #: Columns of the palette key's left border.
    PALETTE_BORDER: ClassVar[int] = 1

    def __init__(self, *, compact_below: int = 100, width: int = 0) -> None:
        super().__init__(compact=width < compact_below)
        self.compact_below = compact_below
        self._width = width

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.compact = self._width < self.compact_below
            if self.is_attached:
                self.call_after_refresh(self.recompose)

    def room(self) -> int:
        """The columns the keys may take."""
        return self.size.width or self._width or self.app.size.width

    def _candidates(self) -> tuple[list[_Candidate], _Candidate | None]:
        """The keys to show, in order of importance, and the palette's key (if shown)."""
        app = self.app
        active = self.screen.active_bindings
        own: list[_Candidate] = []
        global_: list[_Candidate] = []
        seen: set[str] = set()
        for namespace, binding, enabled, tooltip in active.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            candidate = _Candidate(
                binding,
                app.get_key_display(binding),
                enabled,
                tooltip,
                pinned=binding.action == self.ALWAYS,
            )
            (global_ if namespace is app else own).append(candidate)
        order = {action: n for n, action in enumerate(self.APP_ORDER)}
        global_.sort(key=lambda c: order.get(c.binding.action, len(order)))
        palette: _Candidate | None = None
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            found = active.get(app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, tooltip = found
                palette = _Candidate(
                    binding,
                    app.get_key_display(binding),
                    enabled,
                    tooltip or binding.tooltip or binding.description,
                    pinned=False,
                )
        return own + global_, palette

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        candidates, palette = self._candidates()
        separated = self.app.no_color
        compact = self.compact

        def width(candidate: _Candidate, *, after_another: bool) -> int:
            text = entry_text(
                candidate.key_display,
                candidate.binding.description,
                compact=compact,
                separated=separated and after_another,
            )
            return cell_len(text.plain)

        widths = [(width(c, after_another=False), width(c, after_another=True)) for c in candidates]
        pinned = frozenset(n for n, c in enumerate(candidates) if c.pinned)
        if palette is not None:
            # The least important: on the right edge, if it fits (no separator: it has a border).
            alone = width(palette, after_another=False) + self.PALETTE_BORDER
            widths.append((alone, alone))
        kept = fit_entries(widths, pinned, self.room())
        for n, index in enumerate(kept):
            if index == len(candidates):
                assert palette is not None
                yield self._entry(
                    palette, compact=compact, separated=False, classes="-command-palette"
                )
            else:
                yield self._entry(candidates[index], compact=compact, separated=separated and n > 0)

    def _entry(
        self, candidate: _Candidate, *, compact: bool, separated: bool, classes: str = ""
    ) -> FooterEntry:
        binding = candidate.binding
        return FooterEntry(
            binding.key,
            candidate.key_display,
            binding.description,
            binding.action,
            disabled=not candidate.enabled,
            tooltip=candidate.tooltip,
            classes=classes,
            separated=separated,
            compact=compact,
            binding_id=binding.id,
        )

    def entries(self) -> list[FooterEntry]:
        """The keys shown, in order (the palette's last)."""
        return list(self.query_children(FooterEntry))

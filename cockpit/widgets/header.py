"""The top bar: Cockpit and its version, where you are (breadcrumbs), the store in use,
how many rows are marked, the environment of what the cursor is on (production in red),
whether a task worker runs for the store (dropped first when the breadcrumbs need the
room), and the read-only flag."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from cockpit.textsafe import sanitize

if TYPE_CHECKING:
    from cockpit.widgets.resource_table import Tone

__all__ = ["CockpitHeader", "env_tone", "environment_tone", "short_path"]


def short_path(path: Path | str, home: Path | None = None) -> str:
    """``path`` with the home directory shown as ``~``."""
    text = str(path)
    try:
        home_text = str(home if home is not None else Path.home())
    except RuntimeError:
        return text
    if home_text not in ("", "/") and (text == home_text or text.startswith(home_text + "/")):
        return "~" + text[len(home_text) :]
    return text


def environment_tone(environment: str | None) -> str:
    """``prod``, ``staging`` or ``other``: how loudly an environment is shown."""
    if environment in ("prod", "production", "live"):
        return "prod"
    if environment in ("staging", "stage", "preprod", "test", "qa"):
        return "staging"
    return "other"


def env_tone(environment: str) -> Tone:
    """The tone of a list cell naming ``environment``: ``prod``, ``staging`` or ``env``."""
    tone = environment_tone(environment)
    return "prod" if tone == "prod" else "staging" if tone == "staging" else "env"


class CockpitHeader(Widget):
    """One line on top of every view."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "header--brand",
        "header--crumbs",
        "header--store",
        "header--env-prod",
        "header--env-staging",
        "header--env-other",
        "header--read-only",
        "header--marked",
        "header--worker-up",
        "header--worker-down",
    }

    DEFAULT_CSS = """
    CockpitHeader {
        dock: top;
        height: 1;
        width: 1fr;
        background: $panel;
        color: $foreground;
        & > .header--brand { background: $primary; color: $background; text-style: bold; }
        & > .header--crumbs { color: $text-accent; text-style: bold; }
        & > .header--store { color: $text-muted; }
        & > .header--env-prod { background: $error; color: $background; text-style: bold; }
        & > .header--env-staging { background: $warning; color: $background; text-style: bold; }
        & > .header--env-other { background: $success; color: $background; }
        & > .header--read-only { background: $foreground; color: $background; text-style: bold; }
        & > .header--marked { background: $accent; color: $background; text-style: bold; }
        & > .header--worker-up { color: $text-success; }
        & > .header--worker-down { color: $text-warning; text-style: bold; }
    }
    """

    crumbs: reactive[tuple[str, ...]] = reactive(())
    environment: reactive[str | None] = reactive(None)
    marked: reactive[int] = reactive(0)
    #: Whether a task worker runs for the store (None: not known yet).
    worker: reactive[bool | None] = reactive(None)

    def __init__(
        self,
        *,
        version: str,
        store: Path | str,
        read_only: bool = False,
        crumbs: Sequence[str] = (),
        worker: bool | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.version = version
        self.store = short_path(store)
        self.read_only = read_only
        self.set_reactive(CockpitHeader.crumbs, tuple(crumbs))
        self.set_reactive(CockpitHeader.worker, worker)

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"header--{name}")

    def render(self) -> Text:
        width = self.size.width
        brand = (f" Cockpit {self.version} ", self._style("brand"))
        crumbs_text = " › ".join(sanitize(c) for c in self.crumbs)
        right: list[tuple[str, Style]] = []
        if self.worker is not None:
            shown = "worker" if self.worker else "no worker"
            right.append((f"{shown} ", self._style("worker-up" if self.worker else "worker-down")))
        if self.marked:
            if right:
                right.append((" ", Style()))
            right.append((f" {self.marked:,} marked ", self._style("marked")))
        if self.environment:
            if right:
                right.append((" ", Style()))
            tone = environment_tone(self.environment)
            right.append((f" {sanitize(self.environment)} ", self._style(f"env-{tone}")))
        if self.read_only:
            if right:
                right.append((" ", Style()))
            right.append((" READ-ONLY ", self._style("read-only")))
        crumbs = f" {crumbs_text} " if crumbs_text else ""
        right_width = sum(cell_len(t) for t, _ in right)
        room = width - cell_len(brand[0]) - right_width - 1
        if self.worker is not None and cell_len(crumbs) > room:
            # Where you are comes first; whether a worker runs is on the overview too.
            dropped = right[:2] if len(right) > 1 else right[:1]
            right = right[len(dropped) :]
            room += sum(cell_len(t) for t, _ in dropped)
        parts: list[tuple[str, Style]] = [brand]
        if cell_len(crumbs) > room:
            crumbs = set_cell_size(crumbs, max(0, room - 1)) + "…" if room > 1 else ""
        parts.append((crumbs, self._style("crumbs")))
        room -= cell_len(crumbs)
        store = self.store
        if room >= 12:
            shown = store if cell_len(store) + 2 <= room else "…" + store[-(room - 3) :]
            parts.append((f" {shown}", self._style("store")))
            room -= cell_len(shown) + 1
        text = Text(no_wrap=True, overflow="crop", end="")
        for chunk, style in parts:
            text.append(chunk, style)
        if room > 0:
            text.append(" " * room)
        text.append(" ")
        for chunk, style in right:
            text.append(chunk, style)
        return text

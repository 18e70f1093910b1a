"""Vim keys for anything that scrolls (a detail, the help): j/k, g/G, ctrl+d/ctrl+u."""

from __future__ import annotations

from textual.binding import Binding, BindingType
from textual.containers import ScrollableContainer

__all__ = ["scroll", "scroll_bindings"]


def scroll_bindings(prefix: str) -> list[BindingType]:
    """Bindings to ``action_scroll(how)``, with ids ``<prefix>.down``, ``<prefix>.top``…"""
    return [
        Binding("j,down", "scroll('down')", "Down", show=False, id=f"{prefix}.down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id=f"{prefix}.up"),
        Binding("g,home", "scroll('top')", "Top", show=False, id=f"{prefix}.top"),
        Binding("G,end", "scroll('bottom')", "Bottom", show=False, id=f"{prefix}.bottom"),
        Binding(
            "ctrl+d", "scroll('half_down')", "Half page down", show=False, id=f"{prefix}.half_down"
        ),
        Binding("ctrl+u", "scroll('half_up')", "Half page up", show=False, id=f"{prefix}.half_up"),
        Binding(
            "pagedown,ctrl+f",
            "scroll('page_down')",
            "Page down",
            show=False,
            id=f"{prefix}.page_down",
        ),
        Binding("pageup", "scroll('page_up')", "Page up", show=False, id=f"{prefix}.page_up"),
    ]


def scroll(scroller: ScrollableContainer, how: str) -> None:
    """Scroll by a line, half a page or a page (``down``, ``half_up``…), or to ``top``/``bottom``."""
    page = max(1, scroller.scrollable_content_region.height)
    by = {
        "down": 1,
        "up": -1,
        "half_down": max(1, page // 2),
        "half_up": -max(1, page // 2),
        "page_down": page,
        "page_up": -page,
    }
    if how == "top":
        scroller.scroll_home(animate=False, immediate=True)
    elif how == "bottom":
        scroller.scroll_end(animate=False, immediate=True)
    elif how in by:
        scroller.scroll_to(y=scroller.scroll_y + by[how], animate=False, immediate=True)

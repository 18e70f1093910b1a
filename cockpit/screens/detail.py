"""What the scrolled detail views share (a site's, a task's, a backup's, a schedule's): the
``#detail`` scroll holding the ``#body`` text, read by a ``load()`` worker when the view
opens and on ctrl+r, shown when its :class:`DetailScreen.Loaded` arrives; vim keys scroll.

Imported by the detail views only, never at start.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from rich.console import RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker

from cockpit.screens.base import ViewScreen
from cockpit.widgets.scrolling import scroll

__all__ = ["DetailScreen"]

DetailT = TypeVar("DetailT")


class DetailScreen(ViewScreen, Generic[DetailT]):
    """A detail view: subclasses read the detail in ``load()`` (a worker posting
    ``self.Loaded(detail)``) and say how it reads in :meth:`render_detail`."""

    AUTO_FOCUS = "#detail"

    class Loaded(Message):
        def __init__(self, detail: Any) -> None:
            self.detail = detail
            super().__init__()

    def __init__(self) -> None:
        super().__init__()
        self.detail: DetailT | None = None

    @property
    def detail_title(self) -> str:
        """The title on the detail's border."""
        return self.crumb

    def load(self) -> Worker[None]:
        """Read the detail, in a worker, and post it as :class:`Loaded`."""
        raise NotImplementedError

    def render_detail(self, detail: DetailT) -> RenderableType:
        raise NotImplementedError

    def detail_shown(self, detail: DetailT) -> None:
        """After the body shows ``detail``: what else follows it (border tones, lists)."""

    def compose_below(self) -> ComposeResult:
        """What comes under the detail, before the footer."""
        yield from ()

    def main_widget(self) -> Widget | None:
        return self.query_one("#detail", VerticalScroll)

    def ready_for_keys(self) -> bool:
        return super().ready_for_keys() and self.detail is not None

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with VerticalScroll(id="detail"):
            yield Static(Text(" loading…", "italic"), id="body")
        yield from self.compose_below()
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = Text(self.detail_title)
        self.mounted()
        self.load()

    def mounted(self) -> None:
        """On mount, after the border title and before the first read."""

    def action_refresh(self) -> None:
        self.load()

    def action_scroll(self, how: str) -> None:
        scroll(self.query_one("#detail", VerticalScroll), how)

    def on_detail_screen_loaded(self, message: DetailScreen.Loaded) -> None:
        self.detail = message.detail
        self.query_one("#body", Static).update(self.render_detail(message.detail))
        self.detail_shown(message.detail)
        self.refresh_bindings()

"""A resource list view: the header, a :class:`ResourceTable`, a filter bar, the footer.

Subclasses say which columns, where the rows come from and what ``enter`` opens. The
filter (``/``; ``!text`` inverts) is remembered per view for the session.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input

from cockpit.messages import OpenView, Scope, ViewName
from cockpit.screens.base import ViewScreen
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import Column, Query, ResourceTable, Row, RowSource

__all__ = ["ResourceScreen"]


class ResourceScreen(ViewScreen):
    """A list of one kind of resource, possibly narrowed to a scope (a server's platforms)."""

    VIEW: ClassVar[ViewName]
    AUTO_FOCUS = "#table"
    #: What the filter bar says before anything is typed.
    FILTER_HINT: ClassVar[str] = (
        "text in any column, or !text to exclude · enter keeps · esc clears"
    )
    #: The sort the list starts with (a column's ``sort`` key).
    DEFAULT_SORT: ClassVar[str | None] = None

    BINDINGS: ClassVar[list[BindingType]] = [
        # A priority binding: it runs before the next key is dispatched, so what is typed
        # right after "/" goes into the filter.
        Binding("slash", "filter", "Filter", priority=True, id="view.filter"),
    ]

    DEFAULT_CSS = """
    ResourceScreen {
        & > ResourceTable {
            border: round $primary 60%;
            border-title-color: $text-primary;
            border-title-style: bold;
            border-subtitle-color: $text-muted;
            &:focus { border: round $primary; }
        }
    }
    """

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__()
        self.scope = scope
        self._initial_filter = filter_text

    # -- what subclasses provide ---------------------------------------------------------

    def columns(self) -> Sequence[Column]:
        raise NotImplementedError

    def source(self) -> RowSource:
        raise NotImplementedError

    def open_row(self, row: Row) -> None:
        """``enter`` on a row (drill down)."""

    @property
    def noun(self) -> str:
        return self.VIEW

    # -- composition ---------------------------------------------------------------------

    @property
    def view_key(self) -> str:
        return (
            self.VIEW if self.scope is None else f"{self.VIEW}@{self.scope.kind}={self.scope.name}"
        )

    @property
    def crumb(self) -> str:
        return self.VIEW if self.scope is None else f"{self.VIEW}@{self.scope.name}"

    @property
    def table(self) -> ResourceTable:
        return self.query_one(ResourceTable)

    @property
    def filter_bar(self) -> PromptBar:
        return self.query_one("#filter-bar", PromptBar)

    def main_widget(self) -> Widget | None:
        return self.table

    def compose(self) -> ComposeResult:
        remembered = self.cockpit_app.view_filters.get(self.view_key, "")
        text = self._initial_filter if self._initial_filter is not None else remembered
        self.cockpit_app.view_filters[self.view_key] = text
        yield from self.compose_header()
        yield ResourceTable(
            self.columns(),
            self.source(),
            query=Query.from_filter(text, sort=self.DEFAULT_SORT),
            empty_text=f"no {self.noun}",
            noun=self.noun,
            id="table",
        )
        bar = PromptBar("/", value=text, placeholder=self.FILTER_HINT, id="filter-bar")
        bar.set_class(bool(text), "-active")
        yield bar
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self._update_title()

    # -- title, position, environment ----------------------------------------------------

    def _update_title(self) -> None:
        table = self.table
        count = "…" if table.row_count is None else f"{table.row_count:,}"
        title = f"{self.crumb} [{count}]"
        filt = table.row_query.filter_text
        if filt:
            title += f" /{filt}"
        table.border_title = Text(title)
        if table.row_count:
            table.border_subtitle = f"{table.cursor_index + 1:,} of {table.row_count:,}"
        else:
            table.border_subtitle = ""

    @on(ResourceTable.Loaded)
    def _loaded(self, event: ResourceTable.Loaded) -> None:
        self._update_title()
        if not event.total:
            self.set_environment(None)

    @on(ResourceTable.Highlighted)
    def _highlighted(self, event: ResourceTable.Highlighted) -> None:
        self.set_environment(event.row.environment)
        self._update_title()

    @on(ResourceTable.Selected)
    def _selected(self, event: ResourceTable.Selected) -> None:
        self.open_row(event.row)

    def open_view(
        self, view: ViewName, *, scope: Scope | None = None, key: str | None = None
    ) -> None:
        self.post_message(OpenView(view, scope=scope, key=key))

    # -- filter ----------------------------------------------------------------------------

    @property
    def filter_text(self) -> str:
        return self.table.row_query.filter_text

    def apply_filter(self, text: str) -> None:
        """Filter the list (``!text`` inverts) and remember it for this view."""
        self.cockpit_app.view_filters[self.view_key] = text
        bar = self.filter_bar
        field = bar.input
        if field.value != text:
            with field.prevent(Input.Changed):
                field.value = text
        bar.set_class(bool(text) or self.focused is field, "-active")
        self.table.set_filter(text)
        self._update_title()
        self.refresh_bindings()

    def action_filter(self) -> None:
        self.filter_bar.open()

    @on(Input.Changed, "#filter-bar Input")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.apply_filter(event.value)

    @on(PromptBar.Submitted, "#filter-bar")
    def _filter_submitted(self, event: PromptBar.Submitted) -> None:
        """``enter``: keep the filter (shown under the list), back to the list."""
        event.stop()
        self._leave_prompt(event.bar, keep_visible=bool(event.value))

    @on(PromptBar.Cancelled, "#filter-bar")
    def _filter_cancelled(self, event: PromptBar.Cancelled) -> None:
        """``esc`` in the filter: clear it, back to the list."""
        event.stop()
        self.apply_filter("")
        self._leave_prompt(event.bar)

    # -- keys ------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "filter":
            return not self.typing()
        if action == "back" and self.is_mounted and self.filter_text:
            return True
        return super().check_action(action, parameters)

    def action_back(self) -> None:
        """Clear the filter first, then go back to the previous view."""
        if self.filter_text:
            self.apply_filter("")
            self.filter_bar.close()
        else:
            super().action_back()

    def action_refresh(self) -> None:
        self.table.reload()
        self._update_title()

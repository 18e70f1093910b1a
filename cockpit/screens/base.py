"""What every view shares: the header with breadcrumbs, the ``:`` command line, the
footer, going back, read-only guards, and turning a failed worker into
:class:`~cockpit.messages.WorkerFailed` for the app's central handler."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Concatenate, ParamSpec, TypeVar, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from cockpit import __version__
from cockpit.messages import WorkerFailed
from cockpit.screens.command import CommandSuggester
from cockpit.widgets.footer import CockpitFooter
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.prompt import PromptBar

if TYPE_CHECKING:
    from cockpit.app import CockpitApp
    from cockpit.core import Cockpit

__all__ = ["ViewScreen", "changing"]

COMMAND_HINT = (
    "sites prod /wp · servers · pf · overview · backups · theme NAME · q  (tab completes)"
)

P = ParamSpec("P")
S = TypeVar("S", bound="ViewScreen")


def changing(
    what: str,
) -> Callable[[Callable[Concatenate[S, P], None]], Callable[Concatenate[S, P], None]]:
    """Mark an action as one that changes something (queues a task, edits the inventory).

    In read-only mode it does not run: the user gets a notification saying why, instead
    of a key that silently does nothing. ``what`` names the action in that notification.
    """

    def decorate(action: Callable[Concatenate[S, P], None]) -> Callable[Concatenate[S, P], None]:
        def guarded(self: S, /, *args: P.args, **kwargs: P.kwargs) -> None:
            if self.cockpit_app.allow_change(what):
                action(self, *args, **kwargs)

        functools.update_wrapper(guarded, action)
        guarded.__cockpit_changing__ = what  # type: ignore[attr-defined]
        return guarded

    return decorate


class ViewScreen(Screen[None]):
    """A view of the app: one entry of the view stack, shown in the breadcrumbs."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="view.back"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="view.refresh"),
    ]

    #: Actions that change something but are not decorated with :func:`changing`:
    #: disabled (and hidden) in read-only mode.
    CHANGING_ACTIONS: ClassVar[frozenset[str]] = frozenset()

    @property
    def cockpit_app(self) -> CockpitApp:
        return cast("CockpitApp", self.app)

    @property
    def cockpit(self) -> Cockpit:
        return self.cockpit_app.cockpit

    @property
    def view_key(self) -> str:
        """Identifies the view: opening the same key again goes back to it."""
        raise NotImplementedError

    @property
    def crumb(self) -> str:
        """This view in the breadcrumbs."""
        return self.view_key

    def main_widget(self) -> Widget | None:
        """What has the focus when no prompt has it."""
        return None

    def ready_for_keys(self) -> bool:
        """Whether keys can act on this view yet; until then the app holds them (briefly),
        so what is typed right after opening a view is not lost."""
        return self.focused is not None

    # -- composition ---------------------------------------------------------------------

    def compose_header(self) -> ComposeResult:
        app = self.cockpit_app
        yield CockpitHeader(
            version=__version__,
            store=app.cockpit.config.store,
            read_only=app.read_only,
            crumbs=self.breadcrumbs(),
            worker=app.worker_running,
        )
        suggester = CommandSuggester(app.command_names, app.scope_kinds)
        yield PromptBar(":", placeholder=COMMAND_HINT, suggester=suggester, id="command-bar")

    #: Below this width the footer drops its spacing, so more keys show at 80.
    COMPACT_FOOTER_BELOW: ClassVar[int] = 100

    def compose_footer(self) -> ComposeResult:
        yield CockpitFooter(compact_below=self.COMPACT_FOOTER_BELOW, width=self.app.size.width)

    def breadcrumbs(self) -> tuple[str, ...]:
        stack = [s for s in self.app.screen_stack if isinstance(s, ViewScreen)]
        if self not in stack:
            stack.append(self)
        return tuple(s.crumb for s in stack[: stack.index(self) + 1])

    def on_screen_resume(self) -> None:
        for header in self.query(CockpitHeader):
            header.crumbs = self.breadcrumbs()
        self.refresh_bindings()

    def set_environment(self, environment: str | None) -> None:
        for header in self.query(CockpitHeader):
            header.environment = environment

    def set_marked(self, count: int) -> None:
        for header in self.query(CockpitHeader):
            header.marked = count

    # -- the command line ------------------------------------------------------------------

    @property
    def command_bar(self) -> PromptBar:
        return self.query_one("#command-bar", PromptBar)

    def typing(self) -> bool:
        """Whether an input has the focus (then plain keys are text, not commands)."""
        return isinstance(self.focused, Input)

    def open_command(self) -> None:
        self.command_bar.open()
        self.cockpit_app.refresh_names()

    def _leave_prompt(self, bar: PromptBar, *, keep_visible: bool = False) -> None:
        bar.close(keep_visible=keep_visible)
        main = self.main_widget()
        if main is not None:
            self.set_focus(main)

    @on(PromptBar.Submitted, "#command-bar")
    def _command_submitted(self, event: PromptBar.Submitted) -> None:
        event.stop()
        event.bar.input.value = ""
        self._leave_prompt(event.bar)
        self.cockpit_app.run_command(event.value)

    @on(PromptBar.Cancelled, "#command-bar")
    def _command_cancelled(self, event: PromptBar.Cancelled) -> None:
        event.stop()
        event.bar.input.value = ""
        self._leave_prompt(event.bar)

    # -- keys ------------------------------------------------------------------------------

    def can_go_back(self) -> bool:
        stack = self.app.screen_stack
        return len(stack) > 1 and stack[-1] is self

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.CHANGING_ACTIONS and self.cockpit_app.read_only:
            return False
        if action == "back":
            return self.can_go_back()
        return True

    def action_back(self) -> None:
        if self.can_go_back():
            self.dismiss()

    def action_refresh(self) -> None:
        """Read the view's data again."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.post_message(WorkerFailed.from_worker(event.worker))

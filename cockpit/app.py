"""Cockpit's TUI. :func:`make_app` builds it, for the ``cockpit`` command and the tests alike.

The app opens on the servers view. Views form a stack (shown as breadcrumbs):
``enter`` drills down, ``esc`` goes back, ``:`` opens a view by name (going back to it
if it is already open), ``1``–``4`` are shortcuts to the main views. Every core call
runs in a worker; a failed one becomes a notification (:meth:`CockpitApp.on_worker_failed`),
never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import ClassVar, cast

from textual.app import App
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Input

from cockpit.core import Cockpit
from cockpit.messages import OpenView, Scope, ViewName, WorkerFailed
from cockpit.screens.base import ViewScreen
from cockpit.screens.clients import ClientsScreen
from cockpit.screens.command import CommandError, parse_command
from cockpit.screens.help import HelpScreen, describe_bindings
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.sites import SitesScreen
from cockpit.themes import APP_VARIABLES, DEFAULT_THEME, ThemeError, ThemeSet, load_themes
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import ResourceTable

__all__ = ["CockpitApp", "known_binding_ids", "make_app"]

_VIEWS: Mapping[str, type[ResourceScreen]] = {
    "servers": ServersScreen,
    "platforms": PlatformsScreen,
    "sites": SitesScreen,
    "clients": ClientsScreen,
}


class CockpitApp(App[None]):
    """The cockpit. Build it with :func:`make_app`."""

    TITLE = "Cockpit"

    CSS = """
    /* Themes may restyle production rows through the $cockpit-prod-text-style variable. */
    ResourceTable > .resource-table--tone-prod { text-style: $cockpit-prod-text-style; }
    /* Without colour, meaning must not rest on colour. */
    CockpitApp:nocolor ResourceTable > .resource-table--tone-prod { text-style: bold underline; }
    CockpitApp:nocolor ResourceTable > .resource-table--cursor { text-style: bold reverse; }
    CockpitApp:nocolor CockpitHeader > .header--env-prod { text-style: bold underline; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.interrupt"),
        Binding("question_mark", "help", "Help", id="app.help"),
        # Priority: runs before the next key is dispatched, so ":sites" typed fast works.
        Binding("colon", "command", "Command", priority=True, id="app.command"),
        Binding("1", "view('servers')", "Servers", show=False, id="view.servers"),
        Binding("2", "view('platforms')", "Platforms", show=False, id="view.platforms"),
        Binding("3", "view('sites')", "Sites", show=False, id="view.sites"),
        Binding("4", "view('clients')", "Clients", show=False, id="view.clients"),
    ]

    #: Seconds during which the same error is not notified twice.
    ERROR_REPEAT_WINDOW: ClassVar[float] = 5.0

    def __init__(
        self,
        cockpit: Cockpit,
        *,
        themes: ThemeSet,
        theme: str,
        read_only: bool = False,
        keymap: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.cockpit = cockpit
        self.themes = themes
        self.read_only = read_only
        #: The filter of each view, remembered for the session (view key → filter).
        self.view_filters: dict[str, str] = {}
        self.unknown_binding_ids: list[str] = []
        self._last_error: tuple[str, float] | None = None
        for name in themes.cockpit_names:
            self.register_theme(themes.get(name))
        self.theme = themes.get(theme).name
        if keymap:
            known = known_binding_ids()
            self.unknown_binding_ids = sorted(k for k in keymap if k not in known)
            self.set_keymap(dict(keymap))

    def get_default_screen(self) -> Screen[None]:
        return ServersScreen()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(APP_VARIABLES)

    def on_mount(self) -> None:
        if self.unknown_binding_ids:
            valid = ", ".join(sorted(known_binding_ids()))
            self.notify(
                f"keymap: unknown binding id {', '.join(self.unknown_binding_ids)}; "
                f"valid ids: {valid}",
                title="Config",
                severity="warning",
                timeout=15,
                markup=False,
            )

    # -- views -------------------------------------------------------------------------

    def open_view(
        self,
        view: ViewName,
        *,
        scope: Scope | None = None,
        filter_text: str | None = None,
        key: str | None = None,
    ) -> None:
        """Show a view: back to it when it is in the stack, else pushed on top."""
        if view == "site":
            if key is None:
                return
            screen: ViewScreen = SiteScreen(key)
        else:
            screen = _VIEWS[view](scope=scope, filter_text=filter_text)
        for existing in reversed(self.screen_stack):
            if isinstance(existing, ViewScreen) and existing.view_key == screen.view_key:
                if existing is not self.screen:
                    existing.pop_until_active()
                if filter_text is not None and isinstance(existing, ResourceScreen):
                    existing.apply_filter(filter_text)
                return
        self.push_screen(screen)

    def on_open_view(self, message: OpenView) -> None:
        self.open_view(
            message.view, scope=message.scope, filter_text=message.filter_text, key=message.key
        )

    def action_view(self, view: str) -> None:
        if view in _VIEWS:
            self.open_view(cast(ViewName, view))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("view", "help", "command") and isinstance(self.screen, ModalScreen):
            return False
        if action == "command":  # ":" is text while an input has the focus
            return isinstance(self.screen, ViewScreen) and not isinstance(self.focused, Input)
        return True

    # -- help and the command prompt -------------------------------------------------------

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, ModalScreen):
            return
        title = f"Keys of {screen.crumb}" if isinstance(screen, ViewScreen) else "Keys"
        self.push_screen(HelpScreen(describe_bindings(self, screen.active_bindings), title))

    def action_command(self) -> None:
        screen = self.screen
        if isinstance(screen, ViewScreen):
            screen.open_command()

    def run_command(self, line: str | None) -> None:
        """Run a ``:`` command line (``servers``, ``sites wp``, ``theme NAME``, ``q``…)."""
        try:
            parsed = parse_command(line or "")
        except CommandError as exc:
            self.notify(str(exc), title="Command", severity="error", markup=False)
            return
        if parsed is None:
            return
        if parsed.name == "quit":
            self.exit()
        elif parsed.name == "help":
            self.action_help()
        elif parsed.name == "theme":
            self.switch_theme(parsed.argument)
        else:
            self.open_view(cast(ViewName, parsed.name), filter_text=parsed.argument or None)

    def switch_theme(self, name: str) -> None:
        try:
            theme = self.themes.get(name)
        except ThemeError as exc:
            self.notify(str(exc), title="Theme", severity="error", markup=False)
            return
        self.theme = theme.name

    # -- errors ------------------------------------------------------------------------------

    def on_worker_failed(self, message: WorkerFailed) -> None:
        """The one place a failed worker ends up: a visible error, the app keeps running."""
        summary = message.summary
        now = time.monotonic()
        if self._last_error is not None:
            last, when = self._last_error
            if last == summary and now - when < self.ERROR_REPEAT_WINDOW:
                return
        self._last_error = (summary, now)
        self.log.error(summary)
        self.notify(summary, title="Error", severity="error", timeout=10, markup=False)


def _binding_ids(classes: Iterable[type[DOMNode]]) -> set[str]:
    ids: set[str] = set()
    for cls in classes:
        for klass in cls.__mro__:
            for binding in getattr(klass, "BINDINGS", ()):
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    return ids


def known_binding_ids() -> set[str]:
    """Every binding id a keymap may remap."""
    return _binding_ids(
        [
            CockpitApp,
            ResourceTable,
            HelpScreen,
            PromptBar,
            SiteScreen,
            *_VIEWS.values(),
        ]
    )


def make_app(
    cockpit: Cockpit,
    *,
    theme: str | None = None,
    read_only: bool = False,
    keymap: Mapping[str, str] | None = None,
) -> CockpitApp:
    """The TUI over an open :class:`Cockpit`.

    ``theme`` defaults to the config's; ``read_only`` adds to the config's; ``keymap``
    (binding id → keys) is laid over the config's. Raises :class:`ThemeError` for an
    unknown theme (listing the valid names) or a malformed theme file (naming it).
    """
    config = cockpit.config
    themes = load_themes()
    name = theme or config.theme or DEFAULT_THEME
    themes.get(name)
    merged = {**config.keymap, **(keymap or {})}
    return CockpitApp(
        cockpit,
        themes=themes,
        theme=name,
        read_only=read_only or config.read_only,
        keymap=merged,
    )

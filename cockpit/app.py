"""Cockpit's TUI. :func:`make_app` builds it, for the ``cockpit`` command and the tests alike.

The app opens on the overview (``0``), which answers "is anything wrong?": failed tasks,
unreachable servers, services down, sites failing their probe, whether a worker runs.
Views form a stack (shown as breadcrumbs): ``enter`` drills down, ``esc`` goes back, ``:``
opens a view by name with a scope and a filter (going back to it if it is already open),
``0``–``8`` are shortcuts to the main views and the dashboard, ctrl+p opens the command
palette. Every core call runs in a worker; a
failed one becomes a notification (:meth:`CockpitApp.on_worker_failed`), never a crash.
In read-only mode every action that changes something is refused with a notification
(:meth:`CockpitApp.allow_change`). Unless read-only, the app starts a detached task
worker when none runs for the store (:meth:`CockpitApp.check_worker`); the header says
whether one runs.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar, cast

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import Provider
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Input
from textual.worker import Worker, WorkerCancelled, WorkerState
from textual.worker import WorkerFailed as WorkerError

from cockpit.core import Cockpit
from cockpit.engine import KindInfo
from cockpit.messages import OpenView, Scope, ScopeKind, ViewName, WorkerFailed
from cockpit.screens.actions import TaskMenuScreen
from cockpit.screens.args import ArgsScreen, Cycle
from cockpit.screens.backups import BackupsScreen
from cockpit.screens.base import ViewScreen
from cockpit.screens.batch import BatchScreen
from cockpit.screens.clients import ClientsScreen
from cockpit.screens.command import (
    CommandError,
    Names,
    ParsedCommand,
    parse_command,
    parse_log_target,
    resolve_view_arguments,
)
from cockpit.screens.confirm import ConfirmTaskScreen
from cockpit.screens.dashboard import DashboardScreen
from cockpit.screens.help import HelpScreen, describe_bindings
from cockpit.screens.log import LogScreen
from cockpit.screens.overview import OverviewScreen
from cockpit.screens.palette import ActionProvider, EntityProvider
from cockpit.screens.platforms import PlatformsScreen
from cockpit.screens.problems import ProblemsScreen
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.schedules import SchedulesScreen
from cockpit.screens.servers import ServersScreen
from cockpit.screens.site import SiteScreen
from cockpit.screens.sites import SitesScreen
from cockpit.screens.stats import StatsScreen, open_screen, resolve_stats_target
from cockpit.screens.task import TaskScreen
from cockpit.screens.tasks import AuditScreen, TasksScreen
from cockpit.themes import APP_VARIABLES, DEFAULT_THEME, ThemeError, ThemeSet, load_themes
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.log_view import LogView
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import ResourceTable
from cockpit.widgets.tiles import TileGrid

__all__ = ["CockpitApp", "known_binding_ids", "make_app"]

_VIEWS: Mapping[str, type[ResourceScreen]] = {
    "overview": OverviewScreen,
    "servers": ServersScreen,
    "platforms": PlatformsScreen,
    "sites": SitesScreen,
    "clients": ClientsScreen,
    "backups": BackupsScreen,
    "tasks": TasksScreen,
    "schedules": SchedulesScreen,
    "audit": AuditScreen,
    "problems": ProblemsScreen,
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
    CockpitApp:nocolor CockpitHeader > .header--marked { text-style: bold reverse; }
    CockpitApp:nocolor ResourceTable > .resource-table--marked { text-style: bold; }
    """

    COMMANDS: ClassVar[set[type[Provider] | Callable[[], type[Provider]]]] = {
        EntityProvider,
        ActionProvider,
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True, id="app.interrupt"),
        Binding("question_mark", "help", "Help", id="app.help"),
        # Priority: runs before the next key is dispatched, so ":sites" typed fast works.
        Binding("colon", "command", "Command", priority=True, id="app.command"),
        # Priority, like ":": "3" opens the sites view before the next key is dispatched,
        # so "3/golf" typed in one go filters the sites (digits are text in an input).
        Binding("0", "view('overview')", "Overview", show=False, priority=True, id="view.overview"),
        Binding("1", "view('servers')", "Servers", show=False, priority=True, id="view.servers"),
        Binding(
            "2", "view('platforms')", "Platforms", show=False, priority=True, id="view.platforms"
        ),
        Binding("3", "view('sites')", "Sites", show=False, priority=True, id="view.sites"),
        Binding("4", "view('clients')", "Clients", show=False, priority=True, id="view.clients"),
        Binding("5", "view('backups')", "Backups", show=False, priority=True, id="view.backups"),
        Binding("6", "view('tasks')", "Tasks", show=False, priority=True, id="view.tasks"),
        Binding(
            "7", "view('schedules')", "Schedules", show=False, priority=True, id="view.schedules"
        ),
        Binding(
            "8", "view('dashboard')", "Dashboard", show=False, priority=True, id="view.dashboard"
        ),
    ]

    #: Whether the app starts a detached task worker when none runs for the store (never
    #: in read-only mode). :func:`make_app` takes it as ``start_worker``.
    AUTOSTART_WORKER: ClassVar[bool] = True
    #: The view the app opens on. :func:`make_app` takes it as ``start_view``.
    START_VIEW: ClassVar[str] = "overview"
    #: Seconds between two looks at whether the worker runs.
    WORKER_POLL_SECONDS: ClassVar[float] = 5.0

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
        start_worker: bool | None = None,
        start_view: str | None = None,
    ) -> None:
        super().__init__()
        self.cockpit = cockpit
        #: The view the app opens on (a list view's name).
        self.start_view = start_view or self.START_VIEW
        if self.start_view not in _VIEWS:
            raise ValueError(
                f"no view {self.start_view!r} to start on; views: {', '.join(sorted(_VIEWS))}"
            )
        self.themes = themes
        self.read_only = read_only
        #: Whether this app starts a worker when none runs (and after queueing).
        self.autostart_worker = (
            self.AUTOSTART_WORKER if start_worker is None else start_worker
        ) and not read_only
        #: Whether a worker runs for the store (None until first looked at).
        self.worker_running: bool | None = None
        #: The task kinds the engine knows (None until read, see :meth:`load_task_kinds`).
        self.task_kinds: list[KindInfo] | None = None
        #: The filter of each view, remembered for the session (view key → filter).
        self.view_filters: dict[str, str] = {}
        #: What the command line can refer to (refreshed when it opens).
        self.names = Names(themes=tuple(themes.cockpit_names))
        self.unknown_binding_ids: list[str] = []
        self._last_error: tuple[str, float] | None = None
        self._held_keys: list[events.Key] = []
        self._held_since = 0.0
        self._key_in_flight: events.Key | None = None
        self._key_in_flight_since = 0.0
        self._key_target: DOMNode | None = None
        #: A prompt whose enter or esc is in flight, and its count of handled ones then.
        self._leaving: tuple[PromptBar, int] | None = None
        self._key_timer: Timer | None = None
        for name in themes.cockpit_names:
            self.register_theme(themes.get(name))
        self.theme = themes.get(theme).name
        if keymap:
            known = known_binding_ids()
            self.unknown_binding_ids = sorted(k for k in keymap if k not in known)
            self.set_keymap(dict(keymap))

    # -- keys, in order -------------------------------------------------------------------
    #
    # Textual forwards a key to the focused widget and resolves its bindings when it
    # bubbles back to the app, a few messages later; the next key may be forwarded
    # before that, to a view the first key is about to replace, or to a view still being
    # built, where it is lost. Keys typed in one go (a paste, tmux send-keys, a fast
    # typist: "3jj␣", "3/golf", "enter j") are therefore dispatched one at a time: a key
    # waits until the one before it has been handled (it bubbled to the app, or a widget
    # consumed it) and until the current view is ready for keys.

    #: Held keys wait this long at most for a view to get ready.
    KEY_HOLD_LIMIT: ClassVar[float] = 2.0
    #: A key whose end was not seen (a widget stopped it on the way up) is done after this.
    KEY_FLIGHT_LIMIT: ClassVar[float] = 0.25

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._held_keys or self._key_in_flight is not None or not self._screen_ready():
                if not self._held_keys:
                    self._held_since = time.monotonic()
                self._held_keys.append(event)
                self._watch_keys()
                return
            await self._dispatch_key(event)
            return
        await super().on_event(event)

    async def _dispatch_key(self, event: events.Key) -> None:
        target = self.focused or self.screen
        await super().on_event(event)  # a priority binding, or forwarded to ``target``
        if event.is_forwarded:
            self._key_in_flight = event
            self._key_in_flight_since = time.monotonic()
            self._key_target = target
            target.call_later(self._key_reached, event)
            self._watch_keys()

    def _key_reached(self, event: events.Key) -> None:
        """The focused widget has handled ``event``: done, unless it bubbles on to the app,
        or it submits or cancels a prompt (``enter``, ``esc`` in ``/`` or ``:``): then the
        key is done when the view has handled that (a few messages later: it gives the
        focus back to the list), so the next key goes to the list, not to the prompt
        (:meth:`_release_keys` looks)."""
        if self._key_in_flight is event and event._stop_propagation:
            self._key_handled(event)

    def _key_handled(self, event: events.Key) -> None:
        target = self._key_target
        bar = target.parent if isinstance(target, Input) else None
        if event.key in ("enter", "escape") and isinstance(bar, PromptBar):
            # Done once the view has handled the submission or cancellation it makes.
            self._leaving = (bar, bar.handled)
        else:
            self._key_done()

    async def _on_key(self, event: events.Key) -> None:
        # Runs before App._on_key resolves the bindings: the next key goes after those
        # (after the view handled it, for a key that submits or cancels a prompt).
        if event is self._key_in_flight:
            self._key_handled(event)

    def _key_done(self) -> None:
        self._key_in_flight = None
        if self._held_keys:
            self.call_after_refresh(self._release_keys)

    def _screen_ready(self) -> bool:
        screen = self.screen
        if not screen.is_mounted:
            return False
        return not isinstance(screen, ViewScreen) or screen.ready_for_keys()

    def _watch_keys(self) -> None:
        if self._key_timer is None:
            self._key_timer = self.set_interval(0.01, self._release_keys)

    async def _release_keys(self) -> None:
        now = time.monotonic()
        if self._key_in_flight is not None and now - self._key_in_flight_since > (
            self.KEY_FLIGHT_LIMIT
        ):
            self._key_in_flight = None
        leaving = self._leaving
        if leaving is not None and leaving[0].handled > leaving[1]:
            self._key_in_flight = None  # the view handled the prompt's enter or esc
        if self._key_in_flight is None:
            self._leaving = None
        overdue = now - self._held_since > self.KEY_HOLD_LIMIT
        while self._held_keys and self._key_in_flight is None and (overdue or self._screen_ready()):
            await self._dispatch_key(self._held_keys.pop(0))
        if not self._held_keys and self._key_in_flight is None and self._key_timer is not None:
            self._key_timer.stop()
            self._key_timer = None

    def get_default_screen(self) -> Screen[None]:
        return _VIEWS[self.start_view]()

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(APP_VARIABLES)

    def on_mount(self) -> None:
        # What is alive now (Textual, Rich, the app) lives as long as the app: out of the
        # collector's sight, a full collection during a flood of log lines scans what came
        # after, not all of it (pauses of milliseconds instead of a tenth of a second).
        gc.freeze()
        self.load_task_kinds()
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

    def on_unmount(self) -> None:
        gc.unfreeze()  # the app is gone: what it froze may be collected again

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
        if view in ("site", "task", "batch"):
            if key is None:
                return
            if view == "site":
                screen: ViewScreen = SiteScreen(key)
            elif not key.isdigit():
                return
            elif view == "task":
                screen = TaskScreen(int(key))
            else:
                screen = BatchScreen(int(key), filter_text=filter_text)
        else:
            screen = _VIEWS[view](scope=scope, filter_text=filter_text)
        for existing in reversed(self.screen_stack):
            if isinstance(existing, ViewScreen) and existing.view_key == screen.view_key:
                # Popped now, not on the next loop turn: a key typed right after "1"
                # goes to the view it opened.
                while self.screen is not existing and len(self.screen_stack) > 1:
                    self.pop_screen()
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
        elif view == "dashboard":
            self.open_dashboard()

    def marks_table(self, screen: Screen[object] | None = None) -> ResourceTable | None:
        """The markable list of ``screen`` (default: the current one), if it has one."""
        screen = screen if screen is not None else self.screen
        if isinstance(screen, ResourceScreen) and screen.MARKABLE and screen.is_mounted:
            return screen.table
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("view", "help", "command") and isinstance(self.screen, ModalScreen):
            return False
        if action == "command":  # ":" is text while an input has the focus
            return isinstance(self.screen, ViewScreen) and not isinstance(self.focused, Input)
        if action == "view":  # so are digits
            return not isinstance(self.focused, Input)
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

    def scope_kinds(self, view: str) -> tuple[ScopeKind, ...]:
        """The scopes a view takes on the command line (``:sites prod``)."""
        screen = _VIEWS.get(view)
        return screen.SCOPES if screen is not None else ()

    def command_names(self) -> Names:
        return self.names

    @work(name="reading names", group="names", exclusive=True, exit_on_error=False)
    async def refresh_names(self) -> None:
        """Read the names the command line completes and resolves."""
        cockpit = self.cockpit
        servers = await cockpit.servers()
        self.names = Names(
            environments=frozenset(s.environment for s in servers),
            servers=frozenset(s.name for s in servers),
            platforms=frozenset(p.name for p in await cockpit.platforms()),
            clients=frozenset(c.name for c in await cockpit.clients()),
            themes=tuple(self.themes.cockpit_names),
        )

    def run_command(self, line: str | None) -> None:
        """Run a ``:`` command line (``sites prod /wp``, ``theme NAME``, ``q``…)."""
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
        elif parsed.name == "dashboard":
            self._stats_command(parsed.argument)
        elif parsed.name == "batch":
            self._batch_command(parsed.argument)
        elif parsed.name == "log":
            self._log_command(parsed.argument)
        else:
            self._view_command(parsed)

    def _log_command(self, argument: str) -> None:
        try:
            kind, ident = parse_log_target(argument)
        except CommandError as exc:
            self.notify(str(exc), title="Command", severity="error", markup=False)
            return
        self.show_view(LogScreen.for_task(ident) if kind == "task" else LogScreen.for_batch(ident))

    def show_view(self, screen: ViewScreen) -> None:
        """Push ``screen`` (a log view…), or go back to the view of the same key when it is
        already in the stack."""
        for existing in reversed(self.screen_stack):
            if isinstance(existing, ViewScreen) and existing.view_key == screen.view_key:
                while self.screen is not existing and len(self.screen_stack) > 1:
                    self.pop_screen()
                return
        self.push_screen(screen)

    def _batch_command(self, argument: str) -> None:
        number = argument.strip().removeprefix("#")
        if not (number.isascii() and number.isdigit()):
            self.notify(
                f":batch takes a batch id (:batch 7), not {argument!r}",
                title="Command",
                severity="error",
                markup=False,
            )
            return
        self.open_view("batch", key=number)

    @work(name="running the command", group="command", exit_on_error=False)
    async def _view_command(self, parsed: ParsedCommand) -> None:
        view = parsed.name
        if parsed.words:  # names may have changed since the prompt opened
            try:
                await self.refresh_names().wait()
            except (WorkerError, WorkerCancelled):
                return  # the failure to read them is reported on its own
        try:
            scope, filt = resolve_view_arguments(view, self.scope_kinds(view), parsed, self.names)
        except CommandError as exc:
            self.notify(str(exc), title="Command", severity="error", markup=False)
            return
        self.open_view(cast(ViewName, view), scope=scope, filter_text=filt)

    # -- the task engine and its worker -------------------------------------------------------

    @work(name="reading the task kinds", group="task-kinds", exit_on_error=False)
    async def load_task_kinds(self) -> None:
        """The engine loads every task plugin when first used (imports: half a second or
        more): in a thread, so the first view paints at once. Then the worker is looked
        at (and started), and again every :attr:`WORKER_POLL_SECONDS`."""
        try:
            self.task_kinds = await asyncio.to_thread(lambda: self.cockpit.tasks.kinds())
            if self.screen.is_mounted:
                self.screen.refresh_bindings()
        finally:
            self.check_worker(start=self.autostart_worker)
            self.set_interval(self.WORKER_POLL_SECONDS, self.check_worker)

    @work(name="looking at the task worker", group="worker", exclusive=True, exit_on_error=False)
    async def check_worker(self, start: bool = False) -> None:
        """Whether a worker runs for the store (shown in the header); with ``start``, start
        a detached one when none does (in a thread: it waits for the worker's lock)."""
        engine = self.cockpit.tasks
        if start and not self.read_only:
            status = await asyncio.to_thread(engine.start_worker)
        else:
            status = await asyncio.to_thread(engine.worker_status)
        self.set_worker_running(status.running)

    def ensure_worker(self) -> None:
        """After queueing: start a worker if this app starts them (else the header says
        whether one runs)."""
        self.check_worker(start=self.autostart_worker)

    def set_worker_running(self, running: bool) -> None:
        if running == self.worker_running:
            return
        self.worker_running = running
        for screen in self.screen_stack:
            for header in screen.query(CockpitHeader):
                header.worker = running

    def allow_change(self, what: str) -> bool:
        """Whether an action that changes something may run; in read-only mode it may not,
        and the user is told why (a key that silently does nothing is a bug report)."""
        if not self.read_only:
            return True
        self.notify(
            f"{what} is disabled: Cockpit is read-only (--read-only or read_only: true "
            "in the config)",
            title="Read-only",
            severity="warning",
            markup=False,
        )
        return False

    def open_dashboard(self) -> None:
        """The statistics dashboard (``8``, ``:dash``, ``:stats``)."""
        open_screen(self, DashboardScreen())

    @work(name="opening the statistics", group="command", exit_on_error=False)
    async def _stats_command(self, argument: str) -> None:
        """``:stats``: the dashboard; ``:stats NAME``: the charts of a server, site…"""
        if not argument.strip():
            self.open_dashboard()
            return
        try:
            scope, key = await resolve_stats_target(self.cockpit, argument)
        except CommandError as exc:
            self.notify(str(exc), title="Command", severity="error", markup=False)
            return
        open_screen(self, StatsScreen(scope, key))

    def switch_theme(self, name: str) -> None:
        try:
            theme = self.themes.get(name)
        except ThemeError as exc:
            self.notify(str(exc), title="Theme", severity="error", markup=False)
            return
        self.theme = theme.name

    # -- errors ------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The app's own workers (a ``:`` command, reading names) fail into a notification;
        a screen's workers are reported by the screen."""
        if event.state is WorkerState.ERROR and event.worker.node is self:
            self.post_message(WorkerFailed.from_worker(event.worker))

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
            ConfirmTaskScreen,
            ArgsScreen,
            Cycle,
            DashboardScreen,
            StatsScreen,
            TileGrid,
            TaskScreen,
            BatchScreen,
            TaskMenuScreen,
            LogScreen,
            LogView,
            *_VIEWS.values(),
        ]
    )


def make_app(
    cockpit: Cockpit,
    *,
    theme: str | None = None,
    read_only: bool = False,
    keymap: Mapping[str, str] | None = None,
    start_worker: bool | None = None,
    start_view: str | None = None,
) -> CockpitApp:
    """The TUI over an open :class:`Cockpit`.

    ``theme`` defaults to the config's; ``read_only`` adds to the config's; ``keymap``
    (binding id → keys) is laid over the config's. ``start_worker``: whether the app
    starts a detached task worker when none runs (default
    :attr:`CockpitApp.AUTOSTART_WORKER`; never in read-only mode). ``start_view``: the
    list the app opens on (default :attr:`CockpitApp.START_VIEW`, the overview). Raises
    :class:`ThemeError` for an unknown theme (listing the valid names) or a malformed
    theme file (naming it).
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
        start_worker=start_worker,
        start_view=start_view,
    )

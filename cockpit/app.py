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
import importlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, ClassVar, cast

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

from cockpit.messages import OpenView, Scope, ScopeKind, ViewName, WorkerFailed
from cockpit.screens.base import ViewScreen
from cockpit.screens.command import (
    CommandError,
    Names,
    ParsedCommand,
    parse_command,
    parse_log_target,
    resolve_view_arguments,
)
from cockpit.screens.resource import ResourceScreen
from cockpit.themes import APP_VARIABLES, DEFAULT_THEME, ThemeError, ThemeSet, load_themes
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.prompt import PromptBar
from cockpit.widgets.resource_table import ResourceTable

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.engine import KindInfo

__all__ = ["CockpitApp", "known_binding_ids", "make_app", "view_class"]

# The start path (``cockpit`` until the first view paints) imports Textual, the config,
# the store, the themes and the start view: every other view, the task engine and its
# plugins are imported when first used (tests/tui/test_startup_imports.py checks it).

#: The list views: name → the module and class that show it, imported when first opened.
_VIEWS: Mapping[str, tuple[str, str]] = {
    "overview": ("cockpit.screens.overview", "OverviewScreen"),
    "servers": ("cockpit.screens.servers", "ServersScreen"),
    "platforms": ("cockpit.screens.platforms", "PlatformsScreen"),
    "sites": ("cockpit.screens.sites", "SitesScreen"),
    "clients": ("cockpit.screens.clients", "ClientsScreen"),
    "backups": ("cockpit.screens.backups", "BackupsScreen"),
    "tasks": ("cockpit.screens.tasks", "TasksScreen"),
    "schedules": ("cockpit.screens.schedules", "SchedulesScreen"),
    "audit": ("cockpit.screens.tasks", "AuditScreen"),
    "problems": ("cockpit.screens.problems", "ProblemsScreen"),
}


def view_class(view: str) -> type[ResourceScreen]:
    """The screen class of the list view ``view`` (its module imported on first use)."""
    module, name = _VIEWS[view]
    screen = getattr(importlib.import_module(module), name)
    if not (isinstance(screen, type) and issubclass(screen, ResourceScreen)):
        raise TypeError(f"{module}.{name} is not a list view")
    return screen


def _entity_provider() -> type[Provider]:
    from cockpit.screens.palette import EntityProvider

    return EntityProvider


def _action_provider() -> type[Provider]:
    from cockpit.screens.palette import ActionProvider

    return ActionProvider


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
        _entity_provider,
        _action_provider,
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
        #: The view held keys wait for the first rows of, and since when.
        self._rows_wait: tuple[Screen[object], float] | None = None
        #: Since when the current wait (for a key to settle, a view to open) lasts.
        self._wait_since = 0.0
        self._key_in_flight: events.Key | None = None
        #: Where the key in flight went, and where the next step of its trip is queued.
        self._key_origin: DOMNode | None = None
        self._key_at: DOMNode | None = None
        self._key_trips = 0
        #: A key did not settle in time: the held ones go without waiting.
        self._key_stuck = False
        #: The prompt the enter or esc in flight is on its way to close, then is closing.
        self._leaving_bar: PromptBar | None = None
        self._closing_bar: PromptBar | None = None
        self._releasing = False
        self._poll_queued = False
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
    # Textual forwards a key to the focused widget; it bubbles up through the widget's
    # parents, one message queue each, to the app, which resolves the bindings. What the
    # key does may take more messages (enter in a prompt: the input submits, the prompt
    # posts Submitted, the view closes the prompt and focuses the list), a worker (":sites"
    # opens the view from one) and a new view is built a few messages later. On a loaded
    # machine any of these steps can take long, and the next key must not overtake them:
    # keys typed in one go (a paste, tmux send-keys, a typist over slow SSH: "3jj␣",
    # "3/golf", "/web⏎j") each act on what the keys before them did. So keys are dispatched
    # one at a time, and the next one waits until the one before has *settled*:
    #
    # 1. its trip is over: a callback queued behind it at the widget that got it, then at
    #    each parent in turn up to the app, has run (by then a widget consumed it or the
    #    app ran its binding); then a second trip, so that what it posted on the way (an
    #    input's Submitted, the list's OpenView) has been handled too;
    # 2. a prompt it submitted or cancelled has been handled by its view, which took the
    #    focus back (:attr:`PromptBar.pending`);
    # 3. no worker that opens a view for a key runs (:attr:`KEY_EFFECT_GROUPS`);
    # 4. the current view is mounted and has the focus;
    #
    # and the view has its first rows (a key typed ahead acts on them, not on an empty
    # list). None of this is a guess at how long a step takes; other workers (a reload, the
    # overview's read) are not waited for, so keys answer while they run. Only a safety
    # net remains: a key that has not settled after :attr:`KEY_SETTLE_LIMIT` (a handler
    # stuck on something), or a view without rows after :attr:`KEY_HOLD_LIMIT`, lets the
    # keys after it go, in order, to the list, never into a prompt that is closing.

    #: Held keys wait this long at most for a view's first rows (from when it is built).
    KEY_HOLD_LIMIT: ClassVar[float] = 10.0
    #: Held keys wait this long at most for the key before them to settle (a safety net).
    KEY_SETTLE_LIMIT: ClassVar[float] = 10.0
    #: Groups of the workers that open a view for a key (held keys wait until it is open).
    KEY_EFFECT_GROUPS: ClassVar[frozenset[str]] = frozenset({"command", "task-args"})
    #: Trips behind a key up to the app before it can settle (see above).
    _KEY_TRIPS: ClassVar[int] = 2

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if not self._held_keys and self._key_in_flight is None:
                self._wait_since = time.monotonic()
            self._held_keys.append(event)
            await self._release_keys()
            return
        await super().on_event(event)

    @property
    def keys_pending(self) -> bool:
        """Whether keys typed are still held, or the last one has not settled yet."""
        if self._held_keys:
            return True
        return self._key_in_flight is not None and not (self._key_stuck or self._key_settled())

    async def _release_keys(self) -> None:
        """Dispatch the held keys that may go now, in order (runs in the app's queue)."""
        if self._releasing:
            return
        self._releasing = True
        try:
            now = time.monotonic()
            flying = self._key_in_flight
            if flying is not None:
                at = self._key_at
                if at is not None and at is not self and not _alive(at):
                    # Closed (a view popped) with the step queued behind the key: go on.
                    self._key_follow(flying, at.parent or self)
                if self._key_settled():
                    self._key_in_flight = None
                    self._key_stuck = False
                    self._leaving_bar = self._closing_bar = None
                    self._wait_since = now
                elif now - self._wait_since > self.KEY_SETTLE_LIMIT and (
                    not self._key_stuck or self._leaving_bar is not None
                ):
                    # Stuck: what is held goes now, in order, and not into a prompt that
                    # is closing: the list takes it (see _key_target).
                    self._key_stuck = True
                    if self._leaving_bar is not None:
                        self._closing_bar, self._leaving_bar = self._leaving_bar, None
            # Once stuck, keys go one after the other without settling, except past an
            # enter or esc in a prompt: until it has reached the app, what follows waits
            # (moving the focus earlier would change what that enter does).
            while self._held_keys and (
                self._key_in_flight is None or (self._key_stuck and self._leaving_bar is None)
            ):
                if not (self._key_stuck or self._ready_for_key(now)):
                    break
                await self._dispatch_key(self._held_keys.pop(0))
                self._wait_since = now
            if self._held_keys:
                if self._key_timer is None:
                    self._key_timer = self.set_interval(0.01, self._poll_keys)
            elif self._key_timer is not None:
                self._key_timer.stop()
                self._key_timer = None
        finally:
            self._releasing = False

    def _poll_keys(self) -> None:
        # The timer runs in a task of its own: the keys are released in the app's queue,
        # in order with the keys arriving there.
        if not self._poll_queued:
            self._poll_queued = self.call_later(self._polled_keys)

    async def _polled_keys(self) -> None:
        self._poll_queued = False
        await self._release_keys()

    async def _dispatch_key(self, event: events.Key) -> None:
        target = self._key_target()
        await super().on_event(event)  # a priority binding, or forwarded to ``target``
        if event.is_forwarded:
            self._key_in_flight = event
            self._key_origin = target
            self._key_trips = self._KEY_TRIPS
            bar = _prompt_of(target)
            if bar is not None and self._leaves_prompt(event.key):
                self._leaving_bar = bar
            self._key_follow(event, target)

    def _key_target(self) -> DOMNode:
        """Where the next key goes: the focused widget, unless that is a prompt that is
        closed or closing (its enter or esc not handled yet); then the view's list."""
        screen = self.screen
        focused = screen.focused
        bar = _prompt_of(focused)
        closing = bar is not None and (bar.pending or not bar.is_open or bar is self._closing_bar)
        if (focused is None or closing) and isinstance(screen, ViewScreen):
            main = screen.main_widget()
            if main is not None and main.focusable:
                screen.set_focus(main)
        return self.focused or screen

    def _leaves_prompt(self, key: str) -> bool:
        """Whether ``key`` submits or cancels a prompt (enter; esc unless remapped)."""
        cancel = self._keymap.get("prompt.cancel", "escape")
        return key == "enter" or key in cancel.split(",")

    def _key_follow(self, event: events.Key, node: DOMNode) -> None:
        """Queue the next step of ``event``'s trip behind what ``node`` has queued."""
        while node is not self and not _alive(node):
            node = node.parent or self
        self._key_at = node
        if not node.call_later(self._key_step, event, node):
            self._key_at = None  # the app is closing

    async def _key_step(self, event: events.Key, node: DOMNode) -> None:
        if event is not self._key_in_flight or node is not self._key_at:
            return  # a key let go by the safety limit
        if node is not self:
            self._key_follow(event, node.parent or self)
            return
        self._key_trips -= 1
        if self._leaving_bar is not None:
            # The enter or esc reached the app: its prompt is closing.
            self._closing_bar, self._leaving_bar = self._leaving_bar, None
            if self._key_stuck:
                await self._release_keys()
        if self._key_trips > 0 and self._key_origin is not None:
            self._key_follow(event, self._key_origin)
            return
        self._key_at = None
        await self._release_keys()

    def _key_settled(self) -> bool:
        """Whether the key in flight has done what it does (see above)."""
        if self._key_at is not None:
            return False
        bar = _prompt_of(self._key_origin)
        if bar is not None and bar.pending:
            return False
        return not self._key_effect_running() and self._screen_built()

    def _key_effect_running(self) -> bool:
        return any(
            worker.group in self.KEY_EFFECT_GROUPS
            and worker.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for worker in self.workers
        )

    def _ready_for_key(self, now: float) -> bool:
        if self._key_effect_running() or not self._screen_built():
            return now - self._wait_since > self.KEY_SETTLE_LIMIT
        if self._screen_ready():
            return True
        screen = self.screen
        if self._rows_wait is None or self._rows_wait[0] is not screen:
            self._rows_wait = (screen, now)
        return now - self._rows_wait[1] > self.KEY_HOLD_LIMIT

    def _screen_built(self) -> bool:
        screen = self.screen
        if not screen.is_mounted:
            return False
        return not isinstance(screen, ViewScreen) or screen.focused is not None

    def _screen_ready(self) -> bool:
        screen = self.screen
        return not isinstance(screen, ViewScreen) or screen.ready_for_keys()

    def get_default_screen(self) -> Screen[None]:
        return view_class(self.start_view)()

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
        if view in ("site", "task", "batch", "backup", "schedule"):
            if key is None:
                return
            from cockpit.screens.backup import BackupScreen
            from cockpit.screens.batch import BatchScreen
            from cockpit.screens.schedule import ScheduleScreen
            from cockpit.screens.site import SiteScreen
            from cockpit.screens.task import TaskScreen

            if view == "site":
                screen: ViewScreen = SiteScreen(key)
            elif view == "schedule":
                screen = ScheduleScreen(key)
            elif not (key.isascii() and key.isdigit()):
                return
            elif view == "task":
                screen = TaskScreen(int(key))
            elif view == "backup":
                screen = BackupScreen(int(key))
            else:
                screen = BatchScreen(int(key), filter_text=filter_text)
        else:
            screen = view_class(view)(scope=scope, filter_text=filter_text)
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
        from cockpit.screens.help import HelpScreen, describe_bindings

        self.push_screen(HelpScreen(describe_bindings(self, screen.active_bindings), title))

    def action_command(self) -> None:
        screen = self.screen
        if isinstance(screen, ViewScreen):
            screen.open_command()

    def scope_kinds(self, view: str) -> tuple[ScopeKind, ...]:
        """The scopes a view takes on the command line (``:sites prod``)."""
        return view_class(view).SCOPES if view in _VIEWS else ()

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
        elif parsed.name in ("backup", "schedule"):
            self._detail_command(parsed.name, parsed.argument)
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
        from cockpit.screens.log import LogScreen

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

    def _detail_command(self, view: str, argument: str) -> None:
        """``:backup ID``, ``:schedule NAME``: the detail; bare, the list."""
        key = argument.strip().removeprefix("#")
        if not key:
            self.open_view("backups" if view == "backup" else "schedules")
        elif view == "schedule":
            self.open_view("schedule", key=key)
        elif key.isascii() and key.isdigit():
            self.open_view("backup", key=key)
        else:
            self.notify(
                f":backup takes a backup id (:backup 7), not {argument!r}",
                title="Command",
                severity="error",
                markup=False,
            )

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
        from cockpit.screens.dashboard import DashboardScreen
        from cockpit.screens.stats import open_screen

        open_screen(self, DashboardScreen())

    @work(name="opening the statistics", group="command", exit_on_error=False)
    async def _stats_command(self, argument: str) -> None:
        """``:stats``: the dashboard; ``:stats NAME``: the charts of a server, site…"""
        if not argument.strip():
            self.open_dashboard()
            return
        from cockpit.screens.stats import StatsScreen, open_screen, resolve_stats_target

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


def _alive(node: DOMNode) -> bool:
    """Whether ``node`` still processes its messages (a step queued there will run)."""
    return node.is_running and not node._closing


def _prompt_of(node: DOMNode | None) -> PromptBar | None:
    """The prompt ``node`` is part of (its input), if any."""
    while node is not None:
        if isinstance(node, PromptBar):
            return node
        node = node.parent
    return None


def _binding_ids(classes: Iterable[type[DOMNode]]) -> set[str]:
    ids: set[str] = set()
    for cls in classes:
        for klass in cls.__mro__:
            for binding in getattr(klass, "BINDINGS", ()):
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    return ids


def known_binding_ids() -> set[str]:
    """Every binding id a keymap may remap (imports every view)."""
    from cockpit.screens.actions import TaskMenuScreen
    from cockpit.screens.args import ArgsScreen, Cycle
    from cockpit.screens.backup import BackupScreen
    from cockpit.screens.batch import BatchScreen
    from cockpit.screens.confirm import ConfirmTaskScreen
    from cockpit.screens.dashboard import DashboardScreen
    from cockpit.screens.help import HelpScreen
    from cockpit.screens.log import LogScreen
    from cockpit.screens.schedule import ScheduleScreen
    from cockpit.screens.site import SiteScreen
    from cockpit.screens.stats import StatsScreen
    from cockpit.screens.task import TaskScreen
    from cockpit.widgets.log_view import LogView
    from cockpit.widgets.tiles import TileGrid

    return _binding_ids(
        [
            CockpitApp,
            ResourceTable,
            HelpScreen,
            PromptBar,
            SiteScreen,
            BackupScreen,
            ScheduleScreen,
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
            *(view_class(view) for view in _VIEWS),
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

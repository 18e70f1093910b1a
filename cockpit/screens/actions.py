"""Batch actions on lists of targets (servers, platforms, sites): a task on the marked rows
or, with none marked, on the cursor row.

The task kinds come from the engine (:meth:`Engine.kinds`: the built-in ones and every
kind a ``cockpit.tasks`` plugin registers), read when the list opens: ``t`` lists the
kinds for the list's target type, and a kind whose verb has a key of its own
(:data:`VERB_KEYS`: ``b`` for ``site.backup``…) runs from that key.

A kind that takes arguments (its declared params) asks for them in a form
(:class:`~cockpit.screens.args.ArgsScreen`) first when one is required or the task is
dangerous; otherwise the confirmation offers ``a`` to set them. The form checks them
with the kind's own check (the one queueing runs) and suggests platform, server and
backup names from the store. A kind whose param names something new (``unique``: a
clone's domain) runs on one target only; with more marked it is refused.

Either way one confirmation (:class:`~cockpit.screens.confirm.ConfirmTaskScreen`) shows
the task, its arguments, the target count, the danger level and, on a toggle, the exact
targets; then the targets are resolved from the marks and queued as ONE batch with the
arguments through the core, and the batch's progress view opens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label

from cockpit.engine import KindInfo, TargetKind
from cockpit.messages import BatchQueued, OpenView
from cockpit.model import ValidationError
from cockpit.screens.args import ArgsScreen
from cockpit.screens.base import ViewScreen, changing
from cockpit.screens.confirm import ConfirmTaskScreen, Danger, TaskConfirmation
from cockpit.screens.resource import ResourceScreen
from cockpit.textsafe import sanitize
from cockpit.widgets.marks import Selection, resolve
from cockpit.widgets.resource_table import Column, ListSource, ResourceTable, Row, Tone, cell

__all__ = [
    "DANGEROUS_VERBS",
    "VERB_KEYS",
    "TargetListScreen",
    "TaskLauncher",
    "TaskMenuScreen",
    "asks_args_first",
    "danger_of",
    "verb_of",
]

#: Verbs of tasks that destroy or replace data: the count (or a word) must be typed.
DANGEROUS_VERBS: Final = frozenset(
    {"delete", "destroy", "drop", "migrate", "purge", "reinstall", "restore", "wipe"}
)
#: Verbs of tasks that only read or copy (when the kind is idempotent too): ``y``/enter.
SAFE_VERBS: Final = frozenset({"backup", "check", "facts", "ping", "stats", "status", "verify"})

#: Verbs that have a key of their own on a list (active only when such a kind exists for
#: the list's target type). Each is a binding with id ``task.<verb>``, remappable.
VERB_KEYS: Final = (
    ("backup", "b"),
    ("verify", "c"),
    ("ping", "p"),
    ("enable", "e"),
    ("disable", "x"),
    ("install", "i"),
    ("delete", "D"),
    ("restore", "R"),
    ("migrate", "M"),
)


def verb_of(kind: str) -> str:
    """``site.backup`` → ``backup``."""
    return kind.rsplit(".", 1)[-1]


def danger_of(info: KindInfo) -> Danger:
    """How carefully a kind is confirmed: by its verb, and whether re-running it is harmless."""
    verb = verb_of(info.name)
    if verb in DANGEROUS_VERBS or DANGEROUS_VERBS.intersection(verb.split("-")):
        return Danger.DANGEROUS  # site.backup-delete too
    if verb in SAFE_VERBS and info.idempotent:
        return Danger.SAFE
    return Danger.CAUTION


def asks_args_first(info: KindInfo) -> bool:
    """Whether the kind's arguments are asked for before its confirmation: it has a
    required one, or it is dangerous and takes some (``…`` after its name in the menu)."""
    if any(p.required for p in info.params):
        return True
    return bool(info.params) and danger_of(info) is Danger.DANGEROUS


def describe(info: KindInfo) -> str:
    text = info.description
    if info.steps:
        text += f" (steps: {', '.join(info.steps)})"
    if not info.idempotent:
        text += "; never re-run blindly after a crash"
    return text


_DANGER_TONE: Final[dict[Danger, Tone | None]] = {
    Danger.SAFE: None,
    Danger.CAUTION: "warn",
    Danger.DANGEROUS: "bad",
}

_MENU_COLUMNS: Final = (
    Column("key", "Key", width=3, priority=90),
    Column("kind", "Task", width=12, max_width=28, priority=100),
    Column("danger", "Danger", width=9, priority=80),
    Column("description", "What it does", width=16, flex=1, priority=70),
)


class TaskMenuScreen(ModalScreen[str | None]):
    """``t``: the task kinds for a list's targets; ``enter`` picks one, ``esc`` cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="menu.cancel"),
    ]

    DEFAULT_CSS = """
    TaskMenuScreen {
        align: center middle;
        & > Vertical {
            width: 90;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            border: round $primary;
            border-title-color: $text-primary;
            background: $surface;
            padding: 0 1;
        }
        & #menu-title { text-style: bold; }
        & ResourceTable { height: 4; border: none; }
        & #menu-keys { color: $text-muted; }
    }
    """

    def __init__(self, kinds: Sequence[KindInfo], count: int, noun: str) -> None:
        super().__init__()
        self.kinds = list(kinds)
        self.count = count
        self.noun = noun

    def compose(self) -> ComposeResult:
        keys = dict(VERB_KEYS)
        rows = [
            Row(
                key=info.name,
                cells=(
                    cell(keys.get(verb_of(info.name), ""), "accent"),
                    cell(info.name + ("…" if asks_args_first(info) else "")),
                    cell(danger_of(info).value, _DANGER_TONE[danger_of(info)]),
                    cell(describe(info), "muted"),
                ),
            )
            for info in self.kinds
        ]

        async def load() -> list[Row]:
            return rows

        noun = self.noun if self.count != 1 else self.noun.removesuffix("s")
        with Vertical() as box:
            box.border_title = " run a task "
            yield Label(Text(f"on {self.count:,} {sanitize(noun)}"), id="menu-title")
            yield ResourceTable(
                _MENU_COLUMNS,
                ListSource(load, _MENU_COLUMNS),
                noun="task kinds",
                empty_text="no task kind acts on these",
                id="menu",
            )
            yield Label(Text("enter choose · esc cancel · j/k move"), id="menu-keys")

    def on_mount(self) -> None:
        table = self.query_one("#menu", ResourceTable)
        table.styles.height = min(len(self.kinds), 14) + 1
        table.focus()

    @on(ResourceTable.Selected, "#menu")
    def _chosen(self, event: ResourceTable.Selected) -> None:
        event.stop()
        self.dismiss(event.row.key)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TaskLauncher(ViewScreen):
    """What queues a task from a view: the arguments form, the one confirmation, the batch
    through the core. A list queues on its marked rows; a detail view (a backup's) on the
    one target it shows (:meth:`task_targets`)."""

    #: What the targets are, for the engine.
    TARGET: ClassVar[TargetKind]

    @property
    def noun(self) -> str:
        """The targets, in the confirmation ("sites")."""
        return f"{self.TARGET.value}s"

    async def task_targets(self, selection: Selection) -> list[str]:
        """The targets of ``selection`` (by default its explicit keys)."""
        return list(selection.keys)

    def task_queued(self) -> None:
        """After the batch was queued (a list clears its marks)."""

    def start_task(self, info: KindInfo, selection: Selection) -> None:
        """The arguments first when the kind needs some (or is dangerous and takes some),
        then the confirmation; a kind making something new per target takes one target."""
        unique = next((p for p in info.params if p.unique), None)
        if unique is not None and selection.count != 1:
            one = self.noun.removesuffix("s")
            self.notify(
                f"{info.name} makes a new {unique.name} for its target: run it on one {one} "
                f"at a time, not on {selection.count:,} (unmark all but one)",
                title="Task",
                severity="warning",
                markup=False,
            )
            return
        if asks_args_first(info):
            self.ask_args(info, selection)
        else:
            self.confirm_task(info, selection)

    async def _names_for(self, info: KindInfo, selection: Selection) -> dict[str, list[str]]:
        """The names a form suggests, by param kind: platforms, servers, the backups of
        the one target site."""
        kinds = {p.kind for p in info.params}
        names: dict[str, list[str]] = {}
        if "platform" in kinds:
            names["platform"] = [p.name for p in await self.cockpit.platforms()]
        if "server" in kinds:
            names["server"] = [s.name for s in await self.cockpit.servers()]
        if "backup" in kinds and self.TARGET is TargetKind.SITE and selection.count == 1:
            (site, *_) = await self.task_targets(selection)
            ids = sorted((b.id for b in await self.cockpit.backups(site) if b.id), reverse=True)
            names["backup"] = [str(i) for i in ids]
        return names

    @work(name="asking for the task's arguments", group="task-args", exit_on_error=False)
    async def ask_args(
        self, info: KindInfo, selection: Selection, values: Mapping[str, Any] | None = None
    ) -> None:
        """The form for ``info``'s params (filled with ``values``); then the confirmation."""
        try:
            kind = self.cockpit.tasks.registry.get(info.name)
            names = await self._names_for(info, selection)
        except ValidationError as exc:
            self.notify(str(exc), title="Task", severity="error", markup=False)
            return

        def submitted(args: dict[str, Any] | None) -> None:
            if args is not None:
                self.confirm_task(info, selection, args)

        form = ArgsScreen(
            info, selection.count, self.noun, kind.validate, names=names, values=values
        )
        self.app.push_screen(form, submitted)

    def confirm_task(
        self, info: KindInfo, selection: Selection, args: Mapping[str, Any] | None = None
    ) -> None:
        """Ask once; on yes, queue the batch (with ``args``); ``a`` asks for the args."""

        async def targets() -> Sequence[str]:
            return await self.task_targets(selection)

        danger = danger_of(info)
        # A dangerous task on one target: its name is typed, not "1".
        one = selection.keys[0] if selection.count == 1 and len(selection.keys) == 1 else None
        request = TaskConfirmation(
            info.name,
            selection.count,
            noun=self.noun,
            danger=danger,
            description=describe(info),
            word=one if danger is Danger.DANGEROUS else None,
            targets=targets,
            args=dict(args or {}),
            has_params=bool(info.params),
        )
        screen = ConfirmTaskScreen(request)

        def answered(yes: bool | None) -> None:
            if yes:
                self.queue_batch(info.name, selection, request.args)
            elif screen.wants_args:
                self.ask_args(info, selection, request.args)

        self.app.push_screen(screen, answered)

    @work(name="queueing the batch", group="queue-batch", exit_on_error=False)
    async def queue_batch(
        self, kind: str, selection: Selection, args: Mapping[str, Any] | None = None
    ) -> None:
        targets = await self.task_targets(selection)
        app = self.cockpit_app
        try:
            batch = await self.cockpit.tasks.queue(
                kind,
                targets,
                dict(args or {}),
                start_worker=app.autostart_worker and not app.read_only,
            )
        except ValidationError as exc:
            self.notify(str(exc), title="Task", severity="error", markup=False)
            return
        app.check_worker()  # the header says whether a worker runs to take the batch
        self.task_queued()
        self.post_message(BatchQueued(batch.id, kind, len(batch.task_ids)))
        self.post_message(OpenView("batch", key=str(batch.id)))


class TargetListScreen(ResourceScreen, TaskLauncher):
    """A list whose rows are task targets: marks, ``t`` and the verb keys queue batches."""

    MARKABLE = True
    #: What the rows are, for the engine.
    TARGET: ClassVar[TargetKind]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "task_menu", "Task", id="task.menu"),
        *(
            Binding(key, f"run_verb('{verb}')", verb.capitalize(), show=False, id=f"task.{verb}")
            for verb, key in VERB_KEYS
        ),
    ]

    def task_kinds(self) -> list[KindInfo]:
        """The registered kinds that act on this list's rows (read from the engine when the
        app starts; none until then)."""
        kinds = self.cockpit_app.task_kinds or []
        return [info for info in kinds if info.target is self.TARGET]

    def _kind_for(self, verb: str) -> KindInfo | None:
        name = f"{self.TARGET.value}.{verb}"
        return next((info for info in self.task_kinds() if info.name == name), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("task_menu", "run_verb"):
            if self.typing():
                return False
            if action == "run_verb":
                verb = str(parameters[0]) if parameters else ""
                return self._kind_for(verb) is not None
        return super().check_action(action, parameters)

    @changing("queueing a task")
    def action_task_menu(self) -> None:
        selection = self.selection
        if selection.is_empty:
            self.notify("nothing to run a task on", title="Task", markup=False)
            return
        kinds = self.task_kinds()
        if self.cockpit_app.task_kinds is None:
            self.notify("the task kinds are still being read", title="Task", markup=False)
            return
        if not kinds:
            self.notify(
                f"no task kind acts on {self.TARGET.value}s (see 'cockpit task kinds')",
                title="Task",
                markup=False,
            )
            return

        def chosen(name: str | None) -> None:
            info = next((k for k in self.task_kinds() if k.name == name), None)
            if info is not None:
                self.start_task(info, selection)

        self.app.push_screen(TaskMenuScreen(kinds, selection.count, self.noun), chosen)

    @changing("queueing a task")
    def action_run_verb(self, verb: str) -> None:
        info = self._kind_for(verb)
        selection = self.selection
        if info is None or selection.is_empty:
            return
        self.start_task(info, selection)

    async def task_targets(self, selection: Selection) -> list[str]:
        return await resolve(self.table.source, selection)

    def task_queued(self) -> None:
        if self.table.marks:
            self.table.action_clear_marks()

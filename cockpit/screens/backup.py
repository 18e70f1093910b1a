"""A backup's detail view (``enter`` on the backups list, ``:backup ID``): which site it is
of, where it is, when and why it was made, how big, its checksum, whether it is the one a
restore takes by default (the site's newest), and the task that made it.

``s`` opens its site, ``t`` the task that made it; ``R`` restores the site from it
(``site.restore`` with ``backup=ID``: the arguments form, then the confirmation that asks
for the site's name), ``D`` deletes it (``site.backup-delete``); vim keys scroll.

Which task made a backup is not a column of the store: a tar archive's name carries the
tag of the task that made it (``…-t42.tar``); else the site's last ``site.backup`` tasks are
searched for the summary that names the backup (``backup #7: …``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from cockpit.engine import KindInfo, TargetKind, Task
from cockpit.messages import OpenView
from cockpit.model import Backup, Platform, Site
from cockpit.screens.actions import TaskLauncher, danger_of
from cockpit.screens.backups import human_size
from cockpit.screens.base import ViewScreen, changing
from cockpit.screens.confirm import Danger
from cockpit.screens.detail import DetailScreen
from cockpit.screens.tasks import clock, outcome
from cockpit.textsafe import sanitize
from cockpit.widgets.marks import Selection
from cockpit.widgets.scrolling import scroll_bindings

__all__ = [
    "BackupDetail",
    "BackupScreen",
    "Sheet",
    "made_by_tag",
    "open_listed_backup",
    "render_backup",
]

#: The site's tasks searched for the one whose summary names the backup.
TASKS_SEARCHED: Final = 50
#: The tag of the task that made a tar archive, in its name: ``…-t42.tar``, ``…-t42-safety.tar``.
_TAG_RE: Final = re.compile(r"-t([0-9]{1,12})(?:-[a-z]+)?\.tar$")
#: The task kind that makes backups (its summary names the one it made).
BACKUP: Final = "site.backup"
#: The task kinds the keys run.
RESTORE: Final = "site.restore"
DELETE: Final = "site.backup-delete"


def made_by_tag(location: str) -> int | None:
    """The id of the task named in a backup's file name, if it names one."""
    found = _TAG_RE.search(location)
    return int(found.group(1)) if found else None


def open_listed_backup(screen: ViewScreen, key: str) -> None:
    """``enter`` on the backups list: the detail of the backup of the row ``key`` (``<site>
    <location>``: a domain holds no space), found among the site's backups; its site when
    it is gone meanwhile."""
    site, _, location = key.partition(" ")

    async def find() -> None:
        backups = await screen.cockpit.backups(site)
        found = next((b for b in backups if b.location == location and b.id), None)
        if found is not None:
            screen.post_message(OpenView("backup", key=str(found.id)))
        else:
            screen.post_message(OpenView("site", key=site))

    if site:
        # In the app's "command" group: keys typed after enter wait for the view it opens.
        screen.run_worker(find(), name="opening the backup", group="command", exit_on_error=False)


class Sheet:
    """A detail as headings and label/value rows; a long value (a path, a checksum) folds
    within its column instead of breaking the layout. Values are sanitised and plain
    text, never markup."""

    def __init__(self, label_width: int = 11) -> None:
        self.label_width = label_width
        self.parts: list[RenderableType] = []
        self._grid: Table | None = None

    def _close(self) -> None:
        if self._grid is not None:
            self.parts.append(self._grid)
            self._grid = None

    def heading(self, title: str) -> None:
        self._close()
        self.parts.append(Text(("\n" if self.parts else "") + sanitize(title), "bold underline"))

    def field(self, label: str, value: str, style: str = "") -> None:
        if self._grid is None:
            self._grid = Table.grid(padding=(0, 1))
            self._grid.add_column(width=self.label_width + 1, no_wrap=True)
            self._grid.add_column(ratio=1, overflow="fold")
        self._grid.add_row(Text(f" {label}", "bold"), Text(sanitize(value), style, overflow="fold"))

    def note(self, text: str, style: str = "italic") -> None:
        self._close()
        self.parts.append(Text(f"   {text}", style))

    def render(self) -> Group:
        self._close()
        return Group(*self.parts)


@dataclass(frozen=True, slots=True)
class BackupDetail:
    backup: Backup | None
    site: Site | None = None
    platform: Platform | None = None
    #: The site's newest backup (what site.restore takes without ``backup=``).
    newest: Backup | None = None
    #: How many backups the site has.
    site_backups: int = 0
    task: Task | None = None


def render_backup(backup_id: int, detail: BackupDetail) -> RenderableType:
    """The detail (stored values are sanitised, never read as markup)."""
    backup = detail.backup
    if backup is None:
        return Text(f"No backup {backup_id} in the store (deleted meanwhile?)", "italic")
    sheet = Sheet()
    heading, field = sheet.heading, sheet.field

    heading(f"Backup {backup_id}")
    field("Site", backup.site, "bold")
    site = detail.site
    if site is None:
        field("Platform", "(the site is no longer in the store)", "italic")
    else:
        platform = detail.platform
        where = site.platform
        if platform is not None:
            where += f"  ({platform.type.value}, on {platform.server})"
        field("Platform", where)
    field("Server", backup.server or "-")
    field("Made", backup.created.strftime("%Y-%m-%d %H:%M:%S %Z").strip())
    field("Why", backup.reason.value)
    field("Backend", backup.backend)
    field("Size", f"{human_size(backup.size)}  ({backup.size:,} bytes)")
    field("SHA-256", backup.sha256)
    field("Path", backup.location)
    # The store records neither the packing nor the manifest: both are in the archive.
    field("Manifest", "in the backup itself (read by a restore), not in the store", "dim")

    heading("Restore")
    newest = detail.newest
    if newest is not None and newest.id == backup.id:
        field("Newest", f"yes: the newest of the site's {detail.site_backups}", "bold")
        field("", "(what a restore takes when no backup is named)", "dim")
    elif newest is not None:
        when = newest.created.strftime("%Y-%m-%d %H:%M")
        field("Newest", f"no: backup {newest.id} of {when} is newer")
    else:
        field("Newest", "-")

    heading("Made by")
    task = detail.task
    if task is None:
        sheet.note("no task on record names this backup")
    else:
        field("Task", f"{task.id}  {task.kind}  {task.state.value}", "bold")
        field("Queued", f"{clock(task.created_at)} by {task.queued_by}")
        field("Summary", outcome(task))
    return sheet.render()


class BackupScreen(DetailScreen[BackupDetail], TaskLauncher):
    """One backup, read in a worker when the view opens (and on ctrl+r)."""

    TARGET: ClassVar[TargetKind] = TargetKind.SITE

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("backup"),
        Binding("s", "open_site", "Site", id="backup.site"),
        Binding("t", "open_task", "Task", id="backup.task"),
        Binding("R", "run('restore')", "Restore", id="backup.restore"),
        Binding("D", "run('delete')", "Delete", id="backup.delete"),
    ]

    DEFAULT_CSS = """
    BackupScreen #detail { border: round $primary; border-title-color: $text-primary; }
    BackupScreen #body { padding: 0 1; }
    """

    def __init__(self, backup_id: int) -> None:
        super().__init__()
        self.backup_id = backup_id

    @property
    def view_key(self) -> str:
        return f"backup={self.backup_id}"

    @property
    def crumb(self) -> str:
        return f"backup {self.backup_id}"

    @property
    def noun(self) -> str:
        return "sites"

    @property
    def shown(self) -> Backup | None:
        return self.detail.backup if self.detail is not None else None

    @work(name="loading the backup", group="backup-detail", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        cockpit = self.cockpit
        backup = await cockpit.backup(self.backup_id)
        if backup is None:
            self.post_message(self.Loaded(BackupDetail(None)))
            return
        site = await cockpit.site(backup.site)
        platform = await cockpit.platform(site.platform) if site is not None else None
        backups: Sequence[Backup] = await cockpit.backups(backup.site)
        task = await self._made_by(backup)
        newest = backups[0] if backups else None
        detail = BackupDetail(backup, site, platform, newest, len(backups), task)
        self.post_message(self.Loaded(detail))

    async def _made_by(self, backup: Backup) -> Task | None:
        engine = self.cockpit.tasks
        tagged = made_by_tag(backup.location)
        if tagged is not None:
            task = await engine.task(tagged)
            if task is not None and task.target.key == backup.site:
                return task
        # site.backup's summary: "backup #7: 42.0 MiB at …" (a restore's names the backup
        # it restored, a delete's the one it deleted: neither made it).
        made = f"backup #{backup.id}:"
        for task in await engine.tasks(target=backup.site, kind=BACKUP, limit=TASKS_SEARCHED):
            if task.result.startswith(made):
                return task
        return None

    def on_screen_resume(self) -> None:
        """Back from its site, a task or a batch (a delete?): read again."""
        super().on_screen_resume()
        if self.detail is not None:
            self.load()

    def render_detail(self, detail: BackupDetail) -> RenderableType:
        return render_backup(self.backup_id, detail)

    # -- keys ------------------------------------------------------------------------------

    def _kind(self, verb: str) -> KindInfo | None:
        name = RESTORE if verb == "restore" else DELETE if verb == "delete" else None
        kinds = self.cockpit_app.task_kinds or []
        return next((info for info in kinds if info.name == name), None)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        backup = self.shown
        if action == "open_site":
            return backup is not None
        if action == "open_task":
            return self.detail is not None and self.detail.task is not None
        if action == "run":
            if backup is None or self.detail is None or self.detail.site is None:
                return False
            return self._kind(str(parameters[0]) if parameters else "") is not None
        return super().check_action(action, parameters)

    def action_open_site(self) -> None:
        backup = self.shown
        if backup is not None:
            self.post_message(OpenView("site", key=backup.site))

    def action_open_task(self) -> None:
        task = self.detail.task if self.detail is not None else None
        if task is not None:
            self.post_message(OpenView("task", key=str(task.id)))

    @changing("queueing a task")
    def action_run(self, verb: str) -> None:
        """``R``/``D``: the task on the backup's site with ``backup=ID``, through the same
        form and confirmation as a list's."""
        info = self._kind(verb)
        backup = self.shown
        if info is None or backup is None:
            return
        selection = Selection(keys=(backup.site,), count=1)
        args: dict[str, Any] = {"backup": self.backup_id}
        # As on a list: a kind that takes params and is dangerous (both are) asks for them
        # first, here with the backup filled in; then the one confirmation.
        if any(p.required for p in info.params) or (
            info.params and danger_of(info) is Danger.DANGEROUS
        ):
            self.ask_args(info, selection, args)
        else:
            self.confirm_task(info, selection, args)

"""A site's detail view: the site, where it runs, its database, its aliases, its backups,
its last tasks.

``p``, ``s`` and ``c`` jump to the site's platform, server and client, ``T`` to its tasks;
vim keys scroll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import RenderableType
from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType

from cockpit.engine import Task
from cockpit.messages import OpenView, Scope
from cockpit.model import Backup, Platform, Server, ServiceKind, Site
from cockpit.screens.backups import human_size
from cockpit.screens.detail import DetailScreen
from cockpit.screens.tasks import clock, outcome
from cockpit.textsafe import sanitize
from cockpit.widgets.header import environment_tone
from cockpit.widgets.scrolling import scroll_bindings

__all__ = ["SiteDetail", "SiteScreen", "render_site"]

#: Tasks of the site shown in its detail, newest first.
LAST_TASKS = 5


@dataclass(frozen=True, slots=True)
class SiteDetail:
    site: Site | None
    platform: Platform | None
    server: Server | None
    backups: Sequence[Backup]
    db_server: Server | None = None
    tasks: Sequence[Task] = ()


def render_site(domain: str, detail: SiteDetail) -> Text:
    """The detail as plain text (stored values are never read as markup)."""
    out = Text(no_wrap=False)
    site = detail.site
    if site is None:
        out.append(f"No site {sanitize(domain)} in the store (deleted meanwhile?)\n", "italic")
        return out

    def heading(title: str) -> None:
        out.append(f"{chr(10) if out.plain else ''}{title}\n", "bold underline")

    def field(label: str, value: str, style: str = "") -> None:
        out.append(f" {label:<12}", "bold")
        out.append(sanitize(value) + "\n", style)

    heading("Site")
    field("Domain", site.domain, "bold")
    field("Status", site.status.value, "bold reverse" if site.status.value != "enabled" else "")
    field("HTTPS", site.https.value)
    field("Redirect", site.redirection or "-")
    if site.aliases:
        for n, alias in enumerate(site.aliases):
            field(f"Aliases ({len(site.aliases)})" if n == 0 else "", alias)
    else:
        field("Aliases", "none")

    heading("Where")
    platform = detail.platform
    where = site.platform
    if platform is not None:
        release = f" {platform.release}" if platform.release else ""
        where += f"  ({platform.type.value}{release}, {platform.root})"
    field("Platform", where)
    server = detail.server
    if server is not None:
        field("Server", f"{server.name}  ({server.environment}, {server.address}:{server.port})")
    field("Client", site.client or "-")

    heading("Database")
    db = detail.db_server
    if site.db_server is None:
        field("Server", "none recorded for this site")
    elif db is None:
        field("Server", f"{site.db_server}  (not in the store)")
    else:
        engines = [s.type for s in db.services if s.kind is ServiceKind.DB]
        engine = ", ".join(engines) if engines else "no db service declared"
        field("Server", f"{db.name}  ({engine}; {db.environment}, {db.address}:{db.port})")

    heading(f"Backups ({len(detail.backups)})")
    if not detail.backups:
        out.append("   none recorded\n", "italic")
    for backup in sorted(detail.backups, key=lambda b: b.created, reverse=True):
        when = backup.created.strftime("%Y-%m-%d %H:%M")
        out.append(sanitize(f"   {when}  {human_size(backup.size):>10}  {backup.backend}\n"))
        out.append(sanitize(f"     {backup.server}:{backup.location}\n"), "dim")

    heading(f"Last tasks ({len(detail.tasks)})")
    if not detail.tasks:
        out.append("   none\n", "italic")
    for task in detail.tasks:
        bad = task.state.value in ("failed", "interrupted", "unknown")
        out.append(f"   {task.id:>6} ")
        out.append(f"{task.state.value:<11}", "bold reverse" if bad else "bold")
        out.append(sanitize(f" {task.kind:<18} {clock(task.created_at)} by {task.queued_by}"))
        out.append(sanitize(f"  {outcome(task)}\n"), "dim")
    return out


class SiteScreen(DetailScreen[SiteDetail]):
    """One site, read in a worker when the view opens (and on ctrl+r)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("detail"),
        Binding("p", "jump('platform')", "Platform", id="site.platform"),
        Binding("s", "jump('server')", "Server", id="site.server"),
        Binding("c", "jump('client')", "Client", id="site.client"),
        Binding("T", "tasks", "Tasks", id="site.tasks"),
        Binding("S", "stats", "Stats", id="site.stats"),
    ]

    DEFAULT_CSS = """
    SiteScreen #detail {
        border: round $primary;
        border-title-color: $text-primary;
        &.-env-prod { border: round $error; }
        &.-env-staging { border: round $warning; }
    }
    SiteScreen #body { padding: 0 1; }
    """

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain

    @property
    def view_key(self) -> str:
        return f"site={self.domain}"

    @property
    def crumb(self) -> str:
        return self.domain

    @property
    def detail_title(self) -> str:
        return f"site {sanitize(self.domain)}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "jump":
            site = self.detail.site if self.detail is not None else None
            if site is None:
                return None
            if parameters == ("client",) and site.client is None:
                return None
        return super().check_action(action, parameters)

    def action_tasks(self) -> None:
        """Every task of the site: the tasks list, filtered on its domain."""
        self.post_message(OpenView("tasks", filter_text=self.domain))

    def action_jump(self, what: str) -> None:
        """Open the site's platform (its sites), server (its detail) or client (its sites)."""
        site = self.detail.site if self.detail is not None else None
        if site is None:
            return
        if what == "platform":
            self.post_message(OpenView("sites", scope=Scope("platform", site.platform)))
        elif what == "server" and self.detail is not None and self.detail.platform is not None:
            scope = Scope("server", self.detail.platform.server)
            self.post_message(OpenView("platforms", scope=scope))
        elif what == "client" and site.client is not None:
            self.post_message(OpenView("sites", scope=Scope("client", site.client)))

    @work(name="loading the site", group="site-detail", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        cockpit = self.cockpit
        site = await cockpit.site(self.domain)
        platform = server = db_server = None
        backups: Sequence[Backup] = ()
        if site is not None:
            platform = await cockpit.platform(site.platform)
            if platform is not None:
                server = await cockpit.server(platform.server)
            if site.db_server is not None:
                db_server = await cockpit.server(site.db_server)
            backups = await cockpit.backups(site.domain)
        tasks = await cockpit.tasks.tasks(target=self.domain, limit=LAST_TASKS)
        self.post_message(
            self.Loaded(SiteDetail(site, platform, server, backups, db_server, tasks))
        )

    def render_detail(self, detail: SiteDetail) -> RenderableType:
        return render_site(self.domain, detail)

    def detail_shown(self, detail: SiteDetail) -> None:
        env = detail.server.environment if detail.server else None
        self.set_environment(env)
        tone = environment_tone(env) if env else None
        box = self.query_one("#detail")
        box.set_class(tone == "prod", "-env-prod")
        box.set_class(tone == "staging", "-env-staging")

    def action_stats(self) -> None:
        """The site's statistics, as charts."""
        from cockpit.screens.stats import StatsScreen, open_screen

        open_screen(self.app, StatsScreen("site", self.domain))

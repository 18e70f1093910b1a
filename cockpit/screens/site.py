"""A site's detail view: where it runs, its aliases, its database server, its backups."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from cockpit.model import Backup, Platform, Server, Site
from cockpit.screens.base import ViewScreen
from cockpit.textsafe import sanitize

__all__ = ["SiteDetail", "SiteScreen", "render_site"]


@dataclass(frozen=True, slots=True)
class SiteDetail:
    site: Site | None
    platform: Platform | None
    server: Server | None
    backups: Sequence[Backup]


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def render_site(domain: str, detail: SiteDetail) -> Text:
    """The detail as plain text (stored values are never read as markup)."""
    out = Text(no_wrap=False)
    site = detail.site
    if site is None:
        out.append(f"No site {sanitize(domain)} in the store (deleted meanwhile?)\n", "italic")
        return out

    def field(label: str, value: str, style: str = "") -> None:
        out.append(f" {label:<11}", "bold")
        out.append(sanitize(value) + "\n", style)

    field("Domain", site.domain, "bold")
    field("Status", site.status.value, "italic" if site.status.value != "enabled" else "")
    field("HTTPS", site.https.value)
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
    field("DB server", site.db_server or "-")
    field("Redirect", site.redirection or "-")
    if site.aliases:
        for n, alias in enumerate(site.aliases):
            field("Aliases" if n == 0 else "", alias)
    else:
        field("Aliases", "-")
    out.append(f"\n Backups ({len(detail.backups)})\n", "bold")
    if not detail.backups:
        out.append("   none yet\n", "italic")
    for backup in sorted(detail.backups, key=lambda b: b.created, reverse=True):
        when = backup.created.strftime("%Y-%m-%d %H:%M")
        line = f"   {when}  {_size(backup.size):>10}  {backup.backend:<7} {backup.location}\n"
        out.append(sanitize(line))
    return out


class SiteScreen(ViewScreen):
    """One site, read in a worker when the view opens (and on ctrl+r)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "scroll('down')", "Down", show=False, id="detail.down"),
        Binding("k,up", "scroll('up')", "Up", show=False, id="detail.up"),
    ]

    AUTO_FOCUS = "#detail"

    DEFAULT_CSS = """
    SiteScreen #detail { border: round $primary; border-title-color: $text-primary; }
    SiteScreen #body { padding: 0 1; }
    """

    class Loaded(Message):
        def __init__(self, detail: SiteDetail) -> None:
            self.detail = detail
            super().__init__()

    def __init__(self, domain: str) -> None:
        super().__init__()
        self.domain = domain
        self.detail: SiteDetail | None = None

    @property
    def view_key(self) -> str:
        return f"site={self.domain}"

    @property
    def crumb(self) -> str:
        return self.domain

    def main_widget(self) -> Widget | None:
        return self.query_one("#detail", VerticalScroll)

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        with VerticalScroll(id="detail"):
            yield Static(Text(" loading…", "italic"), id="body")
        yield from self.compose_footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = Text(f"site {sanitize(self.domain)}")
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_scroll(self, direction: str) -> None:
        scroller = self.query_one("#detail", VerticalScroll)
        if direction == "down":
            scroller.scroll_down(animate=False)
        else:
            scroller.scroll_up(animate=False)

    @work(name="loading the site", group="site-detail", exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        cockpit = self.cockpit
        site = await cockpit.site(self.domain)
        platform = server = None
        backups: Sequence[Backup] = ()
        if site is not None:
            platform = await cockpit.platform(site.platform)
            if platform is not None:
                server = await cockpit.server(platform.server)
            backups = await cockpit.backups(site.domain)
        self.post_message(self.Loaded(SiteDetail(site, platform, server, backups)))

    def on_site_screen_loaded(self, message: SiteScreen.Loaded) -> None:
        self.detail = message.detail
        self.query_one("#body", Static).update(render_site(self.domain, message.detail))
        self.set_environment(message.detail.server.environment if message.detail.server else None)

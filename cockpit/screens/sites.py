"""The sites view: 100,000 sites and more, read from the core a page at a time.

Narrowed to a server, a platform, a client, an environment or a status (``:sites prod``,
``enter`` on a platform), it shows what it is narrowed to above the list. The filter is a
substring of the domain, a regular expression (``~``) or either inverted (``!``), all
applied by the store (:class:`SiteFilter`'s ``regex`` and ``exclude``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from rich.text import Text

from cockpit.core import Cockpit, SiteFilter
from cockpit.engine import TargetKind
from cockpit.messages import Scope, ScopeKind
from cockpit.model import HttpsMode, Site, SiteStatus
from cockpit.screens.actions import TargetListScreen
from cockpit.screens.resource import Fresh, ScopeSummary
from cockpit.screens.servers import env_tone, server_summary
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, Query, Row, RowSource, Tone, cell

__all__ = ["SiteSource", "SitesScreen", "site_row"]

COLUMNS: tuple[Column, ...] = (
    Column("domain", "Domain", width=24, max_width=48, flex=3, priority=100, sort="domain"),
    Column("server", "Server", width=8, max_width=20, flex=1, priority=80, sort="server"),
    Column("environment", "Env", width=7, max_width=12, priority=45),
    Column("platform", "Platform", width=10, max_width=24, flex=1, priority=70, sort="platform"),
    Column("client", "Client", width=8, max_width=20, flex=1, priority=50, sort="client"),
    Column("https", "HTTPS", width=8, priority=60, sort="https"),
    Column("status", "Status", width=8, priority=90, sort="status"),
    Column("aliases", "Aliases", width=8, max_width=48, flex=2, priority=40),
)

_COLUMN: Final = {c.key: i for i, c in enumerate(COLUMNS)}

_HTTPS_TONE: dict[HttpsMode, Tone | None] = {
    HttpsMode.OFF: "muted",
    HttpsMode.ON: None,
    HttpsMode.REQUIRED: "good",
}
_STATUS_TONE: dict[SiteStatus, Tone | None] = {
    SiteStatus.ENABLED: None,
    SiteStatus.DISABLED: "warn",
    SiteStatus.DELETED: "muted",
}


def site_row(site: Site, server: str | None, environment: str | None) -> Row:
    aliases = "-"
    if site.aliases:
        aliases = site.aliases[0] + (f" +{len(site.aliases) - 1}" if len(site.aliases) > 1 else "")
    tone = env_tone(environment) if environment else "muted"
    return Row(
        key=site.domain,
        cells=(
            cell(site.domain),
            cell(server or "-", tone),
            cell(environment or "-", tone),
            cell(site.platform),
            cell(site.client or "-", None if site.client else "muted"),
            cell(site.https.value, _HTTPS_TONE[site.https]),
            cell(site.status.value, _STATUS_TONE[site.status]),
            cell(aliases, None if site.aliases else "muted"),
        ),
        environment=environment,
        tone="muted" if site.status is SiteStatus.DELETED else None,
    )


def scope_filter(scope: Scope | None) -> SiteFilter:
    """The sites a scope narrows the list to."""
    if scope is None:
        return SiteFilter()
    if scope.kind == "status":
        return SiteFilter(status=SiteStatus(scope.name))
    if scope.kind == "server":
        return SiteFilter(server=scope.name)
    if scope.kind == "platform":
        return SiteFilter(platform=scope.name)
    if scope.kind == "client":
        return SiteFilter(client=scope.name)
    return SiteFilter(environment=scope.name)


class SiteSource:
    """Pages of sites from :meth:`Cockpit.sites_page`, filtered on the domain."""

    def __init__(self, cockpit: Cockpit, where: SiteFilter | None = None) -> None:
        self.cockpit = cockpit
        self.where = where or SiteFilter()
        self._servers: dict[str, str] | None = None  # platform → server
        self._environments: dict[str, str] = {}  # server → environment

    def invalidate(self) -> None:
        self._servers = None

    def site_filter(self, query: Query) -> SiteFilter:
        """The core's filter for ``query`` within this source's scope."""
        fields: dict[str, Any] = {
            name: getattr(self.where, name)
            for name in ("platform", "server", "client", "status", "environment")
        }
        fields["text"] = query.text or None
        if query.text and query.invert:
            fields["exclude"] = True
        if query.text and query.regex:
            fields["regex"] = True
        return SiteFilter(**fields)

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        where = self.site_filter(query)
        if self._servers is None:
            self._environments = {s.name: s.environment for s in await self.cockpit.servers()}
            self._servers = {p.name: p.server for p in await self.cockpit.platforms()}
        page = await self.cockpit.sites_page(
            where,
            sort=query.sort or "domain",
            descending=query.descending,
            offset=offset,
            limit=limit,
        )
        rows = []
        for site in page.sites:
            server = self._servers.get(site.platform)
            env = self._environments.get(server) if server else None
            rows.append(site_row(site, server, env))
        return rows, page.total

    def matches(self, query: Query, key: str) -> bool:
        """A site's key is its domain, and the filter applies to the domain: exact."""
        return query.matches(key)

    async def fresh(self, domains: Sequence[str]) -> tuple[list[Row], bool]:
        """The rows of ``domains`` read again (one read of those sites), and whether any of
        them is gone from the store."""
        if self._servers is None:
            return [], False
        found = await self.cockpit.sites_of(domains)
        rows = []
        for site in found.values():
            server = self._servers.get(site.platform)
            env = self._environments.get(server) if server else None
            rows.append(site_row(site, server, env))
        return rows, len(found) < len(set(domains))

    def keeps(self, row: Row) -> bool:
        """Whether a site's row, changed, still belongs to the scope of this source."""
        where = self.where
        wanted = (
            (where.status.value if where.status is not None else None, "status"),
            (where.server, "server"),
            (where.environment, "environment"),
            (where.platform, "platform"),
            (where.client, "client"),
        )
        for value, column in wanted:
            if value is not None and row.cells[_COLUMN[column]].text != value:
                return False
        return True


class SitesScreen(TargetListScreen):
    """Sites, all or those of one server, platform, client, environment or status."""

    VIEW = "sites"
    DEFAULT_SORT = "domain"
    MARKABLE = True
    TARGET = TargetKind.SITE
    SCOPES: ClassVar[tuple[ScopeKind, ...]] = (
        "status",
        "environment",
        "server",
        "platform",
        "client",
    )
    FILTER_HINT = "text in the domain · enter keeps · esc clears"
    #: Live: the sites on screen are read again (a task changed a status meanwhile).
    LIVE_SECONDS = 2.0

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        return SiteSource(self.cockpit, scope_filter(self.scope))

    async def fresh_rows(self, shown: Sequence[Row]) -> Fresh | None:
        source = self.table.source
        if not isinstance(source, SiteSource) or not shown:
            return None
        rows, gone = await source.fresh([row.key for row in shown])
        return Fresh(rows, gone=gone)

    def keeps(self, row: Row) -> bool:
        source = self.table.source
        return not isinstance(source, SiteSource) or source.keeps(row)

    def open_row(self, row: Row) -> None:
        self.open_view("site", key=row.key)

    async def summary(self) -> ScopeSummary | None:
        scope = self.scope
        if scope is None:
            return None
        cockpit = self.cockpit
        if scope.kind == "server":
            server = await cockpit.server(scope.name)
            if server is None:
                return ScopeSummary(_missing("server", scope.name))
            platforms = await cockpit.platforms(server=server.name)
            health = await self.cockpit.health_of(server.name)
            return ScopeSummary(server_summary(server, platforms, health), server.environment)
        if scope.kind == "platform":
            platform = await cockpit.platform(scope.name)
            if platform is None:
                return ScopeSummary(_missing("platform", scope.name))
            server = await cockpit.server(platform.server)
            env = server.environment if server else None
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append("platform ", "bold")
            text.append(sanitize(platform.name), "bold")
            release = f" {platform.release}" if platform.release else ""
            text.append(f"  {platform.type.value}{release}")
            text.append(f"  on {sanitize(platform.server)}")
            if env:
                text.append(f" ({sanitize(env)})")
            if platform.locked:
                text.append("  locked: no new sites", "bold")
            text.append(f"\n root {sanitize(platform.root)}")
            return ScopeSummary(text, env)
        if scope.kind == "client":
            clients = {c.name: c for c in await cockpit.clients()}
            client = clients.get(scope.name)
            if client is None:
                return ScopeSummary(_missing("client", scope.name))
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append("client ", "bold")
            text.append(sanitize(client.name), "bold")
            text.append(f"  {sanitize(client.contact) if client.contact else 'no contact'}")
            quota = client.quotas.get("sites")
            if quota is not None:
                used = (await cockpit.sites_page(SiteFilter(client=client.name), limit=0)).total
                over = used > quota
                text.append(f"\n sites {used:,} of a quota of {quota:,}", "bold" if over else "")
                if over:
                    text.append("  over quota", "bold reverse")
            other = {k: v for k, v in client.quotas.items() if k != "sites"}
            if other:
                text.append("\n quotas " + " ".join(f"{k}={v}" for k, v in other.items()))
            return ScopeSummary(text)
        if scope.kind == "environment":
            servers = [s.name for s in await cockpit.servers() if s.environment == scope.name]
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"environment {sanitize(scope.name)}", "bold")
            names = ", ".join(sanitize(n) for n in servers) or "no servers"
            text.append(f"  servers: {names}")
            return ScopeSummary(text, scope.name)
        return None


def _missing(kind: str, name: str) -> Text:
    return Text(f"no {kind} {sanitize(name)} in the store (deleted meanwhile?)", "italic")

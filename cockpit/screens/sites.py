"""The sites view: 100,000 sites and more, read from the core a page at a time."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.core import Cockpit, SiteFilter
from cockpit.model import HttpsMode, Site, SiteStatus
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.servers import env_tone
from cockpit.widgets.resource_table import Column, Query, Row, RowSource, Tone, cell

__all__ = ["SiteSource", "SitesScreen", "UnsupportedQuery", "site_row"]

COLUMNS: tuple[Column, ...] = (
    Column("domain", "Domain", width=24, max_width=56, flex=4, priority=100, sort="domain"),
    Column("server", "Server", width=8, max_width=20, flex=1, priority=80, sort="server"),
    Column("platform", "Platform", width=10, max_width=24, flex=1, priority=70, sort="platform"),
    Column("client", "Client", width=8, max_width=20, flex=1, priority=50, sort="client"),
    Column("https", "HTTPS", width=8, priority=60, sort="https"),
    Column("status", "Status", width=8, priority=90, sort="status"),
    Column("aliases", "Aliases", width=8, max_width=48, flex=2, priority=40),
)

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


class UnsupportedQuery(ValueError):
    """A filter the sites list cannot apply (yet)."""


def site_row(site: Site, server: str | None, environment: str | None) -> Row:
    aliases = "-"
    if site.aliases:
        aliases = site.aliases[0] + (f" +{len(site.aliases) - 1}" if len(site.aliases) > 1 else "")
    return Row(
        key=site.domain,
        cells=(
            cell(site.domain),
            cell(server or "-", env_tone(environment) if environment else "muted"),
            cell(site.platform),
            cell(site.client or "-", None if site.client else "muted"),
            cell(site.https.value, _HTTPS_TONE[site.https]),
            cell(site.status.value, _STATUS_TONE[site.status]),
            cell(aliases, None if site.aliases else "muted"),
        ),
        environment=environment,
        tone="muted" if site.status is SiteStatus.DELETED else None,
    )


class SiteSource:
    """Pages of sites from :meth:`Cockpit.sites_page`, filtered on the domain."""

    def __init__(self, cockpit: Cockpit, where: SiteFilter | None = None) -> None:
        self.cockpit = cockpit
        self.where = where or SiteFilter()
        self._servers: dict[str, str] | None = None  # platform → server
        self._environments: dict[str, str] = {}  # server → environment

    def invalidate(self) -> None:
        self._servers = None

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        if query.invert and query.text:
            raise UnsupportedQuery(
                "excluding sites (!text) needs support in the core; filter with text instead"
            )
        if self._servers is None:
            self._environments = {s.name: s.environment for s in await self.cockpit.servers()}
            self._servers = {p.name: p.server for p in await self.cockpit.platforms()}
        where = SiteFilter(
            text=query.text or None,
            platform=self.where.platform,
            server=self.where.server,
            client=self.where.client,
            status=self.where.status,
            environment=self.where.environment,
        )
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


class SitesScreen(ResourceScreen):
    """Sites, all or those of one server, platform or client."""

    VIEW = "sites"
    DEFAULT_SORT = "domain"
    FILTER_HINT = "text in the domain · enter keeps · esc clears"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        scope = self.scope
        where = SiteFilter()
        if scope is not None:
            where = SiteFilter(
                server=scope.name if scope.kind == "server" else None,
                platform=scope.name if scope.kind == "platform" else None,
                client=scope.name if scope.kind == "client" else None,
            )
        return SiteSource(self.cockpit, where)

    def open_row(self, row: Row) -> None:
        self.open_view("site", key=row.key)

"""The platforms view (all, one environment's, or one server's: the server's detail).

``enter`` on a server opens this view narrowed to the server, under the server's summary
(services, health); ``enter`` on a platform opens its sites.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text

from cockpit.engine import TargetKind
from cockpit.messages import Scope, ScopeKind
from cockpit.model import Platform
from cockpit.screens.actions import TargetListScreen
from cockpit.screens.resource import ScopeSummary
from cockpit.screens.servers import env_tone, server_summary
from cockpit.textsafe import sanitize
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, cell

__all__ = ["PlatformsScreen", "platform_row"]

COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", width=10, max_width=30, priority=100, sort="name"),
    Column("server", "Server", width=8, max_width=24, priority=90, sort="server"),
    Column("environment", "Env", width=5, max_width=12, priority=60, sort="environment"),
    Column("type", "Type", width=9, priority=80, sort="type"),
    Column("release", "Release", width=9, max_width=20, priority=70, sort="release"),
    Column("locked", "Locked", width=6, priority=40, sort="locked"),
    Column("root", "Root", width=12, flex=1, priority=50, sort="root"),
)


def platform_row(platform: Platform, environment: str | None) -> Row:
    env = environment or ""
    return Row(
        key=platform.name,
        cells=(
            cell(platform.name),
            cell(platform.server, env_tone(env) if env else None),
            cell(env or "-", env_tone(env) if env else "muted"),
            cell(platform.type.value),
            cell(platform.release or "-", None if platform.release else "muted"),
            cell("locked" if platform.locked else "-", "warn" if platform.locked else "muted"),
            cell(platform.root, "muted"),
        ),
        environment=environment,
    )


class PlatformsScreen(TargetListScreen):
    """Platforms: codebases installed once on a server, hosting sites."""

    VIEW = "platforms"
    DEFAULT_SORT = "name"
    MARKABLE = True
    TARGET = TargetKind.PLATFORM
    SCOPES: ClassVar[tuple[ScopeKind, ...]] = ("environment", "server")
    #: Live: a server's detail follows its health (a verify recorded meanwhile).
    LIVE_SECONDS = 2.0

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        scope = self.scope
        server = scope.name if scope is not None and scope.kind == "server" else None
        environment = scope.name if scope is not None and scope.kind == "environment" else None

        async def load() -> list[Row]:
            envs = {s.name: s.environment for s in await self.cockpit.servers()}
            platforms = await self.cockpit.platforms(server=server)
            if environment is not None:
                platforms = [p for p in platforms if envs.get(p.server) == environment]
            return [platform_row(p, envs.get(p.server)) for p in platforms]

        return ListSource(load, COLUMNS)

    def open_row(self, row: Row) -> None:
        self.open_view("sites", scope=Scope("platform", row.key))

    async def summary(self) -> ScopeSummary | None:
        scope = self.scope
        if scope is None:
            return None
        if scope.kind == "environment":
            return ScopeSummary(Text(f"environment {sanitize(scope.name)}", "bold"), scope.name)
        server = await self.cockpit.server(scope.name)
        if server is None:
            text = Text(f"no server {sanitize(scope.name)} in the store (deleted meanwhile?)")
            return ScopeSummary(text)
        health = await self.cockpit.health_of(server.name)
        return ScopeSummary(server_summary(server, None, health), server.environment)

"""The platforms view (all, or one server's): ``enter`` opens a platform's sites."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.messages import Scope
from cockpit.model import Platform
from cockpit.screens.resource import ResourceScreen
from cockpit.screens.servers import env_tone
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
            cell(platform.server),
            cell(env or "-", env_tone(env) if env else "muted"),
            cell(platform.type.value),
            cell(platform.release or "-", None if platform.release else "muted"),
            cell("locked" if platform.locked else "-", "warn" if platform.locked else "muted"),
            cell(platform.root, "muted"),
        ),
        environment=environment,
    )


class PlatformsScreen(ResourceScreen):
    """Platforms: codebases installed once on a server, hosting sites."""

    VIEW = "platforms"
    DEFAULT_SORT = "name"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        server = self.scope.name if self.scope is not None else None

        async def load() -> list[Row]:
            envs = {s.name: s.environment for s in await self.cockpit.servers()}
            platforms = await self.cockpit.platforms(server=server)
            return [platform_row(p, envs.get(p.server)) for p in platforms]

        return ListSource(load, COLUMNS)

    def open_row(self, row: Row) -> None:
        self.open_view("sites", scope=Scope("platform", row.key))

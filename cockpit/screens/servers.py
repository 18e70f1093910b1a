"""The servers view: the first view, and where ``enter`` drills into a server's platforms."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.messages import Scope
from cockpit.model import Server
from cockpit.screens.resource import ResourceScreen
from cockpit.widgets.header import environment_tone
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, Tone, cell

__all__ = ["ServersScreen", "server_row"]

COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", width=6, max_width=30, priority=100, sort="name"),
    Column("address", "Address", width=10, max_width=40, flex=1, priority=90, sort="address"),
    Column("transport", "Transport", width=5, priority=40, sort="transport"),
    Column("environment", "Env", width=4, max_width=12, priority=80, sort="environment"),
    Column("user", "User", width=4, max_width=16, priority=50, sort="user"),
    Column("services", "Services", width=8, max_width=40, flex=1, priority=60, sort="services"),
    Column("health", "Health", width=7, priority=70, sort="health"),
)


def env_tone(environment: str) -> Tone:
    tone = environment_tone(environment)
    return "prod" if tone == "prod" else "staging" if tone == "staging" else "env"


def server_row(server: Server) -> Row:
    """A server as a row. Health is "unknown" until Cockpit has checked the server
    (the core does not report checks yet): never a made-up value."""
    services = " ".join(f"{s.type}" for s in server.services) or "-"
    return Row(
        key=server.name,
        cells=(
            cell(server.name),
            cell(f"{server.address}:{server.port}"),
            cell(server.transport.value, "muted"),
            cell(server.environment, env_tone(server.environment)),
            cell(server.user),
            cell(services, None if server.services else "muted"),
            cell("unknown", "muted"),
        ),
        environment=server.environment,
    )


class ServersScreen(ResourceScreen):
    """Every server: name, address, transport, environment, user, services, health."""

    VIEW = "servers"
    DEFAULT_SORT = "name"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            return [server_row(s) for s in await self.cockpit.servers()]

        return ListSource(load, COLUMNS)

    def open_row(self, row: Row) -> None:
        self.open_view("platforms", scope=Scope("server", row.key))

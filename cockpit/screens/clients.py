"""The clients view: ``enter`` opens a client's sites."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.messages import Scope
from cockpit.model import Client
from cockpit.screens.resource import ResourceScreen
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, cell

__all__ = ["ClientsScreen", "client_row"]

COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", width=10, max_width=30, priority=100, sort="name"),
    Column("contact", "Contact", width=10, max_width=40, flex=1, priority=80, sort="contact"),
    Column("quotas", "Quotas", width=10, flex=1, priority=60, sort="quotas"),
)


def client_row(client: Client) -> Row:
    quotas = " ".join(f"{k}={v}" for k, v in client.quotas.items())
    return Row(
        key=client.name,
        cells=(
            cell(client.name),
            cell(client.contact or "-", None if client.contact else "muted"),
            cell(quotas or "-", None if quotas else "muted"),
        ),
    )


class ClientsScreen(ResourceScreen):
    """Clients: who sites belong to, and their quotas."""

    VIEW = "clients"
    DEFAULT_SORT = "name"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            return [client_row(c) for c in await self.cockpit.clients()]

        return ListSource(load, COLUMNS)

    def open_row(self, row: Row) -> None:
        self.open_view("sites", scope=Scope("client", row.key))

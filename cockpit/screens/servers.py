"""The servers view, and what a server's detail shows (its services and health).

``enter`` on a server opens its detail: the server's platforms, under a summary of the
server (address, transport, services with their settings, health). The list is live: a
server whose health a verify recorded meanwhile is replaced in place. Narrowed to an
environment (``:servers prod``) or to a health (the overview's ``health unreachable``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Final

from rich.text import Text
from textual.binding import Binding, BindingType

from cockpit.engine import TargetKind
from cockpit.messages import Scope, ScopeKind
from cockpit.model import Platform, Server, ServerHealth
from cockpit.screens.actions import TargetListScreen
from cockpit.screens.resource import ScopeSummary
from cockpit.textsafe import sanitize
from cockpit.widgets.header import env_tone
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, Tone, cell

__all__ = [
    "HEALTH_UNKNOWN",
    "ServersScreen",
    "env_tone",
    "health_reason",
    "server_row",
    "server_summary",
]

COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", width=6, max_width=30, priority=100, sort="name"),
    Column("address", "Address", width=10, max_width=40, flex=1, priority=90, sort="address"),
    Column("transport", "Transport", width=5, priority=40, sort="transport"),
    Column("environment", "Env", width=4, max_width=12, priority=80, sort="environment"),
    Column("user", "User", width=4, max_width=16, priority=50, sort="user"),
    Column("services", "Services", width=8, max_width=40, flex=1, priority=60, sort="services"),
    Column("health", "Health", width=7, priority=70, sort="health"),
    # Why the last verify failed: before the user and the transport when the screen is
    # narrow (at 80 columns it takes what is left, down to 12 cells, and ends in "…").
    Column("reason", "Reason", width=12, flex=2, priority=55),
)

#: Where the health is in a server's row.
HEALTH_COLUMN: Final = next(i for i, c in enumerate(COLUMNS) if c.key == "health")

#: What the health column says until Cockpit has checked a server (the core does not
#: report checks yet): never a made-up value.
HEALTH_UNKNOWN = "unknown"


#: How each health reads in a row: its text style.
HEALTH_TONE: Final[dict[str, Tone]] = {
    "ok": "good",
    "failed": "bad",
    "unreachable": "bad",
    "unknown": "muted",
}


#: At most this much of a verify's reason goes in a row (the detail has all of it).
REASON_CHARS: Final = 240


def health_reason(health: ServerHealth | None) -> str:
    """Why the last verify failed, for a row: sanitised remote text on one line (runs of
    whitespace, newlines included, become one space), cut to :data:`REASON_CHARS` with
    an ellipsis; "" when it passed or never ran."""
    if health is None or not health.reason:
        return ""
    text = " ".join(sanitize(health.reason).split())
    if len(text) > REASON_CHARS:
        text = text[: REASON_CHARS - 1].rstrip() + "…"
    return text


def server_row(server: Server, health: ServerHealth | None = None) -> Row:
    """A server as a row, with the health its last verify recorded ("unknown" before)
    and, when it failed, why."""
    state = health.health.value if health is not None else HEALTH_UNKNOWN
    reason = health_reason(health)
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
            cell(state, HEALTH_TONE.get(state, "muted")),
            cell(reason or "-", "bad" if reason else "muted"),
        ),
        environment=server.environment,
    )


def _settings(settings: object) -> str:
    if not isinstance(settings, dict) or not settings:
        return ""
    return " (" + ", ".join(f"{k}={v}" for k, v in settings.items()) + ")"


def server_summary(
    server: Server,
    platforms: Sequence[Platform] | None = None,
    health: ServerHealth | None = None,
) -> Text:
    """A server's detail in a few lines: where, how, its services, its health.

    Stored text is sanitised and never read as markup. Health says "not checked yet"
    while the core has no check results (nothing is made up).
    """
    out = Text(no_wrap=True, overflow="ellipsis", end="")

    def label(name: str) -> None:
        out.append(f"{name:<10}", "bold")

    label("server")
    out.append(sanitize(server.name), "bold")
    out.append(f"  {sanitize(server.address)}:{server.port}  {server.transport.value}")
    out.append(f" as {sanitize(server.user)}  env ")
    out.append(sanitize(server.environment), "bold")
    out.append(f"  root {sanitize(server.root)}")
    if server.ssh_options:
        opts = ", ".join(f"{k}={v}" for k, v in server.ssh_options.items())
        out.append(f"  ssh {sanitize(opts)}")
    out.append("\n")
    label("services")
    if server.services:
        out.append(
            " · ".join(
                sanitize(f"{s.kind.value} {s.type}{_settings(dict(s.settings))}")
                for s in server.services
            )
        )
    else:
        out.append("none declared", "italic")
    out.append("\n")
    label("health")
    if health is None or health.checked_at is None:
        out.append(f"{HEALTH_UNKNOWN}: not checked yet", "italic")
    else:
        out.append(health.health.value, "bold")
        out.append(f"  checked {health.checked_at:%Y-%m-%d %H:%M} UTC")
        if health.reason:
            out.append(f"  {sanitize(health.reason)}")
    if platforms is None:
        return out
    out.append("\n")
    label("platforms")
    if platforms:
        names = ", ".join(sanitize(p.name) for p in platforms)
        out.append(f"{len(platforms)}: {names}")
    else:
        out.append("none", "italic")
    return out


class ServersScreen(TargetListScreen):
    """Every server (or those of one environment): name, address, transport, environment,
    user, services, health and why the last verify failed."""

    VIEW = "servers"
    DEFAULT_SORT = "name"
    MARKABLE = True
    TARGET = TargetKind.SERVER
    SCOPES: ClassVar[tuple[ScopeKind, ...]] = ("environment",)
    LIVE_SECONDS = 2.0

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            servers = await self.cockpit.servers()
            health = await self.cockpit.server_health()
            rows = [server_row(s, health.get(s.name)) for s in servers]
            return [row for row in rows if self.in_scope(row)]

        return ListSource(load, COLUMNS)

    def in_scope(self, row: Row) -> bool:
        """Whether a server's row belongs to the environment or health narrowed to."""
        scope = self.scope
        if scope is None:
            return True
        if scope.kind == "environment":
            return row.environment == scope.name
        if scope.kind == "health":
            return row.cells[HEALTH_COLUMN].text == scope.name
        return True

    def keeps(self, row: Row) -> bool:
        return self.in_scope(row) and super().keeps(row)

    def open_row(self, row: Row) -> None:
        self.open_view("platforms", scope=Scope("server", row.key))

    async def summary(self) -> ScopeSummary | None:
        scope = self.scope
        if scope is None:
            return None
        if scope.kind == "health":
            text = Text(f"servers whose health is {sanitize(scope.name)}", "bold")
            text.append(" (as their last verify recorded it: 'cockpit server verify')")
            return ScopeSummary(text)
        if scope.kind != "environment":
            return None
        return ScopeSummary(Text(f"environment {sanitize(scope.name)}", "bold"), scope.name)

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("S", "stats", "Stats", id="servers.stats"),
    ]

    def action_stats(self) -> None:
        """The statistics of the server under the cursor, as charts."""
        from cockpit.screens.stats import StatsScreen, open_screen

        row = self.table.current_row
        if row is not None:
            open_screen(self.app, StatsScreen("server", row.key))

"""The backups view: every backup the store knows of, newest first; ``enter`` opens its detail."""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.messages import Scope
from cockpit.model import Backup
from cockpit.screens.resource import ResourceScreen
from cockpit.widgets.resource_table import Column, ListSource, Row, RowSource, cell

__all__ = ["BackupsScreen", "backup_row", "human_size"]

COLUMNS: tuple[Column, ...] = (
    Column("site", "Site", width=20, max_width=56, flex=3, priority=100, sort="site"),
    Column("created", "Created", width=16, priority=90, sort="created"),
    Column("size", "Size", width=10, priority=70, align="right"),
    Column("backend", "Backend", width=7, priority=60, sort="backend"),
    Column("location", "Location", width=12, flex=2, priority=50, sort="location"),
)


def human_size(n: int) -> str:
    """``n`` bytes in B, KiB, MiB or GiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def backup_row(backup: Backup) -> Row:
    return Row(
        key=f"{backup.site} {backup.location}",
        cells=(
            cell(backup.site),
            cell(backup.created.strftime("%Y-%m-%d %H:%M")),
            cell(human_size(backup.size)),
            cell(backup.backend, "muted"),
            cell(f"{backup.server}:{backup.location}", "muted"),
        ),
    )


class BackupsScreen(ResourceScreen):
    """Backups of every site (the store's record of them)."""

    VIEW = "backups"
    DEFAULT_SORT = "created"
    DEFAULT_DESCENDING = True

    def __init__(self, *, scope: Scope | None = None, filter_text: str | None = None) -> None:
        super().__init__(scope=scope, filter_text=filter_text)
        self._sites: dict[str, str] = {}

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        async def load() -> list[Row]:
            backups = list(await self.cockpit.backups())
            rows = [backup_row(b) for b in backups]
            self._sites = {row.key: b.site for row, b in zip(rows, backups, strict=True)}
            return rows

        return ListSource(load, COLUMNS)

    def open_row(self, row: Row) -> None:
        from cockpit.screens.backup import open_listed_backup

        open_listed_backup(self, row.key)  # its detail

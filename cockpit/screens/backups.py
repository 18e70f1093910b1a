"""The backups view: every backup the store knows of, newest first; ``enter`` opens its detail.

A million backups (100,000 sites keeping ten each) are read a page at a time: the count,
the sort and the filter are done by the store, never on every backup in memory. The
filter is found in the site's domain, the server's name, the backend or the location (a
substring, or ``~regex``; ``!`` for the backups it is not found in).
"""

from __future__ import annotations

from collections.abc import Sequence

from cockpit.core import Cockpit
from cockpit.model import Backup
from cockpit.screens.resource import ResourceScreen
from cockpit.store.backups import BackupFilter
from cockpit.widgets.resource_table import Column, Query, Row, RowSource, cell

__all__ = ["BackupSource", "BackupsScreen", "backup_row", "human_size"]

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


class BackupSource:
    """Pages of backups from :meth:`Cockpit.backups_page`, sorted and filtered there."""

    def __init__(self, cockpit: Cockpit) -> None:
        self.cockpit = cockpit
        #: How many backups the store has handed this source (a page each fetch).
        self.rows_read = 0
        #: How many backups each filter lets through, counted once (a count with a filter
        #: reads every backup; the next pages, and other sorts, need not count again).
        self._totals: dict[BackupFilter, int] = {}

    def invalidate(self) -> None:
        """Count again (ctrl+r): backups were made or deleted meanwhile."""
        self._totals.clear()

    async def fetch(self, query: Query, offset: int, limit: int) -> tuple[Sequence[Row], int]:
        where = BackupFilter(query.text or None, exclude=query.invert, regex=query.regex)
        page = await self.cockpit.backups_page(
            where,
            sort=query.sort or BackupsScreen.DEFAULT_SORT,
            descending=query.descending,
            offset=offset,
            limit=limit,
            total=self._totals.get(where),
        )
        if len(self._totals) > 64:
            self._totals.clear()
        self._totals[where] = page.total
        self.rows_read += len(page.backups)
        return [backup_row(b) for b in page.backups], page.total

    def matches(self, query: Query, key: str) -> bool:
        """Backups are not marked; the key's site is what the filter can be checked on."""
        return query.matches(key)


class BackupsScreen(ResourceScreen):
    """Backups of every site (the store's record of them)."""

    VIEW = "backups"
    DEFAULT_SORT = "created"
    DEFAULT_DESCENDING = True
    FILTER_HINT = "text in the site, server, backend or location · ~regex · ! excludes · enter keeps · esc clears"

    def columns(self) -> Sequence[Column]:
        return COLUMNS

    def source(self) -> RowSource:
        return BackupSource(self.cockpit)

    def open_row(self, row: Row) -> None:
        from cockpit.screens.backup import open_listed_backup

        open_listed_backup(self, row.key)  # its detail

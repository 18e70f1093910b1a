"""Marks: which rows of a list a batch action applies to, without holding 100,000 rows.

A :class:`MarkSet` is two things at once:

- explicit keys, marked one by one (``space``), by a range (``v``, shift+arrows);
- at most one *bulk* mark, ``*``: "every row that matches filter F, except these keys",
  stored as the filter, the count it had and the exceptions — never as the rows. Marking
  all 100,000 sites costs a few bytes.

Whether a row is marked is answered from its key alone: the source says whether a key
matches a filter (:meth:`RowSource.matches`), so a row shown under another filter still
shows as marked when the bulk mark covers it.

The two parts never overlap: a key covered by the bulk mark is never also explicit
(unmarking it adds an exception instead). So the count is exact:
``len(explicit) + bulk.total - len(bulk.excluded)``.

A second ``*`` under a different filter cannot be a second bulk mark (two filters may
overlap, and their union cannot be counted without the store): the first one is
*materialised* into explicit keys first (:meth:`MarkSet.materialise`, done by the table in
a worker), then the new one is laid over.

An action turns the marks into targets with :func:`resolve`: the explicit keys, plus every
key of the bulk filter read page by page from the source, minus the exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cockpit.widgets.resource_table import Query, RowSource

__all__ = ["Bulk", "MarkSet", "Selection", "collect_keys", "resolve"]

Matcher = Callable[["Query", str], bool]


@dataclass(slots=True)
class Bulk:
    """Every row matching ``query`` (its filter; sort dropped) except ``excluded``."""

    query: Query
    total: int
    excluded: set[str] = field(default_factory=set)

    @property
    def count(self) -> int:
        return max(0, self.total - len(self.excluded))


@dataclass(frozen=True, slots=True)
class Selection:
    """A snapshot of the marks, for an action: explicit keys and the bulk mark, if any."""

    keys: tuple[str, ...]
    query: Query | None = None  # the bulk filter
    excluded: frozenset[str] = frozenset()
    count: int = 0

    @property
    def is_empty(self) -> bool:
        return self.count == 0


def filter_of(query: Query) -> Query:
    """``query`` with its sort dropped: two queries that select the same rows are equal."""
    return replace(query, sort=None, descending=False)


class MarkSet:
    """The marks of one list. ``matches(query, key)`` tells whether a key is in a filter."""

    def __init__(self, matches: Matcher) -> None:
        self._matches = matches
        self.explicit: dict[str, None] = {}  # an ordered set
        self.bulk: Bulk | None = None

    # -- reading -----------------------------------------------------------------------

    def __bool__(self) -> bool:
        return self.count > 0

    @property
    def count(self) -> int:
        return len(self.explicit) + (self.bulk.count if self.bulk is not None else 0)

    def _covered(self, key: str) -> bool:
        """Whether ``key`` is in the bulk filter (marked, unless it is an exception)."""
        bulk = self.bulk
        return bulk is not None and self._matches(bulk.query, key)

    def is_marked(self, key: str) -> bool:
        if key in self.explicit:
            return True
        bulk = self.bulk
        return bulk is not None and key not in bulk.excluded and self._matches(bulk.query, key)

    def selection(self) -> Selection:
        bulk = self.bulk
        return Selection(
            keys=tuple(self.explicit),
            query=bulk.query if bulk is not None else None,
            excluded=frozenset(bulk.excluded) if bulk is not None else frozenset(),
            count=self.count,
        )

    # -- changing ------------------------------------------------------------------------

    def mark(self, keys: Iterable[str]) -> None:
        for key in keys:
            if self._covered(key):
                assert self.bulk is not None
                self.bulk.excluded.discard(key)
            else:
                self.explicit[key] = None

    def unmark(self, keys: Iterable[str]) -> None:
        for key in keys:
            if self._covered(key):
                assert self.bulk is not None
                self.bulk.excluded.add(key)
            else:
                self.explicit.pop(key, None)

    def toggle(self, key: str) -> bool:
        """Mark ``key`` if it was not, else unmark it; its new state."""
        marked = not self.is_marked(key)
        (self.mark if marked else self.unmark)([key])
        return marked

    def needs_materialising(self, query: Query) -> bool:
        """Whether marking all of ``query`` must first turn the current bulk mark into keys."""
        return self.bulk is not None and self.bulk.query != filter_of(query)

    def mark_all(self, query: Query, total: int) -> None:
        """Mark every row of ``query`` (``total`` of them): a bulk mark, not the rows.

        Call :meth:`materialise` first when :meth:`needs_materialising` says so.
        """
        wanted = filter_of(query)
        if self.bulk is not None and self.bulk.query != wanted:
            raise ValueError("materialise the bulk mark of another filter first")
        self.bulk = Bulk(wanted, total)
        # Explicit keys the new bulk mark covers are now part of it.
        for key in [k for k in self.explicit if self._matches(wanted, k)]:
            del self.explicit[key]

    def materialise(self, keys: Sequence[str]) -> None:
        """Replace the bulk mark by explicit keys: ``keys`` are all the rows of its filter."""
        bulk = self.bulk
        if bulk is None:
            return
        self.bulk = None
        for key in keys:
            if key not in bulk.excluded:
                self.explicit[key] = None

    def update_total(self, query: Query, total: int) -> None:
        """The list of the bulk filter was read again: it now has ``total`` rows."""
        if self.bulk is not None and self.bulk.query == filter_of(query):
            self.bulk.total = total

    def clear(self) -> None:
        self.explicit.clear()
        self.bulk = None


async def collect_keys(
    source: RowSource, query: Query, start: int = 0, stop: int | None = None, *, chunk: int = 2000
) -> list[str]:
    """The keys of rows ``start`` … ``stop`` (exclusive; None: to the end) of ``query``."""
    keys: list[str] = []
    offset = start
    while stop is None or offset < stop:
        limit = chunk if stop is None else min(chunk, stop - offset)
        rows, total = await source.fetch(query, offset, limit)
        keys.extend(row.key for row in rows)
        offset += len(rows)
        if not rows or offset >= total:
            break
    return keys


async def resolve(source: RowSource, selection: Selection) -> list[str]:
    """The targets of a selection: explicit keys, then the bulk filter's keys minus exceptions."""
    keys = list(selection.keys)
    if selection.query is not None:
        seen = set(keys)
        for key in await collect_keys(source, selection.query):
            if key not in selection.excluded and key not in seen:
                keys.append(key)
    return keys

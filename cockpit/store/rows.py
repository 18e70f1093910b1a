"""Building model objects from rows the store wrote itself.

Everything in the store passed :mod:`cockpit.model` validation on its way in, so a
row read back is rebuilt without running the validators again (100,000 sites would
otherwise spend seconds re-checking what was checked). The enum fields are still
parsed: an unknown value there means a corrupt store, and fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

import aiosqlite

from cockpit.store.errors import NotFoundError

T = TypeVar("T")


def trusted(cls: type[T], **fields: Any) -> T:
    """An instance of a frozen model dataclass built from already validated values."""
    obj = cls.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


def loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its wildcards escaped (ESCAPE '\\')."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def missing(
    db: aiosqlite.Connection, table: str, column: str, what: str, keys: Iterable[str]
) -> None:
    """Raise NotFoundError naming the ``keys`` that no row of ``table`` has (if any)."""
    absent = []
    for key in dict.fromkeys(keys):
        sql = f"SELECT 1 FROM {table} WHERE {column} = ?"
        async with db.execute(sql, (key,)) as cursor:
            if await cursor.fetchone() is None:
                absent.append(key)
    if absent:
        raise NotFoundError(f"no {what} {', '.join(absent)}")

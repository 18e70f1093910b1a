"""Errors the store raises, with messages that name the cause."""

from __future__ import annotations

import sqlite3


class StoreError(Exception):
    """The store cannot do what was asked; the message says why."""


class ConflictError(StoreError):
    """A write would break a uniqueness or reference rule (a name taken, an entity in use)."""


class NotFoundError(StoreError):
    """The named entity does not exist."""


def explain(exc: sqlite3.Error, path: object) -> StoreError:
    """Turn an SQLite error into a StoreError that says what happened in plain words."""
    # ``sqlite_errorcode`` is the extended result code (SQLITE_BUSY_SNAPSHOT is 517,
    # SQLITE_READONLY_DBMOVED 1032…); its low byte is the primary code.
    extended = getattr(exc, "sqlite_errorcode", None)
    code = extended & 0xFF if isinstance(extended, int) else None
    if code == sqlite3.SQLITE_FULL:
        return StoreError(
            f"the disk holding the store {path} is full; the change was not written and "
            "nothing stored before was lost. Free some space and try again."
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return StoreError(f"the store {path} stayed locked by another process: {exc}")
    if code == sqlite3.SQLITE_READONLY:
        return StoreError(f"the store {path} is read-only: {exc}")
    if isinstance(exc, sqlite3.IntegrityError):
        return ConflictError(str(exc))
    return StoreError(f"the store {path} failed: {exc}")

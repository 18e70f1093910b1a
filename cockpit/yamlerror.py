"""The error of a YAML document, apart from the parser (:mod:`cockpit.yamlio`).

Its own module so that code which only names the error (``cockpit.config``, which a
process reaching servers imports) does not load PyYAML; :mod:`cockpit.yamlio` re-exports
it, and ``from cockpit.yamlio import YamlError`` stays the usual spelling.
"""

from __future__ import annotations

__all__ = ["YamlError"]


class YamlError(ValueError):
    """A problem in a YAML file, located by file, line, column and key path.

    ``str()`` reads like ``inventory.yaml:12:5: servers[3].address: must be …``;
    ``line`` and ``column`` are 1-based and may be ``None`` when unknown (a file that
    cannot be read, a value given on the command line).
    """

    def __init__(
        self,
        source: str,
        line: int | None,
        column: int | None,
        key_path: str,
        reason: str,
    ) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.key_path = key_path
        self.reason = reason
        super().__init__(source, line, column, key_path, reason)

    @property
    def location(self) -> str:
        """``file:line:column`` (as much of it as is known)."""
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        path = f"{self.key_path}: " if self.key_path else ""
        return f"{self.location}: {path}{self.reason}"

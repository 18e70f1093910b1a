"""Inventory as code: the YAML document, applying it, and importers.

``document`` (export and load), ``plan`` (apply), and the importers ``ssh_config``
(Host entries of ~/.ssh/config) and ``ansible`` (INI and YAML inventories). The
importers share the two types below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cockpit.model import Server
from cockpit.yamlio import YamlError

__all__ = ["ImportFileError", "ImportResult"]


@dataclass(slots=True)
class ImportResult:
    """What an importer found: servers to add, and what it left out and why.

    ``skipped`` holds ``(host or pattern, reason)``; the reason starts with the
    ``file:line`` it comes from.
    """

    servers: list[Server] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


class ImportFileError(YamlError):
    """A file an importer cannot read at all (a syntax error), with its line.

    A :class:`~cockpit.yamlio.YamlError`, so one ``except YamlError`` handles every
    positioned error; ``column`` is usually ``None``.
    """

    def __init__(self, source: str, line: int | None, reason: str) -> None:
        super().__init__(source, line, None, "", reason)

    def __reduce__(self) -> tuple[type[ImportFileError], tuple[str, int | None, str]]:
        return (type(self), (self.source, self.line, self.reason))

"""Cockpit's themes: YAML files turned into :class:`textual.theme.Theme` objects.

The bundled themes ship inside the package (``cockpit/bundled_themes/*.yaml``; the
repository's ``themes/`` points there). A user may add or override themes by name in
``$XDG_CONFIG_HOME/cockpit/themes/*.yaml``. A theme file holds the fields of
:class:`~textual.theme.Theme`::

    name: cockpit-dark          # optional; must equal the file name's stem
    dark: true
    primary: "#4FA3F7"          # the only required colour
    secondary: "#8B7CF6"
    ...
    variables:                  # Textual CSS variables, and Cockpit's own:
      cockpit-prod-text-style: bold underline

Textual's built-in themes (``textual-dark``, ``nord``, …) stay available too.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from textual.color import Color, ColorParseError
from textual.theme import BUILTIN_THEMES, Theme

from cockpit import yamlio
from cockpit.yamlio import Node, YamlError

__all__ = [
    "APP_VARIABLES",
    "DEFAULT_THEME",
    "ThemeError",
    "ThemeSet",
    "bundled_theme_dir",
    "load_theme",
    "load_themes",
    "user_theme_dir",
]

DEFAULT_THEME: Final = "cockpit-dark"

#: CSS variables Cockpit's own styles use, with their defaults; a theme may override them.
APP_VARIABLES: Final[Mapping[str, str]] = {
    "cockpit-prod-text-style": "bold",
}

_COLOR_FIELDS: Final = (
    "primary",
    "secondary",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "success",
    "warning",
    "error",
)
_VARIABLE_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_FIELDS: Final = frozenset(
    {"name", "dark", "luminosity_spread", "text_alpha", "variables", "ansi", *_COLOR_FIELDS}
)


class ThemeError(ValueError):
    """A theme cannot be used: an unknown name, or a file that is not a valid theme."""


def bundled_theme_dir() -> Traversable:
    """The themes shipped with Cockpit (inside the package, so installs carry them)."""
    return importlib.resources.files("cockpit") / "bundled_themes"


def user_theme_dir() -> Path:
    """Where a user's own themes live: ``<config dir>/themes``."""
    from cockpit.config import config_dir

    return config_dir() / "themes"


def load_theme(source: Traversable | Path) -> Theme:
    """One theme from a YAML file; a :class:`ThemeError` names the file, line and key."""
    where = str(source)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ThemeError(f"{where}: cannot read the theme: {exc.strerror or exc}") from exc
    stem = source.name.removesuffix(".yaml").removesuffix(".yml")
    try:
        return _theme_from(yamlio.loads(data, where), stem)
    except YamlError as exc:
        raise ThemeError(str(exc)) from exc


def _theme_from(root: Node, stem: str) -> Theme:
    if not root.is_mapping:
        raise root.error("a theme must be a mapping of Theme fields, such as primary: '#4FA3F7'")
    root.check_keys(_FIELDS, required=("primary",))
    entries = dict(root.items())
    fields: dict[str, Any] = {"name": stem}
    if (node := entries.get("name")) is not None and node.as_str() != stem:
        raise node.error(f"{node.value!r} must match the file name ({stem!r})")
    for key in _COLOR_FIELDS:
        if (node := entries.get(key)) is not None and node.value is not None:
            fields[key] = _color(node)
    for key in ("dark", "ansi"):
        if (node := entries.get(key)) is not None:
            fields[key] = node.as_bool()
    for key in ("luminosity_spread", "text_alpha"):
        if (node := entries.get(key)) is not None:
            fields[key] = node.as_float(minimum=0, maximum=1)
    variables: dict[str, str] = {}
    if (node := entries.get("variables")) is not None:
        node.as_mapping()
        for name, value in node.items() if node.value is not None else ():
            if not isinstance(name, str) or not _VARIABLE_RE.fullmatch(name):
                raise node.error("is not a CSS variable name (a-z, 0-9 and '-')", name)
            if isinstance(value.value, bool) or not isinstance(value.value, str | int | float):
                raise value.error("must be a CSS value (a string such as '#FFFFFF' or 'bold')")
            variables[name] = str(value.value)
    fields["variables"] = variables
    return Theme(**fields)


def _color(node: Node) -> str:
    value = node.as_str()
    try:
        Color.parse(value)
    except ColorParseError:
        raise node.error(f"{value!r} is not a colour (use '#RRGGBB', 'rgb(…)' or a name)") from None
    return value


def _theme_files(directory: Traversable | Path) -> Iterable[Traversable | Path]:
    if not directory.is_dir():
        return []
    return sorted(
        (entry for entry in directory.iterdir() if entry.name.endswith((".yaml", ".yml"))),
        key=lambda entry: entry.name,
    )


@dataclass(frozen=True, slots=True)
class ThemeSet:
    """Every theme Cockpit can use: its own (bundled, then the user's) and Textual's."""

    themes: Mapping[str, Theme]
    cockpit_names: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        """Cockpit's themes first, then Textual's built-in ones."""
        builtin = sorted(name for name in self.themes if name not in self.cockpit_names)
        return [*self.cockpit_names, *builtin]

    def get(self, name: str) -> Theme:
        """The theme called ``name``, or a :class:`ThemeError` listing the valid names."""
        theme = self.themes.get(name)
        if theme is None:
            raise ThemeError(f"unknown theme {name!r}; valid themes: {', '.join(self.names)}")
        return theme


def load_themes(user_dir: Path | None = None, *, include_user: bool = True) -> ThemeSet:
    """The bundled themes, overridden or extended by the user's (``user_dir``, or the default).

    A malformed file raises :class:`ThemeError` naming it: a broken theme is never
    skipped silently.
    """
    found: dict[str, Theme] = {}
    for entry in _theme_files(bundled_theme_dir()):
        theme = load_theme(entry)
        found[theme.name] = theme
    if include_user:
        directory = user_dir if user_dir is not None else user_theme_dir()
        for entry in _theme_files(directory):
            theme = load_theme(entry)
            found[theme.name] = theme
    cockpit_names = tuple(sorted(found, key=lambda n: (n not in _BUNDLED_ORDER, n)))
    return ThemeSet({**BUILTIN_THEMES, **found}, cockpit_names)


_BUNDLED_ORDER: Final = frozenset({"cockpit-dark", "cockpit-light", "cockpit-mono"})

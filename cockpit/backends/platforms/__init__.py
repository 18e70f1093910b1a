"""Platform plugins and their registry.

A platform type is a :class:`~cockpit.backends.platforms.base.PlatformPlugin` subclass
registered in the ``cockpit.platforms`` entry point group under its type name.
Cockpit's own types register the same way, in its pyproject.toml::

    [project.entry-points."cockpit.platforms"]
    wordpress = "cockpit.backends.platforms.wordpress:WordpressPlatform"

:func:`get_platform` finds a type; :func:`plugin_for` binds one to a platform of the
inventory. As for the service plugins, the built-ins are also listed in
:data:`BUILTINS`, so a source tree whose installed metadata predates them still finds
them (an installed entry point of the same name wins).

The inventory's platform types are those :class:`~cockpit.model.PlatformType` lists
(the store checks them too); a plugin for another name loads, but no platform of the
inventory can use it until the model knows the name.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Final

from cockpit.backends.platforms.base import (
    ConfigFile,
    HealthCheck,
    InstallOptions,
    PlatformError,
    PlatformPlugin,
    SiteLayout,
)
from cockpit.model import Platform, validate_type_name

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "ConfigFile",
    "HealthCheck",
    "InstallOptions",
    "PlatformError",
    "PlatformPlugin",
    "PluginLoadError",
    "SiteLayout",
    "UnknownPlatformError",
    "get_platform",
    "known_types",
    "plugin_for",
    "reload_registry",
]

ENTRY_POINT_GROUP: Final = "cockpit.platforms"

#: Cockpit's own platform types (also declared as entry points in pyproject.toml).
BUILTINS: Final[Mapping[str, str]] = {
    "static": "cockpit.backends.platforms.static:StaticPlatform",
    "php": "cockpit.backends.platforms.php:PhpPlatform",
    "wordpress": "cockpit.backends.platforms.wordpress:WordpressPlatform",
    "drupal": "cockpit.backends.platforms.drupal:DrupalPlatform",
}


class UnknownPlatformError(LookupError):
    """No plugin for a platform type; the message lists the known ones."""


class PluginLoadError(Exception):
    """An entry point names a plugin that cannot be imported or is not a platform plugin."""


_lock = threading.Lock()
_entries: dict[str, EntryPoint] | None = None
_loaded: dict[str, type[PlatformPlugin]] = {}


def _discover() -> dict[str, EntryPoint]:
    found = {name: EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILTINS.items()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            validate_type_name(ep.name)
        except ValueError:
            continue
        found[ep.name] = ep
    return found


def _entries_now() -> dict[str, EntryPoint]:
    global _entries
    with _lock:
        if _entries is None:
            _entries = _discover()
        return _entries


def reload_registry() -> None:
    """Forget what was discovered (after installing a plugin, or in tests)."""
    global _entries
    with _lock:
        _entries = None
        _loaded.clear()


def known_types() -> list[str]:
    return sorted(_entries_now())


def get_platform(type_name: str) -> type[PlatformPlugin]:
    """The plugin class of a platform type, loaded on first use."""
    entries = _entries_now()
    ep = entries.get(type_name)
    if ep is None:
        raise UnknownPlatformError(
            f"no platform type {type_name!r}; known: {', '.join(sorted(entries)) or 'none'}"
        )
    with _lock:
        cls = _loaded.get(type_name)
    if cls is not None:
        return cls
    try:
        loaded = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"the {type_name} platform plugin ({ep.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, PlatformPlugin)):
        raise PluginLoadError(f"{ep.value} is not a PlatformPlugin subclass")
    if getattr(loaded, "type", None) != type_name:
        raise PluginLoadError(
            f"{ep.value} declares the type {getattr(loaded, 'type', '?')!r}, "
            f"but is registered as {type_name!r}"
        )
    with _lock:
        _loaded[type_name] = loaded
    return loaded


def plugin_for(platform: Platform) -> PlatformPlugin:
    """The plugin of ``platform``'s type, bound to it."""
    return get_platform(platform.type.value)(platform)

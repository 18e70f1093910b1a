"""Service plugins and their registry.

A service type is a :class:`~cockpit.backends.services.base.ServicePlugin` subclass
registered in the ``cockpit.services`` entry point group under the name
``<kind>.<type>``. Cockpit's own types register the same way, in its pyproject.toml::

    [project.entry-points."cockpit.services"]
    "http.nginx" = "cockpit.backends.services.nginx:NginxService"

so a third party adds one from its own package. :func:`get_service` finds a type;
:func:`plugin_for` binds one to a server's configured service.

When Cockpit runs from a source tree whose installed metadata predates an entry (no
reinstall since), the built-ins are still found: :data:`BUILTINS` lists them with the
same ``module:Class`` values and they load through the same :class:`EntryPoint` door.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Final

from cockpit.backends.secrets import SecretStore
from cockpit.backends.services.base import ServicePlugin
from cockpit.model import Server, ServiceKind, ValidationError, validate_type_name

__all__ = [
    "BUILTINS",
    "ENTRY_POINT_GROUP",
    "PluginLoadError",
    "UnknownServiceError",
    "get_service",
    "known_types",
    "plugin_for",
    "registry",
]

ENTRY_POINT_GROUP: Final = "cockpit.services"

#: Cockpit's own service types (also declared as entry points in pyproject.toml).
BUILTINS: Final[Mapping[str, str]] = {
    "http.nginx": "cockpit.backends.services.nginx:NginxService",
    "http.apache": "cockpit.backends.services.apache:ApacheService",
    "db.mysql": "cockpit.backends.services.mysql:MysqlService",
    "db.pgsql": "cockpit.backends.services.pgsql:PgsqlService",
    "backup.tar": "cockpit.backends.backup.tar:TarBackupService",
    "backup.restic": "cockpit.backends.backup.restic:ResticBackupService",
}


class UnknownServiceError(LookupError):
    """No plugin for a kind/type; the message lists the known types."""


class PluginLoadError(Exception):
    """An entry point names a plugin that cannot be imported or is not a service plugin."""


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: ServiceKind
    type: str
    entry_point: EntryPoint


_lock = threading.Lock()
_entries: dict[tuple[ServiceKind, str], _Entry] | None = None
_loaded: dict[tuple[ServiceKind, str], type[ServicePlugin]] = {}


def _parse_name(name: str) -> tuple[ServiceKind, str] | None:
    kind, dot, type_name = name.partition(".")
    if not dot:
        return None
    try:
        return ServiceKind.parse(kind, "kind"), validate_type_name(type_name, "type")
    except ValidationError:
        return None


def _discover() -> dict[tuple[ServiceKind, str], _Entry]:
    found: dict[tuple[ServiceKind, str], _Entry] = {}
    for name, value in BUILTINS.items():
        key = _parse_name(name)
        assert key is not None
        found[key] = _Entry(*key, EntryPoint(name, value, ENTRY_POINT_GROUP))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = _parse_name(ep.name)
        if key is None:
            continue  # not "<kind>.<type>": ignored (listed by nothing)
        found[key] = _Entry(*key, ep)  # an installed entry point wins over the fallback
    return found


def _entries_now() -> dict[tuple[ServiceKind, str], _Entry]:
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


def known_types(kind: ServiceKind | str | None = None) -> list[str]:
    """``kind/type`` names of every registered plugin (of one kind when given)."""
    wanted = ServiceKind.parse(kind, "kind") if kind is not None else None
    return sorted(f"{k}/{t}" for (k, t) in _entries_now() if wanted is None or k is wanted)


def registry() -> dict[tuple[ServiceKind, str], type[ServicePlugin]]:
    """Every plugin that loads, by (kind, type). A plugin that fails to load is left
    out here; :func:`get_service` on it raises the reason."""
    out: dict[tuple[ServiceKind, str], type[ServicePlugin]] = {}
    for key in _entries_now():
        try:
            out[key] = get_service(*key)
        except PluginLoadError:
            continue
    return out


def get_service(kind: ServiceKind | str, type_name: str) -> type[ServicePlugin]:
    """The plugin class for ``kind``/``type_name``, loaded on first use."""
    wanted_kind = ServiceKind.parse(kind, "kind")
    key = (wanted_kind, type_name)
    entries = _entries_now()
    entry = entries.get(key)
    if entry is None:
        known = ", ".join(known_types(wanted_kind)) or "none"
        raise UnknownServiceError(
            f"no {wanted_kind} service of type {type_name!r}; known {wanted_kind} types: {known}"
        )
    with _lock:
        cls = _loaded.get(key)
    if cls is not None:
        return cls
    ep = entry.entry_point
    try:
        loaded = ep.load()
    except Exception as exc:
        raise PluginLoadError(
            f"the {wanted_kind}/{type_name} plugin ({ep.value}) cannot be loaded: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, ServicePlugin)):
        raise PluginLoadError(f"{ep.value} is not a ServicePlugin subclass")
    if (
        getattr(loaded, "kind", None) is not wanted_kind
        or getattr(loaded, "type", None) != type_name
    ):
        raise PluginLoadError(
            f"{ep.value} declares {getattr(loaded, 'kind', '?')}/{getattr(loaded, 'type', '?')}, "
            f"but is registered as {wanted_kind}/{type_name}"
        )
    with _lock:
        _loaded[key] = loaded
    return loaded


def plugin_for(
    server: Server, kind: ServiceKind | str, *, secret_store: SecretStore | None = None
) -> ServicePlugin:
    """The plugin of ``server``'s configured service of ``kind``, bound to it."""
    wanted = ServiceKind.parse(kind, "kind")
    service = server.service(wanted)
    if service is None:
        raise UnknownServiceError(f"server {server.name} has no {wanted} service configured")
    return get_service(wanted, service.type)(server, service, secret_store=secret_store)

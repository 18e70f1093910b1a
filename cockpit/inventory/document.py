"""The inventory's YAML form: export (never secrets) and load with positions for errors.

The document::

    version: 1
    servers:
      - name: web1
        address: 192.0.2.10
        services:
          - {kind: http, type: nginx}
    clients:
      - {name: acme, contact: ops@acme.example}
    platforms:
      - {name: wp6, server: web1, type: wordpress, root: /var/lib/cockpit/platforms/wp6}
    sites:
      - {domain: example.com, platform: wp6, client: acme, aliases: [www.example.com]}

A field left out takes the model's default; export leaves out fields at their default
so that a 100,000-site file stays readable.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cockpit.inventory.plan import Inventory, InventoryError
from cockpit.model import Client, Platform, Server, Service, Site
from cockpit.yamlio import Node, YamlError, load

FORMAT_VERSION: Final = 1
_SECTIONS: Final = {"servers": Server, "clients": Client, "platforms": Platform, "sites": Site}
_KIND_OF_SECTION: Final = {
    "servers": "server",
    "clients": "client",
    "platforms": "platform",
    "sites": "site",
}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _entity(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _entity(obj: Any) -> dict[str, Any]:
    """An entity as a mapping, without its id and without fields at their default."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if f.name == "id":
            continue
        value = getattr(obj, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        if f.default_factory is not dataclasses.MISSING and value == f.default_factory():
            continue
        if value == () and f.name in ("aliases", "services"):
            continue
        out[f.name] = _plain(value)
    return out


#: Words YAML 1.1 readers (PyYAML, Ansible) take for booleans or null: always quoted.
_YAML11_WORDS: Final = frozenset(["y", "yes", "n", "no", "true", "false", "on", "off", "null", "~"])
_PLAIN: Final = re.compile(r"[A-Za-z_/][A-Za-z0-9._/@+-]*")
_NUMBERISH: Final = re.compile(r"[-+]?(?:[0-9_.]+(?:e[-+]?[0-9]+)?|\.inf|\.nan)", re.IGNORECASE)


def _scalar(value: Any) -> str:
    """One scalar in YAML: plain when unambiguous, else a JSON string (valid YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if (
        _PLAIN.fullmatch(text)
        and text.lower() not in _YAML11_WORDS
        and not _NUMBERISH.fullmatch(text)
    ):
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(value: Any) -> str:
    """A value in YAML flow style: ``{k: v, …}``, ``[a, b]`` or a scalar."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return _scalar(value)


def dump_inventory(inventory: Inventory) -> str:
    """The inventory as YAML, one entity a line. Secrets are never part of it: the
    model holds none. Written by hand rather than by PyYAML's representer, which
    takes tens of seconds on 100,000 sites; what it writes is checked by the tests
    to read back identically through PyYAML and through Cockpit's own loader."""
    out = [f"version: {FORMAT_VERSION}\n"]
    for section, entities in (
        ("servers", inventory.servers),
        ("clients", inventory.clients),
        ("platforms", inventory.platforms),
        ("sites", inventory.sites),
    ):
        if not entities:
            out.append(f"{section}: []\n")
            continue
        out.append(f"{section}:\n")
        out.extend(f"- {_flow(_entity(e))}\n" for e in entities)
    return "".join(out)


def _build(cls: type[Any], node: Node, kind: str) -> Any:
    allowed = [f.name for f in dataclasses.fields(cls) if f.name != "id"]
    node.check_keys(allowed)
    values: dict[str, Any] = {}
    for key, child in node.items():
        if cls is Server and key == "services":
            services = []
            items = child if child.as_list() else ()
            for item in items:
                item.check_keys(("kind", "type", "settings"))
                services.append(item.build(Service))
            values[key] = tuple(services)
        elif cls is Site and key == "aliases":
            values[key] = tuple(child.as_list())
        else:
            values[key] = child.value
    return node.build(cls, values)


@dataclass(frozen=True, slots=True)
class LoadedInventory:
    """An inventory read from a file, with where each entity stood in it."""

    inventory: Inventory
    nodes: Mapping[tuple[str, str], Node]

    def locate(self, error: InventoryError) -> YamlError | InventoryError:
        """The error placed at its entity's (or field's) position in the file."""
        node = self.nodes.get((error.kind, error.key))
        if node is None:
            return error
        return node.error(error.reason, error.field)


def load_inventory(path: Path) -> LoadedInventory:
    """Read and validate an inventory file; any error names file, line, column and key."""
    return inventory_from_node(load(path))


def inventory_from_node(root: Node) -> LoadedInventory:
    if root.value is None:
        raise root.error("the inventory file is empty")
    root.check_keys(("version", *_SECTIONS))
    version = root.get("version")
    if version is not None and version.value != FORMAT_VERSION:
        raise version.error(
            f"unsupported inventory version; this Cockpit reads version {FORMAT_VERSION}"
        )
    parsed: dict[str, tuple[Any, ...]] = {}
    nodes: dict[tuple[str, str], Node] = {}
    for section, cls in _SECTIONS.items():
        section_node = root.get(section)
        if section_node is None or section_node.value is None:
            parsed[section] = ()
            continue
        section_node.as_list()
        kind = _KIND_OF_SECTION[section]
        items = []
        for item in section_node:
            entity = _build(cls, item, kind)
            items.append(entity)
            nodes.setdefault((kind, entity.domain if cls is Site else entity.name), item)
        parsed[section] = tuple(items)
    inventory = Inventory(
        servers=parsed["servers"],
        clients=parsed["clients"],
        platforms=parsed["platforms"],
        sites=parsed["sites"],
    )
    return LoadedInventory(inventory, nodes)


__all__ = [
    "FORMAT_VERSION",
    "LoadedInventory",
    "dump_inventory",
    "inventory_from_node",
    "load_inventory",
]

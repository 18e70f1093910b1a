"""Inventory as code: compare a desired inventory with the store, plan, apply.

Applying is all or nothing: every reference is checked before the one write
transaction starts, and any failure inside it rolls the whole apply back. A second
apply of the same inventory plans nothing. Entities in the store that the file does
not mention are kept unless ``prune`` is asked for.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cockpit.model import Client, Platform, Server, Site, validate_path
from cockpit.store import Database
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds

Entity = Server | Client | Platform | Site
Action = Literal["create", "update", "delete"]
KINDS: Final = ("server", "client", "platform", "site")


@dataclass(frozen=True, slots=True)
class Inventory:
    servers: tuple[Server, ...] = ()
    clients: tuple[Client, ...] = ()
    platforms: tuple[Platform, ...] = ()
    sites: tuple[Site, ...] = ()

    def of(self, kind: str) -> tuple[Entity, ...]:
        by_kind: dict[str, tuple[Entity, ...]] = {
            "server": self.servers,
            "client": self.clients,
            "platform": self.platforms,
            "site": self.sites,
        }
        return by_kind[kind]

    def sorted(self) -> Inventory:
        """The same inventory with each kind in key order (for comparing and exporting)."""
        return Inventory(
            servers=tuple(sorted(self.servers, key=key_of)),
            clients=tuple(sorted(self.clients, key=key_of)),
            platforms=tuple(sorted(self.platforms, key=key_of)),
            sites=tuple(sorted(self.sites, key=key_of)),
        )

    def size(self) -> int:
        return len(self.servers) + len(self.clients) + len(self.platforms) + len(self.sites)


def key_of(entity: Entity) -> str:
    return entity.domain if isinstance(entity, Site) else entity.name


class InventoryError(Exception):
    """The inventory is inconsistent: ``kind`` entity ``key``'s ``field`` is wrong."""

    def __init__(self, kind: str, key: str, field: str, reason: str) -> None:
        self.kind = kind
        self.key = key
        self.field = field
        self.reason = reason
        super().__init__(f"{kind} {key}: {field}: {reason}")


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    key: str
    action: Action
    fields: tuple[tuple[str, Any, Any], ...] = ()  # (field, old, new) for updates

    def render(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-"}[self.action]
        line = f"{sign} {self.kind} {self.key}"
        if self.fields:
            parts = [f"{name}: {_show(old)} -> {_show(new)}" for name, old, new in self.fields]
            line += " (" + "; ".join(parts) + ")"
        return line


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _show({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    return "none" if value is None else str(value)


@dataclass(slots=True)
class Plan:
    changes: list[Change] = field(default_factory=list)
    kept: Counter[str] = field(default_factory=Counter)  # unmentioned entities, not pruned
    applied: bool = False

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {k: {"create": 0, "update": 0, "delete": 0} for k in KINDS}
        for change in self.changes:
            out[change.kind][change.action] += 1
        return out

    def summary(self) -> str:
        if self.empty:
            line = "0 changes"
        else:
            parts = []
            for kind, actions in self.counts().items():
                done = [f"{n} {a}" for a, n in actions.items() if n]
                if done:
                    parts.append(f"{kind}s: " + ", ".join(done))
            line = f"{len(self.changes)} changes ({'; '.join(parts)})"
        kept = [f"{n} {kind}s" for kind, n in self.kept.items() if n]
        if kept:
            line += "; not in the file and kept (use --prune to delete): " + ", ".join(kept)
        return line

    def render(self, limit: int | None = 200) -> str:
        lines = [self.summary()]
        shown = self.changes if limit is None else self.changes[:limit]
        lines.extend(change.render() for change in shown)
        if limit is not None and len(self.changes) > limit:
            lines.append(f"… and {len(self.changes) - limit} more changes")
        return "\n".join(lines)


_COMPARED: Final[Mapping[type, tuple[str, ...]]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.name != "id")
    for cls in (Server, Client, Platform, Site)
}


def _diff(old: Entity, new: Entity) -> tuple[tuple[str, Any, Any], ...]:
    return tuple(
        (name, getattr(old, name), getattr(new, name))
        for name in _COMPARED[type(new)]
        if getattr(old, name) != getattr(new, name)
    )


def _duplicates(kind: str, entities: Iterable[Entity]) -> None:
    seen: set[str] = set()
    for entity in entities:
        key = key_of(entity)
        if key in seen:
            field_name = "domain" if kind == "site" else "name"
            raise InventoryError(kind, key, field_name, "is listed twice")
        seen.add(key)


def _final(current: Sequence[Entity], desired: Sequence[Entity], prune: bool) -> dict[str, Entity]:
    out: dict[str, Entity] = {} if prune else {key_of(e): e for e in current}
    out.update((key_of(e), e) for e in desired)
    return out


def check(current: Inventory, desired: Inventory, *, prune: bool) -> None:
    """Check the state the apply would leave: every reference resolves, no clashes."""
    for kind in KINDS:
        _duplicates(kind, desired.of(kind))
    servers = _final(current.servers, desired.servers, prune)
    clients = _final(current.clients, desired.clients, prune)
    platforms = _final(current.platforms, desired.platforms, prune)
    sites = _final(current.sites, desired.sites, prune)
    mentioned = {key_of(s) for s in desired.sites}
    roots: dict[tuple[str, str], str] = {}
    for platform in platforms.values():
        assert isinstance(platform, Platform)
        server = servers.get(platform.server)
        if server is None:
            raise InventoryError(
                "platform", platform.name, "server", f"no server {platform.server}"
            )
        assert isinstance(server, Server)
        try:
            validate_path(platform.root, "root", within=server.root)
        except ValueError as exc:
            raise InventoryError(
                "platform",
                platform.name,
                "root",
                f"must be inside {server.root}, the root of server {server.name}",
            ) from exc
        other = roots.setdefault((platform.server, platform.root), platform.name)
        if other != platform.name:
            raise InventoryError(
                "platform", platform.name, "root", f"is also the root of platform {other}"
            )
    owner: dict[str, str] = {}
    for site in sites.values():
        assert isinstance(site, Site)
        if site.platform not in platforms:
            raise InventoryError("site", site.domain, "platform", f"no platform {site.platform}")
        if site.client is not None and site.client not in clients:
            raise InventoryError("site", site.domain, "client", f"no client {site.client}")
        if site.db_server is not None and site.db_server not in servers:
            raise InventoryError("site", site.domain, "db_server", f"no server {site.db_server}")
        for alias in site.aliases:
            if alias in sites:
                raise InventoryError(
                    "site", site.domain, "aliases", f"{alias} is a site of its own"
                )
            other = owner.setdefault(alias, site.domain)
            if other != site.domain:
                # Report on a site of the file rather than one only in the store.
                culprit = site.domain if site.domain in mentioned else other
                raise InventoryError(
                    "site",
                    culprit,
                    "aliases",
                    f"{alias} is also an alias of {other if culprit == site.domain else site.domain}",
                )


def plan(current: Inventory, desired: Inventory, *, prune: bool = False) -> Plan:
    """The changes that make the store match ``desired`` (and only those)."""
    check(current, desired, prune=prune)
    result = Plan()
    deletes: list[Change] = []
    for kind in KINDS:
        old = {key_of(e): e for e in current.of(kind)}
        new = {key_of(e): e for e in desired.of(kind)}
        for key, entity in new.items():
            before = old.get(key)
            if before is None:
                result.changes.append(Change(kind, key, "create"))
            else:
                diff = _diff(before, entity)
                if diff:
                    result.changes.append(Change(kind, key, "update", diff))
        missing = sorted(k for k in old if k not in new)
        if prune:
            deletes.extend(Change(kind, key, "delete") for key in missing)
        elif missing:
            result.kept[kind] = len(missing)
    # Deletions go last and in reverse order of dependency (sites before platforms…).
    order = {kind: i for i, kind in enumerate(reversed(KINDS))}
    result.changes.extend(sorted(deletes, key=lambda c: order[c.kind]))
    return result


async def load_current(db: Database) -> Inventory:
    async with db.read() as conn:
        return Inventory(
            servers=tuple(await server_queries.list_all(conn)),
            clients=tuple(await client_queries.list_all(conn)),
            platforms=tuple(await platform_queries.list_all(conn)),
            sites=tuple(await site_queries.list_all(conn)),
        )


def _select(changes: Iterable[Change], kind: str, action: Action) -> Iterator[str]:
    return (c.key for c in changes if c.kind == kind and c.action == action)


async def apply(
    db: Database, desired: Inventory, *, prune: bool = False, dry_run: bool = False
) -> Plan:
    """Plan and, unless ``dry_run``, apply in one transaction (all or nothing)."""
    current = await load_current(db)
    result = plan(current, desired, prune=prune)
    if dry_run or result.empty:
        return result
    wanted: dict[str, dict[str, Entity]] = {
        kind: {key_of(e): e for e in desired.of(kind)} for kind in KINDS
    }
    changes = result.changes

    def pick(kind: str, action: Action) -> list[Any]:
        return [wanted[kind][key] for key in _select(changes, kind, action)]

    async with db.write() as conn:
        # Sites and platforms leaving first, so that the rows they point to can go too.
        await site_queries.delete_many(conn, _select(changes, "site", "delete"))
        await platform_queries.delete_many(conn, _select(changes, "platform", "delete"))
        await server_queries.insert_many(conn, pick("server", "create"))
        await server_queries.update_many(conn, pick("server", "update"))
        await client_queries.insert_many(conn, pick("client", "create"))
        await client_queries.update_many(conn, pick("client", "update"))
        server_ids = await server_queries.ids(conn)
        await platform_queries.insert_many(conn, pick("platform", "create"), server_ids)
        await platform_queries.update_many(conn, pick("platform", "update"), server_ids)
        refs = RefIds(
            platforms=await platform_queries.ids(conn),
            clients=await client_queries.ids(conn),
            servers=server_ids,
        )
        # Updated sites first: one may give up an alias that a new site takes.
        await site_queries.update_many(conn, pick("site", "update"), refs)
        await site_queries.insert_many(conn, pick("site", "create"), refs)
        await client_queries.delete_many(conn, _select(changes, "client", "delete"))
        await server_queries.delete_many(conn, _select(changes, "server", "delete"))
    result.applied = True
    return result

"""Inventory plans against a real store: create, update, keep, prune, all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockpit.inventory.plan import Inventory, InventoryError, apply, load_current, plan
from cockpit.model import Client, Platform, Server, Service, Site
from cockpit.store import Database, open_store


def fleet() -> Inventory:
    return Inventory(
        servers=(
            Server(
                name="web1",
                address="192.0.2.10",
                services=(Service("http", "nginx"), Service("db", "mysql", {"port": 3306})),
                ssh_options={"keepalive_interval": 10},
            ),
            Server(name="db1", address="192.0.2.11", environment="staging"),
        ),
        clients=(Client(name="acme", contact="ops@acme.example", quotas={"disk_mb": 500}),),
        platforms=(
            Platform(
                name="wp6", server="web1", type="wordpress", root="/var/lib/cockpit/platforms/wp6"
            ),
            Platform(
                name="static",
                server="web1",
                type="static",
                root="/var/lib/cockpit/platforms/static",
            ),
        ),
        sites=(
            Site(
                domain="example.com",
                platform="wp6",
                client="acme",
                aliases=("www.example.com",),
                redirection="www.example.com",
                db_server="db1",
                https="required",
            ),
            Site(domain="static.example.org", platform="static", status="disabled"),
        ),
    )


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    store = await open_store(tmp_path / "cockpit.db")
    yield store
    await store.close()


async def test_first_apply_creates_everything_and_second_changes_nothing(db: Database) -> None:
    first = await apply(db, fleet())
    assert first.applied
    assert first.counts()["site"]["create"] == 2
    assert first.counts()["server"]["create"] == 2
    current = await load_current(db)
    assert current.sorted() == fleet().sorted()
    second = await apply(db, fleet())
    assert second.empty and not second.applied
    assert second.summary() == "0 changes"


async def test_update_reports_field_diff(db: Database) -> None:
    await apply(db, fleet())
    inv = fleet()
    changed = Inventory(
        servers=inv.servers,
        clients=inv.clients,
        platforms=inv.platforms,
        sites=(
            Site(domain="example.com", platform="static", client="acme", https="on"),
            inv.sites[1],
        ),
    )
    result = await apply(db, changed, dry_run=True)
    assert not result.applied
    [change] = result.changes
    assert change.action == "update" and change.key == "example.com"
    fields = {name for name, _, _ in change.fields}
    assert fields == {"platform", "aliases", "redirection", "db_server", "https"}
    assert "https: required -> on" in result.render()
    # a dry run changed nothing
    assert (await load_current(db)).sorted() == fleet().sorted()
    await apply(db, changed)
    site = {s.domain: s for s in (await load_current(db)).sites}["example.com"]
    assert site.platform == "static" and site.aliases == ()


async def test_unmentioned_entities_are_kept_unless_pruned(db: Database) -> None:
    await apply(db, fleet())
    partial = Inventory(servers=fleet().servers[:1])
    kept = await apply(db, partial)
    assert kept.empty
    assert kept.kept["site"] == 2 and kept.kept["server"] == 1
    assert "--prune" in kept.summary()
    pruned = await apply(db, partial, prune=True)
    assert pruned.counts()["site"]["delete"] == 2
    assert pruned.counts()["platform"]["delete"] == 2
    assert pruned.counts()["server"]["delete"] == 1
    assert pruned.counts()["client"]["delete"] == 1
    assert (await load_current(db)).sorted() == partial.sorted()


@pytest.mark.parametrize(
    ("mutate", "kind", "field", "reason"),
    [
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                inv.platforms,
                (Site(domain="x.example", platform="nope"),),
            ),
            "site",
            "platform",
            "no platform nope",
        ),
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                inv.platforms,
                (Site(domain="x.example", platform="wp6", client="ghost"),),
            ),
            "site",
            "client",
            "no client ghost",
        ),
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                (Platform(name="p", server="web9", type="php", root="/var/lib/cockpit/p"),),
                (),
            ),
            "platform",
            "server",
            "no server web9",
        ),
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                (Platform(name="p", server="web1", type="php", root="/etc/p"),),
                (),
            ),
            "platform",
            "root",
            "must be inside /var/lib/cockpit",
        ),
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                inv.platforms,
                (
                    Site(domain="a.example", platform="wp6", aliases=("b.example",)),
                    Site(domain="b.example", platform="wp6"),
                ),
            ),
            "site",
            "aliases",
            "b.example is a site of its own",
        ),
        (
            lambda inv: Inventory(
                inv.servers,
                inv.clients,
                inv.platforms,
                (
                    Site(domain="a.example", platform="wp6", aliases=("c.example",)),
                    Site(domain="b.example", platform="wp6", aliases=("c.example",)),
                ),
            ),
            "site",
            "aliases",
            "c.example is also an alias of a.example",
        ),
        (lambda inv: Inventory(inv.servers + inv.servers[:1]), "server", "name", "is listed twice"),
    ],
)
async def test_inconsistent_inventory_applies_nothing(db, mutate, kind, field, reason) -> None:
    await apply(db, fleet())
    before = await load_current(db)
    with pytest.raises(InventoryError) as err:
        await apply(db, mutate(fleet()))
    assert (err.value.kind, err.value.field) == (kind, field)
    assert reason in err.value.reason
    assert await load_current(db) == before


async def test_failure_inside_transaction_rolls_everything_back(db: Database, monkeypatch) -> None:
    """A write that fails half-way (after servers were inserted) leaves the store as it was."""
    from cockpit.store import sites as site_queries

    async def boom(*args, **kwargs):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(site_queries, "insert_many", boom)
    with pytest.raises(RuntimeError):
        await apply(db, fleet())
    assert (await load_current(db)).size() == 0


def test_plan_orders_deletions_after_creations_and_sites_first() -> None:
    current = fleet()
    result = plan(
        current, Inventory(servers=(Server(name="new", address="192.0.2.99"),)), prune=True
    )
    actions = [(c.action, c.kind) for c in result.changes]
    assert actions[0] == ("create", "server")
    deletes = [kind for action, kind in actions if action == "delete"]
    assert deletes == ["site", "site", "platform", "platform", "client", "server", "server"]


async def test_alias_moves_between_sites_in_one_apply(db: Database) -> None:
    await apply(db, fleet())
    inv = fleet()
    moved = Inventory(
        inv.servers,
        inv.clients,
        inv.platforms,
        (
            Site(domain="example.com", platform="wp6", client="acme"),
            Site(domain="static.example.org", platform="static", aliases=("www.example.com",)),
        ),
    )
    await apply(db, moved)
    sites = {s.domain: s for s in (await load_current(db)).sites}
    assert sites["static.example.org"].aliases == ("www.example.com",)
    assert sites["example.com"].aliases == ()

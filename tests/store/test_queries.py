"""The entity queries: round trips, the paged site list, integrity rules, rollbacks."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from storekit import (
    Inventory,
    check_search_index,
    insert_inventory,
    refs,
    sample_backups,
    sample_inventory,
)

from cockpit.model import (
    Backup,
    BackupReason,
    Client,
    HttpsMode,
    Platform,
    PlatformType,
    Server,
    Service,
    ServiceKind,
    Site,
    SiteStatus,
    ValidationError,
)
from cockpit.store import ConflictError, Database, NotFoundError, StoreError
from cockpit.store import backups as backup_queries
from cockpit.store import clients as client_queries
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import SORT_COLUMNS, RefIds, SiteFilter

# ---------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------


def by(attr: str, items: list[object]) -> list[object]:
    return sorted(items, key=lambda item: getattr(item, attr))


def all_have_ids(items: list[object]) -> bool:
    ids = [getattr(item, "id", None) for item in items]
    return all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)


async def test_servers_round_trip(filled: Database) -> None:
    inv = sample_inventory()
    async with filled.read() as conn:
        stored = await server_queries.list_all(conn)
        assert stored == by("name", inv.servers)
        assert all_have_ids(stored)
        for server in inv.servers:
            got = await server_queries.get(conn, server.name)
            assert got == server
            # Equal in every field, also those a dataclass == might gloss over.
            assert got is not None
            assert dict(got.ssh_options) == dict(server.ssh_options)
            assert [dict(s.settings) for s in got.services] == [
                dict(s.settings) for s in server.services
            ]
            assert type(got.port) is int
        assert await server_queries.get(conn, "nope") is None
        assert await server_queries.count(conn) == len(inv.servers)
        ids = await server_queries.ids(conn)
        assert ids == {s.name: s.id for s in stored}
    web1 = next(s for s in stored if s.name == "web1")
    assert web1.ssh_options["sudo"] is True
    assert web1.ssh_options["connect_timeout"] == 10
    assert web1.service(ServiceKind.HTTP) == Service(
        ServiceKind.HTTP, "nginx", {"workers": 4, "http2": True}
    )


async def test_clients_round_trip(filled: Database) -> None:
    inv = sample_inventory()
    async with filled.read() as conn:
        stored = await client_queries.list_all(conn)
        assert stored == by("name", inv.clients)
        assert all_have_ids(stored)
        for client in inv.clients:
            assert await client_queries.get(conn, client.name) == client
        assert await client_queries.get(conn, "nope") is None
        assert (await client_queries.ids(conn)).keys() == {c.name for c in inv.clients}
    acme = next(c for c in stored if c.name == "acme")
    assert dict(acme.quotas) == {"disk_mb": 1000, "sites": 50}


async def test_platforms_round_trip(filled: Database) -> None:
    inv = sample_inventory()
    async with filled.read() as conn:
        stored = await platform_queries.list_all(conn)
        assert stored == by("name", inv.platforms)
        assert all_have_ids(stored)
        for platform in inv.platforms:
            got = await platform_queries.get(conn, platform.name)
            assert got == platform
            assert got is not None
            assert type(got.locked) is bool
        assert await platform_queries.get(conn, "nope") is None
        on_web2 = await platform_queries.list_all(conn, server="web2")
        assert on_web2 == by("name", [p for p in inv.platforms if p.server == "web2"])
        assert await platform_queries.list_all(conn, server="bare") == []


async def test_sites_round_trip(filled: Database) -> None:
    inv = sample_inventory()
    async with filled.read() as conn:
        stored = await site_queries.list_all(conn)
        assert stored == by("domain", inv.sites)
        assert all_have_ids(stored)
        for site in inv.sites:
            got = await site_queries.get(conn, site.domain)
            assert got == site
        assert await site_queries.get(conn, "nope.example") is None
        assert (await site_queries.ids(conn)).keys() == {s.domain for s in inv.sites}
        shop = await site_queries.get(conn, "shop.acme.example")
    assert shop is not None
    assert shop.aliases == ("*.shop.acme.example", "acme-shop.example", "www.shop.acme.example")
    assert shop.redirection == "www.shop.acme.example"
    assert shop.db_server == "db1"
    assert shop.https is HttpsMode.REQUIRED
    assert shop.status is SiteStatus.ENABLED


async def test_backups_round_trip(filled: Database) -> None:
    backups = sample_backups()
    async with filled.write() as conn:
        ids = [await backup_queries.add(conn, b) for b in backups]
    assert len(set(ids)) == len(ids)
    assert all(i > 0 for i in ids)
    async with filled.read() as conn:
        shop = await backup_queries.list_for_site(conn, "shop.acme.example")
        everything = await backup_queries.list_all(conn)
        assert await backup_queries.list_for_site(conn, "blog.acme.example") == []
    newest_first = sorted(backups, key=lambda b: b.created, reverse=True)
    assert everything == newest_first
    assert shop == [b for b in newest_first if b.site == "shop.acme.example"]
    assert [b.id for b in everything] == [ids[1], ids[0], ids[2]]
    for got, want in zip(everything, newest_first, strict=True):
        assert got.created == want.created
        assert got.created.tzinfo is not None
        assert got.size == want.size
        assert type(got.size) is int
    async with filled.write() as conn:
        await backup_queries.remove(conn, ids[0])
    async with filled.read() as conn:
        assert [b.id for b in await backup_queries.list_all(conn)] == [ids[1], ids[2]]
        assert len(await backup_queries.list_all(conn, limit=1)) == 1


async def test_backups_are_ordered_by_time_whatever_their_offset(filled: Database) -> None:
    """10:00 at +02:00 is 08:00 UTC: earlier than 09:00 UTC, though it sorts after as text."""
    plus_two = timezone(timedelta(hours=2))
    made = [
        Backup(
            site="globex.example",
            location="/b/1",
            size=1,
            sha256="1" * 64,
            created=datetime(2024, 1, 1, 10, 0, tzinfo=plus_two),
        ),
        Backup(
            site="globex.example",
            location="/b/2",
            size=2,
            sha256="2" * 64,
            created=datetime(2024, 1, 1, 9, 0, tzinfo=UTC),
        ),
        Backup(
            site="globex.example",
            location="/b/3",
            size=3,
            sha256="3" * 64,
            created=datetime(2024, 1, 1, 9, 0, 0, 1),
        ),  # naive: UTC
        Backup(
            site="globex.example",
            location="/b/4",
            size=4,
            sha256="4" * 64,
            created=datetime(2024, 1, 1, 8, 30, tzinfo=timezone(timedelta(hours=-1))),
        ),
    ]
    made = [replace(b, server="web2") for b in made]
    async with filled.write() as conn:
        for backup in made:
            await backup_queries.add(conn, backup)
    async with filled.read() as conn:
        got = await backup_queries.list_for_site(conn, "globex.example")
    assert [b.location for b in got] == ["/b/4", "/b/3", "/b/2", "/b/1"]
    assert got == sorted(made, key=lambda b: b.created, reverse=True)


async def test_a_backup_is_on_its_own_server(filled: Database) -> None:
    """Named, a backup's server is recorded as it is (a site may have left it); unnamed,
    it is the site's current server; an unknown one is refused."""
    made = sample_backups()[0]
    async with filled.write() as conn:
        here = await backup_queries.add(conn, replace(made, server=None))
        there = await backup_queries.add(
            conn, replace(made, server="bare", reason=BackupReason.SAFETY)
        )
        with pytest.raises(NotFoundError, match="no server web9"):
            await backup_queries.add(conn, replace(made, server="web9"))
    async with filled.read() as conn:
        got_here = await backup_queries.get(conn, here)
        got_there = await backup_queries.get(conn, there)
    assert got_here is not None and got_here.server == "web1"  # wp-prod is on web1
    assert got_here.reason is BackupReason.BACKUP
    assert got_there is not None and got_there.server == "bare"
    assert got_there.reason is BackupReason.SAFETY
    # the servers that hold backups cannot leave the inventory before them
    with pytest.raises(ConflictError, match="FOREIGN KEY"):
        async with filled.write() as conn:
            await server_queries.delete_many(conn, ["bare"])
    async with filled.write() as conn:
        await backup_queries.remove(conn, there)
        await server_queries.delete_many(conn, ["bare"])


@pytest.mark.parametrize(
    ("field", "value"),
    [("server", "web 1"), ("server", "../web1"), ("server", ""), ("reason", "later")],
)
def test_a_backup_with_a_bad_server_or_reason_is_refused(field: str, value: str) -> None:
    args = {
        "site": "shop.acme.example",
        "location": "/b",
        "size": 0,
        "sha256": "0" * 64,
        "created": datetime.now(UTC),
        field: value,
    }
    with pytest.raises(ValidationError) as refused:
        Backup(**args)  # type: ignore[arg-type]
    assert refused.value.field == f"backup.{field}"


async def test_a_backup_of_an_unknown_site_is_refused(filled: Database) -> None:
    with pytest.raises(NotFoundError, match=r"no site nope\.example"):
        async with filled.write() as conn:
            await backup_queries.add(
                conn,
                Backup(
                    site="nope.example",
                    location="/b",
                    size=0,
                    sha256="0" * 64,
                    created=datetime.now(UTC),
                ),
            )


async def test_updates_round_trip(filled: Database) -> None:
    web1 = Server(
        name="web1",
        address="192.0.2.99",
        port=22,
        user="root",
        root="/srv/cockpit",
        environment="staging",
        ssh_options={"keepalive_interval": 30},
        services=(Service(ServiceKind.HTTP, "apache", {"mpm": "event"}),),
    )
    acme = Client(name="acme", contact="", quotas={"sites": 1})
    wp = Platform(
        name="wp-prod",
        server="web2",
        type=PlatformType.PHP,
        root="/srv/cockpit/wp2",
        release="",
        locked=False,
    )
    shop = Site(
        domain="shop.acme.example",
        platform="static1",
        client=None,
        aliases=("shop.acme.example.net", "www.globex.example"),  # takes globex's alias
        redirection=None,
        db_server=None,
        https=HttpsMode.OFF,
        status=SiteStatus.DISABLED,
    )
    globex = Site(domain="globex.example", platform="d10", client="globex")  # gives it up
    async with filled.write() as conn:
        await server_queries.update_many(conn, [web1])
        await client_queries.update_many(conn, [acme])
        await platform_queries.update_many(conn, [wp], await server_queries.ids(conn))
        await site_queries.update_many(conn, [shop, globex], await refs(conn))
    async with filled.read() as conn:
        assert await server_queries.get(conn, "web1") == web1
        assert await client_queries.get(conn, "acme") == acme
        assert await platform_queries.get(conn, "wp-prod") == wp
        assert await site_queries.get(conn, "shop.acme.example") == shop
        assert await site_queries.get(conn, "globex.example") == globex
        async with conn.execute("SELECT count(*) FROM services") as cursor:
            row = await cursor.fetchone()
        assert row == (sum(len(s.services) for s in sample_inventory().servers) - 3 + 1,)


@pytest.mark.parametrize("kind", ["server", "client", "platform", "site"])
async def test_updating_something_that_is_not_there_is_refused(filled: Database, kind: str) -> None:
    with pytest.raises(NotFoundError, match=r"no \w+ (ghost|ghost\.example)"):
        async with filled.write() as conn:
            if kind == "server":
                await server_queries.update_many(
                    conn,
                    [
                        Server(name="web1", address="192.0.2.1"),
                        Server(name="ghost", address="192.0.2.2"),
                    ],
                )
            elif kind == "client":
                await client_queries.update_many(conn, [Client("acme"), Client("ghost")])
            elif kind == "platform":
                await platform_queries.update_many(
                    conn,
                    [Platform(name="ghost", server="web1", type="php", root="/srv/cockpit/g")],
                    await server_queries.ids(conn),
                )
            else:
                await site_queries.update_many(
                    conn, [Site(domain="ghost.example", platform="d10")], await refs(conn)
                )
    async with filled.read() as conn:  # and the half that was there is untouched
        assert await server_queries.get(conn, "web1") == sample_inventory().servers[0]
        assert await client_queries.get(conn, "acme") == sample_inventory().clients[0]


async def test_references_to_unknown_entities_are_refused(filled: Database) -> None:
    with pytest.raises(NotFoundError, match="no server ghost"):
        async with filled.write() as conn:
            await platform_queries.insert_many(
                conn,
                [Platform(name="new", server="ghost", type="php", root="/srv/x")],
                await server_queries.ids(conn),
            )
    for site, words in [
        (Site(domain="new.example", platform="ghost"), "no platform ghost"),
        (Site(domain="new.example", platform="d10", client="ghost"), "no client ghost"),
        (Site(domain="new.example", platform="d10", db_server="ghost"), "no server ghost"),
    ]:
        with pytest.raises(NotFoundError, match=words):
            async with filled.write() as conn:
                await site_queries.insert_many(conn, [site], await refs(conn))


# ---------------------------------------------------------------------------
# Integrity rules
# ---------------------------------------------------------------------------


async def test_an_alias_belongs_to_one_site_only(filled: Database) -> None:
    before = await everything(filled)
    with pytest.raises(ConflictError, match=r"UNIQUE constraint failed: site_aliases\.alias"):
        async with filled.write() as conn:
            await site_queries.insert_many(
                conn,
                [
                    Site(domain="first.example", platform="d10"),  # would be written first
                    Site(domain="copycat.example", platform="d10", aliases=("www.globex.example",)),
                ],
                await refs(conn),
            )
    with pytest.raises(ConflictError, match="UNIQUE"):
        async with filled.write() as conn:
            await site_queries.update_many(
                conn,
                [
                    Site(
                        domain="blog.acme.example",
                        platform="wp-prod",
                        aliases=("www.shop.acme.example",),
                    )
                ],
                await refs(conn),
            )
    assert await everything(filled) == before


async def test_an_alias_may_not_be_another_sites_domain(filled: Database) -> None:
    before = await everything(filled)
    with pytest.raises(ConflictError, match="alias is already a site domain"):
        async with filled.write() as conn:
            await site_queries.insert_many(
                conn,
                [Site(domain="new.example", platform="d10", aliases=("globex.example",))],
                await refs(conn),
            )
    with pytest.raises(ConflictError, match="alias is already a site domain"):
        async with filled.write() as conn:
            await site_queries.update_many(
                conn,
                [
                    Site(
                        domain="blog.acme.example",
                        platform="wp-prod",
                        aliases=("shop.acme.example",),
                    )
                ],
                await refs(conn),
            )
    with pytest.raises(ConflictError, match="alias is already a site domain"):
        async with filled.write() as conn:
            await conn.execute(
                "UPDATE site_aliases SET alias = 'globex.example'"
                " WHERE alias = 'www.shop.acme.example'"
            )
    assert await everything(filled) == before


async def test_a_domain_may_not_be_another_sites_alias(filled: Database) -> None:
    """The other way round: the alias was there first."""
    before = await everything(filled)
    with pytest.raises(ConflictError, match="domain is already an alias of a site"):
        async with filled.write() as conn:
            await site_queries.insert_many(
                conn, [Site(domain="www.globex.example", platform="d10")], await refs(conn)
            )
    with pytest.raises(ConflictError, match="domain is already an alias of a site"):
        async with filled.write() as conn:
            await conn.execute(
                "UPDATE sites SET domain = 'acme-shop.example' WHERE domain = 'globex.example'"
            )
    assert await everything(filled) == before


async def test_a_site_may_take_an_alias_given_up_in_the_same_write(filled: Database) -> None:
    """What ``inventory apply`` does: updated sites first, then the new ones."""
    async with filled.write() as conn:
        await site_queries.update_many(
            conn,
            [Site(domain="globex.example", platform="d10", client="globex")],
            await refs(conn),
        )
        await site_queries.insert_many(
            conn, [Site(domain="www.globex.example", platform="d10")], await refs(conn)
        )
    async with filled.read() as conn:
        assert await site_queries.get(conn, "www.globex.example") is not None


@pytest.mark.parametrize(
    ("delete", "what"),
    [
        (lambda conn: server_queries.delete_many(conn, ["web1"]), "server with platforms"),
        (lambda conn: server_queries.delete_many(conn, ["db1"]), "db server of a site"),
        (lambda conn: platform_queries.delete_many(conn, ["d10"]), "platform with sites"),
        (lambda conn: client_queries.delete_many(conn, ["acme"]), "client with sites"),
    ],
)
async def test_deleting_what_others_stand_on_is_refused(
    filled: Database, delete: object, what: str
) -> None:
    before = await everything(filled)
    with pytest.raises(ConflictError, match="FOREIGN KEY constraint failed"):
        async with filled.write() as conn:
            await delete(conn)  # type: ignore[operator]
    assert await everything(filled) == before, what


async def test_deleting_cascades_to_what_belongs_to_it(filled: Database) -> None:
    async with filled.write() as conn:
        for backup in sample_backups():
            await backup_queries.add(conn, backup)
        await site_queries.delete_many(
            conn, ["shop.acme.example", "not-there.example", "xn--bcher-kva.example"]
        )
        await server_queries.delete_many(conn, ["bare"])
        await platform_queries.delete_many(conn, ["php-stage"])
    async with filled.read() as conn:
        assert await site_queries.get(conn, "shop.acme.example") is None
        assert [b.site for b in await backup_queries.list_all(conn)] == ["globex.example"]
        async with conn.execute(
            "SELECT count(*) FROM site_aliases a JOIN sites s ON s.id = a.site_id"
            " WHERE s.domain = 'shop.acme.example'"
        ) as cursor:
            assert await cursor.fetchone() == (0,)
        async with conn.execute(
            "SELECT count(*) FROM site_aliases WHERE site_id NOT IN (SELECT id FROM sites)"
        ) as cursor:
            assert await cursor.fetchone() == (0,)
        assert await server_queries.get(conn, "bare") is None
    # The freed alias and domain can be used again.
    async with filled.write() as conn:
        await site_queries.insert_many(
            conn,
            [Site(domain="www.shop.acme.example", platform="d10", aliases=("shop.acme.example",))],
            await refs(conn),
        )
    # The web1 server, with its services, goes once nothing stands on it.
    async with filled.write() as conn:
        await site_queries.delete_many(conn, list((await site_queries.ids(conn)).keys()))
        await platform_queries.delete_many(conn, ["wp-prod", "static1"])
        await server_queries.delete_many(conn, ["web1"])
    async with filled.read() as conn:
        async with conn.execute(
            "SELECT count(*) FROM services WHERE server_id NOT IN (SELECT id FROM servers)"
        ) as cursor:
            assert await cursor.fetchone() == (0,)
        assert await site_queries.count(conn) == 0


async def test_a_rolled_back_write_leaves_nothing(store: Database) -> None:
    inv = sample_inventory()
    with pytest.raises(RuntimeError):
        async with store.write() as conn:
            await server_queries.insert_many(conn, inv.servers)
            await client_queries.insert_many(conn, inv.clients)
            await platform_queries.insert_many(conn, inv.platforms, await server_queries.ids(conn))
            await site_queries.insert_many(conn, inv.sites, await refs(conn))
            await backup_queries.add(conn, sample_backups()[0])
            raise RuntimeError("the user pressed Escape")
    assert await everything(store) == Inventory()
    async with store.read() as conn:
        for table in (
            "servers",
            "services",
            "clients",
            "platforms",
            "sites",
            "site_aliases",
            "backups",
        ):
            async with conn.execute(f"SELECT count(*) FROM {table}") as cursor:
                assert await cursor.fetchone() == (0,), table
        assert await site_queries.count(conn, SiteFilter(text="acme")) == 0
    await check_search_index(store)
    # And the same inventory goes in cleanly afterwards.
    await insert_inventory(store, inv)
    assert (await everything(store)).sites == by("domain", inv.sites)


async def test_a_failing_statement_rolls_back_the_statements_before_it(store: Database) -> None:
    inv = sample_inventory()
    with pytest.raises(ConflictError):
        async with store.write() as conn:
            await server_queries.insert_many(conn, inv.servers)
            await client_queries.insert_many(conn, [*inv.clients, inv.clients[0]])  # twice
    assert await everything(store) == Inventory()


async def everything(db: Database) -> Inventory:
    async with db.read() as conn:
        return Inventory(
            servers=await server_queries.list_all(conn),
            clients=await client_queries.list_all(conn),
            platforms=await platform_queries.list_all(conn),
            sites=await site_queries.list_all(conn),
        )


# ---------------------------------------------------------------------------
# The paged, filtered, sorted site list
# ---------------------------------------------------------------------------

ENVIRONMENTS = {"alpha": "prod", "bravo": "staging", "charlie": "prod", "delta": "dev"}
PLATFORMS = {
    "p-wp1": "alpha",
    "p-wp2": "alpha",
    "p-dr": "bravo",
    "p-st": "charlie",
    "p-php": "charlie",
    "p-empty": "delta",
}
WORDS = ["shop", "blog", "news", "mail", "wiki", "docs", "app", "api", "cdn", "m"]
TLDS = ["example", "example.org", "test", "shop.example"]


def fleet_inventory(n: int = 150, seed: int = 7) -> Inventory:
    rng = random.Random(seed)
    servers = [
        Server(name=name, address=f"192.0.2.{i + 1}", environment=env, root="/srv")
        for i, (name, env) in enumerate(ENVIRONMENTS.items())
    ]
    clients = [Client(name=name) for name in ("c-one", "c-two", "c-three")]
    platforms = [
        Platform(name=name, server=server, type="php", root=f"/srv/{name}")
        for name, server in PLATFORMS.items()
    ]
    sites: list[Site] = []
    domains: set[str] = set()
    while len(sites) < n:
        label = rng.choice(WORDS) + rng.choice(["", "0", "1", "42"])
        if rng.random() < 0.5:
            label += rng.choice(["", "-"]) + rng.choice(WORDS)
        domain = f"{label}.{rng.choice(TLDS)}"
        if domain in domains or domain.startswith("-"):
            continue
        domains.add(domain)
        sites.append(
            Site(
                domain=domain,
                platform=rng.choice([p for p in PLATFORMS if p != "p-empty"]),
                client=rng.choice(["c-one", "c-two", "c-three", None]),
                https=rng.choice(list(HttpsMode)),
                status=rng.choice(list(SiteStatus)),
            )
        )
    return Inventory(servers, clients, platforms, sites)


@pytest.fixture
async def fleet(store: Database) -> tuple[Database, list[Site], dict[str, str]]:
    """150 varied sites; ``created_at`` set so that many sites share one (ties)."""
    inv = fleet_inventory()
    await insert_inventory(store, inv)
    created: dict[str, str] = {}
    async with store.write() as conn:
        for i, site in enumerate(sorted(inv.sites, key=lambda s: s.domain)[::-1]):
            stamp = f"2024-01-{1 + (i * 7) % 5:02d}T00:00:00.000Z"
            created[site.domain] = stamp
            await conn.execute(
                "UPDATE sites SET created_at = ? WHERE domain = ?", (stamp, site.domain)
            )
    return store, inv.sites, created


def reference(
    sites: list[Site], created: dict[str, str], where: SiteFilter, sort: str, descending: bool
) -> list[str]:
    """What the list must show, computed in Python."""

    def matches(site: Site) -> bool:
        server = PLATFORMS[site.platform]
        return (
            (not where.text or where.text.lower() in site.domain)
            and (where.platform is None or site.platform == where.platform)
            and (where.server is None or server == where.server)
            and (where.client is None or site.client == where.client)
            and (where.status is None or site.status == where.status)
            and (where.environment is None or ENVIRONMENTS[server] == where.environment)
        )

    def key(site: Site) -> tuple[int, str]:
        value = {
            "domain": site.domain,
            "platform": site.platform,
            "server": PLATFORMS[site.platform],
            "client": site.client,
            "https": site.https.value,
            "status": site.status.value,
            "created": created[site.domain],
        }[sort]
        return (0, "") if value is None else (1, value)  # NULL first, as SQLite sorts

    chosen = sorted((s for s in sites if matches(s)), key=lambda s: s.domain)
    # A stable sort keeps the domain order among equals, also when reversed: the tie-break.
    return [s.domain for s in sorted(chosen, key=key, reverse=descending)]


FILTERS = [
    SiteFilter(),
    SiteFilter(text="shop"),
    SiteFilter(text="SHOP"),
    SiteFilter(text="p-"),
    SiteFilter(text="m"),
    SiteFilter(text=".example.org"),
    SiteFilter(text="42"),
    SiteFilter(text="nothing-like-this"),
    SiteFilter(platform="p-wp1"),
    SiteFilter(platform="p-empty"),
    SiteFilter(server="alpha"),
    SiteFilter(server="charlie"),
    SiteFilter(client="c-two"),
    SiteFilter(status=SiteStatus.DISABLED),
    SiteFilter(status=SiteStatus.DELETED),
    SiteFilter(environment="prod"),
    SiteFilter(environment="staging"),
    SiteFilter(environment="dev"),
    SiteFilter(text="blog", server="alpha", status=SiteStatus.ENABLED),
    SiteFilter(text="a", client="c-one", environment="prod"),
    SiteFilter(platform="p-st", server="bravo"),  # contradictory: nothing
]


@pytest.fixture(params=["indexed", "scan"])
def search_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a search test both through the trigram index and by scanning every domain."""
    if request.param == "scan":
        monkeypatch.setattr(site_queries, "INDEXED_MATCHES", -1)
    return str(request.param)


@pytest.mark.parametrize("where", FILTERS, ids=repr)
async def test_filters_match_the_reference_and_count_agrees(
    fleet: tuple[Database, list[Site], dict[str, str]], where: SiteFilter, search_mode: str
) -> None:
    db, sites, created = fleet
    expected = reference(sites, created, where, "domain", False)
    async with db.read() as conn:
        got = await site_queries.page(conn, where, limit=1000)
        total = await site_queries.count(conn, where)
    assert [s.domain for s in got] == expected
    assert total == len(expected)
    by_domain = {s.domain: s for s in sites}
    assert got == [by_domain[d] for d in expected]  # full sites, not just domains


@pytest.mark.parametrize("sort", list(SORT_COLUMNS))
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(
    "where", [SiteFilter(), SiteFilter(text="o"), SiteFilter(environment="prod")], ids=repr
)
async def test_every_sort_column_with_a_stable_tie_break(
    fleet: tuple[Database, list[Site], dict[str, str]],
    sort: str,
    descending: bool,
    where: SiteFilter,
) -> None:
    db, sites, created = fleet
    expected = reference(sites, created, where, sort, descending)
    async with db.read() as conn:
        got = await site_queries.page(conn, where, sort=sort, descending=descending, limit=1000)
        # Paging through in small steps gives the same sequence: no row lost or repeated.
        paged: list[str] = []
        for offset in range(0, len(expected) + 7, 7):
            page = await site_queries.page(
                conn, where, sort=sort, descending=descending, offset=offset, limit=7
            )
            assert len(page) == min(7, max(0, len(expected) - offset))
            paged.extend(s.domain for s in page)
    assert [s.domain for s in got] == expected
    assert paged == expected


async def test_the_sort_columns_are_all_exercised(
    fleet: tuple[Database, list[Site], dict[str, str]],
) -> None:
    """The data really has ties in every column and NULL clients, or the tests prove little."""
    _, sites, created = fleet
    assert len({s.platform for s in sites}) < len(sites)
    assert len(set(created.values())) < len(sites)
    assert any(s.client is None for s in sites) and any(s.client for s in sites)
    assert {s.status for s in sites} == set(SiteStatus)
    assert {s.https for s in sites} == set(HttpsMode)


async def test_offset_and_limit_edges(fleet: tuple[Database, list[Site], dict[str, str]]) -> None:
    db, sites, created = fleet
    everything_sorted = reference(sites, created, SiteFilter(), "domain", False)
    async with db.read() as conn:
        assert await site_queries.page(conn, limit=0) == []
        assert [s.domain for s in await site_queries.page(conn, offset=-5, limit=3)] == (
            everything_sorted[:3]
        )
        assert await site_queries.page(conn, offset=len(sites), limit=10) == []
        last = await site_queries.page(conn, offset=len(sites) - 2, limit=10)
        assert [s.domain for s in last] == everything_sorted[-2:]
        assert len(await site_queries.page(conn)) == 100  # the default limit
        assert await site_queries.count(conn) == len(sites)
        with pytest.raises(ValueError, match="cannot sort sites by 'size'"):
            await site_queries.page(conn, sort="size")
        with pytest.raises(ValueError, match="cannot sort"):
            await site_queries.page(conn, sort="domain; DROP TABLE sites")


def needles(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    alphabet = "abcdefghilmnopstwx0124-._%\\\"'* "
    out = [
        "",
        "e",
        "ex",
        "exa",
        "example",
        ".",
        "-",
        "--",
        "o.e",
        "p.",
        "%",
        "_",
        "\\",
        "%%",
        "a%",
        "_a",
        "\\\\",
        '"',
        '""',
        "' OR 1=1 --",
        "shop.example",
        "Shop",
        "ÉXAMPLE",
        "é",
        "😀",
        "\x00",
        "op-",
        "ws42",
        "4",
        "42b",
    ]
    while len(out) < count:
        if rng.random() < 0.5:  # a piece of a real domain
            word = rng.choice(WORDS) + rng.choice(["", ".", "-", "0", "42"]) + rng.choice(TLDS)
            start = rng.randrange(len(word))
            out.append(word[start : start + rng.randint(1, 8)])
        else:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))))
    return out


async def test_text_search_treats_every_needle_literally(
    fleet: tuple[Database, list[Site], dict[str, str]], search_mode: str
) -> None:
    db, sites, created = fleet
    async with db.read() as conn:
        for needle in needles(400):
            where = SiteFilter(text=needle)
            expected = reference(sites, created, where, "domain", False)
            got = await site_queries.page(conn, where, limit=1000)
            assert [s.domain for s in got] == expected, repr(needle)
            assert await site_queries.count(conn, where) == len(expected), repr(needle)


async def test_wildcards_and_backslashes_in_the_needle_are_literal(
    store: Database, search_mode: str
) -> None:
    """Domains the model would never accept, written behind its back: the search still
    matches ``%``, ``_`` and ``\\`` as the characters they are."""
    await insert_inventory(store, fleet_inventory(n=0))
    odd = [
        "a%b.test",
        "a_b.test",
        "a\\b.test",
        "axb.test",
        'q"uote.test',
        "a%%b.test",
        "ab.test",
        "a\\%b.test",
    ]
    async with store.write() as conn:
        await conn.executemany(
            "INSERT INTO sites (domain, platform_id) SELECT ?, id FROM platforms WHERE name = ?",
            [(domain, "p-wp1") for domain in odd],
        )
    cases = {
        "%": ["a%%b.test", "a%b.test", "a\\%b.test"],
        "a%b": ["a%b.test"],
        "_": ["a_b.test"],
        "a_b": ["a_b.test"],
        "\\": ["a\\%b.test", "a\\b.test"],
        "a\\b": ["a\\b.test"],
        "\\%": ["a\\%b.test"],
        "%%": ["a%%b.test"],
        '"': ['q"uote.test'],
        'q"u': ['q"uote.test'],
        "x": ["axb.test"],
        ".test": sorted(odd),
    }
    async with store.read() as conn:
        for needle, expected in cases.items():
            got = await site_queries.page(conn, SiteFilter(text=needle))
            assert [s.domain for s in got] == expected, repr(needle)
            assert await site_queries.count(conn, SiteFilter(text=needle)) == len(expected)


async def test_both_search_strategies_are_used(
    fleet: tuple[Database, list[Site], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rare needle goes through the trigram index, a common or short one through a scan."""
    db, _, _ = fleet
    used: list[str] = []
    async with db.read() as conn:
        await conn.set_trace_callback(used.append)
        monkeypatch.setattr(site_queries, "INDEXED_MATCHES", 10)
        await site_queries.page(conn, SiteFilter(text="wiki42"))
        rare = [s for s in used if s.startswith("SELECT st.id, st.domain")]
        used.clear()
        await site_queries.page(conn, SiteFilter(text="example"))
        common = [s for s in used if s.startswith("SELECT st.id, st.domain")]
        used.clear()
        await site_queries.page(conn, SiteFilter(text="ap"))
        short = [s for s in used if s.startswith("SELECT st.id, st.domain")]
        await conn.set_trace_callback(None)
    assert "sites_fts MATCH" in rare[0] and "LIKE" not in rare[0]
    assert "LIKE" in common[0] and "sites_fts MATCH" not in common[0]
    assert "LIKE" in short[0] and "sites_fts" not in short[0]


async def test_the_search_index_follows_every_change(
    fleet: tuple[Database, list[Site], dict[str, str]],
) -> None:
    db, sites, _ = fleet
    async with db.write() as conn:
        gone = [s.domain for s in sites[:40]]
        await site_queries.delete_many(conn, gone)
        await site_queries.update_many(
            conn, [replace(s, status=SiteStatus.DELETED) for s in sites[40:60]], await refs(conn)
        )
        await conn.execute("UPDATE sites SET domain = 'renamed-' || domain WHERE id % 5 = 0")
        await site_queries.insert_many(
            conn,
            [Site(domain=f"fresh{i}.example", platform="p-dr") for i in range(1200)],  # > a batch
            await refs(conn),
        )
        async with conn.execute("SELECT domain FROM sites") as cursor:
            domains = [row[0] async for row in cursor]
    assert len(domains) == len(sites) - 40 + 1200
    await check_search_index(db)
    async with db.read() as conn:
        for needle in ["renamed-", "fresh11", "fresh1199", "shop", ".example", "wiki42"]:
            expected = sorted(d for d in domains if needle in d)
            got = await site_queries.page(conn, SiteFilter(text=needle), limit=5000)
            assert [s.domain for s in got] == expected, needle
            assert await site_queries.count(conn, SiteFilter(text=needle)) == len(expected)
        for domain in gone:
            found = await site_queries.page(conn, SiteFilter(text=domain), limit=5000)
            assert domain not in [s.domain for s in found]


async def test_a_deleted_sites_domain_does_not_find_the_site_that_reuses_its_id(
    store: Database, search_mode: str
) -> None:
    """SQLite gives a new row the highest id + 1: the id of a site just deleted. A stale
    entry of the old domain in the search index would then find the new site."""
    await insert_inventory(store, fleet_inventory(n=0))
    async with store.write() as conn:
        await site_queries.insert_many(
            conn,
            [
                Site(domain="keep.example", platform="p-wp1"),
                Site(domain="vanished-shop.example", platform="p-wp1"),
            ],
            await refs(conn),
        )
    async with store.read() as conn:
        old_id = (await site_queries.ids(conn))["vanished-shop.example"]
    async with store.write() as conn:
        await site_queries.delete_many(conn, ["vanished-shop.example"])
        await site_queries.insert_many(
            conn, [Site(domain="newcomer.example", platform="p-wp1")], await refs(conn)
        )
    async with store.read() as conn:
        assert (await site_queries.ids(conn))["newcomer.example"] == old_id
        for needle in ("vanished", "vanished-shop.example", "hed-sh"):
            assert await site_queries.page(conn, SiteFilter(text=needle)) == [], needle
            assert await site_queries.count(conn, SiteFilter(text=needle)) == 0, needle
        assert [s.domain for s in await site_queries.page(conn, SiteFilter(text="newcomer"))] == [
            "newcomer.example"
        ]


async def test_many_sites_in_batches_round_trip(store: Database) -> None:
    """More sites than one INSERT statement takes, with aliases spread over the batches."""
    await insert_inventory(store, fleet_inventory(n=0))
    sites = [
        Site(
            domain=f"s{i:04d}.example",
            platform="p-wp1",
            aliases=(f"www.s{i:04d}.example",) if i % 3 == 0 else (),
            client="c-one" if i % 2 else None,
        )
        for i in range(1234)
    ]
    async with store.write() as conn:
        await site_queries.insert_many(conn, sites, await refs(conn))
    async with store.read() as conn:
        assert await site_queries.list_all(conn) == sites
    async with store.write() as conn:
        await site_queries.delete_many(conn, [s.domain for s in sites[::2]])
    async with store.read() as conn:
        assert await site_queries.list_all(conn) == sites[1::2]
        async with conn.execute("SELECT count(*) FROM site_aliases") as cursor:
            assert await cursor.fetchone() == (sum(1 for s in sites[1::2] if s.aliases),)


async def test_a_duplicate_domain_in_one_batch_is_refused_whole(store: Database) -> None:
    await insert_inventory(store, fleet_inventory(n=0))
    sites = [Site(domain=f"d{i}.example", platform="p-wp1") for i in range(700)]
    sites.append(Site(domain="d3.example", platform="p-dr"))
    with pytest.raises(ConflictError, match=r"UNIQUE constraint failed: sites\.domain"):
        async with store.write() as conn:
            await site_queries.insert_many(conn, sites, await refs(conn))
    async with store.read() as conn:
        assert await site_queries.count(conn) == 0


def test_store_errors_are_the_one_family() -> None:
    assert issubclass(ConflictError, StoreError)
    assert issubclass(NotFoundError, StoreError)


async def test_refs_helper_matches_the_queries(filled: Database) -> None:
    async with filled.read() as conn:
        got = await refs(conn)
        assert isinstance(got, RefIds)
        assert set(got.platforms) == {p.name for p in sample_inventory().platforms}

"""Inverted and regular-expression site filters, against a Python reference."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cockpit.model import Platform, Server, Site
from cockpit.store import open_store
from cockpit.store import platforms as platform_queries
from cockpit.store import servers as server_queries
from cockpit.store import sites as site_queries
from cockpit.store.sites import RefIds, SiteFilter

DOMAINS = [f"{w}{n}.example{n % 3}.com" for n in range(40) for w in ("alpha", "beta", "shop")] + [
    "www.wordpress-site.org",
    "a_b.example.net".replace("_", "-"),
]


@pytest.fixture
async def db(tmp_path: Path):
    store = await open_store(tmp_path / "c.db")
    async with store.write() as conn:
        await server_queries.insert_many(conn, [Server(name="s", address="192.0.2.1")])
        await platform_queries.insert_many(
            conn,
            [Platform(name="p", server="s", type="php", root="/var/lib/cockpit/p")],
            await server_queries.ids(conn),
        )
        refs = RefIds(platforms=await platform_queries.ids(conn), clients={}, servers={})
        await site_queries.insert_many(conn, [Site(domain=d, platform="p") for d in DOMAINS], refs)
    yield store
    await store.close()


async def domains(db, where: SiteFilter) -> list[str]:
    async with db.read() as conn:
        page = await site_queries.page(conn, where, limit=1000)
        assert await site_queries.count(conn, where) == len(page)
    return [s.domain for s in page]


@pytest.mark.parametrize("text", ["alpha", "example1", "zz", "a", "wordpress-site", "%", "shop3"])
async def test_exclude_is_the_complement(db, text: str) -> None:
    got = await domains(db, SiteFilter(text=text, exclude=True))
    assert got == sorted(d for d in DOMAINS if text not in d)
    assert sorted(got + await domains(db, SiteFilter(text=text))) == sorted(DOMAINS)


@pytest.mark.parametrize(
    "pattern", [r"^alpha\d+\.", r"EXAMPLE[12]", r"shop(1|2)0", r"\.org$", r"^$"]
)
async def test_regex_matches_like_python(db, pattern: str) -> None:
    expected = sorted(d for d in DOMAINS if re.search(pattern, d, re.IGNORECASE))
    assert await domains(db, SiteFilter(text=pattern, regex=True)) == expected
    inverted = await domains(db, SiteFilter(text=pattern, regex=True, exclude=True))
    assert inverted == sorted(set(DOMAINS) - set(expected))


async def test_bad_regex_is_refused_with_the_reason(db) -> None:
    with pytest.raises(ValueError, match="not a valid regular expression"):
        await domains(db, SiteFilter(text="(unclosed", regex=True))

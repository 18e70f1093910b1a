"""A list read again after a change never keeps the rows of a read started before it."""

from __future__ import annotations

import asyncio

from cockpit.widgets.resource_table import Column, ListSource, Query, Row, cell

COLUMNS = (Column("name", "Name", sort="name"),)


async def test_rows_read_before_an_invalidation_are_not_kept() -> None:
    # The store as the source sees it: "old" until a change makes it "new".
    state = {"name": "old"}
    first_read_may_end = asyncio.Event()
    reads = 0

    async def load() -> list[Row]:
        nonlocal reads
        reads += 1
        name = state["name"]  # read now ...
        if reads == 1:
            await first_read_may_end.wait()  # ... and answered after the change
        return [Row(key=name, cells=(cell(name),))]

    source = ListSource(load, COLUMNS)
    before = asyncio.create_task(source.fetch(Query(), 0, 10))
    await asyncio.sleep(0)  # the first read has started
    state["name"] = "new"
    source.invalidate()  # a reload after the change
    first_read_may_end.set()
    await before
    rows, count = await source.fetch(Query(), 0, 10)
    assert [row.key for row in rows] == ["new"]
    assert count == 1

"""Marks for batch selection: space, v / shift+arrows ranges, * (everything filtered), u."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.app import App, ComposeResult
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.screens.clients import ClientsScreen
from cockpit.screens.sites import SitesScreen
from cockpit.widgets.header import CockpitHeader
from cockpit.widgets.marks import MarkSet, resolve
from cockpit.widgets.resource_table import (
    MARK_GLYPH,
    Column,
    ListSource,
    Query,
    ResourceTable,
    Row,
    cell,
)

SIZE = (80, 24)


def table_of(app: App[Any]) -> ResourceTable:
    return app.screen.query_one(ResourceTable)


def marked_header(app: App[Any]) -> int:
    return app.screen.query_one(CockpitHeader).marked


def substring(query: Query, key: str) -> bool:
    return query.matches(key)


# -- the mark set on its own -----------------------------------------------------------


def test_explicit_marks_toggle_and_count() -> None:
    marks = MarkSet(substring)
    assert not marks and marks.count == 0
    assert marks.toggle("a1") is True
    marks.mark(["b1", "b2", "a1"])
    assert marks.count == 3
    assert marks.toggle("b1") is False
    assert marks.is_marked("a1") and not marks.is_marked("b1")
    marks.clear()
    assert marks.count == 0


def test_a_bulk_mark_is_a_filter_with_exceptions_not_rows() -> None:
    marks = MarkSet(substring)
    marks.mark(["a1", "zz"])  # a1 is covered by the bulk mark below, zz is not
    marks.mark_all(Query("a", sort="domain"), total=100_000)
    assert marks.bulk is not None and marks.bulk.query == Query("a")  # sort dropped
    assert list(marks.explicit) == ["zz"]  # a1 is part of the bulk mark now
    assert marks.count == 100_001
    assert marks.is_marked("a99999") and not marks.is_marked("b1")
    marks.toggle("a5")  # unmarking a covered key is an exception
    assert marks.bulk.excluded == {"a5"} and marks.count == 100_000
    marks.toggle("a5")
    assert marks.bulk.excluded == set() and marks.count == 100_001
    marks.unmark(["zz"])
    assert marks.count == 100_000
    assert not marks.needs_materialising(Query("a", descending=True))
    assert marks.needs_materialising(Query("b"))


def test_materialising_keeps_the_exceptions_out() -> None:
    marks = MarkSet(substring)
    marks.mark_all(Query("a"), total=3)
    marks.unmark(["a2"])
    marks.materialise(["a1", "a2", "a3"])
    assert marks.bulk is None
    assert list(marks.explicit) == ["a1", "a3"]


async def test_resolve_reads_the_bulk_filter_from_the_source() -> None:
    columns = [Column("name", "Name")]
    rows = [Row(f"{c}{n}", (cell(f"{c}{n}"),)) for c in "ab" for n in range(5)]

    async def load() -> list[Row]:
        return rows

    source = ListSource(load, columns)
    await source.fetch(Query(), 0, 1)
    marks = MarkSet(source.matches)
    marks.mark(["b1"])
    marks.mark_all(Query("a"), total=5)
    marks.unmark(["a3"])
    targets = await resolve(source, marks.selection())
    assert targets == ["b1", "a0", "a1", "a2", "a4"]
    assert marks.selection().count == len(targets)


# -- in the app ----------------------------------------------------------------------------


async def test_space_marks_v_marks_a_range_shift_arrows_extend_u_clears(
    fleet_cockpit: Cockpit,
) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        table = table_of(app)
        keys = [table.row_at(i).key for i in range(8)]  # type: ignore[union-attr]
        await pilot.press("space")  # marks the cursor row, the cursor stays
        assert table.marks.count == 1 and table.cursor_index == 0
        assert marked_header(app) == 1
        text = screen_text(app)
        assert " 1 marked " in text.splitlines()[0]
        assert "1 marked · 1 of 300" in text
        assert f"│{MARK_GLYPH}{keys[0]}" in text
        await pilot.press("space")  # again: unmarked
        assert table.marks.count == 0 and marked_header(app) == 0
        # v starts a range, moving extends it, v marks it.
        await pilot.press("v", "j", "j", "j")
        assert table.range_anchor == 0
        assert "range of 4" in screen_text(app)
        await pilot.press("escape")  # cancels the range (does not leave the view)
        assert table.range_anchor is None and isinstance(app.screen, SitesScreen)
        assert table.marks.count == 0
        await pilot.press("v", "k", "k", "v")
        await settle(pilot)
        assert sorted(table.marks.explicit) == sorted(keys[1:4])
        # shift+down marks the row and the next one.
        await pilot.press("j", "j", "j", "j", "shift+down", "shift+down")
        await settle(pilot)
        assert set(table.marks.explicit) == set(keys[1:4]) | set(keys[5:8])
        assert marked_header(app) == 6
        await pilot.press("u")
        assert table.marks.count == 0 and marked_header(app) == 0


async def test_star_marks_every_filtered_site_as_a_filter(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"golf", "enter")
        await settle(pilot)
        table = table_of(app)
        golf = table.row_count
        assert golf is not None and 0 < golf < 300
        golf_keys = [table.row_at(i).key for i in range(golf)]  # type: ignore[union-attr]
        await pilot.press("asterisk")
        assert table.marks.count == golf and not table.marks.explicit  # nothing materialised
        await pilot.press("space")  # an exception
        assert table.marks.count == golf - 1
        await pilot.press("escape")  # clears the filter: golf sites still show as marked
        await settle(pilot)
        assert table.row_count == 300
        shown = [table.row_at(i) for i in range(20)]
        for row in shown:
            assert row is not None
            assert table.marks.is_marked(row.key) == ("golf" in row.key and row.key != golf_keys[0])
        targets = await resolve(table.source, table.marks.selection())
        assert targets == golf_keys[1:]
        # A second * under another filter: the first one is read into keys, then laid over.
        await pilot.press("slash", *"hotel", "enter", "asterisk")
        await settle(pilot)
        hotel = table.row_count
        assert hotel is not None
        assert table.marks.count == golf - 1 + hotel
        assert table.marks.bulk is not None and table.marks.bulk.query.text == "hotel"
        assert marked_header(app) == golf - 1 + hotel


async def test_marks_are_only_on_lists_of_task_targets(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4", "space", "asterisk")
        await settle(pilot)
        assert isinstance(app.screen, ClientsScreen)
        assert table_of(app).marks.count == 0


class BigTableApp(App[None]):
    def compose(self) -> ComposeResult:
        columns = [Column("name", "Name", width=20)]
        rows = [Row(f"row{n:04d}", (cell(f"row{n:04d}"),)) for n in range(1000)]

        async def load() -> list[Row]:
            return rows

        yield ResourceTable(
            columns, ListSource(load, columns), page_size=50, max_pages=2, markable=True
        )


async def test_a_range_over_rows_never_loaded_is_read_from_the_source() -> None:
    app = BigTableApp()
    async with app.run_test(size=(40, 12)) as pilot:
        await settle(pilot)
        table = app.query_one(ResourceTable)
        await pilot.press("j", "v", "G")
        await settle(pilot)
        assert len(table._page_cache) <= 2  # most rows of the range are not loaded
        await pilot.press("v")
        await settle(pilot)
        assert table.marks.count == 999
        assert not table.marks.is_marked("row0000") and table.marks.is_marked("row0500")


async def test_keys_typed_right_after_opening_a_view_act_on_it(fleet_cockpit: Cockpit) -> None:
    """A paste, tmux send-keys or a fast typist: "3jj␣" marks the third site, "1␣" the
    first server, even though each view is still being built when the keys arrive."""
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for key, char in (("3", "3"), ("j", "j"), ("j", "j"), ("space", " "), ("slash", "/")):
            app.post_message(events.Key(key, char))
        for char in "golf":
            app.post_message(events.Key(char, char))
        await settle(pilot)
        assert isinstance(app.screen, SitesScreen)
        table = table_of(app)
        assert table.row_query == Query("golf", sort="domain")  # no "g" or "o" reached the list
        assert list(table.marks.explicit) == ["alpha-000016.example.com"]
        for key, char in (("escape", None), ("escape", None), ("1", "1"), ("space", " ")):
            app.post_message(events.Key(key, char))
        await settle(pilot)
        assert not isinstance(app.screen, SitesScreen)
        assert list(table_of(app).marks.explicit) == ["db1"]

"""The ``/`` filter: substring, ``~regex``, ``!`` inverts; a broken one is flagged, not applied."""

from __future__ import annotations

from typing import Any

import pytest
from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.widgets.resource_table import FilterError, Query, ResourceTable

SIZE = (80, 24)


def keys_of(app: Any) -> list[str]:
    table = app.screen.query_one(ResourceTable)
    return [r.key for r in (table.row_at(i) for i in range(table.row_count or 0)) if r]


@pytest.mark.parametrize(
    ("raw", "query"),
    [
        ("web", Query("web")),
        ("!web", Query("web", invert=True)),
        ("~^w.b", Query("^w.b", regex=True)),
        ("!~^w", Query("^w", invert=True, regex=True)),
        ("!", Query("", invert=True)),
    ],
)
def test_a_filter_as_typed(raw: str, query: Query) -> None:
    parsed = Query.from_filter(raw)
    assert parsed == query
    assert parsed.filter_text == (raw if query.text else "")


def test_matching_is_case_insensitive_and_a_bad_regex_says_why() -> None:
    assert Query("WEB").matches("web1 10.0.0.11")
    assert Query(r"^web\d$", regex=True).matches("WEB1")
    assert not Query("web", invert=True).matches("web1")
    with pytest.raises(FilterError, match="invalid regular expression"):
        Query("(", regex=True).check()


async def test_regex_and_inverted_regex_filter_a_list(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit, start_view="servers")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *r"~^(web|db)\d")
        await settle(pilot)
        assert keys_of(app) == ["db1", "web1", "web2"]
        assert r"servers [3] /~^(web|db)\d" in screen_text(app)
        await pilot.press("home", "exclamation_mark")  # !~…: the others
        await settle(pilot)
        assert keys_of(app) == ["localhost"]
        # A broken regex is flagged in the bar; the list keeps the last good filter.
        await pilot.press("end", "backspace", "backspace", "backspace")
        await settle(pilot)
        bar = app.screen.filter_bar  # type: ignore[attr-defined]
        assert bar.input.value == "!~^(web|db"
        assert bar.error is not None and "invalid regular expression" in bar.error
        assert "invalid regular expression" in screen_text(app)
        assert keys_of(app) == ["localhost"]
        assert not app._notifications  # no error pop-up for every keystroke
        await pilot.press(")")
        await settle(pilot)
        assert bar.error is None
        assert keys_of(app) == ["localhost"]
        await pilot.press("enter")  # keeps it, remembered for the view
        await settle(pilot)
        assert app.view_filters["servers"] == "!~^(web|db)"
        await pilot.press("3", "1")
        await settle(pilot)
        assert keys_of(app) == ["localhost"]


async def test_sites_take_regex_and_inversion_in_the_store(fleet_cockpit: Cockpit) -> None:
    app = make_app(fleet_cockpit)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"~^golf-00000")
        await settle(pilot)
        bar = app.screen.filter_bar  # type: ignore[attr-defined]
        assert bar.error is None
        assert keys_of(app) == ["golf-000006.example.com"]
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("slash", *"!~^golf-00000")
        await settle(pilot)
        table = app.screen.query_one(ResourceTable)
        assert bar.error is None and table.row_count == 299
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("slash", *"!golf")
        await settle(pilot)
        assert table.row_count == 300 - sum(1 for n in range(300) if n % 8 == 6)
        keys = keys_of(app)  # the rows loaded so far (the first page)
        assert keys and not any("golf" in k for k in keys)

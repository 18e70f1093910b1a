"""Server health as the last verify recorded it: in the row, the detail and the overview."""

from __future__ import annotations

from datetime import UTC, datetime

from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.core import Cockpit
from cockpit.model import Health
from cockpit.store import servers as server_queries


async def test_recorded_health_shows_everywhere(fresh_cockpit: Cockpit) -> None:
    async with fresh_cockpit.db.write() as conn:
        await server_queries.record_health(
            conn,
            "localhost",
            Health.UNREACHABLE,
            "connect: connection refused",
            {},
            datetime.now(UTC),
        )
    app = make_app(fresh_cockpit)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "unreachable" in text
        assert "unknown" not in text.split("localhost", 1)[1].splitlines()[0]
        await pilot.press("0")
        await settle(pilot)
        overview = screen_text(app)
        assert "health unreachable" in overview and "localhost" in overview

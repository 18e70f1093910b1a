"""Server health as the last verify recorded it: in the row, the detail and the overview."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from tuikit import screen_text, settle

from cockpit.app import make_app
from cockpit.backends.services.base import Check
from cockpit.backends.verify import ServerFacts
from cockpit.core import Cockpit
from cockpit.model import Health, Server
from cockpit.store import servers as server_queries
from cockpit.widgets.resource_table import ResourceTable


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


def _closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _row_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if f"│ {name} " in line)


async def test_a_failed_verify_says_why_in_the_servers_row(fresh_cockpit: Cockpit) -> None:
    # Unreachable: a real verify of a server whose port refuses connections.
    await fresh_cockpit.add_server(
        Server(name="gone", address="127.0.0.1", port=_closed_port(), user="deploy")
    )
    facts = await fresh_cockpit.verify_server("gone")
    unreachable = (await fresh_cockpit.server_health())["gone"]
    assert unreachable.health is Health.UNREACHABLE and unreachable.reason == facts.reason
    assert unreachable.reason.startswith("connect: ")
    # A failed config test, recorded as a verify records it, with remote text that must
    # not reach the screen as it is (an escape sequence, a newline).
    config = ServerFacts(
        server="localhost",
        checked_at=datetime.now(UTC),
        checks=[
            Check.passed("connect"),
            Check.failed(
                "nginx: config test",
                "the configuration test failed: nginx: [emerg] unknown directive"
                ' "\x1b[31mservr_name" in /etc/nginx/sites-enabled/a.conf:3\nnginx: test failed',
            ),
        ],
    )
    async with fresh_cockpit.db.write() as conn:
        await server_queries.record_health(
            conn, "localhost", Health(config.health), config.reason, {}, config.checked_at
        )
    app = make_app(fresh_cockpit)
    async with app.run_test(size=(200, 30)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        text = screen_text(app)
        gone = _row_of(text, "gone")
        assert "unreachable" in gone and "connect: " in gone
        assert unreachable.reason.split(": ", 1)[1][:20] in gone
        local = _row_of(text, "localhost")
        assert "failed" in local
        assert "nginx: config test: the configuration test failed" in local
        assert "\x1b" not in text
        table = app.screen.query_one(ResourceTable)
        rows = [table.row_at(i) for i in range(2)]
        why = {r.key: r.cells[-1].text for r in rows if r is not None}
        assert why["localhost"] == (  # the escape sequence gone, on one line
            "nginx: config test: the configuration test failed: nginx: [emerg] unknown"
            ' directive "servr_name" in /etc/nginx/sites-enabled/a.conf:3'
            " nginx: test failed"
        )
        assert why["gone"] == unreachable.reason
    # At 80 columns the reason still shows, cut with an ellipsis; the health stays whole.
    app = make_app(fresh_cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        text = screen_text(app)
        assert "REASON" in text
        local = _row_of(text, "localhost")
        assert "failed" in local and "nginx: config" in local and "…" in local
        gone = _row_of(text, "gone")
        assert "unreachable" in gone and "connect:" in gone

"""`cockpit server`: the servers of the inventory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cockpit.cli import Context, loaded, main, pass_context, run, with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit


@main.group()
def server() -> None:
    """Servers of the inventory."""


@server.command("list")
@pass_context
def server_list(context: Context) -> None:
    """List the servers: name, address, transport, environment, services."""
    from cockpit.textsafe import sanitize

    async def body(cockpit: Cockpit) -> None:
        for srv in await cockpit.servers():
            services = ",".join(f"{s.kind}:{s.type}" for s in srv.services) or "-"
            fields = (
                srv.name,
                f"{srv.address}:{srv.port}",
                srv.transport,
                srv.environment,
                services,
            )
            click.echo("\t".join(sanitize(str(f)) for f in fields))

    run(with_cockpit(loaded(context), body))

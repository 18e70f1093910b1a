"""`cockpit server`: the servers of the inventory."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cockpit.cli import EXIT_FAILED, Context, loaded, main, pass_context, run, with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit


@main.group()
def server() -> None:
    """Servers of the inventory."""


@server.command("list")
@pass_context
def server_list(context: Context) -> None:
    """List the servers: name, address:port, transport, environment, services, health."""
    from cockpit.textsafe import sanitize

    async def body(cockpit: Cockpit) -> None:
        health = await cockpit.server_health()
        for srv in await cockpit.servers():
            services = ",".join(f"{s.kind}:{s.type}" for s in srv.services) or "-"
            fields = (
                srv.name,
                f"{srv.address}:{srv.port}",
                srv.transport,
                srv.environment,
                services,
                health[srv.name].health if srv.name in health else "unknown",
            )
            click.echo("\t".join(sanitize(str(f)) for f in fields))

    run(with_cockpit(loaded(context), body))


@server.command("verify")
@click.argument("names", nargs=-1, required=True)
@pass_context
def server_verify(context: Context, names: tuple[str, ...]) -> None:
    """Connect to each server, record its facts and check its services.

    Prints one line a check and the health kept in the store; exits 1 when a server
    is unreachable or a check failed.
    """
    from cockpit.textsafe import sanitize

    async def body(cockpit: Cockpit) -> bool:
        all_ok = True
        for name in names:
            facts = await cockpit.verify_server(name)
            health = await cockpit.health_of(name)
            assert health is not None
            for check in facts.checks:
                click.echo(sanitize(f"{name}\t{check.status}\t{check.name}\t{check.reason}"))
            click.echo(sanitize(f"{name}\t{health.health}\t{health.reason or 'all checks passed'}"))
            all_ok = all_ok and health.health == "ok"
        return all_ok

    if not run(with_cockpit(loaded(context), body)):
        raise SystemExit(EXIT_FAILED)

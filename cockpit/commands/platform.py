"""`cockpit platform`: the platforms of the inventory (a codebase of one type on one
server). ``platform add`` records one; ``platform.install`` (a task) puts its code there."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cockpit.cli import EXIT_USAGE, Context, fail, loaded, main, pass_context, run, with_cockpit
from cockpit.model import PlatformType

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.model import Platform

TYPES = [t.value for t in PlatformType]


@main.group()
def platform() -> None:
    """Platforms of the inventory."""


@platform.command("list")
@pass_context
def platform_list(context: Context) -> None:
    """List the platforms: name, server, type, root, release, locked."""
    from cockpit.textsafe import sanitize

    async def body(cockpit: Cockpit) -> None:
        for p in await cockpit.platforms():
            fields = (p.name, p.server, p.type, p.root, p.release or "-", "locked" * p.locked)
            click.echo("\t".join(sanitize(str(f)) for f in fields).rstrip())

    run(with_cockpit(loaded(context), body))


async def platform_of(
    cockpit: Cockpit, name: str, type_: str, server: str | None, root: str | None
) -> Platform:
    """The platform ``name`` of ``type_`` on ``server``; its root defaults to
    ``<server root>/platforms/<name>``."""
    from cockpit.model import Platform, PlatformType

    if not server:
        fail(f"a new platform {name} needs --server", EXIT_USAGE)
    found = await cockpit.server(server)
    if found is None:
        fail(f"no server {server}", EXIT_USAGE)
    return Platform(name, server, PlatformType(type_), root or f"{found.root}/platforms/{name}")


def refuse_read_only(context: Context) -> None:
    if loaded(context).read_only:
        fail("read-only: the inventory is not changed", EXIT_USAGE)


@platform.command("add")
@click.argument("name")
@click.option("--server", required=True, help="The server the codebase is on.")
@click.option("--type", "type_", type=click.Choice(TYPES), required=True)
@click.option("--root", help="Where the codebase is (default: <server root>/platforms/NAME).")
@pass_context
def platform_add(context: Context, name: str, server: str, type_: str, root: str | None) -> None:
    """Record the platform NAME of a type on a server (its code comes with
    `cockpit task run platform.install NAME --arg source=…`)."""
    from cockpit.store.errors import ConflictError

    refuse_read_only(context)

    async def body(cockpit: Cockpit) -> None:
        p = await platform_of(cockpit, name, type_, server, root)
        try:
            await cockpit.add_platform(p)
        except ConflictError as exc:
            fail(str(exc), EXIT_USAGE)
        click.echo(f"platform {p.name}: {p.type} on {p.server} at {p.root}")

    run(with_cockpit(loaded(context), body))

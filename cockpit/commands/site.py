"""`cockpit site`: the sites of the inventory.

``site add`` records a site on a platform (and the platform too, for a single-site app,
when ``--type`` and ``--server`` are given); ``site remove`` takes a site that is not
installed out of the inventory. Installing, disabling or deleting one is a task:
``cockpit task run site.install DOMAIN``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cockpit.cli import EXIT_USAGE, Context, fail, loaded, main, pass_context, run, with_cockpit
from cockpit.commands.platform import TYPES, platform_of, refuse_read_only
from cockpit.model import HttpsMode

if TYPE_CHECKING:
    from cockpit.core import Cockpit


@main.group()
def site() -> None:
    """Sites of the inventory."""


@site.command("add")
@click.argument("domain")
@click.option("--platform", "platform_name", required=True, help="The site's platform.")
@click.option(
    "--type",
    "type_",
    type=click.Choice(TYPES),
    help="Make the platform too, of this type (with --server), when it is not there.",
)
@click.option("--server", help="The new platform's server (with --type).")
@click.option("--root", help="The new platform's root (default: <server root>/platforms/NAME).")
@click.option("--alias", "aliases", multiple=True, help="Another name of the site (repeatable).")
@click.option("--redirect", "redirection", help="The name the others redirect to.")
@click.option("--client", help="The site's client (made when the inventory has none so named).")
@click.option("--db-server", help="The server of its database (default: the platform's).")
@click.option(
    "--https", type=click.Choice([m.value for m in HttpsMode]), default="off", show_default=True
)
@pass_context
def site_add(
    context: Context,
    domain: str,
    platform_name: str,
    type_: str | None,
    server: str | None,
    root: str | None,
    aliases: tuple[str, ...],
    redirection: str | None,
    client: str | None,
    db_server: str | None,
    https: str,
) -> None:
    """Record the site DOMAIN on a platform (nothing runs on a server yet).

    A single-site app gets its platform in the same step: `cockpit site add DOMAIN
    --platform NAME --type wordpress --server S`, then `cockpit task run site.install
    DOMAIN --arg source=/usr/share/wordpress` installs both.
    """
    from cockpit.model import Site
    from cockpit.store.errors import ConflictError

    refuse_read_only(context)

    async def body(cockpit: Cockpit) -> None:
        existing = await cockpit.platform(platform_name)
        new_platform = None
        if existing is None:
            if type_ is None:
                fail(
                    f"no platform {platform_name}: add it (cockpit platform add), or give "
                    "--type and --server to make it with the site",
                    EXIT_USAGE,
                )
            new_platform = await platform_of(cockpit, platform_name, type_, server, root)
        elif type_ is not None or server is not None or root is not None:
            fail(
                f"the platform {platform_name} exists: --type, --server and --root are for a "
                "new one",
                EXIT_USAGE,
            )
        new = Site(
            domain,
            platform_name,
            client=client,
            aliases=aliases,
            redirection=redirection,
            db_server=db_server,
            https=HttpsMode(https),
        )
        try:
            await cockpit.add_site(new, platform=new_platform)
        except ConflictError as exc:
            fail(str(exc), EXIT_USAGE)
        made = f" (and the platform {platform_name})" if new_platform else ""
        click.echo(f"site {new.domain} on {platform_name}{made}: run site.install to install it")

    run(with_cockpit(loaded(context), body))


@site.command("remove")
@click.argument("domain")
@pass_context
def site_remove(context: Context, domain: str) -> None:
    """Take the site DOMAIN out of the inventory; refused while it is installed (run
    site.delete first), has a task queued or running, or has backups in the store."""
    from cockpit.store.errors import ConflictError

    refuse_read_only(context)

    async def body(cockpit: Cockpit) -> None:
        try:
            await cockpit.remove_site(domain)
        except ConflictError as exc:
            fail(str(exc))
        click.echo(f"site {domain} removed from the inventory")

    run(with_cockpit(loaded(context), body))

"""`cockpit server trust NAME`: fetch a server's host key, show it, record it when confirmed.

Nothing is run on the server: the key comes from the SSH handshake alone. The
fingerprint is printed exactly as ``ssh-keygen -lf`` prints it, so the admin can
compare it with ``ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`` run on the server
(or with what the hosting provider shows). The key is recorded in Cockpit's own
known_hosts (``ssh.known_hosts`` in the config) only after a "yes" at the prompt or
``--yes``; without a terminal and without ``--yes`` the command refuses. A key that
differs from one on record is never recorded: remove the old entry first.

Exit codes: 0 recorded or already trusted, 1 failed (unreachable, changed key), 2 bad
usage (no such server, no terminal to confirm on).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from cockpit.cli import (
    EXIT_FAILED,
    EXIT_USAGE,
    Context,
    fail,
    loaded,
    pass_context,
    run,
    with_cockpit,
)
from cockpit.commands.server import server

if TYPE_CHECKING:
    from cockpit.backends.hostkeys import HostKeyOffer
    from cockpit.core import Cockpit


async def _fetch(cockpit: Cockpit, name: str) -> HostKeyOffer | tuple[str, int]:
    """The offer, or why there is none and the exit code that says so."""
    from cockpit.backends.transport import ArgumentError, TransportError
    from cockpit.store import NotFoundError

    try:
        return await cockpit.fetch_host_key(name)
    except NotFoundError:
        return f"no server named {name!r}", EXIT_USAGE
    except ArgumentError as exc:  # the local transport: nothing to trust
        return str(exc), EXIT_USAGE
    except TransportError as exc:
        return str(exc), EXIT_FAILED


async def _record(cockpit: Cockpit, offer: HostKeyOffer, hashed: bool) -> str | None:
    """None once recorded (or trusted already), else why not."""
    from cockpit.backends.transport import HostKeyError

    try:
        await cockpit.trust_host_key(offer, hashed=hashed)
    except HostKeyError as exc:  # changed or revoked meanwhile: nothing written
        return str(exc)
    except OSError as exc:
        return f"{cockpit.config.ssh.known_hosts}: {exc.strerror or exc}"
    return None


@server.command("trust")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Record the key without asking (check it first!).")
@click.option("--hash", "hashed", is_flag=True, help="Record a hashed entry (|1|salt|hash).")
@pass_context
def server_trust(context: Context, name: str, yes: bool, hashed: bool) -> None:
    """Fetch the host key of server NAME, show its fingerprint, and trust it when confirmed."""
    from cockpit.textsafe import sanitize

    config = loaded(context)
    offer = run(with_cockpit(config, lambda cockpit: _fetch(cockpit, name)))
    if isinstance(offer, tuple):
        fail(sanitize(offer[0]), offer[1])
    click.echo(f"{offer.server}: the server presents this host key:")
    click.echo(sanitize(offer.description))
    if offer.trusted:
        click.echo(f"{offer.server}: this key is already trusted; nothing to do.")
        return
    if offer.changed:
        fail(sanitize(str(offer.verdict)), EXIT_FAILED)
    if not yes:
        if not sys.stdin.isatty():
            fail(
                "refusing to trust a host key without confirmation: no terminal to ask on. "
                "Compare the fingerprint above with the server's own "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run again with --yes.",
                EXIT_USAGE,
            )
        if not click.confirm(f"Trust this key for {offer.server}?", default=False):
            fail("not trusted; nothing was recorded", EXIT_FAILED)
    error = run(with_cockpit(config, lambda cockpit: _record(cockpit, offer, hashed)))
    if error is not None:
        fail(sanitize(error), EXIT_FAILED)
    click.echo(f"{offer.server}: trusted; recorded {offer.label} in {config.ssh.known_hosts}")

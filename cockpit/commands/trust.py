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

from cockpit.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, loaded, pass_context, run
from cockpit.commands.server import server

if TYPE_CHECKING:
    from cockpit.backends.ssh import FetchedKey
    from cockpit.config import Config
    from cockpit.model import Server


async def _find_server(config: Config, name: str) -> Server | None:
    from cockpit.core import Cockpit

    cockpit = await Cockpit.open(config)
    try:
        return await cockpit.server(name)
    finally:
        await cockpit.close()


async def _fetch(config: Config, srv: Server) -> FetchedKey:
    from cockpit.backends.ssh import SshPool

    pool = SshPool(config)
    try:
        return await pool.fetch_host_key(srv)
    finally:
        await pool.close()


@server.command("trust")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Record the key without asking (check it first!).")
@click.option("--hash", "hashed", is_flag=True, help="Record a hashed entry (|1|salt|hash).")
@pass_context
def server_trust(context: Context, name: str, yes: bool, hashed: bool) -> None:
    """Fetch the host key of server NAME, show its fingerprint, and trust it when confirmed."""
    from cockpit.backends.hostkeys import KnownHosts, describe, host_pattern
    from cockpit.backends.transport import HostKeyError, TransportError
    from cockpit.model import Transport
    from cockpit.textsafe import sanitize

    config = loaded(context)
    srv = run(_find_server(config, name))
    if srv is None:
        fail(f"no server named {sanitize(name)!r}", EXIT_USAGE)
    if srv.transport is Transport.LOCAL:
        fail(f"{srv.name} uses the local transport: it has no host key to trust", EXIT_USAGE)
    try:
        fetched = run(_fetch(config, srv))
    except TransportError as exc:
        fail(sanitize(str(exc)), EXIT_FAILED)
    known = KnownHosts(config.ssh.known_hosts)
    label = host_pattern(fetched.host, fetched.port)
    click.echo(f"{srv.name}: the server presents this host key:")
    click.echo(sanitize(describe(fetched.key, label)))
    verdict = known.lookup(fetched.host, fetched.port).verdict(fetched.key)
    if verdict is None:
        click.echo(f"{srv.name}: this key is already trusted; nothing to do.")
        return
    if verdict.known:
        fail(sanitize(str(verdict)), EXIT_FAILED)
    if not yes:
        if not sys.stdin.isatty():
            fail(
                "refusing to trust a host key without confirmation: no terminal to ask on. "
                "Compare the fingerprint above with the server's own "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub), then run again with --yes.",
                EXIT_USAGE,
            )
        if not click.confirm(f"Trust this key for {srv.name}?", default=False):
            fail("not trusted; nothing was recorded", EXIT_FAILED)
    try:
        known.record(fetched.host, fetched.port, fetched.key, hashed=hashed)
    except HostKeyError as exc:
        fail(sanitize(str(exc)), EXIT_FAILED)
    except OSError as exc:
        fail(f"{config.ssh.known_hosts}: {exc.strerror or exc}", EXIT_FAILED)
    click.echo(f"{srv.name}: trusted; recorded {label} in {config.ssh.known_hosts}")

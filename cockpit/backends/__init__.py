"""Backends: the transports that reach a server (ssh, local) and, later, service plugins.

:func:`transport_for` picks a server's transport. The SSH transport shares one
:class:`~cockpit.backends.ssh.SshPool` per process when the caller passes it (the
engine does); without one, the transport gets its own pool and closes it with itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cockpit.model import Transport as TransportKind

if TYPE_CHECKING:
    from cockpit.backends.ssh import SshPool
    from cockpit.backends.transport import Transport
    from cockpit.config import Config
    from cockpit.model import Server

__all__ = ["transport_for"]


def transport_for(server: Server, config: Config, *, pool: SshPool | None = None) -> Transport:
    """The transport for ``server``: local (this machine) or ssh (through ``pool``)."""
    if server.transport is TransportKind.LOCAL:
        from cockpit.backends.local import LocalTransport

        return LocalTransport(server)
    from cockpit.backends.ssh import SshTransport

    if pool is not None:
        return pool.transport(server)
    return SshTransport(server, config)

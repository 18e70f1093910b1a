"""Which transport the engine uses for a server.

A worker owns one :class:`~cockpit.backends.ssh.SshPool` (one pooled connection per
server, on the worker's event loop) and asks the backends' ``transport_for`` for each
server's transport through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cockpit.backends import transport_for
from cockpit.backends.transport import Transport
from cockpit.config import Config
from cockpit.model import Server
from cockpit.model import Transport as TransportKind

if TYPE_CHECKING:
    from cockpit.backends.ssh import SshPool


class TransportFactory:
    """``server -> Transport``, sharing one SSH pool; :meth:`close` closes the pool."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._pool: SshPool | None = None

    def prepare(self) -> None:
        """Load the SSH backend and make its pool now, as a worker starts, rather than
        when its first SSH task runs (importing asyncssh takes a noticeable moment). On
        the event loop that will use the pool."""
        if self._pool is None:
            from cockpit.backends.ssh import SshPool

            self._pool = SshPool(self.config)

    def __call__(self, server: Server) -> Transport:
        if server.transport is TransportKind.LOCAL:
            return transport_for(server, self.config)
        if self._pool is None:
            from cockpit.backends.ssh import SshPool

            self._pool = SshPool(self.config)
        return transport_for(server, self.config, pool=self._pool)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


def default_transport_factory(config: Config) -> TransportFactory:
    return TransportFactory(config)

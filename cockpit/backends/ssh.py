"""The SSH transport: asyncssh, one pooled connection per server, many channels.

:class:`SshPool` keeps the connections of many servers (the engine owns one per
process, on its event loop); :class:`SshTransport` is the :class:`Transport` of one
server on top of it.

Connections
    One connection per server, opened on first use and kept; a connection carries up
    to ``channels_per_connection`` channels at once (sshd's ``MaxSessions``, 10 by
    default). When they are all busy, a second connection opens, up to
    ``max_connections``; beyond that a call waits for a free channel. If sshd refuses
    a channel anyway (its ``MaxSessions`` is lower than ours), that connection's cap
    drops to what it carries and the call moves to another connection.
    Keepalives (``keepalive_interval`` × ``keepalive_count``) close a connection that
    stopped answering; a closed connection is dropped and the next call reconnects.
    Settings come from the server's ``ssh_options``, then Cockpit's config, then the
    user's ``~/.ssh/config`` (``Host``, ``HostName``, ``Port``, ``User``,
    ``IdentityFile``, ``ProxyJump``): a server with ``ssh_options.config_host`` connects
    to that ``Host`` entry, whose ``HostName``/``Port``/``User`` win over the server's
    address, port and user. ProxyJump hops (``ssh_options.proxy_jump``, else the
    config's) are opened by the pool itself, each with the same host-key check, keys
    and algorithms as the server (their own ``Host`` entries apply), and close with the
    connection they carry. ssh-agent (``SSH_AUTH_SOCK``) is used with the identity
    files; agent forwarding is always off. curve25519-sha256 key exchange and
    aes128-gcm / chacha20-poly1305 ciphers are preferred (the others stay allowed).

Host keys
    Checked against the user's ``~/.ssh/known_hosts`` and Cockpit's own file (see
    :mod:`cockpit.backends.hostkeys`). An unknown or changed key stops the handshake
    before authentication: :class:`HostKeyError`, nothing runs.

Running
    A channel execs the constant ``/bin/sh -s`` (``sudo -n /bin/sh -s`` with ``sudo``
    when the login user is not root, unless the server's ``ssh_options.sudo`` is
    ``false``: then nothing is ever wrapped in sudo and a step that needs root runs as
    the login user, failing with the remote permission error if that user lacks the
    rights); the script and its arguments go to stdin, then EOF. Output arrives as chunks and is split into lines by :class:`LineSplitter`.
    The exit status is the result; a command killed by a signal ends with
    ``exit_code = 128 + signal number`` (``-1`` for a signal name this machine does
    not know) and ``signal`` set, as a shell would report it: a known failure. No
    exit status (the connection dropped, keepalives timed out) is *unknown*, never 0.

Timeouts and cancellation
    Every script starts with a short preamble (shell builtins only) that writes
    ``$$``, ``$PPID`` and a random token to ``.cockpit-run-<user>/<pool tag>-<slot>``
    under ``/dev/shm`` (``/tmp`` where that fails: a file write on an ext4 /tmp cost
    ~3 ms per command on the bench, on tmpfs ~0.1 ms). The dir is 0700 and refused if
    it is a link or someone else's; there is one file per channel slot, overwritten by
    the next run in that slot (a kill also removes slot files older than a day). On a timeout or a cancellation a second channel reads
    that file, checks the token and kills the process group sshd created for the first
    channel (TERM, then KILL after 3 s): the recorded shell's group while it runs, else
    the group it or the login shell led, if that is a session leader's group. So
    ``sleep 600`` in a script, or left behind by it, is gone within seconds. The SSH
    "signal" request is only a last resort: OpenSSH ignores it before 7.9, and where it
    works it reaches the login shell alone, orphaning the children. Processes that left
    the group on purpose (``setsid``: detached steps) survive. The outcome of a
    timed-out command is unknown.

Files
    :meth:`SshTransport.upload` and :meth:`SshTransport.download` use the same door
    with sudo or without: a channel execs the constant
    ``[sudo -n] /bin/sh -c 'IFS= read -r l && eval "$l"'``; the first line on stdin
    is a one-line script Cockpit wrote (the path encoded as octal escapes), the rest
    is the file's bytes, read by ``cat`` (the shell's ``read`` takes exactly one line
    from a pipe, so script and data never mix). Uploads go to a ``mktemp`` file beside
    the target, whose size is checked (a dropped connection truncates, it never
    corrupts), then ``chmod``, ``sync``, ``mv``. Data is streamed in 256 KiB pieces
    with flow control, so a large upload is never copied whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal as signal_module
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncssh

from cockpit.backends.hostkeys import KnownHosts
from cockpit.backends.transport import (
    ArgumentError,
    AuthError,
    ConnectError,
    HostKeyError,
    LineHandler,
    LinesHandler,
    LineSplitter,
    Result,
    Transport,
    TransportError,
    script_with_args,
    sh_quote,
    splitters,
)
from cockpit.config import Config, SshDefaults
from cockpit.model import Server

__all__ = [
    "CHUNK",
    "SHELL_COMMAND",
    "STDIN_LINE_COMMAND",
    "FetchedKey",
    "SshPool",
    "SshTransport",
]

#: The only commands a channel ever execs: constant words, no user data.
SHELL_COMMAND: Final = "/bin/sh -s"
SUDO_SHELL_COMMAND: Final = "sudo -n /bin/sh -s"
STDIN_LINE_COMMAND: Final = "/bin/sh -c 'IFS= read -r l && eval \"$l\"'"
SUDO_STDIN_LINE_COMMAND: Final = "sudo -n " + STDIN_LINE_COMMAND

#: Piece size for uploads (and the write-buffer high-water mark scale).
CHUNK: Final = 256 * 1024
#: Largest SSH data packet we accept on a channel (asyncssh's default is 32 KiB):
#: fewer, larger chunks to split when a command prints a lot.
MAX_PACKET: Final = 256 * 1024
#: Preferred algorithms first; asyncssh's defaults stay allowed after them.
KEX_ALGS: Final = "^curve25519-sha256,curve25519-sha256@libssh.org"
ENCRYPTION_ALGS: Final = "^aes128-gcm@openssh.com,chacha20-poly1305@openssh.com"
#: How long the kill of a timed-out or cancelled command may take in all.
KILL_DEADLINE: Final = 10.0
#: Where the preamble records a running script's PID: tmpfs first, /tmp if that fails.
RUN_DIR_BASES: Final = ("/dev/shm/", "/tmp/")  # noqa: S108 - checked: owned by us, not a link
RUN_DIR_NAME: Final = ".cockpit-run-"

_SAFE_PATH_BYTE: Final = re.compile(rb"[A-Za-z0-9/._+@:-]")
_SAFE_USER: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")


# ---------------------------------------------------------------------------
# Connection settings
# ---------------------------------------------------------------------------


def _default_ssh_config() -> list[Path]:
    path = Path("~/.ssh/config").expanduser()
    return [path] if os.access(path, os.R_OK) else []


@dataclass(frozen=True, slots=True)
class _Settings:
    """Everything a connection to one server needs, resolved once."""

    server: Server
    host: str  # what we dial (an address, or the ~/.ssh/config Host alias)
    options: Any  # asyncssh.SSHClientConnectionOptions
    port: int  # resolved port (for known_hosts names)
    connect_timeout: float
    keepalive_interval: float
    keepalive_count: int
    jumps: tuple[_Hop, ...] = ()  # ProxyJump hops, in order


@dataclass(frozen=True, slots=True)
class _Hop:
    """One ProxyJump host, with options as strict as the server's own."""

    host: str
    port: int
    options: Any  # asyncssh.SSHClientConnectionOptions


def _parse_hops(spec: str) -> list[tuple[str | None, str, int | None]]:
    """``[user@]host[:port],…`` (ssh's ProxyJump) as (user, host, port) triples."""
    hops: list[tuple[str | None, str, int | None]] = []
    for raw in spec.split(","):
        user, at, hostport = raw.strip().rpartition("@")
        host, port = hostport, None
        if hostport.startswith("["):  # [v6 address]:port
            inside, _, rest = hostport[1:].partition("]")
            host, port = inside, int(rest[1:]) if rest.startswith(":") else None
        elif hostport.count(":") == 1:
            host, _, text = hostport.partition(":")
            port = int(text)
        if not host:
            raise ValueError(f"an empty ProxyJump hop in {spec!r}")
        hops.append((user if at else None, host, port))
    return hops


def _number(options: Any, key: str, default: float) -> float:
    value = options.get(key)
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else default


def _resolve(
    server: Server,
    defaults: SshDefaults,
    known_hosts: KnownHosts,
    ssh_config: Sequence[Path],
    key_cache: dict[tuple[str, ...], Any] | None = None,
) -> _Settings:
    opts = server.ssh_options
    connect_timeout = _number(opts, "connect_timeout", defaults.connect_timeout) or (
        defaults.connect_timeout
    )
    keepalive_interval = _number(opts, "keepalive_interval", defaults.keepalive_interval)
    keepalive_count = int(_number(opts, "keepalive_count", defaults.keepalive_count)) or 1
    keys: list[str] = []
    if isinstance(identity := opts.get("identity_file"), str):
        keys.append(str(Path(identity).expanduser()))
    keys += [str(p) for p in defaults.identity_files]
    config_host = opts.get("config_host")
    config_paths = [str(p) for p in ssh_config]
    common: dict[str, Any] = {
        "config": config_paths,
        "agent_forwarding": False,
        "kex_algs": KEX_ALGS,
        "encryption_algs": ENCRYPTION_ALGS,
        "connect_timeout": connect_timeout,
        "keepalive_interval": keepalive_interval,
        "keepalive_count_max": keepalive_count,
        "x509_trusted_certs": None,
        "env": None,
        "send_env": None,
    }
    if keys:
        # loaded once per pool, not once per connection (50 hosts: 50 parses saved)
        loaded = key_cache.get(tuple(keys)) if key_cache is not None else None
        if loaded is None:
            # an encrypted key is skipped: ssh-agent may hold it
            loaded = asyncssh.load_keypairs(keys, ignore_encrypted=True)
            if key_cache is not None:
                key_cache[tuple(keys)] = loaded
        common["client_keys"] = loaded
    if isinstance(config_host, str) and config_host:
        host = config_host
        probe = asyncssh.SSHClientConnectionOptions(host=host, config=config_paths)
        cfg = probe.config
        extra: dict[str, Any] = {}
        if cfg.get("User") is None:
            extra["username"] = defaults.user or server.user
        if cfg.get("Port") is None:
            extra["port"] = server.port
        configured_port = cfg.get("Port")
        port = configured_port if isinstance(configured_port, int) else server.port
    else:
        host = server.address
        extra = {"username": server.user, "port": server.port}
        port = server.port
    options = asyncssh.SSHClientConnectionOptions(
        host=host, known_hosts=known_hosts.asyncssh_callback(port), **common, **extra
    )
    # ProxyJump: the server's own setting, else ~/.ssh/config's. The pool opens each hop
    # itself, verified against the same known_hosts and with the same keys (asyncssh on
    # its own would use its defaults for a hop).
    proxy = opts.get("proxy_jump")
    if not (isinstance(proxy, str) and proxy):
        proxy = options.tunnel if isinstance(options.tunnel, str) else ""
    jumps: list[_Hop] = []
    if proxy and proxy.lower() != "none":
        for user, hop_host, hop_port in _parse_hops(proxy):
            named: dict[str, Any] = {"host": hop_host, "config": config_paths}
            if user:
                named["username"] = user
            if hop_port:
                named["port"] = hop_port
            resolved = asyncssh.SSHClientConnectionOptions(**named).port or 22
            hop_options = asyncssh.SSHClientConnectionOptions(
                known_hosts=known_hosts.asyncssh_callback(resolved),
                **{**common, **named, "tunnel": None},
            )
            jumps.append(_Hop(hop_host, resolved, hop_options))
    return _Settings(
        server=server,
        host=host,
        options=options,
        port=port,
        connect_timeout=connect_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_count=keepalive_count,
        jumps=tuple(jumps),
    )


# ---------------------------------------------------------------------------
# The pool
# ---------------------------------------------------------------------------


class _HostKeyWitness:
    """What the handshake saw: the key the server presented when it was not trusted."""

    def __init__(self) -> None:
        self.presented: Any = None
        self.host = ""
        self.addr = ""


def _nothing() -> None:
    return None


class _Client(asyncssh.SSHClient):
    def __init__(self, witness: _HostKeyWitness, on_lost: Callable[[], None]) -> None:
        self._witness = witness
        self._on_lost = on_lost

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        # Called only for a key that known_hosts does not trust: remember it, refuse it.
        self._witness.presented = key
        self._witness.host = host
        self._witness.addr = addr
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost()


@dataclass(eq=False)
class _Conn:
    conn: Any  # asyncssh.SSHClientConnection
    serial: int
    limit: int
    username: str
    active: int = 0
    closed: bool = False
    retired: bool = False  # the server's settings changed: close once idle


@dataclass(eq=False)
class _Lease:
    entry: _ServerEntry
    conn: _Conn
    slot: int
    released: bool = False


@dataclass(eq=False)
class _ServerEntry:
    settings: _Settings
    conns: list[_Conn] = field(default_factory=list)
    connecting: asyncio.Future[_Conn] | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    slots: set[int] = field(default_factory=set)
    serials: int = 0


@dataclass(frozen=True, slots=True)
class FetchedKey:
    """A server's host key, fetched without logging in, and the name it is recorded under."""

    key: Any
    host: str
    port: int


def _connect_error(exc: BaseException, where: str) -> TransportError:
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(f"{where}: authentication refused ({exc.reason or exc})")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return HostKeyError(f"{where}: host key not verifiable ({exc.reason or exc})")
    if isinstance(exc, asyncssh.KeyExchangeFailed | asyncssh.ProtocolNotSupported):
        return TransportError(f"{where}: SSH negotiation failed ({exc.reason or exc})")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ConnectError(f"{where}: connection timed out")
    if isinstance(exc, asyncssh.Error):
        return ConnectError(f"{where}: {exc.reason or exc}")
    if isinstance(exc, OSError):
        return ConnectError(f"{where}: {exc.strerror or exc}")
    if isinstance(exc, ValueError | asyncssh.KeyImportError):
        return TransportError(f"{where}: bad SSH settings ({exc})")
    return ConnectError(f"{where}: {exc}")


class SshPool:
    """SSH connections to many servers: one per server (more only when channels run out).

    Create it on the event loop that will use it and close it there.
    """

    def __init__(
        self,
        defaults: SshDefaults | Config | None = None,
        *,
        known_hosts: KnownHosts | None = None,
        ssh_config: Sequence[Path] | None = None,
        channels_per_connection: int = 10,
        max_connections: int = 4,
    ) -> None:
        if isinstance(defaults, Config):
            defaults = defaults.ssh
        self.defaults = defaults or SshDefaults()
        self.known_hosts = known_hosts or KnownHosts(self.defaults.known_hosts)
        self.ssh_config = list(ssh_config) if ssh_config is not None else _default_ssh_config()
        if channels_per_connection < 1 or max_connections < 1:
            raise ValueError("channels_per_connection and max_connections must be >= 1")
        self.channels_per_connection = channels_per_connection
        self.max_connections = max_connections
        #: Names the PID files of this process's runs on the servers (see the module doc).
        self.tag = secrets.token_hex(4)
        self._entries: dict[str, _ServerEntry] = {}
        self._keys: dict[tuple[str, ...], Any] = {}
        self._closed = False

    # -- public ----------------------------------------------------------------------

    def transport(self, server: Server) -> SshTransport:
        """A transport for ``server`` sharing this pool (closing it leaves the pool open)."""
        return SshTransport(server, pool=self)

    def connections(self, server: Server | str) -> list[Any]:
        """The open asyncssh connections to a server (for tests and diagnostics)."""
        entry = self._entries.get(server if isinstance(server, str) else server.name)
        return [c.conn for c in entry.conns if not c.closed] if entry else []

    async def close(self) -> None:
        """Close every connection."""
        self._closed = True
        conns = [c for e in self._entries.values() for c in e.conns]
        self._entries.clear()
        for c in conns:
            c.conn.close()
        for c in conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.conn.wait_closed(), 5)

    async def drop(self, server: Server | str) -> None:
        """Close a server's connections (the next call reconnects)."""
        entry = self._entries.pop(server if isinstance(server, str) else server.name, None)
        if entry is None:
            return
        for c in entry.conns:
            c.closed = True
            c.conn.close()
        for c in entry.conns:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.conn.wait_closed(), 5)

    async def fetch_host_key(self, server: Server) -> FetchedKey:
        """The host key ``server`` presents, fetched without authenticating or running anything."""
        try:
            settings = _resolve(
                server, self.defaults, self.known_hosts, self.ssh_config, self._keys
            )
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise TransportError(f"{server.name}: bad SSH settings ({exc})") from exc
        where = f"{server.name} ({settings.host}:{settings.port})"
        tunnel = await self._jump(settings)
        try:
            key = await asyncssh.get_server_host_key(
                settings.host, options=settings.options, tunnel=tunnel
            )
        except Exception as exc:
            raise _connect_error(exc, where) from exc
        finally:
            if tunnel is not None:
                tunnel.close()
        if key is None:
            raise HostKeyError(f"{where}: the server presented no host key")
        return FetchedKey(key=key, host=str(settings.options.host), port=settings.port)

    # -- leases ----------------------------------------------------------------------

    def _entry(self, server: Server) -> _ServerEntry:
        if self._closed:
            raise TransportError("the SSH pool is closed")
        entry = self._entries.get(server.name)
        if entry is None or entry.settings.server != server:
            try:
                settings = _resolve(
                    server, self.defaults, self.known_hosts, self.ssh_config, self._keys
                )
            except (OSError, ValueError, asyncssh.KeyImportError) as exc:
                raise TransportError(f"{server.name}: bad SSH settings ({exc})") from exc
            if entry is None:
                entry = _ServerEntry(settings)
                self._entries[server.name] = entry
            else:  # the server's settings changed: new connections use the new ones
                entry.settings = settings
                for c in entry.conns:
                    c.retired = True
                    if not c.active:
                        c.closed = True
                        c.conn.close()
        return entry

    async def _dial(
        self,
        host: str,
        options: Any,
        port: int,
        where: str,
        tunnel: Any,
        on_lost: Callable[[], None],
    ) -> Any:
        """One verified SSH connection (to a server or a jump host), errors translated."""
        witness = _HostKeyWitness()
        try:
            return await asyncssh.connect(
                host,
                options=options,
                tunnel=tunnel,
                client_factory=lambda: _Client(witness, on_lost),
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            if witness.presented is not None:
                check = self.known_hosts.lookup(witness.host or host, port, [witness.addr])
                error = check.verdict(witness.presented)
                if error is not None:
                    raise error from None
            raise _connect_error(exc, where) from None
        except Exception as exc:
            raise _connect_error(exc, where) from None

    async def _jump(self, settings: _Settings) -> Any:
        """Open the ProxyJump hops in order; the last one, or None without hops."""
        tunnel: Any = None
        try:
            for hop in settings.jumps:
                where = f"{settings.server.name}: jump host {hop.host}:{hop.port}"
                conn = await self._dial(hop.host, hop.options, hop.port, where, tunnel, _nothing)
                conn.set_tunnel(tunnel)  # closing a hop closes the hops before it
                tunnel = conn
        except BaseException:
            if tunnel is not None:
                tunnel.close()
            raise
        return tunnel

    async def _connect(self, entry: _ServerEntry) -> _Conn:
        settings = entry.settings
        server = settings.server
        holder: list[_Conn] = []

        def lost() -> None:
            if holder:
                holder[0].closed = True

        where = f"{server.name} ({settings.host}:{settings.port})"
        tunnel = await self._jump(settings)
        try:
            conn = await self._dial(
                settings.host, settings.options, settings.port, where, tunnel, lost
            )
        except BaseException:
            if tunnel is not None:
                tunnel.close()
            raise
        if tunnel is not None:
            conn.set_tunnel(tunnel)  # the hops close with the connection
        entry.serials += 1
        username = str(conn.get_extra_info("username") or server.user)
        holder.append(_Conn(conn, entry.serials, self.channels_per_connection, username))
        if conn.is_closed():  # lost before ``holder`` was set
            holder[0].closed = True
        return holder[0]

    async def _acquire(self, server: Server, *, urgent: bool = False) -> _Lease:
        entry = self._entry(server)
        async with entry.changed:
            while True:
                entry.conns = [c for c in entry.conns if not c.closed or c.active]
                for c in entry.conns:
                    if not c.closed and not c.retired and (c.active < c.limit or urgent):
                        return self._lease(entry, c)
                live = [c for c in entry.conns if not c.closed and not c.retired]
                if entry.connecting is not None:
                    pending = entry.connecting
                    entry.changed.release()
                    try:
                        await asyncio.wait([pending])
                    finally:
                        await entry.changed.acquire()
                    if not pending.cancelled() and (error := pending.exception()) is not None:
                        raise error  # the connect error, for every caller that waited on it
                    continue
                if len(live) < self.max_connections:
                    future: asyncio.Future[_Conn] = asyncio.get_running_loop().create_future()
                    entry.connecting = future
                    entry.changed.release()
                    try:
                        conn = await self._connect(entry)
                    except BaseException as exc:
                        if isinstance(exc, Exception):
                            future.set_exception(exc)
                            future.exception()  # retrieved: waiters re-raise it
                        else:
                            future.cancel()
                        await entry.changed.acquire()
                        entry.connecting = None
                        entry.changed.notify_all()
                        raise
                    future.set_result(conn)
                    await entry.changed.acquire()
                    entry.connecting = None
                    entry.conns.append(conn)
                    entry.changed.notify_all()
                    continue
                await entry.changed.wait()

    def _lease(self, entry: _ServerEntry, conn: _Conn) -> _Lease:
        conn.active += 1
        slot = 0
        while slot in entry.slots:
            slot += 1
        entry.slots.add(slot)
        return _Lease(entry, conn, slot)

    async def _release(self, lease: _Lease) -> None:
        if lease.released:
            return
        lease.released = True
        entry = lease.entry
        async with entry.changed:
            lease.conn.active -= 1
            entry.slots.discard(lease.slot)
            if lease.conn.retired and not lease.conn.active and not lease.conn.closed:
                lease.conn.closed = True
                lease.conn.conn.close()
            entry.changed.notify_all()

    @contextlib.asynccontextmanager
    async def session(
        self,
        server: Server,
        factory: Callable[[], Any],
        command: Callable[[_Conn], str],
        *,
        urgent: bool = False,
    ) -> AsyncIterator[tuple[_Lease, Any, Any]]:
        """Open a channel running ``command(conn)`` on a pooled connection; release it after.

        ``urgent`` (a kill) may exceed the channel cap of a busy connection rather than
        wait for a free channel; if sshd refuses, it waits like any other call.
        """
        where = server.name
        attempts = 0
        while True:
            attempts += 1
            lease = await self._acquire(server, urgent=urgent and attempts == 1)
            try:
                chan, session = await lease.conn.conn.create_session(
                    factory,
                    command(lease.conn),
                    encoding=None,
                    env=None,
                    send_env=None,
                    max_pktsize=MAX_PACKET,
                )
            except asyncssh.ChannelOpenError as exc:
                busy = lease.conn.active
                await self._release(lease)
                if exc.code == asyncssh.OPEN_CONNECT_FAILED and busy > 1 and attempts < 50:
                    # sshd's MaxSessions is below our cap: learn it, try another connection
                    if not (urgent and attempts == 1):
                        lease.conn.limit = max(1, busy - 1)
                    continue
                raise ConnectError(f"{where}: the server refused a channel ({exc.reason})") from exc
            except (asyncssh.Error, OSError) as exc:
                lease.conn.closed = True
                await self._release(lease)
                if attempts < 3:
                    continue  # the connection died under us: reconnect once more
                raise _connect_error(exc, where) from exc
            except BaseException:
                await self._release(lease)
                raise
            try:
                yield lease, chan, session
            finally:
                with contextlib.suppress(Exception):
                    chan.close()
                await self._release(lease)
            return


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------


class _RunSession(asyncssh.SSHClientSession[bytes]):
    """A channel running a script: output fed to line splitters as it arrives."""

    def __init__(
        self,
        on_line: LineHandler | None,
        capture: bool,
        on_lines: LinesHandler | None = None,
    ) -> None:
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._out, self._err = splitters(
            on_line,
            on_lines,
            self.stdout if capture else None,
            self.stderr if capture else None,
        )
        # nobody wants the lines
        self._discard = on_line is None and on_lines is None and not capture
        self.exit_status: int | None = None
        self.exit_signal: str | None = None
        self.lost: Exception | None = None
        self.handler_error: BaseException | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()

    def _feed(self, splitter: LineSplitter, data: bytes | None) -> None:
        if self._discard or self.handler_error is not None:
            return
        try:
            if data is None:
                splitter.close()
            else:
                splitter.feed(data)
        except Exception as exc:  # a handler failed: never let it tear down the connection
            self.handler_error = exc
            if not self.done.done():
                self.done.set_result(None)

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self._feed(self._err if datatype == asyncssh.EXTENDED_DATA_STDERR else self._out, data)

    def exit_status_received(self, status: int) -> None:
        self.exit_status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.exit_signal = signal

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    async def writable(self) -> None:
        await self._writable.wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._feed(self._out, None)
        self._feed(self._err, None)
        self.lost = exc
        self._writable.set()
        if not self.done.done():
            self.done.set_result(None)

    def result(self, where: str) -> Result:
        if self.exit_status is not None:
            return Result(self.exit_status, stdout=self.stdout, stderr=self.stderr)
        if self.exit_signal is not None:
            name = self.exit_signal.upper().removeprefix("SIG")
            try:
                code = 128 + signal_module.Signals["SIG" + name].value
            except KeyError:
                code = -1
            return Result(
                code,
                signal=name,
                reason=f"killed by signal {name}",
                stdout=self.stdout,
                stderr=self.stderr,
            )
        why = f" ({self.lost})" if self.lost else ""
        return Result(
            None,
            reason=f"{where}: the connection ended before the command reported its exit "
            f"status{why}; its outcome is unknown",
            stdout=self.stdout,
            stderr=self.stderr,
        )


class _DataSession(_RunSession):
    """A channel whose stdout is collected as bytes (downloads)."""

    def __init__(self) -> None:
        super().__init__(None, True)
        self.data = bytearray()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            super().data_received(data, datatype)
        else:
            self.data += data


# ---------------------------------------------------------------------------
# Remote snippets
# ---------------------------------------------------------------------------


def _encode_path(path: str) -> str:
    """``path`` as a ``printf %b`` argument of safe characters and ``\\0ooo`` escapes."""
    return "".join(
        chr(b) if _SAFE_PATH_BYTE.fullmatch(bytes([b])) else f"\\0{b:03o}"
        for b in path.encode("utf-8")
    )


def _check_remote_path(path: str) -> None:
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
        raise ArgumentError(f"a remote path must be absolute and name a file: {path!r}")
    if "\x00" in path:
        raise ArgumentError("a remote path contains a NUL byte")


def _run_dir_name(user: str) -> str:
    name = user if _SAFE_USER.fullmatch(user) else "u" + user.encode().hex()[:32]
    return RUN_DIR_NAME + name


def _preamble(run_dir: str, slot_file: str, token: str, *, group: bool = False) -> bytes:
    """Records ``$$``, ``$PPID``, optionally the process group, and the run's token.

    Builtins only once the run dir exists (a file write on tmpfs costs ~0.1 ms; the
    same write on an ext4 /tmp cost ~3 ms per command on the bench). ``group`` reads
    the group from ``/proc/$$/stat`` (dash reads it byte by byte: ~0.2 ms of CPU), needed
    under sudo, where the group leader is two processes up (login shell, sudo, sh).
    """
    shm, tmp = sh_quote(RUN_DIR_BASES[0] + run_dir), sh_quote(RUN_DIR_BASES[1] + run_dir)
    mine = '[ -O "$__cockpit_d" ] && [ ! -h "$__cockpit_d" ]'
    make = '{ [ -d "$__cockpit_d" ] || (umask 077 && mkdir "$__cockpit_d"); } 2>/dev/null'
    read_group = (
        '{ read -r __cockpit_g < "/proc/$$/stat" && set -- ${__cockpit_g##*) }'
        " && __cockpit_g=$3; } 2>/dev/null\n"
        if group
        else ""
    )
    return (
        f"__cockpit_d={shm} __cockpit_g=-\n{make}\n"
        f"{mine} || {{ __cockpit_d={tmp}; {make}; }}\n"
        f"{read_group}"
        f"if {mine}; then "
        f'echo "$$ $PPID $__cockpit_g {token}" > "$__cockpit_d/{slot_file}"; fi 2>/dev/null\n'
        "unset __cockpit_d __cockpit_g\n"
    ).encode("ascii")


#: Kills the process group of the run recorded in <base>/"$1"/"$2" with token "$3".
#: The group: the one recorded (sudo runs), else the one of the recorded shell if it
#: still runs, else the group it or the login shell led, if that is a session leader's
#: group (sshd makes one session per channel); a recorded group is checked the same way.
_KILL_SCRIPT: Final = """\
tok="$3" n=0
while :; do
  for base in /dev/shm /tmp; do
    d="$base/$1" f="$base/$1/$2"
    [ -O "$d" ] && [ ! -h "$d" ] && [ -f "$f" ] && read -r pid ppid rec t < "$f" \\
      && [ "$t" = "$tok" ] && break 2
  done
  n=$((n + 1)); [ "$n" -gt 50 ] && exit 4
  sleep 0.1
done
rm -f "$f"
find "$d" -maxdepth 1 -type f -mmin +1440 -exec rm -f {} + 2>/dev/null  # other runs' old slots
leads() {  # is "$1" a live group whose leader, if still there, leads its own session?
  [ "$1" -gt 1 ] 2>/dev/null && kill -s 0 -- "-$1" 2>/dev/null || return 1
  read -r stat 2>/dev/null < "/proc/$1/stat" || return 0
  set -- "$1" ${stat##*) }
  [ "$4" = "$1" ] && [ "$5" = "$1" ]
}
group=
if [ "$rec" != - ]; then
  leads "$rec" && group=$rec
elif read -r stat 2>/dev/null < "/proc/$pid/stat"; then
  set -- ${stat##*) }
  group=$3
else
  for g in "$pid" "$ppid"; do
    if leads "$g"; then group=$g; break; fi
  done
fi
[ -n "$group" ] || exit 0
[ "$group" -gt 1 ] 2>/dev/null || exit 5
read -r stat 2>/dev/null < "/proc/$$/stat" && set -- ${stat##*) } && [ "$3" = "$group" ] && exit 5
kill -s TERM -- "-$group" 2>/dev/null || exit 0
n=0
while kill -s 0 -- "-$group" 2>/dev/null; do
  n=$((n + 1)); [ "$n" -gt 30 ] && break
  sleep 0.1
done
kill -s KILL -- "-$group" 2>/dev/null
n=0
while kill -s 0 -- "-$group" 2>/dev/null; do
  n=$((n + 1)); [ "$n" -gt 20 ] && exit 6
  sleep 0.1
done
exit 0
"""


def _upload_line(path: str, mode: int, size: int) -> bytes:
    enc = _encode_path(path)
    line = (
        f"p=$(printf '%bx' '{enc}') && p=${{p%x}} && d=${{p%/*}} && d=${{d:-/}}"
        ' && t=$(mktemp "$d/.cockpit-upload.XXXXXXXX") && trap \'rm -f "$t"\' EXIT'
        ' && cat > "$t" && n=$(wc -c < "$t") && [ "$((n))" -eq ' + str(size) + " ]"
        f' && chmod {mode:o} "$t" && {{ sync "$t" 2>/dev/null || sync; }}'
        ' && mv -f "$t" "$p" && t= && { sync "$d" 2>/dev/null || :; }\n'
    )
    return line.encode("ascii")


def _download_line(path: str) -> bytes:
    enc = _encode_path(path)
    return f"p=$(printf '%bx' '{enc}') && p=${{p%x}} && exec cat -- \"$p\"\n".encode("ascii")


# ---------------------------------------------------------------------------
# The transport
# ---------------------------------------------------------------------------


class SshTransport(Transport):
    """Runs scripts and moves files on one server over a pooled SSH connection."""

    def __init__(
        self,
        server: Server,
        config: Config | SshDefaults | None = None,
        *,
        pool: SshPool | None = None,
    ) -> None:
        super().__init__(server)
        self._own_pool = pool is None
        self.pool = pool if pool is not None else SshPool(config)
        # ssh_options.sudo: false = the login user has the rights it needs itself
        self.sudo_allowed = server.ssh_options.get("sudo", True) is not False

    # -- running ---------------------------------------------------------------------

    def wraps_in_sudo(self, username: str, sudo: bool) -> bool:
        """Whether a call asking for root (``sudo``) runs through ``sudo -n``.

        Not as root already, and not on a server whose ``ssh_options.sudo`` is
        ``false`` (there every call runs as the login user).
        """
        return sudo and self.sudo_allowed and username != "root"

    def _sudo(self, conn: _Conn, sudo: bool) -> bool:
        return self.wraps_in_sudo(conn.username, sudo)

    async def run_script(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
        on_lines: LinesHandler | None = None,
    ) -> Result:
        body = script_with_args(script, args)  # refuses NUL before anything is sent
        where = self.server.name

        def command(conn: _Conn) -> str:
            return SUDO_SHELL_COMMAND if self._sudo(conn, sudo) else SHELL_COMMAND

        session: _RunSession | None = None

        def factory() -> _RunSession:
            nonlocal session
            session = _RunSession(on_line, capture, on_lines)
            return session

        async with self.pool.session(self.server, factory, command) as (lease, chan, _):
            assert session is not None
            run_user = "root" if self._sudo(lease.conn, sudo) else lease.conn.username
            run_dir = _run_dir_name(run_user)
            slot_file = f"{self.pool.tag}-{lease.slot}"
            token = secrets.token_hex(8)
            preamble = _preamble(run_dir, slot_file, token, group=self._sudo(lease.conn, sudo))
            chan.write(preamble + body)
            chan.write_eof()
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(session.done)
            except TimeoutError:
                note = await self._kill(chan, sudo, run_dir, slot_file, token)
                return Result(
                    None,
                    reason=f"{where}: timed out after {timeout:g}s; {note}; outcome unknown",
                    stdout=session.stdout,
                    stderr=session.stderr,
                )
            except asyncio.CancelledError:
                kill = asyncio.ensure_future(self._kill(chan, sudo, run_dir, slot_file, token))
                with contextlib.suppress(BaseException):
                    await asyncio.shield(kill)
                raise
            if session.handler_error is not None:
                await self._kill(chan, sudo, run_dir, slot_file, token)
                raise session.handler_error
            return session.result(where)

    async def _kill(self, chan: Any, sudo: bool, run_dir: str, slot_file: str, token: str) -> str:
        """Kill a running script's process group through a second channel (bounded)."""
        try:
            async with asyncio.timeout(KILL_DEADLINE):
                result = await self._run_plain(_KILL_SCRIPT, [run_dir, slot_file, token], sudo=sudo)
        except (TimeoutError, TransportError) as exc:
            result = Result(None, reason=str(exc) or "timed out")
        if result.exit_code != 0:
            with contextlib.suppress(Exception):  # the SSH signal request, as a last resort
                chan.send_signal("TERM")
        with contextlib.suppress(Exception):
            chan.close()
        if result.unknown:
            return f"the remote process could not be killed ({result.reason})"
        if result.exit_code == 0:
            return "the remote process group was killed"
        if result.exit_code == 4:
            return "the remote script never started"
        return f"killing the remote process failed (exit {result.exit_code})"

    async def _run_plain(self, script: str, args: Sequence[str], *, sudo: bool) -> Result:
        """Run a script without the PID preamble, on an urgent channel (the kill itself)."""
        body = script_with_args(script, args)
        session: _RunSession | None = None

        def factory() -> _RunSession:
            nonlocal session
            session = _RunSession(None, True)
            return session

        def command(conn: _Conn) -> str:
            return SUDO_SHELL_COMMAND if self._sudo(conn, sudo) else SHELL_COMMAND

        async with self.pool.session(self.server, factory, command, urgent=True) as (
            _,
            chan,
            _s,
        ):
            assert session is not None
            chan.write(body)
            chan.write_eof()
            await asyncio.shield(session.done)
            return session.result(self.server.name)

    # -- files -----------------------------------------------------------------------

    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        _check_remote_path(remote_path)
        if not 0 <= mode <= 0o7777:
            raise ArgumentError(f"a file mode must be 0 to 0o7777, not {mode!r}")
        view = memoryview(data).cast("B")
        size = view.nbytes
        session: _RunSession | None = None

        def factory() -> _RunSession:
            nonlocal session
            session = _RunSession(None, True)
            return session

        def command(conn: _Conn) -> str:
            return SUDO_STDIN_LINE_COMMAND if self._sudo(conn, sudo) else STDIN_LINE_COMMAND

        where = f"{self.server.name}:{remote_path}"
        async with self.pool.session(self.server, factory, command) as (_, chan, _s):
            assert session is not None
            chan.set_write_buffer_limits(high=4 * CHUNK)
            chan.write(_upload_line(remote_path, mode, size))
            for start in range(0, size, CHUNK):
                await session.writable()
                if session.done.done():
                    break
                chan.write(bytes(view[start : start + CHUNK]))
            with contextlib.suppress(Exception):
                chan.write_eof()
            await asyncio.shield(session.done)
            result = session.result(where)
        if result.exit_code != 0:
            raise self._file_error("upload", where, result)

    async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
        _check_remote_path(remote_path)
        session: _DataSession | None = None

        def factory() -> _DataSession:
            nonlocal session
            session = _DataSession()
            return session

        def command(conn: _Conn) -> str:
            return SUDO_STDIN_LINE_COMMAND if self._sudo(conn, sudo) else STDIN_LINE_COMMAND

        where = f"{self.server.name}:{remote_path}"
        async with self.pool.session(self.server, factory, command) as (_, chan, _s):
            assert session is not None
            chan.write(_download_line(remote_path))
            chan.write_eof()
            await asyncio.shield(session.done)
            result = session.result(where)
        if result.exit_code != 0:
            raise self._file_error("download", where, result)
        assert session is not None
        return bytes(session.data)

    @staticmethod
    def _file_error(what: str, where: str, result: Result) -> TransportError:
        detail = "; ".join(line for line in result.stderr if line)[:500]
        if result.unknown:
            error: TransportError = ConnectError(f"{what} of {where}: {result.reason}")
        else:
            error = TransportError(
                f"{what} of {where} failed (exit {result.exit_code})"
                + (f": {detail}" if detail else "")
            )
        return error

    async def close(self) -> None:
        """Close the pool if this transport made its own; a shared pool stays open."""
        if self._own_pool:
            await self.pool.close()

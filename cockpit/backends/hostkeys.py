"""Host keys: known_hosts lookups, fingerprints, and trusting a new host on purpose.

Every SSH connection Cockpit opens is verified against two files: the user's own
``~/.ssh/known_hosts`` (read only, never written) and Cockpit's own known_hosts in
the data dir (``config.ssh.known_hosts``), which only :meth:`KnownHosts.record`
writes, and only after an admin confirmed the fingerprint (``cockpit server trust``).

Outcomes, as :func:`check` returns or the SSH transport raises them:

- the presented key is listed for the host → trusted;
- no key is listed for the host → *unknown*: :class:`HostKeyError`, nothing runs
  (the handshake stops before authentication), never retried;
- other keys are listed but not this one → *changed*: :class:`HostKeyError` naming
  both fingerprints; no file is rewritten, the admin must remove the old entry
  (``ssh-keygen -R``) before trusting again;
- a key marked ``@revoked`` → refused like a changed key.

Lookups follow OpenSSH's rules: a non-default port is looked up as ``[host]:port``
(there is no fallback to the bare host name, unlike asyncssh's own matcher), patterns
(``*``, ``?``, ``!negation``) and hashed entries (``|1|salt|hash``) match, unreadable
lines are skipped. Both the host name and the address the connection reached are
looked up, as asyncssh does.

Fingerprints are printed exactly as ``ssh-keygen -lf`` prints them:
``256 SHA256:<base64 without padding> <comment> (ED25519)``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import fnmatch
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import asyncssh

from cockpit.backends.transport import ArgumentError, HostKeyError
from cockpit.fileio import write_atomic

if TYPE_CHECKING:
    from cockpit.config import Config
    from cockpit.model import Server

__all__ = [
    "DEFAULT_PORT",
    "HostKeyCheck",
    "HostKeyOffer",
    "KnownHosts",
    "describe",
    "fetch_offer",
    "fingerprint",
    "host_pattern",
    "import_key",
    "key_bits",
    "key_type_name",
    "record_offer",
    "user_known_hosts",
]

DEFAULT_PORT: Final = 22

#: ssh-keygen's names for key types, by SSH algorithm name.
_TYPE_NAMES: Final = {
    "ssh-ed25519": "ED25519",
    "ssh-ed448": "ED448",
    "ssh-rsa": "RSA",
    "ssh-dss": "DSA",
    "ecdsa-sha2-nistp256": "ECDSA",
    "ecdsa-sha2-nistp384": "ECDSA",
    "ecdsa-sha2-nistp521": "ECDSA",
    "sk-ssh-ed25519@openssh.com": "ED25519-SK",
    "sk-ecdsa-sha2-nistp256@openssh.com": "ECDSA-SK",
}
_FIXED_BITS: Final = {
    "ssh-ed25519": 256,
    "ssh-ed448": 456,
    "sk-ssh-ed25519@openssh.com": 256,
    "sk-ecdsa-sha2-nistp256@openssh.com": 256,
    "ecdsa-sha2-nistp256": 256,
    "ecdsa-sha2-nistp384": 384,
    "ecdsa-sha2-nistp521": 521,
}


def user_known_hosts() -> Path:
    """The user's own known_hosts (read, never written by Cockpit)."""
    return Path("~/.ssh/known_hosts").expanduser()


# ---------------------------------------------------------------------------
# Keys and fingerprints
# ---------------------------------------------------------------------------


def import_key(text: str | bytes) -> Any:
    """An asyncssh public key from OpenSSH text (``ssh-ed25519 AAAA… [comment]``)."""
    return asyncssh.import_public_key(text)


def _algorithm(key: Any) -> str:
    alg = key.algorithm
    return alg.decode("ascii") if isinstance(alg, bytes) else str(alg)


def fingerprint(key: Any) -> str:
    """``SHA256:<base64, no padding>`` of the key's wire blob, as OpenSSH prints it."""
    digest = hashlib.sha256(key.public_data).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def key_type_name(key: Any) -> str:
    """The type as ssh-keygen shows it in parentheses: ED25519, RSA, ECDSA…"""
    alg = _algorithm(key)
    return _TYPE_NAMES.get(alg, alg.upper())


def key_bits(key: Any) -> int:
    """The key size ssh-keygen shows first (256 for ed25519, the modulus size for RSA)."""
    alg = _algorithm(key)
    if alg in _FIXED_BITS:
        return _FIXED_BITS[alg]
    size = getattr(getattr(key, "pyca_key", None), "key_size", None)
    return int(size) if isinstance(size, int) else 0


def describe(key: Any, comment: str) -> str:
    """The key as ``ssh-keygen -lf`` prints it: ``256 SHA256:… comment (ED25519)``.

    For a key fetched from a server, use the known_hosts name as the comment
    (``[127.0.0.2]:2200``): that is what ``ssh-keygen -lf known_hosts`` prints.
    """
    return f"{key_bits(key)} {fingerprint(key)} {comment or 'no comment'} ({key_type_name(key)})"


def host_pattern(host: str, port: int) -> str:
    """The name known_hosts uses: ``host`` on port 22, ``[host]:port`` otherwise."""
    host = host.lower()
    return host if port == DEFAULT_PORT else f"[{host}]:{port}"


# ---------------------------------------------------------------------------
# Reading known_hosts
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    marker: str | None  # None, "revoked" or "cert-authority"
    patterns: str
    key: Any
    source: Path
    line: int

    def matches(self, names: Sequence[str]) -> bool:
        if self.patterns.startswith("|"):
            return any(_hashed_matches(self.patterns, name) for name in names)
        return any(_patterns_match(self.patterns, name) for name in names)


def _hashed_matches(entry: str, name: str) -> bool:
    try:
        magic, salt, digest = entry[1:].split("|")
        if magic != "1":
            return False
        salt_bytes = binascii.a2b_base64(salt)
        expected = binascii.a2b_base64(digest)
    except (ValueError, binascii.Error):
        return False
    mac = hmac.new(salt_bytes, name.encode("utf-8"), hashlib.sha1).digest()
    return hmac.compare_digest(mac, expected)


def _patterns_match(patterns: str, name: str) -> bool:
    """OpenSSH's match_hostname: any positive pattern matches and no negated one does."""
    matched = False
    for raw in patterns.split(","):
        pattern = raw.strip().lower()
        if not pattern:
            continue
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        if _glob(pattern, name):
            if negated:
                return False
            matched = True
    return matched


def _glob(pattern: str, name: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern == name
    # fnmatch also knows [...] classes; OpenSSH does not: escape them.
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(name, escaped)


def _read_entries(path: Path) -> list[_Entry]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError:
        return []
    entries: list[_Entry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker: str | None = None
        if line.startswith("@"):
            parts = line.split(None, 2)
            if len(parts) < 3:
                continue
            marker = parts[0][1:]
            if marker not in ("revoked", "cert-authority"):
                continue
            line = parts[1] + " " + parts[2]
        fields = line.split(None, 1)
        if len(fields) < 2:
            continue
        try:
            key = asyncssh.import_public_key(fields[1])
        except (asyncssh.KeyImportError, ValueError, TypeError):
            continue  # OpenSSH skips what it cannot read, too
        entries.append(_Entry(marker, fields[0], key, path, number))
    return entries


@dataclass(frozen=True, slots=True)
class HostKeyCheck:
    """What the known_hosts files say about one host."""

    names: tuple[str, ...]  # the names looked up ("[127.0.0.2]:2200", …)
    trusted: list[Any] = field(default_factory=list)
    cert_authorities: list[Any] = field(default_factory=list)
    revoked: list[Any] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.trusted or self.cert_authorities)

    def known_fingerprints(self) -> list[str]:
        return [fingerprint(k) for k in self.trusted]

    def verdict(self, presented: Any) -> HostKeyError | None:
        """None if ``presented`` is trusted, else the error to raise (unknown or changed)."""
        shown = fingerprint(presented)
        name = self.names[0] if self.names else "?"
        if any(k == presented for k in self.revoked):
            return HostKeyError(
                f"{name}: the server's host key {shown} is marked @revoked", presented=shown
            )
        if any(k == presented for k in self.trusted):
            return None
        if self.trusted:
            known = ", ".join(dict.fromkeys(self.known_fingerprints()))
            return HostKeyError(
                f"{name}: HOST KEY CHANGED: the server presented {shown}, but {known} is on "
                "record. This may be an attack (or a reinstalled server). Nothing was run and "
                "no file was changed; if the change is expected, remove the old entry "
                f"(ssh-keygen -R '{name}') and run: cockpit server trust NAME",
                presented=shown,
                known=known,
            )
        return HostKeyError(
            f"{name}: unknown host key {shown}; nothing was run. Check the fingerprint and "
            "trust it with: cockpit server trust NAME",
            presented=shown,
        )


class KnownHosts:
    """The known_hosts files Cockpit trusts: the user's and its own (the only one it writes)."""

    def __init__(self, own: Path, extra: Sequence[Path] | None = None) -> None:
        self.own = own
        self.extra: tuple[Path, ...] = tuple(extra) if extra is not None else (user_known_hosts(),)
        # parsed files, re-read when their size, mtime or inode change
        self._cache: dict[Path, tuple[tuple[int, int, int], list[_Entry]]] = {}

    @property
    def files(self) -> tuple[Path, ...]:
        return (*self.extra, self.own)

    def _entries(self) -> Iterator[_Entry]:
        for path in self.files:
            try:
                st = path.stat()
            except OSError:
                self._cache.pop(path, None)
                continue
            signature = (st.st_mtime_ns, st.st_size, st.st_ino)
            cached = self._cache.get(path)
            if cached is None or cached[0] != signature:
                cached = (signature, _read_entries(path))
                self._cache[path] = cached
            yield from cached[1]

    def lookup(self, host: str, port: int, addresses: Iterable[str] = ()) -> HostKeyCheck:
        """The keys listed for ``host`` (and the addresses it resolved to) on ``port``."""
        names = [host_pattern(host, port)]
        for address in addresses:
            if address and (name := host_pattern(address, port)) not in names:
                names.append(name)
        check = HostKeyCheck(tuple(names))
        for entry in self._entries():
            if not entry.matches(names):
                continue
            if entry.marker == "revoked":
                check.revoked.append(entry.key)
            elif entry.marker == "cert-authority":
                check.cert_authorities.append(entry.key)
            else:
                check.trusted.append(entry.key)
        return check

    def asyncssh_callback(self, port: int) -> Any:
        """A ``known_hosts=`` callable for asyncssh: the trusted/CA/revoked keys of a host.

        asyncssh passes the port as None for 22; ``port`` is what we connect to.
        """

        def match(
            host: str, addr: str, _port: int | None
        ) -> tuple[list[Any], list[Any], list[Any]]:
            check = self.lookup(host, port, [addr] if addr else [])
            return (check.trusted, check.cert_authorities, check.revoked)

        return match

    def record(self, host: str, port: int, key: Any, *, hashed: bool = False) -> bool:
        """Add ``key`` for ``host``/``port`` to Cockpit's own file (0600, atomic).

        Returns False when the key was already trusted (nothing written). Raises
        :class:`HostKeyError` when another key is on record for the host (a changed key
        is never overwritten) or the key is revoked.
        """
        with self._lock():
            check = self.lookup(host, port)
            error = check.verdict(key)
            if error is None:
                return False
            if check.trusted or check.revoked:
                raise error
            name = host_pattern(host, port)
            if hashed:
                salt = secrets.token_bytes(20)
                digest = hmac.new(salt, name.encode("utf-8"), hashlib.sha1).digest()
                name = "|1|{}|{}".format(
                    base64.b64encode(salt).decode("ascii"), base64.b64encode(digest).decode("ascii")
                )
            algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
            line = f"{name} {algorithm} {blob}\n"
            try:
                old = self.own.read_bytes()
            except FileNotFoundError:
                old = b""
            if old and not old.endswith(b"\n"):
                old += b"\n"
            write_atomic(self.own, old + line.encode("ascii"), mode=0o600)
            return True

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise writers (two Cockpit processes trusting at once) on a sibling lock file."""
        self.own.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_path = self.own.with_name(f".{self.own.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------
# Trusting a server on purpose (``cockpit server trust``, through cockpit.core)
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HostKeyOffer:
    """A server's host key, fetched without logging in, and what the files say of it."""

    server: str  # the server's name in the inventory
    key: Any
    host: str  # the name it is (or would be) recorded under, with ``port``
    port: int
    verdict: HostKeyError | None  # None: already trusted; else why it is not (yet)

    @property
    def label(self) -> str:
        """The known_hosts name: ``[127.0.0.2]:2200``, or the bare host on port 22."""
        return host_pattern(self.host, self.port)

    @property
    def description(self) -> str:
        """As ``ssh-keygen -lf`` prints the recorded entry: ``256 SHA256:… label (ED25519)``."""
        return describe(self.key, self.label)

    @property
    def trusted(self) -> bool:
        return self.verdict is None

    @property
    def changed(self) -> bool:
        """Another key is on record for this host: it can never be trusted as is."""
        return self.verdict is not None and self.verdict.known is not None


async def fetch_offer(config: Config, server: Server) -> HostKeyOffer:
    """Fetch ``server``'s host key (the handshake only: nothing runs, nothing is sent
    but the key exchange) and judge it against the known_hosts files ``config`` names.

    Raises :class:`ArgumentError` for a server on the local transport and the
    transport's errors when the server cannot be reached.
    """
    from cockpit.backends.ssh import SshPool
    from cockpit.model import Transport

    if server.transport is Transport.LOCAL:
        raise ArgumentError(f"{server.name} uses the local transport: it has no host key to trust")
    pool = SshPool(config)
    try:
        fetched = await pool.fetch_host_key(server)
    finally:
        await pool.close()
    verdict = pool.known_hosts.lookup(fetched.host, fetched.port).verdict(fetched.key)
    return HostKeyOffer(server.name, fetched.key, fetched.host, fetched.port, verdict)


def record_offer(config: Config, offer: HostKeyOffer, *, hashed: bool = False) -> bool:
    """Record an offered key in Cockpit's own known_hosts (0600, atomic); False when it
    was trusted already. A changed or revoked key raises :class:`HostKeyError` and
    nothing is written."""
    return KnownHosts(config.ssh.known_hosts).record(
        offer.host, offer.port, offer.key, hashed=hashed
    )

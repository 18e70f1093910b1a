"""A fleet of real OpenSSH servers on loopback, for tests.

Layout and conventions (read this before writing a test that uses the bed):

* Host ``tbK`` listens on ``127.0.0.K`` (K = 2, 3, ... up to 254), never outside 127.0.0.0/8.
* Every host of one pytest session shares one TCP port. Under pytest-xdist each worker is its
  own session and gets its own port: the first free one of ``2200 + W``, ``2300 + W``,
  ``2400 + W``, ... where W is the worker number (``gw3`` -> 3, no xdist -> 0). "Free" means an
  exclusive ``flock`` on ``<base>/<port>.lock`` (held for the whole session) plus a bind probe on
  127.0.0.2-65, so concurrent pytest runs on one machine never collide.
* Everything lives in ``<base>/<port>/`` (``<base>`` = ``$COCKPIT_TESTBED_DIR`` or
  ``/tmp/cockpit-testbed``; pytest's own tmp dirs are 0700 and the login users must traverse the
  bed). The dir is wiped when a session claims the port, after killing any sshd a crashed session
  left running from it, and removed at the end.
* One client key pair (ed25519, ``client_ed25519``) logs in everywhere; ``authorized_keys`` holds
  only its public key. Each host has its own ed25519 host key; ``known_hosts`` lists every started
  host as ``[127.0.0.K]:PORT ssh-ed25519 AAAA...``.
* Login users (system users created once per machine, password ``*``, homes under
  ``/var/lib/cockpit-testbed/home`` without rc files):
  ``cockpit-tb`` (/bin/sh, passwordless ``sudo -n``: the default), ``cockpit-tb-bash``
  (/bin/bash), ``cockpit-tb-tcsh`` (tcsh). ``root`` may log in by key too, but root's
  ~/.bashrc may be slow (pyenv): prefer ``cockpit-tb`` + sudo.
* Each host has a private root directory ``hosts/tbK/root`` owned by ``cockpit-tb``: use it as
  the server's root in Cockpit (``Fleet.fresh_root`` gives a new empty one per test).
* Hosts are shared by the tests of one worker. ``stop``/``start`` (or ``with fleet.stopped(h)``)
  take one host down by PID (refused connections, established ones cut); ``partition``/``heal``
  (or ``with fleet.partitioned(h)``) drop its packets with iptables on lo (connects hang). A host
  left stopped is restarted by the next ``take``; partitions are healed at session end.
* The test clients (``ssh_config()``, ``TestHost.ssh_argv``) prefer curve25519 key exchange:
  OpenSSH 9.2's default post-quantum kex costs ~130 ms of client CPU per connection here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

SSHD = "/usr/sbin/sshd"
LOGIN_USER = "cockpit-tb"
BASH_USER = "cockpit-tb-bash"
TCSH_USER = "cockpit-tb-tcsh"
USERS_HOME = Path("/var/lib/cockpit-testbed/home")
SUDOERS_FILE = Path("/etc/sudoers.d/cockpit-testbed")
BASE_PORT = 2200
PORT_STRIDE = 100
PORT_TRIES = 40
MAX_HOSTS = 253  # 127.0.0.2 .. 127.0.0.254
START_TIMEOUT = 15.0
# curve25519 first, the others stay allowed (see the module doc)
CLIENT_KEX = "^curve25519-sha256"
HINT = "Run scripts/test (as root) to install and set up what the test bed needs."


class TestbedError(RuntimeError):
    """The test bed cannot be set up or a host misbehaves."""


@dataclass(frozen=True)
class TestHost:
    """One test server: what Cockpit needs to register it, and what a test needs to reach it."""

    __test__: ClassVar[bool] = False  # not a pytest test class

    name: str  # "tb2"; also a Host alias in Fleet.ssh_config()
    address: str  # "127.0.0.2"
    port: int
    user: str  # login user, "cockpit-tb" unless with_user() changed it
    root: Path  # the directory Cockpit uses as this server's root
    host_key_path: Path  # the private host key (its .pub is next to it)
    host_public_key: str  # "ssh-ed25519 AAAA..."
    fingerprint: str  # "SHA256:..." as ssh-keygen -lf prints it
    client_key: Path  # private client key accepted by every host
    known_hosts: Path  # the bed's known_hosts (lists every started host)

    def with_user(self, user: str) -> TestHost:
        """The same host, logged in as another user (root, cockpit-tb-bash, cockpit-tb-tcsh)."""
        return dataclasses.replace(self, user=user)

    @property
    def known_hosts_line(self) -> str:
        return f"[{self.address}]:{self.port} {self.host_public_key}"

    def asyncssh_options(self) -> dict[str, Any]:
        """Keyword arguments for ``asyncssh.connect(**host.asyncssh_options())``."""
        return {
            "host": self.address,
            "port": self.port,
            "username": self.user,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
            "agent_path": None,
        }

    def ssh_argv(self, *command: str) -> list[str]:
        """An OpenSSH client argv running ``command`` on this host (no ssh config file needed).

        As always with ssh, the words of ``command`` are joined with spaces and run by the
        login shell: quote for that shell (and mind tcsh) or send a script on stdin.
        """
        return [
            "ssh",
            "-F", "/dev/null",
            "-p", str(self.port),
            "-i", str(self.client_key),
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "LogLevel=ERROR",
            "-o", "ConnectTimeout=10",
            "-o", f"KexAlgorithms={CLIENT_KEX}",
            f"{self.user}@{self.address}",
            *(["--", *command] if command else []),
        ]  # fmt: skip


@dataclass
class _Server:
    host: TestHost
    config: Path
    pidfile: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    log_handle: IO[bytes] | None = field(default=None, repr=False)


def _run(
    argv: Sequence[str], *, check: bool = True, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), check=check, text=True, capture_output=True, stdin=subprocess.DEVNULL, **kwargs
    )


def worker_number() -> int:
    """0 without xdist, N for xdist worker ``gwN``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = worker.removeprefix("gw")
    return int(digits) if digits.isdigit() else 0


def base_dir() -> Path:
    return Path(os.environ.get("COCKPIT_TESTBED_DIR", "/tmp/cockpit-testbed"))


def check_prerequisites() -> None:
    """Raise TestbedError (with a hint to run scripts/test) when the bed cannot work here."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the test bed must run as root (it starts sshd and creates users)")
    for tool in (SSHD, "ssh", "ssh-keygen", "sudo", "visudo", "tcsh", "bash", "useradd"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} is missing")
    if problems:
        raise TestbedError("; ".join(problems) + ". " + HINT)


def _mkdir(path: Path, owner: str | None = None) -> None:
    """mkdir -p with mode 0755 whatever the umask (the login users must traverse the bed)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    for p in missing:
        p.chmod(0o755)
    if owner is not None:
        shutil.chown(path, owner, owner)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    _mkdir(path.parent)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_users() -> None:
    """Create the login users and the sudo rule, once per machine (idempotent, serialised)."""
    tcsh = shutil.which("tcsh") or "/usr/bin/tcsh"
    users = {LOGIN_USER: "/bin/sh", BASH_USER: "/bin/bash", TCSH_USER: tcsh}
    with _locked(base_dir() / ".setup.lock"):
        _mkdir(Path("/run/sshd"))  # sshd's privilege separation dir
        for user, shell in users.items():
            home = USERS_HOME / user
            if _run(["getent", "passwd", user], check=False).returncode != 0:
                _run(
                    ["useradd", "--system", "--user-group", "--no-create-home",
                     "--home-dir", str(home), "--shell", shell, "--password", "*", user]
                )  # fmt: skip
            else:
                fields = _run(["getent", "passwd", user]).stdout.strip().split(":")
                if fields[6] != shell or fields[5] != str(home):
                    _run(["usermod", "--shell", shell, "--home", str(home), user])
                if _run(["getent", "shadow", user]).stdout.split(":")[1].startswith("!"):
                    _run(["usermod", "--password", "*", user])
            _mkdir(home, owner=user)
        rule = f"{LOGIN_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n"
        if not SUDOERS_FILE.exists() or SUDOERS_FILE.read_text() != rule:
            SUDOERS_FILE.parent.mkdir(mode=0o755, exist_ok=True)
            tmp = SUDOERS_FILE.with_name(".cockpit-testbed.tmp")
            tmp.write_text(rule)
            tmp.chmod(0o440)
            check = _run(["visudo", "-cf", str(tmp)], check=False)
            if check.returncode != 0:
                tmp.unlink()
                raise TestbedError(f"visudo rejected the sudo rule: {check.stderr or check.stdout}")
            tmp.rename(SUDOERS_FILE)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ppid_map() -> dict[int, int]:
    """pid -> parent pid for every process."""
    result = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the comm field may contain spaces and parentheses: split after the last ')'
        rest = stat[stat.rfind(")") + 2 :].split()
        result[int(entry.name)] = int(rest[1])
    return result


def _descendants(pid: int) -> list[int]:
    parents = _ppid_map()
    found: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        children = [p for p, pp in parents.items() if pp == current]
        found.extend(children)
        todo.extend(children)
    return found


def _kill_and_wait(pids: Sequence[int], timeout: float = 5.0) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _pid_alive(p) and not _is_zombie(p)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2 :].startswith("Z")


def kill_stale_sshd(bed: Path) -> None:
    """Kill every sshd started from a config file under ``bed`` (left by a crashed session).

    Found by the pid files in ``bed`` and by command line: the sshd listener rewrites its
    process title to "sshd: /usr/sbin/sshd -D -e -f <bed>/... [listener] ...".
    """
    stale: set[int] = set()
    for pidfile in bed.glob("hosts/*/sshd.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            if _is_sshd(pid):
                stale.add(pid)
    needle = (str(bed) + "/").encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _is_sshd(int(entry.name)):
            with contextlib.suppress(OSError):
                if needle in (entry / "cmdline").read_bytes():
                    stale.add(int(entry.name))
    stale.discard(os.getpid())
    _kill_and_wait(sorted(stale))


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    if shutil.which("iptables") is None:
        raise TestbedError(f"iptables is missing (needed for partitions). {HINT}")
    done = _run(["iptables", "-w", "10", *args], check=False)
    if check and done.returncode != 0:
        raise TestbedError(f"iptables {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def _rule_comment(port: int) -> str:
    return f"cockpit-testbed-{port}"


def _drop_rules(address: str, port: int) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", _rule_comment(port), "-j", "DROP"]
    return [
        ["INPUT", "-i", "lo", "-p", "tcp", "-d", f"{address}/32", "--dport", str(port), *tag],
        ["INPUT", "-i", "lo", "-p", "tcp", "-s", f"{address}/32", "--sport", str(port), *tag],
    ]


def remove_stale_rules(port: int) -> None:
    """Delete the partition rules a crashed session left for ``port`` (if iptables exists)."""
    if shutil.which("iptables") is None:
        return
    listing = _iptables("-S", "INPUT", check=False).stdout
    for line in listing.splitlines():
        words = shlex.split(line)
        if words[:2] == ["-A", "INPUT"] and _rule_comment(port) in words:
            _iptables("-D", *words[1:], check=False)


def _port_free(port: int) -> bool:
    for last in range(2, 66):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            # as sshd does: TIME_WAIT leftovers of a previous session are no conflict
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((f"127.0.0.{last}", port))
            except OSError:
                return False
    return True


def _ssh_keygen(path: Path, comment: str) -> None:
    for p in (path, path.with_name(path.name + ".pub")):
        p.unlink(missing_ok=True)
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])


def _fingerprint(public_key: Path) -> str:
    # "256 SHA256:abc... comment (ED25519)"
    return _run(["ssh-keygen", "-lf", str(public_key)]).stdout.split()[1]


class Fleet:
    """N real sshd on 127.0.0.2 ... 127.0.0.(N+1), one port per session. See the module doc."""

    def __init__(self, bed: Path, port: int, lock_file: IO[str]) -> None:
        self.bed = bed
        self.port = port
        self._lock_file = lock_file
        self.client_key = bed / "client_ed25519"
        self.authorized_keys = bed / "authorized_keys"
        self.known_hosts = bed / "known_hosts"
        self._ssh_config = bed / "ssh_config"
        self._servers: dict[str, _Server] = {}
        self._mutex = threading.RLock()
        self._fresh_roots = 0
        self._partitioned: set[str] = set()
        self._closed = False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def create(cls, initial: int = 0) -> Fleet:
        """Claim a port, prepare the bed dir and users, and start ``initial`` hosts."""
        check_prerequisites()
        ensure_users()
        base = base_dir()
        _mkdir(base)
        first = BASE_PORT + worker_number()
        for attempt in range(PORT_TRIES):
            port = first + attempt * PORT_STRIDE
            lock_file = open(base / f"{port}.lock", "a")  # noqa: SIM115 - held for the session
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock_file.close()
                continue
            bed = base / str(port)
            kill_stale_sshd(bed)
            remove_stale_rules(port)
            if not _port_free(port):
                fcntl.flock(lock_file, fcntl.LOCK_UN)
                lock_file.close()
                continue
            shutil.rmtree(bed, ignore_errors=True)
            _mkdir(bed)
            fleet = cls(bed, port, lock_file)
            try:
                fleet._prepare()
                if initial:
                    fleet.take(initial)
            except BaseException:
                fleet.close()
                raise
            return fleet
        raise TestbedError(f"no free test-bed port from {first} (step {PORT_STRIDE})")

    def _prepare(self) -> None:
        _mkdir(self.bed / "hosts")
        _ssh_keygen(self.client_key, "cockpit-testbed-client")
        pub = self.client_key.with_name(self.client_key.name + ".pub").read_text()
        self.authorized_keys.write_text(pub)
        self.authorized_keys.chmod(0o644)  # sshd reads it as the login user
        self.known_hosts.write_text("")
        self._write_ssh_config()

    # -- the public API -----------------------------------------------------------------------

    @property
    def hosts(self) -> list[TestHost]:
        """Every host started so far, in address order."""
        with self._mutex:
            return [s.host for s in self._servers.values()]

    def take(self, n: int) -> list[TestHost]:
        """The first ``n`` hosts (tb2 ... tb(n+1)), started now if they are not yet running."""
        if not 1 <= n <= MAX_HOSTS:
            raise ValueError(f"a fleet has 1 to {MAX_HOSTS} hosts, not {n}")
        with self._mutex:
            if self._closed:
                raise TestbedError("the fleet is closed")
            new = [f"127.0.0.{k}" for k in range(2, n + 2) if f"tb{k}" not in self._servers]
            if new:
                self._add_hosts(new)
            wanted = [self._servers[f"tb{k}"] for k in range(2, n + 2)]
            # a host that an earlier test stopped and did not restart: bring it back
            stopped = [s for s in wanted if not self.is_running(s.host)]
            if stopped:
                self._start_servers(stopped)
            return [s.host for s in wanted]

    def host(self, name: str) -> TestHost:
        with self._mutex:
            return self._servers[name].host

    def ssh_config(self) -> Path:
        """An OpenSSH client config with a ``Host tbK`` entry per started host."""
        return self._ssh_config

    def fresh_root(self, host: TestHost) -> TestHost:
        """``host`` with a new, empty root directory (owned by the login user)."""
        with self._mutex:
            self._fresh_roots += 1
            root = self.bed / "hosts" / host.name / "roots" / str(self._fresh_roots)
        _mkdir(root.parent)
        _mkdir(root, owner=LOGIN_USER)
        return dataclasses.replace(host, root=root)

    def is_running(self, host: TestHost | str) -> bool:
        server = self._server(host)
        return server.proc is not None and server.proc.poll() is None

    def pid(self, host: TestHost | str) -> int | None:
        server = self._server(host)
        return server.proc.pid if server.proc is not None and server.proc.poll() is None else None

    def stop(self, host: TestHost | str, *, sessions: bool = True) -> None:
        """Stop one host's sshd (by PID): new connections are refused.

        With ``sessions`` (the default) the connections it already accepted are cut too, as if
        the server went down; the login shells then get SIGHUP/EOF like after a network drop.
        Processes started detached (setsid) on the host survive, as they would on a real server.
        """
        server = self._server(host)
        with self._mutex:
            proc = server.proc
            if proc is None or proc.poll() is not None:
                return
            children = _descendants(proc.pid) if sessions else []
            sshd_children = [p for p in children if _is_sshd(p)]
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _kill_and_wait(sshd_children)
            if server.log_handle is not None:
                server.log_handle.close()
                server.log_handle = None
            server.pidfile.unlink(missing_ok=True)

    def start(self, host: TestHost | str) -> None:
        """Start a stopped host again, with the same host key and port."""
        server = self._server(host)
        with self._mutex:
            if not self.is_running(server.host):
                self._start_servers([server])

    @contextlib.contextmanager
    def stopped(self, host: TestHost | str) -> Iterator[None]:
        """``with fleet.stopped(host): ...`` — the host is down inside, up again after."""
        self.stop(host)
        try:
            yield
        finally:
            self.start(host)

    def partition(self, host: TestHost | str) -> None:
        """Drop every packet to and from one host's sshd (iptables on lo): connects hang,
        established connections stall until a timeout or keepalive notices. Unlike stop(),
        nothing is refused or closed: this is a network partition."""
        server = self._server(host)
        with self._mutex:
            for rule in _drop_rules(server.host.address, self.port):
                if _iptables("-C", *rule, check=False).returncode != 0:
                    _iptables("-I", *rule)
            self._partitioned.add(server.host.name)

    def heal(self, host: TestHost | str) -> None:
        """Undo partition()."""
        server = self._server(host)
        with self._mutex:
            for rule in _drop_rules(server.host.address, self.port):
                while _iptables("-C", *rule, check=False).returncode == 0:
                    _iptables("-D", *rule)
            self._partitioned.discard(server.host.name)

    def is_partitioned(self, host: TestHost | str) -> bool:
        return self._server(host).host.name in self._partitioned

    @contextlib.contextmanager
    def partitioned(self, host: TestHost | str) -> Iterator[None]:
        """``with fleet.partitioned(host): ...`` — unreachable inside, healed after."""
        self.partition(host)
        try:
            yield
        finally:
            self.heal(host)

    def close(self) -> None:
        """Stop every sshd (by PID), remove the bed dir and release the port."""
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            if self._partitioned:
                with contextlib.suppress(Exception):
                    remove_stale_rules(self.port)
            for server in self._servers.values():
                with contextlib.suppress(Exception):
                    self.stop(server.host)
            kill_stale_sshd(self.bed)
            shutil.rmtree(self.bed, ignore_errors=True)
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------

    def _server(self, host: TestHost | str) -> _Server:
        name = host if isinstance(host, str) else host.name
        try:
            return self._servers[name]
        except KeyError:
            raise TestbedError(f"{name} is not a host of this fleet") from None

    def _add_hosts(self, addresses: list[str]) -> None:
        with ThreadPoolExecutor(max_workers=min(8, len(addresses))) as pool:
            servers = list(pool.map(self._make_server, addresses))
        for server in servers:
            self._servers[server.host.name] = server
        with self.known_hosts.open("a") as f:
            f.writelines(s.host.known_hosts_line + "\n" for s in servers)
        self._write_ssh_config()
        self._start_servers(servers)

    def _make_server(self, address: str) -> _Server:
        name = "tb" + address.rsplit(".", 1)[1]
        hdir = self.bed / "hosts" / name
        _mkdir(hdir)
        root = hdir / "root"
        _mkdir(root, owner=LOGIN_USER)
        key = hdir / "ssh_host_ed25519_key"
        _ssh_keygen(key, f"cockpit-testbed-{name}")
        pub = key.with_name(key.name + ".pub")
        public_key = " ".join(pub.read_text().split()[:2])
        host = TestHost(
            name=name,
            address=address,
            port=self.port,
            user=LOGIN_USER,
            root=root,
            host_key_path=key,
            host_public_key=public_key,
            fingerprint=_fingerprint(pub),
            client_key=self.client_key,
            known_hosts=self.known_hosts,
        )
        config = hdir / "sshd_config"
        pidfile = hdir / "sshd.pid"
        config.write_text(self._sshd_config(host, pidfile))
        return _Server(host=host, config=config, pidfile=pidfile, log=hdir / "sshd.log")

    def _sshd_config(self, host: TestHost, pidfile: Path) -> str:
        users = " ".join([LOGIN_USER, BASH_USER, TCSH_USER, "root"])
        return f"""\
# cockpit test bed: {host.name}
ListenAddress {host.address}
Port {host.port}
HostKey {host.host_key_path}
PidFile {pidfile}
AuthorizedKeysFile {self.authorized_keys}
AllowUsers {users}
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxSessions 64
MaxStartups 200:30:400
LogLevel ERROR
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""

    def _write_ssh_config(self) -> None:
        lines = []
        for server in self._servers.values():
            h = server.host
            lines += [
                f"Host {h.name}",
                f"  HostName {h.address}",
                f"  Port {h.port}",
                f"  User {h.user}",
                f"  IdentityFile {self.client_key}",
                "  IdentitiesOnly yes",
                f"  UserKnownHostsFile {self.known_hosts}",
                "  GlobalKnownHostsFile /dev/null",
                "  StrictHostKeyChecking yes",
                "  UpdateHostKeys no",
                "  BatchMode yes",
                "  ConnectTimeout 10",
                f"  KexAlgorithms {CLIENT_KEX}",
                "  LogLevel ERROR",
                "",
            ]
        tmp = self._ssh_config.with_name(".ssh_config.tmp")
        tmp.write_text("\n".join(lines))
        tmp.replace(self._ssh_config)

    def _start_servers(self, servers: list[_Server]) -> None:
        for server in servers:
            server.pidfile.unlink(missing_ok=True)
            server.log_handle = open(server.log, "ab")  # noqa: SIM115 - closed by stop()
            server.proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(server.config)],
                stdin=subprocess.DEVNULL,
                stdout=server.log_handle,
                stderr=server.log_handle,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(servers)
        while waiting:
            still = []
            for server in waiting:
                assert server.proc is not None
                if server.proc.poll() is not None:
                    raise TestbedError(
                        f"sshd for {server.host.name} ({server.host.address}:{self.port}) exited"
                        f" with status {server.proc.returncode}:\n{_tail(server.log)}\n{HINT}"
                    )
                if not _accepts(server.host.address, self.port):
                    still.append(server)
            waiting = still
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.host.name for s in waiting)
                details = "\n".join(f"{s.host.name}: {_tail(s.log)}" for s in waiting)
                raise TestbedError(
                    f"sshd did not listen within {START_TIMEOUT}s: {names}\n{details}"
                )
            if waiting:
                time.sleep(0.01)


def _is_sshd(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"
    except OSError:
        return False


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no log)"


def temporary_known_hosts(lines: Sequence[str], directory: Path | None = None) -> Path:
    """Write a known_hosts file with ``lines`` (for host-key mismatch tests)."""
    fd, name = tempfile.mkstemp(prefix="known_hosts.", dir=directory)
    with os.fdopen(fd, "w") as f:
        f.writelines(line + "\n" for line in lines)
    return Path(name)

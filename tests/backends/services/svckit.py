"""Helpers for the service plugin tests: real nginx/apache masters on the test bed's hosts.

Every test reaches its host through the real SSH transport (login ``cockpit-tb``, root
through ``sudo -n``). A web server runs from a private tree in the host's fresh root
(``<root>/nginx`` or ``<root>/apache``), listening on the host's own 127.0.0.K address
on ports derived from the session's sshd port (so parallel sessions never collide); the
fixture starts it through the transport with sudo and stops it (by its pid file) after.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testbed import Fleet, TestHost

from cockpit.backends.hostkeys import KnownHosts
from cockpit.backends.services import get_service
from cockpit.backends.services.db import DbCredentials, DbService
from cockpit.backends.services.http import HttpService
from cockpit.backends.ssh import SshPool
from cockpit.backends.transport import LineHandler, Result, Transport
from cockpit.backends.verify import lay_out
from cockpit.config import SshDefaults
from cockpit.model import Server, Service

# -- ports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    nginx_http: int
    nginx_https: int
    apache_http: int
    apache_https: int


def bed_ports(fleet: Fleet) -> Ports:
    """Four ports unique to this session (its sshd port is): 20000 + 4 × offset."""
    base = 20000 + (fleet.port - 2200) * 4
    return Ports(base, base + 1, base + 2, base + 3)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


async def wait_listening(address: str, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection(address, port)
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {address}:{port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


# -- SSH ---------------------------------------------------------------------------------


def make_pool(host: TestHost) -> SshPool:
    defaults = SshDefaults(identity_files=(host.client_key,))
    return SshPool(defaults, known_hosts=KnownHosts(host.known_hosts, extra=[]), ssh_config=[])


def server_for(host: TestHost, *services: Service) -> Server:
    return Server(
        name=host.name,
        address=host.address,
        port=host.port,
        user=host.user,
        root=str(host.root),
        services=services,
    )


# -- HTTP from the test process ----------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    peer_certificate: bytes | None = None


def http_get(
    address: str,
    port: int,
    host: str,
    path: str = "/",
    *,
    tls: bool = False,
    cafile: str | None = None,
    timeout: float = 10,
) -> Response:
    """One GET to ``address:port`` (loopback only) with ``Host: host`` (and SNI with TLS)."""
    assert address.startswith("127."), address
    raw = socket.create_connection((address, port), timeout=timeout)
    cert = None
    sock: socket.socket = raw
    if tls:
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(raw, server_hostname=host)
        cert = sock.getpeercert(binary_form=True)
    with sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: cockpit-tests\r\n\r\n".encode()
        )
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return Response(status, headers, body, cert)


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


async def aget(*args: object, **kwargs: object) -> Response:
    return await asyncio.to_thread(http_get, *args, **kwargs)  # type: ignore[arg-type]


# -- web server beds ---------------------------------------------------------------------


@dataclass
class WebBed:
    """A running web server on a test host, and a Cockpit http plugin configured for it."""

    host: TestHost
    server: Server
    transport: Transport
    http: HttpService
    conf_dir: str
    http_port: int
    https_port: int
    pid_file: str
    kind: str

    @property
    def address(self) -> str:
        return self.host.address

    async def docroot(self, domain: str, index: str | None = None) -> str:
        """A site docroot under the host's root with an index.html saying ``index``."""
        path = f"{self.server.root}/sites/{domain}/web"
        result = await self.transport.run_script('mkdir -p -m 755 -- "$1"', [path])
        assert result.ok
        await self.transport.upload(
            (index if index is not None else f"hello from {domain}\n").encode(),
            f"{path}/index.html",
            mode=0o644,
        )
        return path

    async def get(
        self, host: str, path: str = "/", *, https: bool = False, cafile: str | None = None
    ) -> Response:
        port = self.https_port if https else self.http_port
        return await aget(self.address, port, host, path, tls=https, cafile=cafile)

    async def read(self, path: str) -> bytes:
        return await self.transport.download(path, sudo=True)

    async def exists(self, path: str) -> bool:
        result = await self.transport.run_script('[ -e "$1" ] || [ -L "$1" ]', [path], sudo=True)
        return result.ok

    async def master_pid(self) -> int:
        return int((await self.read(self.pid_file)).decode().strip())


NGINX_CONF = """\
user www-data;
worker_processes 1;
pid {conf}/run/nginx.pid;
error_log {conf}/logs/error.log;
events {{ worker_connections 128; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {conf}/logs/access.log;
    client_body_temp_path {conf}/tmp/body;
    proxy_temp_path {conf}/tmp/proxy;
    fastcgi_temp_path {conf}/tmp/fastcgi;
    uwsgi_temp_path {conf}/tmp/uwsgi;
    scgi_temp_path {conf}/tmp/scgi;
    server_names_hash_bucket_size 128;
    server {{
        listen {address}:{http_port} default_server;
        server_name _;
        return 444;
    }}
    include {conf}/sites-enabled/*;
}}
"""

APACHE_CONF = """\
ServerRoot /etc/apache2
DefaultRuntimeDir {conf}/run
PidFile {conf}/run/apache2.pid
Mutex file:{conf}/run default
ServerName localhost
User www-data
Group www-data
ErrorLog {conf}/logs/error.log
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O" combined
Listen {address}:{http_port}
Listen {address}:{https_port}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule socache_shmcb_module /usr/lib/apache2/modules/mod_socache_shmcb.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_fcgi_module /usr/lib/apache2/modules/mod_proxy_fcgi.so
StartServers 1
ServerLimit 2
ThreadsPerChild 10
MaxRequestWorkers 20
TypesConfig /etc/mime.types
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<VirtualHost {address}:{http_port}>
    ServerName default.invalid
    <Location />
        Require all denied
    </Location>
</VirtualHost>
IncludeOptional {conf}/sites-enabled/*.conf
"""

_PREPARE = r"""
conf=$1
shift
for d in "$@"; do mkdir -p -m 755 -- "$conf/$d" || exit 1; done
"""


async def start_bed(
    host: TestHost,
    pool: SshPool,
    kind: str,
    http_port: int,
    https_port: int,
    **extra_settings: str | int | bool,
) -> WebBed:
    root = str(host.root)
    conf = f"{root}/{kind}"
    settings: dict[str, str | int | bool] = {
        "sites_dir": f"{conf}/sites-available",
        "enabled_dir": f"{conf}/sites-enabled",
        "log_dir": f"{conf}/logs",
        "listen_address": host.address,
        "http_port": http_port,
        "https_port": https_port,
        "probe_timeout": 10,
        "certificates": "selfsigned",
    }
    if kind == "nginx":
        settings["main_conf"] = f"{conf}/nginx.conf"
        text = NGINX_CONF.format(conf=conf, address=host.address, http_port=http_port)
        main = f"{conf}/nginx.conf"
        pid_file = f"{conf}/run/nginx.pid"
        start = ["nginx", "-c", main]
    else:
        settings["main_conf"] = f"{conf}/apache2.conf"
        settings["binary"] = "apache2"
        text = APACHE_CONF.format(
            conf=conf, address=host.address, http_port=http_port, https_port=https_port
        )
        main = f"{conf}/apache2.conf"
        pid_file = f"{conf}/run/apache2.pid"
        start = ["apache2", "-f", main, "-k", "start"]
    settings.update(extra_settings)
    service = Service("http", kind, settings)
    server = server_for(host, service)
    transport = pool.transport(server)
    await lay_out(transport, server)
    dirs = ["sites-available", "sites-enabled", "logs", "run", "tmp"]
    assert (await transport.run_script(_PREPARE, [conf, *dirs])).ok
    await transport.upload(text.encode(), main, mode=0o644)
    if kind == "nginx":
        params = Path("/etc/nginx/fastcgi_params").read_bytes()
        await transport.upload(params, f"{conf}/fastcgi_params", mode=0o644)
    result = await transport.run(start, sudo=True, capture=True)
    assert result.ok, result.stderr
    await wait_listening(host.address, http_port)
    http = get_service("http", kind)(server, service)
    assert isinstance(http, HttpService)
    return WebBed(host, server, transport, http, conf, http_port, https_port, pid_file, kind)


_STOP = r"""
pidfile=$1
shift
[ -s "$pidfile" ] || exit 0
pid=$(cat -- "$pidfile")
"$@" || kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then kill -KILL "$pid"; fi
    sleep 0.1
done
"""


async def stop_bed(bed: WebBed) -> None:
    main = bed.http.setting("main_conf")
    if bed.kind == "nginx":
        stop = ["nginx", "-c", main, "-s", "quit"]
    else:
        stop = ["apache2", "-f", main, "-k", "stop"]
    await bed.transport.run_script(_STOP, [bed.pid_file, *stop], sudo=True, timeout=60)


# -- a real transport that counts what goes through it -----------------------------------


class CountingTransport(Transport):
    """A real transport underneath; every call through it is counted (and recorded)."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner.server)
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    async def run_script(
        self,
        script: str,
        args: Sequence[str] = (),
        *,
        sudo: bool = False,
        on_line: LineHandler | None = None,
        capture: bool = False,
        timeout: float | None = None,
    ) -> Result:
        self.calls.append(("run_script", script[:60]))
        return await self.inner.run_script(
            script, args, sudo=sudo, on_line=on_line, capture=capture, timeout=timeout
        )

    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        self.calls.append(("upload", remote_path))
        await self.inner.upload(data, remote_path, mode=mode, sudo=sudo)

    async def download(self, remote_path: str, *, sudo: bool = False) -> bytes:
        self.calls.append(("download", remote_path))
        return await self.inner.download(remote_path, sudo=sudo)

    async def close(self) -> None:
        await self.inner.close()


# -- watching every process on the machine ---------------------------------------------


@dataclass
class ProcSampler:
    """Samples ``/proc/*/cmdline`` and ``/proc/*/environ`` of every process, as fast as it
    can, in a thread, while a ``with`` block runs. The test bed's hosts are on this
    machine, so this sees the remote side's processes too."""

    seen_cmdlines: set[bytes] = field(default_factory=set)
    seen_environs: set[bytes] = field(default_factory=set)
    rounds: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        own = str(os.getpid())
        while not self._stop.is_set():
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit() or entry.name == own:
                    continue
                for name, bucket in (
                    ("cmdline", self.seen_cmdlines),
                    ("environ", self.seen_environs),
                ):
                    try:
                        with open(f"/proc/{entry.name}/{name}", "rb") as f:
                            data = f.read()
                    except OSError:
                        continue
                    if data:
                        bucket.add(data)
            self.rounds += 1

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcSampler]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    def find(self, needle: bytes) -> list[bytes]:
        return [d for d in self.seen_cmdlines | self.seen_environs if needle in d]


def files_containing(roots: Sequence[str], needle: bytes) -> list[tuple[str, int]]:
    """Every regular file under ``roots`` containing ``needle``, with its mode."""
    found = []
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = os.path.join(dirpath, name)
                try:
                    st = os.lstat(path)
                    if not os.path.isfile(path) or st.st_size > 50_000_000:
                        continue
                    with open(path, "rb") as f:
                        if needle in f.read():
                            found.append((path, st.st_mode & 0o777))
                except OSError:
                    continue
    return found


# -- databases ---------------------------------------------------------------------------

#: How the test bed's hosts reach the machine's MariaDB and PostgreSQL: over TCP on
#: 127.0.0.1 as root without a password, as the login user (no sudo).
TESTBED_DB_SETTINGS: dict[str, dict[str, str | int | bool]] = {
    "mysql": {
        "host": "127.0.0.1",
        "port": 3306,
        "sudo": False,
        "user_hosts": "localhost,127.0.0.1",
        "site_host": "127.0.0.1",
    },
    "pgsql": {
        "host": "127.0.0.1",
        "port": 5432,
        "sudo": False,
        "os_user": "",
        "admin_user": "root",
        "site_host": "127.0.0.1",
    },
}


def unique_db_name(prefix: str = "ck") -> str:
    """A fresh database/user name: ``ck_<worker>_<random>`` (parallel sessions never meet)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"{prefix}_{worker}_{secrets.token_hex(4)}"


@dataclass
class DbBed:
    host: TestHost
    server: Server
    transport: Transport
    db: DbService
    created: list[tuple[str, str]] = field(default_factory=list)

    def name(self, prefix: str = "ck") -> str:
        return unique_db_name(prefix)

    async def create(
        self,
        database: str | None = None,
        user: str | None = None,
        *,
        transport: Transport | None = None,
        password: str | None = None,
    ) -> DbCredentials:
        database = database or self.name()
        user = user or database
        self.created.append((database, user))
        return await self.db.ensure_database(
            transport or self.transport, database, user, password=password
        )

    async def cleanup(self) -> None:
        for database, user in reversed(self.created):
            await self.db.drop_database(self.transport, database, user)


# -- a private PostgreSQL cluster that enforces passwords ---------------------------------


@dataclass(frozen=True)
class ScramPostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:``port`` where every TCP login needs a
    SCRAM-SHA-256 password (the machine's own cluster trusts 127.0.0.1) and every
    statement is logged (``log_statement = all``) to ``log``."""

    port: int
    admin_user: str
    admin_password: str
    data_dir: Path
    log: Path

    def settings(self) -> dict[str, str | int | bool]:
        return {
            **TESTBED_DB_SETTINGS["pgsql"],
            "port": self.port,
            "admin_user": self.admin_user,
        }


def _pg_bin(tool: str) -> str:
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise RuntimeError(f"PostgreSQL's {tool} is missing (scripts/lib.sh installs postgresql)")
    return str(found[-1])


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
        timeout=120,
    )


@contextlib.contextmanager
def scram_postgres_cluster() -> Iterator[ScramPostgres]:
    data = Path(tempfile.mkdtemp(prefix="cockpit-scram-pg-", dir="/tmp"))
    shutil.chown(data, "postgres", "postgres")
    data.chmod(0o700)
    password = secrets.token_urlsafe(18)
    pwfile = data / "pwfile"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    pwfile.chmod(0o600)
    cluster = data / "cluster"
    port = free_port()
    log = data / "server.log"
    _as_postgres(
        _pg_bin("initdb"), "-D", str(cluster), "-U", "cockpit_admin", "-A", "scram-sha-256",
        "--auth-local=peer", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
    )  # fmt: skip
    pwfile.unlink()
    options = (
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c log_statement=all "
        "-c logging_collector=off -c fsync=off"
    )
    _as_postgres(
        _pg_bin("pg_ctl"), "-D", str(cluster), "-o", options, "-l", str(log), "-w", "start"
    )
    try:
        yield ScramPostgres(port, "cockpit_admin", password, data, log)
    finally:
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                _pg_bin("pg_ctl"),
                "-D",
                str(cluster),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            cwd="/",
            check=False,
        )
        shutil.rmtree(data, ignore_errors=True)


# -- ACME offline: pebble and a tiny DNS responder ---------------------------------------


class DnsResponder:
    """A minimal authoritative DNS server on 127.0.0.1 (UDP) for pebble's ``-dnsserver``:
    A records from :attr:`records` (loopback addresses only), an empty answer for other
    types of a known name, NXDOMAIN for everything else. It records the names asked."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.queries: list[tuple[str, int]] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DnsResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, data: bytes) -> bytes | None:
        if len(data) < 12:
            return None
        tid = data[:2]
        labels, i = [], 12
        while i < len(data) and data[i] != 0:
            length = data[i]
            labels.append(data[i + 1 : i + 1 + length].decode("ascii", "replace"))
            i += 1 + length
        question = data[12 : i + 5]
        qtype = int.from_bytes(data[i + 1 : i + 3], "big")
        name = ".".join(labels).lower()
        self.queries.append((name, qtype))
        address = self.records.get(name)
        if address is None:
            flags, answers = 0x8183, b""  # NXDOMAIN
        elif qtype == 1:
            assert address.startswith("127.")
            flags = 0x8580  # authoritative answer
            answers = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
        else:
            flags, answers = 0x8580, b""
        count = 1 if answers else 0
        return tid + struct.pack(">HHHHH", flags, 1, count, 0, 0) + question + answers


@dataclass(frozen=True)
class Pebble:
    directory: str  # the ACME directory URL
    ca_bundle: Path  # the CA that signed pebble's own HTTPS certificate
    management: str
    dns: DnsResponder
    log: Path

    def root_pem(self) -> bytes:
        """Pebble's (random, per start) root certificate, from its management API."""
        ctx = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(f"{self.management}/roots/0", context=ctx, timeout=10) as r:
            return bytes(r.read())


def _openssl(*argv: str) -> None:
    subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def pebble_server(http_port: int, workdir: Path) -> Iterator[Pebble]:
    """Pebble on 127.0.0.1 (random ports), validating HTTP-01 on ``http_port`` of the
    address our DNS responder gives, with a TLS certificate from a CA made here."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, crt = (
        workdir / n for n in ("ca.key", "ca.pem", "key.pem", "srv.csr", "cert.pem")
    )
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(ca_key), "-out", str(ca), "-days", "2", "-subj", "/CN=cockpit test ACME CA")  # fmt: skip
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")  # fmt: skip
    ext = workdir / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(crt), "-days", "2", "-extfile", str(ext))  # fmt: skip
    ca.chmod(0o644)
    listen, management = free_port(), free_port()
    config = workdir / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{listen}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(crt),
                    "privateKey": str(key),
                    "httpPort": http_port,
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    log = workdir / "pebble.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    with DnsResponder() as dns, open(log, "wb") as log_file:
        proc = subprocess.Popen(
            ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns.port}"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            pebble = Pebble(
                f"https://127.0.0.1:{listen}/dir", ca, f"https://127.0.0.1:{management}", dns, log
            )
            deadline = time.monotonic() + 30
            ctx = ssl.create_default_context(cafile=str(ca))
            while True:
                try:
                    with urllib.request.urlopen(pebble.directory, context=ctx, timeout=2):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"pebble did not start: {log.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.1)
            yield pebble
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

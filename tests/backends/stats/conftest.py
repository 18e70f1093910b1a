"""Private web servers for the access-log tests: nginx (+ a php-fpm pool for real 5xx) and
Apache, each on its own loopback address and a free high port, with Cockpit's log format.

Everything lives under the test's tmp dir; traffic only ever goes to 127.0.0.0/8. The
servers run as root when the tests do (``user root`` for nginx, ``-R`` for php-fpm).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cockpit.backends.stats import formats

ROOT = os.geteuid() == 0


def _need(binary: str) -> str:
    path = shutil.which(binary) or next(iter(sorted(Path("/usr/sbin").glob(binary + "*"))), None)
    if path is None:
        if os.environ.get("COCKPIT_TESTBED", "").strip().lower() == "off":
            pytest.skip(f"{binary} is missing (COCKPIT_TESTBED=off)")
        pytest.fail(
            f"{binary} is missing: scripts/test installs it (TEST_PACKAGES in scripts/lib.sh)"
        )
    return str(path)


def _free(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def _address() -> str:
    return f"127.0.0.{random.randint(100, 250)}"


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _listening(address: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
        return True
    return False


@dataclass
class Response:
    status: int
    size: int  # every byte the server sent (headers included): nginx $bytes_sent, Apache %O


def http_get(
    address: str,
    port: int,
    host: str,
    path: str,
    *,
    agent: str = "cockpit-test",
    raw: bytes | None = None,
) -> Response:
    """One request on its own connection (``Connection: close``), read to the end."""
    assert address.startswith("127."), "test traffic stays on loopback"
    request = raw or (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n".encode()
    )
    with socket.create_connection((address, port), timeout=30) as s:
        s.sendall(request)
        data = bytearray()
        while chunk := s.recv(65536):
            data += chunk
    return Response(int(bytes(data).split(b" ", 2)[1]), len(data))


@dataclass
class Expect:
    """What the logs must add up to, per vhost: requests, bytes, 1xx..5xx."""

    by_vhost: dict[str, list[int]] = field(default_factory=dict)

    def add(self, vhost: str, r: Response) -> None:
        row = self.by_vhost.setdefault(vhost, [0] * 7)
        row[0] += 1
        row[1] += r.size
        if 100 <= r.status <= 599:
            row[1 + r.status // 100] += 1


APP_PHP = """<?php
if (isset($_GET['sleep'])) { usleep((int)$_GET['sleep'] * 1000); }
http_response_code(isset($_GET['code']) ? (int)$_GET['code'] : 200);
echo str_repeat('x', isset($_GET['size']) ? (int)$_GET['size'] : 10);
"""

NGINX_CONF = """\
worker_processes 1;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 128; }}
http {{
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    {log_format}
    server {{
        listen {address}:{port} default_server;
        server_name site-a.test www.site-a.test;
        {access_log_a}
        root {www};
        location = /moved {{ return 301 /a.html; }}
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{socket};
        }}
    }}
    server {{
        listen {address}:{port};
        server_name site-b.test;
        {access_log_b}
        root {www};
        location ~ \\.php$ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{socket};
        }}
    }}
}}
"""

PHP_FPM_CONF = """\
[global]
pid = {prefix}/php-fpm.pid
error_log = {prefix}/php-fpm.log
daemonize = no
[cockpit-stats-test]
{user}
listen = {socket}
listen.mode = 0666
pm = static
pm.max_children = 4
"""


@dataclass
class NginxBed:
    prefix: Path
    address: str
    port: int
    www: Path
    logs: Path
    conf: Path

    @property
    def log_a(self) -> Path:
        return self.logs / "site-a.test.access.log"

    @property
    def log_b(self) -> Path:
        return self.logs / "site-b.test.access.log"

    def get(self, host: str, path: str) -> Response:
        return http_get(self.address, self.port, host, path)

    def nginx(self, *args: str) -> None:
        subprocess.run(
            ["nginx", "-c", str(self.conf), "-p", str(self.prefix), *args],
            check=True,
            capture_output=True,
        )


@pytest.fixture
def nginx_bed(tmp_path: Path) -> Iterator[NginxBed]:
    _need("nginx")
    php_fpm = _need("php-fpm")
    prefix = tmp_path / "web"
    for d in ("tmp", "logs", "www"):
        (prefix / d).mkdir(parents=True)
    www, logs = prefix / "www", prefix / "logs"
    (www / "a.html").write_bytes(b"a" * 1000)
    (www / "b.bin").write_bytes(bytes(range(256)) * 200)
    (www / "app.php").write_text(APP_PHP)
    sock = prefix / "php.sock"
    fpm_conf = prefix / "php-fpm.conf"
    fpm_conf.write_text(
        PHP_FPM_CONF.format(
            prefix=prefix, socket=sock, user="user = root\ngroup = root" if ROOT else ""
        )
    )
    fpm = subprocess.Popen(
        [php_fpm, "-n", "-y", str(fpm_conf), "-F", *(["-R"] if ROOT else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    bed: NginxBed | None = None
    try:
        _wait(sock.exists, "php-fpm's socket")
        for _attempt in range(3):
            address = _address()
            port = _free(address)
            conf = prefix / "nginx.conf"
            conf.write_text(
                NGINX_CONF.format(
                    user="user root;" if ROOT else "",
                    prefix=prefix,
                    address=address,
                    port=port,
                    www=www,
                    socket=sock,
                    log_format=formats.NGINX_LOG_FORMAT,
                    access_log_a=formats.nginx_access_log(str(logs / "site-a.test.access.log")),
                    access_log_b=formats.nginx_access_log(str(logs / "site-b.test.access.log")),
                )
            )
            candidate = NginxBed(prefix, address, port, www, logs, conf)
            test = subprocess.run(
                ["nginx", "-t", "-c", str(conf), "-p", str(prefix)], capture_output=True, text=True
            )
            assert test.returncode == 0, test.stderr
            if (
                subprocess.run(
                    ["nginx", "-c", str(conf), "-p", str(prefix)], capture_output=True
                ).returncode
                == 0
            ):
                bed = candidate
                break
        assert bed is not None, "nginx did not start"
        ready = bed
        _wait(lambda: _listening(ready.address, ready.port), "nginx")
        yield ready
    finally:
        pid_file = prefix / "nginx.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text())
            subprocess.run(
                ["nginx", "-c", str(prefix / "nginx.conf"), "-p", str(prefix), "-s", "quit"],
                capture_output=True,
            )
            with contextlib.suppress(TimeoutError):
                _wait(lambda: not _alive(pid), "nginx to quit", 10)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        fpm.terminate()
        try:
            fpm.wait(10)
        except subprocess.TimeoutExpired:
            fpm.kill()
            fpm.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


APACHE_CONF = """\
ServerRoot /etc/apache2
DefaultRuntimeDir {prefix}/run
PidFile {prefix}/run/apache2.pid
Mutex file:{prefix}/run default
ServerName localhost
{user}
ErrorLog {prefix}/error.log
LogLevel warn
{log_format}
Listen {address}:{port}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule alias_module /usr/lib/apache2/modules/mod_alias.so
StartServers 1
ServerLimit 1
ThreadsPerChild 5
MaxRequestWorkers 5
<VirtualHost {address}:{port}>
    ServerName site-c.test
    DocumentRoot {www}
    CustomLog {log} cockpit
    Redirect 301 /moved /a.html
    <Directory {www}>
        Require all granted
    </Directory>
</VirtualHost>
"""


@dataclass
class ApacheBed:
    address: str
    port: int
    log: Path

    def get(self, path: str, *, agent: str = "cockpit-test", raw: bytes | None = None) -> Response:
        return http_get(self.address, self.port, "site-c.test", path, agent=agent, raw=raw)


@pytest.fixture
def apache_bed(tmp_path: Path) -> Iterator[ApacheBed]:
    _need("apache2")
    prefix = tmp_path / "apache"
    (prefix / "run").mkdir(parents=True)
    # the document root must be readable by Apache's unprivileged children
    www = Path(tempfile.mkdtemp(prefix="cockpit-stats-www-"))
    www.chmod(0o755)
    (www / "a.html").write_bytes(b"c" * 700)
    log = prefix / "site-c.test.access.log"
    address = _address()
    port = _free(address)
    conf = prefix / "apache2.conf"
    conf.write_text(
        APACHE_CONF.format(
            prefix=prefix,
            address=address,
            port=port,
            www=www,
            log=log,
            user="User www-data\nGroup www-data" if ROOT else "",
            log_format=formats.APACHE_LOG_FORMAT,
        )
    )
    test = subprocess.run(["apache2", "-f", str(conf), "-t"], capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    subprocess.run(["apache2", "-f", str(conf), "-k", "start"], check=True, capture_output=True)
    try:
        _wait(lambda: _listening(address, port), "apache2")
        yield ApacheBed(address, port, log)
    finally:
        subprocess.run(["apache2", "-f", str(conf), "-k", "stop"], capture_output=True)
        pid_file = prefix / "run" / "apache2.pid"
        with contextlib.suppress(TimeoutError):
            _wait(lambda: not pid_file.exists(), "apache2 to stop", 10)
        shutil.rmtree(www, ignore_errors=True)

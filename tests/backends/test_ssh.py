"""The SSH transport keeps the transport contract against real sshd on loopback.

Every test talks to the test bed's sshd (tests/testbed): no mocks. Hosts that a test
stops or partitions are restored before it ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh
import pytest
from testbed import BASH_USER, LOGIN_USER, TCSH_USER, Fleet, TestHost

from cockpit.backends import transport_for
from cockpit.backends.hostkeys import KnownHosts
from cockpit.backends.ssh import SshPool, SshTransport
from cockpit.backends.transport import (
    MAX_LINE,
    TRUNCATED_MARK,
    ArgumentError,
    AuthError,
    ConnectError,
    HostKeyError,
    Line,
    Stream,
    TransportError,
)
from cockpit.config import Config, SshDefaults
from cockpit.model import Server

HOSTILE = [
    "plain", "", " ", "  two  spaces  ", "'single'", '"double"', "back\\slash", "$(touch /tmp/pwned)",
    "`id`", "$HOME", "${PATH}", "; rm -rf /", "a|b", "a&&b", "a;b", "*", "?", "[a-z]*", "~", "~root",
    "-n", "--", "-e", "-", "!", "!!", "!$", "line\nbreak", "\n", "trailing\n", "cr\rhere", "tab\there",
    "ünïcødé", "日本語", "emoji 🚀", "\x1b[31mred", "%s%n%d", "x" * 10000, "'\"'\"'", "\\'", "a\\\nb",
    "#comment", "{a,b}", "$((1+1))", "<in", ">out", "2>&1", "\\", "'", '"', "set -- x", "exec",
]  # fmt: skip

#: Prints each argument NUL-terminated, as hex on one line (no line splitting can touch it).
HEX_ARGS = "printf '%s\\0' \"$@\" | od -An -tx1 -v | tr -d ' \\n'"


def server_for(host: TestHost, **ssh_options: str | int | bool) -> Server:
    return Server(
        name=host.name,
        address=host.address,
        port=host.port,
        user=host.user,
        root=str(host.root),
        ssh_options=ssh_options,
    )


def make_pool(host: TestHost, **kwargs: object) -> SshPool:
    defaults = SshDefaults(identity_files=(host.client_key,), **kwargs)  # type: ignore[arg-type]
    return SshPool(defaults, known_hosts=KnownHosts(host.known_hosts, extra=[]), ssh_config=[])


@pytest.fixture
async def pool(testhost: TestHost) -> AsyncIterator[SshPool]:
    p = make_pool(testhost)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def ssh(pool: SshPool, testhost: TestHost) -> SshTransport:
    return pool.transport(server_for(testhost))


def remote_pids(pattern: str) -> list[int]:
    """PIDs of processes whose whole command line is ``pattern`` (the bed is this machine)."""
    done = subprocess.run(["pgrep", "-x", "-f", pattern], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split()]


def wait_until(predicate: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.1)
    return time.monotonic() - start


def own_connections(address: str, port: int) -> int:
    """Established TCP connections from this process to address:port (counted with ss)."""
    done = subprocess.run(
        ["ss", "-Htnp", "state", "established", "dst", f"{address}:{port}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(f"pid={os.getpid()}," in line for line in done.stdout.splitlines())


# -- arguments, output, exit codes ----------------------------------------------------


@pytest.mark.parametrize("user", [LOGIN_USER, BASH_USER, TCSH_USER])
async def test_hostile_arguments_round_trip_byte_exact(testhost: TestHost, user: str) -> None:
    host = testhost.with_user(user)
    pool = make_pool(host)
    try:
        ssh = pool.transport(server_for(host))
        result = await ssh.run_script(HEX_ARGS, HOSTILE, capture=True)
        assert result.ok, result
        raw = bytes.fromhex("".join(result.stdout))
        assert raw.split(b"\0")[:-1] == [a.encode() for a in HOSTILE]
        # and through run(): an argv list, exec'd without any shell parsing it
        result = await ssh.run(["printf", "%s\\036", *HOSTILE[:20]], capture=True)
        assert result.ok
        assert "\n".join(result.stdout).split("\x1e")[:-1] == HOSTILE[:20]
        shell = await ssh.run_script('getent passwd "$(id -un)" | cut -d: -f7', capture=True)
        assert shell.stdout[0].endswith(
            {LOGIN_USER: "/bin/sh", BASH_USER: "bash"}.get(user, "tcsh")
        )
    finally:
        await pool.close()


async def test_very_long_argument_round_trips(ssh: SshTransport) -> None:
    big = "ä€🚀'\"$`\\\n" * 30_000  # ~500 KB of the worst characters
    result = await ssh.run_script(
        'printf %s "$1" | sha256sum; printf %s "$1" | wc -c', [big], capture=True
    )
    assert result.ok
    assert result.stdout[0].split()[0] == hashlib.sha256(big.encode()).hexdigest()
    assert int(result.stdout[1]) == len(big.encode())


async def test_nul_is_refused_before_anything_is_sent(
    ssh: SshTransport, testhost: TestHost
) -> None:
    marker = testhost.root / "ran"
    with pytest.raises(ArgumentError):
        await ssh.run_script('touch "$2"', ["a\x00b", str(marker)])
    with pytest.raises(ArgumentError):
        await ssh.run(["touch", str(marker), "\x00"])
    assert ssh.pool.connections(ssh.server) == []  # not even connected
    assert not marker.exists()


@pytest.mark.parametrize("code", [0, 1, 42])
async def test_exit_codes(ssh: SshTransport, code: int) -> None:
    assert (await ssh.run_script(f"exit {code}")).exit_code == code
    assert (await ssh.run(["sh", "-c", f"exit {code}"])).exit_code == code


async def test_signal_is_a_known_failure(ssh: SshTransport) -> None:
    result = await ssh.run_script("kill -TERM $$")
    assert result.exit_code == 128 + 15
    assert result.signal in (None, "TERM")
    assert not result.unknown


async def test_stdout_and_stderr_are_separate_lines(ssh: SshTransport) -> None:
    seen: list[Line] = []
    result = await ssh.run_script(
        "echo out1; echo err1 >&2; printf 'crlf\\r\\n'; echo err2 >&2; printf no-newline",
        on_line=seen.append,
        capture=True,
    )
    assert result.ok
    assert [line.text for line in seen if line.stream is Stream.STDERR] == ["err1", "err2"]
    assert [line.text for line in seen if line.stream is Stream.STDOUT] == [
        "out1",
        "crlf",
        "no-newline",
    ]
    assert result.stdout == ["out1", "crlf", "no-newline"]
    assert result.stderr == ["err1", "err2"]


async def test_long_line_is_truncated_visibly(ssh: SshTransport) -> None:
    result = await ssh.run_script(
        f"head -c {MAX_LINE * 3} /dev/zero | tr '\\0' a; echo; echo next", capture=True
    )
    assert result.ok
    assert result.stdout[0] == "a" * MAX_LINE + TRUNCATED_MARK
    assert result.stdout[1:] == ["next"]


async def test_many_lines_in_chunks(ssh: SshTransport) -> None:
    count = 0

    def on_line(line: Line) -> None:
        nonlocal count
        count += 1

    result = await ssh.run_script("seq 1 200000", on_line=on_line)
    assert result.ok and count == 200000


async def test_a_failing_line_handler_raises_and_the_pool_survives(ssh: SshTransport) -> None:
    def boom(line: Line) -> None:
        raise RuntimeError("handler failed")

    with pytest.raises(RuntimeError, match="handler failed"):
        await ssh.run_script("echo one; sleep 30", on_line=boom)
    assert (await ssh.run(["true"])).ok


async def test_sudo_runs_as_root(ssh: SshTransport) -> None:
    as_root = await ssh.run(["id", "-u"], sudo=True, capture=True)
    as_user = await ssh.run(["id", "-un"], capture=True)
    assert as_root.stdout == ["0"]
    assert as_user.stdout == [LOGIN_USER]


async def test_sudo_never_prompts(testhost: TestHost) -> None:
    """``sudo -n``: a login user without passwordless sudo fails at once, asking nothing."""
    host = testhost.with_user(BASH_USER)  # no sudo rule for this user
    pool = make_pool(host)
    try:
        started = time.monotonic()
        result = await pool.transport(server_for(host)).run(["id", "-u"], sudo=True, capture=True)
        assert time.monotonic() - started < 10
        assert result.exit_code == 1 and result.stdout == []
        # sudo -n's own refusal, not an attempt to ask (which says a terminal is required)
        assert result.stderr == ["sudo: a password is required"], result.stderr
    finally:
        await pool.close()


async def test_sudo_false_never_wraps_in_sudo(pool: SshPool, testhost: TestHost) -> None:
    """``ssh_options.sudo: false``: a call asking for root runs as the login user."""
    login_uid = str(pwd.getpwnam(LOGIN_USER).pw_uid)
    assert login_uid != "0"
    plain = pool.transport(server_for(testhost, sudo=False))
    assert (await plain.run(["id", "-u"], sudo=True, capture=True)).stdout == [login_uid]
    default = pool.transport(server_for(testhost))
    assert (await default.run(["id", "-u"], sudo=True, capture=True)).stdout == ["0"]
    explicit = pool.transport(server_for(testhost, sudo=True))
    assert (await explicit.run(["id", "-u"], sudo=True, capture=True)).stdout == ["0"]
    # a step that needs root fails with the remote permission error, stated plainly
    private = testhost.root / "root-only-nosudo"
    private.mkdir(mode=0o700)  # owned by root: the login user cannot enter it
    with pytest.raises(TransportError, match="Permission denied") as info:
        await plain.upload(b"x", str(private / "conf"), sudo=True)
    assert not isinstance(info.value, ConnectError)
    result = await plain.run(["touch", str(private / "f")], sudo=True, capture=True)
    assert result.exit_code == 1 and "Permission denied" in " ".join(result.stderr)
    assert not (private / "f").exists()


# -- timeouts and cancellation ---------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "sudo", "shape"),
    [
        (LOGIN_USER, False, "foreground"),
        (LOGIN_USER, True, "foreground"),
        (BASH_USER, False, "foreground"),
        (TCSH_USER, False, "foreground"),
        (LOGIN_USER, False, "orphan"),  # the script is gone, its child holds the channel
        (LOGIN_USER, True, "orphan"),
    ],
)
async def test_timeout_kills_the_remote_process_tree(
    testhost: TestHost, user: str, sudo: bool, shape: str
) -> None:
    seconds = 6000 + (os.getpid() * 7 + hash((user, sudo, shape))) % 3000
    pattern = f"sleep {seconds}"
    script = {
        "foreground": f"sleep {seconds} & sleep {seconds}; wait",
        "orphan": f"sleep {seconds} & exit 0",
    }[shape]
    host = testhost.with_user(user)
    pool = make_pool(host)
    try:
        ssh = pool.transport(server_for(host))
        started = time.monotonic()
        result = await ssh.run_script(script, sudo=sudo, timeout=1.5)
        assert result.unknown and "timed out" in result.reason, result
        assert "killed" in result.reason, result
        assert time.monotonic() - started < 12
        await asyncio.to_thread(wait_until, lambda: not remote_pids(pattern), 10)
        assert (await ssh.run(["true"])).ok
    finally:
        await pool.close()


async def test_a_detached_process_survives_the_timeout(ssh: SshTransport) -> None:
    detached = f"sleep {9000 + os.getpid() % 500}"
    attached = f"sleep {9500 + os.getpid() % 500}"
    script = f"setsid {detached} </dev/null >/dev/null 2>&1 & {attached}"
    try:
        result = await ssh.run_script(script, timeout=1.5)
        assert result.unknown
        await asyncio.to_thread(wait_until, lambda: not remote_pids(attached), 10)
        assert remote_pids(detached)  # setsid'd on purpose: a detached step outlives us
    finally:
        for pid in remote_pids(detached):
            os.kill(pid, 9)


async def test_cancellation_kills_the_remote_process(ssh: SshTransport) -> None:
    pattern = f"sleep {7000 + os.getpid() % 1000}"
    task = asyncio.create_task(ssh.run_script(pattern))
    await asyncio.to_thread(wait_until, lambda: bool(remote_pids(pattern)), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(wait_until, lambda: not remote_pids(pattern), 10)
    assert (await ssh.run(["true"])).ok  # the connection is still good


# -- files ----------------------------------------------------------------------------


async def test_upload_and_download_are_binary_safe_and_atomic(
    ssh: SshTransport, testhost: TestHost
) -> None:
    data = bytes(range(256)) * 64 + os.urandom(1_000_003) + b"\r\n\0no newline"
    path = testhost.root / "we ird\nname ü $(x) '"
    await ssh.upload(data, str(path), mode=0o640)
    assert path.read_bytes() == data
    assert path.stat().st_mode & 0o7777 == 0o640
    assert await ssh.download(str(path)) == data
    # replace: the new content, and no temp file left beside it
    await ssh.upload(b"", str(path), mode=0o600)
    assert path.read_bytes() == b""
    assert sorted(p.name for p in testhost.root.iterdir()) == [path.name]


async def test_interrupted_upload_leaves_the_old_file(
    ssh: SshTransport, testhost: TestHost
) -> None:
    """Cut mid-transfer, an upload changes nothing: the old file stays, no temp is left."""
    path = testhost.root / "config"
    await ssh.upload(b"old content\n", str(path))
    temps = lambda: [p for p in testhost.root.iterdir() if p.name != "config"]  # noqa: E731
    task = asyncio.create_task(ssh.upload(os.urandom(128 * 1024 * 1024), str(path)))
    deadline = time.monotonic() + 20
    while not any(p.stat().st_size for p in temps()):
        assert not task.done() and time.monotonic() < deadline, "the upload never started"
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.to_thread(wait_until, lambda: not temps(), 10)
    assert path.read_bytes() == b"old content\n"
    assert (await ssh.run(["true"])).ok  # the connection is still fine


async def test_upload_with_sudo_into_a_root_only_directory(
    ssh: SshTransport, testhost: TestHost
) -> None:
    private = testhost.root / "root-only"
    private.mkdir(mode=0o700)  # owned by root: the login user cannot enter it
    target = private / "conf"
    with pytest.raises(TransportError) as info:
        await ssh.upload(b"x", str(target))
    assert not isinstance(info.value, ConnectError)
    await ssh.upload(b"secret\n\0", str(target), mode=0o600, sudo=True)
    assert target.read_bytes() == b"secret\n\0"
    assert target.stat().st_uid == 0 and target.stat().st_mode & 0o777 == 0o600
    assert await ssh.download(str(target), sudo=True) == b"secret\n\0"
    with pytest.raises(TransportError):
        await ssh.download(str(target))


async def test_large_upload_streams(ssh: SshTransport, testhost: TestHost) -> None:
    data = os.urandom(1 << 20) * 100  # 100 MiB
    path = testhost.root / "large.bin"
    await ssh.upload(data, str(path))
    result = await ssh.run(["sha256sum", str(path)], capture=True)
    assert result.stdout[0].split()[0] == hashlib.sha256(data).hexdigest()


async def test_bad_paths_and_missing_files(ssh: SshTransport, testhost: TestHost) -> None:
    for bad in ("relative", "/ends/with/", "/nul\x00"):
        with pytest.raises(ArgumentError):
            await ssh.upload(b"x", bad)
    with pytest.raises(TransportError) as info:
        await ssh.download(str(testhost.root / "missing"))
    assert not info.value.transient


# -- the pool -------------------------------------------------------------------------


async def test_one_connection_carries_many_channels(ssh: SshTransport, testhost: TestHost) -> None:
    for _ in range(10):
        assert (await ssh.run(["true"])).ok
    first = ssh.pool.connections(ssh.server)
    results = await asyncio.gather(*(ssh.run(["sleep", "0.3"]) for _ in range(8)))
    assert all(r.ok for r in results)
    assert ssh.pool.connections(ssh.server) == first and len(first) == 1
    assert own_connections(testhost.address, testhost.port) == 1


async def test_more_channels_than_a_connection_allows(
    ssh: SshTransport, testhost: TestHost
) -> None:
    # default cap: 10 channels per connection, so 25 at once need three connections
    results = await asyncio.gather(*(ssh.run(["sleep", "1"]) for _ in range(25)))
    assert all(r.ok for r in results)
    assert len(ssh.pool.connections(ssh.server)) == 3


async def test_more_channels_than_sshd_max_sessions(testhost: TestHost) -> None:
    # the bed's sshd allows MaxSessions 64; a pool that believes 100 learns the real cap
    pool = SshPool(
        SshDefaults(identity_files=(testhost.client_key,)),
        known_hosts=KnownHosts(testhost.known_hosts, extra=[]),
        ssh_config=[],
        channels_per_connection=100,
    )
    try:
        ssh = pool.transport(server_for(testhost))
        results = await asyncio.gather(*(ssh.run(["sleep", "2"]) for _ in range(90)))
        assert [r.exit_code for r in results] == [0] * 90
        assert len(pool.connections(ssh.server)) == 2
    finally:
        await pool.close()


async def test_changed_server_settings_get_a_new_connection(
    ssh: SshTransport, testhost: TestHost
) -> None:
    assert (await ssh.run(["true"])).ok
    [old] = ssh.pool.connections(ssh.server)
    changed = ssh.pool.transport(server_for(testhost, keepalive_interval=5))
    assert (await changed.run(["true"])).ok
    [new] = ssh.pool.connections(changed.server)
    assert new is not old
    await asyncio.wait_for(old.wait_closed(), 5)


async def test_ssh_config_host_alias(fleet: Fleet, testhost: TestHost) -> None:
    # the server's own address is wrong; the ~/.ssh/config Host entry has HostName, Port,
    # User and IdentityFile
    pool = SshPool(
        SshDefaults(),
        known_hosts=KnownHosts(testhost.known_hosts, extra=[]),
        ssh_config=[fleet.ssh_config()],
    )
    try:
        server = Server(name="aliased", address="192.0.2.1", port=22, user="nobody",
                        ssh_options={"config_host": testhost.name})  # fmt: skip
        result = await pool.transport(server).run(["id", "-un"], capture=True)
        assert result.stdout == [LOGIN_USER]
    finally:
        await pool.close()


def _jump_host(fleet: Fleet, target: TestHost) -> TestHost:
    """Another running test host to jump through."""
    return next(h for h in fleet.take(3) if h.name != target.name)


async def test_proxy_jump_option_goes_through_the_jump_host(
    fleet: Fleet, testhost: TestHost, tmp_path: Path
) -> None:
    jump = _jump_host(fleet, testhost)
    server = server_for(testhost, proxy_jump=f"{LOGIN_USER}@{jump.address}:{jump.port}")
    pool = make_pool(testhost)
    try:
        before_target = own_connections(testhost.address, testhost.port)
        result = await pool.transport(server).run(["id", "-un"], capture=True)
        assert result.ok and result.stdout == [LOGIN_USER]
        # this process holds a TCP connection to the jump host, none more to the target
        assert own_connections(jump.address, jump.port) == 1
        assert own_connections(testhost.address, testhost.port) == before_target
        fetched = await pool.fetch_host_key(server)  # through the jump too
        assert fetched.port == testhost.port
        assert (
            KnownHosts(testhost.known_hosts, extra=[])
            .lookup(testhost.address, testhost.port)
            .verdict(fetched.key)
            is None
        )
    finally:
        await pool.close()
    # the jump host's key is checked against the same files: unknown there, nothing runs
    only_target = tmp_path / "known_hosts"
    only_target.write_text(testhost.known_hosts_line + "\n")
    strict = SshPool(
        SshDefaults(identity_files=(testhost.client_key,)),
        known_hosts=KnownHosts(only_target, extra=[]),
        ssh_config=[],
    )
    try:
        with pytest.raises(HostKeyError) as info:
            await strict.transport(server).run(["true"])
        assert f"[{jump.address}]:{jump.port}" in str(info.value)
        assert "unknown host key" in str(info.value)
    finally:
        await strict.close()


async def test_ssh_config_proxy_jump(fleet: Fleet, testhost: TestHost, tmp_path: Path) -> None:
    """Host, HostName, Port, User, IdentityFile and ProxyJump from ~/.ssh/config, the jump
    host's own entry included; no identity file in Cockpit's config."""
    jump = _jump_host(fleet, testhost)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host target-via-jump\n  HostName {testhost.address}\n  Port {testhost.port}\n"
        f"  User {LOGIN_USER}\n  IdentityFile {testhost.client_key}\n  ProxyJump jumpbox\n"
        f"Host jumpbox\n  HostName {jump.address}\n  Port {jump.port}\n"
        f"  User {LOGIN_USER}\n  IdentityFile {testhost.client_key}\n"
    )
    pool = SshPool(
        SshDefaults(), known_hosts=KnownHosts(testhost.known_hosts, extra=[]), ssh_config=[config]
    )
    try:
        server = Server(name="behind", address="127.0.0.254", port=1, user="nobody",
                        ssh_options={"config_host": "target-via-jump"})  # fmt: skip
        before_target = own_connections(testhost.address, testhost.port)
        result = await pool.transport(server).run_script(
            'id -un; echo "$SSH_CONNECTION"', capture=True
        )
        assert result.ok, result
        assert result.stdout[0] == LOGIN_USER
        assert result.stdout[1].split()[2:] == [testhost.address, str(testhost.port)]
        assert own_connections(jump.address, jump.port) == 1
        assert own_connections(testhost.address, testhost.port) == before_target
    finally:
        await pool.close()
    assert own_connections(jump.address, jump.port) == 0  # the hop closed with the pool


@pytest.fixture
def agent(tmp_path: Path, testhost: TestHost, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ssh-agent holding the test bed's client key; HOME without any key."""
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        wait_until(sock.exists, 10)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(testhost.client_key)], env=env, check=True,
                       capture_output=True)  # fmt: skip
        home = tmp_path / "home"
        home.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock
    finally:
        proc.terminate()
        proc.wait(10)


async def test_ssh_agent_authenticates_and_is_never_forwarded(
    agent: Path, testhost: TestHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = SshPool(
        SshDefaults(), known_hosts=KnownHosts(testhost.known_hosts, extra=[]), ssh_config=[]
    )
    script = 'echo "sock=${SSH_AUTH_SOCK-}"'
    try:
        result = await pool.transport(server_for(testhost)).run_script(script, capture=True)
        assert result.ok, result  # the agent's key logged in: no identity file was given
        assert result.stdout == ["sock="]  # agent forwarding is off
    finally:
        await pool.close()
    # control: the same sshd forwards an agent when a client asks, so the check can fail
    async with asyncssh.connect(
        **{**testhost.asyncssh_options(), "agent_path": str(agent)}, agent_forwarding=True
    ) as conn:
        forwarded = await conn.run(script, check=True)
        assert forwarded.stdout != "sock=\n"
    # and without the agent, nothing authenticates (it really was the agent)
    monkeypatch.delenv("SSH_AUTH_SOCK")
    pool = SshPool(
        SshDefaults(), known_hosts=KnownHosts(testhost.known_hosts, extra=[]), ssh_config=[]
    )
    try:
        with pytest.raises(AuthError):
            await pool.transport(server_for(testhost)).run(["true"])
    finally:
        await pool.close()


async def test_transport_for_picks_the_transport(testhost: TestHost) -> None:
    config = Config()
    ssh = transport_for(server_for(testhost), config)
    assert isinstance(ssh, SshTransport)
    await ssh.close()
    local = transport_for(Server(name="localhost", address="127.0.0.1", transport="local"), config)
    assert type(local).__name__ == "LocalTransport"
    pool = make_pool(testhost)
    assert transport_for(server_for(testhost), config, pool=pool).pool is pool  # type: ignore[attr-defined]
    await pool.close()


# -- failures ---------------------------------------------------------------------------


async def test_connection_refused_is_transient(testhost: TestHost) -> None:
    pool = make_pool(testhost)
    try:
        down = Server(name="down", address="127.0.0.254", port=testhost.port, user=LOGIN_USER)
        with pytest.raises(ConnectError) as info:
            await pool.transport(down).run(["true"])
        assert info.value.transient
    finally:
        await pool.close()


async def test_connect_timeout(fleet: Fleet) -> None:
    host = fleet.take(6)[-1]
    pool = make_pool(host, connect_timeout=1.0)
    try:
        with fleet.partitioned(host):
            started = time.monotonic()
            with pytest.raises(ConnectError) as info:
                await pool.transport(server_for(host)).run(["true"])
            assert time.monotonic() - started < 5
            assert info.value.transient
    finally:
        await pool.close()


async def test_auth_failure(
    testhost: TestHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    pool = SshPool(
        SshDefaults(identity_files=(stranger,)),
        known_hosts=KnownHosts(testhost.known_hosts, extra=[]),
        ssh_config=[],
    )
    try:
        with pytest.raises(AuthError) as info:
            await pool.transport(server_for(testhost)).run(["true"])
        assert not info.value.transient
    finally:
        await pool.close()


async def test_unknown_host_key_runs_nothing(testhost: TestHost, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    marker = testhost.root / "ran"
    pool = SshPool(
        SshDefaults(identity_files=(testhost.client_key,)),
        known_hosts=KnownHosts(empty, extra=[]),
        ssh_config=[],
    )
    try:
        with pytest.raises(HostKeyError) as info:
            await pool.transport(server_for(testhost)).run(["touch", str(marker)])
    finally:
        await pool.close()
    assert not info.value.transient
    assert info.value.presented == testhost.fingerprint and info.value.known is None
    assert "unknown host key" in str(info.value)
    assert not marker.exists()
    assert empty.read_text() == ""


async def test_changed_host_key_fails_hard_and_rewrites_nothing(
    fleet: Fleet, tmp_path: Path
) -> None:
    host, other = fleet.take(3)[1:]
    known = tmp_path / "known_hosts"
    known.write_text(f"[{host.address}]:{host.port} {other.host_public_key}\n")
    user_file = tmp_path / "user_known_hosts"
    user_file.write_text(f"# the user's own file\n{other.known_hosts_line}\n")
    before = known.read_bytes(), user_file.read_bytes()
    marker = host.root / "ran-changed"
    pool = SshPool(
        SshDefaults(identity_files=(host.client_key,)),
        known_hosts=KnownHosts(known, extra=[user_file]),
        ssh_config=[],
    )
    try:
        with pytest.raises(HostKeyError) as info:
            await pool.transport(server_for(host)).run(["touch", str(marker)])
    finally:
        await pool.close()
    message = str(info.value)
    assert "CHANGED" in message
    assert host.fingerprint in message and other.fingerprint in message
    assert info.value.presented == host.fingerprint and info.value.known == other.fingerprint
    assert not info.value.transient
    assert (known.read_bytes(), user_file.read_bytes()) == before
    assert not marker.exists()


async def test_key_in_the_users_known_hosts_is_trusted(testhost: TestHost, tmp_path: Path) -> None:
    user_file = tmp_path / "user_known_hosts"
    user_file.write_text(testhost.known_hosts_line + "\n")
    pool = SshPool(
        SshDefaults(identity_files=(testhost.client_key,)),
        known_hosts=KnownHosts(tmp_path / "own", extra=[user_file]),
        ssh_config=[],
    )
    try:
        assert (await pool.transport(server_for(testhost)).run(["true"])).ok
    finally:
        await pool.close()
    assert not (tmp_path / "own").exists()


# -- drops, partitions, reconnects -----------------------------------------------------


async def test_dropped_connection_is_unknown_never_success(fleet: Fleet) -> None:
    host = fleet.take(4)[-1]
    pool = make_pool(host)
    try:
        ssh = pool.transport(server_for(host))
        task = asyncio.create_task(ssh.run_script("echo started; sleep 20; exit 0"))
        await asyncio.sleep(1.0)
        await asyncio.to_thread(fleet.stop, host)  # cuts the established connection too
        result = await asyncio.wait_for(task, 10)
        assert result.unknown and not result.ok
        assert "unknown" in result.reason
        with pytest.raises(ConnectError):
            await ssh.run(["true"])
        await asyncio.to_thread(fleet.start, host)
        assert (await ssh.run(["true"])).ok  # reconnected
    finally:
        fleet.start(host)
        await pool.close()


async def test_partition_is_detected_by_keepalive(fleet: Fleet) -> None:
    host = fleet.take(5)[-1]
    interval, count, margin = 1.0, 2, 3.0
    pool = make_pool(host, keepalive_interval=interval, keepalive_count=count, connect_timeout=2.0)
    try:
        ssh = pool.transport(server_for(host))
        assert (await ssh.run(["true"])).ok
        task = asyncio.create_task(ssh.run_script("sleep 30; exit 0"))
        await asyncio.sleep(0.5)
        try:
            await asyncio.to_thread(fleet.partition, host)
            started = time.monotonic()
            result = await asyncio.wait_for(task, interval * count + margin + 5)
            elapsed = time.monotonic() - started
        finally:
            await asyncio.to_thread(fleet.heal, host)
        assert result.unknown, result
        assert elapsed <= interval * (count + 1) + margin, elapsed
        assert (await ssh.run(["true"])).ok  # the pool reconnects after the partition
    finally:
        fleet.heal(host)
        await pool.close()


# -- the line splitter the SSH sessions use -------------------------------------------


def _reference_lines(data: bytes, max_line: int) -> list[Line]:
    """The contract: split at \\n, drop one trailing \\r, cut at max_line with the marker."""
    parts = data.split(b"\n")
    last = parts.pop()
    out = []
    for raw in parts + ([last] if last else []):
        cut = len(raw) > max_line
        piece = raw[:max_line] if cut else raw
        piece = piece[:-1] if piece.endswith(b"\r") else piece
        text = piece.decode("utf-8", errors="replace") + (TRUNCATED_MARK if cut else "")
        out.append(Line(Stream.STDOUT, text, cut))
    return out


def test_line_splitter_keeps_the_contract() -> None:
    import random

    from cockpit.backends.transport import LineSplitter

    rnd = random.Random(4)
    alphabet = [
        b"a",
        b"\n",
        b"\r",
        "ä".encode(),
        "🚀".encode(),
        b"\xff",
        b"\xe2\x82",
        b"xyz" * 5,
        b"\r\n",
    ]
    for case in range(4000):
        # small limits take the exact per-line path, larger ones the whole-chunk fast path
        data = b"".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 400)))
        max_line = rnd.randint(1, 20) if case % 2 else rnd.randint(20, 400)
        got: list[Line] = []
        batches: list[tuple[Stream, list[str]]] = []

        def batch(stream: Stream, texts: list[str], batches: list = batches) -> None:
            batches.append((stream, list(texts)))

        splitter = LineSplitter(Stream.STDOUT, got.append, max_line=max_line, on_lines=batch)
        i = 0
        while i < len(data):
            n = rnd.randint(1, 60)
            splitter.feed(data[i : i + n])
            i += n
        splitter.close()
        expected = _reference_lines(data, max_line)
        assert got == expected, (data, max_line)
        assert [t for _, texts in batches for t in texts] == [line.text for line in expected]
        assert all(stream is Stream.STDOUT and texts for stream, texts in batches)


async def test_batched_lines_match_single_lines_and_capture(ssh: SshTransport) -> None:
    """``on_lines`` gets the same lines as ``on_line`` and ``capture``, per stream, in order."""
    script = (
        'i=0; while [ $i -lt 20000 ]; do echo "out $i ünï"; i=$((i+1)); done; '
        "printf 'crlf\\r\\nno newline'; echo err >&2"
    )
    singles: list[Line] = []
    batched: dict[Stream, list[str]] = {Stream.STDOUT: [], Stream.STDERR: []}
    result = await ssh.run_script(
        script,
        on_line=singles.append,
        on_lines=lambda stream, texts: batched[stream].extend(texts),
        capture=True,
    )
    assert result.ok
    expected = [f"out {i} ünï" for i in range(20000)] + ["crlf", "no newline"]
    assert result.stdout == expected
    assert batched[Stream.STDOUT] == expected
    assert [line.text for line in singles if line.stream is Stream.STDOUT] == expected
    assert result.stderr == batched[Stream.STDERR] == ["err"]

"""Smoke tests of the test bed itself: real sshd, host-key checks, sudo, shells, databases."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import asyncssh
import pytest
from testbed import (
    BASH_USER,
    LOGIN_USER,
    TCSH_USER,
    Fleet,
    MariaDBAdmin,
    MariaDBFactory,
    PostgresAdmin,
    PostgresFactory,
    TestHost,
    temporary_known_hosts,
)


def ssh(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30, check=False
    )


def ssh_ok(argv: list[str]) -> str:
    done = ssh(argv)
    assert done.returncode == 0, f"{argv}: {done.returncode} {done.stderr}"
    return done.stdout


def other_key() -> str:
    """A fresh ed25519 public key that no test host has."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    return " ".join(key.export_public_key("openssh").decode().split()[:2])


def test_hosts_are_on_loopback_with_their_own_keys(fleet: Fleet) -> None:
    hosts = fleet.take(3)
    assert [h.name for h in hosts] == ["tb2", "tb3", "tb4"]
    assert [h.address for h in hosts] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert len({h.host_public_key for h in hosts}) == 3
    known = fleet.known_hosts.read_text().splitlines()
    for h in hosts:
        assert h.address.startswith("127.")
        assert h.fingerprint.startswith("SHA256:")
        assert f"[{h.address}]:{h.port} {h.host_public_key}" in known
        assert h.root.is_dir()
    # sshd listens on its own address only, not on 0.0.0.0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.254", fleet.port), timeout=2).close()


def test_openssh_command_on_each_host(fleet: Fleet) -> None:
    for host in fleet.take(3):
        out = ssh_ok(["ssh", "-F", str(fleet.ssh_config()), host.name, "--",
                      "uname -n; echo $SSH_CONNECTION; id -un"])  # fmt: skip
        _, connection, user = out.splitlines()
        assert connection.split()[2:] == [host.address, str(host.port)]
        assert user == LOGIN_USER
        # the same without the config file
        assert ssh_ok(host.ssh_argv("echo", "ok")) == "ok\n"


async def test_asyncssh_command_on_each_host(fleet: Fleet) -> None:
    for host in fleet.take(3):
        async with asyncssh.connect(**host.asyncssh_options()) as conn:
            result = await conn.run("echo $SSH_CONNECTION; id -un", check=True)
            assert isinstance(result.stdout, str)
            connection, user = result.stdout.splitlines()
            assert connection.split()[2:] == [host.address, str(host.port)]
            assert user == LOGIN_USER
            server_key = conn.get_server_host_key()
            assert server_key is not None
            assert server_key.get_fingerprint("sha256") == host.fingerprint


def test_sudo_and_root_directory(testhost: TestHost) -> None:
    root = testhost.root
    assert list(root.iterdir()) == []
    out = ssh_ok(testhost.ssh_argv(
        f"sudo -n id -u && touch {root}/by-user && sudo -n touch {root}/by-root && ls {root}"
    ))  # fmt: skip
    assert out.split() == ["0", "by-root", "by-user"]
    assert (root / "by-user").owner() == LOGIN_USER
    assert (root / "by-root").owner() == "root"


def test_root_login_by_key(testhost: TestHost) -> None:
    assert ssh_ok(testhost.with_user("root").ssh_argv("id", "-u")).strip() == "0"


@pytest.mark.parametrize(
    ("user", "shell"), [(LOGIN_USER, "sh"), (BASH_USER, "bash"), (TCSH_USER, "tcsh")]
)
def test_login_shells(testhost: TestHost, user: str, shell: str) -> None:
    # "; true" keeps the shell from exec'ing ps in its own place
    out = ssh_ok(testhost.with_user(user).ssh_argv("echo $0; ps -o comm= -p $$; true"))
    assert out.split() == [shell, shell]


def test_no_sudo_for_the_other_users(testhost: TestHost) -> None:
    done = ssh(testhost.with_user(BASH_USER).ssh_argv("sudo", "-n", "true"))
    assert done.returncode != 0


async def test_host_key_mismatch_is_refused_by_asyncssh(testhost: TestHost, tmp_path: Path) -> None:
    wrong = temporary_known_hosts([f"[{testhost.address}]:{testhost.port} {other_key()}"], tmp_path)
    options = testhost.asyncssh_options() | {"known_hosts": str(wrong)}
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect(**options):
            pass
    # an unknown host is refused too
    empty = temporary_known_hosts([], tmp_path)
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        async with asyncssh.connect(**(options | {"known_hosts": str(empty)})):
            pass


def test_host_key_mismatch_is_refused_by_openssh(testhost: TestHost, tmp_path: Path) -> None:
    wrong = temporary_known_hosts([f"[{testhost.address}]:{testhost.port} {other_key()}"], tmp_path)
    argv = [a.replace(str(testhost.known_hosts), str(wrong)) for a in testhost.ssh_argv("true")]
    done = ssh(argv)
    assert done.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in done.stderr
    assert "Host key verification failed" in done.stderr


async def test_stop_and_start_one_host(fleet: Fleet) -> None:
    host = fleet.take(3)[2]
    async with asyncssh.connect(**host.asyncssh_options()) as conn:
        await conn.run("true", check=True)
        fleet.stop(host)
        assert not fleet.is_running(host)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host.address, host.port), timeout=2).close()
        with pytest.raises(OSError):
            await asyncssh.connect(**host.asyncssh_options())
        # the established connection was cut as well
        with pytest.raises((asyncssh.Error, OSError)):
            await conn.run("true", check=True)
    # the others are unaffected
    assert ssh_ok(fleet.take(2)[1].ssh_argv("true")) == ""
    fleet.start(host)
    assert fleet.is_running(host)
    assert ssh_ok(host.ssh_argv("echo", "back")) == "back\n"  # same host key


def test_stopped_host_comes_back_on_take(fleet: Fleet) -> None:
    host = fleet.take(2)[1]
    with fleet.stopped(host):
        assert not fleet.is_running(host)
    assert fleet.is_running(host)
    fleet.stop(host)
    assert fleet.take(2)[1] == host
    assert fleet.is_running(host)


def test_mariadb_database_lifecycle(mariadb_admin: MariaDBAdmin, tmp_path: Path) -> None:
    factory = MariaDBFactory(mariadb_admin, tmp_path)
    db = factory()
    assert mariadb_admin.database_exists(db.name)
    assert mariadb_admin.user_exists(db.user)
    assert db.password not in " ".join(db.argv())
    assert db.defaults_file.stat().st_mode & 0o777 == 0o600
    out = db.execute("CREATE TABLE t (x INT); INSERT INTO t VALUES (42); SELECT x FROM t;")
    assert out.strip() == "42"
    factory.drop_all()
    assert not mariadb_admin.database_exists(db.name)
    assert not mariadb_admin.user_exists(db.user)
    assert not db.defaults_file.exists()


def test_mariadb_db_fixture(mariadb_db: MariaDBFactory, mariadb_admin: MariaDBAdmin) -> None:
    a, b = mariadb_db(), mariadb_db("other")
    assert a.name != b.name
    assert b.name.startswith("other_")
    assert mariadb_admin.database_exists(a.name)
    database, current_user = a.execute("SELECT DATABASE(), CURRENT_USER();").split()
    # without skip-name-resolve (Debian's default) 127.0.0.1 matches the user's @localhost entry
    assert (database, current_user) in {
        (a.name, f"{a.user}@127.0.0.1"),
        (a.name, f"{a.user}@localhost"),
    }


def test_postgres_database_lifecycle(postgres_admin: PostgresAdmin, tmp_path: Path) -> None:
    factory = PostgresFactory(postgres_admin, tmp_path)
    db = factory()
    assert postgres_admin.database_exists(db.name)
    assert postgres_admin.role_exists(db.user)
    assert db.password not in " ".join(db.argv())
    assert db.password not in db.dsn
    assert db.passfile.stat().st_mode & 0o777 == 0o600
    out = db.execute("CREATE TABLE t (x int); INSERT INTO t VALUES (42); SELECT x FROM t;")
    assert out.strip() == "42"
    factory.drop_all()
    assert not postgres_admin.database_exists(db.name)
    assert not postgres_admin.role_exists(db.user)
    assert not db.passfile.exists()


def test_postgres_db_fixture(postgres_db: PostgresFactory, postgres_admin: PostgresAdmin) -> None:
    db = postgres_db()
    assert postgres_admin.database_exists(db.name)
    out = db.execute("SELECT current_database(), current_user;")
    assert out.strip() == f"{db.name}|{db.user}"


async def test_partition_one_host(fleet: Fleet) -> None:
    host = fleet.take(3)[1]
    async with asyncssh.connect(**host.asyncssh_options()) as conn:
        with fleet.partitioned(host):
            assert fleet.is_partitioned(host)
            with pytest.raises(TimeoutError):
                await asyncssh.connect(**host.asyncssh_options(), connect_timeout=0.5)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(conn.run("true"), 0.5)
            # the others are reachable
            assert ssh_ok(fleet.take(1)[0].ssh_argv("true")) == ""
        assert not fleet.is_partitioned(host)
        await conn.run("true", check=True)  # the stalled connection recovers
    assert ssh_ok(host.ssh_argv("echo", "ok")) == "ok\n"

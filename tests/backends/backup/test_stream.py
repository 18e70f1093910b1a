"""Streaming between two test hosts (tb2 and tb3) through this process."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest
from svckit import make_pool, server_for
from testbed import Fleet, TestHost

from cockpit.backends.backup.stream import pipe, stdin_line
from cockpit.backends.local import LocalTransport
from cockpit.backends.ssh import SshPool
from cockpit.model import Server

_SEND = 'cat -- "$1"'
_TAKE = 'umask 077; cat > "$1.tmp" && mv -- "$1.tmp" "$1"; printf "got %s\\n" "$2"'


@pytest.fixture
async def two(fleet: Fleet) -> AsyncIterator[tuple[SshPool, TestHost, TestHost]]:
    a, b = (fleet.fresh_root(h) for h in fleet.take(2))
    pool = make_pool(a)
    try:
        yield pool, a, b
    finally:
        await pool.close()


async def test_bytes_cross_from_one_host_to_the_other(
    two: tuple[SshPool, TestHost, TestHost],
) -> None:
    pool, a, b = two
    source = f"{a.root}/blob"
    data = os.urandom(9 * 1024 * 1024 + 17)
    with open(source, "wb") as f:
        f.write(data)
    target = f"{b.root}/copy"
    hostile = 'it\'s a "$(touch /tmp/pwned)" `id` \n; rm -rf / ünï'
    lines: list[str] = []
    result = await pipe(
        pool.transport(server_for(a)), _SEND, [source],
        pool.transport(server_for(b)), _TAKE, [target, hostile],
        on_line=lambda line: lines.append(line.text),
    )  # fmt: skip
    assert result.ok, result
    assert result.bytes == len(data)
    with open(target, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    assert os.stat(target).st_uid == 0  # ran as root (through sudo)
    assert lines == [f"got {hostile.splitlines()[0]}", hostile.splitlines()[1]]
    assert not os.path.exists("/tmp/pwned")


async def test_a_failing_end_is_reported(two: tuple[SshPool, TestHost, TestHost]) -> None:
    pool, a, b = two
    ta, tb = pool.transport(server_for(a)), pool.transport(server_for(b))
    big = f"{a.root}/big"
    with open(big, "wb") as f:
        f.write(os.urandom(8 * 1024 * 1024))
    # The destination gives up at once: the source is stopped, both outcomes say so.
    result = await pipe(ta, _SEND, [big], tb, "echo refusing >&2; exit 3", [])
    assert not result.ok
    assert result.dest.exit_code == 3 and "refusing" in result.lines
    assert result.source.exit_code != 0
    # The source fails: the destination sees the end of its input, the source's code counts.
    result = await pipe(ta, 'cat -- "$1"', [f"{a.root}/missing"], tb, _TAKE, [f"{b.root}/x", ""])
    assert result.source.exit_code == 1 and not result.ok
    assert any("No such file" in line for line in result.lines)


async def test_local_transport_ends(tmp_path: object) -> None:
    here = Server(name="here", address="127.0.0.1", transport="local", root="/tmp")
    source = f"{tmp_path}/in"
    with open(source, "wb") as f:
        f.write(b"x" * 1_000_000)
    local = LocalTransport(here)
    result = await pipe(local, _SEND, [source], local, _TAKE, [f"{tmp_path}/out", "ok"])
    assert result.ok and result.bytes == 1_000_000
    with open(f"{tmp_path}/out", "rb") as f:
        assert f.read() == b"x" * 1_000_000


def test_the_line_carries_only_safe_characters() -> None:
    line = stdin_line('echo "$1"\n', ["'; rm -rf / #\n\x7f"])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    inner = line.split(b"'")[3]
    assert line.split(b"'")[1] == b"%b"
    assert set(inner) <= set(
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _./,:=+@-\\"
    )

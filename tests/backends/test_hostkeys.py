"""Host keys: fingerprints as ssh-keygen prints them, OpenSSH's lookup rules, recording."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import asyncssh
import pytest
from testbed import TestHost

from cockpit.backends.hostkeys import KnownHosts, describe, fingerprint, host_pattern, import_key
from cockpit.backends.ssh import SshPool
from cockpit.backends.transport import HostKeyError
from cockpit.config import SshDefaults
from cockpit.model import Server


def keygen(path: Path, kind: str, bits: int | None = None, comment: str = "a comment") -> Path:
    argv = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if bits:
        argv += ["-b", str(bits)]
    subprocess.run(argv, check=True, capture_output=True)
    return path.with_name(path.name + ".pub")


def ssh_keygen_l(path: Path) -> list[str]:
    return subprocess.run(
        ["ssh-keygen", "-lf", str(path)], check=True, capture_output=True, text=True
    ).stdout.splitlines()


@pytest.mark.parametrize(
    ("kind", "bits"),
    [
        ("ed25519", None),
        ("rsa", 2048),
        ("rsa", 3072),
        ("ecdsa", 256),
        ("ecdsa", 384),
        ("ecdsa", 521),
    ],
)
def test_fingerprint_line_is_byte_identical_to_ssh_keygen(
    tmp_path: Path, kind: str, bits: int | None
) -> None:
    pub = keygen(tmp_path / "key", kind, bits, comment="admin@example")
    key = import_key(pub.read_text())
    assert describe(key, "admin@example") == ssh_keygen_l(pub)[0]
    assert fingerprint(key) == key.get_fingerprint("sha256")


def test_fingerprint_of_a_test_host(testhost: TestHost) -> None:
    key = import_key(testhost.host_public_key)
    assert fingerprint(key) == testhost.fingerprint
    pub = testhost.host_key_path.with_name(testhost.host_key_path.name + ".pub")
    assert fingerprint(key) == ssh_keygen_l(pub)[0].split()[1]


def test_host_pattern() -> None:
    assert host_pattern("Example.ORG", 22) == "example.org"
    assert host_pattern("127.0.0.2", 2200) == "[127.0.0.2]:2200"


def new_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519").convert_to_public()


def line(names: str, key: asyncssh.SSHKey, marker: str = "") -> str:
    text = key.export_public_key("openssh").decode().split()
    return f"{marker + ' ' if marker else ''}{names} {text[0]} {text[1]}"


def test_lookup_follows_openssh_rules(tmp_path: Path) -> None:
    a, b, c, d, revoked = (new_key() for _ in range(5))
    own = tmp_path / "known_hosts"
    own.write_text(
        "\n".join(
            [
                "# comment",
                "garbage line that is not a key",
                line("plain.example,10.0.0.1", a),
                line("[ported.example]:2222", b),
                line("*.wild.example,!bad.wild.example", c),
                line("bare.example", d),
                line("plain.example", revoked, "@revoked"),
            ]
        )
        + "\n"
    )
    known = KnownHosts(own, extra=[])
    assert known.lookup("plain.example", 22).trusted == [a]
    assert known.lookup("PLAIN.example", 22).trusted == [a]
    assert known.lookup("other", 22, ["10.0.0.1"]).trusted == [a]
    assert known.lookup("ported.example", 2222).trusted == [b]
    assert known.lookup("ported.example", 22).trusted == []
    assert known.lookup("x.wild.example", 22).trusted == [c]
    assert known.lookup("bad.wild.example", 22).trusted == []
    # no fallback from [host]:port to the bare host (asyncssh's matcher has one)
    assert known.lookup("bare.example", 2222).trusted == []
    check = known.lookup("plain.example", 22)
    assert check.revoked == [revoked]
    assert isinstance(check.verdict(revoked), HostKeyError)
    assert check.verdict(a) is None


def test_hashed_entries_written_by_ssh_keygen_match(tmp_path: Path) -> None:
    key = new_key()
    path = tmp_path / "known_hosts"
    path.write_text(line("[hashed.example]:2200", key) + "\n")
    subprocess.run(["ssh-keygen", "-H", "-f", str(path)], check=True, capture_output=True)
    assert path.read_text().startswith("|1|")
    known = KnownHosts(path, extra=[])
    assert known.lookup("hashed.example", 2200).trusted == [key]
    assert known.lookup("hashed.example", 22).trusted == []


@pytest.mark.parametrize("hashed", [False, True])
def test_record_writes_an_entry_ssh_reads(tmp_path: Path, hashed: bool) -> None:
    path = tmp_path / "data" / "known_hosts"
    known = KnownHosts(path, extra=[])
    key = new_key()
    assert known.record("127.0.0.9", 2200, key, hashed=hashed) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert known.lookup("127.0.0.9", 2200).trusted == [key]
    found = subprocess.run(
        ["ssh-keygen", "-F", "[127.0.0.9]:2200", "-f", str(path)], capture_output=True, text=True
    )
    assert found.returncode == 0 and fingerprint(key) in "".join(ssh_keygen_l(path))
    if not hashed:
        assert ssh_keygen_l(path) == [describe(key, "[127.0.0.9]:2200")]
    # the same key again: nothing to write
    before = path.read_bytes()
    assert known.record("127.0.0.9", 2200, key, hashed=hashed) is False
    assert path.read_bytes() == before
    # another host is appended
    assert known.record("127.0.0.10", 22, new_key()) is True
    assert len(path.read_text().splitlines()) == 2


def test_record_never_replaces_a_changed_key(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    old, new = new_key(), new_key()
    path.write_text(line("[h.example]:2200", old) + "\n")
    before = path.read_bytes()
    known = KnownHosts(path, extra=[])
    with pytest.raises(HostKeyError) as info:
        known.record("h.example", 2200, new)
    assert info.value.presented == fingerprint(new) and info.value.known == fingerprint(old)
    assert fingerprint(new) in str(info.value) and fingerprint(old) in str(info.value)
    assert path.read_bytes() == before


def test_the_users_file_is_read_never_written(tmp_path: Path) -> None:
    user_file = tmp_path / "user"
    key = new_key()
    user_file.write_text(line("u.example", key) + "\n")
    before = user_file.read_bytes()
    known = KnownHosts(tmp_path / "own", extra=[user_file])
    assert known.lookup("u.example", 22).trusted == [key]
    assert known.record("u.example", 22, key) is False
    assert known.record("v.example", 22, new_key()) is True
    assert user_file.read_bytes() == before
    assert (tmp_path / "own").exists()


async def test_fetch_host_key_without_logging_in(testhost: TestHost, tmp_path: Path) -> None:
    # no client key at all, and an empty known_hosts: the key is still fetched
    pool = SshPool(
        SshDefaults(), known_hosts=KnownHosts(tmp_path / "none", extra=[]), ssh_config=[]
    )
    try:
        server = Server(
            name=testhost.name, address=testhost.address, port=testhost.port, user=testhost.user
        )
        fetched = await pool.fetch_host_key(server)
    finally:
        await pool.close()
    assert fingerprint(fetched.key) == testhost.fingerprint
    assert (fetched.host, fetched.port) == (testhost.address, testhost.port)
    assert not (tmp_path / "none").exists()

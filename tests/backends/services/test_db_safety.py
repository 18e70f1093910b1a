"""Database safety on both engines: hostile names never reach a server, and a generated
password never shows up in an argv, an environment, a log or a readable file."""

from __future__ import annotations

import logging
import os
import random
import re
import string
from collections.abc import Sequence
from pathlib import Path

import pytest
from svckit import CountingTransport, DbBed, ProcSampler, ScramPostgres, files_containing

from cockpit.backends.secrets import SecretStore, site_db_password_key
from cockpit.backends.services.base import ServiceError
from cockpit.backends.services.db import DbCredentials
from cockpit.backends.transport import Line, LineHandler, Result, Transport
from cockpit.model import RESERVED_DB_NAMES, ValidationError, validate_db_identifier

SEEDS = [
    "", " ", "a b", "a'b", 'a"b', "a`b", "a;b", "a--b", "a/*b*/", "a\\b", "a\nb", "a\rb", "a\tb",
    "a\x00b", "A", "Abc", "aBc", "1abc", "_abc", "abc-def", "abc.def", "abc$", "abc%", "a_%",
    "é", "ａｂｃ", "ǅ", "ß", "İ", "x\u200by", "x\u202ey", "x\u0301", "a" * 65, "a" * 200,
    "x' OR '1'='1", "x`; DROP DATABASE mysql; -- ", 'x"; DROP ROLE postgres; --', "$(id)", "`id`",
    "x'||pg_sleep(10)||'", "\\gexec", "x\\g", "';\\! touch /tmp/pwned", "@localhost", "u'@'%",
    *sorted(RESERVED_DB_NAMES), "pg_catalog", "pg_x", "pg_",
]  # fmt: skip
NOT_STRINGS: list[object] = [None, 1, 0, True, 1.5, b"abc", ["abc"], ("abc",), {"abc": 1}, object()]
#: Anything that could be a valid name on some engine (the longest limit is 64).
SAFE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def looks_valid(name: str, engine: str) -> bool:
    """Whether ``name`` could be acceptable (so it does not belong in the corpus)."""
    if engine == "pgsql" and name.startswith("pg_"):
        return False
    return bool(SAFE.fullmatch(name)) and name not in RESERVED_DB_NAMES


def hostile_names(engine: str, count: int = 5000) -> list[object]:
    """``count`` names that no engine may accept: the seeds, then random mixes of
    printable ASCII, quotes, controls and look-alike Unicode."""
    rng = random.Random(20260425)
    alphabet = string.printable + "éß日本ǅİ\u200b\u202e\u0301\x00\x1b`'\";-%_"
    names: list[object] = [n for n in SEEDS if not looks_valid(n, engine)] + NOT_STRINGS
    seen = {n for n in names if isinstance(n, str)}
    while len(names) < count:
        kind = rng.random()
        if kind < 0.5:
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        elif kind < 0.8:  # a plausible name with one bad character somewhere
            good = "".join(
                rng.choice(string.ascii_lowercase + "_") for _ in range(rng.randint(2, 20))
            )
            at = rng.randint(0, len(good))
            text = good[:at] + rng.choice(alphabet.replace("_", "")) + good[at:]
        else:  # too long
            text = "a" + "".join(
                rng.choice(string.ascii_lowercase) for _ in range(rng.randint(64, 100))
            )
        if text not in seen and not looks_valid(text, engine):
            seen.add(text)
            names.append(text)
    return names[:count]


async def test_5000_hostile_names_are_rejected_before_any_sql_is_sent_mysql(
    mysql_bed: DbBed,
) -> None:
    await _hostile_names_rejected(mysql_bed)


async def test_5000_hostile_names_are_rejected_before_any_sql_is_sent_pgsql(
    pgsql_bed: DbBed,
) -> None:
    await _hostile_names_rejected(pgsql_bed)


async def _hostile_names_rejected(any_db: DbBed) -> None:
    names = hostile_names(any_db.db.type)
    assert len(names) == 5000
    counting = CountingTransport(any_db.transport)
    db = any_db.db
    good = "ck_fine_name"
    path = f"{any_db.server.root}/backups/x.sql"
    rejected = 0
    for name in names:
        for user in (False, True):  # the model's own verdict first
            with pytest.raises(ValidationError):
                validate_db_identifier(name, db.engine, "name", user=user)
        calls = [
            db.ensure_database(counting, name, good),  # type: ignore[arg-type]
            db.ensure_database(counting, good, name),  # type: ignore[arg-type]
            db.drop_database(counting, name, good),  # type: ignore[arg-type]
            db.drop_database(counting, good, name),  # type: ignore[arg-type]
            db.database_exists(counting, name),  # type: ignore[arg-type]
            db.user_exists(counting, name),  # type: ignore[arg-type]
            db.dump_database(counting, name, path),  # type: ignore[arg-type]
            db.load_database(counting, name, good, path),  # type: ignore[arg-type]
            db.load_database(counting, good, name, path),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(ValidationError):
                await call
            rejected += 1
    for password in (
        "short",
        "has space in it 12345",
        "quote'quote'quote'1",
        "x" * 200,
        "ünïcødé-password-1234",
    ):
        with pytest.raises(ValidationError):
            await db.ensure_database(counting, good, good, password=password)
    assert rejected == 9 * 5000
    assert counting.calls == [], counting.calls[:5]  # nothing reached the server
    # The same transport does work: the names, not the wiring, were refused.
    assert await db.database_exists(counting, "ck_surely_absent") is False
    assert counting.calls


class RecordingTransport(CountingTransport):
    """A real transport underneath that keeps everything a task log could show: scripts,
    arguments, every output line; and each upload's path, mode and data."""

    def __init__(self, inner: Transport) -> None:
        super().__init__(inner)
        self.texts: list[str] = []
        self.uploads: list[tuple[str, int, bytes]] = []

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
        self.texts += [script, *args]

        def record(line: Line) -> None:
            self.texts.append(line.text)
            if on_line is not None:
                on_line(line)

        result = await super().run_script(
            script, args, sudo=sudo, on_line=record, capture=capture, timeout=timeout
        )
        self.texts.append(result.reason)
        return result

    async def upload(
        self, data: bytes, remote_path: str, *, mode: int = 0o600, sudo: bool = False
    ) -> None:
        self.uploads.append((remote_path, mode, data))
        await super().upload(data, remote_path, mode=mode, sudo=sudo)


async def _exercise(bed: DbBed, transport: Transport) -> list[DbCredentials]:
    """What a site's life does with its database credentials, three times over."""
    issued = []
    for _ in range(3):
        creds = await bed.create(transport=transport)
        issued.append(creds)
        await bed.db.query_as(transport, creds, "CREATE TABLE t (v int); SELECT 1;\n")
        rotated = await bed.db.ensure_database(transport, creds.database, creds.user)
        issued.append(rotated)
        with pytest.raises(ServiceError) as failure:
            await bed.db.query_as(transport, rotated, "SELECT * FROM no_such_table;\n")
        assert rotated.password not in str(failure.value)
        await bed.db.drop_database(transport, creds.database, creds.user)
        bed.created.remove((creds.database, creds.user))
    checks = await bed.db.check(transport)
    assert all(c.ok for c in checks), checks
    return issued


async def test_a_generated_password_never_leaks_mysql(
    mysql_bed: DbBed, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    await _never_leaks(mysql_bed, caplog, tmp_path, None)


async def test_a_generated_password_never_leaks_pgsql(
    scram_bed: DbBed,
    scram_postgres: ScramPostgres,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """On the private cluster that enforces SCRAM (so the password is really used) and
    logs every statement."""
    await _never_leaks(scram_bed, caplog, tmp_path, scram_postgres)


async def _never_leaks(
    bed: DbBed,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    scram: ScramPostgres | None,
) -> None:
    engine = bed.db.type
    caplog.set_level(logging.DEBUG)
    recording = RecordingTransport(bed.transport)
    sampler = ProcSampler()
    with sampler.running():
        issued = await _exercise(bed, recording)
    assert sampler.rounds > 10
    # The sampler saw the database clients run (so it looked at the right moments)...
    clients = [
        c for c in sampler.seen_cmdlines
        if os.path.basename(c.split(b"\0")[0]) in (b"mariadb", b"mysql", b"psql")
    ]  # fmt: skip
    assert clients, "no database client was ever sampled"
    if engine == "mysql":
        assert any(b"--defaults-file=" in c for c in clients)
    else:
        assert any(b"PGPASSFILE=" in e for e in sampler.seen_environs)
    store = SecretStore(tmp_path / "data" / "secrets")
    store.put(*site_db_password_key("shop.example.test"), value=issued[0].password)
    roots = [
        str(bed.server.root), "/tmp", "/var/tmp", "/var/log/postgresql", "/var/log/mysql",
        str(tmp_path),
    ]  # fmt: skip
    for creds in issued:
        canary = creds.password.encode()
        assert sampler.find(canary) == [], "a password was in an argv or an environment"
        assert not [t for t in recording.texts if creds.password in t], (
            "a password was in a log line"
        )
        assert creds.password not in caplog.text
        assert creds.password not in repr(creds) and creds.password not in str(creds.to_json())
        for path, mode, data in recording.uploads:
            if canary in data:
                assert mode == 0o600 and "/cockpit-db." in path, path
        leaks = [(p, oct(m)) for p, m in files_containing(roots, canary) if m != 0o600]
        assert leaks == [], f"a password is in a readable file: {leaks}"
    # Only the secret store holds one, in a 0600 file.
    held = files_containing([str(tmp_path / "data")], issued[0].password.encode())
    assert held == [(str(store.path(*site_db_password_key("shop.example.test"))), 0o600)]
    if scram is not None:
        log = scram.log.read_text(errors="replace")
        assert "ALTER ROLE" in log and "PASSWORD 'SCRAM-SHA-256$4096:" in log  # logged, hashed
        assert not any(c.password in log for c in issued)

"""The restic backup plugin on test host tb2 (Debian's restic), MariaDB and PostgreSQL."""

from __future__ import annotations

import os
import stat

import pytest
from backupkit import SiteBed, leftovers, tree
from svckit import ProcSampler, files_containing

from cockpit.backends.backup import (
    BackupError,
    replace_database,
    settle,
    swap_in,
    swaps_of,
)
from cockpit.backends.backup.restic import ResticBackupService, restic_password_key
from cockpit.backends.secrets import SecretStore
from cockpit.backends.services import get_service


def _snapshot(bed: SiteBed) -> dict[str, object]:
    return {p: tree(p) if os.path.lexists(p) else None for p in bed.paths}


async def _restore(bed: SiteBed, plugin: ResticBackupService, location: str, tag: str) -> None:
    unpacked = await plugin.unpack(
        bed.transport, location, targets=bed.paths, tag=tag, dump_owner=bed.server.user
    )
    swaps = swaps_of(unpacked, tag)
    for swap in swaps:
        await swap_in(bed.transport, swap)
    assert unpacked.dump is not None
    await replace_database(
        bed.db, bed.transport, bed.creds.database, bed.creds.user, bed.creds.password,
        unpacked.dump,
    )  # fmt: skip
    await settle(bed.transport, bed.root, swaps)
    await plugin.discard_unpacked(
        bed.transport, plugin.unpack_job(location, unpacked.manifest, targets=bed.paths, tag=tag)
    )


async def test_snapshot_then_restore_gives_back_files_and_rows(any_site: SiteBed) -> None:
    bed = any_site
    plugin = bed.restic()
    before_files = _snapshot(bed)
    before_rows = await bed.rows()

    made = await plugin.create(bed.transport, bed.source())

    repo = f"{bed.root}/backups/restic"
    assert made.location.startswith(f"{repo}/snapshots/")
    assert os.path.isfile(made.location)  # the snapshot's own file in the repository
    assert made.sha256 == made.location.rsplit("/", 1)[1]
    assert made.backend == "restic" and made.size > 300_000
    assert [m.kind for m in made.manifest.files] == ["file", "dir", "dir", "missing"]
    dump = made.manifest.dump
    assert dump is not None and len(dump.sha256) == 64
    assert stat.S_IMODE(os.stat(repo).st_mode) == 0o700
    assert leftovers(f"{bed.root}/backups") == []

    # A second snapshot shares the data of the first.
    second = await plugin.create(bed.transport, bed.source())
    assert second.location != made.location

    await bed.sh('echo changed > "$1/web/wp-config.php"; rm -rf -- "$1/private"', bed.site_dir)
    await bed.db.query_as(bed.transport, bed.creds, "DELETE FROM posts;\n")

    await _restore(bed, plugin, made.location, "rr1")
    assert _snapshot(bed) == before_files
    assert await bed.rows() == before_rows
    assert leftovers(bed.root) == []

    await plugin.delete(bed.transport, made.location)
    assert not os.path.exists(made.location)
    with pytest.raises(BackupError, match="no snapshot"):
        await plugin.inspect(bed.transport, made.location)
    await plugin.delete(bed.transport, made.location)  # idempotent
    again = await plugin.inspect(bed.transport, second.location)
    assert again.manifest == second.manifest


async def test_the_password_stays_secret(mysql_site: SiteBed) -> None:
    bed = mysql_site
    plugin = bed.restic()
    sampler = ProcSampler()
    with sampler.running():
        made = await plugin.create(bed.transport, bed.source())
        await plugin.unpack(
            bed.transport, made.location, targets=bed.paths, tag="pw", dump_owner=bed.server.user
        )
    store = SecretStore(bed.secrets_dir)
    password = store.get(*restic_password_key(bed.server.name))
    assert password and len(password) >= 32
    secret_file = store.path(*restic_password_key(bed.server.name))
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert sampler.rounds > 10
    assert sampler.find(password.encode()) == []
    # No file on the server holds it after the commands ended (the unpack's work dir
    # included: its password file goes once the snapshot is read).
    assert files_containing([bed.root, "/tmp"], password.encode()) == [(str(secret_file), 0o600)]


async def test_a_wrong_password_is_refused_and_leaves_nothing(mysql_site: SiteBed) -> None:
    bed = mysql_site
    await bed.restic().create(bed.transport, bed.source())
    store = SecretStore(bed.secrets_dir)
    store.put(*restic_password_key(bed.server.name), value="x" * 32)
    with pytest.raises(BackupError, match="restic backup failed"):
        await bed.restic().create(bed.transport, bed.source())
    assert leftovers(f"{bed.root}/backups") == []


async def test_registered_as_a_service(mysql_site: SiteBed) -> None:
    assert get_service("backup", "restic") is ResticBackupService
    checks = await mysql_site.restic().check(mysql_site.transport)
    assert all(c.ok for c in checks), checks

"""The tar backup plugin on test host tb2, with the machine's MariaDB and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from backupkit import SiteBed, leftovers, tree

from cockpit.backends.backup import (
    BackupError,
    parse_manifest,
    replace_database,
    settle,
    swap_back,
    swap_in,
    swaps_of,
)
from cockpit.backends.backup.tar import TarBackupService
from cockpit.backends.services import get_service
from cockpit.model import ValidationError


def _snapshot(bed: SiteBed) -> dict[str, object]:
    return {p: tree(p) if os.path.lexists(p) else None for p in bed.paths}


def _members(archive: str) -> list[str]:
    out = subprocess.run(["tar", "-tf", archive], capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
async def test_backup_then_restore_gives_back_files_and_rows(
    mysql_site: SiteBed, compression: str
) -> None:
    bed = mysql_site
    plugin = bed.tar()
    before_files = _snapshot(bed)
    before_rows = await bed.rows()
    assert len(before_rows) == 3

    made = await plugin.create(bed.transport, bed.source(), compression=compression)

    archive = made.location
    assert archive.startswith(f"{bed.root}/backups/{bed.domain}/{bed.domain}-")
    assert archive.endswith(".tar")
    st = os.stat(archive)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == made.size
    assert stat.S_IMODE(os.stat(os.path.dirname(archive)).st_mode) == 0o700
    ext = "zst" if compression == "zstd" else "gz"
    assert _members(archive) == [
        "manifest.json",
        f"data-0.tar.{ext}",
        f"data-1.tar.{ext}",
        f"data-2.tar.{ext}",
        f"database.sql.{ext}",
    ]
    sidecar = Path(f"{archive}.sha256").read_text()
    assert sidecar == f"{made.sha256}  {os.path.basename(archive)}\n"
    check = subprocess.run(
        ["sha256sum", "-c", f"{archive}.sha256"], cwd=os.path.dirname(archive), check=False
    )
    assert check.returncode == 0
    manifest = made.manifest
    assert (manifest.site, manifest.platform, manifest.platform_type, manifest.release) == (
        bed.domain,
        "wp6",
        "wordpress",
        "6.1.1",
    )
    assert manifest.db_engine is not None and manifest.db_engine.value == "mysql"
    assert manifest.compression == compression and manifest.backend == "tar"
    assert [m.kind for m in manifest.files] == ["file", "dir", "dir", "missing"]
    assert [m.path for m in manifest.files] == list(bed.paths)
    record = made.record()
    assert (record.site, record.size, record.sha256, record.backend) == (
        bed.domain,
        made.size,
        made.sha256,
        "tar",
    )
    assert leftovers(f"{bed.root}/backups") == []

    # The site changes after the backup: files, rows.
    await bed.sh(
        'rm -rf -- "$1/web/wp-content/uploads/2024"; echo changed > "$1/web/wp-config.php";'
        ' mkdir -p "$1/web/wp-content/cache"; echo new > "$1/web/wp-content/cache/x"',
        bed.site_dir,
    )
    await bed.db.query_as(
        bed.transport, bed.creds, "DELETE FROM posts WHERE id = 2; CREATE TABLE extra (v INT);\n"
    )
    assert _snapshot(bed) != before_files

    unpacked = await plugin.unpack(
        bed.transport,
        archive,
        targets=bed.paths,
        tag="r1",
        dump_owner=bed.server.user,
        expected_sha256=made.sha256,
    )
    # Nothing live changed yet.
    assert Path(f"{bed.site_dir}/web/wp-config.php").read_text() == "changed\n"
    swaps = swaps_of(unpacked, "r1")
    for swap in swaps:
        await swap_in(bed.transport, swap)
    assert unpacked.dump is not None
    await replace_database(
        bed.db,
        bed.transport,
        bed.creds.database,
        bed.creds.user,
        bed.creds.password,
        unpacked.dump,
    )
    await settle(bed.transport, bed.root, swaps)
    await plugin.discard_unpacked(
        bed.transport,
        plugin.unpack_job(archive, unpacked.manifest, targets=bed.paths, tag="r1"),
    )

    assert _snapshot(bed) == before_files
    assert await bed.rows() == before_rows
    tables = await bed.db.query_as(bed.transport, bed.creds, "SHOW TABLES;\n")
    assert tables == ["posts"]  # the table made after the backup is gone
    assert leftovers(bed.root) == []


async def test_pgsql_site_round_trip(pgsql_site: SiteBed) -> None:
    bed = pgsql_site
    plugin = bed.tar()
    before_rows = await bed.rows()
    before_files = _snapshot(bed)
    made = await plugin.create(bed.transport, bed.source())
    assert made.manifest.db_engine is not None and made.manifest.db_engine.value == "pgsql"
    await bed.db.query_as(bed.transport, bed.creds, "UPDATE posts SET title = 'gone';\n")
    await bed.sh('rm -rf -- "$1/private"', bed.site_dir)

    unpacked = await plugin.unpack(
        bed.transport, made.location, targets=bed.paths, tag="r2", dump_owner=bed.server.user
    )
    swaps = swaps_of(unpacked, "r2")
    for swap in swaps:
        await swap_in(bed.transport, swap)
    assert unpacked.dump is not None
    await replace_database(
        bed.db, bed.transport, bed.creds.database, bed.creds.user, bed.creds.password,
        unpacked.dump,
    )  # fmt: skip
    await settle(bed.transport, bed.root, swaps)
    assert await bed.rows() == before_rows
    assert _snapshot(bed) == before_files
    # The restored tables belong to the site's role, which can still write them.
    await bed.db.query_as(bed.transport, bed.creds, "INSERT INTO posts VALUES (4, 'four', '');\n")


async def test_swap_back_puts_the_previous_state_back(mysql_site: SiteBed) -> None:
    bed = mysql_site
    plugin = bed.tar()
    made = await plugin.create(bed.transport, bed.source(with_db=False))
    assert made.manifest.dump is None and made.manifest.db_engine is None
    await bed.sh(
        'echo v2 > "$1/web/wp-config.php"; mkdir -p "$1/web/wp-content/cache"', bed.site_dir
    )
    current = _snapshot(bed)
    unpacked = await plugin.unpack(bed.transport, made.location, targets=bed.paths, tag="r3")
    assert unpacked.dump is None
    swaps = swaps_of(unpacked, "r3")
    for swap in swaps:
        await swap_in(bed.transport, swap)
    assert Path(f"{bed.site_dir}/web/wp-config.php").read_text() != "v2\n"
    assert not os.path.exists(f"{bed.site_dir}/web/wp-content/cache")  # missing in the backup
    for swap in reversed(swaps):
        await swap_back(bed.transport, swap)
        await swap_back(bed.transport, swap)  # idempotent
    assert _snapshot(bed) == current
    await settle(bed.transport, bed.root, swaps)
    assert leftovers(bed.site_dir) == []


async def test_a_damaged_backup_changes_nothing(mysql_site: SiteBed) -> None:
    bed = mysql_site
    plugin = bed.tar()
    made = await plugin.create(bed.transport, bed.source())
    # Flip one byte inside the uploads member (past the outer tar headers).
    listing = subprocess.run(
        ["tar", "-tvf", made.location, "--block-number"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    block = next(int(line.split(":")[0].split()[1]) for line in listing if "data-1.tar" in line)
    with open(made.location, "r+b") as f:
        f.seek((block + 1) * 512 + 100)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = _snapshot(bed)

    # The sidecar's sha256 no longer matches: refused before anything is unpacked.
    with pytest.raises(BackupError) as refused:
        await plugin.unpack(
            bed.transport, made.location, targets=bed.paths, tag="r4",
            expected_sha256=made.sha256,
        )  # fmt: skip
    assert refused.value.damaged
    # Without the recorded sha256, the member's own checksum catches it.
    with pytest.raises(BackupError) as caught:
        await plugin.unpack(bed.transport, made.location, targets=bed.paths, tag="r5")
    assert caught.value.damaged
    assert "data-1.tar.zst" in str(caught.value)
    assert _snapshot(bed) == before
    assert leftovers(bed.site_dir) == []
    assert leftovers(f"{bed.root}/backups") == []


async def test_a_full_disk_leaves_nothing_behind(mysql_site: SiteBed) -> None:
    bed = mysql_site
    small = f"{bed.root}/small-backups"
    bed.mount_tmpfs(small, "200k")
    plugin = bed.tar(dir=small)
    with pytest.raises(BackupError) as full:
        await plugin.create(bed.transport, bed.source())
    assert "No space left on device" in str(full.value)
    assert os.listdir(small) == [bed.domain]
    assert os.listdir(f"{small}/{bed.domain}") == []


async def test_delete_removes_the_archive_and_its_checksum(mysql_site: SiteBed) -> None:
    bed = mysql_site
    plugin = bed.tar()
    made = await plugin.create(bed.transport, bed.source(), compression="gzip")
    again = await plugin.inspect(bed.transport, made.location)
    assert (again.size, again.sha256, again.manifest) == (made.size, made.sha256, made.manifest)
    await plugin.delete(bed.transport, made.location)
    assert not os.path.exists(made.location)
    assert not os.path.exists(f"{made.location}.sha256")
    await plugin.delete(bed.transport, made.location)  # idempotent
    with pytest.raises(BackupError, match="there is no backup"):
        await plugin.inspect(bed.transport, made.location)
    with pytest.raises(ValidationError):
        await plugin.delete(bed.transport, "/etc/passwd.tar")


async def test_the_manifest_reads_by_hand(mysql_site: SiteBed) -> None:
    bed = mysql_site
    made = await bed.tar().create(bed.transport, bed.source())
    text = subprocess.run(
        ["tar", "-xOf", made.location, "manifest.json"], capture_output=True, check=True
    ).stdout
    data = json.loads(text)
    assert data["format"] == "cockpit-backup" and data["version"] == 1
    assert parse_manifest(text) == made.manifest
    for member in made.manifest.members:
        if not member.name:
            continue
        blob = subprocess.run(
            ["tar", "-xOf", made.location, member.name], capture_output=True, check=True
        ).stdout
        import hashlib

        assert hashlib.sha256(blob).hexdigest() == member.sha256
        assert len(blob) == member.size


async def test_registered_as_a_service(mysql_site: SiteBed) -> None:
    assert get_service("backup", "tar") is TarBackupService
    checks = await mysql_site.tar().check(mysql_site.transport)
    assert all(c.ok for c in checks), checks


async def test_a_tar_backup_is_sent_whole_to_another_place(mysql_site: SiteBed) -> None:
    """``send`` streams the archive (as root, through this process) into a .partial that
    is renamed when whole; the copy unpacks like the original."""
    bed = mysql_site
    plugin = bed.tar()
    assert plugin.portable and not bed.restic().portable
    made = await plugin.create(bed.transport, bed.source())
    elsewhere = f"{bed.root}/elsewhere-{bed.domain}"
    os.makedirs(elsewhere)
    copy = f"{elsewhere}/copy.tar"
    lines: list[str] = []
    piped = await plugin.send(
        bed.transport, made.location, bed.transport, copy, on_line=lambda x: lines.append(x.text)
    )
    assert piped.ok and piped.bytes == made.size
    assert Path(copy).read_bytes() == Path(made.location).read_bytes()
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    assert lines == [f"received {copy} ({made.size} bytes)"]
    # a fetched copy is unpacked from the unpack's own work dir, and checked there
    job = plugin.unpack_job(
        made.location, made.manifest, targets=bed.paths, tag="fetch-test",
        expected_sha256=made.sha256,
    )  # fmt: skip
    fetched = plugin.fetched(job, made.location)
    assert fetched.location == f"{job.work}/{made.location.rsplit('/', 1)[1]}"
    assert (fetched.work, fetched.targets) == (job.work, job.targets)
    # a missing archive, a missing destination dir: each end says so, nothing is left
    missing = await plugin.send(bed.transport, f"{made.location[:-4]}x.tar", bed.transport, copy)
    assert missing.source.exit_code == 66 and not missing.ok
    assert any("there is no backup" in line for line in missing.lines)
    nowhere = await plugin.send(bed.transport, made.location, bed.transport, f"{copy}.d/c.tar")
    assert nowhere.dest.exit_code == 66 and not nowhere.ok
    assert sorted(os.listdir(elsewhere)) == ["copy.tar"]
    # only tar files, only from the server's root
    with pytest.raises(ValidationError):
        await plugin.send(bed.transport, made.location, bed.transport, f"{elsewhere}/copy.sh")
    with pytest.raises(ValidationError):
        await plugin.send(bed.transport, "/etc/shadow.tar", bed.transport, copy)
    with pytest.raises(BackupError, match="a restic backup cannot be copied to another server"):
        await bed.restic().send(bed.transport, made.location, bed.transport, copy)

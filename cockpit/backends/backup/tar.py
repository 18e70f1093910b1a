"""Backups as tar archives made on the server, compressed with zstd or gzip.

One backup is one uncompressed tar (``<backup dir>/<domain>/<domain>-<tag>.tar``, mode
0600), the manifest first::

    manifest.json        what the backup holds, each member's size and sha256
    data-0.tar.zst       data path 0 of the site (a file or a dir's content), compressed
    data-1.tar.zst       …one per data path that exists (owners by name, modes, times)
    database.sql.zst     the database dump, compressed (absent without a database)

and a sidecar ``<archive>.sha256`` in ``sha256sum`` format. The outer tar is not
compressed, so the manifest reads in one seek (``tar -xOf backup.tar manifest.json``)
and each member's checksum covers exactly the bytes a restore unpacks. By hand::

    tar -xOf shop.example-….tar data-1.tar.zst | zstd -d | tar -x -C /somewhere

The members are made in a private staging dir next to the archive, then packed into
``<archive>.partial``, synced and renamed: a backup is there whole or not at all.
While it is made it needs about twice its compressed size in the backup dir.
Compression: ``zstd`` (multi-threaded; Debian's ``zstd`` package) or ``gzip`` (``pigz``
when installed), chosen per server (``compression`` setting) or per backup. An archive
is one file: :meth:`TarBackupService.send` streams it whole to another server (a restore
of a site that has moved since it was made).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Final

from cockpit.backends.backup.base import (
    BackupError,
    BackupJob,
    BackupResult,
    BackupService,
    RemoteCommand,
    UnpackJob,
    judge,
    manifest_from_lines,
)
from cockpit.backends.backup.manifest import WRITE_MANIFEST
from cockpit.backends.backup.stream import Piped, pipe
from cockpit.backends.services.base import PRELUDE, Setting, SettingKind, run_step
from cockpit.backends.transport import LineHandler, Transport
from cockpit.model import ValidationError, validate_path

__all__ = ["TarBackupService"]

#: Args: staging, archive, compression, level, site, server, platform, platform type,
#: release, then: db engine ("" none), database, then the data paths.
_ARCHIVE: Final = (
    PRELUDE
    + WRITE_MANIFEST
    + r"""
staging=$1 archive=$2 comp=$3 level=$4 site=$5 server=$6 platform=$7 ptype=$8 release=$9
shift 9
engine=$1 database=$2
shift 2
umask 077
partial="$archive.partial"
clean() {
    rm -f -- "$partial" "$archive.sha256.tmp"
    [ -e "$archive" ] || rm -f -- "$archive.sha256"
    rm -rf -- "$staging"
}
fail() { echo "cockpit: $*" >&2; clean; exit 1; }
case $comp in
zstd)
    command -v zstd >/dev/null 2>&1 ||
        fail "zstd is not installed on the server (apt-get install zstd), or choose gzip"
    ext=zst ;;
gzip) ext=gz ;;
*) fail "unknown compression $comp" ;;
esac
compress() {
    if [ "$comp" = zstd ]; then zstd -q -T0 "-$level" -c
    elif command -v pigz >/dev/null 2>&1; then pigz "-$level" -c
    else gzip "-$level" -c
    fi
}
[ -d "$staging" ] || { echo "cockpit: the staging dir $staging is missing" >&2; exit 66; }
# entry NAME INDEX KIND PATH: the manifest entry of a data path
entry() {
    if [ "$3" = missing ]; then
        printf '{"name": "", "content": "files", "index": %s, "kind": "missing", "path": "%s", "size": 0, "sha256": ""}' "$2" "$4"
        return 0
    fi
    sum=$(sha256sum -- "$staging/$1") || return 1
    size=$(stat -c %s -- "$staging/$1") || return 1
    printf '{"name": "%s", "content": "files", "index": %s, "kind": "%s", "path": "%s", "size": %s, "sha256": "%s"}' \
        "$1" "$2" "$3" "$4" "$size" "${sum%% *}"
}
: > "$staging/.members"
entries=
i=0
for path; do
    name="data-$i.tar.$ext"
    if [ -d "$path" ] && ! [ -L "$path" ]; then
        kind=dir
        echo "packing $path"
        { tar -C "$path" -cf - .; echo $? > "$staging/.rc"; } | compress > "$staging/$name" ||
            fail "writing $name failed"
    elif [ -e "$path" ] || [ -L "$path" ]; then
        kind=file
        echo "packing $path"
        { tar -C "$(dirname -- "$path")" -cf - "./${path##*/}"; echo $? > "$staging/.rc"; } |
            compress > "$staging/$name" || fail "writing $name failed"
    else
        kind=missing
        echo "cockpit: $path is not there; the backup records it as missing"
        echo 0 > "$staging/.rc"
    fi
    rc=$(cat -- "$staging/.rc" 2>/dev/null) || rc=2
    case $rc in
    0) ;;
    1) echo "cockpit: files under $path changed while they were read; the backup holds what was read" ;;
    *) fail "tar could not read $path (exit $rc)" ;;
    esac
    one=$(entry "$name" "$i" "$kind" "$path") || fail "cannot read $name back"
    entries="$entries${entries:+,
    }$one"
    [ "$kind" = missing ] || printf '%s\n' "$name" >> "$staging/.members"
    i=$((i + 1))
done
rm -f -- "$staging/.rc"
set -- manifest.json
while read -r name; do set -- "$@" "$name"; done < "$staging/.members"
rm -f -- "$staging/.members"
if [ -n "$engine" ]; then
    [ -f "$staging/database.sql" ] || fail "the database dump is missing from $staging"
    echo "compressing the database dump ($(stat -c %s -- "$staging/database.sql") bytes)"
    compress < "$staging/database.sql" > "$staging/database.sql.$ext" ||
        fail "compressing the database dump failed"
    rm -f -- "$staging/database.sql"
    sum=$(sha256sum -- "$staging/database.sql.$ext") || fail "cannot read the dump back"
    entries="$entries,
    {\"name\": \"database.sql.$ext\", \"content\": \"database\", \"size\": $(stat -c %s -- "$staging/database.sql.$ext"), \"sha256\": \"${sum%% *}\"}"
    set -- "$@" "database.sql.$ext"
fi
write_manifest tar "$comp" "$staging/manifest.json" || fail "writing the manifest failed"

echo "writing $archive"
tar -C "$staging" -cf "$partial" "$@" || fail "writing the archive failed"
sync -- "$partial" 2>/dev/null || sync
sum=$(sha256sum -- "$partial") || fail "cannot read the archive back"
sum=${sum%% *}
printf '%s  %s\n' "$sum" "${archive##*/}" > "$archive.sha256.tmp" || fail "writing the checksum failed"
mv -f -- "$archive.sha256.tmp" "$archive.sha256" || fail "writing the checksum failed"
mv -f -- "$partial" "$archive" || fail "renaming the archive failed"
sync -- "$(dirname -- "$archive")" 2>/dev/null || sync
rm -rf -- "$staging"
echo "backup $archive: $(stat -c %s -- "$archive") bytes, sha256 $sum"
"""
)

#: Args: archive. Prints "@size N", "@sha256 HEX", "@manifest", then the manifest.
_INSPECT: Final = r"""
archive=$1
[ -f "$archive" ] || { echo "cockpit: there is no backup $archive" >&2; exit 66; }
echo "@size $(stat -c %s -- "$archive")"
if [ -f "$archive.sha256" ]; then
    read -r sum rest < "$archive.sha256"
else
    sum=$(sha256sum -- "$archive") || exit 1
    sum=${sum%% *}
fi
echo "@sha256 $sum"
echo "@manifest"
tar -xOf "$archive" manifest.json
"""

#: Args: archive. Removes it and its checksum.
_DELETE: Final = r"""
archive=$1
case $archive in *.tar) ;; *) echo "cockpit: $archive is not a tar backup" >&2; exit 64 ;; esac
rm -f -- "$archive" "$archive.sha256" "$archive.partial" "$archive.sha256.tmp" || exit 1
sync -- "$(dirname -- "$archive")" 2>/dev/null || :
"""

#: The sending end of a copy to another server. Args: archive.
_SEND: Final = r"""
archive=$1
[ -f "$archive" ] || { echo "cockpit: there is no backup $archive" >&2; exit 66; }
exec cat -- "$archive"
"""

#: The receiving end. Args: the copy's path (its dir must exist). Written as .partial,
#: then renamed: the copy is there whole or not at all.
_RECEIVE: Final = r"""
path=$1
umask 077
dir=$(dirname -- "$path")
if ! [ -d "$dir" ]; then echo "cockpit: $dir is missing" >&2; cat > /dev/null; exit 66; fi
if ! cat > "$path.partial"; then
    rm -f -- "$path.partial"
    free=$(df -Pk -- "$dir" 2>/dev/null | awk 'NR == 2 { print $4 }')
    echo "cockpit: writing $path failed (${free:-?} KiB free there)" >&2
    exit 1
fi
mv -f -- "$path.partial" "$path" || exit 1
echo "received $path ($(stat -c %s -- "$path") bytes)"
"""

#: Args: archive, work dir, expected archive sha256 ("" skip), dump owner, compression,
#: dump member ("" none), its sha256, then for each data path: kind, member, sha256,
#: fresh path, the archived file's name (a file member) or "".
_UNPACK: Final = (
    PRELUDE
    + r"""
archive=$1 work=$2 want=$3 owner=$4 comp=$5 dmember=$6 dsum=$7
shift 7
umask 077
[ -f "$archive" ] || { echo "cockpit: there is no backup $archive" >&2; exit 66; }
[ -d "$work" ] || { echo "cockpit: the work dir $work is missing" >&2; exit 66; }
made="$work/.made"
: > "$made"
undo() {
    while read -r p; do rm -rf -- "$p"; done < "$made"
    rm -f -- "$work/database.sql" "$work/fifo"
}
damaged() { echo "cockpit: $*" >&2; undo; exit 65; }
fail() { echo "cockpit: $*" >&2; undo; exit 1; }
case $comp in
zstd) command -v zstd >/dev/null 2>&1 || fail "zstd is not installed on the server" ;;
gzip) ;;
*) fail "unknown compression $comp" ;;
esac
decompress() { if [ "$comp" = zstd ]; then zstd -q -d -c; else gzip -d -c; fi; }
if [ -n "$want" ]; then
    echo "checking the archive against the sha256 recorded when it was made"
    got=$(sha256sum -- "$archive") || fail "cannot read $archive"
    [ "${got%% *}" = "$want" ] || damaged "$archive has sha256 ${got%% *}, but $want was recorded"
fi
# member NAME SHA256 SINK: the member through sha256sum (by a fifo) and into SINK
member() {
    rm -f -- "$work/fifo" "$work/rc" "$work/sum"
    mkfifo -m 600 -- "$work/fifo" || fail "cannot make a fifo in $work"
    sha256sum < "$work/fifo" > "$work/sum" &
    hasher=$!
    { tar -xOf "$archive" -- "$1"; echo $? > "$work/rc"; } | tee -- "$work/fifo" | "$3"
    sink=$?
    wait "$hasher"
    rc=$(cat -- "$work/rc" 2>/dev/null) || rc=2
    read -r got rest < "$work/sum" || got=
    rm -f -- "$work/fifo" "$work/rc" "$work/sum"
    if [ "$sink" != 0 ]; then
        # A failed sink cuts the stream short: hash the whole member to tell a damaged
        # backup from, say, a full disk.
        got=$(tar -xOf "$archive" -- "$1" | sha256sum) || got=
        [ "${got%% *}" = "$2" ] || damaged "$1 has sha256 ${got%% *}, but the manifest says $2"
        fail "unpacking $1 failed (exit $sink)"
    fi
    [ "$rc" = 0 ] || damaged "cannot read $1 from $archive (tar exit $rc)"
    [ "$got" = "$2" ] || damaged "$1 has sha256 $got, but the manifest says $2"
}
into() { decompress | tar -C "$into" -xpf -; }
dump() { decompress > "$work/database.sql"; }
while [ "$#" -ge 5 ]; do
    kind=$1 name=$2 sum=$3 fresh=$4 base=$5
    shift 5
    if [ -e "$fresh" ] || [ -L "$fresh" ]; then fail "$fresh is in the way"; fi
    case $kind in
    missing) continue ;;
    dir)
        printf '%s\n' "$fresh" >> "$made"
        mkdir -- "$fresh" || fail "cannot make $fresh"
        into=$fresh
        echo "unpacking $name into $fresh"
        member "$name" "$sum" into
        ;;
    file)
        printf '%s\n%s\n' "$fresh" "$fresh.unpack" >> "$made"
        rm -rf -- "$fresh.unpack"
        mkdir -- "$fresh.unpack" || fail "cannot make $fresh.unpack"
        into=$fresh.unpack
        echo "unpacking $name as $fresh"
        member "$name" "$sum" into
        if ! [ -e "$fresh.unpack/$base" ] && ! [ -L "$fresh.unpack/$base" ]; then
            damaged "$name does not hold $base"
        fi
        mv -T -- "$fresh.unpack/$base" "$fresh" || fail "cannot move $base to $fresh"
        rm -rf -- "$fresh.unpack"
        ;;
    *) fail "unknown kind $kind" ;;
    esac
done
if [ -n "$dmember" ]; then
    echo "unpacking the database dump"
    member "$dmember" "$dsum" dump
    if [ -n "$owner" ]; then chown -R -- "$owner" "$work" || fail "cannot give $work to $owner"; fi
fi
rm -f -- "$made"
echo "unpacked and checked against the manifest"
"""
)


class TarBackupService(BackupService):
    type: ClassVar[str] = "tar"
    description: ClassVar[str] = "tar archives made on the server (zstd or gzip)"
    compressions: ClassVar[tuple[str, ...]] = ("zstd", "gzip")
    portable: ClassVar[bool] = True
    settings_spec: ClassVar[Mapping[str, Setting]] = {
        **BackupService.settings_spec,
        "compression": Setting(
            SettingKind.CHOICE, "zstd", "how members are compressed", choices=("zstd", "gzip")
        ),
        "zstd_level": Setting(SettingKind.INT, 3, "zstd level (1-19)", minimum=1, maximum=19),
        "gzip_level": Setting(SettingKind.INT, 6, "gzip level (1-9)", minimum=1, maximum=9),
    }

    def default_compression(self) -> str:
        return self.setting("compression")

    def tools(self) -> tuple[str, ...]:
        return ("tar", "zstd" if self.default_compression() == "zstd" else "gzip", "sha256sum")

    def location_for(self, site: str, tag: str, compression: str) -> str:
        return f"{self.site_dir(site)}/{site}-{tag}.tar"

    def partials(self, job: BackupJob) -> list[str]:
        return [f"{job.location}.partial", f"{job.location}.sha256.tmp"]

    def _location(self, location: str) -> str:
        path = validate_path(location, "backup location", within=self.server.root)
        if not path.endswith(".tar"):
            raise ValidationError("backup location", "is not a tar backup", location)
        return path

    # -- making -----------------------------------------------------------------------

    def archive_command(self, job: BackupJob) -> RemoteCommand:
        source = job.source
        level = self.int_setting("zstd_level" if job.compression == "zstd" else "gzip_level")
        args = [
            job.staging,
            job.location,
            job.compression,
            str(level),
            *source.manifest_values(),
            *source.paths,
        ]
        return RemoteCommand(f"archive {source.site}", _ARCHIVE, tuple(args))

    async def result(self, transport: Transport, job: BackupJob) -> BackupResult:
        return await self.inspect(transport, job.location)

    # -- reading, deleting ------------------------------------------------------------

    async def inspect(self, transport: Transport, location: str) -> BackupResult:
        path = self._location(location)
        result = await run_step(
            transport, "read the backup's manifest", _INSPECT, [path], sudo=True, time_limit=None
        )
        judge(result, f"reading the backup {path}")
        size = sha = ""
        lines = list(result.stdout)
        while lines and lines[0] != "@manifest":
            line = lines.pop(0)
            if line.startswith("@size "):
                size = line.removeprefix("@size ")
            elif line.startswith("@sha256 "):
                sha = line.removeprefix("@sha256 ")
        if not lines or not size.isdigit():
            raise BackupError(f"{path}: cannot read the backup back", output=result.stderr)
        manifest = manifest_from_lines(lines[1:], path)
        try:
            return BackupResult(path, int(size), sha, manifest.created, self.type, manifest)
        except ValidationError as exc:
            raise BackupError(f"{path}: {exc}") from None

    async def delete(self, transport: Transport, location: str) -> None:
        path = self._location(location)
        result = await run_step(
            transport, "delete the backup", _DELETE, [path], sudo=True, time_limit=300
        )
        judge(result, f"deleting {path}")

    async def send(
        self,
        transport: Transport,
        location: str,
        dest: Transport,
        dest_path: str,
        *,
        on_line: LineHandler | None = None,
    ) -> Piped:
        source = self._location(location)
        target = validate_path(dest_path, "copy of the backup")
        if not target.endswith(".tar"):
            raise ValidationError("copy of the backup", "must end in .tar", dest_path)
        return await pipe(transport, _SEND, [source], dest, _RECEIVE, [target], on_line=on_line)

    # -- unpacking --------------------------------------------------------------------

    async def unpack_command(self, transport: Transport, job: UnpackJob) -> RemoteCommand:
        manifest = job.manifest
        if manifest.backend != self.type:
            raise BackupError(f"{job.location} is a {manifest.backend} backup, not a tar one")
        dump = manifest.dump
        args = [
            self._location(job.location),
            job.work,
            job.expected_sha256,
            job.dump_owner,
            manifest.compression,
            dump.name if dump is not None else "",
            dump.sha256 if dump is not None else "",
        ]
        for member, fresh in zip(manifest.files, job.fresh, strict=True):
            kind = member.kind if job.files else "missing"
            base = member.path.rsplit("/", 1)[-1] if kind == "file" else ""
            args += [kind, member.name, member.sha256, fresh, base]
        return RemoteCommand(f"unpack {manifest.site}", _UNPACK, tuple(args))

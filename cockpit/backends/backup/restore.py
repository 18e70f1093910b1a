"""Putting an unpacked backup in place: swap a site's data paths, replace its database.

A restore never writes into a live path: each data path is unpacked next to its
target (``<target>.cockpit-new-<tag>``, the same file system), checked, and then
:func:`swap_in` renames the live path aside (``<target>.cockpit-old-<tag>``) and the
fresh one into its place: two renames, microseconds apart, each atomic; a reader sees
the old tree or the new one, never a half-written one. A data path the backup records
as missing is only moved aside. :func:`swap_back` undoes a swap (a task's rollback);
:func:`settle` removes what a swap kept once the task succeeded.

:func:`replace_database` empties a site's database (drop, then create again with the
same user and password) and loads a dump into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cockpit.backends.backup.base import (
    MARKS,
    Unpacked,
    fresh_path,
    judge,
    remove_paths,
    validate_tag,
)
from cockpit.backends.services.base import run_step
from cockpit.backends.services.db import DbService
from cockpit.backends.transport import Transport
from cockpit.model import ValidationError, validate_path

__all__ = [
    "Swap",
    "replace_database",
    "settle",
    "swap_back",
    "swap_in",
    "swap_paths",
    "swaps_of",
]

#: Args: fresh, live, previous, "1" when fresh must be there.
_SWAP: Final = r"""
fresh=$1 live=$2 prev=$3 expect=$4
case $prev in /?*/*.cockpit-old-?*) ;; *) echo "cockpit: $prev is not a kept path" >&2; exit 64 ;; esac
if [ -n "$expect" ] && ! [ -e "$fresh" ] && ! [ -L "$fresh" ]; then
    echo "cockpit: $fresh is missing" >&2
    exit 66
fi
if [ -e "$prev" ] || [ -L "$prev" ]; then echo "cockpit: $prev is in the way" >&2; exit 73; fi
[ -d "$(dirname -- "$live")" ] || { echo "cockpit: $(dirname -- "$live") is missing" >&2; exit 66; }
if [ -e "$live" ] || [ -L "$live" ]; then mv -T -- "$live" "$prev" || exit 1; fi
if [ -e "$fresh" ] || [ -L "$fresh" ]; then
    if ! mv -T -- "$fresh" "$live"; then
        if [ -e "$prev" ] || [ -L "$prev" ]; then mv -T -- "$prev" "$live"; fi
        exit 1
    fi
    echo "swapped in $live"
else
    echo "moved $live aside (the backup has none)"
fi
sync -- "$(dirname -- "$live")" 2>/dev/null || :
"""

#: Args: live, previous, aside. Puts "previous" back as "live" (when it is there).
_SWAP_BACK: Final = r"""
live=$1 prev=$2 aside=$3
case $prev in /?*/*.cockpit-old-?*) ;; *) echo "cockpit: $prev is not a kept path" >&2; exit 64 ;; esac
case $aside in /?*/*.cockpit-undone-?*) ;; *) echo "cockpit: $aside is not marked" >&2; exit 64 ;; esac
if ! [ -e "$prev" ] && ! [ -L "$prev" ]; then
    # Nothing kept: the swap never happened, or there was nothing at live before it.
    exit 0
fi
rm -rf -- "$aside"
if [ -e "$live" ] || [ -L "$live" ]; then mv -T -- "$live" "$aside" || exit 1; fi
if ! mv -T -- "$prev" "$live"; then
    if [ -e "$aside" ] || [ -L "$aside" ]; then mv -T -- "$aside" "$live"; fi
    exit 1
fi
sync -- "$(dirname -- "$live")" 2>/dev/null || :
rm -rf -- "$aside"
echo "put back $live"
"""


@dataclass(frozen=True, slots=True)
class Swap:
    """One swap: ``fresh`` comes in as ``live``, which is kept as ``previous``."""

    live: str
    fresh: str
    previous: str
    aside: str
    #: Whether ``fresh`` must be there (False for a path the backup records as missing).
    expect_fresh: bool = True


def swap_paths(live: str, tag: str, *, expect_fresh: bool = True) -> Swap:
    """The paths to swap ``live`` with, named after ``tag`` (same tag, same paths)."""
    live = validate_path(live, "live path")
    if live.count("/") < 2 or any(mark in live for mark in MARKS):
        raise ValidationError("live path", "must be two levels deep and not marked", live)
    tag = validate_tag(tag)
    return Swap(
        live,
        fresh_path(live, tag),
        f"{live}{MARKS[1]}{tag}",
        f"{live}{MARKS[2]}{tag}",
        expect_fresh,
    )


def swaps_of(unpacked: Unpacked, tag: str) -> list[Swap]:
    """The swaps that put an unpacked backup in place (one per data path)."""
    return [
        swap_paths(target, tag, expect_fresh=member.kind != "missing")
        for target, member in zip(unpacked.targets, unpacked.manifest.files, strict=True)
    ]


async def swap_in(transport: Transport, swap: Swap) -> None:
    """Rename ``swap.live`` to ``swap.previous`` and ``swap.fresh`` to ``swap.live``."""
    result = await run_step(
        transport,
        f"swap in {swap.live}",
        _SWAP,
        [swap.fresh, swap.live, swap.previous, "1" if swap.expect_fresh else ""],
        sudo=True,
        time_limit=120,
    )
    judge(result, f"swapping in {swap.live}")


async def swap_back(transport: Transport, swap: Swap) -> None:
    """Undo :func:`swap_in`: the kept path goes back; idempotent."""
    result = await run_step(
        transport,
        f"put back {swap.live}",
        _SWAP_BACK,
        [swap.live, swap.previous, swap.aside],
        sudo=True,
        time_limit=None,
    )
    judge(result, f"putting back {swap.live}")


async def settle(transport: Transport, root: str, swaps: Sequence[Swap]) -> None:
    """Remove what finished swaps kept (previous paths, fresh ones never swapped in)."""
    paths = [p for s in swaps for p in (s.previous, s.fresh, s.aside)]
    await remove_paths(transport, root, paths)


async def replace_database(
    service: DbService,
    transport: Transport,
    database: str,
    user: str,
    password: str,
    dump: str,
) -> None:
    """Empty ``database`` (dropped and created again for ``user`` with ``password``, so
    nothing of the old one survives) and load ``dump`` (a path on the server)."""
    dump = validate_path(dump, "dump")
    await service.drop_database(transport, database, user)
    await service.ensure_database(transport, database, user, password=password)
    await service.load_database(transport, database, user, dump)

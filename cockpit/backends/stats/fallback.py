"""The awk fallback: the same sums on servers without python3 >= 3.9.

Division of labour (three round trips, only on such servers):

1. :data:`OBSERVE` (sh) prints the committed state and, for each log path and its rotation
   candidates, device, inode, size and the first 64 bytes (hex, through ``od``).
2. Cockpit plans locally with the very same :func:`~cockpit.backends.stats.accesslog.plan`
   the Python program uses, then :data:`SCAN` (sh) opens each file once, checks its inode,
   and pipes the planned byte range (``tail -c +N | head -c M``) into :data:`AWK_KERNEL`
   (mawk, else gawk, else awk; ``LC_ALL=C`` so lengths are bytes). The kernel prints raw
   sums keyed exactly like the Python scanners' keys, which Cockpit decodes with the same
   :class:`~cockpit.backends.stats.accesslog.Decoder`.
3. :data:`COMMIT` (sh) installs the new state — a compare-and-swap on its generation under
   the same ``flock`` the Python program takes, so the two engines can take turns.

The kernel's fast path and slow path mirror the Python ones rule for rule (split on single
spaces; quote checks; the slow path's lazy user field, strict time, escaped quotes in the
request, ``-`` sizes), so both engines count the same lines the same way; the tests run
both on the same logs and compare. One awk process per range: no parallelism.

The kernel also is the benchmark's "mawk/gawk doing the same sums" (``bench/accesslog.py``).
"""

from __future__ import annotations

from typing import Final

#: The aggregation in POSIX awk. Variables: ``fmt`` (cockpit | vhost_combined | combined),
#: ``total`` (bytes of input: a last line without newline is left out), ``seg`` (an id
#: echoed in the output). Output lines, tab-separated:
#: ``K seg field... lines bytes`` per raw key, then ``E seg lines malformed consumed``.
AWK_KERNEL: Final = r"""
BEGIN {
    FS = "[ ]"
    vh = (fmt != "combined"); ck = (fmt == "cockpit")
    if (total == "") total = -1
    TIMEPAT = "^ \\[[0-9][0-9]/[A-Za-z][A-Za-z][A-Za-z]/[0-9][0-9][0-9][0-9]:[0-9][0-9]:[0-9][0-9]:[0-9][0-9] [-+][0-9][0-9][0-9][0-9]\\] \"$"
    WS = "[\t\r\f\v]"
}
function add(key, size) {
    N[key]++; B[key] += size
    lastkey = key; lastsize = size; lastbad = 0
}
function bad1() { bad++; lastbad = 1; return 0 }
function slow(line,    i, t1, t3, rest, off, j, k, L, q, c, after, tail, tok, tm, zone, st) {
    i = index(line, " "); if (!i) return bad1()
    t1 = substr(line, 1, i - 1); rest = substr(line, i + 1)
    if (t1 ~ WS) return bad1()
    i = index(rest, " "); if (!i) return bad1()
    if (substr(rest, 1, i - 1) ~ WS) return bad1()
    rest = substr(rest, i + 1)
    if (vh) {
        i = index(rest, " "); if (!i) return bad1()
        t3 = substr(rest, 1, i - 1); rest = substr(rest, i + 1)
        if (t3 ~ WS) return bad1()
    }
    L = length(rest); off = 0
    while ((j = index(substr(rest, off + 1), " [")) > 0) {
        k = off + j; off = k
        if (substr(rest, k, 31) !~ TIMEPAT) continue
        q = k + 31
        while (q <= L) {
            c = substr(rest, q, 1)
            if (c == "\\") { q += 2; continue }
            if (c == "\"") break
            q++
        }
        if (q > L) continue
        after = substr(rest, q + 1)
        if (after !~ /^ [0-9][0-9][0-9] /) continue
        tail = substr(after, 6)
        if (!match(tail, /^([0-9]+|-)/)) continue
        c = substr(tail, RLENGTH + 1, 1)
        if (c != "" && c != " " && c !~ WS) continue
        tok = substr(tail, 1, RLENGTH)
        tm = substr(rest, k + 1, 18); zone = substr(rest, k + 23, 6); st = substr(after, 2, 3)
        if (!vh) add(tm SUBSEP zone SUBSEP st, tok == "-" ? 0 : tok + 0)
        else if (ck) add(t1 SUBSEP tm SUBSEP zone SUBSEP st SUBSEP t3, tok == "-" ? 0 : tok + 0)
        else add(t1 SUBSEP tm SUBSEP zone SUBSEP st, tok == "-" ? 0 : tok + 0)
        return 1
    }
    return bad1()
}
{
    len = length($0); consumed += len + 1; lines++
    if (vh) {
        f = $9; lf = length(f)
        if (substr($7, 1, 1) == "\"" && lf >= 2 && substr(f, lf, 1) == "\"" && substr(f, lf - 1, 1) != "\\" && $11 ~ /^[0-9]+$/) {
            t = $5
            if (ck) add($1 SUBSEP substr(t, 1, length(t) - 3) SUBSEP $6 SUBSEP $10 SUBSEP $3, $11 + 0)
            else add($1 SUBSEP substr(t, 1, length(t) - 3) SUBSEP $6 SUBSEP $10, $11 + 0)
            next
        }
    } else {
        f = $8; lf = length(f)
        if (substr($6, 1, 1) == "\"" && lf >= 2 && substr(f, lf, 1) == "\"" && substr(f, lf - 1, 1) != "\\" && $10 ~ /^[0-9]+$/) {
            t = $4
            add(substr(t, 1, length(t) - 3) SUBSEP $5 SUBSEP $9, $10 + 0)
            next
        }
    }
    slow($0)
}
END {
    if (lines > 0 && total >= 0 && consumed > total) {
        # the last line had no newline: a partial line, left for the next run
        lines--; consumed -= len + 1
        if (lastbad) bad--
        else { N[lastkey]--; B[lastkey] -= lastsize; if (N[lastkey] == 0) delete N[lastkey] }
    }
    for (k in N) {
        out = k; gsub(SUBSEP, "\t", out)
        printf "K\t%s\t%s\t%d\t%.0f\n", seg, out, N[k], B[k]
    }
    printf "E\t%s\t%d\t%d\t%.0f\n", seg, lines, bad + 0, consumed + 0
}
"""

#: Step 1. Args: STATE PATH...  Creates the state's directory; prints the state file in
#: base64 (``S<TAB>chunk`` lines, when there is one), then
#: per path ``P`` and per rotation candidate ``C`` lines:
#: ``kind<TAB>dev<TAB>ino<TAB>size<TAB>path<TAB>head-hex`` (``-`` fields: missing).
OBSERVE: Final = r"""
state=$1
shift
dir=$(dirname -- "$state")
[ -d "$dir" ] || mkdir -p -m 700 -- "$dir" || exit 1
if [ -r "$state" ]; then
    base64 < "$state" | while IFS= read -r chunk; do printf 'S\t%s\n' "$chunk"; done
fi
obs() {
    if [ -f "$2" ] && [ -r "$2" ]; then
        id=$(stat -L -c '%d	%i	%s' -- "$2") || return 0
        printf '%s\t%s\t%s\t' "$1" "$id" "$2"
        od -An -v -tx1 -N64 -- "$2" | tr -d ' \n'
        printf '\n'
    elif [ "$1" = P ]; then
        printf 'P\t-\t-\t-\t%s\t\n' "$2"
    fi
}
for p in "$@"; do
    obs P "$p"
    for c in "$p".* "$p"-*; do
        case $c in
            *.gz|*.bz2|*.xz|*.zst|*.lz4|*.lzma|*.Z|*.zip|*.br) continue ;;
        esac
        obs C "$c"
    done
done
"""

#: Step 2. Args: NICE, then groups of SEG FORMAT PATH DEV INO START END. Prints the
#: kernel's output per range, or ``X<TAB>seg<TAB>reason`` when a file cannot be read
#: as planned (gone, or another inode under that name now).
SCAN: Final = (
    r"""
nice_level=$1
shift
AWK=
for a in mawk gawk awk; do
    if command -v "$a" >/dev/null 2>&1; then AWK=$a; break; fi
done
if [ -z "$AWK" ]; then
    echo "no awk on this server" >&2
    exit 3
fi
printf 'A\t%s\n' "$AWK"
KERNEL='"""
    + AWK_KERNEL.replace("'", "'\"'\"'")
    + r"""'
while [ $# -ge 7 ]; do
    seg=$1 fmt=$2 path=$3 dev=$4 ino=$5 start=$6 end=$7
    shift 7
    {
        id=$(stat -L -c '%d %i' /dev/fd/3)
        if [ "$id" != "$dev $ino" ]; then
            printf 'X\t%s\tanother file is there now\n' "$seg"
        else
            tail -c +$((start + 1)) <&3 | head -c $((end - start)) |
                LC_ALL=C nice -n "$nice_level" "$AWK" -v seg="$seg" -v fmt="$fmt" -v total=$((end - start)) "$KERNEL"
        fi
    } 3<"$path" || printf 'X\t%s\tcannot open\n' "$seg"
done
"""
)

#: Step 3. Args: STATE NEW BASE_GEN. Installs NEW (already uploaded, generation
#: BASE_GEN + 1) as STATE if STATE is still at BASE_GEN; exit 5 if it moved on.
COMMIT: Final = r"""
state=$1 new=$2 base=$3
exec 9>>"$state.lock"
if ! flock -w 120 9; then
    rm -f -- "$new"
    echo "the state is locked by another run"
    exit 6
fi
gen=0
if [ -f "$state" ]; then
    gen=$(sed -n 's/^{"version": 1, "gen": \([0-9]*\),.*/\1/p' "$state")
    [ -n "$gen" ] || gen=unreadable
fi
if [ "$gen" != "$base" ]; then
    rm -f -- "$new"
    echo "the state moved on (generation $gen)"
    exit 5
fi
mv -f -- "$new" "$state" || exit 1
rm -f -- "$state.pending"
echo committed
"""

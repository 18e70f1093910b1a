"""Detached remote steps: work that survives a dropped connection and a dead worker.

A detached step runs on the target under ``setsid``, outside the SSH session, with
everything it needs to be found again kept in a run dir on the target::

    <server root>/run/tasks/<task id>/attempt            the newest attempt (a fence)
    <server root>/run/tasks/<task id>/a<A>-s<I>-<N>/     one detached command (N-th of
                                                        step I; "r<I>": its rollback)
        script   the command (a ``set --`` line with its arguments, then the script)
        started  the attempt that started it (it is never started twice)
        pid      the session leader (its pid is the process group and the session id)
        log      the command's stdout
        err      the command's stderr
        exit     the exit code, written (atomically) when the command ends
        cancelled  present once the engine killed it
    <server root>/run/locks/<target kind>-<target key>.lock   the per-target flock

Rules kept on the target, not only in the store:

- An attempt older than the one recorded in ``attempt`` starts nothing (a worker that
  lost its lease cannot run a step the new owner may also run).
- A command whose ``started`` marker exists is never started again: the launcher
  re-attaches to it instead. A non-idempotent step never runs twice.
- The command holds the target's ``flock`` while it runs: two tasks on one site never
  overlap on the target, whatever the store says.

The worker follows ``log`` and ``err`` with ``tail -F --pid``, each on its own channel
stream, so stdout and stderr lines stay apart. Each complete line reaches the worker
with an end mark (a record separator, :data:`EOL`): a line cut short by a dropped
connection has none and is not taken, so it is read again, whole, after re-attaching.
When the connection drops the worker re-attaches from the first line of each file it
has not taken yet and reads ``exit``. A command that ended without an exit file has
an unknown outcome, never success.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from cockpit.backends.transport import Line, Result, Stream, Transport, script_with_args

#: Exit code of the launcher when a newer attempt owns the task on the target.
EXIT_STALE_ATTEMPT: Final = 75

#: Ends every complete line the follower sends (ASCII record separator).
EOL: Final = "\x1e"
#: Starts every stderr line the follower sends (its own reports start with "@cockpit ").
ERR_PREFIX: Final = "|"

_LAUNCH: Final = r"""
taskdir=$1 stepdir=$2 lock=$3 attempt=$4 body=$5
umask 022
mkdir -p -- "$taskdir" "$(dirname -- "$lock")" || exit 70
exec 8>>"$taskdir/.fence"
flock 8 || exit 70
recorded=$(cat -- "$taskdir/attempt" 2>/dev/null || echo 0)
case $recorded in ''|*[!0-9]*) recorded=0 ;; esac
if [ "$recorded" -gt "$attempt" ]; then
    echo "attempt $attempt is stale: attempt $recorded owns this task on the target" >&2
    exit 75
fi
printf '%s\n' "$attempt" > "$taskdir/attempt.tmp" && mv -f -- "$taskdir/attempt.tmp" "$taskdir/attempt"
if [ -e "$stepdir/started" ]; then
    echo "attached $(cat -- "$stepdir/started")"
    exit 0
fi
mkdir -p -- "$stepdir" || exit 70
printf '%s' "$body" > "$stepdir/script" || exit 70
: > "$stepdir/log"
: > "$stepdir/err"
printf '%s\n' "$attempt" > "$stepdir/started"
setsid /bin/sh -c '
    dir=$1 lock=$2
    echo $$ > "$dir/pid.tmp" && mv -f -- "$dir/pid.tmp" "$dir/pid"
    exec 9>>"$lock"
    flock 9
    /bin/sh "$dir/script" >> "$dir/log" 2>> "$dir/err" < /dev/null 9>&-
    code=$?
    printf "%s\n" "$code" > "$dir/exit.tmp" && mv -f -- "$dir/exit.tmp" "$dir/exit"
' cockpit-step "$stepdir" "$lock" < /dev/null > /dev/null 2>&1 &
i=0
while [ ! -s "$stepdir/pid" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
echo "started"
"""

_FOLLOW: Final = r"""
dir=$1 skip_out=$2 skip_err=$3
if [ ! -e "$dir/started" ]; then echo "@cockpit none" >&2; exit 0; fi
i=0
while [ ! -s "$dir/pid" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
pid=$(cat -- "$dir/pid" 2>/dev/null)
case $pid in ''|*[!0-9]*) pid= ;; esac
eol=$(printf '\036')
# lines FILE SKIP PREFIX: the file's lines after the first SKIP, each complete line
# with PREFIX before it and the end mark after it (sed reads whole lines only)
lines() {
    if [ -n "$pid" ] && [ ! -e "$dir/exit" ]; then
        tail -n "+$(($2 + 1))" -s 0.3 -F --pid="$pid" -- "$1" 2>/dev/null
    else
        tail -n "+$(($2 + 1))" -- "$1" 2>/dev/null
    fi | sed -u "s/^/$3/; s/\$/$eol/"
}
lines "$dir/log" "$skip_out" "" &
lines "$dir/err" "$skip_err" "|" >&2
wait
# (a newline first: the command's last stderr line may have none)
if [ -e "$dir/exit" ]; then
    printf '\n@cockpit exit %s\n' "$(cat -- "$dir/exit")" >&2
elif [ -e "$dir/cancelled" ]; then
    printf '\n@cockpit cancelled\n' >&2
else
    printf '\n@cockpit lost\n' >&2
fi
"""

_KILL: Final = r"""
dir=$1
[ -e "$dir/started" ] || exit 0
: > "$dir/cancelled"
i=0
while [ ! -s "$dir/pid" ] && [ "$i" -lt 40 ]; do sleep 0.05; i=$((i + 1)); done
pid=$(cat -- "$dir/pid" 2>/dev/null)
case $pid in ''|*[!0-9]*) exit 0 ;; esac
kill -TERM "-$pid" 2>/dev/null
i=0
while [ "$i" -lt 30 ]; do
    left=$(ps -o stat= -s "$pid" 2>/dev/null | grep -vc '^Z')
    [ "${left:-0}" = 0 ] && exit 0
    sleep 0.1
    i=$((i + 1))
done
kill -KILL "-$pid" 2>/dev/null
pkill -KILL -s "$pid" 2>/dev/null
exit 0
"""

_CLEAN: Final = r"""
taskdir=$1
case $taskdir in */run/tasks/[0-9]*) rm -rf -- "$taskdir" ;; esac
"""

_SAFE_KEY: Final = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True, slots=True)
class RunDir:
    """Where one task keeps its records on its target."""

    root: str  # the server's root
    task_id: int
    lock_name: str  # "<target kind>-<target key>"

    @property
    def task_dir(self) -> str:
        return posixpath.join(self.root, "run", "tasks", str(self.task_id))

    @property
    def lock(self) -> str:
        return posixpath.join(
            self.root, "run", "locks", _SAFE_KEY.sub("_", self.lock_name) + ".lock"
        )

    def step_dir(self, run_attempt: int, idx: int, n: int, *, rollback: bool = False) -> str:
        """The run dir of the ``n``-th detached command of step ``idx`` (``a1-s0-0``), or
        of its rollback (``a1-r0-0``: a rollback never re-attaches to its step's run)."""
        return posixpath.join(self.task_dir, f"a{run_attempt}-{'r' if rollback else 's'}{idx}-{n}")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the target's record says about a detached command."""

    exit_code: int | None  # None: unknown
    state: str  # "exit", "cancelled", "lost" (ended without a record), "none" (never started)
    out_lines: int  # how many stdout lines were delivered in all (for a later re-attach)
    err_lines: int = 0  # how many stderr lines

    @property
    def lines(self) -> int:
        return self.out_lines + self.err_lines

    def result(self) -> Result:
        reason = {"lost": "the command ended without recording its exit code",
                  "none": "the command never started on the target",
                  "cancelled": "the command was cancelled"}.get(self.state, "")  # fmt: skip
        return Result(self.exit_code, reason=reason)


class StaleAttempt(Exception):
    """A newer attempt owns this task on the target."""


async def launch(
    transport: Transport,
    run: RunDir,
    step_dir: str,
    attempt: int,
    script: str,
    args: Sequence[str],
    *,
    sudo: bool,
) -> bool:
    """Start ``script`` detached, unless it already started; True if it started now."""
    body = script_with_args(script, args).decode("utf-8")
    result = await transport.run_script(
        _LAUNCH, [run.task_dir, step_dir, run.lock, str(attempt), body], sudo=sudo, capture=True
    )
    if result.unknown:
        # Cut off mid-launch: it may have started. Launching again is safe (it attaches).
        raise Dropped(result.reason or "the connection dropped while starting the command")
    if result.exit_code == EXIT_STALE_ATTEMPT:
        raise StaleAttempt(" ".join(result.stderr) or "a newer attempt owns this task")
    if not result.ok:
        why = result.reason or " ".join(result.stderr)[-300:] or f"exit {result.exit_code}"
        raise LaunchError(f"cannot start the detached command on the target: {why}")
    return bool(result.stdout) and result.stdout[-1] == "started"


class LaunchError(Exception):
    """The launcher itself failed (no run dir, no flock…)."""


async def follow(
    transport: Transport,
    step_dir: str,
    *,
    skip: int,
    on_line: Callable[[Line], None],
    sudo: bool,
    skip_err: int = 0,
    delivered: list[int] | None = None,
) -> Outcome:
    """Stream the command's stdout from line ``skip`` and its stderr from line
    ``skip_err`` until it ends; then its outcome.

    Only complete lines reach ``on_line`` (with their stream). ``delivered``, when
    given, is ``[stdout lines, stderr lines]`` delivered in all, updated as lines come,
    so a caller knows where to re-attach even when this raises. Raises
    :class:`Dropped` (or the transport's error) when the connection drops.
    """
    counts = delivered if delivered is not None else [skip, skip_err]
    counts[0], counts[1] = skip, skip_err
    marker: list[str] = []
    eol = EOL

    def line(item: Line) -> None:
        text = item.text
        if item.stream is Stream.STDERR:
            if not text.startswith(ERR_PREFIX):
                if text.startswith("@cockpit "):
                    marker.append(text)
                return  # (nothing else is expected on the follower's stderr)
            text = text[1:]
            index, stream = 1, Stream.STDERR
        else:
            index, stream = 0, Stream.STDOUT
        if text.endswith(eol):
            text = text[:-1]
        elif not item.truncated:
            return  # cut off by a dropped connection: read again after re-attaching
        counts[index] += 1
        on_line(Line(stream, text, item.truncated))

    result = await transport.run_script(
        _FOLLOW, [step_dir, str(skip), str(skip_err)], sudo=sudo, on_line=line
    )
    if result.unknown or not marker:
        # The follower itself was cut off: the command may well still run.
        raise Dropped(result.reason or "the connection dropped while following the log")
    words = marker[-1].split()
    if words[1] == "exit" and len(words) > 2 and words[2].isdigit():
        return Outcome(int(words[2]), "exit", counts[0], counts[1])
    return Outcome(None, words[1], counts[0], counts[1])


class Dropped(Exception):
    """The follower was cut off before the command's end: re-attach later."""


async def kill(transport: Transport, step_dir: str, *, sudo: bool) -> None:
    """Kill the command's whole session (TERM, then KILL after 3 s)."""
    await transport.run_script(_KILL, [step_dir], sudo=sudo, timeout=20)


async def clean(transport: Transport, run: RunDir, *, sudo: bool) -> None:
    """Remove a finished task's run dir from the target."""
    await transport.run_script(_CLEAN, [run.task_dir], sudo=sudo, timeout=30)

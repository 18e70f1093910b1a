"""Task kinds that exercise the engine (registered only in tests and the bench).

Every remote script writes what it did under the server's root, so a test reads the
target's own account of what ran, how often and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cockpit.backends.transport import ConnectError
from cockpit.engine import RemoteStep, Step, StepFailed, TargetKind, TaskContext, TaskKind

# A detached step that records its run (once per execution) and sleeps.
_MARK = r"""
root=$1 task=$2 seconds=$3
mkdir -p "$root/marks"
echo "run $task $$" >> "$root/marks/$task"
echo "marked task $task"
sleep "$seconds"
echo "done $task" >> "$root/marks/$task"
echo "slept $seconds s"
"""


def _mark_args(ctx: TaskContext) -> list[str]:
    assert ctx.server is not None
    return [ctx.server.root, str(ctx.task.id), str(ctx.args.get("seconds", 0))]


def _mark_kind(name: str, idempotent: bool) -> TaskKind:
    return TaskKind(
        name=name,
        target=TargetKind.SITE,
        idempotent=idempotent,
        description="record a run on the target, then sleep (args: seconds)",
        steps=(RemoteStep("mark", _MARK, args=_mark_args),),
    )


TEST_MARK = _mark_kind("test.mark", idempotent=False)
TEST_MARK_IDEMPOTENT = _mark_kind("test.mark-again", idempotent=True)

# A detached step that sleeps and records its own pid, so a test can look for it.
_SLEEP = r"""
root=$1 task=$2 seconds=$3 code=$4
mkdir -p "$root/pids"
echo $$ > "$root/pids/$task.sh"
sleep "$seconds" &
echo $! > "$root/pids/$task.sleep"
echo "sleeping $seconds s"
wait
echo "woke up"
exit "$code"
"""


def _sleep_args(ctx: TaskContext) -> list[str]:
    assert ctx.server is not None
    return [
        ctx.server.root,
        str(ctx.task.id),
        str(ctx.args.get("seconds", 1)),
        str(ctx.args.get("code", 0)),
    ]


TEST_SLEEP = TaskKind(
    name="test.sleep",
    target=TargetKind.SITE,
    idempotent=False,
    description="sleep detached on the target (args: seconds, code)",
    steps=(RemoteStep("sleep", _SLEEP, args=_sleep_args),),
)


async def _inline_sleep(ctx: TaskContext) -> None:
    assert ctx.server is not None
    await ctx.sh(
        'mkdir -p "$1/pids"; echo $$ > "$1/pids/$2.inline"; sleep "$3"',
        [ctx.server.root, str(ctx.task.id), str(ctx.args.get("seconds", 1))],
    )


TEST_INLINE_SLEEP = TaskKind(
    name="test.inline-sleep",
    target=TargetKind.SITE,
    idempotent=True,
    description="sleep through the connection (args: seconds)",
    steps=(Step("sleep", _inline_sleep),),
)


# Three steps with rollbacks; args.fail_at names the step that fails.
def _recipe_step(name: str) -> Step:
    async def run(ctx: TaskContext) -> None:
        assert ctx.server is not None
        await ctx.sh('echo "run $2" >> "$1/journal"', [ctx.server.root, name])
        if ctx.args.get("fail_at") == name:
            raise StepFailed(f"{name} failed on purpose")

    async def rollback(ctx: TaskContext) -> None:
        assert ctx.server is not None
        await ctx.sh('echo "rollback $2" >> "$1/journal"', [ctx.server.root, name])

    return Step(name, run, rollback)


TEST_RECIPE = TaskKind(
    name="test.recipe",
    target=TargetKind.SITE,
    idempotent=False,
    description="three steps with rollbacks (args: fail_at)",
    steps=(_recipe_step("first"), _recipe_step("second"), _recipe_step("third")),
)


# Proves mutual exclusion per site on the target itself: each run holds a mkdir marker
# for its site while it appends start/end lines to a flock-guarded log.
_OVERLAP = r"""
root=$1 site=$2 task=$3
mkdir -p "$root/busy"
if ! mkdir "$root/busy/$site" 2>/dev/null; then
    flock "$root/overlap.lock" sh -c 'echo "OVERLAP $1 $2" >> "$3/overlap.log"' x "$site" "$task" "$root"
    exit 1
fi
flock "$root/overlap.lock" sh -c 'echo "start $1 $2" >> "$3/overlap.log"' x "$site" "$task" "$root"
sleep 0.02
flock "$root/overlap.lock" sh -c 'echo "end $1 $2" >> "$3/overlap.log"' x "$site" "$task" "$root"
rmdir "$root/busy/$site"
"""


async def _overlap(ctx: TaskContext) -> None:
    assert ctx.server is not None
    await ctx.sh(_OVERLAP, [ctx.server.root, ctx.task.target.key, str(ctx.task.id)])


TEST_OVERLAP = TaskKind(
    name="test.overlap",
    target=TargetKind.SITE,
    idempotent=True,
    description="check on the target that no two tasks of one site overlap",
    steps=(Step("check", _overlap),),
)


async def _flaky(ctx: TaskContext) -> None:
    if ctx.task.attempt < int(ctx.args.get("succeed_at", 2)):
        raise ConnectError(f"refused on attempt {ctx.task.attempt} (on purpose)")
    ctx.log(f"reached on attempt {ctx.task.attempt}")


TEST_FLAKY = TaskKind(
    name="test.flaky",
    target=TargetKind.SITE,
    idempotent=True,
    description="transient failures until attempt args.succeed_at",
    steps=(Step("reach", _flaky),),
    max_attempts=3,
)


async def _auth_fail(ctx: TaskContext) -> None:
    from cockpit.backends.transport import AuthError

    raise AuthError("refused our key (on purpose)")


TEST_AUTH_FAIL = TaskKind(
    name="test.auth-fail",
    target=TargetKind.SITE,
    idempotent=True,
    description="an authentication failure: never retried",
    steps=(Step("reach", _auth_fail),),
    max_attempts=5,
)


async def _secret(ctx: TaskContext) -> None:
    password = ctx.secret(str(ctx.args.get("value_from_vault", "")))
    await ctx.sh('echo "connecting with $1"; echo "bad password $1" >&2', [password])
    if ctx.args.get("fail"):
        raise StepFailed(f"login refused with {password}")


TEST_SECRET = TaskKind(
    name="test.secret",
    target=TargetKind.SITE,
    idempotent=True,
    description="print a secret (it must reach the log as ***)",
    steps=(Step("leak", _secret),),
)


async def _echo(ctx: TaskContext) -> None:
    await ctx.sh("echo ok")


TEST_ECHO = TaskKind(
    name="test.echo",
    target=TargetKind.SITE,
    idempotent=True,
    description="one trivial remote command",
    steps=(Step("echo", _echo),),
)


def _lines_args(args: Mapping[str, Any]) -> list[RemoteStep | Step]:
    return [RemoteStep("lines", 'seq 1 "$1"', args=lambda ctx: [str(ctx.args.get("n", 10))])]


TEST_LINES = TaskKind(
    name="test.lines",
    target=TargetKind.SITE,
    idempotent=True,
    description="print args.n numbered lines, detached",
    steps=_lines_args,
)

# Interleaved stdout and stderr lines, each stdout line written in two halves with a
# pause between them (a follower that passes on half a line is caught), and a last
# line on each stream without its newline.
_TICKS = r"""
n=$1 pause=$2
i=1
while [ "$i" -le "$n" ]; do
    printf 'out %s' "$i"
    sleep "$pause"
    echo " whole"
    echo "err $i" >&2
    i=$((i + 1))
done
printf 'last out'
printf 'last err' >&2
"""


def _ticks_args(ctx: TaskContext) -> list[str]:
    return [str(ctx.args.get("n", 5)), str(ctx.args.get("pause", 0))]


TEST_TICKS = TaskKind(
    name="test.ticks",
    target=TargetKind.SITE,
    idempotent=False,
    description="numbered lines on stdout and stderr, detached (args: n, pause)",
    steps=(RemoteStep("ticks", _TICKS, args=_ticks_args),),
)


def ticks_expected(n: int) -> tuple[list[str], list[str]]:
    """The stdout and stderr lines of a test.ticks run of ``n``."""
    out = [f"out {i} whole" for i in range(1, n + 1)] + ["last out"]
    err = [f"err {i}" for i in range(1, n + 1)] + ["last err"]
    return out, err


# A detached step that creates a file and a rollback that removes it, detached too;
# a second step fails, so the rollback must run (never re-attach to the step's run).
async def _remove_made(ctx: TaskContext) -> None:
    assert ctx.server is not None
    result = await ctx.detached('rm -- "$1/made" && echo "removed $1/made"', [ctx.server.root])
    if result.exit_code != 0:
        raise StepFailed(f"rollback exited with {result.exit_code}")


async def _fail(ctx: TaskContext) -> None:
    raise StepFailed("the second step fails on purpose")


TEST_REMOTE_ROLLBACK = TaskKind(
    name="test.remote-rollback",
    target=TargetKind.SITE,
    idempotent=False,
    description="a detached step rolled back by a detached command",
    steps=(
        RemoteStep(
            "make",
            'echo made > "$1/made"; echo "made $1/made"',
            args=lambda ctx: [ctx.server.root if ctx.server else ""],
            rollback=_remove_made,
        ),
        Step("fail", _fail),
    ),
)


async def _platform_echo(ctx: TaskContext) -> None:
    await ctx.sh("echo platform ok")


TEST_PLATFORM_ECHO = TaskKind(
    name="test.platform-echo",
    target=TargetKind.PLATFORM,
    idempotent=True,
    description="one trivial remote command on a platform",
    steps=(Step("echo", _platform_echo),),
)


async def _raise(ctx: TaskContext) -> None:
    from cockpit.backends.transport import HostKeyError
    from cockpit.model import ValidationError

    error = ctx.args.get("error")
    if error == "hostkey":
        raise HostKeyError("the host key changed (on purpose)")
    if error == "validation":
        raise ValidationError("domain", "is not a valid name (on purpose)", "-bad-")
    if error == "config":
        raise StepFailed("nginx -t: the new config fails its test (on purpose)")
    raise ConnectError("connection timed out (on purpose)")


TEST_RAISE = TaskKind(
    name="test.raise",
    target=TargetKind.SITE,
    idempotent=True,
    description="fail with args.error: hostkey, validation, config or connect",
    steps=(Step("fail", _raise),),
    max_attempts=3,
)

# A detached step with a rollback, then a long detached sleep to cancel.
TEST_CANCEL_ROLLBACK = TaskKind(
    name="test.cancel-rollback",
    target=TargetKind.SITE,
    idempotent=False,
    description="make a file (rolled back), then sleep detached (args: seconds)",
    steps=(TEST_REMOTE_ROLLBACK.plan({})[0], RemoteStep("sleep", _SLEEP, args=_sleep_args)),
)

TEST_KINDS = (
    TEST_PLATFORM_ECHO,
    TEST_RAISE,
    TEST_CANCEL_ROLLBACK,
    TEST_TICKS,
    TEST_REMOTE_ROLLBACK,
    TEST_MARK,
    TEST_MARK_IDEMPOTENT,
    TEST_SLEEP,
    TEST_INLINE_SLEEP,
    TEST_RECIPE,
    TEST_OVERLAP,
    TEST_FLAKY,
    TEST_AUTH_FAIL,
    TEST_SECRET,
    TEST_ECHO,
    TEST_LINES,
)


def make_registry() -> Any:
    from cockpit.engine import Registry

    registry = Registry.default()
    for kind in TEST_KINDS:
        registry.add(kind)
    return registry

"""The detached-command records on a target (cockpit.engine.remote), on this machine:
the per-target flock, the attempt fence, a command started once, separate streams."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from enginekit import local_config, local_server

from cockpit.backends import transport_for
from cockpit.backends.transport import Line, Transport
from cockpit.engine import remote

# Appends "start T" and "end T" (T: nanoseconds) around a pause to a shared file.
_SPAN = r"""
out=$1 pause=$2
echo "start $(date +%s%N)" >> "$out"
sleep "$pause"
echo "end $(date +%s%N)" >> "$out"
echo "ran"
"""


@pytest.fixture
def target(tmp_path: Path) -> tuple[Transport, Path]:
    root = tmp_path / "root"
    server = local_server("here", root)
    return transport_for(server, local_config(tmp_path / "cockpit.db")), root


async def _run(
    transport: Transport, run: remote.RunDir, step_dir: str, attempt: int, script: str,
    args: list[str],
) -> tuple[bool, remote.Outcome, list[Line]]:  # fmt: skip
    lines: list[Line] = []
    started = await remote.launch(transport, run, step_dir, attempt, script, args, sudo=False)
    outcome = await remote.follow(transport, step_dir, skip=0, on_line=lines.append, sudo=False)
    return started, outcome, lines


async def test_two_tasks_on_one_target_never_overlap_on_it(target: tuple[Transport, Path]) -> None:
    """Whatever the store says, the target's flock runs one command of a target at a time
    (and commands of other targets alongside)."""
    transport, root = target
    spans = root / "spans"
    other = root / "other-spans"
    runs = [remote.RunDir(str(root), task_id, "site-a.example") for task_id in (1, 2, 3)]
    elsewhere = remote.RunDir(str(root), 4, "site-b.example")
    jobs = [
        _run(transport, run, run.step_dir(1, 0, 0), 1, _SPAN, [str(spans), "0.4"]) for run in runs
    ]
    jobs.append(
        _run(transport, elsewhere, elsewhere.step_dir(1, 0, 0), 1, _SPAN, [str(other), "0.4"])
    )
    results = await asyncio.gather(*jobs)
    assert all(started and outcome.exit_code == 0 for started, outcome, _ in results)
    events = [line.split() for line in spans.read_text().splitlines()]
    assert [kind for kind, _ in events] == ["start", "end"] * 3, "one at a time"
    times = [int(t) for _, t in events]
    assert times == sorted(times)
    # the other target's command ran while the first target's ran
    [(_, other_start), (_, other_end)] = [line.split() for line in other.read_text().splitlines()]
    assert int(other_start) < times[-1] and int(other_end) > times[0]


async def test_a_stale_attempt_starts_nothing(target: tuple[Transport, Path]) -> None:
    transport, root = target
    run = remote.RunDir(str(root), 7, "site-a.example")
    marker = root / "ran"
    script = 'echo "$1" >> "$2"'
    started, outcome, _ = await _run(
        transport, run, run.step_dir(2, 0, 0), 2, script, ["attempt 2", str(marker)]
    )
    assert started and outcome.exit_code == 0
    with pytest.raises(remote.StaleAttempt, match="attempt 2 owns"):
        await remote.launch(
            transport, run, run.step_dir(1, 0, 0), 1, script, ["attempt 1", str(marker)],
            sudo=False,
        )  # fmt: skip
    assert marker.read_text() == "attempt 2\n"


async def test_a_command_is_started_once_and_re_attached_to(
    target: tuple[Transport, Path],
) -> None:
    transport, root = target
    run = remote.RunDir(str(root), 8, "site-a.example")
    step_dir = run.step_dir(1, 0, 0)
    marker = root / "ran"
    script = 'echo once >> "$1"; echo out; echo err >&2; exit 3'
    first = await _run(transport, run, step_dir, 1, script, [str(marker)])
    again = await _run(transport, run, step_dir, 2, script, [str(marker)])  # a new attempt
    assert first[0] is True and again[0] is False
    assert marker.read_text() == "once\n"
    for _, outcome, lines in (first, again):
        assert outcome.exit_code == 3 and (outcome.out_lines, outcome.err_lines) == (1, 1)
        got = sorted((line.stream.value, line.text) for line in lines)
        assert got == [("stderr", "err"), ("stdout", "out")]
    # re-attached from given offsets: nothing delivered twice
    rest: list[Line] = []
    outcome = await remote.follow(
        transport, step_dir, skip=1, skip_err=1, on_line=rest.append, sudo=False
    )
    assert rest == [] and outcome.exit_code == 3
    names = sorted(p.name for p in (root / "run" / "tasks" / "8" / "a1-s0-0").iterdir())
    assert names == ["err", "exit", "log", "pid", "script", "started"]

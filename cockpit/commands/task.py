"""`cockpit task`: queue tasks, watch them, cancel and retry them, read their logs.

Exit codes (besides the CLI's 2 = bad input or no such task/kind/target, 3 = store):

- ``task run`` without ``--wait``: 0 once queued. With ``--wait``: 0 when every task
  succeeded, 1 when one failed, 4 when none failed but one ended cancelled,
  interrupted or of unknown outcome.
- ``task cancel``: 0 when the task was cancelled (queued) or its cancel was asked
  (running; ``--wait`` waits for the end), 1 when it had already ended.
- ``task retry``: 0 with the new task's id printed, 1 when the task has not ended.
- ``task log --follow``: 0 when the task succeeded, else as ``run --wait``.

Every text that came from a server or the store goes through the sanitiser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cockpit.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, loaded, main, pass_context, run
from cockpit.cli import with_cockpit as _with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.engine import Engine, LogLine, Param, Task

#: ``task run --wait``: no task failed, but one did not succeed either.
EXIT_INCOMPLETE = 4

_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted", "unknown")


def engine_of(cockpit: Cockpit) -> Engine:
    """The task engine of an open Cockpit (``cockpit.tasks`` when the core provides it)."""
    from cockpit.engine import Engine

    engine = getattr(cockpit, "tasks", None)
    if isinstance(engine, Engine):
        return engine
    return Engine(cockpit.db, cockpit.config)


def parse_args(pairs: Sequence[str], params: Sequence[Param] = ()) -> dict[str, Any]:
    """``key=value`` pairs. A key the kind declares (``params``) is read as its param's
    kind: text stays text (``title=2024``), ``yes``/``no`` is a yes/no, digits a number.
    Any other value that reads as JSON (3, true, [1,2]) is taken as such."""
    declared = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            fail(f"--arg takes KEY=VALUE, not {pair!r}", EXIT_USAGE)
        if key in declared:
            out[key] = declared[key].parse(value)
            continue
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _clock(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")


def _duration(task: Task) -> str:
    if task.started_at is None:
        return "-"
    end = task.finished_at if task.finished_at is not None else time.time()
    seconds = max(0.0, end - task.started_at)
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def columns(*fields: object) -> str:
    """One output line: each field sanitised (no tabs or controls left), tab-separated."""
    from cockpit.textsafe import sanitize_line

    return "\t".join(sanitize_line(str(field)).replace("\t", " ") for field in fields)


def _row(task: Task) -> str:
    return columns(
        task.id,
        task.state,
        task.kind,
        task.target,
        task.attempt,
        _duration(task),
        task.result[:120],
    )


def _print_line(line: LogLine) -> None:
    from cockpit.textsafe import sanitize_line

    mark = {"stdout": " ", "stderr": "!", "engine": "#"}.get(line.stream, " ")
    stamp = datetime.fromtimestamp(line.at).strftime("%H:%M:%S")
    click.echo(f"{stamp} {mark} {sanitize_line(line.text)}")


def _exit_for(tasks: Sequence[Task]) -> int:
    from cockpit.engine import TaskState

    states = {t.state for t in tasks}
    if TaskState.FAILED in states:
        return EXIT_FAILED
    if states - {TaskState.SUCCEEDED}:
        return EXIT_INCOMPLETE
    return 0


def _with_engine(context: Context, body: Any) -> Any:
    """Run ``body(engine)`` with the store open; no such task/kind is exit 2."""
    from cockpit.engine import TaskError
    from cockpit.store import NotFoundError

    async def call(cockpit: Cockpit) -> Any:
        try:
            return await body(engine_of(cockpit))
        except NotFoundError as exc:
            fail(str(exc), EXIT_USAGE)
        except TaskError as exc:
            fail(str(exc), EXIT_FAILED)

    return run(_with_cockpit(loaded(context), call))


@main.group()
def task() -> None:
    """Tasks: queue them, watch them, cancel and retry them, read their logs."""


@task.command("kinds")
@pass_context
def task_kinds(context: Context) -> None:
    """List the task kinds: name, target, idempotent or not, what they do.

    Under each kind, one indented line per argument it takes (``--arg NAME=VALUE``):
    its name, required or optional, what it is (and its choices), what it means.
    """
    from cockpit.engine import Registry

    for kind in Registry.default():
        info = kind.info()
        again = "idempotent" if info.idempotent else "once-only"
        click.echo(columns(info.name, info.target, again, info.description))
        for param in info.params:
            what = "|".join(param.choices) if param.choices else param.kind
            need = "required" if param.required else "optional"
            click.echo(columns(f"  {param.name}", need, what, param.help))


@task.command("run")
@click.argument("kind")
@click.argument("targets", nargs=-1, required=True)
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="A task argument.")
@click.option("--wait", is_flag=True, help="Wait for the tasks to end; the exit code tells.")
@click.option("--no-start", is_flag=True, help="Do not start a worker when none runs.")
@click.option("--label", default="", help="A label for the batch.")
@click.option("--force", is_flag=True, help="The same as --arg force=true (site.delete).")
@pass_context
def task_run(
    context: Context,
    kind: str,
    targets: tuple[str, ...],
    args: tuple[str, ...],
    wait: bool,
    no_start: bool,
    label: str,
    force: bool,
) -> None:
    """Queue KIND on each TARGET (site domains, platform or server names) as one batch.

    A worker is started (detached) when none runs. With --wait, prints each task's
    outcome and exits 0 (all succeeded), 1 (one failed) or 4 (one cancelled,
    interrupted or unknown).
    """
    parse_args(args)  # malformed pairs are refused before the store is opened

    async def body(engine: Engine) -> int:
        values = parse_args(args, engine.registry.get(kind).params)
        if force:
            values["force"] = True
        batch = await engine.queue(kind, targets, values, label=label, start_worker=not no_start)
        first, last = batch.task_ids[0], batch.task_ids[-1]
        span = f"task {first}" if first == last else f"tasks {first}-{last}"
        click.echo(f"batch {batch.id}: queued {len(batch.task_ids)} {kind} ({span})")
        if not wait:
            return 0
        tasks = await engine.wait(batch.task_ids)
        for t in tasks:
            click.echo(_row(t))
        return _exit_for(tasks)

    raise SystemExit(_with_engine(context, body))


@task.command("list")
@click.option("--state", "states", multiple=True, type=click.Choice(_STATES))
@click.option("--batch", type=int, help="Only the tasks of this batch.")
@click.option("--target", help="Only the tasks of this site, platform or server.")
@click.option("--kind", help="Only tasks of this kind.")
@click.option("--limit", type=int, default=50, show_default=True)
@pass_context
def task_list(
    context: Context,
    states: tuple[str, ...],
    batch: int | None,
    target: str | None,
    kind: str | None,
    limit: int,
) -> None:
    """List tasks, newest first: id, state, kind, target, attempt, duration, result."""

    async def body(engine: Engine) -> None:
        for t in await engine.tasks(
            state=list(states) or None, batch=batch, target=target, kind=kind, limit=limit
        ):
            click.echo(_row(t))

    _with_engine(context, body)


@task.command("show")
@click.argument("task_id", type=int)
@pass_context
def task_show(context: Context, task_id: int) -> None:
    """Show one task: its fields and the steps of each attempt."""
    from cockpit.store import NotFoundError
    from cockpit.textsafe import sanitize

    async def body(engine: Engine) -> None:
        t = await engine.task(task_id)
        if t is None:
            raise NotFoundError(f"no task {task_id}")
        fields = [
            ("id", t.id),
            ("kind", t.kind),
            ("target", t.target),
            ("server", t.server or "-"),
            ("state", t.state),
            ("result", t.result or "-"),
            ("attempt", f"{t.attempt} of {t.max_attempts}"),
            ("idempotent", "yes" if t.idempotent else "no"),
            ("priority", t.priority),
            ("batch", t.batch_id or "-"),
            ("retry of", t.retry_of or "-"),
            ("queued by", t.queued_by),
            ("queued", _clock(t.created_at)),
            ("started", _clock(t.started_at)),
            ("finished", _clock(t.finished_at)),
            ("duration", _duration(t)),
            ("worker", t.worker or "-"),
            ("args", json.dumps(dict(t.args), sort_keys=True)),
        ]
        for name, value in fields:
            click.echo(sanitize(f"{name + ':':<12}{value}"))
        steps = await engine.steps(task_id)
        if steps:
            click.echo("steps:")
        for s in steps:
            took = "" if s.finished_at is None else f" {s.finished_at - s.started_at:.2f}s"
            detail = f"  {s.detail}" if s.detail else ""
            click.echo(
                sanitize(f"  attempt {s.attempt} #{s.idx + 1} {s.name}: {s.state}{took}{detail}")
            )

    _with_engine(context, body)


@task.command("log")
@click.argument("task_id", type=int)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until it ends.")
@click.option("--tail", type=int, help="Only the last N lines (then follow, with -f).")
@pass_context
def task_log(context: Context, task_id: int, follow: bool, tail: int | None) -> None:
    """Print a task's log (stdout lines plain, '!' stderr, '#' the engine's own lines)."""
    from cockpit.store import NotFoundError

    async def body(engine: Engine) -> int:
        if await engine.task(task_id) is None:
            raise NotFoundError(f"no task {task_id}")
        after = 0
        if tail is not None:
            lines = await engine.log_tail(task_id, max(0, tail))
            for line in lines:
                _print_line(line)
            after = lines[-1].seq if lines else 0
        elif not follow:
            while batch := await engine.log(task_id, after=after):
                for line in batch:
                    _print_line(line)
                after = batch[-1].seq
            return 0
        if not follow:
            return 0
        async for batch in engine.follow_log(task_id, after=after):
            for line in batch:
                _print_line(line)
        ended = await engine.task(task_id)
        return _exit_for([ended]) if ended is not None else 0

    raise SystemExit(_with_engine(context, body))


@task.command("cancel")
@click.argument("task_id", type=int)
@click.option("--wait", is_flag=True, help="Wait until a running task has ended.")
@pass_context
def task_cancel(context: Context, task_id: int, wait: bool) -> None:
    """Cancel a task: a queued one leaves the queue; a running one is killed on its
    target, rolled back and ends cancelled."""

    async def body(engine: Engine) -> None:
        t = await engine.cancel(task_id)
        if t.state == "running":
            click.echo(f"task {task_id}: cancel requested")
            if wait:
                [t] = await engine.wait([task_id])
        click.echo(_row(t))

    _with_engine(context, body)


@task.command("retry")
@click.argument("task_id", type=int)
@pass_context
def task_retry(context: Context, task_id: int) -> None:
    """Queue an ended task again as a new task (same kind, target, args and batch)."""

    async def body(engine: Engine) -> None:
        t = await engine.retry(task_id)
        await _start_worker(engine)
        click.echo(f"task {t.id}: queued (retry of {task_id})")

    _with_engine(context, body)


async def _start_worker(engine: Engine) -> None:
    import asyncio

    await asyncio.to_thread(engine.start_worker)

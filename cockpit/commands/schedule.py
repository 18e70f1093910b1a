"""`cockpit schedule`: recurring tasks in cron syntax (5 fields, local time).

Targets are keys (domains, names) or selectors: ``*`` (every target of the kind's
type), ``client=NAME``, ``server=NAME``, ``platform=NAME``. Examples::

    cockpit schedule add nightly-backup '30 2 * * *' site.backup client=acme
    cockpit schedule add hourly-ping '0 * * * *' server.ping '*'
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cockpit.cli import EXIT_USAGE, Context, fail, loaded, main, pass_context, run, with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.engine import Engine


def _call(context: Context, body: Any) -> Any:
    from cockpit.commands.task import engine_of
    from cockpit.store import NotFoundError

    async def call(cockpit: Cockpit) -> Any:
        try:
            return await body(engine_of(cockpit))
        except NotFoundError as exc:
            fail(str(exc), EXIT_USAGE)

    return run(with_cockpit(loaded(context), call))


def _when(at: float | None) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M") if at else "-"


@main.group()
def schedule() -> None:
    """Recurring tasks: list, add, remove, pause, resume."""


@schedule.command("list")
@pass_context
def schedule_list(context: Context) -> None:
    """List schedules: name, cron, kind, targets, state, next and last run."""
    from cockpit.commands.task import columns

    async def body(engine: Engine) -> None:
        for s in await engine.schedules():
            state = "paused" if s.paused else "active"
            click.echo(
                columns(
                    s.name,
                    s.cron,
                    s.kind,
                    " ".join(s.targets),
                    state,
                    f"next {_when(s.next_run)}",
                    f"last {_when(s.last_run)}",
                )
            )

    _call(context, body)


@schedule.command("add")
@click.argument("name")
@click.argument("cron")
@click.argument("kind")
@click.argument("targets", nargs=-1, required=True)
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="A task argument.")
@pass_context
def schedule_add(
    context: Context,
    name: str,
    cron: str,
    kind: str,
    targets: tuple[str, ...],
    args: tuple[str, ...],
) -> None:
    """Add schedule NAME: queue KIND on TARGETS whenever CRON says."""
    from cockpit.commands.task import parse_args

    parse_args(args)  # malformed pairs are refused before the store is opened

    async def body(engine: Engine) -> None:
        # typed by the kind's declared params, as `cockpit task run --arg` reads them
        values = parse_args(args, engine.registry.get(kind).params)
        s = await engine.add_schedule(name, cron, kind, targets, values)
        click.echo(f"schedule {s.name}: next run {_when(s.next_run)}")

    _call(context, body)


@schedule.command("remove")
@click.argument("name")
@pass_context
def schedule_remove(context: Context, name: str) -> None:
    """Remove a schedule (tasks it queued stay)."""

    async def body(engine: Engine) -> None:
        await engine.remove_schedule(name)
        click.echo(f"schedule {name}: removed")

    _call(context, body)


@schedule.command("pause")
@click.argument("name")
@pass_context
def schedule_pause(context: Context, name: str) -> None:
    """Pause a schedule: it queues nothing until resumed."""

    async def body(engine: Engine) -> None:
        await engine.pause_schedule(name, True)
        click.echo(f"schedule {name}: paused")

    _call(context, body)


@schedule.command("resume")
@click.argument("name")
@pass_context
def schedule_resume(context: Context, name: str) -> None:
    """Resume a paused schedule from its next cron time."""

    async def body(engine: Engine) -> None:
        s = await engine.pause_schedule(name, False)
        click.echo(f"schedule {name}: next run {_when(s.next_run)}")

    _call(context, body)

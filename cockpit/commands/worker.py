"""`cockpit worker`: the task runner (foreground), and the detached one's control.

``cockpit worker`` runs a worker in the foreground until SIGTERM or Ctrl-C (exits 0
at once when one already runs for this store). ``start`` starts one detached;
``status`` exits 0 when one runs, 1 when none does; ``stop`` asks it to stop and waits.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import click

from cockpit.cli import EXIT_FAILED, Context, fail, loaded, main, pass_context


@main.group(invoke_without_command=True)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the task worker in the foreground (or: start, status, stop)."""
    if ctx.invoked_subcommand is not None:
        return
    from cockpit import procstart
    from cockpit.backends import ssh as _ssh  # noqa: F401  (what the worker loads to start)
    from cockpit.engine.daemon import serve
    from cockpit.store import StoreError

    config = loaded(ctx.obj)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    procstart.imports_done()
    try:
        raise SystemExit(asyncio.run(serve(config)))
    except StoreError as exc:
        fail(str(exc), 3)


def _describe(context: Context) -> tuple[bool, str]:
    from cockpit.engine.daemon import status

    current = status(loaded(context))
    if not current.running:
        return False, f"no worker runs for this store (its log: {current.log})"
    since = (
        datetime.fromtimestamp(current.started_at).strftime("%Y-%m-%d %H:%M:%S")
        if current.started_at
        else "?"
    )
    return True, f"worker {current.worker_id} (pid {current.pid}) runs since {since}"


@worker.command("status")
@pass_context
def worker_status(context: Context) -> None:
    """Whether a worker runs for this store (exit 0) or not (exit 1)."""
    running, text = _describe(context)
    click.echo(text)
    raise SystemExit(0 if running else EXIT_FAILED)


@worker.command("start")
@pass_context
def worker_start(context: Context) -> None:
    """Start a detached worker unless one runs."""
    from cockpit.engine.daemon import ensure_running, log_path

    config = loaded(context)
    current = ensure_running(config)
    if not current.running:
        fail(f"the worker did not start; see {log_path(config)}", EXIT_FAILED)
    click.echo(f"worker {current.worker_id} (pid {current.pid}) runs")


@worker.command("stop")
@click.option("--timeout", type=float, default=60.0, show_default=True)
@pass_context
def worker_stop(context: Context, timeout: float) -> None:
    """Stop the running worker (running tasks get a grace period, then are left for
    the next worker to recover)."""
    from cockpit.engine.daemon import stop

    try:
        stopped = stop(loaded(context), timeout=timeout)
    except TimeoutError as exc:
        fail(str(exc), EXIT_FAILED)
    click.echo("worker stopped" if stopped else "no worker was running")

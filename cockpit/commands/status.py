"""`cockpit status`: the on-call view, as a Nagios plugin, JSON or Prometheus; `cockpit quota`.

Exit codes are the Nagios plugin ones: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (also
for bad options and a store that cannot be read: the check could not tell).

This command reads the store only, and starts fast: it imports neither Textual nor
asyncssh unless ``--refresh`` asks to collect first.
"""

from __future__ import annotations

import re
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from cockpit.cli import Context, loaded, main, pass_context, run, with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.status.evaluate import Report

#: The Nagios UNKNOWN code, for what keeps the check from telling.
EXIT_UNKNOWN = 3

_AGO_RE = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class UnknownUsage(click.UsageError):
    exit_code = EXIT_UNKNOWN


class UnknownParameter(click.BadParameter):
    exit_code = EXIT_UNKNOWN


def parse_since(text: str, now: float) -> float:
    """``30m``, ``2h``, ``1d``, ``1w`` ago, or a local date/time (``2026-03-01 08:00``)."""
    value = text.strip()
    match = _AGO_RE.fullmatch(value)
    if match:
        return now - int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UnknownParameter(
            f"{text!r} is neither a duration (30m, 2h, 1d, 1w) nor a date and time "
            "(2026-03-01 08:00)",
            param_hint="--since",
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.timestamp()


class NagiosCommand(click.Command):
    """A command whose usage errors exit 3 (UNKNOWN), as a Nagios plugin's must."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            raise UnknownUsage(exc.message, exc.ctx) from exc


def _render(report: Report, fmt: str, limit: int | None) -> str:
    from cockpit.status import output

    if fmt == "json":
        import json

        return json.dumps(output.to_json(report), indent=2) + "\n"
    if fmt == "prometheus":
        return output.to_prometheus(report)
    return "\n".join(output.to_text(report, limit=limit)) + "\n"


def _refresh_note(reports: list[Any]) -> str:
    late = [r for r in reports if r.timed_out]
    if late:
        names = ", ".join(r.server for r in late[:5]) + (" …" if len(late) > 5 else "")
        return f"collected {len(reports) - len(late)} servers; timed out on {len(late)}: {names}"
    missing = [r for r in reports if r.reachable is not True]
    if not missing:
        return f"collected {len(reports)} servers"
    names = ", ".join(r.server for r in missing[:5]) + (" …" if len(missing) > 5 else "")
    return f"collected {len(reports)} servers; no statistics from {len(missing)}: {names}"


@main.command("status", cls=NagiosCommand)
@click.option(
    "--since",
    help="Failed tasks from this time: 30m, 2h, 1d, 1w or a date and time "
    "(default: the config's status.failed_hours, 24 h).",
)
@click.option("--refresh", is_flag=True, help="Collect from every server first.")
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    default=30.0,
    show_default=True,
    help="Seconds --refresh waits for the servers in all.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="The JSON document (schema cockpit-status/1)."
)
@click.option("--prometheus", is_flag=True, help="Prometheus text exposition (textfile collector).")
@click.option(
    "--watch",
    "watch",
    type=click.FloatRange(0.5, 3600),
    default=None,
    is_flag=False,
    flag_value=5.0,
    metavar="[SECONDS]",
    help="Redraw every SECONDS (default 5) until interrupted.",
)
@click.option(
    "--limit", type=click.IntRange(0), default=None, help="Show at most this many problems (text)."
)
@pass_context
def status(
    context: Context,
    since: str | None,
    refresh: bool,
    timeout: float,
    as_json: bool,
    prometheus: bool,
    watch: float | None,
    limit: int | None,
) -> None:
    """What is down, what failed and what is about to break, from the store.

    Unreachable servers, services down, sites failing their probe, failed tasks, TLS
    certificates near expiry, disks nearly full or filling, quota breaches — each with
    its reason. Exits 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    """
    from cockpit.store import StoreError

    if as_json and prometheus:
        click.echo("cockpit: --json and --prometheus exclude each other", err=True)
        sys.exit(EXIT_UNKNOWN)
    fmt = "json" if as_json else "prometheus" if prometheus else "text"
    config = _config(context)
    since_at = parse_since(since, time.time()) if since else None

    async def once(cockpit: Cockpit) -> tuple[Report, str]:
        note = ""
        timed_out: dict[str, str] = {}
        if refresh:
            reports = await cockpit.refresh_stats(timeout=timeout)
            note = _refresh_note(reports)
            timed_out = {r.server: r.error for r in reports if r.timed_out}
        report = await cockpit.status(
            since=since_at, timed_out=timed_out, sites=fmt == "prometheus"
        )
        return report, note

    async def body(cockpit: Cockpit) -> int:
        if watch is None:
            report, note = await once(cockpit)
            if note:
                click.echo(note, err=True)
            sys.stdout.write(_render(report, fmt, limit))
            return report.exit_code
        return await _watch(cockpit, once, fmt, watch, limit)

    try:
        code = run(with_cockpit(config, body))
    except StoreError as exc:  # pragma: no cover - run() turns it into exit 3 already
        click.echo(f"cockpit: {exc}", err=True)
        code = EXIT_UNKNOWN
    sys.exit(code)


def _config(context: Context) -> Any:
    from cockpit.config import ConfigError

    try:
        return context.config()
    except ConfigError as exc:
        click.echo(f"cockpit: {exc}", err=True)
        sys.exit(EXIT_UNKNOWN)


async def _watch(cockpit: Cockpit, once: Any, fmt: str, every: float, limit: int | None) -> int:
    """Redraw in place (a terminal) or append (a pipe) until interrupted.

    Text gets a header line (time, period, the refresh's note). JSON and Prometheus get
    none, so that each document stands alone: JSON one document a line (JSON Lines),
    Prometheus one exposition followed by a blank line; the note goes to stderr."""
    import asyncio
    import shutil

    tty = sys.stdout.isatty()
    drawn = 0
    code = EXIT_UNKNOWN
    try:
        while True:
            report, note = await once(cockpit)
            code = report.exit_code
            if fmt == "text":
                stamp = datetime.fromtimestamp(report.generated_at).strftime("%H:%M:%S")
                head = f"{stamp}  every {every:g} s  ({report.seconds * 1000:.0f} ms)"
                if note:
                    head += f"  {note}"
                rows = shutil.get_terminal_size((100, 24)).lines if tty else 0
                shown = limit
                if tty:
                    shown = max(0, rows - 4) if limit is None else min(limit, max(0, rows - 4))
                block = head + "\n" + _render(report, fmt, shown)
            elif fmt == "json":  # JSON Lines: one document a line
                import json

                from cockpit.status import output

                block = json.dumps(output.to_json(report), separators=(",", ":"))
            else:  # Prometheus: one exposition per round, a blank line after each
                block = _render(report, fmt, limit)
            if note and fmt != "text":
                click.echo(note, err=True)
            if tty and fmt == "text":
                width = shutil.get_terminal_size((100, 24)).columns
                lines = [line[:width] for line in block.rstrip("\n").split("\n")]
                if drawn:
                    sys.stdout.write(f"\x1b[{drawn}F\x1b[J")
                sys.stdout.write("\n".join(lines) + "\n")
                drawn = len(lines)
            else:
                sys.stdout.write(block + "\n")
            sys.stdout.flush()
            await asyncio.sleep(every)
    except (KeyboardInterrupt, asyncio.CancelledError):
        return code


@main.group()
def quota() -> None:
    """Per-site limits on bandwidth and disk (a client's are in the inventory)."""


@quota.command("list")
@pass_context
def quota_list(context: Context) -> None:
    """List the sites that have their own limits."""
    from cockpit.commands.task import columns

    async def body(cockpit: Cockpit) -> None:
        for q in await cockpit.site_quotas():
            click.echo(
                columns(
                    q.domain,
                    f"disk_mb={q.disk_mb if q.disk_mb is not None else '-'}",
                    f"bandwidth_mb_month={q.bandwidth_mb_month if q.bandwidth_mb_month is not None else '-'}",
                    f"warn={q.warn_percent or '-'}%",
                    f"crit={q.crit_percent or '-'}%",
                )
            )

    run(with_cockpit(loaded(context), body))


@quota.command("set")
@click.argument("site")
@click.option("--disk-mb", type=click.IntRange(0), help="Files and database, in MB.")
@click.option("--bandwidth-mb-month", type=click.IntRange(0), help="Traffic per month, in MB.")
@click.option("--warn-percent", type=click.IntRange(1, 1000), help="WARNING from this share.")
@click.option("--crit-percent", type=click.IntRange(1, 1000), help="CRITICAL from this share.")
@pass_context
def quota_set(
    context: Context,
    site: str,
    disk_mb: int | None,
    bandwidth_mb_month: int | None,
    warn_percent: int | None,
    crit_percent: int | None,
) -> None:
    """Set SITE's limits (those not given are removed); none at all removes the quota."""
    from cockpit.model import ValidationError, validate_domain
    from cockpit.store.metrics import SiteQuota

    try:
        domain = validate_domain(site, "site")
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="SITE") from None
    if warn_percent and crit_percent and warn_percent > crit_percent:
        raise click.BadParameter("--warn-percent must not exceed --crit-percent")
    quota_ = SiteQuota(domain, disk_mb, bandwidth_mb_month, warn_percent, crit_percent)

    async def body(cockpit: Cockpit) -> None:
        await cockpit.set_site_quota(quota_)
        click.echo(
            f"quota of {quota_.domain}: "
            + ("removed" if disk_mb is None and bandwidth_mb_month is None else "set")
        )

    run(with_cockpit(loaded(context), body))

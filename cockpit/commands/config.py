"""`cockpit config`: where the config lives and what is in effect."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from cockpit.cli import EXIT_USAGE, Context, fail, main, pass_context

if TYPE_CHECKING:
    pass


@main.group("config")
def config_group() -> None:
    """Show where the config lives and what is in effect."""


@config_group.command("path")
@pass_context
def config_path(context: Context) -> None:
    """Print the path of the config file (it may not exist: every key has a default)."""
    from cockpit.config import config_path as default_path

    click.echo(str(context.config_file or default_path()))


@config_group.command("show")
@pass_context
def config_show(context: Context) -> None:
    """Print the effective config as YAML."""
    from cockpit.config import ConfigError, dump_config

    try:
        click.echo(dump_config(context.config()), nl=False)
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

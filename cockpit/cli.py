"""The ``cockpit`` command: the TUI by default, and subcommands for scripts and on-call.

Imports stay lazy: ``cockpit --help`` or ``cockpit inventory export`` never load
Textual, so they start fast.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from cockpit import __version__, procstart

if TYPE_CHECKING:
    from cockpit.config import Config
    from cockpit.core import Cockpit

T = TypeVar("T")

#: Exit codes of the CLI (documented in docs/cli.md).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # bad input: a broken file, an invalid name, a missing entity
EXIT_STORE = 3  # the store cannot be opened or written

HELP = """Cockpit: a keyboard-driven cockpit for many web sites on many servers.

Run without a command to open the TUI. The first run creates the store in the
user's data dir and registers this machine as the server 'localhost'.
"""


class Context:
    def __init__(
        self, store: Path | None, config_file: Path | None, theme: str | None, read_only: bool
    ):
        self.store = store
        self.config_file = config_file
        self.theme = theme
        self.read_only = read_only

    def config(self) -> Config:
        from cockpit.config import load_config

        overrides: dict[str, Any] = {}
        if self.store is not None:
            overrides["store"] = self.store
        if self.theme is not None:
            overrides["theme"] = self.theme
        if self.read_only:
            overrides["read_only"] = True
        return load_config(self.config_file, overrides=overrides)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"cockpit: {message}", err=True)
    sys.exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning Cockpit's known errors into a message and an exit code."""
    from cockpit.backends.transport import TransportError
    from cockpit.inventory.plan import InventoryError
    from cockpit.model import ValidationError
    from cockpit.store import NotFoundError, StoreError
    from cockpit.yamlio import YamlError

    procstart.imports_done()  # a command's work starts: see cockpit.procstart
    try:
        return asyncio.run(coro)
    except NotFoundError as exc:
        fail(str(exc), EXIT_USAGE)
    except TransportError as exc:
        fail(str(exc), EXIT_FAILED)
    except StoreError as exc:
        fail(str(exc), EXIT_STORE)
    except (YamlError, ValidationError, InventoryError) as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), EXIT_FAILED)


async def with_cockpit(config: Config, body: Callable[[Cockpit], Awaitable[T]]) -> T:
    from cockpit.core import Cockpit

    cockpit = await Cockpit.open(config)
    try:
        return await body(cockpit)
    finally:
        await cockpit.close()


@click.group(invoke_without_command=True, help=HELP)
@click.version_option(__version__, prog_name="cockpit")
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The store file (default: $XDG_DATA_HOME/cockpit/cockpit.db).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config file (default: $XDG_CONFIG_HOME/cockpit/config.yaml).",
)
@click.option("--theme", help="The TUI theme (cockpit-dark, cockpit-light, cockpit-mono, …).")
@click.option("--read-only", is_flag=True, help="Disable every action that changes something.")
@click.pass_context
def main(
    ctx: click.Context,
    store: Path | None,
    config_file: Path | None,
    theme: str | None,
    read_only: bool,
) -> None:
    ctx.obj = Context(store, config_file, theme, read_only)
    if ctx.invoked_subcommand is None:
        tui(ctx.obj)


def tui(context: Context) -> None:
    from cockpit.config import ConfigError

    try:
        config = context.config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)

    async def body(cockpit: Cockpit) -> None:
        from cockpit.app import make_app
        from cockpit.themes import ThemeError

        try:
            app = make_app(
                cockpit,
                theme=config.theme,
                read_only=config.read_only,
                keymap=config.keymap,
            )
        except ThemeError as exc:
            fail(str(exc), EXIT_USAGE)
        await app.run_async()

    run(with_cockpit(config, body))


pass_context = click.make_pass_decorator(Context)


def loaded(context: Context) -> Config:
    from cockpit.config import ConfigError

    try:
        return context.config()
    except ConfigError as exc:
        fail(str(exc), EXIT_USAGE)


#: Command modules; each registers its group on ``main`` when imported.
COMMAND_MODULES = (
    "config",
    "server",
    "platform",
    "site",
    "inventory",
    "trust",
    "task",
    "worker",
    "schedule",
    "status",
)


def _register() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"cockpit.commands.{name}")


_register()

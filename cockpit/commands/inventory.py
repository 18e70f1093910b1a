"""`cockpit inventory`: inventory as code (export, apply, importers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from cockpit.cli import Context, loaded, main, pass_context, run, with_cockpit

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.inventory.document import LoadedInventory
    from cockpit.inventory.plan import Inventory

T = TypeVar("T")


@main.group()
def inventory() -> None:
    """Inventory as code: export to YAML, apply YAML, import from SSH or Ansible."""


@inventory.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def inventory_export(context: Context, file: Path | None) -> None:
    """Write the whole inventory as YAML (never secrets) to FILE or standard output."""
    from cockpit.inventory.document import dump_inventory
    from cockpit.inventory.plan import load_current

    async def body(cockpit: Cockpit) -> str:
        return dump_inventory(await load_current(cockpit.db))

    text = run(with_cockpit(loaded(context), body))
    if file is None:
        click.echo(text, nl=False)
    else:
        from cockpit.fileio import write_atomic

        write_atomic(file, text.encode("utf-8"), mode=0o644)


def _apply(
    context: Context,
    desired_loader: Callable[[], Inventory | LoadedInventory],
    dry_run: bool,
    prune: bool,
) -> None:
    from cockpit.inventory.document import LoadedInventory
    from cockpit.inventory.plan import InventoryError, apply

    config = loaded(context)
    # The file is read and validated before the store is even opened.
    desired = run(_call(desired_loader))
    inventory = desired.inventory if isinstance(desired, LoadedInventory) else desired

    async def body(cockpit: Cockpit) -> None:
        try:
            result = await apply(cockpit.db, inventory, prune=prune, dry_run=dry_run)
        except InventoryError as exc:
            if isinstance(desired, LoadedInventory):
                raise desired.locate(exc) from exc
            raise
        click.echo(result.render(limit=None if dry_run else 50))
        if dry_run:
            click.echo("(dry run: nothing was changed)")

    run(with_cockpit(config, body))


async def _call(loader: Callable[[], T]) -> T:
    return loader()


@inventory.command("apply")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan (counts and a diff), change nothing.")
@click.option("--prune", is_flag=True, help="Delete what the store has and FILE does not.")
@pass_context
def inventory_apply(context: Context, file: Path, dry_run: bool, prune: bool) -> None:
    """Create and update the inventory to match FILE, all or nothing."""
    from cockpit.inventory.document import load_inventory

    _apply(context, lambda: load_inventory(file), dry_run, prune)


@inventory.command("import-ssh-config")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
@pass_context
def inventory_import_ssh(context: Context, file: Path | None, dry_run: bool) -> None:
    """Add or update a server for each Host entry of ~/.ssh/config (or FILE)."""
    from cockpit.inventory.plan import Inventory
    from cockpit.inventory.ssh_config import import_ssh_config

    def desired() -> Inventory:
        result = import_ssh_config(file) if file else import_ssh_config()
        _report_skipped(result.skipped)
        return Inventory(servers=tuple(result.servers))

    _apply(context, desired, dry_run, prune=False)


@inventory.command("import-ansible")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan, change nothing.")
@pass_context
def inventory_import_ansible(context: Context, file: Path, dry_run: bool) -> None:
    """Add or update a server for each host of an Ansible inventory (INI or YAML)."""
    from cockpit.inventory.ansible import import_ansible
    from cockpit.inventory.plan import Inventory

    def desired() -> Inventory:
        result = import_ansible(file)
        _report_skipped(result.skipped)
        return Inventory(servers=tuple(result.servers))

    _apply(context, desired, dry_run, prune=False)


def _report_skipped(skipped: Any) -> None:
    from cockpit.textsafe import sanitize

    for name, reason in skipped:
        click.echo(sanitize(f"skipped {name}: {reason}"), err=True)

"""What ``cockpit`` imports before its first paint.

The TUI's first paint is mostly process start (issue 6: under a second with 100,000
sites), so the start path (the CLI, the config, the store, the themes, the app and its
start view) must not import what only other views, the task engine or its plugins need:
those are imported when first used, the engine in a thread once the overview is up. Each
probe runs in a fresh interpreter, as ``cockpit`` does, and lists what got imported.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cockpit.screens
import cockpit.widgets

#: Imported by a later view, the task engine, a plugin or a backend: never before the
#: first paint.
HEAVY = (
    "asyncssh",
    "jinja2",
    "cryptography",
    "pygments",
    "markdown_it",
    "importlib.metadata",  # entry point scans: the task plugins
    "cockpit.engine",
    "cockpit.tasks",
    "cockpit.status",
    "cockpit.backends.ssh",
)

#: The screens and widgets the start view (the overview) is built from.
START_MODULES = frozenset(
    {
        "cockpit.screens.base",
        "cockpit.screens.command",
        "cockpit.screens.resource",
        "cockpit.screens.overview",
        "cockpit.widgets.footer",
        "cockpit.widgets.header",
        "cockpit.widgets.marks",
        "cockpit.widgets.prompt",
        "cockpit.widgets.resource_table",
    }
)

# The ``cockpit`` command's own path up to the app it runs (cockpit.cli.tui), then the
# start view's class, as the app's first screen: everything but running the app.
CLI_PATH = """
import asyncio, json, sys
from pathlib import Path

from cockpit.cli import Context, with_cockpit

context = Context(Path(sys.argv[1]), None, None, True)
config = context.config()

async def body(cockpit):
    from cockpit.app import make_app, view_class

    app = make_app(cockpit, theme=config.theme, read_only=config.read_only, keymap=config.keymap)
    view_class(app.start_view)
    {extra}

asyncio.run(with_cockpit(config, body))
json.dump(sorted(sys.modules), sys.stdout)
"""


def later_modules() -> list[str]:
    """Every screen and widget module but the start view's."""
    names = [
        info.name
        for package in (cockpit.screens, cockpit.widgets)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + ".")
    ]
    return sorted(set(names) - START_MODULES)


def imported(code: str, tmp_path: Path, *args: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def cli_path(tmp_path: Path, extra: str = "") -> set[str]:
    return imported(CLI_PATH.format(extra=extra), tmp_path, str(tmp_path / "cockpit.db"))


def test_later_modules_are_listed() -> None:
    # The check below covers something: the views and widgets the overview does not need.
    later = later_modules()
    for name in ("cockpit.screens.sites", "cockpit.screens.actions", "cockpit.widgets.tiles"):
        assert name in later
    assert not START_MODULES & set(later)


def test_importing_the_app_imports_no_view_engine_or_backend(tmp_path: Path) -> None:
    loaded = imported(
        "import json, sys\nimport cockpit.app\njson.dump(sorted(sys.modules), sys.stdout)",
        tmp_path,
    )
    assert "cockpit.app" in loaded
    assert sorted(loaded & {*HEAVY, *later_modules()}) == []
    assert "cockpit.screens.overview" not in loaded  # the start view too: when built


def test_the_command_up_to_its_app_imports_only_the_start_view(tmp_path: Path) -> None:
    loaded = cli_path(tmp_path)
    assert {"cockpit.app", "cockpit.core", "cockpit.screens.overview"} <= loaded
    assert sorted(loaded & {*HEAVY, *later_modules()}) == []


def test_the_probe_sees_an_import_added_to_the_start_path(tmp_path: Path) -> None:
    # What the check above reports if the start path imports a later view (the servers
    # list, which imports the task engine for its actions).
    loaded = cli_path(tmp_path, extra="import cockpit.screens.servers")
    assert "cockpit.screens.servers" in sorted(loaded & {*HEAVY, *later_modules()})


def test_every_view_of_the_registry_is_its_list_view() -> None:
    from cockpit.app import _VIEWS, view_class

    for view in _VIEWS:
        assert view == view_class(view).VIEW
    with pytest.raises(KeyError):
        view_class("dashboard")  # not a list view: opened by its own command

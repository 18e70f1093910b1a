"""The project's own rules, checked on every run: lint, types, import contracts, bans."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run(str(BIN / "ruff"), "check", "cockpit", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = run(str(BIN / "ruff"), "format", "--check", "cockpit", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = run(str(BIN / "mypy"), "--cache-dir=/tmp/cockpit-mypy-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_hold() -> None:
    """The core (model, store, engine, backends, core…) never imports textual."""
    result = run(str(BIN / "lint-imports"))
    assert result.returncode == 0, result.stdout + result.stderr


def _sources() -> list[Path]:
    return sorted((REPO / "cockpit").rglob("*.py"))


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"known_hosts\s*=\s*None", "host keys must always be verified"),
        (r"shell\s*=\s*True", "build argv lists, never a shell command line"),
        (r"create_subprocess_shell|os\.system\(|os\.popen\(", "no shell command lines"),
    ],
)
def test_banned_patterns_absent(pattern: str, why: str) -> None:
    hits = [
        f"{path.relative_to(REPO)}:{n}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(pattern, line)
    ]
    assert not hits, f"{why}: {hits}"


def test_core_layers_do_not_import_textual_at_runtime() -> None:
    """Importing the CLI's non-TUI path and the core must not load textual (fast start)."""
    code = (
        "import sys, cockpit.cli, cockpit.core, cockpit.inventory.plan, cockpit.store;"
        "print('textual' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"

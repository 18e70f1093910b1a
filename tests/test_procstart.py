"""The process start (cockpit.procstart): imports frozen once, the collector still at work.

Each check runs in a fresh interpreter, started through the real entry points: the
worker's ``python -m cockpit.engine`` main and the CLI's ``run``. Freezing is once per
process, so the test process itself is never touched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

# What a process checks once its start is done: the collector is on, the imports are
# frozen, and a reference cycle made afterwards (with a finalizer to prove it) is freed
# by a collection; a second call freezes nothing more.
PROBE = textwrap.dedent(
    """
    import gc, json, weakref
    from cockpit import procstart

    def probe(path):
        frozen = gc.get_freeze_count()

        class Node:
            pass

        freed = []
        a, b = Node(), Node()
        a.other, b.other = b, a
        weakref.finalize(a, freed.append, "a")
        del a, b
        gc.collect()
        again = procstart.imports_done()
        with open(path, "w") as out:
            json.dump(
                {
                    "enabled": gc.isenabled(),
                    "frozen": frozen,
                    "freed": freed,
                    "again": again,
                    "frozen_after": gc.get_freeze_count(),
                },
                out,
            )
    """
)


def run_python(code: str, tmp_path: Path) -> dict[str, Any]:
    out = tmp_path / "probe.json"
    script = PROBE + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def check(result: dict[str, Any]) -> None:
    assert result["enabled"] is True
    assert result["frozen"] > 10_000  # the imports (asyncssh alone makes far more)
    assert result["freed"] == ["a"]  # a cycle made after the start is still collected
    assert result["again"] is False  # frozen once only
    assert result["frozen_after"] == result["frozen"]


def test_the_worker_start_freezes_its_imports_once_and_still_collects(tmp_path: Path) -> None:
    result = run_python(
        """
        import sys
        import cockpit.engine.daemon as daemon
        from cockpit.engine.__main__ import main

        async def serve(config):  # where the worker would start serving
            probe(sys.argv[1])
            return 0

        daemon.serve = serve
        sys.exit(main(["--store", sys.argv[1] + ".db"]))
        """,
        tmp_path,
    )
    check(result)


def test_a_cli_command_freezes_its_imports_once_and_still_collects(tmp_path: Path) -> None:
    result = run_python(
        """
        import gc, sys
        from cockpit.cli import run

        assert gc.get_freeze_count() == 0  # nothing frozen before a command runs

        async def command():
            probe(sys.argv[1])

        run(command())
        """,
        tmp_path,
    )
    check(result)


def test_nothing_is_frozen_on_import(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, cockpit.procstart, cockpit.engine.__main__, cockpit.cli;"
            " print(gc.get_freeze_count(), gc.isenabled())",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["0", "True"]

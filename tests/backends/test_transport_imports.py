"""What a process that reaches servers loads: the SSH transport path stays lean.

A fresh interpreter imports the transport path as the worker (or a script) uses it —
a Config built in code, ``SshPool(config)``, ``transport_for`` — and makes a transport.
Everything it does not need stays unloaded: PyYAML (read only with a config file),
jinja2, the store, the engine, the TUI, idna (only for internationalised names).
Each of these once came in with the transport and cost its start time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: Modules the transport path must not load (each one was, or is a likely regression).
HEAVY = (
    "yaml",
    "cockpit.yamlio",
    "jinja2",
    "aiosqlite",
    "sqlite3",
    "textual",
    "rich",
    "croniter",
    "click",
    "idna",
    "importlib.metadata",
    "cockpit.store",
    "cockpit.engine",
    "cockpit.tasks",
    "cockpit.status",
    "cockpit.core",
    "cockpit.backends.local",
    "cockpit.backends.services",
    "cockpit.backends.platforms",
)

CHILD = """
import asyncio, json, sys
from pathlib import Path

from cockpit.backends import transport_for
from cockpit.backends.ssh import SshPool, SshTransport
from cockpit.config import Config, SshDefaults
from cockpit.model import Server


async def main():
    config = Config(ssh=SshDefaults(known_hosts=Path(sys.argv[1])))
    pool = SshPool(config)
    server = Server(name="web1", address="192.0.2.1", port=22, user="deploy")
    transport = transport_for(server, config, pool=pool)
    assert isinstance(transport, SshTransport)
    await pool.close()


asyncio.run(main())
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(tmp_path: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "known_hosts")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_transport_path_loads_nothing_it_does_not_need(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path=tmp_path)
    assert "asyncssh" in loaded and "cockpit.backends.ssh" in loaded  # the path ran
    back = sorted(name for name in HEAVY if name in loaded)
    assert back == [], f"the SSH transport path loads {back}"


def test_reading_a_config_file_still_loads_yaml(tmp_path: Path) -> None:
    """The lazy import is only deferred: a config file is parsed as before."""
    config = tmp_path / "config.yaml"
    config.write_text("ssh:\n  connect_timeout: 7\n", encoding="utf-8")
    code = (
        "import sys, json; from pathlib import Path; from cockpit.config import load_config, "
        "dump_config; c = load_config(Path(sys.argv[1])); assert c.ssh.connect_timeout == 7; "
        "assert 'connect_timeout: 7.0' in dump_config(c); print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "yaml" in json.loads(done.stdout.strip().splitlines()[-1])

"""A worker process for the engine tests: the real Worker, with the test kinds added.

python worker_proc.py --config-json '{...}' [--lease S] [--locked] [--claim-only N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

from engine_kinds import make_registry

from cockpit.config import Concurrency, Config, SshDefaults
from cockpit.engine.daemon import serve
from cockpit.engine.runner import RunOptions
from cockpit.engine.worker import Worker, WorkerOptions
from cockpit.store import open_store


def config_from(text: str) -> Config:
    data = json.loads(text)
    return Config(
        store=Path(data["store"]),
        ssh=SshDefaults(
            identity_files=tuple(Path(p) for p in data["identity_files"]),
            known_hosts=Path(data["known_hosts"]),
            connect_timeout=5.0,
            keepalive_interval=2.0,
            keepalive_count=2,
        ),
        concurrency=Concurrency(data["global_limit"], data["per_server"]),
    )


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config-json", required=True)
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--reattach", type=float, default=60.0)
    parser.add_argument("--recheck", type=float, default=2.0)
    parser.add_argument("--locked", action="store_true")
    ns = parser.parse_args()
    config = config_from(ns.config_json)
    options = replace(
        WorkerOptions.from_config(config),
        lease=ns.lease,
        poll=0.2,
        maintenance_every=1.0,
        grace=1.0,
        run=RunOptions(reattach_window=ns.reattach, unknown_recheck=ns.recheck, retry_base=0.2),
    )
    registry = make_registry()
    if ns.locked:
        return await serve(config, registry=registry, options=options)
    db = await open_store(config.store)
    worker = Worker(db, config, registry=registry, options=options)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, worker.stop)
    try:
        await worker.run()
    finally:
        await db.close()
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))

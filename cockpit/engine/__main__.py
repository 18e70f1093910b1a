"""``python -m cockpit.engine --store PATH [--config FILE]``: run a worker (foreground).

This is what a detached start executes (see :mod:`cockpit.engine.daemon`); people use
``cockpit worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cockpit.engine")
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--config", type=Path)
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from cockpit import procstart
    from cockpit.backends import ssh  # noqa: F401  (the worker makes its SSH pool at start)
    from cockpit.config import ConfigError, load_config
    from cockpit.engine import worker  # noqa: F401  (what serve imports)
    from cockpit.engine.daemon import serve
    from cockpit.store import StoreError

    procstart.imports_done()  # the worker's imports are never walked by the collector again
    try:
        config = load_config(ns.config, overrides={"store": ns.store})
        return asyncio.run(serve(config))
    except (ConfigError, StoreError) as exc:
        print(f"cockpit worker: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmarks and write their sections into docs/benchmarks.md."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench.report import REPORT, Section, write


def available() -> list[str]:
    here = Path(__file__).parent
    names = []
    for info in pkgutil.iter_modules([str(here)]):
        if info.name in ("report",) or info.name.startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(available())})"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="print, do not update docs/benchmarks.md"
    )
    args = parser.parse_args()
    names = args.names or available()
    unknown = [n for n in names if n not in available()]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; valid: {', '.join(available())}")
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "run", None)
        if run is None:
            continue
        print(f"== {name}", flush=True)
        try:
            section: Section = run()
        except Exception as exc:  # a broken benchmark must not hide the others
            failed += 1
            print(f"   failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        print(section.body, flush=True)
        if not args.no_write:
            write(section)
    if not args.no_write:
        print(f"wrote {REPORT}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

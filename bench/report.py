"""Writing benchmark sections into docs/benchmarks.md, keeping the others."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Measured with `python -m bench` (all) or `python -m bench NAME` (one section). Each
section says when and on what machine it was measured. These machines are shared
and noisy: compare the ratios within a section, not absolute times across sections.
"""


@dataclass(frozen=True, slots=True)
class Section:
    name: str  # the module name, used as the section's anchor
    title: str
    body: str  # markdown


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()} × {cpu}{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def stamp() -> str:
    return f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}."


def write(section: Section) -> None:
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else HEADER
    begin, end = f"<!-- bench:{section.name} -->", f"<!-- /bench:{section.name} -->"
    block = f"{begin}\n## {section.title}\n\n{stamp()}\n\n{section.body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    REPORT.write_text(text, encoding="utf-8")


def timed(fn: Callable[[], object], repeat: int = 5) -> list[float]:
    """Wall times (s) of ``repeat`` calls of ``fn``."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def ms(samples: Sequence[float]) -> str:
    """Median (min–max) in milliseconds."""
    return f"{statistics.median(samples) * 1000:.1f} ms ({min(samples) * 1000:.1f}–{max(samples) * 1000:.1f})"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)

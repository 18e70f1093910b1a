"""A bar chart of one time series: a title line, bars in eighth blocks over a few lines
from a zero baseline, the top value on the left, the times underneath.

A missing point (no sample in that bucket) is drawn as ``·`` on the baseline, a zero as
nothing, so the two differ without colour. The widget draws exactly its size: the points
are spread over (or averaged into) the columns there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Final

from rich.cells import cell_len, set_cell_size
from rich.console import RenderableType
from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

__all__ = ["Chart", "ChartData", "bar_columns", "time_label"]

_EIGHTHS: Final = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class ChartData:
    """What a chart draws. ``ceiling``: the value of a full bar (None: the highest
    point); ``fmt`` writes a value for the axis."""

    title: Text
    points: Sequence[tuple[int, float | None]] = ()
    step: int = 60
    ceiling: float | None = None
    fmt: Callable[[float], str] = field(default=lambda v: f"{v:,.0f}")


def bar_columns(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` over ``width`` columns: spread when fewer, averaged when more (a column
    of missing points only is missing)."""
    if width <= 0 or not values:
        return []
    count = len(values)
    out: list[float | None] = []
    for column in range(width):
        first = column * count // width
        last = max(first + 1, (column + 1) * count // width)
        got = [v for v in values[first:last] if v is not None]
        out.append(sum(got) / len(got) if got else None)
    return out


def time_label(at: float, step: int) -> str:
    """A time on the axis: the hour and minute, with the day once steps are hours."""
    moment = datetime.fromtimestamp(at)
    return moment.strftime("%m-%d %H:%M" if step >= 3600 else "%H:%M")


class Chart(Widget):
    """One series as bars; ``data`` is a :class:`ChartData` (None: nothing read yet)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "chart--bar",
        "chart--axis",
        "chart--missing",
    }

    DEFAULT_CSS = """
    Chart {
        height: 7;
        & > .chart--bar { color: $primary; }
        & > .chart--axis { color: $text-muted; }
        & > .chart--missing { color: $text-disabled; }
    }
    """

    data: reactive[ChartData | None] = reactive(None, layout=False)

    def __init__(
        self,
        data: ChartData | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.set_reactive(Chart.data, data)

    def render(self) -> RenderableType:
        width, height = self.size.width, self.size.height
        data = self.data
        out = Text(no_wrap=True, overflow="crop", end="")
        axis_style = self.get_component_rich_style("chart--axis")
        if data is None:
            out.append(" loading…", axis_style)
            return out
        out.append_text(_cut(data.title, width))
        bars_height = max(1, height - 2)
        values = [v for _t, v in data.points]
        known = [v for v in values if v is not None]
        ceiling = data.ceiling
        if ceiling is None:
            ceiling = max(known, default=0.0)
        if not ceiling or ceiling <= 0 or math.isnan(ceiling):
            ceiling = 1.0
        top_label = data.fmt(ceiling)
        label_width = max(cell_len(top_label), cell_len(data.fmt(0.0))) + 1
        plot_width = max(1, width - label_width - 1)
        columns = bar_columns(values, plot_width)
        bar_style = self.get_component_rich_style("chart--bar")
        missing_style = self.get_component_rich_style("chart--missing")
        for line in range(bars_height):
            out.append("\n")
            if line == 0:
                label = top_label.rjust(label_width - 1) + " "
            elif line == bars_height - 1:
                label = data.fmt(0.0).rjust(label_width - 1) + " "
            else:
                label = " " * label_width
            out.append(label, axis_style)
            out.append("┤" if line in (0, bars_height - 1) else "│", axis_style)
            floor = (bars_height - 1 - line) * 8  # eighths below this line
            for value in columns:
                if value is None:
                    mark = "·" if line == bars_height - 1 else " "
                    out.append(mark, missing_style)
                    continue
                eighths = max(0.0, min(1.0, value / ceiling)) * bars_height * 8
                level = math.ceil(eighths) if value > 0 else 0
                if level >= floor + 8:
                    out.append("█", bar_style)
                elif level > floor:
                    out.append(_EIGHTHS[level - floor], bar_style)
                else:
                    out.append(" ")
        out.append("\n")
        out.append(" " * label_width + "└", axis_style)
        out.append(_axis(data, plot_width), axis_style)
        return out


def _cut(text: Text, width: int) -> Text:
    if text.cell_len <= width:
        return text
    cut = text.copy()
    cut.truncate(max(1, width - 1))
    cut.append("…")
    return cut


def _axis(data: ChartData, width: int) -> str:
    """The time line under the bars: the first point's time, the middle one's, the end."""
    if not data.points or width < 12:
        return "─" * width
    start = data.points[0][0]
    end = data.points[-1][0] + data.step
    first = time_label(start, data.step)
    last = time_label(end, data.step)
    line = list("─" * width)

    def put(at: int, label: str) -> None:
        at = max(0, min(at, width - cell_len(label)))
        for i, char in enumerate(label):
            line[at + i] = char

    put(0, first)
    if width >= 3 * (cell_len(first) + 2):
        middle = time_label(start + (end - start) / 2, data.step)
        put((width - cell_len(middle)) // 2, middle)
    put(width - cell_len(last), last)
    return set_cell_size("".join(line), width)

"""One server's, site's, client's or platform's statistics as charts over 1 h, 24 h or 7 d.

Opened from the dashboard (``enter`` on a tile or a top-N row), from the servers list and
a site's detail (``S``), or with ``:stats NAME``. ``w`` switches the window (1 h → 24 h →
7 d), ``d`` opens the detail view of what is charted; like the dashboard it re-reads
itself every few seconds (``+``/``-`` change the interval, ``p`` pauses, ctrl+r reads now).

:class:`LiveScreen` is what both share: the window, the refresh interval, pausing, the
status line, and one named worker that reads through :mod:`cockpit.core` (never SQL here);
a read still running when the timer fires is left to finish, never queued behind.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from cockpit.messages import OpenView, Scope
from cockpit.screens.base import ViewScreen
from cockpit.screens.command import CommandError
from cockpit.textsafe import sanitize, sanitize_line
from cockpit.widgets.chart import Chart, ChartData
from cockpit.widgets.scrolling import scroll, scroll_bindings

if TYPE_CHECKING:
    from cockpit.core import Cockpit
    from cockpit.status.dashboard import Charts, Series

__all__ = [
    "REFRESH_STEPS",
    "WINDOWS",
    "LiveScreen",
    "StatsScreen",
    "metric_label",
    "now",
    "open_screen",
    "resolve_stats_target",
    "value_text",
]

#: The windows ``w`` steps through.
WINDOWS: Final = ("1h", "24h", "7d")
#: The refresh intervals ``+`` and ``-`` step through, in seconds.
REFRESH_STEPS: Final = (1, 2, 5, 10, 30, 60, 300)
DEFAULT_REFRESH: Final = 10


def now() -> float | None:
    """The moment statistics are read at: None is the clock (the snapshots pin it)."""
    return None


# -- how values read ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Metric:
    label: str
    kind: str  # count | bytes | size | ms | pct | load
    additive: bool = False


METRICS: Final[dict[str, Metric]] = {
    "load1": Metric("load", "load"),
    "load1_max": Metric("peak load", "load"),
    "mem_pct": Metric("memory", "pct"),
    "swap_pct": Metric("swap", "pct"),
    "disk_pct": Metric("fullest disk", "pct"),
    "requests": Metric("requests", "count", additive=True),
    "bytes": Metric("bandwidth", "bytes", additive=True),
    "s2xx": Metric("2xx", "count", additive=True),
    "s3xx": Metric("3xx", "count", additive=True),
    "s4xx": Metric("4xx", "count", additive=True),
    "s5xx": Metric("5xx", "count", additive=True),
    "p50_ms": Metric("p50 response", "ms"),
    "p95_ms": Metric("p95 response", "ms"),
    "probe_ms": Metric("probe latency", "ms"),
    "probe_fail": Metric("failed probes", "count", additive=True),
    "disk_bytes": Metric("files", "size"),
    "db_bytes": Metric("database", "size"),
}


def metric_of(name: str) -> Metric:
    if name.startswith("disk:"):
        return Metric(f"disk {sanitize_line(name[5:])}", "pct")
    return METRICS.get(name, Metric(sanitize_line(name), "count"))


def metric_label(name: str) -> str:
    return metric_of(name).label


def _short(value: float) -> str:
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def _bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


def value_text(name: str, value: float | None) -> str:
    """A value of metric ``name`` as it reads on screen (``-``: not measured)."""
    if value is None:
        return "-"
    kind = metric_of(name).kind
    if kind in ("bytes", "size"):
        return _bytes(value)
    if kind == "ms":
        return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"
    if kind == "pct":
        return f"{value:.0f} %"
    if kind == "load":
        return f"{value:.2f}"
    return _short(value)


def step_text(step: int) -> str:
    """``min``, ``24 min``, ``3 h``: what one point of a series covers."""
    if step % 3600 == 0:
        return "h" if step == 3600 else f"{step // 3600} h"
    return "min" if step == 60 else f"{step // 60} min"


def chart_data(series: Series) -> ChartData:
    """A series as a chart: its title says now, peak (and the total of counts)."""
    metric = metric_of(series.metric)
    known = [v for v in series.values if v is not None]
    title = Text(no_wrap=True, overflow="ellipsis", end="")
    title.append(f" {metric.label}", "bold")
    if metric.additive:
        title.append(f" per {step_text(series.step)}")
    if not known:
        title.append("  no data in this window", "italic")
    elif metric.additive:  # the last bucket is still filling: no "now"
        title.append(f"  total {value_text(series.metric, sum(known))}")
        title.append(f"  peak {value_text(series.metric, max(known))}")
    else:
        last = next(v for v in reversed(series.values) if v is not None)
        title.append(f"  now {value_text(series.metric, last)}")
        title.append(f"  peak {value_text(series.metric, max(known))}")
    name = series.metric

    def fmt(value: float) -> str:
        return value_text(name, value)

    return ChartData(
        title=title,
        points=series.points,
        step=series.step,
        ceiling=100.0 if metric.kind == "pct" else None,
        fmt=fmt,
    )


def clock_text(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at).strftime("%m-%d %H:%M:%S")


def open_screen(app: App[Any], screen: ViewScreen) -> None:
    """Show ``screen``, or go back to the view of the same key when it is in the stack."""
    for existing in reversed(app.screen_stack):
        if isinstance(existing, ViewScreen) and existing.view_key == screen.view_key:
            while app.screen is not existing and len(app.screen_stack) > 1:
                app.pop_screen()
            return
    app.push_screen(screen)


# -- what both the dashboard and the charts share --------------------------------------------


class LiveScreen(ViewScreen):
    """A view that reads itself again every few seconds: a window (``w``), an interval
    (``+`` slower, ``-`` faster), a pause (``p``) and a status line saying all that.

    Textual calls the ``on_mount`` of every class in the MRO: a subclass's own ``on_mount``
    must not call this one's (that would start two clocks)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("w", "window(1)", "Window", id="stats.window"),
        Binding("W", "window(-1)", "Previous window", show=False, id="stats.window_back"),
        Binding("p", "pause", "Pause", id="stats.pause"),
        Binding("plus", "interval(1)", "Slower", show=False, id="stats.slower"),
        Binding("minus", "interval(-1)", "Faster", show=False, id="stats.faster"),
    ]

    DEFAULT_CSS = """
    LiveScreen > #live-status {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    class Loaded(Message):
        """A read finished (``data`` is what the screen's core call returned)."""

        def __init__(self, data: Any, window: str) -> None:
            self.data = data
            self.window = window
            super().__init__()

    def __init__(self, *, window: str = "1h", interval: int = DEFAULT_REFRESH) -> None:
        super().__init__()
        self.window = window if window in WINDOWS else WINDOWS[0]
        self.interval = interval if interval in REFRESH_STEPS else DEFAULT_REFRESH
        self.paused = False
        self.loaded_at: float | None = None
        #: When the last read ended, on the screen's clock (for "updated").
        self.error: str | None = None
        self.reads = 0
        self._timer: Timer | None = None
        self._worker: Worker[None] | None = None

    # -- what subclasses provide -----------------------------------------------------------

    def read(self) -> Worker[None]:
        """Start the named worker that reads the data (it posts :class:`Loaded`)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Show what a read returned."""
        raise NotImplementedError

    def status_prefix(self) -> Text:
        """The start of the status line (the dashboard puts the fleet's state there)."""
        return Text("")

    # -- the clock -------------------------------------------------------------------------

    def compose_status(self) -> ComposeResult:
        yield Static(self.status_text(), id="live-status", markup=False)

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.interval, self._tick, name="stats refresh")
        self.poll()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _tick(self) -> None:
        if self.paused:
            return
        worker = self._worker
        if worker is not None and worker.state in (WorkerState.PENDING, WorkerState.RUNNING):
            return  # the last read is still running: let it finish
        self.poll()

    def poll(self) -> None:
        """Read now (a read in flight for an older window is cancelled)."""
        self._worker = self.read()

    def on_live_screen_loaded(self, message: LiveScreen.Loaded) -> None:
        if message.window != self.window:
            return  # read for a window the user has left already
        self.reads += 1
        self.error = None
        self.loaded_at = time.time() if now() is None else now()
        self.show(message.data)
        self.update_status()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker is self._worker:
            error = event.worker.error
            self.error = str(error) or type(error).__name__
            self.update_status()
        # (ViewScreen's own handler, called after this one, reports it to the app.)

    # -- the status line -------------------------------------------------------------------

    def status_text(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis", end="")
        out.append_text(self.status_prefix())
        if self.paused:
            out.append(" PAUSED ", "bold reverse")
            out.append(" ")
        out.append(f"window {self.window}", "bold")
        out.append(f" · every {self.interval} s" if not self.paused else " · p resumes")
        if self.error is not None:
            out.append(" · read failed: ", "bold")
            out.append(sanitize_line(self.error))
        elif self.loaded_at is not None:
            out.append(f" · at {datetime.fromtimestamp(self.loaded_at):%H:%M:%S}")
        else:
            out.append(" · reading…", "italic")
        return out

    def update_status(self) -> None:
        for widget in self.query("#live-status"):
            if isinstance(widget, Static):
                widget.update(self.status_text())

    # -- keys ------------------------------------------------------------------------------

    def action_window(self, step: int) -> None:
        index = WINDOWS.index(self.window) if self.window in WINDOWS else 0
        self.window = WINDOWS[(index + step) % len(WINDOWS)]
        self.window_changed()
        self.update_status()
        self.poll()

    def window_changed(self) -> None:
        """The window changed (a read for it has been started)."""

    def action_interval(self, step: int) -> None:
        index = REFRESH_STEPS.index(self.interval) if self.interval in REFRESH_STEPS else 3
        index = max(0, min(len(REFRESH_STEPS) - 1, index + step))
        self.set_refresh(REFRESH_STEPS[index])

    def set_refresh(self, seconds: int) -> None:
        """Read every ``seconds`` from now on."""
        self.interval = seconds
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(seconds, self._tick, name="stats refresh")
        self.update_status()

    def action_pause(self) -> None:
        """Stop reading (what is shown stays), or resume and read at once."""
        self.paused = not self.paused
        self.update_status()
        if not self.paused:
            self.poll()
        self.refresh_bindings()

    def action_refresh(self) -> None:
        self.poll()


# -- one server's, site's, client's or platform's charts --------------------------------------

_SCOPES: Final = ("server", "site", "client", "platform")


class StatsScreen(LiveScreen):
    """Charts of one server (load, memory, swap, each mount, its sites' traffic), one site
    (traffic, errors, response times, probe latency, sizes), or a client's or platform's
    sites."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *scroll_bindings("stats"),
        Binding("d", "detail", "Detail", id="stats.detail"),
    ]

    AUTO_FOCUS = "#charts"

    DEFAULT_CSS = """
    StatsScreen > #stats-summary {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $panel;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    StatsScreen > #charts {
        height: 1fr;
        layout: grid;
        grid-size: 1;
        grid-rows: 7;
        grid-gutter: 0 2;
        padding: 0 1;
        scrollbar-size-vertical: 1;
        &.-wide { grid-size: 2; }
    }
    StatsScreen #charts-empty { height: 1; color: $text-muted; text-style: italic; }
    """

    #: From this width the charts go two by two.
    WIDE: ClassVar[int] = 140
    #: Points read per series (each window is split into this many buckets at most).
    POINTS: ClassVar[int] = 60

    def __init__(self, scope: str, key: str, *, window: str = "1h", interval: int = 10) -> None:
        if scope not in _SCOPES:
            raise ValueError(f"no statistics of a {scope!r}; of: {', '.join(_SCOPES)}")
        super().__init__(window=window, interval=interval)
        self.scope = scope
        self.key = key
        self.charts: Charts | None = None
        self._metrics: tuple[str, ...] = ()

    @property
    def view_key(self) -> str:
        return f"stats@{self.scope}={self.key}"

    @property
    def crumb(self) -> str:
        return f"stats@{self.key}"

    def main_widget(self) -> Widget | None:
        return self.query_one("#charts", VerticalScroll)

    def ready_for_keys(self) -> bool:
        return super().ready_for_keys() and (self.charts is not None or self.error is not None)

    def compose(self) -> ComposeResult:
        yield from self.compose_header()
        yield Static(Text(" reading…", "italic"), id="stats-summary", markup=False)
        yield from self.compose_status()
        with VerticalScroll(id="charts"):
            yield Static("", id="charts-empty", markup=False)
        yield from self.compose_footer()

    def on_mount(self) -> None:
        charts = self.query_one("#charts", VerticalScroll)
        charts.border_title = Text(f"{self.scope} {sanitize(self.key)}")
        charts.set_class(self.app.size.width >= self.WIDE, "-wide")
        # LiveScreen.on_mount starts the clock: Textual calls it after this one.

    def on_resize(self, event: Any) -> None:
        for charts in self.query("#charts"):
            charts.set_class(event.size.width >= self.WIDE, "-wide")

    def status_prefix(self) -> Text:
        return Text(f"{self.scope} {sanitize_line(self.key)} · ", "bold")

    @work(name="reading the statistics", group="stats-charts", exclusive=True, exit_on_error=False)
    async def read(self) -> None:
        window = self.window
        data = await self.cockpit.stats_charts(
            self.scope, self.key, window, points=self.POINTS, now=now()
        )
        self.post_message(self.Loaded(data, window))

    def show(self, data: Any) -> None:
        charts: Charts = data
        self.charts = charts
        self.query_one("#stats-summary", Static).update(summary_text(charts))
        container = self.query_one("#charts", VerticalScroll)
        metrics = tuple(s.metric for s in charts.series)
        empty = self.query_one("#charts-empty", Static)
        if not charts.found:
            empty.update(Text(f" no {self.scope} {sanitize(self.key)} in the store", "italic"))
        empty.display = not charts.series
        if metrics != self._metrics:
            for old in list(container.query(Chart)):
                old.remove()
            container.mount_all(
                [
                    Chart(chart_data(series), id=f"chart-{n}", classes=_metric_class(series))
                    for n, series in enumerate(charts.series)
                ]
            )
            self._metrics = metrics
        else:
            for n, series in enumerate(charts.series):
                self.query_one(f"#chart-{n}", Chart).data = chart_data(series)
        self.refresh_bindings()

    def window_changed(self) -> None:
        for chart in self.query(Chart):
            chart.data = None

    def action_scroll(self, how: str) -> None:
        scroll(self.query_one("#charts", VerticalScroll), how)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "detail":
            return self.charts is not None and self.charts.found
        return super().check_action(action, parameters)

    def action_detail(self) -> None:
        """The view of what is charted: a server's detail, a site's, a client's or a
        platform's sites."""
        key = self.key
        if self.scope == "server":
            self.post_message(OpenView("platforms", scope=Scope("server", key)))
        elif self.scope == "site":
            self.post_message(OpenView("site", key=key))
        elif self.scope == "client":
            self.post_message(OpenView("sites", scope=Scope("client", key)))
        else:
            self.post_message(OpenView("sites", scope=Scope("platform", key)))


def _metric_class(series: Series) -> str:
    return "-disk" if series.metric.startswith("disk:") else f"-{series.metric}"


def summary_text(charts: Charts) -> Text:
    """What the charted thing is now, in a line or two (stored and remote text sanitised)."""
    out = Text(no_wrap=True, overflow="ellipsis", end="")

    def label(name: str) -> None:
        out.append(f"{name} ", "bold")

    key = sanitize_line(charts.key)
    if not charts.found:
        out.append(f"no {charts.scope} {key} in the store (deleted meanwhile?)", "italic")
        return out
    if charts.scope == "server" and charts.server is not None:
        server = charts.server
        data = server.data
        label("server")
        out.append(key, "bold")
        if server.collected_at is None:
            out.append("  no statistics yet: no collection has run", "italic")
            return out
        if server.reachable is False:
            out.append("  UNREACHABLE", "bold reverse")
            out.append(f"  {sanitize_line(server.error)[:200]}")
            out.append(f"  last reached {clock_text(server.reached_at)}")
        else:
            out.append(f"  collected {clock_text(server.collected_at)}")
        load = data.get("load1")
        if load is not None:
            cpus = data.get("cpus")
            out.append(f"  load {load:.2f}" + (f" on {cpus} CPUs" if cpus else ""))
        total = data.get("mem_total_mb") or 0
        if total:
            used = 100.0 * (total - data.get("mem_available_mb", total)) / total
            out.append(f"  memory {used:.0f} %")
        out.append("\n")
        label("disks")
        disks = [d for d in data.get("disks", ()) if d.get("size_mb")]
        if not disks:
            out.append("none measured", "italic")
        for disk in disks:
            pct = 100.0 * disk.get("used_mb", 0) / disk["size_mb"]
            out.append(f"{sanitize_line(str(disk.get('mount')))} {pct:.0f} %  ")
        services = data.get("services", ())
        if services:
            label(" services")
            for svc in services:
                name = sanitize_line(str(svc.get("name", "?")))
                state = "up" if svc.get("running") else "DOWN"
                if svc.get("config_ok") is False:
                    state += ", config fails"
                out.append(f"{name} {state}  ", "" if svc.get("running") else "bold reverse")
        return out
    if charts.scope == "site" and charts.site is not None:
        stats = charts.site
        site = stats.site
        label("site")
        out.append(key, "bold")
        out.append(f"  {site.status}  on {sanitize_line(site.server)}")
        out.append(f" / {sanitize_line(site.platform)}")
        if site.client:
            out.append(f"  client {sanitize_line(site.client)}")
        out.append("\n")
        label("probe")
        if site.probed_at is None:
            out.append("not probed yet", "italic")
        elif site.http_status is None:
            out.append("no answer", "bold reverse")
            out.append(f" ({sanitize_line(site.probe_error)[:120]})")
        else:
            status = f"HTTP {site.http_status}"
            out.append(status, "bold reverse" if site.http_status >= 500 else "")
            if site.latency_ms is not None:
                out.append(f" in {site.latency_ms:.0f} ms")
        if site.tls_expires_at is not None:
            days = (site.tls_expires_at - charts.generated_at) / 86400
            out.append(f"  certificate {days:.1f} days left")
        elif site.tls_error:
            out.append(f"  certificate: {sanitize_line(site.tls_error)[:80]}")
        out.append(
            f"  this month {_short(stats.month_requests)} requests, {_bytes(stats.month_bytes)}"
        )
        if site.disk_bytes is not None:
            out.append(f"  files {_bytes(site.disk_bytes)}")
        if site.db_bytes is not None:
            out.append(f"  database {_bytes(site.db_bytes)}")
        out.append(f"  last backup {clock_text(stats.last_backup)}")
        return out
    label(charts.scope)
    out.append(key, "bold")
    out.append("  its sites' traffic, summed", "italic")
    return out


# -- :stats NAME ----------------------------------------------------------------------------


async def resolve_stats_target(cockpit: Cockpit, argument: str) -> tuple[str, str]:
    """What ``:stats NAME`` charts: ``server=``, ``site=``, ``client=``, ``platform=`` say
    it; a bare name is tried as a server, a platform, a client, then a site's domain."""
    word = argument.strip()
    kind, eq, name = word.partition("=")
    if eq:
        kind = kind.lower()
        if kind not in _SCOPES:
            raise CommandError(
                f":stats takes server=, site=, client= or platform=, not {sanitize_line(kind)}="
            )
        found = await _exists(cockpit, kind, name)
        if not found:
            raise CommandError(f"no {kind} {sanitize_line(name)!r} in the store")
        return kind, name
    for kind in _SCOPES_BY_NAME:
        if await _exists(cockpit, kind, word):
            return kind, word
    raise CommandError(f"no server, platform, client or site named {sanitize_line(word)!r}")


_SCOPES_BY_NAME: Final = ("server", "platform", "client", "site")


async def _exists(cockpit: Cockpit, kind: str, name: str) -> bool:
    if kind == "server":
        return await cockpit.server(name) is not None
    if kind == "platform":
        return await cockpit.platform(name) is not None
    if kind == "client":
        return any(c.name == name for c in await cockpit.clients())
    return await cockpit.site(name) is not None

"""``GpuMonitor``: a live GPU dashboard for notebooks, and a replay of recorded telemetry.

>>> from aiops_lab.gpu.widgets import GpuMonitor
>>> GpuMonitor()  # doctest: +SKIP
>>> GpuMonitor.replay(telemetry_frame, speed=120)  # doctest: +SKIP

The view is plain ipywidgets HTML with inline SVG sparklines (utilization, memory and power
per GPU over the last N minutes), so it costs little per tick, needs no chart renderer and
never raises in a kernel without a frontend. :meth:`GpuMonitor.chart` gives the same window
as an Altair chart when wanted.
"""

from __future__ import annotations

import bisect
import html
import math
import threading
from collections import deque
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl

from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, ParameterError
from aiops_lab.gpu.live import _SCHEMA, GpuStatus, Sampler, _check_interval, gpu_status, sample

if TYPE_CHECKING:
    import altair as alt

__all__ = ["GpuMonitor"]

_SPARK_W, _SPARK_H = 160, 26
_MIN_STEP_S = 0.1  # a replay redraws at most this often (wall seconds)
_MAX_WAIT_S = 2.0  # a gap in the log never stalls a replay longer than this
_LIVE_MAX_ROWS = 20_000  # rows the live sampler keeps besides the window
_COLORS = {"util": "#4c78a8", "mem": "#f58518", "power": "#54a24b"}


class GpuMonitor(widgets.VBox):
    """A live view of this machine's GPUs, or a replay of a telemetry frame.

    Parameters
    ----------
    frame : polars.DataFrame or LazyFrame, optional
        Telemetry to replay (the telemetry schema; ``timestamp`` and ``gpu`` are required,
        missing columns are taken as null). Without it the monitor samples live GPUs.
    interval : float
        Live: seconds between samples (changeable with the slider while running).
    window_minutes : float
        Minutes of history shown. Live, only this window is kept in the widget (the
        sampler keeps its newest rows too: ``monitor.sampler.frame()``).
    devices : int, str or sequence, optional
        Live: GPU indices or UUIDs to watch (default all).
    processes : bool
        Live: attribute each GPU to the user and job of its largest process.
    speed : float
        Replay: seconds of telemetry per wall-clock second.
    autostart : bool
        Start sampling / playing at once (never inside a headless report run).
    redraw_every : int
        Live: redraw the view every this many ticks.

    Without an NVIDIA GPU the monitor shows why ("no NVIDIA GPU visible (...)") and how to
    replay recorded telemetry instead; nothing is sampled and nothing is raised.
    """

    def __init__(
        self,
        frame: pl.DataFrame | pl.LazyFrame | None = None,
        *,
        interval: float = 1.0,
        window_minutes: float = 10.0,
        devices: int | str | Sequence[int | str] | None = None,
        processes: bool = True,
        speed: float = 60.0,
        autostart: bool = True,
        redraw_every: int = 1,
        **kwargs: Any,
    ) -> None:
        from aiops_lab.display import in_report

        if not isinstance(window_minutes, (int, float)) or not window_minutes > 0:
            raise ParameterError("window_minutes", "a positive number of minutes", window_minutes)
        if isinstance(redraw_every, bool) or not isinstance(redraw_every, int) or redraw_every < 1:
            raise ParameterError("redraw_every", "a positive integer", redraw_every)
        if not isinstance(speed, (int, float)) or not speed > 0:
            raise ParameterError("speed", "a positive number (telemetry seconds per second)", speed)
        interval = _check_interval(interval)
        autostart = autostart and not in_report()
        self.sampler: Sampler | None = None
        self.status: GpuStatus | None = None
        self._devices, self._processes = devices, processes
        self._redraw_every = redraw_every
        self._lock = threading.Lock()
        self._buffer: deque[pl.DataFrame] = deque()
        self._n_ticks = 0
        self._player: threading.Thread | None = None
        self._player_stop = threading.Event()
        self._stopped = False
        self.last_error: BaseException | None = None

        self.header = widgets.HTML()
        self.body = widgets.HTML()
        self.footer = widgets.HTML()
        self.window = widgets.BoundedFloatText(
            value=float(window_minutes),
            min=0.5,
            max=max(1440.0, float(window_minutes)),
            step=0.5,
            description="window (min)",
            layout=widgets.Layout(width="180px"),
        )
        self.pause = widgets.ToggleButton(value=not autostart, layout=widgets.Layout(width="110px"))
        self.stop_button = widgets.Button(
            description="Stop", icon="stop", layout=widgets.Layout(width="90px")
        )
        self.stop_button.on_click(lambda _: self.stop())
        self.window.observe(self._on_window, names="value")
        self.pause.observe(self._on_pause, names="value")

        if frame is not None:
            self.mode = "replay"
            self.data: pl.DataFrame | None = _conform(frame)
            self._ticks: list[datetime] = self.data["timestamp"].unique().sort().to_list()
            self._secs = [t.timestamp() for t in self._ticks]
            self.speed = widgets.FloatLogSlider(
                value=float(speed),
                base=10,
                min=-1,
                max=4,
                step=0.1,
                description="speed ×",
                continuous_update=False,
                layout=widgets.Layout(width="300px"),
            )
            last = len(self._ticks) - 1
            self.time = widgets.IntSlider(
                value=0 if autostart else last,
                min=0,
                max=last,
                description="time",
                readout=False,
                continuous_update=True,
                layout=widgets.Layout(width="520px"),
            )
            self.time_label = widgets.HTML()
            self.time.observe(self._on_time, names="value")
            controls = widgets.HBox([self.speed, self.window, self.pause, self.stop_button])
            children = [
                self.header,
                controls,
                widgets.HBox([self.time, self.time_label]),
                self.body,
                self.footer,
            ]
            super().__init__(children, **kwargs)
            hosts = self.data["host"].drop_nulls().unique().to_list()
            self.header.value = _banner(
                f"Replay of {self.data.height:,} samples, {len(self._ticks):,} ticks, "
                f"{_span(self._ticks[0], self._ticks[-1])}"
                + (f" from {html.escape(', '.join(map(str, hosts[:3])))}" if hosts else ""),
                ok=True,
            )
            self._label_pause()
            self._show_at(self.time.value)
            if autostart:
                self._play()
            return

        self.data = None
        self.interval = widgets.FloatSlider(
            value=float(interval),
            min=min(0.2, float(interval)),
            max=max(10.0, float(interval)),
            step=0.1,
            description="interval (s)",
            continuous_update=False,
            layout=widgets.Layout(width="300px"),
        )
        self.interval.observe(self._on_interval, names="value")
        controls = widgets.HBox([self.interval, self.window, self.pause, self.stop_button])
        super().__init__([self.header, controls, self.body, self.footer], **kwargs)
        self.status = gpu_status()
        if not self.status.available:
            self.mode = "unavailable"
            self.header.value = _banner(html.escape(self.status.reason), ok=False)
            self.body.value = (
                "<p style='color:#555'>Nothing to sample on this machine. To look at recorded "
                "telemetry, replay it: <code>GpuMonitor.replay(frame)</code>.</p>"
            )
            for w in (self.interval, self.window, self.pause, self.stop_button):
                w.disabled = True
            self._label_pause()
            return
        self.mode = "live"
        self.header.value = _banner(html.escape(self.status.reason), ok=True)
        self.body.value = "<p style='color:#555'>Waiting for the first sample…</p>"
        self._label_pause()
        if autostart:
            self._start()

    # ------------------------------------------------------------------ public API
    @classmethod
    def replay(
        cls,
        frame: pl.DataFrame | pl.LazyFrame,
        speed: float = 60.0,
        *,
        window_minutes: float = 10.0,
        autoplay: bool = True,
        **kwargs: Any,
    ) -> GpuMonitor:
        """Replay recorded telemetry in the monitor's view, ``speed`` times real time.

        Drag the time slider to jump; Pause/Play to stop and go on.
        """
        return cls(
            frame=frame, speed=speed, window_minutes=window_minutes, autostart=autoplay, **kwargs
        )

    @property
    def running(self) -> bool:
        """True while live sampling or a replay is in progress."""
        if self.sampler is not None and self.sampler.running and not self.sampler.paused:
            return True
        return self._player is not None and self._player.is_alive()

    def frame(self) -> pl.DataFrame:
        """The telemetry behind the view: the window kept so far (live) or the whole replay."""
        if self.data is not None:
            return self.data
        with self._lock:
            parts = list(self._buffer)
        return pl.concat(parts, how="vertical") if parts else pl.DataFrame(schema=_SCHEMA)

    def view(self) -> pl.DataFrame:
        """The telemetry in the window shown now."""
        if self.data is not None:
            end = self._ticks[self.time.value]
            return _window(self.data, end, self._window_s())
        return self.frame()

    def chart(self) -> alt.TopLevelMixin:
        """The window shown now as an Altair chart (utilization, memory %, power per GPU)."""
        import altair as alt

        long = (
            _with_label(self.view())
            .with_columns(
                (100.0 * pl.col("mem_used_mib") / pl.col("mem_total_mib")).alias("memory_pct")
            )
            .select(
                "timestamp",
                "label",
                pl.col("util_pct").alias("utilization_pct"),
                "memory_pct",
                "power_w",
            )
            .unpivot(index=["timestamp", "label"], variable_name="metric", value_name="value")
        )
        return (
            alt.Chart(long)
            .mark_line()
            .encode(
                x=alt.X("timestamp:T", title=None),
                y=alt.Y("value:Q", title=None),
                color=alt.Color("label:N", title="GPU"),
                row=alt.Row("metric:N", title=None),
            )
            .properties(width=520, height=110)
            .resolve_scale(y="independent")
        )

    def stop(self) -> None:
        """Stop sampling (live) or playback (replay) for good; the view stays."""
        self._stopped = True
        if self.sampler is not None:
            self.sampler.stop()
        self._halt()
        for w in (self.pause, self.stop_button):
            w.disabled = True
        if self.mode == "live":
            self.interval.disabled = True
            self.footer.value = _note(f"Stopped after {self._n_ticks} ticks.")
        self._label_pause()

    def close(self) -> None:
        """Stop, then close this widget and its parts."""
        self.stop()
        pending = list(self.children)
        while pending:
            part = pending.pop()
            pending.extend(getattr(part, "children", ()))
            part.close()
        super().close()

    # ------------------------------------------------------------------ live
    def _start(self) -> None:
        try:
            got = sample(
                None,
                self.interval.value,
                devices=self._devices,
                processes=self._processes,
                background=True,
                on_sample=self._on_tick,
                max_rows=_LIVE_MAX_ROWS,
            )
        except Exception as exc:  # e.g. a device index that is not there
            self.last_error = exc
            self.header.value = _banner(html.escape(str(exc)), ok=False)
            self.pause.value = True
            return
        assert isinstance(got, Sampler)
        self.sampler = got

    def _on_tick(self, tick: pl.DataFrame) -> None:
        with self._lock:
            self._buffer.append(tick)
            self._n_ticks += 1
            newest = _newest(tick)
            horizon = newest - timedelta(seconds=self._window_s()) if newest else None
            while horizon is not None and len(self._buffer) > 1:
                oldest = _newest(self._buffer[0])
                if oldest is not None and oldest >= horizon:
                    break
                self._buffer.popleft()
            due = self._n_ticks % self._redraw_every == 0
        if due:
            self._redraw_live()

    def _redraw_live(self) -> None:
        try:
            data = self.frame()
            end = _newest(data)
            self.body.value = _table(data, end, self._window_s())
            error = self.sampler.error if self.sampler is not None else None
            when = end.strftime("%H:%M:%S UTC") if end is not None else "–"
            note = f"{self._n_ticks} ticks · last sample {when}"
            if error is not None:
                note += f" · last error: {html.escape(str(error))}"
            self.footer.value = _note(note)
        except Exception as exc:  # never let a drawing problem stop the sampler
            self.last_error = exc

    def _on_interval(self, change: dict[str, Any]) -> None:
        if self.sampler is not None:
            self.sampler.interval = float(change["new"])

    # ------------------------------------------------------------------ replay
    def _play(self) -> None:
        if self.data is None or self._stopped or (self._player and self._player.is_alive()):
            return
        if self.time.value >= len(self._ticks) - 1:
            self.time.value = 0  # play again from the start
        self._player_stop = threading.Event()
        self._player = threading.Thread(
            target=self._play_loop,
            args=(self._player_stop,),
            name="aiops-lab-gpu-replay",
            daemon=True,
        )
        self._player.start()

    def _play_loop(self, stop: threading.Event) -> None:
        secs, last = self._secs, len(self._secs) - 1
        try:
            while not stop.is_set():
                i = self.time.value
                if i >= last:
                    break
                speed = max(float(self.speed.value), 1e-6)
                reach = secs[i] + max(_MIN_STEP_S * speed, secs[i + 1] - secs[i])
                j = min(max(bisect.bisect_right(secs, reach) - 1, i + 1), last)
                if stop.wait(min((secs[j] - secs[i]) / speed, _MAX_WAIT_S)):
                    return
                if self.time.value == i:  # unless the slider was moved meanwhile
                    self.time.value = j
        except Exception as exc:  # pragma: no cover - defensive in a widget thread
            self.last_error = exc
        if not stop.is_set():  # reached the end
            self.pause.value = True
            self.footer.value = _note("Replay finished; press Play to start again.")

    def _halt(self) -> None:
        self._player_stop.set()
        player = self._player
        if player is not None and player is not threading.current_thread():
            player.join(5.0)

    def _on_time(self, change: dict[str, Any]) -> None:
        self._show_at(int(change["new"]))

    def _show_at(self, i: int) -> None:
        try:
            assert self.data is not None
            end = self._ticks[i]
            view = _window(self.data, end, self._window_s())
            self.body.value = _table(view, end, self._window_s())
            self.time_label.value = _note(end.strftime("%Y-%m-%d %H:%M:%S UTC"))
        except Exception as exc:
            self.last_error = exc

    # ------------------------------------------------------------------ shared
    def _window_s(self) -> float:
        return max(float(self.window.value), 0.5) * 60.0

    def _on_window(self, _: Any) -> None:
        if self.mode == "replay":
            self._show_at(self.time.value)
        elif self.mode == "live":
            self._redraw_live()

    def _on_pause(self, change: dict[str, Any]) -> None:
        paused = bool(change["new"])
        self._label_pause()
        if self._stopped:
            return
        if self.mode == "replay":
            if paused:
                self._halt()
            else:
                self._play()
        elif self.mode == "live":
            if self.sampler is None:
                if not paused:
                    self._start()
            elif paused:
                self.sampler.pause()
            else:
                self.sampler.resume()

    def _label_pause(self) -> None:
        if self.pause.value:
            started = self.sampler is not None or self.mode == "replay"
            self.pause.description = (
                "Play" if self.mode == "replay" else ("Resume" if started else "Start")
            )
            self.pause.icon = "play"
        else:
            self.pause.description, self.pause.icon = "Pause", "pause"


# ---------------------------------------------------------------------- data helpers


def _conform(frame: Any) -> pl.DataFrame:
    """A replay frame in the telemetry schema, sorted by time."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        raise ParameterError(
            "frame", "a polars DataFrame/LazyFrame in the telemetry schema", type(frame).__name__
        )
    for col in ("timestamp", "gpu"):
        if col not in frame.columns:
            raise ColumnNotFoundError(col, "the telemetry to replay", frame.columns)
    ts = pl.col("timestamp")
    dtype = frame.schema["timestamp"]
    if dtype == pl.Utf8:
        ts = ts.str.to_datetime(time_zone="UTC")
    elif isinstance(dtype, pl.Datetime):
        ts = (
            ts.dt.replace_time_zone("UTC")
            if dtype.time_zone is None
            else ts.dt.convert_time_zone("UTC")
        )
    out = frame.with_columns(ts.alias("timestamp")).select(
        [
            pl.col(name).cast(dt, strict=False)
            if name in frame.columns
            else pl.lit(None, dtype=dt).alias(name)
            for name, dt in _SCHEMA.items()
        ]
    )
    out = out.filter(pl.col("timestamp").is_not_null()).sort("timestamp", maintain_order=True)
    if out.height == 0:
        raise EmptyInputError("The telemetry to replay has no samples (no rows with a timestamp).")
    return out


def _newest(data: pl.DataFrame) -> datetime | None:
    value = data["timestamp"].max() if data.height else None
    return value if isinstance(value, datetime) else None


def _window(data: pl.DataFrame, end: datetime, seconds: float) -> pl.DataFrame:
    start = end - timedelta(seconds=seconds)
    return data.filter((pl.col("timestamp") > start) & (pl.col("timestamp") <= end))


def _with_label(data: pl.DataFrame) -> pl.DataFrame:
    multi_host = data["host"].n_unique() > 1
    gpu = pl.format("gpu {}", pl.col("gpu"))
    if multi_host:
        gpu = pl.format("{} {}", pl.col("host").fill_null("?"), gpu)
    mig = pl.format(" · {} #{}", pl.col("mig_profile").fill_null("MIG"), pl.col("mig_instance"))
    label = pl.when(pl.col("mig_instance").is_null()).then(gpu).otherwise(pl.concat_str([gpu, mig]))
    return data.with_columns(label.alias("label"))


# ---------------------------------------------------------------------- HTML


def _banner(text: str, *, ok: bool) -> str:
    color, bg = ("#1b5e20", "#e8f5e9") if ok else ("#8a1c1c", "#fdecea")
    return (
        f"<div style='padding:6px 10px;border-radius:4px;background:{bg};color:{color};"
        f"font-weight:600'>{text}</div>"
    )


def _note(text: str) -> str:
    return f"<span style='color:#666;font-size:90%'>{text}</span>"


def _span(a: datetime, b: datetime) -> str:
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M} UTC"


def _spark(xs: list[float], ys: list[float | None], ymax: float, color: str) -> str:
    """An inline SVG sparkline; None breaks the line."""
    ymax = ymax if ymax > 0 else 1.0
    step = max(1, math.ceil(len(xs) / (_SPARK_W * 1.5)))
    segments: list[list[str]] = [[]]
    for x, y in zip(xs[::step], ys[::step], strict=True):
        if y is None:
            if segments[-1]:
                segments.append([])
            continue
        py = _SPARK_H - 1 - (min(max(y, 0.0), ymax) / ymax) * (_SPARK_H - 2)
        segments[-1].append(f"{x * _SPARK_W:.1f},{py:.1f}")
    lines = "".join(
        f"<polyline points='{' '.join(s)}' fill='none' stroke='{color}' stroke-width='1.5'/>"
        if len(s) > 1
        else f"<circle cx='{s[0].split(',')[0]}' cy='{s[0].split(',')[1]}' r='1.5' fill='{color}'/>"
        for s in segments
        if s
    )
    return (
        f"<svg width='{_SPARK_W}' height='{_SPARK_H}' style='background:#f7f7f7;"
        f"vertical-align:middle'>{lines}</svg>"
    )


def _latest(values: list[Any]) -> Any:
    return next((v for v in reversed(values) if v is not None), None)


def _fmt(value: float | None, unit: str, digits: int = 0) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _table(data: pl.DataFrame, end: datetime | None, window_s: float) -> str:
    """One row per GPU (or MIG instance): sparklines over the window and the latest values."""
    if data.height == 0 or end is None:
        return "<p style='color:#555'>No samples in this window.</p>"
    start = end - timedelta(seconds=window_s)
    labelled = _with_label(data).sort("label", "timestamp")
    power_max = data["power_w"].max()
    ymax_power = float(power_max) if isinstance(power_max, (int, float)) else 1.0
    head = "".join(
        f"<th style='text-align:left;padding:2px 8px'>{h}</th>"
        for h in ("GPU", "user / job", "utilization", "memory", "power", "temp")
    )
    rows = []
    for (label,), group in labelled.group_by(["label"], maintain_order=True):
        xs = [(t - start).total_seconds() / window_s for t in group["timestamp"].to_list()]
        util = group["util_pct"].to_list()
        used = group["mem_used_mib"].to_list()
        total = group["mem_total_mib"].to_list()
        mem_pct = [
            None if u is None or not t else 100.0 * u / t for u, t in zip(used, total, strict=True)
        ]
        power = group["power_w"].to_list()
        who = " / ".join(
            html.escape(str(v))
            for v in (_latest(group["user"].to_list()), _latest(group["job_id"].to_list()))
            if v is not None
        )
        model = _latest(group["model"].to_list())
        last_used, last_total = _latest(used), _latest(total)
        mem_text = (
            "–"
            if last_used is None
            else (
                f"{last_used / 1024:.1f}"
                + (f" / {last_total / 1024:.0f} GiB" if last_total else " GiB")
            )
        )
        cells = [
            f"<b>{html.escape(str(label))}</b><br>"
            f"<span style='color:#777;font-size:85%'>{html.escape(str(model or ''))}</span>",
            who or "<span style='color:#999'>–</span>",
            f"{_spark(xs, util, 100.0, _COLORS['util'])} {_fmt(_latest(util), ' %')}",
            f"{_spark(xs, mem_pct, 100.0, _COLORS['mem'])} {mem_text}",
            f"{_spark(xs, power, ymax_power, _COLORS['power'])} {_fmt(_latest(power), ' W')}",
            _fmt(_latest(group["temp_c"].to_list()), " °C"),
        ]
        rows.append(
            "<tr>" + "".join(f"<td style='padding:2px 8px'>{c}</td>" for c in cells) + "</tr>"
        )
    return (
        f"<table style='border-collapse:collapse'><tr>{head}</tr>{''.join(rows)}</table>"
        + _note(f"last {window_s / 60:g} min · until {end:%Y-%m-%d %H:%M:%S} UTC")
    )

"""Live GPU telemetry from NVML (through nvitop): a probe, a sampler and a background sampler.

>>> from aiops_lab.gpu.live import gpu_status, sample
>>> gpu_status().reason  # doctest: +SKIP
'2 NVIDIA GPUs visible (driver 550.54.15)'
>>> frame = sample(duration=60, interval=1)  # doctest: +SKIP
>>> with sample(duration=None, background=True) as sampler:  # doctest: +SKIP
...     train()
>>> sampler.frame()  # doctest: +SKIP

Every function here is safe on a machine without an NVIDIA GPU: :func:`gpu_status` says
why none is visible, :func:`sample` warns once (an :class:`~aiops_lab.errors.AiopsLabWarning`)
and returns an empty frame in the telemetry schema. nvitop's own "FATAL ERROR" banner
(logged when the NVML library is missing) is kept off stderr.

Each row is one GPU at one tick (one row per MIG instance when MIG mode is on). NVML gives
no SM-active or tensor-active ratios, so ``sm_active`` and ``tensor_active`` are null
(DCGM exports have them). Readings NVML cannot give (nvitop's ``NA``) become nulls.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import socket
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import polars as pl

from aiops_lab.errors import AiopsLabWarning, ParameterError
from aiops_lab.gpu._schema import TELEMETRY_SCHEMA

__all__ = ["GpuStatus", "Sampler", "gpu_status", "sample"]

_LOG = logging.getLogger(__name__)
_NVITOP_LOGGER = "nvitop.api.libnvml"
_MIB = 1024.0 * 1024.0

_SCHEMA = pl.Schema(TELEMETRY_SCHEMA)  # the one telemetry schema every reader returns
_COLUMNS = tuple(_SCHEMA.names())

#: environment variables that name the batch job of a process, first match wins
_JOB_ENV = ("SLURM_JOB_ID", "SLURM_JOBID")
#: command-line forms that carry a Slurm job id (``srun --jobid=123``, ``env SLURM_JOB_ID=123 ...``)
_JOB_CMDLINE = re.compile(r"(?:--jobid[= ]|--job-id[= ]|SLURM_JOB_ID=)(\d[\w.+-]*)")
_MIG_PROFILE = re.compile(r"(\d+g\.\d+gb(?:\+\w+)?)", re.IGNORECASE)


# --------------------------------------------------------------------------- quiet NVML


class _QuietNvml:
    """Disable nvitop's NVML logger while any probe or tick runs (re-entrant, thread-safe).

    Without a driver, nvitop logs a red "FATAL ERROR" banner to stderr on every failed
    initialisation; the reason is reported cleanly by :func:`gpu_status` instead.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        logger = logging.getLogger(_NVITOP_LOGGER)
        with self._lock:
            if self._depth == 0:
                self._saved = logger.disabled
                logger.disabled = True
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    logger.disabled = self._saved


_quiet_nvml = _QuietNvml()


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class GpuStatus:
    """Whether NVIDIA GPUs are visible to this process, and which.

    Attributes
    ----------
    available : bool
        True when NVML initialised and reported at least one GPU.
    reason : str
        A sentence for people: ``"2 NVIDIA GPUs visible (driver 550.54.15)"`` or
        ``"no NVIDIA GPU visible (NVML library not found)"``.
    devices : list of dict
        One dict per physical GPU: ``index``, ``name``, ``uuid``, ``memory_total_mib``,
        ``mig`` (MIG mode enabled).
    driver : str or None
        The NVIDIA driver version.
    """

    available: bool
    reason: str
    devices: list[dict[str, Any]] = field(default_factory=list)
    driver: str | None = None

    def __str__(self) -> str:
        return self.reason


def _no_gpu(why: str) -> GpuStatus:
    return GpuStatus(False, f"no NVIDIA GPU visible ({why})", [], None)


def _nvml_reason(exc: BaseException, pynvml: Any) -> str:
    known = (
        ("NVMLError_LibraryNotFound", "NVML library not found"),
        ("NVMLError_DriverNotLoaded", "NVIDIA driver not loaded"),
        (
            "NVMLError_LibRmVersionMismatch",
            "NVIDIA driver and library versions differ; reload the kernel module or reboot",
        ),
        ("NVMLError_NoPermission", "no permission to query NVML"),
        ("NVMLError_Uninitialized", "NVML not initialised"),
    )
    for name, why in known:
        cls = getattr(pynvml, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return why
    return f"NVML error: {exc}"


def gpu_status() -> GpuStatus:
    """Probe NVML once and say whether GPUs are visible; never raises, never prints.

    Returns
    -------
    GpuStatus
        ``available`` False with the reason (NVML library not found, driver not loaded,
        no devices, ...) on machines without a usable NVIDIA GPU.
    """
    try:
        import pynvml
    except Exception as exc:
        return _no_gpu(f"nvidia-ml-py (pynvml) cannot be imported: {exc}")
    try:
        with _quiet_nvml():
            pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return _no_gpu(_nvml_reason(exc, pynvml))
    except Exception as exc:
        return _no_gpu(f"NVML initialisation failed: {exc}")
    try:
        with _quiet_nvml():
            from nvitop import Device

            physical = list(Device.all())
            driver = _text(Device.driver_version())
            devices = [_describe(d) for d in physical]
    except pynvml.NVMLError as exc:
        return _no_gpu(_nvml_reason(exc, pynvml))
    except Exception as exc:
        return _no_gpu(f"NVML query failed: {exc}")
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    if not devices:
        return _no_gpu("NVML found no devices")
    n = len(devices)
    where = f" (driver {driver})" if driver else ""
    return GpuStatus(True, f"{n} NVIDIA GPU{'s' if n > 1 else ''} visible{where}", devices, driver)


def _describe(device: Any) -> dict[str, Any]:
    total = _num(_call(device, "memory_total"))
    return {
        "index": int(device.index),
        "name": _text(_call(device, "name")),
        "uuid": _text(_call(device, "uuid")),
        "memory_total_mib": None if total is None else total / _MIB,
        "mig": bool(_call(device, "is_mig_mode_enabled", False)),
    }


# --------------------------------------------------------------------------- value helpers


def _is_na(value: Any) -> bool:
    return value is None or type(value).__name__ == "NaType"


def _num(value: Any) -> float | None:
    """A number from an nvitop reading; ``NA``, None, NaN and non-numbers become None."""
    if _is_na(value) or isinstance(value, (str, bool)):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _text(value: Any) -> str | None:
    if _is_na(value):
        return None
    out = str(value)
    return out or None


def _call(obj: Any, name: str, default: Any = None) -> Any:
    """``obj.name()``, or ``default`` when the method is missing or the query fails."""
    fn = getattr(obj, name, None)
    if fn is None:
        return default
    try:
        return fn()
    except Exception:
        return default


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=_SCHEMA)


def _frame(rows: Sequence[tuple[Any, ...]]) -> pl.DataFrame:
    if not rows:
        return _empty()
    return pl.DataFrame(list(rows), schema=_SCHEMA, orient="row")


# --------------------------------------------------------------------------- reading


class _Reader:
    """Reads one tick of telemetry from a fixed list of nvitop devices."""

    def __init__(self, devices: list[Any], *, processes: bool) -> None:
        self.devices = devices
        self.processes = processes
        self.host = socket.gethostname()
        self._owners: dict[int, tuple[str | None, str | None, str | None, str | None]] = {}
        self.last_error: BaseException | None = None

    def read(self) -> list[tuple[Any, ...]]:
        ts = datetime.now(timezone.utc)
        rows: list[tuple[Any, ...]] = []
        seen: set[int] = set()
        with _quiet_nvml():
            for device in self.devices:
                try:
                    rows.extend(self._device_rows(device, ts, seen))
                except Exception as exc:  # a GPU that fell off the bus skips this tick
                    self.last_error = exc
                    _LOG.debug("reading GPU %s failed: %s", getattr(device, "index", "?"), exc)
        for pid in set(self._owners) - seen:  # forget processes that ended
            del self._owners[pid]
        return rows

    def _device_rows(self, device: Any, ts: datetime, seen: set[int]) -> list[tuple[Any, ...]]:
        oneshot = getattr(device, "oneshot", None)
        ctx = oneshot() if callable(oneshot) else contextlib.nullcontext()
        with ctx:
            gpu = int(device.index)
            model = _text(_call(device, "name"))
            power = _num(_call(device, "power_usage"))  # milliwatts
            power_w = None if power is None else power / 1000.0
            temp = _num(_call(device, "temperature"))
            migs = list(_call(device, "mig_devices", None) or [])
            if not _call(device, "is_mig_mode_enabled", False):
                migs = []
            targets = (
                [(device, None, None)]
                if not migs
                else [
                    (m, _mig_profile(_text(_call(m, "name"))), _text(_call(m, "gpu_instance_id")))
                    for m in migs
                ]
            )
            rows = []
            for target, profile, instance in targets:
                used = _num(_call(target, "memory_used"))
                total = _num(_call(target, "memory_total"))
                owner = self._owner(target, seen) if self.processes else (None,) * 4
                job_id, user, pod, namespace = owner
                rows.append(
                    (
                        ts,
                        self.host,
                        gpu,
                        _text(_call(target, "uuid")),
                        model,
                        _num(_call(target, "gpu_utilization")),
                        None,  # sm_active: not available from NVML
                        None,  # tensor_active: not available from NVML
                        None if used is None else used / _MIB,
                        None if total is None else total / _MIB,
                        power_w,  # device-level, repeated on each MIG instance row
                        temp,
                        profile,
                        instance,
                        job_id,
                        user,
                        pod,
                        namespace,
                        "nvml",
                    )
                )
        return rows

    def _owner(
        self, device: Any, seen: set[int]
    ) -> tuple[str | None, str | None, str | None, str | None]:
        """(job_id, user, pod, namespace) of the process holding the most memory on ``device``."""
        procs = _call(device, "processes", None) or {}
        if not procs:
            return (None, None, None, None)
        ordered = sorted(procs.items(), key=lambda kv: kv[0])
        pid, top = max(ordered, key=lambda kv: _num(_call(kv[1], "gpu_memory")) or 0.0)
        pid = int(pid)
        seen.add(pid)
        if pid not in self._owners:
            self._owners[pid] = _identify(top)
        return self._owners[pid]


def _identify(proc: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """Who runs ``proc`` (a ``GpuProcess``): job id, user, Kubernetes pod and namespace.

    Best effort: the environment of another user's process is readable only as root (or
    as that user), so ``job_id``/``pod`` stay null where it is not.
    """
    user = _text(_call(proc, "username"))
    env: dict[str, str] = {}
    host = getattr(proc, "host", None)
    if host is not None:
        got = _call(host, "environ", None)
        if isinstance(got, dict):
            env = got
    job_id = next((env[k] for k in _JOB_ENV if env.get(k)), None)
    if job_id is None:
        cmdline = _call(proc, "cmdline", None) or []
        match = _JOB_CMDLINE.search(" ".join(str(a) for a in cmdline))
        job_id = match.group(1) if match else None
    pod = env.get("POD_NAME") or (
        env.get("HOSTNAME") if env.get("KUBERNETES_SERVICE_HOST") else None
    )
    namespace = env.get("POD_NAMESPACE") or None
    return (job_id, user, pod or None, namespace)


def _mig_profile(name: str | None) -> str | None:
    match = _MIG_PROFILE.search(name or "")
    return match.group(1).lower() if match else None


def _select(selection: Any) -> list[Any]:
    """The nvitop physical devices chosen by index or UUID (all when None)."""
    from nvitop import Device

    with _quiet_nvml():
        physical = list(Device.all())
    if selection is None:
        return physical
    wanted = [selection] if isinstance(selection, (int, str)) else list(selection)
    by_index = {int(d.index): d for d in physical}
    by_uuid = {_text(_call(d, "uuid")): d for d in physical}
    chosen = []
    for w in wanted:
        device = by_index.get(w) if isinstance(w, int) else by_uuid.get(w)
        if device is None:
            raise ParameterError(
                "devices",
                "GPU indices or UUIDs of visible GPUs: "
                + (", ".join(f"{i} ({uuid})" for i, uuid in _labels(physical)) or "none"),
                w,
                "Call gpu_status() to list the visible GPUs.",
            )
        if device not in chosen:
            chosen.append(device)
    return chosen


def _labels(physical: list[Any]) -> list[tuple[int, str | None]]:
    return [(int(d.index), _text(_call(d, "uuid"))) for d in physical]


# --------------------------------------------------------------------------- scheduling


def _schedule(n: int | None, interval: Callable[[], float], stop: threading.Event) -> Iterator[int]:
    """Yield tick numbers ``interval()`` seconds apart; missed ticks are dropped, not bunched."""
    due = time.monotonic()
    i = 0
    while n is None or i < n:
        if stop.is_set():
            return
        yield i
        i += 1
        if n is not None and i >= n:
            return
        due += interval()
        delay = due - time.monotonic()
        if delay < 0:
            due, delay = time.monotonic(), 0.0
        if stop.wait(delay):
            return


def _n_ticks(duration: float | None, interval: float) -> int | None:
    if duration is None:
        return None
    return max(1, round(duration / interval))


# --------------------------------------------------------------------------- sampler


class Sampler:
    """Samples GPU telemetry in a daemon thread; returned by ``sample(background=True)``.

    Use as a context manager (sampling stops on exit) or call :meth:`stop`.

    Attributes
    ----------
    status : GpuStatus
        What :func:`gpu_status` found when sampling started.
    interval : float
        Seconds between ticks; may be changed while running.
    error : Exception or None
        The last error raised while reading a GPU or inside ``on_sample`` (sampling goes on).
    ticks : int
        Ticks sampled so far.
    """

    def __init__(
        self,
        status: GpuStatus,
        *,
        interval: float,
        duration: float | None = None,
        reader: _Reader | None = None,
        on_sample: Callable[[pl.DataFrame], Any] | None = None,
        max_rows: int | None = None,
    ) -> None:
        self.status = status
        self._interval = interval
        self._n = _n_ticks(duration, interval)
        self._reader = reader
        self._on_sample = on_sample
        self._rows: deque[tuple[Any, ...]] = deque(maxlen=max_rows)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self.error: BaseException | None = None
        self._callback_failed = False
        self.ticks = 0
        self._thread: threading.Thread | None = None
        if reader is not None:
            self._thread = threading.Thread(
                target=self._run, name="aiops-lab-gpu-sampler", daemon=True
            )
            self._thread.start()

    # -- properties
    @property
    def running(self) -> bool:
        """True while the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, value: float) -> None:
        self._interval = _check_interval(value)

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    # -- control
    def pause(self) -> None:
        """Skip ticks (no NVML queries) until :meth:`resume`."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    def stop(self, timeout: float | None = 5.0) -> pl.DataFrame:
        """Stop sampling, wait for the thread (up to ``timeout`` s) and return :meth:`frame`."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return self.frame()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a sampler with a ``duration`` to finish; True when it has."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def frame(self) -> pl.DataFrame:
        """The samples so far, in the telemetry schema (a copy; sampling goes on)."""
        with self._lock:
            rows = list(self._rows)
        return _frame(rows)

    # -- thread
    def _run(self) -> None:
        assert self._reader is not None
        for _ in _schedule(self._n, lambda: self._interval, self._stop):
            if self._paused.is_set():
                continue
            try:
                rows = self._reader.read()
            except Exception as exc:  # pragma: no cover - _Reader.read already guards
                self.error = exc
                continue
            if self._reader.last_error is not None:
                self.error, self._reader.last_error = self._reader.last_error, None
            with self._lock:
                self._rows.extend(rows)
                self.ticks += 1
            if self._on_sample is not None and rows:
                try:
                    self._on_sample(_frame(rows))
                except Exception as exc:
                    first, self._callback_failed = not self._callback_failed, True
                    self.error = exc
                    # once at warning level (with the traceback), then quietly
                    _LOG.log(
                        logging.WARNING if first else logging.DEBUG,
                        "on_sample callback failed: %s",
                        exc,
                        exc_info=first,
                    )

    # -- protocol
    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        if self.running and self.paused:
            state = "paused"
        with self._lock:
            n = len(self._rows)
        return (
            f"<Sampler {state}, {self.ticks} ticks, {n} rows, every {self._interval:g} s; "
            f"{self.status.reason}>"
        )


# --------------------------------------------------------------------------- sample()


def _check_interval(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ParameterError("interval", "a positive number of seconds", value)
    return float(value)


def sample(
    duration: float | None = 60.0,
    interval: float = 1.0,
    *,
    devices: int | str | Sequence[int | str] | None = None,
    processes: bool = True,
    background: bool = False,
    on_sample: Callable[[pl.DataFrame], Any] | None = None,
    max_rows: int | None = None,
) -> pl.DataFrame | Sampler:
    """Sample GPU utilization, memory, power and temperature through NVML.

    Parameters
    ----------
    duration : float or None
        Seconds to sample: ``round(duration / interval)`` ticks (at least one), the first
        one at once. None samples until stopped (``background=True`` only).
    interval : float
        Seconds between ticks.
    devices : int, str or sequence of them, optional
        GPU indices or UUIDs (default: every visible GPU).
    processes : bool
        Attribute each GPU's row to the process holding the most memory on it: ``user``
        from its owner; ``job_id`` from ``SLURM_JOB_ID`` in its environment, else from
        ``--jobid=N`` / ``SLURM_JOB_ID=N`` on its command line; ``pod`` / ``namespace``
        from ``POD_NAME`` (or ``HOSTNAME`` inside Kubernetes) and ``POD_NAMESPACE``.
        Best effort: another user's environment is readable only as root, so those stay
        null where it is not.
    background : bool
        Return a running :class:`Sampler` (a daemon thread) instead of blocking.
    on_sample : callable, optional
        Called with each tick's rows (a DataFrame) from the sampling thread, e.g. to feed
        a live widget. Errors in it are logged and kept in ``Sampler.error``.
    max_rows : int, optional
        Keep only the newest ``max_rows`` rows (a bound for long background runs).

    Returns
    -------
    polars.DataFrame or Sampler
        Rows in the telemetry schema (``source`` = ``"nvml"``; ``sm_active`` and
        ``tensor_active`` null; ``power_w`` in watts). With no GPU visible: an empty frame
        (or a stopped Sampler with one) and an :class:`~aiops_lab.errors.AiopsLabWarning`
        saying why. Interrupting a foreground run (Ctrl-C / interrupt the kernel) returns
        the rows sampled so far.

    Notes
    -----
    With MIG mode on, each MIG instance gets a row (``mig_profile`` such as ``"1g.10gb"``,
    ``mig_instance`` its GPU-instance id); ``power_w`` and ``temp_c`` there are the whole
    GPU's readings, repeated on each instance row, so do not add them up across instances.
    """
    interval = _check_interval(interval)
    if duration is not None and (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise ParameterError("duration", "a positive number of seconds, or None", duration)
    if duration is None and not background:
        raise ParameterError(
            "duration",
            "a number of seconds in the foreground",
            None,
            "Pass background=True to sample until Sampler.stop().",
        )
    if max_rows is not None and (
        isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
    ):
        raise ParameterError("max_rows", "a positive integer or None", max_rows)
    if on_sample is not None and not callable(on_sample):
        raise ParameterError("on_sample", "a callable taking a DataFrame, or None", on_sample)

    status = gpu_status()
    if not status.available:
        warnings.warn(
            f"{status.reason}; GPU sampling returns an empty telemetry frame. "
            "Review recorded telemetry (a DCGM or nvidia-smi export) instead.",
            AiopsLabWarning,
            stacklevel=2,
        )
        if background:
            return Sampler(status, interval=interval, duration=duration, max_rows=max_rows)
        return _empty()

    reader = _Reader(_select(devices), processes=processes)
    if background:
        return Sampler(
            status,
            interval=interval,
            duration=duration,
            reader=reader,
            on_sample=on_sample,
            max_rows=max_rows,
        )

    from aiops_lab.progress import progress_bar

    n = _n_ticks(duration, interval)
    rows: deque[tuple[Any, ...]] = deque(maxlen=max_rows)
    ticks = _schedule(n, lambda: interval, threading.Event())
    try:
        for _ in progress_bar(ticks, desc="GPU sampling", total=n):
            tick = reader.read()
            rows.extend(tick)
            if on_sample is not None and tick:
                on_sample(_frame(tick))
    except KeyboardInterrupt:
        pass
    return _frame(list(rows))

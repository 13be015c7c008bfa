"""What the server routes share: the server root, the GPU sampler and the report jobs.

Nothing here knows about HTTP; :mod:`aiops_lab.lab.handlers` turns it into routes.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["LabState", "PathRefused"]

#: seconds between live GPU samples
SAMPLE_INTERVAL_S = 1.0
#: the longest history the sampler keeps, and the most ``seconds`` a request may ask for
MAX_WINDOW_S = 900
#: the sampler stops when nobody asked for samples for this long (restarts on demand)
SAMPLER_IDLE_S = 300.0
#: how long "no GPU visible" is believed before NVML is asked again
NO_GPU_RECHECK_S = 60.0
#: columns of the telemetry schema sent to the browser
SAMPLE_COLUMNS = (
    "timestamp", "gpu", "uuid", "model", "util_pct", "mem_used_mib", "mem_total_mib",
    "power_w", "temp_c", "mig_profile", "mig_instance",
)  # fmt: skip
#: report jobs kept for polling (oldest finished ones are forgotten first)
MAX_JOBS = 50


class PathRefused(Exception):
    """A request named a path outside the server root, hidden, or of the wrong kind.

    ``status`` is the HTTP status to answer with (400, 403 or 404).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ReportJob:
    """One report run started from the lab."""

    id: str
    kind: str
    notebook: str
    state: str = "running"
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    finished: str | None = None
    html: str | None = None
    notebook_out: str | None = None
    headline: str | None = None
    alert: bool | None = None
    tracking_uri: str | None = None
    tracking_run_id: str | None = None
    tracking_error: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "job": self.id,
            "kind": self.kind,
            "notebook": self.notebook,
            "state": self.state,
            "started": self.started,
            "finished": self.finished,
            "html": self.html,
            "executed_notebook": self.notebook_out,
            "headline": self.headline,
            "alert": self.alert,
            "tracking_uri": self.tracking_uri,
            "tracking_run_id": self.tracking_run_id,
            "tracking_error": self.tracking_error,
            "error": self.error,
        }


class LabState:
    """Server-wide state of the aiops-lab routes.

    Parameters
    ----------
    root_dir : path
        The Jupyter server's root folder; every path in a request is relative to it.
    allow_hidden : bool
        Whether paths with hidden parts (``.name``) may be used, as the contents manager.
    reports_dir : str
        Where reports are written, relative to ``root_dir``.
    """

    def __init__(
        self, root_dir: str | os.PathLike[str], *, allow_hidden: bool = False,
        reports_dir: str = "reports",
    ) -> None:  # fmt: skip
        self.root = Path(root_dir).expanduser().resolve()
        self.allow_hidden = allow_hidden
        self.reports_dir = reports_dir
        self._lock = threading.Lock()
        self._sampler: Any = None
        self._gpu: Any = None  # GpuStatus of the last probe
        self._gpu_checked = 0.0
        self._last_samples_request = 0.0
        self._jobs: dict[str, ReportJob] = {}
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="aiops-lab-report")

    # ------------------------------------------------------------------ paths
    def resolve(self, path: Any, *, what: str) -> Path:
        """Turn a request's path (``/``-separated, relative to the root) into a real path.

        Raises :class:`PathRefused` (400) for a non-string or absolute path and (403) for one
        that leaves the root (``..``, a symlink) or has hidden parts while those are not allowed.
        """
        if path is None:
            path = ""
        if not isinstance(path, str):
            raise PathRefused(400, f"{what} must be a string path relative to the server root")
        rel = PurePosixPath(path.strip().strip("/")) if path.strip().strip("/") else None
        if rel is not None and (rel.is_absolute() or "\\" in path or ":" in rel.parts[0]):
            raise PathRefused(400, f"{what} must be relative to the server root: {path!r}")
        parts = rel.parts if rel is not None else ()
        if ".." in parts:
            raise PathRefused(403, f"{what} {path!r} leaves the server root")
        if not self.allow_hidden and any(p.startswith(".") for p in parts):
            raise PathRefused(403, f"{what} {path!r} is hidden")
        target = self.root.joinpath(*parts).resolve()
        if target != self.root and self.root not in target.parents:
            raise PathRefused(403, f"{what} {path!r} leaves the server root")
        return target

    def relative(self, path: Path) -> str:
        """``path`` as the front end names it: POSIX, relative to the root (absolute if outside)."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # ------------------------------------------------------------------ status
    def templates(self) -> dict[str, str]:
        """Report kind -> template file name, for the templates installed here."""
        try:
            from aiops_lab.reporting import REPORTS, notebook_path
        except ImportError:  # a partial install: the status still answers
            return {}
        out = {}
        for kind in REPORTS:
            try:
                out[kind] = notebook_path(kind).name
            except Exception:  # a template not installed yet (or broken): leave it out
                continue
        return out

    def tracking_uri(self) -> tuple[str, str]:
        """The MLflow store reports started here log to, and where that choice comes from."""
        env = os.environ.get("MLFLOW_TRACKING_URI")
        if env:
            return env, "MLFLOW_TRACKING_URI"
        db = (self.root / self.reports_dir / "mlflow.db").as_posix()
        return "sqlite:///" + db, "default (sqlite in the reports folder)"

    def gpu(self, *, refresh: bool = False) -> Any:
        """The last :class:`~aiops_lab.gpu.live.GpuStatus`, re-probed when stale."""
        from aiops_lab.gpu.live import gpu_status

        with self._lock:
            stale = time.monotonic() - self._gpu_checked > NO_GPU_RECHECK_S
            if self._gpu is None or refresh or (stale and not self._gpu.available):
                self._gpu = gpu_status()
                self._gpu_checked = time.monotonic()
            return self._gpu

    def status(self) -> dict[str, Any]:
        """Everything the status bar shows (blocking: probes CUDA and NVML)."""
        from aiops_lab._version import __version__
        from aiops_lab.backend import backend_info
        from aiops_lab.errors import AiopsLabError

        try:
            info = backend_info()
            backend = {
                "name": info.name,
                "requested": info.requested,
                "reason": info.reason,
                "device": info.device,
                "gpu": info.name == "cupy",
            }
        except AiopsLabError as exc:
            backend = {"name": "unavailable", "requested": None, "reason": str(exc),
                       "device": None, "gpu": False}  # fmt: skip
        gpu = self.gpu(refresh=True)
        uri, source = self.tracking_uri()
        return {
            "version": __version__,
            "backend": backend,
            "gpus": list(gpu.devices),
            "gpu_available": bool(gpu.available),
            "gpu_reason": gpu.reason,
            "driver": gpu.driver,
            "tracking_uri": uri,
            "tracking_source": source,
            "reports_dir": self.reports_dir,
            "templates": self.templates(),
        }

    # ------------------------------------------------------------------ GPU samples
    def samples(self, seconds: float) -> dict[str, Any]:
        """Samples of the last ``seconds``; starts the background sampler when needed."""
        self._last_samples_request = time.monotonic()
        gpu = self.gpu()
        out: dict[str, Any] = {
            "available": bool(gpu.available),
            "reason": gpu.reason,
            "interval": SAMPLE_INTERVAL_S,
            "seconds": seconds,
            "gpus": list(gpu.devices),
            "samples": [],
        }
        if not gpu.available:
            return out
        sampler = self._ensure_sampler(gpu)
        if sampler is None:
            return out
        frame = sampler.frame()
        if sampler.error is not None:
            out["error"] = str(sampler.error)
        if frame.height == 0:
            return out
        import polars as pl

        since = datetime.now(timezone.utc).timestamp() - seconds
        frame = frame.filter(pl.col("timestamp").dt.epoch("ms") >= int(since * 1000))
        frame = frame.select(SAMPLE_COLUMNS).with_columns(
            pl.col("timestamp").dt.epoch("ms").alias("t_ms"),
            pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.3fZ"),
        )
        out["samples"] = frame.to_dicts()
        return out

    def _ensure_sampler(self, gpu: Any) -> Any:
        from aiops_lab.gpu.live import sample

        with self._lock:
            if self._sampler is not None and self._sampler.running:
                return self._sampler
            per_tick = max(1, len(gpu.devices)) * 8  # room for MIG instances
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the no-GPU warning: reported by `reason`
                self._sampler = sample(
                    duration=None,
                    interval=SAMPLE_INTERVAL_S,
                    background=True,
                    processes=False,
                    max_rows=int(MAX_WINDOW_S / SAMPLE_INTERVAL_S) * per_tick,
                )
            return self._sampler

    def stop_idle_sampler(self) -> bool:
        """Stop the sampler when nobody asked for samples lately; True when it was stopped."""
        with self._lock:
            sampler = self._sampler
            idle = time.monotonic() - self._last_samples_request > SAMPLER_IDLE_S
            if sampler is None or not idle:
                return False
            self._sampler = None
        sampler.stop(timeout=2.0)
        return True

    def reap_sampler(self) -> None:
        """:meth:`stop_idle_sampler` for a periodic callback (which wants no result)."""
        self.stop_idle_sampler()

    # ------------------------------------------------------------------ templates
    def copy_template(self, kind: str, folder: Any) -> Path:
        """Copy the notebook of report ``kind`` into ``folder``, never overwriting a file."""
        from aiops_lab.errors import AiopsLabError
        from aiops_lab.reporting import REPORTS, notebook_path

        if kind not in REPORTS:
            raise PathRefused(404, f"no template {kind!r}; known: {', '.join(REPORTS)}")
        try:
            source = notebook_path(kind)
        except AiopsLabError as exc:
            raise PathRefused(404, str(exc)) from None
        target_dir = self.resolve(folder, what="path")
        if not target_dir.is_dir():
            raise PathRefused(404, f"folder {self.relative(target_dir)!r} does not exist")
        data = source.read_bytes()
        for n in itertools.count():
            name = source.name if n == 0 else f"{source.stem}-{n}{source.suffix}"
            try:
                with open(target_dir / name, "xb") as fh:  # exclusive: never overwrite
                    fh.write(data)
            except FileExistsError:
                continue
            shutil.copymode(source, target_dir / name)
            return target_dir / name
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ reports
    def start_report(
        self, kind: str, notebook: Any, *, parameters: Any = None, track: bool = True
    ) -> ReportJob:
        """Start :func:`~aiops_lab.reporting.run_report` on ``notebook`` in a worker thread."""
        from aiops_lab.reporting import REPORTS

        if kind not in REPORTS:
            raise PathRefused(404, f"no report {kind!r}; known: {', '.join(REPORTS)}")
        if notebook in (None, ""):
            raise PathRefused(400, "path must name the notebook to run")
        nb_file = self.resolve(notebook, what="path")
        if nb_file.suffix != ".ipynb":
            raise PathRefused(400, f"path {notebook!r} is not a notebook (.ipynb)")
        if not nb_file.is_file():
            raise PathRefused(404, f"notebook {notebook!r} does not exist")
        if parameters is not None and not isinstance(parameters, dict):
            raise PathRefused(400, "parameters must be a JSON object of name -> value")
        if not isinstance(track, bool):
            raise PathRefused(400, "track must be true or false")
        job = ReportJob(uuid.uuid4().hex, kind, self.relative(nb_file))
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old_jobs()
        self._executor.submit(self._run, job, nb_file, dict(parameters or {}), track)
        return job

    def job(self, job_id: str) -> ReportJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _forget_old_jobs(self) -> None:
        done = [j for j in self._jobs.values() if j.state != "running"]
        while len(self._jobs) > MAX_JOBS and done:
            del self._jobs[done.pop(0).id]

    def _run(self, job: ReportJob, nb_file: Path, parameters: dict[str, Any], track: bool) -> None:
        from aiops_lab.reporting import run_report

        uri, _ = self.tracking_uri()
        try:
            outcome = run_report(
                job.kind,
                notebook=nb_file,
                parameters=parameters,
                output_dir=self.root / self.reports_dir,
                progress=False,
                track=track,
                tracking_uri=uri if track else None,
            )
        except Exception as exc:
            job.error = f"{type(exc).__name__}: {exc}"
            job.state = "error"
        else:
            job.html = self.relative(outcome.html_path)
            job.notebook_out = self.relative(outcome.notebook_path)
            job.headline = outcome.headline
            job.alert = outcome.alert
            job.tracking_uri = outcome.tracking_uri
            job.tracking_run_id = outcome.tracking_run_id
            job.tracking_error = outcome.tracking_error
            job.state = "done"
        job.finished = datetime.now(timezone.utc).isoformat()

    def close(self) -> None:
        """Stop the sampler and let running reports finish in the background."""
        with self._lock:
            sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.stop(timeout=2.0)
        self._executor.shutdown(wait=False, cancel_futures=True)

"""``GpuReview``: what ``review`` found, ready to show, report and track."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aiops_lab.gpu.rollups import _norm
from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

    from aiops_lab.backend import BackendInfo

__all__ = ["GpuReview"]

_NO_PRICE = pl.DataFrame(
    schema={"model": pl.Utf8, "mig_profile": pl.Utf8, "n_gpus": pl.UInt32, "gpu_hours": pl.Float64}
)
_KEY = ("host", "gpu", "mig_instance")


def _epoch_s(value: Any) -> float:
    """A datetime (naive: UTC) as seconds since 1970."""
    return float(pl.Series([value]).cast(pl.Datetime("us", "UTC")).dt.epoch("us")[0]) / 1e6


#: a GPU idle more than this share of its hours is a consolidation candidate
IDLE_GPU_SHARE = 0.6
#: a queue wait longer than this while GPUs sat idle is worth a look
LONG_WAIT_S = 6 * 3600


class GpuReview(Result):
    """The outcome of :func:`aiops_lab.gpu.review`.

    Attributes
    ----------
    per_gpu, per_host, per_user, per_job, per_pod : polars.DataFrame
        GPU-hours (total, active, idle), utilization, efficiency, peak memory and cost
        per GPU / host / user / job / Kubernetes pod. GPU time outside any job is booked
        to the user "(no job)". ``efficiency_source`` says whether the efficiency
        used SM activity (``sm_active``), utilization (``util_pct``, no SM readings) or
        each where read (``mixed``); ``busy_but_idle`` (per GPU, job and pod) flags a
        mean utilization of 50 % or more with a mean SM activity under 0.2, and
        ``busy_but_idle_gpu_hours`` counts the samples that were so, however short. A
        MIG instance is a row of ``per_gpu`` of its own (``mig_profile``): its hours are
        its own, its price its profile's (see :func:`~aiops_lab.gpu.review`).
    unpriced : polars.DataFrame
        GPU models (and MIG profiles) the price table has no price for, with their GPUs
        and GPU-hours: their cost counts as 0, and a recommendation says so.
    samples : polars.DataFrame
        The telemetry in (GPU, time) order with each sample's accounted seconds (``_w``)
        and idle flag (``_idle``), built on first use. A streamed review keeps instead
        one row per GPU, 10-minute cell and 10 % utilization band (``timestamp`` the
        cell's start, ``util_pct`` its time-weighted utilization, ``_w`` its seconds),
        which is what the charts need.
    """

    analysis = "gpu"
    default_chart = "waste"

    def __init__(self, *, samples: pl.DataFrame | Callable[[], pl.DataFrame], per_gpu: pl.DataFrame, per_host: pl.DataFrame,
                 per_user: pl.DataFrame, per_job: pl.DataFrame, per_pod: pl.DataFrame, params: dict[str, Any],
                 period: tuple[Any, Any], backend: BackendInfo, elapsed_s: float,
                 unpriced: pl.DataFrame | None = None) -> None:  # fmt: skip
        self._samples, self.per_gpu, self.per_host = samples, per_gpu, per_host
        self.unpriced = _NO_PRICE if unpriced is None else unpriced
        self.per_user, self.per_job, self.per_pod = per_user, per_job, per_pod
        self._params, self.period, self.backend, self.elapsed_s = params, period, backend, elapsed_s
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if "queue_wait_s" in per_job.columns:
            self.per_job = self._idle_while_queued(per_job)
        self._recommendations = self._recommend()
        self._summary = self._make_summary()

    @property
    def samples(self) -> pl.DataFrame:
        if not isinstance(self._samples, pl.DataFrame):
            self._samples = self._samples()
        return self._samples

    @property
    def table(self) -> pl.DataFrame:
        """Per GPU, most idle cost first."""
        return self.per_gpu.sort("idle_cost", descending=True)

    @property
    def recommendations(self) -> pl.DataFrame:
        """What to change, with the evidence and the money at stake, largest first."""
        return self._recommendations

    @property
    def per_partition(self) -> pl.DataFrame | None:
        """Slurm accounting per partition (None without jobs): what was allocated, what was used.

        ``gpu_hours_alloc`` is what the scheduler held for the jobs (GPUs x elapsed),
        ``active_gpu_hours`` the non-idle time the telemetry saw on those jobs' GPUs,
        ``wasted_gpu_hours`` the difference and ``waste_share`` its share of the
        allocation (of the jobs whose usage is known: ``jobs_usage_unknown`` counts the
        others, when the telemetry names no jobs and a job held only part of a node);
        queue waits are the jobs' ``start - submit`` (jobs that started).
        """
        return self._waste_by("partition")

    @property
    def waste_by_user(self) -> pl.DataFrame | None:
        """The same allocation accounting per Slurm user (None without jobs)."""
        return self._waste_by("user")

    def _waste_by(self, key: str) -> pl.DataFrame | None:
        jobs = self.per_job
        if "gpu_hours_alloc" not in jobs.columns or key not in jobs.columns:
            return None
        gpu_jobs = jobs.filter(pl.col("gpus").fill_null(0) > 0)
        return (
            gpu_jobs.group_by(key)
            .agg(
                pl.len().alias("jobs"),
                pl.col("gpu_hours_alloc").sum(),
                pl.col("active_gpu_hours").fill_null(0.0).sum(),
                # null when no job's usage is known, not 0
                pl.when(pl.col("wasted_gpu_hours").is_not_null().any())
                .then(pl.col("wasted_gpu_hours").sum())
                .alias("wasted_gpu_hours"),
                pl.col("gpu_hours_alloc")
                .filter(pl.col("wasted_gpu_hours").is_not_null())
                .sum()
                .alias("_alloc_known"),
                pl.col("wasted_gpu_hours").is_null().sum().alias("jobs_usage_unknown"),
                (pl.col("queue_wait_s").median() / 3600).alias("median_queue_wait_h"),
                (pl.col("queue_wait_s").quantile(0.95, "linear") / 3600).alias("p95_queue_wait_h"),
            )
            .with_columns(
                pl.when(pl.col("_alloc_known") > 0)
                .then(pl.col("wasted_gpu_hours") / pl.col("_alloc_known"))
                .alias("waste_share")
            )
            .drop("_alloc_known")
            .sort("wasted_gpu_hours", descending=True, nulls_last=True)
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        out = {"table": self.table, "per_host": self.per_host, "per_user": self.per_user,
               "per_job": self.per_job, "per_pod": self.per_pod, "recommendations": self._recommendations}  # fmt: skip
        for name, frame in (
            ("per_partition", self.per_partition),
            ("waste_by_user", self.waste_by_user),
        ):
            if frame is not None:
                out[name] = frame
        return out

    def idle_gpus(self, start: Any, end: Any, gpu_type: str | None = None) -> float | None:
        """The mean number of GPUs idle between ``start`` and ``end``, over the part of it
        the telemetry covers (None: none of it); of the models whose name holds
        ``gpu_type`` (such as ``"a100"`` or Slurm's ``"nvidia_a100-sxm4-80gb"``) when
        given. From the 10-minute cells of :attr:`samples`, in UTC: a cell that the
        period cuts counts its share, as if its idle time were spread over it."""
        if start is None or end is None:
            return None
        times, _ = self._idle_curve(None)
        if times.size == 0:
            return None
        lo = max(_epoch_s(start), float(times[0]))
        hi = min(_epoch_s(end), float(times[-1]))
        if hi <= lo:
            return None
        times, cum = self._idle_curve(gpu_type)
        if times.size == 0:
            return 0.0
        return float(np.interp(hi, times, cum) - np.interp(lo, times, cum)) / (hi - lo)

    def _idle_curve(self, gpu_type: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Idle GPU-seconds summed up to every 10-minute boundary (seconds since 1970)."""
        key = _norm(gpu_type or "")
        if key not in self._curves:
            s = self.samples
            if key:
                models = self.per_gpu.select(*_KEY, "model")
                model = pl.col("model").str.to_lowercase().str.replace_all(r"[-_]", " ")
                s = s.join(models, on=list(_KEY), how="left", nulls_equal=True).filter(
                    model.str.contains(key, literal=True)
                )
            cell = pl.col("timestamp").dt.epoch("s") // 600 * 600  # UTC, whatever the zone
            per_cell = s.group_by(cell.alias("_cell")).agg(pl.col("_w_idle").sum()).sort("_cell")
            if per_cell.height == 0:
                self._curves[key] = (np.zeros(0), np.zeros(0))
            else:
                starts = per_cell["_cell"].to_numpy().astype(np.float64)
                # every cell's end too, so an empty stretch between cells adds nothing
                times = np.unique(np.concatenate([starts, starts + 600.0]))
                idle = np.zeros(times.size)
                idle[np.searchsorted(times, starts + 600.0)] = per_cell["_w_idle"].to_numpy()
                self._curves[key] = (times, np.cumsum(idle))
        return self._curves[key]

    def _idle_while_queued(self, jobs: pl.DataFrame) -> pl.DataFrame:
        """``jobs`` with the GPUs idle on average while each queued, all and of its type."""
        types = jobs["gpu_type"] if "gpu_type" in jobs.columns else pl.Series([None] * jobs.height)
        rows = zip(jobs["submit"], jobs["start"], types, strict=True)
        fleet, same = [], []
        for submit, start, gpu_type in rows:
            queued = submit is not None and start is not None and start > submit
            fleet.append(self.idle_gpus(submit, start) if queued else None)
            same.append(self.idle_gpus(submit, start, gpu_type) if queued and gpu_type else None)
        return jobs.with_columns(
            pl.Series("idle_gpus_while_queued", fleet, dtype=pl.Float64),
            pl.Series("idle_same_type_gpus_while_queued", same, dtype=pl.Float64),
        )

    def _make_summary(self) -> dict[str, Any]:
        g = self.per_gpu
        gpu_hours = float(g["gpu_hours"].sum())
        idle = float(g["idle_gpu_hours"].sum())
        idle_cost = float(g["idle_cost"].sum())
        share = idle / gpu_hours if gpu_hours else 0.0
        cost_cap = self._params.get("alert_idle_cost")
        alert = (
            idle_cost > cost_cap
            if cost_cap is not None
            else share >= self._params.get("alert_idle_share", 0.3)
        )
        return {
            "headline": f"{share:.0%} of {gpu_hours:,.0f} GPU-hours idle, costing ${idle_cost:,.0f}",
            "alert": bool(alert),
            "n_gpus": g.select("host", "gpu").n_unique(),
            "n_mig_instances": int(g["mig_instance"].is_not_null().sum()),
            "unpriced_gpu_hours": float(self.unpriced["gpu_hours"].sum()),
            "gpu_hours": gpu_hours,
            "active_gpu_hours": float(g["active_gpu_hours"].sum()),
            "idle_gpu_hours": idle,
            "idle_share": share,
            "idle_cost": idle_cost,
            "total_cost": float(g["total_cost"].sum()),
            "busy_but_idle_gpus": int(g["busy_but_idle"].sum()),
            "busy_but_idle_gpu_hours": float(g["busy_but_idle_gpu_hours"].sum()),
            "period_start": self.period[0],
            "period_end": self.period[1],
            "idle_threshold": self._params["idle_threshold"],
            "backend": self.backend.name,
            "elapsed_s": round(self.elapsed_s, 4),
        }

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        for row in self.per_user.iter_rows(named=True):
            out[f"user.{row['user']}.idle_cost"] = float(row["idle_cost"] or 0.0)
        return out

    def _recommend(self) -> pl.DataFrame:
        rows: list[dict[str, Any]] = []
        for r in self.unpriced.iter_rows(named=True):
            what = r["model"] or "GPUs without a model name"
            if r["mig_profile"] is not None:
                what += f" MIG {r['mig_profile'] or '(profile unknown)'}"
            rows.append({"kind": "price missing", "target": what, "saving_usd": None,
                         "evidence": f"{r['gpu_hours']:,.1f} GPU-hours on {r['n_gpus']} GPU(s) have no price, so their cost counts as $0",
                         "action": "add the model to the price table (prices=...) so the costs above include it"})  # fmt: skip
        idle_gpus = self.per_gpu.filter(pl.col("idle_share") >= IDLE_GPU_SHARE).sort(
            "idle_cost", descending=True
        )
        for r in idle_gpus.head(8).iter_rows(named=True):
            rows.append({"kind": "idle GPU", "target": r["gpu_key"], "saving_usd": r["idle_cost"],
                         "evidence": f"idle {r['idle_share']:.0%} of {r['gpu_hours']:.0f} h; longest idle stretch {r['longest_idle_h']:.1f} h",
                         "action": "release it to a shared pool or scale the node down when idle"})  # fmt: skip
        jobs = self.per_job
        if "busy_but_idle" in jobs.columns:
            for r in jobs.filter(pl.col("busy_but_idle")).iter_rows(named=True):
                rows.append({"kind": "busy but idle", "target": f"job {r['job_id']} ({r.get('user')})", "saving_usd": r["total_cost"],
                             "evidence": f"utilization {r['mean_util_pct']:.0f}% but SM active {r['mean_sm_active']:.2f}",
                             "action": "profile it: the GPU is held by polling or waiting, not computing"})  # fmt: skip
        for r in self.per_pod.filter(pl.col("busy_but_idle")).iter_rows(named=True):
            rows.append({"kind": "busy but idle", "target": f"pod {r['namespace']}/{r['pod']}", "saving_usd": r["total_cost"],
                         "evidence": f"utilization {r['mean_util_pct']:.0f}% but SM active {r['mean_sm_active']:.2f}",
                         "action": "profile it: the GPU is held by polling or waiting, not computing"})  # fmt: skip
        if "fits_in" in jobs.columns:
            oversized = jobs.filter(pl.col("fits_in").is_not_null() & (pl.col("gpu_hours") > 1.0))
            for r in oversized.sort("total_cost", descending=True).head(10).iter_rows(named=True):
                rows.append({"kind": "right-size", "target": f"job {r['job_id']} ({r.get('user')})", "saving_usd": None if r.get("rightsized_cost") is None else (r["total_cost"] or 0.0) - r["rightsized_cost"],
                             "evidence": f"peak memory {r['peak_mem_mib'] / 1024:.1f} GiB per GPU",
                             "action": f"run it on a {r['fits_in']} instead of a full GPU"})  # fmt: skip
        if "wasted_gpu_hours" in jobs.columns:
            unknown = jobs.filter(
                pl.col("wasted_gpu_hours").is_null() & (pl.col("gpus").fill_null(0) > 0)
            )
            if unknown.height:
                held = float(unknown["gpu_hours_alloc"].sum())
                rows.append({"kind": "job usage unknown", "target": f"{unknown.height} job{'s' if unknown.height != 1 else ''}", "saving_usd": None,
                             "evidence": f"they held {held:,.0f} GPU-hours that the telemetry cannot tell apart: part of a node whose samples name no job (Slurm does not record which GPUs), or a host without telemetry",
                             "action": "label the samples with their job (dcgm-exporter's HPC job mapping, or a job_id column) to see their usage"})  # fmt: skip
        if "idle_gpus_while_queued" in jobs.columns:
            # long waits while at least as many GPUs as the job asked for sat idle
            waited = jobs.filter(
                (pl.col("queue_wait_s") > LONG_WAIT_S)
                & (pl.col("idle_gpus_while_queued") >= pl.col("gpus"))
            )
            same_ok = pl.col("idle_same_type_gpus_while_queued") >= pl.col("gpus")
            groups = (
                ("own", waited.filter(same_ok)),
                ("other", waited.filter(~same_ok)),  # a type asked for, too few of it idle
                ("any", waited.filter(pl.col("idle_same_type_gpus_while_queued").is_null())),
            )
            hours = LONG_WAIT_S // 3600
            for case, group in groups:
                if group.height == 0:
                    continue
                waits = f"waited more than {hours} h (median {group['queue_wait_s'].median() / 3600:.1f} h)"
                fleet = group["idle_gpus_while_queued"].mean()
                same = group["idle_same_type_gpus_while_queued"].mean()
                if case == "own":
                    evidence = f"{waits} while on average {same:.1f} GPUs of the type they asked for sat idle, as many as they asked for or more"
                elif case == "other":
                    evidence = f"{waits} while on average {fleet:.1f} GPUs sat idle, though fewer of the type they asked for ({same:.1f})"
                else:
                    evidence = f"{waits} while on average {fleet:.1f} GPUs sat idle, as many as they asked for or more"
                action = (
                    "check what held them back: reservations, limits or fragmentation"
                    if case == "own"
                    else "let partitions borrow idle GPUs (or merge them)"
                )
                rows.append({"kind": "queue", "target": f"{group.height} job{'s' if group.height != 1 else ''}", "saving_usd": 0.0,
                             "evidence": evidence, "action": action})  # fmt: skip
        frame = pl.DataFrame(
            rows,
            schema={
                "kind": pl.Utf8,
                "target": pl.Utf8,
                "saving_usd": pl.Float64,
                "evidence": pl.Utf8,
                "action": pl.Utf8,
            },
        )
        return frame.sort("saving_usd", descending=True, nulls_last=True)

    def _idle_share(self) -> float:
        g = self.per_gpu
        total = float(g["gpu_hours"].sum())
        return float(g["idle_gpu_hours"].sum()) / total if total else 0.0

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart: "heatmap" (GPU x hour), "distribution", "waste", "queue"."""
        from aiops_lab.gpu import charts

        return charts.draw(self, kind or self.default_chart, **kwargs)

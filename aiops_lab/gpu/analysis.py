"""``review``: who used which GPUs how well, how many GPU-hours sat idle, what it cost.

Data flows load (sources) -> per-sample time accounting on the array backend (kernels)
-> roll-ups per GPU, host, job, user -> a :class:`GpuReview` that only presents.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, get_namespace, to_numpy
from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, InputError, ParameterError
from aiops_lab.gpu import kernels as K
from aiops_lab.gpu.result import GpuReview
from aiops_lab.progress import progress_bar

__all__ = ["MEMORY_TIERS", "NO_JOB", "load_prices", "review"]

#: smaller homes for a job's peak memory, smallest first: (name, usable MiB, price-table key)
MEMORY_TIERS = (
    ("MIG 1g.10gb", 9_728, "1g.10gb"),
    ("MIG 2g.20gb", 19_968, "2g.20gb"),
    ("24 GB GPU (L4 class)", 22_528, "L4"),
    ("MIG 3g.40gb", 40_192, "3g.40gb"),
    ("48 GB GPU (L40S class)", 46_068, "L40S"),
)
#: the user that GPU time outside any job is booked to
NO_JOB = "(no job)"
_REQUIRED = ("timestamp", "host", "gpu", "util_pct", "mem_used_mib", "mem_total_mib")
#: a GPU counts as "busy but idle" when its utilization looks high but its SMs are not
_BUSY_UTIL, _IDLE_SM = 50.0, 0.2


def load_prices(prices: Any = None) -> pl.DataFrame:
    """The GPU price table: ``model`` (substring to match) and ``price_per_gpu_hour_usd``.

    ``None`` loads the bundled, dated table of illustrative on-demand prices; a path to
    a CSV with those two columns, a polars frame, or a ``{model: price}`` dict
    overrides it.
    """
    if prices is None:
        from aiops_lab import datasets

        prices = datasets.data_dir() / "gpu" / "prices.csv"
    if isinstance(prices, dict):
        frame = pl.DataFrame(
            {"model": list(prices), "price_per_gpu_hour_usd": [float(v) for v in prices.values()]}
        )
    elif isinstance(prices, (str, Path)):
        from aiops_lab.datasets import resolve_path

        path = resolve_path(prices)
        if not path.exists():
            msg = f"Price table {str(path)!r} does not exist; expected a CSV with columns model, price_per_gpu_hour_usd."
            raise InputError(msg)
        frame = pl.read_csv(path)
    elif isinstance(prices, pl.DataFrame):
        frame = prices
    else:
        raise ParameterError(
            "prices",
            "None, a CSV path, a polars DataFrame or a {model: price} dict",
            type(prices).__name__,
        )
    for col in ("model", "price_per_gpu_hour_usd"):
        if col not in frame.columns:
            raise ColumnNotFoundError(col, "the price table", frame.columns)
    return frame.select(
        pl.col("model").cast(pl.Utf8), pl.col("price_per_gpu_hour_usd").cast(pl.Float64)
    )


def _price_of(models: list[str], prices: pl.DataFrame) -> dict[str, float | None]:
    """Match each GPU model name to the longest price-table entry it contains."""
    entries = sorted(prices.iter_rows(), key=lambda r: -len(r[0]))
    out: dict[str, float | None] = {}
    for model in models:
        norm = model.lower().replace("-", " ")
        out[model] = next(
            (p for name, p in entries if name.lower().replace("-", " ") in norm), None
        )
    return out


def review(
    telemetry: Any,
    jobs: Any = None,
    prices: Any = None,
    idle_threshold: float = 5.0,
    *,
    start: Any = None,
    end: Any = None,
    alert_idle_share: float = 0.3,
    alert_idle_cost: float | None = None,
    backend: str | None = None,
    progress: bool = False,
) -> GpuReview:
    """Account every GPU-hour in ``telemetry``: active or idle, by whom, at what cost.

    Each sample stands for the time until the same GPU's next sample, capped at twice
    that GPU's median interval (a gap in the log is not idle time); a GPU's last sample
    counts its median interval. A sample is idle when ``util_pct < idle_threshold``.

    Parameters
    ----------
    telemetry : polars DataFrame / LazyFrame, or a path
        Samples in the telemetry schema (see :mod:`aiops_lab.gpu.sources`); a path is
        read with :func:`aiops_lab.gpu.read_telemetry`.
    jobs : polars DataFrame or path, optional
        Slurm jobs (:func:`aiops_lab.gpu.read_sacct`) for queue waits and allocated
        GPU-hours.
    prices : None, path, DataFrame or dict
        GPU hourly prices (default: the bundled illustrative table).
    idle_threshold : float
        Utilization (percent) below which a sample is idle (default 5).
    start, end : datetime or ISO string, optional
        Review only this period.
    alert_idle_share : float
        The review alerts when at least this share of GPU-hours was idle (default 0.3).
    alert_idle_cost : float, optional
        Alert instead when the idle cost (USD) exceeds this.
    backend : {"auto", "numpy", "cupy"}, optional
        Array backend for the accounting kernels.

    Returns
    -------
    GpuReview
    """
    started = time.perf_counter()
    if not isinstance(idle_threshold, (int, float)) or not 0 <= idle_threshold <= 100:
        raise ParameterError(
            "idle_threshold", "a utilization percentage between 0 and 100", idle_threshold
        )
    xp, info = get_namespace(backend)
    frame = _load(telemetry, start, end)
    jobs = _read_jobs(jobs)
    if jobs is not None:  # attribute samples to users through their Slurm job
        owners = jobs.select("job_id", pl.col("user").alias("_job_user"))
        frame = (
            frame.join(owners, on="job_id", how="left")
            .with_columns(pl.coalesce("user", "_job_user").alias("user"))
            .drop("_job_user")
        )
    price_table = load_prices(prices)
    steps = progress_bar(range(3), desc="gpu review", enabled=progress)
    next(steps, None)
    # One group per GPU or MIG instance; rows sorted by (group, time). Only the columns
    # the review uses are carried, strings as categoricals, so the sort moves integers.
    labels = ("host", "model", "user", "job_id", "pod", "namespace", "mig_instance")
    keyed = frame.select(
        "timestamp", "gpu", "util_pct", "sm_active", "mem_used_mib", "mem_total_mib", "power_w",
        *(pl.col(c).cast(pl.Categorical) for c in labels),
    )  # fmt: skip
    code = (
        pl.col("host").to_physical().cast(pl.Int64) * (1 << 32)
        + pl.col("gpu").cast(pl.Int64) * (1 << 16)
        + pl.col("mig_instance").to_physical().cast(pl.Int64).fill_null((1 << 16) - 1)
    )
    keyed = keyed.with_columns((code.rank("dense") - 1).cast(pl.Int64).alias("_g")).sort(
        ["_g", "timestamp"]
    )
    ident = keyed.group_by("_g").agg(pl.col("host", "gpu", "mig_instance").first()).sort("_g")
    keys = ident.select(
        pl.when(pl.col("mig_instance").is_null())
        .then(pl.format("{}/{}", "host", "gpu"))
        .otherwise(pl.format("{}/{}/mig{}", "host", "gpu", "mig_instance"))
        .alias("_key")
    )["_key"]
    n_groups = keys.len()
    group = from_numpy(keyed["_g"].to_numpy(), xp)
    t_us = from_numpy(keyed["timestamp"].dt.epoch("us").to_numpy(), xp)
    weight, median = K.sample_weights(xp, group, t_us, n_groups)
    util = keyed["util_pct"].fill_null(float("nan")).to_numpy()
    idle_np = ~(util >= idle_threshold)  # a sample without a reading counts as idle
    idle_run = K.idle_runs(xp, group, from_numpy(idle_np, xp), weight, n_groups)
    util_x = from_numpy(util, xp)
    p50, p95 = K.segment_quantiles(xp, group, util_x, n_groups, (0.5, 0.95))
    next(steps, None)
    samples = keyed.with_columns(
        pl.Series("_w", to_numpy(weight)),
        pl.Series("_idle", idle_np),
        pl.coalesce(pl.col("sm_active") * 100.0, pl.col("util_pct")).alias("_eff"),
    )
    samples = _with_price(samples, price_table)  # once: every roll-up reads it

    per_gpu = _per_gpu(
        samples,
        to_numpy(median),
        to_numpy(idle_run),
        to_numpy(p50),
        to_numpy(p95),
        keys,
        price_table,
    )
    by = {name: _rollup(samples, [name], price_table) for name in ("host", "job_id")}
    # time no job holds is idle capacity too: it belongs to "(no job)", not to nobody
    by["user"] = _rollup(
        samples.with_columns(pl.col("user").cast(pl.Utf8).fill_null(NO_JOB)), ["user"], price_table
    )
    job_users = (
        samples.filter(pl.col("job_id").is_not_null())
        .group_by("job_id")
        .agg(pl.col("user").drop_nulls().first())
        .with_columns(pl.col("job_id", "user").cast(pl.Utf8))
    )
    by["job_id"] = by["job_id"].join(job_users, on="job_id", how="left")
    by["pod"] = _rollup(
        samples.filter(pl.col("pod").is_not_null()), ["namespace", "pod"], price_table
    )
    jobs_frame = _jobs(jobs, by["job_id"], price_table)
    next(steps, None)
    period = (frame["timestamp"].min(), frame["timestamp"].max())
    return GpuReview(
        samples=samples, per_gpu=per_gpu, per_host=by["host"], per_user=by["user"], per_pod=by["pod"],
        per_job=jobs_frame, params={"idle_threshold": idle_threshold, "alert_idle_share": alert_idle_share, "alert_idle_cost": alert_idle_cost,
                "backend": info.name, "start": period[0], "end": period[1]},
        period=period, backend=info, elapsed_s=time.perf_counter() - started,
    )  # fmt: skip


def _load(telemetry: Any, start: Any, end: Any) -> pl.DataFrame:
    if isinstance(telemetry, (str, Path)):
        from aiops_lab.datasets import resolve_path
        from aiops_lab.gpu.sources import read_telemetry

        telemetry = read_telemetry(resolve_path(telemetry))
    if isinstance(telemetry, pl.LazyFrame):
        telemetry = telemetry.collect()
    if not isinstance(telemetry, pl.DataFrame):
        raise ParameterError(
            "telemetry",
            "a polars DataFrame/LazyFrame in the telemetry schema, or a path",
            type(telemetry).__name__,
        )
    for col in _REQUIRED:
        if col not in telemetry.columns:
            raise ColumnNotFoundError(
                col,
                "the telemetry",
                telemetry.columns,
                "The review needs " + ", ".join(_REQUIRED) + " (aiops_lab.gpu.TELEMETRY_SCHEMA); "
                "the readers (read_telemetry, read_nvidia_smi, read_dcgm) produce them.",
            )
    for col, dtype in (
        ("pod", pl.Utf8),
        ("namespace", pl.Utf8),
        ("sm_active", pl.Float64),
        ("mig_instance", pl.Utf8),
        ("job_id", pl.Utf8),
        ("user", pl.Utf8),
        ("model", pl.Utf8),
        ("power_w", pl.Float64),
    ):
        if col not in telemetry.columns:
            telemetry = telemetry.with_columns(pl.lit(None, dtype=dtype).alias(col))
    if start is not None:
        telemetry = telemetry.filter(pl.col("timestamp") >= _as_time(start, "start"))
    if end is not None:
        telemetry = telemetry.filter(pl.col("timestamp") < _as_time(end, "end"))
    if telemetry.height == 0:
        raise EmptyInputError(
            "The telemetry has no samples"
            + (" in the requested period" if start or end else "")
            + "."
        )
    return telemetry


def _as_time(value: Any, name: str) -> Any:
    try:
        return (
            pl.Series([value]).cast(pl.Utf8).str.to_datetime(time_zone="UTC")[0]
            if isinstance(value, str)
            else value
        )
    except Exception:
        raise ParameterError(name, "a datetime or an ISO timestamp", value) from None


def _hours(expr: pl.Expr) -> pl.Expr:
    return expr.sum() / 3600.0


def _rollup(samples: pl.DataFrame, by: list[str], prices: pl.DataFrame) -> pl.DataFrame:
    """GPU-hours, idle hours, utilization and cost per value of ``by``."""
    out = (
        samples.filter(pl.col(by[0]).is_not_null())
        .group_by(by)
        .agg(
            _hours(pl.col("_w")).alias("gpu_hours"),
            _hours(pl.col("_w").filter(~pl.col("_idle"))).alias("active_gpu_hours"),
            _hours(pl.col("_w").filter(pl.col("_idle"))).alias("idle_gpu_hours"),
            ((pl.col("util_pct") * pl.col("_w")).sum() / pl.col("_w").sum()).alias("mean_util_pct"),
            ((pl.col("_eff") * pl.col("_w")).sum() / pl.col("_w").sum()).alias("efficiency_pct"),
            pl.col("sm_active").mean().alias("mean_sm_active"),
            pl.col("mem_used_mib").max().alias("peak_mem_mib"),
            pl.struct("host", "gpu").n_unique().alias("n_gpus"),
            (pl.col("_w") * pl.col("_price") / 3600.0).sum().alias("total_cost"),
            (pl.col("_w") * pl.col("_price") / 3600.0)
            .filter(pl.col("_idle"))
            .sum()
            .alias("idle_cost"),
        )
        .with_columns((pl.col("idle_gpu_hours") / pl.col("gpu_hours")).alias("idle_share"))
        .with_columns(pl.col(c).cast(pl.Utf8) for c in by if c != "_g")
        .sort("idle_cost", descending=True)
    )
    return out


def _with_price(samples: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    models = samples["model"].drop_nulls().unique().to_list()
    mapping = _price_of(models, prices)
    return samples.with_columns(
        pl.col("model")
        .cast(pl.Utf8)
        .replace_strict(mapping, default=None, return_dtype=pl.Float64)
        .fill_null(0.0)
        .alias("_price")
    )


def _per_gpu(
    samples: pl.DataFrame,
    median: np.ndarray,
    idle_run: np.ndarray,
    p50: np.ndarray,
    p95: np.ndarray,
    keys: pl.Series,
    prices: pl.DataFrame,
) -> pl.DataFrame:
    base = _rollup(samples, ["_g"], prices)
    extra = pl.DataFrame(
        {
            "_g": np.arange(keys.len(), dtype=np.int64),
            "gpu_key": keys.to_list(),
            "median_interval_s": median,
            "longest_idle_h": idle_run / 3600.0,
            "p50_util_pct": p50,
            "p95_util_pct": p95,
        }
    )
    ident = samples.group_by("_g").agg(
        pl.col("host").first(), pl.col("gpu").first(), pl.col("model").first(), pl.col("mig_instance").first(),
        pl.col("mem_total_mib").max(), pl.col("power_w").mean().alias("mean_power_w"),
        pl.col("sm_active").is_not_null().any().alias("_has_sm"),
    )  # fmt: skip
    ident = ident.with_columns(pl.col("host", "model", "mig_instance").cast(pl.Utf8))
    frame = ident.join(base.drop("n_gpus"), on="_g").join(extra, on="_g").sort("_g")
    out = frame.with_columns(
        pl.when(pl.col("_has_sm"))
        .then(pl.lit("sm_active"))
        .otherwise(pl.lit("util_pct"))
        .alias("efficiency_source"),
        ((pl.col("mean_util_pct") >= _BUSY_UTIL) & (pl.col("mean_sm_active") < _IDLE_SM))
        .fill_null(False)
        .alias("busy_but_idle"),
        (pl.col("peak_mem_mib") / pl.col("mem_total_mib")).alias("peak_mem_share"),
    ).drop("_g", "_has_sm")
    return out.select("gpu_key", *[c for c in out.columns if c != "gpu_key"])


def _read_jobs(jobs: Any) -> pl.DataFrame | None:
    if jobs is None:
        return None
    if isinstance(jobs, (str, Path)):
        from aiops_lab.datasets import resolve_path
        from aiops_lab.gpu.sources import read_sacct

        jobs = read_sacct(resolve_path(jobs))
    if not isinstance(jobs, pl.DataFrame):
        raise ParameterError(
            "jobs", "a polars DataFrame from read_sacct or a sacct file path", type(jobs).__name__
        )
    return jobs


def _tier_price(key: str, prices: pl.DataFrame) -> float | None:
    for name, price in prices.iter_rows():
        if key.lower() in name.lower().split() or name.lower().endswith(key.lower()):
            return float(price)
    return None


def _jobs(jobs: Any, usage: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """Per-job table: telemetry usage, joined with Slurm accounting when given.

    ``fits_in`` names the smallest home for the job's peak memory (with 20 % headroom)
    and ``rightsized_cost`` what its GPU-hours would cost there, when the price table
    has that tier.
    """
    usage = usage.with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("fits_in"),
        ((pl.col("mean_util_pct") >= _BUSY_UTIL) & (pl.col("mean_sm_active") < _IDLE_SM))
        .fill_null(False)
        .alias("busy_but_idle"),
    )
    fits = pl.lit(None, dtype=pl.Utf8)
    tier_cost = pl.lit(None, dtype=pl.Float64)
    for name, mib, key in reversed(MEMORY_TIERS):  # smallest tier wins: built inside out
        price = _tier_price(key, prices)
        fits = pl.when(pl.col("peak_mem_mib") * 1.2 <= mib).then(pl.lit(name)).otherwise(fits)
        cost = pl.lit(None, dtype=pl.Float64) if price is None else pl.col("gpu_hours") * price
        tier_cost = pl.when(pl.col("peak_mem_mib") * 1.2 <= mib).then(cost).otherwise(tier_cost)
    usage = usage.with_columns(fits.alias("fits_in"), tier_cost.alias("rightsized_cost"))
    if jobs is None:
        return usage
    acct = jobs.select(
        "job_id",
        "job_name",
        "user",
        "partition",
        "state",
        "submit",
        "start",
        "gpus",
        "gpu_hours_alloc",
        "queue_wait_s",
    ).rename({"user": "job_user"})
    out = acct.join(usage, on="job_id", how="left")
    return (
        out.with_columns(
            pl.coalesce("user", "job_user").alias("user"),
            # telemetry intervals can overrun a job's end by a sample: never negative waste
            (pl.col("gpu_hours_alloc") - pl.col("active_gpu_hours").fill_null(0.0))
            .clip(lower_bound=0.0)
            .alias("wasted_gpu_hours"),
        )
        .drop("job_user")
        .sort("wasted_gpu_hours", descending=True, nulls_last=True)
    )

"""From runs to tables: GPU-hours, idle hours, utilization and cost per GPU, host, user, job.

The accountant (:mod:`aiops_lab.gpu.accounting`) leaves *runs* -- stretches of one GPU's
consecutive samples with the same labels, with their sums and peaks; every table of a
:class:`~aiops_lab.gpu.GpuReview` is an aggregation of them, so tables built from the runs of
many pieces (batches, chunks, Dask partitions) equal those of the whole log.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

__all__ = ["MEMORY_TIERS", "NO_JOB"]

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
#: a GPU counts as "busy but idle" when its utilization looks high but its SMs are not
_BUSY_UTIL, _IDLE_SM = 50.0, 0.2


def _norm(name: str) -> str:
    """A GPU model or type name to match by: lower case, ``-`` and ``_`` as spaces."""
    return name.lower().replace("-", " ").replace("_", " ")


def _price_of(models: list[str], prices: pl.DataFrame) -> dict[str, float | None]:
    """Match each GPU model name to the longest price-table entry it contains."""
    entries = sorted(prices.iter_rows(), key=lambda r: -len(r[0]))
    out: dict[str, float | None] = {}
    for model in models:
        norm = _norm(model)
        out[model] = next((p for name, p in entries if _norm(name) in norm), None)
    return out


def mig_share(profile: str, model: str | None) -> float | None:
    """The share of its GPU's compute a MIG profile holds: ``"3g.40gb"`` on an A100 is 3/7.

    A30s split into 4 compute slices, the other MIG GPUs (A100, H100, H200, B200) into
    7; ``None`` for a profile name without a slice count.
    """
    found = re.search(r"(\d+)g\.\d+gb", profile.lower())
    if found is None:
        return None
    slices = 4 if model is not None and "a30" in model.lower() else 7
    return min(int(found[1]) / slices, 1.0)


def _slice_prices(
    pairs: list[tuple[str | None, str | None]], prices: pl.DataFrame
) -> dict[tuple[str | None, str | None], float | None]:
    """The hourly price of each (model, MIG profile) pair (profile None: a whole GPU).

    A MIG instance takes the price-table entry naming its profile and part of its model
    (say "A100 MIG 1g.10gb" for an "NVIDIA A100-SXM4-80GB" instance of 1g.10gb) when
    there is one, else its GPU's price times the share of the GPU the profile holds
    (:func:`mig_share`). A profile of ``""``: a MIG instance whose profile is unknown,
    which has no price. None: no price.
    """
    whole = _price_of([m for m, _ in pairs if m is not None], prices)
    entries = sorted(prices.iter_rows(), key=lambda r: -len(r[0]))
    out: dict[tuple[str | None, str | None], float | None] = {}
    for model, profile in pairs:
        base = None if model is None else whole[model]
        if profile is None:
            out[(model, profile)] = base
            continue
        if profile == "":
            out[(model, profile)] = None
            continue
        out[(model, profile)] = _profile_price(model or "", profile, entries, base)
    return out


def _profile_price(
    model: str, profile: str, entries: list[tuple[str, float]], base: float | None
) -> float | None:
    tag = _norm(profile)
    for name, price in entries:
        norm = _norm(name)
        if tag not in norm.split():
            continue
        rest = " ".join(w for w in norm.split() if w not in (tag, "mig"))
        if rest in _norm(model):  # the entry's model part names this GPU
            return price
    share = mig_share(profile, model)
    return None if base is None or share is None else base * share


def _efficiency_source() -> pl.Expr:
    """Which reading the efficiency used: SM activity, utilization, or each in part."""
    sm, n = pl.col("_sm_n").sum(), pl.col("_n").sum()
    return (
        pl.when(sm == 0)
        .then(pl.lit("util_pct"))
        .when(sm >= n)
        .then(pl.lit("sm_active"))
        .otherwise(pl.lit("mixed"))
        .alias("efficiency_source")
    )


def busy_but_idle() -> pl.Expr:
    """High utilization with low SM activity: a GPU held, not computing (mean over the rows)."""
    return (
        ((pl.col("mean_util_pct") >= _BUSY_UTIL) & (pl.col("mean_sm_active") < _IDLE_SM))
        .fill_null(False)
        .alias("busy_but_idle")
    )


def _hours(expr: pl.Expr) -> pl.Expr:
    return expr.sum() / 3600.0


def _rollup(runs: pl.DataFrame, by: list[str]) -> pl.DataFrame:
    """GPU-hours, idle hours, utilization and cost per value of ``by``, from the runs."""
    w = pl.col("_w").sum()
    return (
        runs.filter(*(pl.col(c).is_not_null() for c in by))
        .group_by(by)
        .agg(
            _hours(pl.col("_w")).alias("gpu_hours"),
            _hours(pl.col("_w_active")).alias("active_gpu_hours"),
            _hours(pl.col("_w_idle")).alias("idle_gpu_hours"),
            _hours(pl.col("_w_bbi")).alias("busy_but_idle_gpu_hours"),
            (pl.col("_util_w").sum() / w).alias("mean_util_pct"),
            (pl.col("_eff_w").sum() / w).alias("efficiency_pct"),
            _efficiency_source(),
            pl.when(pl.col("_sm_n").sum() > 0)
            .then(pl.col("_sm_sum").sum() / pl.col("_sm_n").sum())
            .alias("mean_sm_active"),
            pl.col("_mem_peak").max().alias("peak_mem_mib"),
            pl.col("_pg").n_unique().alias("n_gpus"),
            (pl.col("_w") * pl.col("_price")).sum().truediv(3600.0).alias("total_cost"),
            (pl.col("_w_idle") * pl.col("_price")).sum().truediv(3600.0).alias("idle_cost"),
        )
        .with_columns((pl.col("idle_gpu_hours") / pl.col("gpu_hours")).alias("idle_share"))
        .with_columns(pl.col(c).cast(pl.Utf8) for c in by if c != "_g")
        .sort(["idle_cost", *by], descending=[True, *(False for _ in by)], nulls_last=True)
    )


def _per_gpu(runs: pl.DataFrame, gpus: pl.DataFrame) -> pl.DataFrame:
    base = _rollup(runs, ["_g"]).drop("n_gpus")
    ident = runs.group_by("_g", maintain_order=True).agg(
        pl.col("model").first(), pl.col("_mem_total").max().alias("mem_total_mib"),
        pl.when(pl.col("_power_n").sum() > 0)
        .then(pl.col("_power_sum").sum() / pl.col("_power_n").sum())
        .alias("mean_power_w"),
        pl.col("_temp_peak").max().alias("max_temp_c"),
    )  # fmt: skip
    keys = gpus.select(
        "_g",
        pl.when(pl.col("mig_instance").is_null())
        .then(pl.format("{}/{}", "host", "gpu"))
        .otherwise(pl.format("{}/{}/mig{}", "host", "gpu", "mig_instance"))
        .alias("gpu_key"),
        "host", "gpu", "mig_instance", "mig_profile",
        "median_interval_s", "longest_idle_h", "p50_util_pct", "p95_util_pct",
    )  # fmt: skip
    frame = keys.join(ident, on="_g").join(base, on="_g").sort("_g")
    out = frame.with_columns(
        busy_but_idle(),
        (pl.col("peak_mem_mib") / pl.col("mem_total_mib")).alias("peak_mem_share"),
    )
    return out.select(
        "gpu_key", "host", "gpu", "model", "mig_instance", "mig_profile", "mem_total_mib", "mean_power_w",
        "max_temp_c",
        *base.columns[1:], "median_interval_s", "longest_idle_h", "p50_util_pct", "p95_util_pct",
        "busy_but_idle", "peak_mem_share",
    )  # fmt: skip


def _tier_price(key: str, prices: pl.DataFrame) -> float | None:
    for name, price in prices.iter_rows():
        if key.lower() in name.lower().split() or name.lower().endswith(key.lower()):
            return float(price)
    return None


def _jobs(
    jobs: Any,
    usage: pl.DataFrame,
    prices: pl.DataFrame,
    *,
    known: pl.DataFrame | None = None,
    labelled: bool = True,
) -> pl.DataFrame:
    """Per-job table: telemetry usage, joined with Slurm accounting when given.

    ``known`` (``job_id``, ``known``) says which jobs' usage the telemetry shows: the
    others' waste is unknown (null). Without it, a job the telemetry does not show
    wasted its whole allocation when the telemetry names jobs (``labelled``), else its
    waste is unknown.

    ``fits_in`` names the smallest home for the job's peak memory (with 20 % headroom)
    and ``rightsized_cost`` what its GPU-hours would cost there, when the price table
    has that tier.
    """
    usage = usage.with_columns(pl.lit(None, dtype=pl.Utf8).alias("fits_in"), busy_but_idle())
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
    wanted = ("job_id", "job_name", "user", "partition", "state", "submit", "start", "gpus",
              "gpu_type", "gpu_hours_alloc", "queue_wait_s")  # fmt: skip
    acct = jobs.select(c for c in wanted if c in jobs.columns).rename({"user": "job_user"})
    out = acct.join(usage, on="job_id", how="left")
    if known is None:
        shown = pl.lit(labelled) | pl.col("gpu_hours").is_not_null()
    else:
        out = out.join(
            known.rename({"known": "_known", "alloc_seen_h": "_alloc"}), on="job_id", how="left"
        )
        shown = pl.col("_known").fill_null(False)
    return (
        out.with_columns(
            pl.coalesce("user", "job_user").alias("user"),
            # telemetry intervals can overrun a job's end by a sample: never negative waste
            # of the allocation, the part the telemetry ran through (all of it, unknown)
            pl.when(shown)
            .then(
                (
                    (pl.col("_alloc") if known is not None else pl.col("gpu_hours_alloc"))
                    - pl.col("active_gpu_hours").fill_null(0.0)
                ).clip(lower_bound=0.0)
            )
            .alias("wasted_gpu_hours"),
        )
        .drop("job_user", "_known", "_alloc", strict=False)
        .sort("wasted_gpu_hours", descending=True, nulls_last=True)
    )

"""Charts of a :class:`GpuReview`: pure functions of the result."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import altair as alt
import polars as pl

from aiops_lab.errors import ParameterError

if TYPE_CHECKING:
    from aiops_lab.gpu.result import GpuReview

__all__ = ["KINDS", "distribution", "draw", "heatmap", "queue", "waste"]

KINDS = ("heatmap", "distribution", "waste", "queue")


def draw(review: GpuReview, kind: str, **kwargs: Any) -> alt.TopLevelMixin:
    """Dispatch to the chart named ``kind``."""
    charts: dict[str, Any] = {
        "heatmap": heatmap,
        "distribution": distribution,
        "waste": waste,
        "queue": queue,
    }
    if kind not in charts:
        raise ParameterError("kind", "one of " + ", ".join(map(repr, KINDS)), kind)
    return charts[kind](review, **kwargs)


def heatmap(
    review: GpuReview, *, every: str | None = None, max_cells: int = 4000
) -> alt.TopLevelMixin:
    """Mean utilization per GPU and time bucket (time-weighted).

    ``every`` defaults to the finest of 10m, 30m, 1h, 2h, 4h, 6h, 12h, 1d that keeps
    the chart under ``max_cells`` cells (charts embed their data).
    """
    s = review.samples
    if every is None:
        epoch = s["timestamp"].dt.epoch("s")
        span_h = (float(epoch.max()) - float(epoch.min())) / 3600.0  # type: ignore[arg-type]
        n_gpus = review.per_gpu.height
        hours = {"10m": 1 / 6, "30m": 0.5, "1h": 1, "2h": 2, "4h": 4, "6h": 6, "12h": 12, "1d": 24}
        every = next((k for k, h in hours.items() if n_gpus * (span_h / h + 1) <= max_cells), "1d")
    s = s.with_columns(pl.col("timestamp").dt.truncate(every).alias("bucket"))
    s = s.with_columns(
        pl.concat_str(
            [pl.col("host").cast(pl.Utf8), pl.col("gpu").cast(pl.Utf8)], separator="/"
        ).alias("gpu_key")
    )
    cells = s.group_by("gpu_key", "bucket").agg(
        ((pl.col("util_pct") * pl.col("_w")).sum() / pl.col("_w").sum()).alias("util_pct")
    )
    return (
        alt.Chart(cells)
        .mark_rect()
        .encode(
            x=alt.X("bucket:T", title=None),
            y=alt.Y("gpu_key:N", title=None, sort="ascending"),
            color=alt.Color(
                "util_pct:Q", scale=alt.Scale(scheme="viridis", domain=[0, 100]), title="util %"
            ),
            tooltip=["gpu_key", alt.Tooltip("bucket:T"), alt.Tooltip("util_pct:Q", format=".0f")],
        )
        .properties(
            title=f"GPU utilization per {every} (blank = no samples)",
            width=640,
            height=alt.Step(10),
        )
    )


def distribution(review: GpuReview) -> alt.TopLevelMixin:
    """How GPU-hours spread over utilization levels."""
    s = review.samples.with_columns(
        (pl.col("util_pct").fill_null(0.0) // 10 * 10).clip(0, 90).alias("band")
    )
    bands = s.group_by("band").agg((pl.col("_w").sum() / 3600.0).alias("gpu_hours")).sort("band")
    return (
        alt.Chart(bands)
        .mark_bar()
        .encode(
            x=alt.X("band:O", title="utilization band (%)"),
            y=alt.Y("gpu_hours:Q", title="GPU-hours"),
            color=alt.condition(
                alt.datum.band < review.params["idle_threshold"],
                alt.value("#d92d20"),
                alt.value("#2e90fa"),
            ),
            tooltip=["band", alt.Tooltip("gpu_hours:Q", format=",.1f")],
        )
        .properties(title="Where the GPU-hours went, by utilization", width=480, height=220)
    )


def waste(review: GpuReview, *, by: str = "user", top: int = 15) -> alt.TopLevelMixin:
    """Idle cost ranking per user (or host)."""
    frame = review.per_user if by == "user" else review.per_host
    frame = frame.head(top)
    return (
        alt.Chart(frame)
        .mark_bar(color="#d92d20")
        .encode(
            x=alt.X("idle_cost:Q", title="idle cost (USD)"),
            y=alt.Y(f"{by}:N", sort="-x", title=None),
            tooltip=[
                by,
                alt.Tooltip("idle_gpu_hours:Q", format=",.1f"),
                alt.Tooltip("idle_share:Q", format=".0%"),
                alt.Tooltip("idle_cost:Q", format="$,.0f"),
            ],
        )
        .properties(title=f"Idle GPU cost by {by}", width=480, height=alt.Step(18))
    )


def queue(review: GpuReview) -> alt.TopLevelMixin:
    """Queue wait against the utilization the job then achieved."""
    jobs = review.per_job
    if "queue_wait_s" not in jobs.columns:
        msg = "Pass jobs= (a sacct dump) to review() to see queue waits."
        raise ParameterError(
            "kind",
            "a chart this review can draw ('heatmap', 'distribution', 'waste')",
            "queue",
            msg,
        )
    jobs = jobs.with_columns((pl.col("queue_wait_s") / 3600.0).alias("wait_h")).filter(
        pl.col("mean_util_pct").is_not_null()
    )
    return (
        alt.Chart(jobs)
        .mark_circle(opacity=0.7)
        .encode(
            x=alt.X("wait_h:Q", title="queue wait (h)"),
            y=alt.Y("mean_util_pct:Q", title="mean utilization (%)"),
            size=alt.Size("gpu_hours_alloc:Q", title="GPU-hours"),
            color=alt.Color("partition:N"),
            tooltip=[
                "job_id",
                "user",
                "partition",
                alt.Tooltip("wait_h:Q", format=".1f"),
                alt.Tooltip("mean_util_pct:Q", format=".0f"),
            ],
        )
        .properties(title="Queue wait vs achieved utilization", width=480, height=260)
    )

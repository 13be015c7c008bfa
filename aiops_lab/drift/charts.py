"""Charts of a :class:`DriftResult`: pure functions of the result, no computation."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import altair as alt
import polars as pl

from aiops_lab.errors import ColumnNotFoundError, ParameterError

if TYPE_CHECKING:
    from aiops_lab.drift.result import DriftResult

__all__ = ["KINDS", "distribution", "draw", "overview", "quality", "timeline"]

KINDS = ("overview", "distribution", "timeline", "quality")
_COLORS = alt.Scale(domain=[True, False], range=["#d92d20", "#98a2b3"])
_SIDES = alt.Scale(domain=["reference", "current"], range=["#667085", "#f79009"])


def draw(result: DriftResult, kind: str, **kwargs: Any) -> alt.TopLevelMixin:
    """Dispatch to the chart named ``kind``."""
    charts: dict[str, Any] = {
        "overview": overview,
        "distribution": distribution,
        "timeline": timeline,
        "quality": quality,
    }
    if kind not in charts:
        raise ParameterError("kind", "one of " + ", ".join(map(repr, KINDS)), kind)
    return charts[kind](result, **kwargs)


def overview(result: DriftResult, *, top: int = 30) -> alt.TopLevelMixin:
    """Columns ranked by severity (-log10 corrected p-value, or distance / threshold)."""
    t = result.table.head(top).with_columns(pl.col("severity").fill_null(0.0))
    decide_by = result.params["decide_by"]
    if decide_by == "p_value":
        title = "-log10(corrected p-value)"
        cut = -math.log10(result.params["alpha"])
    else:
        title = f"{decide_by} / threshold"
        cut = 1.0
    tooltip = [
        "column",
        "kind",
        "role",
        "p_adjusted",
        "psi",
        "js",
        "ks",
        "chi2",
        "null_ref",
        "null_cur",
        "reason",
    ]
    bars = (
        alt.Chart(t)
        .mark_bar()
        .encode(
            x=alt.X("severity:Q", title=title),
            y=alt.Y("column:N", sort="-x", title=None),
            color=alt.Color("drifted:N", scale=_COLORS, title="drifted"),
            tooltip=[alt.Tooltip(c) for c in tooltip if c in t.columns],
        )
    )
    rule = alt.Chart(pl.DataFrame({"cut": [cut]})).mark_rule(strokeDash=[4, 4]).encode(x="cut:Q")
    n = result.summary["n_drifted"]
    return (bars + rule).properties(
        title=f"Drift by column: {n} of {result.summary['n_tested']} tested columns drifted",
        width=480,
        height=alt.Step(16),
    )


def distribution(result: DriftResult, column: str | None = None) -> alt.TopLevelMixin:
    """Reference vs current shares of one column on the shared bins (or categories)."""
    if column is None:
        column = result.table["column"][0]
    d = result.distributions.filter(pl.col("column") == column)
    if d.height == 0:
        raise ColumnNotFoundError(column, "this drift result", result.table["column"].to_list())
    long = pl.concat(
        [
            d.select(
                "bin",
                "label",
                pl.col("ref_share").alias("share"),
                pl.lit("reference").alias("sample"),
            ),
            d.select(
                "bin",
                "label",
                pl.col("cur_share").alias("share"),
                pl.lit("current").alias("sample"),
            ),
        ]
    )
    order = d.sort("bin")["label"].to_list()
    row = result.table.filter(pl.col("column") == column).row(0, named=True)
    p = row["p_adjusted"]
    if p is None:
        detail = row["reason"] or ""
    else:
        detail = "corrected p < 1e-300" if p == 0 else f"corrected p = {p:.3g}"
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X(
                "label:N",
                sort=order,
                title="reference-quantile bin" if row["kind"] == "numeric" else "category",
            ),
            xOffset=alt.XOffset("sample:N", sort=["reference", "current"]),
            y=alt.Y("share:Q", title="share of rows", axis=alt.Axis(format="%")),
            color=alt.Color("sample:N", scale=_SIDES, title=None),
            tooltip=["label", "sample", alt.Tooltip("share:Q", format=".2%")],
        )
        .properties(title=f"{column}: reference vs current ({detail})", width=480, height=220)
    )


def timeline(result: DriftResult, *, columns: list[str] | None = None) -> alt.TopLevelMixin:
    """Heatmap of severity per column and window; drifted cells outlined."""
    if result.windows is None:
        msg = "This result has no windows; call compare(..., time_column=..., window='1d') to get a timeline."
        raise ParameterError(
            "kind", "a chart this result can draw ('overview', 'distribution')", "timeline", msg
        )
    w = result.windows
    if columns is not None:
        w = w.filter(pl.col("column").is_in(columns))
    order = result.table["column"].to_list()
    w = w.with_columns(pl.col("severity").fill_null(0.0).clip(0.0, 20.0).alias("severity_capped"))
    base = alt.Chart(w).encode(
        x=alt.X("window_start:T", title="window start"),
        y=alt.Y("column:N", sort=order, title=None),
    )
    cells = base.mark_rect().encode(
        x2="window_end:T",
        color=alt.Color("severity_capped:Q", scale=alt.Scale(scheme="orangered"), title="severity"),
        tooltip=[
            "column",
            alt.Tooltip("window_start:T"),
            "p_adjusted",
            "psi",
            "null_cur",
            "drifted",
            "reason",
        ],
    )
    marks = base.transform_filter(alt.datum.drifted).mark_point(
        shape="cross", color="black", size=30
    )
    return (cells + marks).properties(
        title="Drift over time (x = drifted)", width=560, height=alt.Step(16)
    )


def quality(result: DriftResult, *, metric: str | None = None) -> alt.TopLevelMixin:
    """Realized model quality per window beside its reference value."""
    if result.quality is None:
        msg = "Pass prediction_column= and label_column= to compare() to track model quality."
        raise ParameterError("kind", "a chart this result can draw", "quality", msg)
    q = result.quality
    metric = metric or q["metric"][0]
    q = q.filter(pl.col("metric") == metric)
    line = (
        alt.Chart(q)
        .mark_line(point=True)
        .encode(
            x=alt.X("window_start:T", title="window start"),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            tooltip=["window_start:T", "value", "reference_value", "n_labeled"],
        )
    )
    ref = (
        alt.Chart(q.head(1))
        .mark_rule(strokeDash=[4, 4], color="#667085")
        .encode(y="reference_value:Q")
    )
    return (line + ref).properties(
        title=f"Model quality: {metric} (dashed: reference)", width=560, height=200
    )

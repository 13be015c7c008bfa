"""Charts of a :class:`CostForecast` (and of allocation tables): pure functions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import altair as alt
import polars as pl

from aiops_lab.errors import ParameterError

if TYPE_CHECKING:
    from aiops_lab.finops.result import CostForecast

__all__ = ["KINDS", "allocation", "allocation_bars", "anomalies", "breach", "draw", "fan"]

KINDS = ("fan", "breach", "allocation", "anomalies")


def draw(result: CostForecast, kind: str, **kwargs: Any) -> alt.TopLevelMixin:
    """Dispatch to the chart named ``kind``."""
    charts: dict[str, Any] = {
        "fan": fan,
        "breach": breach,
        "allocation": allocation,
        "anomalies": anomalies,
    }
    if kind not in charts:
        raise ParameterError("kind", "one of " + ", ".join(map(repr, KINDS)), kind)
    return charts[kind](result, **kwargs)


def _pick_group(result: CostForecast, group: str | None) -> str:
    groups = result.forecast["group"].unique(maintain_order=True).to_list()
    if group is None:
        totals = result.history.group_by("group").agg(pl.col("y").sum()).sort("y", descending=True)
        return str(totals["group"][0])
    if group not in groups:
        raise ParameterError("group", f"one of {groups}", group)
    return group


def fan(
    result: CostForecast, *, group: str | None = None, history_days: int = 90
) -> alt.TopLevelMixin:
    """Daily history, the forecast mean and its interval bands, for one group."""
    g = _pick_group(result, group)
    hist = result.history.filter(pl.col("group") == g).sort("date").tail(history_days)
    fc = result.forecast.filter(pl.col("group") == g)
    levels = sorted(result.params["level"], reverse=True)
    layers = []
    for i, lv in enumerate(levels):
        layers.append(alt.Chart(fc).mark_area(opacity=0.18 + 0.15 * i, color="#2e90fa").encode(
            x=alt.X("date:T", title=None), y=alt.Y(f"lo_{lv}:Q", title="daily spend"), y2=f"hi_{lv}:Q"))  # fmt: skip
    layers.append(alt.Chart(fc).mark_line(color="#1849a9").encode(x="date:T", y="mean:Q"))
    layers.append(alt.Chart(hist).mark_line(color="#344054").encode(
        x="date:T", y="y:Q", tooltip=[alt.Tooltip("date:T"), alt.Tooltip("y:Q", format=",.2f")]))  # fmt: skip
    if result.anomalies.height:
        marks = result.anomalies.filter(pl.col("group") == g)
        layers.append(alt.Chart(marks).mark_point(color="#d92d20", size=70, filled=True).encode(
            x="date:T", y="actual:Q", tooltip=["date:T", alt.Tooltip("excess:Q", format="+,.0f"), "drivers"]))  # fmt: skip
    return alt.layer(*layers).properties(
        title=f"{g}: daily spend and {result.params['horizon']}-day forecast", width=620, height=240
    )


def breach(result: CostForecast) -> alt.TopLevelMixin:
    """Probability of passing the budget this period, per group."""
    if result.breach is None:
        raise ParameterError("kind", "a chart this forecast can draw (no budget was given)", "breach",
                             "Pass budget= to forecast() to see breach probabilities.")  # fmt: skip
    return alt.Chart(result.breach).mark_bar().encode(
        x=alt.X("p_breach:Q", title="P(period spend > budget)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("group:N", sort="-x", title=None),
        color=alt.condition(alt.datum.p_breach >= result.params["alert_p_breach"],
                            alt.value("#d92d20"), alt.value("#2e90fa")),
        tooltip=["group", alt.Tooltip("p_breach:Q", format=".0%"), alt.Tooltip("budget:Q", format=",.0f"),
                 alt.Tooltip("spent:Q", format=",.0f"), alt.Tooltip("p50_total:Q", format=",.0f"),
                 "expected_breach_date:T"],
    ).properties(title="Budget breach probability", width=480, height=alt.Step(20))  # fmt: skip


def allocation(result: CostForecast, *, last_days: int = 30) -> alt.TopLevelMixin:
    """Spend per group over the last ``last_days`` days of history."""
    last = result.history["date"].max()
    recent = result.history.filter(pl.col("date") > pl.lit(last).dt.offset_by(f"-{last_days}d"))
    frame = (
        recent.group_by("group").agg(pl.col("y").sum().alias("cost")).sort("cost", descending=True)
    )
    return allocation_bars(frame, by="group", title=f"Spend by group, last {last_days} days")


def allocation_bars(frame: pl.DataFrame, *, by: str | None = None, top: int = 20,
                    title: str = "Spend allocation") -> alt.TopLevelMixin:  # fmt: skip
    """Horizontal bars of an :func:`aiops_lab.finops.allocate` table."""
    by = by or frame.columns[0]
    return alt.Chart(frame.head(top)).mark_bar(color="#2e90fa").encode(
        x=alt.X("cost:Q", title="cost"), y=alt.Y(f"{by}:N", sort="-x", title=None),
        tooltip=[by, alt.Tooltip("cost:Q", format=",.2f")],
    ).properties(title=title, width=480, height=alt.Step(18))  # fmt: skip


def anomalies(result: CostForecast) -> alt.TopLevelMixin:
    """Every group's daily spend with the anomalous days marked."""
    hist = result.history
    base = (
        alt.Chart(hist)
        .mark_line(opacity=0.7)
        .encode(x=alt.X("date:T", title=None), y=alt.Y("y:Q", title="daily spend"), color="group:N")
    )
    points = alt.Chart(result.anomalies).mark_point(color="#d92d20", size=80, filled=True).encode(
        x="date:T", y="actual:Q",
        tooltip=["date:T", "group", alt.Tooltip("excess:Q", format="+,.0f"), "drivers"])  # fmt: skip
    return alt.layer(base, points).properties(title="Anomalous days", width=620, height=240)

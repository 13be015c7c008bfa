"""DriftResult presents what compare() found: tables, summary, charts, display, JSON."""

from __future__ import annotations

import json

import altair as alt
import polars as pl
import pytest

import aiops_lab
from aiops_lab.drift import compare


@pytest.fixture(scope="module")
def result():
    ref = aiops_lab.datasets.load("credit_reference")
    cur = aiops_lab.datasets.load("credit_production")
    return compare(
        ref, cur, time_column="timestamp", window="1d", prediction_column="score",
        label_column="label", backend="numpy", progress=False,
    )  # fmt: skip


def test_bundled_scenario_is_found(result):
    """The injected drifts (datasets/README.md) are detected, and when they started."""
    drifted = set(result.drifted_columns)
    assert {"income", "channel", "debt_to_income", "score"} <= drifted
    assert not drifted & {"age", "credit_score", "loan_amount", "region"}
    assert "utilization" in result.summary["null_drifted_columns"]
    first = dict(result.first_drift.select("column", "first_drift_start").iter_rows())
    assert first["income"].date().isoformat() >= "2026-10-08"
    assert first["channel"].date().isoformat() == "2026-10-15"
    assert first["debt_to_income"].date().isoformat() == "2026-10-22"
    unseen = result.table.filter(pl.col("column") == "channel")["unseen"][0]
    assert unseen == "partner"


def test_quality_drops_after_concept_drift_and_stops_without_labels(result):
    q = result.quality.filter(pl.col("metric") == "auc")
    before = q.filter(pl.col("window_start").dt.day() < 22)["value"].mean()
    after = q.filter((pl.col("window_start").dt.day() >= 22) & pl.col("value").is_not_null())[
        "value"
    ].mean()
    assert after < before - 0.03
    assert q.filter(pl.col("window_start").dt.day() >= 24)["n_labeled"].sum() == 0


@pytest.mark.parametrize("kind", ["overview", "distribution", "timeline", "quality"])
def test_charts_are_altair_and_render_offline(result, kind):
    from aiops_lab.display import chart_to_svg

    chart = result.chart(kind)
    assert isinstance(chart, alt.TopLevelMixin)
    assert chart_to_svg(chart).lstrip().startswith("<svg")


def test_distribution_of_unknown_column(result):
    with pytest.raises(aiops_lab.errors.ColumnNotFoundError, match="'nope'"):
        result.chart("distribution", column="nope")


def test_mimebundle_renders_without_a_kernel(result):
    bundle = result._repr_mimebundle_()
    assert "drift in" in bundle["text/plain"]
    assert "<svg" in bundle["text/html"]
    assert "<table" in bundle["text/html"]


def test_to_dict_is_json(result):
    d = json.loads(result.to_json())
    assert d["analysis"] == "drift"
    assert d["summary"]["n_drifted"] == result.summary["n_drifted"]
    assert len(d["table"]) == result.table.height
    assert "income.p_adjusted" in d["metrics"]


def test_explorer_widget_builds(result):
    explorer = result.explore()
    explorer.column.value = "channel"
    assert "categorical" in explorer.stats.value

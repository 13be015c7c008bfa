"""CostExplorer state changes, checked without a browser."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from aiops_lab.finops import CostExplorer, forecast

START = date(2026, 1, 5)


def _bill(values: np.ndarray, groups: list[str]) -> pl.DataFrame:
    n = values.shape[1]
    days = [START + timedelta(days=i) for i in range(n)]
    frame = pl.DataFrame({"ServiceName": np.repeat(groups, n), "EffectiveCost": values.ravel(),
                          "ChargePeriodStart": days * len(groups), "BillingCurrency": "USD"})  # fmt: skip
    return frame.with_columns(pl.col("ChargePeriodStart").cast(pl.Datetime("us", "UTC")))


@pytest.fixture(scope="module")
def result():
    # exact weekly patterns: seasonal-naive forecasts with zero-width intervals, so every
    # path is the forecast itself and P(breach) is 0 or 1 by a hand sum
    week_a = np.array([100.0, 110, 105, 115, 120, 40, 35])
    week_b = np.array([20.0, 21, 22, 23, 24, 25, 26])
    y = np.vstack([np.tile(week_a, 8), np.tile(week_b, 8)])  # 2026-01-05 .. 2026-03-01
    return forecast(
        _bill(y, ["a", "b"]), by="service", horizon=7, models=("snaive",), n_paths=200
    ), y


def test_budget_and_group_changes_update_the_view(result):
    fc, y = result
    w = CostExplorer(fc, group="a", budget=1.0)
    # March: 1 day spent (a Sunday, day 56 is a Monday); 30 more days repeat the week
    spent_a = y[0, 55]
    month_a = spent_a + sum(y[0, 49 + (k % 7)] for k in range(30))
    assert w.row["spent"] == pytest.approx(spent_a)
    assert w.row["forecast_total"] == pytest.approx(month_a)
    assert w.row["p_breach"] == 1.0
    w.budget.value = month_a + 1.0
    assert w.row["budget"] == month_a + 1.0
    assert w.row["p_breach"] == 0.0
    assert "0.0%" in w.stats.value
    w.budget.value = month_a - 1.0
    assert w.row["p_breach"] == 1.0
    assert "100.0%" in w.stats.value
    w.group.value = "b"
    month_b = y[1, 55] + sum(y[1, 49 + (k % 7)] for k in range(30))
    assert w.row["group"] == "b"
    assert w.row["forecast_total"] == pytest.approx(month_b)
    assert w.budget.value >= month_b  # the default budget is the forecast total rounded up
    assert w.row["p_breach"] == 0.0


def test_budget_moves_the_breach_probability_as_a_normal_total():
    # iid days with constant interval widths: the month's remaining total is normal
    rng = np.random.default_rng(4)
    y = 100 + rng.normal(0, 10, (1, 56))
    fc = forecast(_bill(y, ["a"]), by="service", horizon=7, models=("snaive",), n_paths=20_000)
    w = CostExplorer(fc)
    m = fc._simulation["mean"][0]
    s = fc._simulation["sigma"][0]
    spent = fc._simulation["spent"][0]
    # seasonal-naive widths jump once after 7 days: total = sum of shocks with weights psi
    psi = np.sqrt(np.clip(s**2 - np.concatenate([[0.0], s[:-1] ** 2]), 0, None))
    sd_total = np.sqrt(sum(psi[: len(m) - k].sum() ** 2 for k in range(len(m))))
    for budget in (spent + m.sum() - sd_total, spent + m.sum() + 0.5 * sd_total):
        w.budget.value = float(budget)
        expected = 1 - norm.cdf((budget - spent - m.sum()) / sd_total)
        assert (
            abs(w.row["p_breach"] - expected)
            < 4 * np.sqrt(expected * (1 - expected) / 20_000) + 1e-3
        )


def test_dimension_and_horizon_changes_refit_the_bill():
    # two services with exact weekly patterns, plus a team tag splitting them differently
    week_a = np.array([100.0, 110, 105, 115, 120, 40, 35])
    week_b = np.array([20.0, 21, 22, 23, 24, 25, 26])
    y = np.vstack([np.tile(week_a, 8), np.tile(week_b, 8)])
    frame = _bill(y, ["a", "b"])
    teams = [[{"key": "team", "value": "x" if s == "a" else "y"}] for s in frame["ServiceName"]]
    bill = frame.with_columns(Tags=pl.Series(teams))
    w = CostExplorer(costs=bill, forecast_kwargs={"models": ("snaive",), "n_paths": 200})
    assert w.result.params["by"] is None
    assert w.group.options == ("total",)
    assert set(w.dimension.options) >= {"(total)", "service", "tag:team"}
    first = w.result
    # the total: March has 1 day spent (day 55) and 30 more days repeating the week
    total = y.sum(axis=0)
    assert w.row["forecast_total"] == pytest.approx(
        total[55] + sum(total[49 + (k % 7)] for k in range(30))
    )
    w.budget.value = 1.0  # a budget move does not refit
    assert w.result is first
    assert w.row["p_breach"] == 1.0
    w.dimension.value = "service"
    assert w.result is not first
    assert w.result.params["by"] == "service"
    assert set(w.group.options) == {"a", "b"}
    assert w.group.value == "a"  # the largest
    assert w.row["forecast_total"] == pytest.approx(
        y[0, 55] + sum(y[0, 49 + (k % 7)] for k in range(30))
    )
    assert "refitted" in w.status.value
    assert not w.dimension.disabled
    assert not w.budget.disabled
    w.horizon.value = 14
    assert w.result.forecast.filter(pl.col("group") == "a").height == 14
    assert w.result.params["by"] == "service"
    w.dimension.value = "tag:team"
    assert set(w.group.options) == {"x", "y"}
    w.dimension.value = "service"  # kept from before: no refit
    assert "kept from before" in w.status.value
    w.horizon.value = 30
    w.dimension.value = "(total)"
    assert w.result is first  # the first fit, kept


def test_a_result_alone_cannot_refit(result):
    fc, _ = result
    w = CostExplorer(fc)
    assert w.dimension.disabled
    assert w.horizon.disabled
    w.horizon.value = 3  # ignored without the bill
    assert w.result is fc

"""The LLM service view against plain NumPy / polars computations on hand-made call logs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy.stats import binom

from aiops_lab.backend import to_numpy
from aiops_lab.errors import ParameterError
from aiops_lab.finops import kernels as K
from aiops_lab.finops import llm_usage, price_tokens, read_token_usage

DATA = Path(__file__).resolve().parent.parent / "datasets" / "finops"
T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)


def _calls(n_days: int = 10, seed: int = 0) -> pl.DataFrame:
    """Two models, two features; costs given directly (a priced log)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(n_days):
        for model, feature, n, price, lat in (
            ("big", "review", 30, 0.40, 60.0),
            ("small", "chat", 50, 0.001, 5.0),
        ):
            for _ in range(n):
                inp, out = int(rng.integers(1000, 5000)), int(rng.integers(10, 500))
                rows.append({"timestamp": T0 + timedelta(days=d, seconds=float(rng.uniform(0, 86000))),
                             "request_model": model, "model": model, "feature": feature,
                             "input_tokens": inp, "output_tokens": out,
                             "latency_s": float(rng.lognormal(np.log(lat), 0.5)),
                             "status": "error" if rng.uniform() < 0.02 else "ok",
                             "cost": price * (inp + out) / 3000.0, "priced": True})  # fmt: skip
    return pl.DataFrame(rows).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))


def test_grouped_percentiles_match_numpy_percentile(xp):
    rng = np.random.default_rng(2)
    group = rng.integers(0, 6, 500)
    group[group == 4] = 5  # group 4 is empty
    values = rng.lognormal(size=500)
    values[:3] = values[3]  # ties
    q = np.array([0.0, 50.0, 95.0, 99.0, 100.0, 12.5])
    got = to_numpy(
        K.grouped_percentiles(xp, xp.asarray(group), xp.asarray(values), 6, xp.asarray(q))
    )
    for g in range(6):
        if g == 4:
            assert np.all(np.isnan(got[g]))
        else:
            np.testing.assert_allclose(got[g], np.percentile(values[group == g], q), rtol=1e-12)


def test_per_group_and_window_numbers_match_plain_computations():
    calls = _calls()
    review = llm_usage(calls, max_error_rate=0.5)
    frame = calls.with_columns(day=pl.col("timestamp").dt.truncate("1d"))
    for (model, day), part in frame.group_by("model", "day"):
        row = review.windows.filter(
            (pl.col("model") == model) & (pl.col("window_start") == day)
        ).row(0, named=True)
        lat = part["latency_s"].to_numpy()
        n = part.height
        assert row["requests"] == n
        assert row["error_rate"] == pytest.approx((part["status"] == "error").sum() / n)
        assert row["input_tokens_per_request"] == pytest.approx(
            part["input_tokens"].to_numpy().mean()
        )
        assert row["output_tokens_per_request"] == pytest.approx(
            part["output_tokens"].to_numpy().mean()
        )
        for q in (50, 95, 99):
            assert row[f"latency_p{q}_s"] == pytest.approx(np.percentile(lat, q), rel=1e-12)
        cost = part["cost"].to_numpy()
        tokens = part["input_tokens"].to_numpy() + part["output_tokens"].to_numpy()
        assert row["cost_per_request"] == pytest.approx(cost.sum() / n)
        assert row["cost_per_1k_tokens"] == pytest.approx(1000 * cost.sum() / tokens.sum())
    assert review.windows.height == 20
    assert not review.summary["alert"]


def test_model_table_shows_the_tradeoff():
    calls = _calls()
    review = llm_usage(calls)
    m = {r["model"]: r for r in review.models.iter_rows(named=True)}
    for name in ("big", "small"):
        part = calls.filter(pl.col("model") == name)
        assert m[name]["latency_p95_s"] == pytest.approx(
            np.percentile(part["latency_s"].to_numpy(), 95)
        )
        assert m[name]["cost_per_request"] == pytest.approx(part["cost"].sum() / part.height)
    # small is cheaper and faster: it alone is on the cost/latency frontier
    assert m["small"]["pareto"]
    assert not m["big"]["pareto"]
    assert review.models["model"].to_list() == ["small", "big"]  # by cost per request
    assert m["big"]["cost_share"] + m["small"]["cost_share"] == pytest.approx(1.0)
    assert review.summary["cheapest_model"] == "small"
    for kind in ("tradeoff", "timeline"):
        assert review.chart(kind).to_dict()
    assert review.to_json()


def test_error_rate_flag_needs_more_than_chance():
    calls = _calls(n_days=3, seed=1).with_columns(status=pl.lit("ok"))
    day2 = calls.filter((pl.col("model") == "big") & (pl.col("timestamp").dt.day() == 3))
    # 8 of 30 calls fail on day 2: one-sided binomial p of >= 8 failures at 5 %
    failing = set(day2["timestamp"].sort().head(8).to_list())
    calls = calls.with_columns(
        status=pl.when(pl.col("timestamp").is_in(list(failing)))
        .then(pl.lit("error"))
        .otherwise(pl.lit("ok"))
    )
    review = llm_usage(calls, by="model", cost_jump=None)
    flags = review.flags
    assert flags.height == 1
    row = flags.row(0, named=True)
    assert row["metric"] == "error_rate"
    assert row["group"] == "big"
    assert row["value"] == pytest.approx(8 / 30)
    assert f"{binom.sf(7, 30, 0.05):.2g}" in row["detail"]
    assert review.summary["alert"]
    # two failures of 30 (6.7 %) is above 5 % but well within chance: no flag
    two = calls.with_columns(status=pl.lit("ok")).with_columns(
        status=pl.when(pl.col("timestamp").is_in(sorted(failing)[:2]))
        .then(pl.lit("error"))
        .otherwise(pl.lit("ok"))
    )
    assert binom.sf(1, 30, 0.05) > 0.01
    assert llm_usage(two, by="model", cost_jump=None).flags.height == 0


def test_latency_and_cost_jump_flags():
    calls = _calls(n_days=9, seed=3)
    last = T0 + timedelta(days=8)
    calls = calls.with_columns(
        cost=pl.when((pl.col("model") == "small") & (pl.col("timestamp") >= last)).then(pl.col("cost") * 3)
        .otherwise(pl.col("cost"))
    )  # fmt: skip
    review = llm_usage(calls, by="model", max_p95_latency_s=1e6, alert_last=1)
    jumps = review.flags.filter(pl.col("metric") == "cost_per_request")
    assert jumps["group"].to_list() == ["small"]
    small = calls.filter(pl.col("model") == "small").with_columns(
        day=pl.col("timestamp").dt.truncate("1d")
    )
    per_day = small.group_by("day").agg(c=pl.col("cost").mean()).sort("day")["c"].to_numpy()
    assert jumps["value"][0] == pytest.approx(per_day[-1])
    assert jumps["threshold"][0] == pytest.approx(2.0 * np.median(per_day[1:8]))
    assert review.summary["alert"]
    slow = llm_usage(calls, by="model", max_p95_latency_s=20.0, cost_jump=None)
    days = calls.with_columns(day=pl.col("timestamp").dt.truncate("1d"))
    expected = {
        (model, day)
        for (model, day), part in days.group_by("model", "day")
        if np.percentile(part["latency_s"].to_numpy(), 95) > 20.0
    }
    over = slow.flags.filter(pl.col("metric") == "latency_p95_s")
    assert set(zip(over["group"], over["window_start"], strict=True)) == expected
    assert {g for g, _ in expected} == {"big"}


def test_bundled_log_finds_the_outage_and_the_retry_storm():
    review = llm_usage(price_tokens(read_token_usage(DATA / "genai_spans.jsonl.gz")))
    flagged = {
        (r["window_start"].date().isoformat(), r["metric"], r["group"])
        for r in review.flags.iter_rows(named=True)
    }
    assert ("2026-04-21", "error_rate", "gpt-4o / doc-search") in flagged
    assert ("2026-05-12", "cost", "claude-sonnet-4-0 / code-review") in flagged
    # failed calls have no response model: they count against the model that was asked for
    assert review.models.height == 4


def test_bad_parameters():
    calls = _calls(n_days=1)
    with pytest.raises(ParameterError, match="window"):
        llm_usage(calls, window="fortnight")
    with pytest.raises(ParameterError, match="max_error_rate"):
        llm_usage(calls, max_error_rate=2.0)
    with pytest.raises(Exception, match="team"):
        llm_usage(calls, by="team")

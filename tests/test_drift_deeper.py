"""compare() runs the joint, embedding and estimated-quality analyses beside its column tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from aiops_lab import drift
from aiops_lab.drift import story
from aiops_lab.errors import ParameterError


def _joint_frames(seed: int = 3, n: int = 1500) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two columns whose correlation flips from +0.8 to -0.8; marginals unchanged."""
    r = np.random.default_rng(seed)
    ref = r.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=n)
    cur = r.multivariate_normal([0, 0], [[1, -0.8], [-0.8, 1]], size=n)
    start = datetime(2026, 10, 1)
    ts = [start + timedelta(minutes=10 * i) for i in range(n)]
    frame = lambda a: pl.DataFrame({"a": a[:, 0], "b": a[:, 1], "ts": ts})  # noqa: E731
    return frame(ref), frame(cur)


def test_joint_shift_raises_the_alert_when_no_column_drifts():
    ref, cur = _joint_frames()
    for col in ("a", "b"):
        assert stats.ks_2samp(ref[col], cur[col]).pvalue > 0.05
    res = drift.compare(ref, cur, time_column="ts", window="1d", multivariate=True, progress=False)
    s = res.summary
    assert s["n_drifted"] == 0
    assert s["alert"]
    assert s["joint_drift"]
    assert s["mmd_p_value"] <= 0.01
    assert s["classifier_auc_low"] > 0.5
    assert set(res.extras) == {"mmd", "classifier", "reconstruction"}
    assert "jointly" in s["headline"]
    assert "drift together although none drifts alone" in story.verdict(res)
    assert any("join" in step for step in story.next_steps(res))
    metrics = res.metrics()
    assert metrics["mmd.mmd_p_value"] == res.extras["mmd"].p_value
    assert "classifier.auc" in metrics
    tables = res.tables()
    assert {"mmd.table", "classifier.table", "reconstruction.table"} <= set(tables)
    json.loads(res.to_json())


def test_no_joint_drift_keeps_quiet():
    r = np.random.default_rng(8)
    a = r.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], size=2400)
    ref = pl.DataFrame({"a": a[:1200, 0], "b": a[:1200, 1]})
    cur = pl.DataFrame({"a": a[1200:, 0], "b": a[1200:, 1]})
    res = drift.compare(ref, cur, multivariate=["mmd"], progress=False)
    assert not res.summary["joint_drift"]
    assert not res.alert
    assert "No joint drift" in story.verdict(res)


def test_embeddings_auto_per_window():
    r = np.random.default_rng(4)
    centres = r.normal(size=(3, 8))

    def emb(n, new=0.0):
        x = centres[r.integers(0, 3, n)] + 0.3 * r.normal(size=(n, 8))
        hit = r.random(n) < new
        x[hit] = 1.5 + 0.3 * r.normal(size=(int(hit.sum()), 8))
        return x.astype(np.float32)

    ref = pl.DataFrame({"x": r.normal(size=600), "e": emb(600)})
    days = [emb(300) for _ in range(2)] + [emb(300, new=0.3) for _ in range(2)]
    ts = [datetime(2026, 10, 1 + d, 12) for d in range(4) for _ in range(300)]
    cur = pl.DataFrame({"x": r.normal(size=1200), "e": np.vstack(days), "ts": ts})
    res = drift.compare(ref, cur, time_column="ts", window="1d", embeddings="auto", progress=False)
    assert "e" not in res.skipped
    e = res.extras["embedding:e"]
    assert e.windows["drift"].to_list() == [False, False, True, True]
    assert res.alert
    assert res.summary["embedding.e.alert"]
    assert "Embedding `e` drifted" in story.verdict(res)


def test_estimate_quality_beside_realized():
    r = np.random.default_rng(9)
    n = 2000
    p = r.beta(2, 5, 2 * n)
    y = (r.random(2 * n) < p).astype(np.int64)
    ts = [datetime(2026, 10, 1) + timedelta(minutes=3 * i) for i in range(n)]
    ref = pl.DataFrame({"score": p[:n], "label": y[:n], "f": r.normal(size=n)})
    cur = pl.DataFrame({"score": p[n:], "label": y[n:], "f": r.normal(size=n), "ts": ts})
    res = drift.compare(
        ref, cur, time_column="ts", window="1d", prediction_column="score", label_column="label",
        estimate_quality=True, progress=False,
    )  # fmt: skip
    est = res.extras["estimate"]
    t = est.table.filter(pl.col("metric") == "accuracy")
    assert t["realized"].null_count() == 0
    # calibrated scores: each day's estimate is within 4 binomial standard errors of the truth
    for row in t.iter_rows(named=True):
        assert abs(row["estimated"] - row["realized"]) < 4 * np.sqrt(0.25 / row["n"]) + 0.01


def test_bad_options():
    ref, cur = _joint_frames(n=200)
    with pytest.raises(ParameterError, match="multivariate"):
        drift.compare(ref, cur, multivariate=["pca"])
    with pytest.raises(ParameterError, match="estimate_quality"):
        drift.compare(ref, cur, estimate_quality=True)
    with pytest.raises(ParameterError, match="sample_rows"):
        drift.compare(ref, cur, multivariate=True, sample_rows=3)


def test_bundled_joint_shift_is_found_by_the_joint_tests_only():
    """employment_years is joined to the wrong rows from 2026-10-17: columns pass, their relation fails."""
    from datetime import timezone

    quiet = ["num_open_accounts", "loan_amount", "credit_score", "age", "employment_years"]
    ref = "bundled:credit_reference"
    cur = "bundled:credit_production"
    per_column = drift.compare(ref, cur, columns=quiet, progress=False)
    assert per_column.drifted_columns == []
    rec = drift.reconstruction_drift(ref, cur, columns=quiet, time_column="timestamp", window="1d")
    days = rec.current
    shift = datetime(2026, 10, 17, tzinfo=timezone.utc)
    before = days.filter(pl.col("window_start") < shift)
    after = days.filter(pl.col("window_start") >= shift)
    assert not before["alert"].any()
    assert after["alert"].mean() > 0.5
    assert after["error"].mean() > before["error"].max()

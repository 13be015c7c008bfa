"""Model quality without labels: estimation kernels and ``estimate_performance``.

Expected values come from hand-worked cases, scikit-learn, or simulations whose
truth is known (labels drawn as Bernoulli(p) from a known p).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from aiops_lab.drift.estimation import PerformanceEstimate, estimate_performance
from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError


# -- simulations -------------------------------------------------------------------------------
def _sample(rng, n, a, b, concept=0.0):
    """True probabilities p ~ Beta(a, b); the model's score is p ** 0.7 (monotone but
    miscalibrated, so calibration has work to do); labels ~ Bernoulli(q) with
    logit(q) = logit(p) + concept (0: the relation the model learned)."""
    p = rng.beta(a, b, size=n)
    q = 1 / (1 + np.exp(-(np.log(p / (1 - p)) + concept)))
    y = (rng.uniform(size=n) < q).astype(np.int64)
    return p, q, pl.DataFrame({"score": p**0.7, "label": y})


@pytest.fixture(scope="module")
def reference():
    return _sample(np.random.default_rng(7), 20_000, 2.0, 5.0)[2]


def _acc_sd(q):
    """Standard deviation of realized accuracy given the scores: a mean of independent
    Bernoulli correctness indicators (prob. q if predicted positive, 1 - q if not)."""
    return math.sqrt(np.sum(q * (1 - q))) / q.size


def _auc_sd_bound(auc, y):
    # var(AUC) <= A (1 - A) / min(n_pos, n_neg)  (van Dantzig's bound)
    return math.sqrt(auc * (1 - auc) / min(y.sum(), (1 - y).sum()))


def test_estimate_tracks_realized_also_under_covariate_shift(reference):
    # Tolerance: 4 standard deviations of the realized value given the scores (known
    # here from the true p), plus 0.01 for the error of a calibration fitted on 20k
    # rows. Windows 0-3 keep the reference's Beta(2, 5); windows 4-7 shift the
    # inputs to Beta(5, 3) while the score-outcome relation holds.
    rng = np.random.default_rng(11)
    parts = [_sample(rng, 2_500, 2.0, 5.0) for _ in range(4)]
    parts += [_sample(rng, 2_500, 5.0, 3.0) for _ in range(4)]
    cur = pl.concat([frame for *_, frame in parts])
    est = estimate_performance(
        reference, cur, score="score", label="label", threshold=0.6**0.7, chunk_size=2_500
    )
    t = est.table
    for metric in ("accuracy", "roc_auc"):
        rows = t.filter(pl.col("metric") == metric)
        assert rows.height == 8
        for i, (p, q, frame) in enumerate(parts):
            y = frame["label"].to_numpy()
            if metric == "accuracy":
                real = accuracy_score(y, frame["score"].to_numpy() >= 0.6**0.7)
                tol = 4 * _acc_sd(q) + 0.01
            else:
                real = roc_auc_score(y, p)
                tol = 4 * _auc_sd_bound(real, y) + 0.01
            assert rows["realized"][i] == pytest.approx(real, rel=1e-12)
            assert abs(rows["estimated"][i] - real) <= tol, (metric, i)
    # the shift is real and the estimate follows it: accuracy falls by 0.05 or more,
    # over five times the realized value's s.d. (about 0.009 per window)
    acc = t.filter(pl.col("metric") == "accuracy")
    assert acc["estimated"][4:].max() < acc["estimated"][:4].min() - 0.05
    assert acc["alert"][4:].all()
    assert not acc["alert"][:4].any()
    before, after = est.calibration_error
    assert after < before


def test_estimate_does_not_follow_concept_shift(reference):
    # Documented limitation: the same scores now mean more defaults (log-odds + 1.5).
    # The realized accuracy drops far; the estimate, seeing unchanged scores, does not.
    rng = np.random.default_rng(5)
    _p, q, cur = _sample(rng, 5_000, 2.0, 5.0, concept=1.5)
    est = estimate_performance(reference, cur, score="score", label="label", threshold=0.6**0.7)
    acc = est.table.filter(pl.col("metric") == "accuracy").row(0, named=True)
    sd = _acc_sd(q)
    assert acc["realized"] < acc["lower"]
    assert acc["lower"] <= acc["estimated"] <= acc["upper"]
    assert not acc["alert"]
    assert acc["estimated"] - acc["realized"] > 10 * sd


def test_standard_errors_match_label_resampling():
    # Scores fixed, labels redrawn 400 times: the spread of the realized metrics is
    # what `standard_error` claims (15 % tolerance: 400 draws give the sd to ~4 %).
    # For ROC AUC the Hanley-McNeil formula also counts the spread of the scores, so
    # it may be wider: 0.9x to 1.5x.
    rng = np.random.default_rng(3)
    ref = _sample(rng, 4_000, 2.0, 5.0)[2].with_columns(pl.col("score") ** (1 / 0.7))
    p = rng.beta(2.0, 5.0, size=1_000)
    est = estimate_performance(
        ref, pl.DataFrame({"score": p}), score="score", label="label", threshold=0.3,
        calibrate=False,
    )  # fmt: skip
    se = dict(zip(est.table["metric"], est.table["standard_error"], strict=True))
    y = rng.uniform(size=(400, p.size)) < p
    pred = p >= 0.3
    tp, fp = (y & pred).sum(1), (~y & pred).sum(1)
    fn, tn = (y & ~pred).sum(1), (~y & ~pred).sum(1)
    sims = {
        "accuracy": (tp + tn) / p.size,
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }
    for metric, values in sims.items():
        assert se[metric] == pytest.approx(np.std(values, ddof=1), rel=0.15), metric
    auc_sd = np.std([roc_auc_score(row, p) for row in y[:200]], ddof=1)
    assert 0.9 * auc_sd <= se["roc_auc"] <= 1.5 * auc_sd


# -- labels arriving later ---------------------------------------------------------------------
def _days(rng, days=4, per_day=600):
    _, _, frame = _sample(rng, days * per_day, 2.0, 5.0)
    start = datetime(2026, 10, 1)
    ts = [start + timedelta(seconds=int(s)) for s in np.sort(rng.uniform(0, days * 86_400, days * per_day))]  # fmt: skip
    return frame.with_columns(
        pl.Series("timestamp", ts),
        pl.Series("request_id", [f"r{i:05d}" for i in range(frame.height)]),
    )


def test_delayed_labels_joined_by_id_match_labels_in_place(reference):
    rng = np.random.default_rng(21)
    cur = _days(rng)
    day = pl.col("timestamp").dt.day()
    # labels of day 4 have not arrived; a fifth of day 2's are missing too
    missing = (day == 4) | ((day == 2) & (pl.Series(rng.uniform(size=cur.height)) < 0.2))
    in_place = cur.with_columns(pl.when(missing).then(None).otherwise(pl.col("label")).alias("label"))  # fmt: skip
    late = in_place.select("request_id", "label").drop_nulls().sample(fraction=1.0, shuffle=True, seed=1)  # fmt: skip
    kw: dict[str, Any] = {
        "score": "score",
        "label": "label",
        "time_column": "timestamp",
        "window": "1d",
    }
    a = estimate_performance(reference, in_place, **kw)
    b = estimate_performance(
        reference, cur.drop("label").sample(fraction=1.0, shuffle=True, seed=2),
        labels=late, id_column="request_id", **kw,
    )  # fmt: skip
    cols = ["window_start", "metric", "n", "n_labelled", "estimated", "realized"]
    assert a.table.select(cols).equals(b.table.select(cols))
    acc = a.table.filter(pl.col("metric") == "accuracy")
    assert acc["realized"][3] is None
    assert acc["n_labelled"][3] == 0
    assert acc["estimated"][3] is not None
    # day 2: only the labelled rows count, checked against scikit-learn
    d2 = in_place.filter((day == 2) & pl.col("label").is_not_null())
    assert acc["n_labelled"][1] == d2.height < acc["n"][1]
    assert acc["realized"][1] == pytest.approx(
        accuracy_score(d2["label"], d2["score"] >= 0.5), rel=1e-12
    )


# -- result ------------------------------------------------------------------------------------
def test_result_shape_summary_and_chart(reference):
    rng = np.random.default_rng(4)
    cur = pl.concat([_sample(rng, 1_000, 2.0, 5.0)[2], _sample(rng, 1_000, 6.0, 2.0)[2]])
    est = estimate_performance(reference, cur, score="score", label="label", chunk_size=1_000)
    assert isinstance(est, PerformanceEstimate)
    assert est.table.columns[:5] == ["window_start", "window_end", "n", "n_labelled", "metric"]
    assert {"estimated", "realized", "lower", "upper", "alert"} <= set(est.table.columns)
    assert est.table.height == 2 * 5
    s = est.summary
    assert s["alert"] is True
    assert s["first_alert"] == 1000
    assert s["n_windows"] == 2
    assert isinstance(s["headline"], str)
    assert s["worst_metric"] in est.table["metric"].to_list()
    spec = est.chart().to_dict()
    assert "facet" in spec
    assert est.to_json()
    assert all(math.isfinite(v) for v in est.metrics().values())
    with pytest.raises(ParameterError, match="kind"):
        est.chart("nope")


# -- bad inputs --------------------------------------------------------------------------------
def test_bad_inputs_give_clear_errors(reference):
    cur = reference.head(100)
    with pytest.raises(InputError, match=r"'score'.*\[0, 1\]"):
        estimate_performance(reference, cur.with_columns(pl.col("score") * 3), score="score", label="label")  # fmt: skip
    with pytest.raises(ColumnNotFoundError, match="'proba'"):
        estimate_performance(reference, cur, score="proba", label="label")
    with pytest.raises(InputError, match="both classes"):
        estimate_performance(reference.filter(pl.col("label") == 0), cur, score="score", label="label")  # fmt: skip
    with pytest.raises(ParameterError, match="id_column"):
        estimate_performance(reference, cur, score="score", label="label", labels=cur)
    with pytest.raises(ParameterError, match="metrics"):
        estimate_performance(reference, cur, score="score", label="label", metrics=["auc"])
    with pytest.raises(ParameterError, match="time_column"):
        estimate_performance(reference, cur, score="score", label="label", window="1d")

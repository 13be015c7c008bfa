"""Domain-classifier drift finds joint shifts that per-column tests cannot see."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from aiops_lab.drift.classifier import classifier_drift, delong_variance
from aiops_lab.errors import InputError, ParameterError, SchemaMismatchError

N = 800  # rows a side: enough for a clear signal, small enough to stay fast


def _gaussian(rho: float, n: int, seed: int) -> pl.DataFrame:
    """Two standard-normal columns with correlation ``rho``, a noise column and a category."""
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal([0.0, 0.0], [[1.0, rho], [rho, 1.0]], size=n)
    return pl.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "noise": rng.normal(size=n),
            "tier": rng.choice(["gold", "silver", "bronze"], size=n),
        }
    )


@pytest.fixture(scope="module")
def flipped():
    ref, cur = _gaussian(0.8, N, 1), _gaussian(-0.8, N, 2)
    return ref, cur, classifier_drift(ref, cur, folds=3, seed=0)


@pytest.fixture(scope="module")
def unchanged():
    ref, cur = _gaussian(0.8, N, 3), _gaussian(0.8, N, 4)
    return classifier_drift(ref, cur, folds=3, seed=0)


def test_flipped_correlation_is_found_where_marginal_ks_sees_nothing(flipped):
    ref, cur, result = flipped
    for column in ("a", "b"):
        assert stats.ks_2samp(ref[column], cur[column]).pvalue > 0.05
    assert result.ci[0] > 0.5
    assert result.auc >= 0.55
    assert result.p_value < 1e-6
    assert result.alert
    assert result.summary["alert"]
    assert "joint drift" in result.headline


def test_importance_names_the_two_correlated_columns(flipped):
    _, _, result = flipped
    imp = result.importance
    assert imp.columns == ["column", "kind", "importance", "std"]
    assert set(imp["column"].head(2)) == {"a", "b"}
    by_column = dict(zip(imp["column"], imp["importance"], strict=True))
    assert by_column["a"] > 0.1
    assert by_column["b"] > 0.1
    assert abs(by_column["noise"]) < 0.05
    assert dict(zip(imp["column"], imp["kind"], strict=True))["tier"] == "categorical"


def test_same_distribution_does_not_alert(unchanged):
    assert not unchanged.alert
    assert unchanged.ci[0] <= 0.5 or unchanged.auc < 0.55
    assert unchanged.summary["headline"].startswith("no joint drift")


def test_auc_is_sklearn_roc_auc_of_the_out_of_fold_scores(flipped):
    _, _, result = flipped
    assert result.scores.shape == (2 * N,)
    assert result.labels.tolist() == [0] * N + [1] * N
    assert result.auc == pytest.approx(roc_auc_score(result.labels, result.scores), abs=1e-12)
    s = result.summary
    assert (s["auc"], s["auc_low"], s["auc_high"]) == (result.auc, *result.ci)
    assert s["n_reference"] == s["n_current"] == N


def test_ci_is_the_normal_interval_of_the_delong_variance(flipped):
    _, _, result = flipped
    se = np.sqrt(_delong_direct(result.scores, result.labels)[1])
    z = stats.norm.ppf(0.975)
    assert result.ci[0] == pytest.approx(max(0.0, result.auc - z * se), rel=1e-9)
    assert result.ci[1] == pytest.approx(min(1.0, result.auc + z * se), rel=1e-9)


def _delong_direct(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """DeLong's estimator straight from its definition: every positive against every negative."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / pos.size + v01.var(ddof=1) / neg.size


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_delong_variance_matches_the_quadratic_definition(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=60)
    labels[:2] = [0, 1]
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes ties
    auc, var = delong_variance(scores, labels)
    expected_auc, expected_var = _delong_direct(scores, labels)
    assert auc == pytest.approx(expected_auc, abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert var == pytest.approx(expected_var, rel=1e-10)


def test_delong_variance_hand_worked_case():
    # positives 0.9, 0.4; negatives 0.4, 0.1: psi = [[1, 1], [0.5, 1]]
    # AUC = 3.5 / 4; V10 = (1, 0.75), V01 = (0.75, 1); var = 0.03125 / 2 + 0.03125 / 2
    auc, var = delong_variance([0.9, 0.4, 0.4, 0.1], [1, 1, 0, 0])
    assert auc == pytest.approx(0.875)
    assert var == pytest.approx(0.03125)


def test_subsampling_is_seeded_and_reported():
    ref, cur = _gaussian(0.8, 300, 5), _gaussian(0.8, 200, 6)
    one = classifier_drift(ref, cur, columns=["a", "b"], folds=2, max_rows=120, seed=7)
    two = classifier_drift(ref, cur, columns=["a", "b"], folds=2, max_rows=120, seed=7)
    assert one.summary["subsampled"] is True
    assert (one.n_reference, one.n_current) == (120, 120)
    assert (one.summary["n_reference_total"], one.summary["n_current_total"]) == (300, 200)
    assert "subsampled to 120 of 300 reference" in one.headline
    np.testing.assert_array_equal(one.scores, two.scores)


def test_nulls_and_rare_categories_are_accepted():
    rng = np.random.default_rng(8)
    n = 200
    frame = pl.DataFrame(
        {
            "x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
            "many": [f"level{i}" for i in rng.integers(0, 400, n)],
            "flag": rng.random(n) < 0.5,
        }
    ).with_columns(pl.col("x").fill_nan(None))
    result = classifier_drift(frame[:100], frame[100:], columns=["x", "many", "flag"], folds=2)
    assert set(result.importance["column"]) == {"x", "many", "flag"}
    assert 0.0 <= result.auc <= 1.0


def test_result_renders_and_serialises(flipped):
    _, _, result = flipped
    for kind in ("importance", "roc"):
        assert "mark" in str(result.chart(kind).to_dict())
    roc = result.roc
    assert roc["fpr"][0] == 0.0
    assert roc["tpr"][-1] == 1.0
    data = result.to_dict()
    assert data["summary"]["alert"] is True
    assert set(result.tables()) == {"table", "roc", "folds"}
    assert result.metrics()["a.importance"] > 0.1
    with pytest.raises(ParameterError, match="kind"):
        result.chart("pie")


def test_mismatched_columns_are_named():
    ref, cur = _gaussian(0.8, 40, 1), _gaussian(0.8, 40, 2).rename({"b": "b2"})
    with pytest.raises(SchemaMismatchError, match=r"only in reference: \['b'\].*\['b2'\]"):
        classifier_drift(ref, cur)


def test_too_few_rows_for_the_folds():
    ref, cur = _gaussian(0.8, 40, 1), _gaussian(0.8, 9, 2)
    with pytest.raises(InputError, match=r"current data has 9 rows.*at least 10"):
        classifier_drift(ref, cur, folds=5)


def test_no_usable_columns():
    ref = pl.DataFrame({"when": pl.datetime_range(
        pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 2), "1h", eager=True)})  # fmt: skip
    with pytest.raises(InputError, match="No column left"):
        classifier_drift(ref, ref)


@pytest.mark.parametrize(
    ("name", "value"),
    [("folds", 1), ("confidence", 1.0), ("threshold", 0.4), ("max_rows", 3), ("seed", -1)],
)
def test_bad_parameters_name_themselves(name, value):
    ref = _gaussian(0.8, 40, 1)
    with pytest.raises(ParameterError, match=name):
        classifier_drift(ref, ref, **{name: value})

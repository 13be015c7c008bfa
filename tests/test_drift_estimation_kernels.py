"""The estimation kernels on every namespace: hand-worked cases and independent computations.

Imports no polars or scikit-learn (the GPU check runs this file on machines without them).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aiops_lab.backend import to_numpy
from aiops_lab.drift import estimation_kernels as EK


def _asarray(xp, values, dtype=None):
    return xp.asarray(np.asarray(values), dtype=dtype or xp.float64)


# -- kernels -----------------------------------------------------------------------------------
def test_expected_confusion_hand_worked(xp):
    # predicted positives hold p = 0.9, 0.8; predicted negatives p = 0.4, 0.2
    p = _asarray(xp, [0.9, 0.8, 0.4, 0.2])
    pred = xp.asarray([True, True, False, False])
    got = to_numpy(EK.expected_confusion(xp, p, pred))
    # tp = .9+.8, fp = .1+.2, fn = .4+.2, tn = .6+.8
    np.testing.assert_allclose(got, [1.7, 0.3, 0.6, 1.4], rtol=1e-12)
    var = to_numpy(EK.expected_variances(xp, p, pred))
    # .9*.1 + .8*.2 = .25 ; .4*.6 + .2*.8 = .40
    np.testing.assert_allclose(var, [0.25, 0.40], rtol=1e-12)


def test_expected_auc_hand_worked(xp):
    # Scores all distinct and equal to p. From the top: cumulative expected positives
    # .9, 1.7, 2.1, 2.3 (P = 2.3) and negatives .1, .3, .9, 1.7 (N = 1.7). Trapezoids
    # (width in negatives x mean height in positives): .1*.45 + .2*1.3 + .6*1.9 + .8*2.2
    # = 3.205, over P*N = 3.91.
    p = _asarray(xp, [0.2, 0.9, 0.4, 0.8])
    assert EK.expected_auc(xp, p, p) == pytest.approx(3.205 / 3.91, rel=1e-12)


def test_expected_auc_ties_and_pair_form(xp, rng):
    # Two tied rows enter the curve together: one diagonal step, area 1/2.
    assert EK.expected_auc(xp, _asarray(xp, [0.5, 0.5]), _asarray(xp, [0.5, 0.5])) == 0.5
    # The trapezoid equals the pair sum: sum_ij p_i (1 - p_j) [s_i > s_j] + 1/2 [s_i = s_j]
    # (i = j included) over P * N.
    s = rng.integers(0, 6, size=40) / 5.0
    p = rng.uniform(0.05, 0.95, size=40)
    gt = (s[:, None] > s[None, :]) + 0.5 * (s[:, None] == s[None, :])
    want = float(np.sum(p[:, None] * (1 - p[None, :]) * gt) / (p.sum() * (1 - p).sum()))
    assert EK.expected_auc(xp, _asarray(xp, s), _asarray(xp, p)) == pytest.approx(want, rel=1e-12)
    assert math.isnan(EK.expected_auc(xp, _asarray(xp, [0.3, 0.7]), _asarray(xp, [1.0, 1.0])))


def test_realized_kernels_match_scipy_and_counts(xp, rng):
    y = rng.integers(0, 2, size=300)
    s = np.round(rng.uniform(size=300), 1)  # many ties
    pred = s >= 0.5
    # AUC is the Mann-Whitney U of the positives over n_pos * n_neg (ties count one half)
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    auc = u / ((y == 1).sum() * (y == 0).sum())
    assert EK.realized_auc(xp, _asarray(xp, s), _asarray(xp, y)) == pytest.approx(auc, rel=1e-12)
    conf = to_numpy(EK.realized_confusion(xp, _asarray(xp, y), xp.asarray(pred)))
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    tn = int(np.sum(~pred & (y == 0)))
    np.testing.assert_array_equal(conf, [tp, fp, fn, tn])
    r = EK.rates(*conf.tolist())
    assert r["accuracy"] == pytest.approx((tp + tn) / 300)
    assert r["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn))


def test_estimation_kernels_import_without_polars_altair_or_sklearn():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['polars'] = None; sys.modules['altair'] = None; "
        "sys.modules['sklearn'] = None; sys.modules['scipy'] = None; "
        "import aiops_lab.drift.estimation_kernels; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

"""The batched drift kernels agree with SciPy / NumPy column by column, on every namespace."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from aiops_lab.backend import to_numpy
from aiops_lab.drift import kernels as K
from aiops_lab.pvalues import ks_pvalue


def _columns(rng: np.random.Generator, n_ref: int, n_cur: int) -> tuple[np.ndarray, np.ndarray]:
    """Six columns covering the awkward cases: shift, heavy ties, NaN/inf, constant, skew."""
    ref = np.empty((6, n_ref))
    cur = np.empty((6, n_cur))
    ref[0], cur[0] = rng.normal(size=n_ref), rng.normal(0.3, 1.0, size=n_cur)
    ref[1], cur[1] = rng.integers(0, 5, n_ref), rng.integers(0, 6, n_cur)  # ties everywhere
    ref[2], cur[2] = rng.normal(size=n_ref), rng.normal(size=n_cur)
    ref[2, rng.random(n_ref) < 0.2] = np.nan
    cur[2, rng.random(n_cur) < 0.1] = np.inf
    cur[2, rng.random(n_cur) < 0.1] = -np.inf
    ref[3], cur[3] = 7.0, rng.choice([7.0, 8.0], n_cur)  # constant reference
    ref[4], cur[4] = rng.lognormal(size=n_ref), rng.lognormal(0.1, 1.2, size=n_cur)
    ref[5], cur[5] = np.round(rng.normal(size=n_ref), 1), np.round(rng.normal(size=n_cur), 1)
    return ref, cur


def _finite(row: np.ndarray) -> np.ndarray:
    return row[np.isfinite(row)]


@pytest.mark.parametrize(("n_ref", "n_cur"), [(7, 5), (40, 40), (300, 170), (2_000, 5_000)])
def test_ks_and_wasserstein_match_scipy(xp, rng, n_ref, n_cur):
    ref, cur = _columns(rng, n_ref, n_cur)
    r = K.sort_sample(xp, xp.asarray(ref))
    c = K.sort_sample(xp, xp.asarray(cur))
    ks, w = (to_numpy(a) for a in K.ks_wasserstein(xp, r, c))
    for i in range(ref.shape[0]):
        a, b = _finite(ref[i]), _finite(cur[i])
        expected = stats.ks_2samp(a, b)
        assert ks[i] == pytest.approx(expected.statistic, abs=1e-9)
        p = ks_pvalue([ks[i]], [a.size], [b.size])[0]
        assert p == pytest.approx(expected.pvalue, abs=1e-6)
        assert w[i] == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-12)
    assert np.array_equal(to_numpy(r.n_valid), np.isfinite(ref).sum(axis=1))


def test_ks_pvalue_switches_to_asymptotic_like_scipy(rng):
    a, b = rng.normal(size=12_000), rng.normal(0.02, 1, size=9_000)
    expected = stats.ks_2samp(a, b)  # max(n) > 10000: scipy uses kstwo
    assert ks_pvalue([expected.statistic], [a.size], [b.size])[0] == pytest.approx(
        expected.pvalue, abs=1e-6
    )


@pytest.mark.parametrize("bins", [2, 5, 10, 20])
def test_quantile_edges_and_bin_counts_match_numpy(xp, rng, bins):
    ref, cur = _columns(rng, 500, 300)
    probs = np.linspace(0, 1, bins + 1)[1:-1]
    r = K.sort_sample(xp, xp.asarray(ref))
    c = K.sort_sample(xp, xp.asarray(cur))
    edges = K.quantile_edges(xp, r, xp.asarray(probs))
    ref_bins, cur_bins = K.bin_counts(xp, r, edges), K.bin_counts(xp, c, edges)
    div = {k: to_numpy(v) for k, v in K.divergences(xp, ref_bins, cur_bins).items()}
    ref_counts, cur_counts = to_numpy(ref_bins), to_numpy(cur_bins)
    for i in range(ref.shape[0]):
        a, b = _finite(ref[i]), _finite(cur[i])
        e = np.quantile(a, probs)
        assert np.array_equal(to_numpy(edges)[i], e)  # bit for bit: bins must agree exactly
        ue = np.unique(e)  # the definition uses unique edges; duplicates only add empty bins
        p = np.bincount(np.searchsorted(ue, a, side="right"), minlength=ue.size + 1) / a.size
        q = np.bincount(np.searchsorted(ue, b, side="right"), minlength=ue.size + 1) / b.size
        assert ref_counts[i].sum() == a.size
        assert cur_counts[i].sum() == b.size
        pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        assert div["psi"][i] == pytest.approx(
            np.sum((qf - pf) * np.log(qf / pf)), rel=1e-9, abs=1e-12
        )
        assert div["js"][i] == pytest.approx(jensenshannon(p, q), rel=1e-7, abs=1e-9)
        assert div["hellinger"][i] == pytest.approx(
            np.sqrt(max(1 - np.sum(np.sqrt(p * q)), 0)), abs=1e-9
        )
        assert div["linf"][i] == pytest.approx(np.max(np.abs(p - q)), abs=1e-12)


def test_divergences_of_identical_histograms_are_zero(xp):
    counts = xp.asarray(np.array([[5, 0, 3, 2]]))
    d = K.divergences(xp, counts, counts)
    for name in ("psi", "js", "hellinger", "linf"):
        assert float(to_numpy(d[name])[0]) == pytest.approx(0.0, abs=1e-7)


def test_category_counts_and_chi2_match_scipy(xp, rng):
    k = np.array([3, 5, 2])
    ref = np.stack([rng.integers(-1, kk, 400) for kk in k]).astype(np.int32)
    cur = np.stack([rng.integers(-1, kk, 250) for kk in k]).astype(np.int32)
    cur[1, :60] = 4  # a category that dominates current
    rc = K.category_counts(xp, xp.asarray(ref), xp.asarray(k))
    cc = K.category_counts(xp, xp.asarray(cur), xp.asarray(k))
    chi2, dof = (to_numpy(a) for a in K.chi2_statistic(xp, rc, cc))
    rc, cc = to_numpy(rc), to_numpy(cc)
    for i, kk in enumerate(k):
        expected_r = np.bincount(ref[i][ref[i] >= 0], minlength=kk)
        expected_c = np.bincount(cur[i][cur[i] >= 0], minlength=kk)
        assert np.array_equal(rc[i, :kk], expected_r)
        assert np.array_equal(cc[i, :kk], expected_c)
        res = stats.chi2_contingency([expected_r, expected_c], correction=False)
        assert chi2[i] == pytest.approx(res.statistic, rel=1e-10)
        assert dof[i] == res.dof


def test_chi2_skips_categories_absent_on_both_sides(xp):
    ref = xp.asarray(np.array([[10, 0, 5]]))
    cur = xp.asarray(np.array([[4, 0, 9]]))
    chi2, dof = (to_numpy(a) for a in K.chi2_statistic(xp, ref, cur))
    res = stats.chi2_contingency([[10, 5], [4, 9]], correction=False)
    assert chi2[0] == pytest.approx(res.statistic)
    assert dof[0] == 1


def test_auc_matches_mann_whitney(xp, rng):
    scores = np.round(rng.random(300), 2)  # ties
    labels = (rng.random(300) < scores).astype(np.int64)
    u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
    expected = u / (labels.sum() * (labels.size - labels.sum()))
    assert K.auc(xp, xp.asarray(scores), xp.asarray(labels)) == pytest.approx(expected, rel=1e-12)


def test_std_matches_numpy(xp, rng):
    ref, _ = _columns(rng, 200, 10)
    s = to_numpy(K.std(xp, K.sort_sample(xp, xp.asarray(ref))))
    for i in range(ref.shape[0]):
        assert s[i] == pytest.approx(np.std(_finite(ref[i])), rel=1e-9, abs=1e-12)


def test_kernels_import_without_polars_or_altair():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['polars'] = None; sys.modules['altair'] = None; "
        "sys.modules['mlflow'] = None; sys.modules['ipywidgets'] = None; "
        "import aiops_lab.drift.kernels, aiops_lab.pvalues, aiops_lab.backend; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize(
    ("n", "d"),
    [(500_000, 0.0025), (200_000, 0.005), (20_000, 0.015), (5_000, 0.04), (150, 0.2), (300, 0.6)],
)
def test_large_sample_ks_pvalue_matches_kstwo(n, d):
    """Our fast evaluation of SciPy's slow kstwo branch agrees with kstwo.sf."""
    from aiops_lab.pvalues import _kstwo_sf

    assert _kstwo_sf(d, float(n)) == pytest.approx(stats.kstwo.sf(d, n), rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_ks_and_wasserstein_without_missing_values(xp, rng, ties):
    """All values finite: the kernel takes its short path, with the same answers."""
    ref = rng.normal(size=(4, 800))
    cur = rng.normal(0.1, 1.1, size=(4, 600))
    if ties:
        ref, cur = np.round(ref, 1), np.round(cur, 1)
    ks, w = (
        to_numpy(a)
        for a in K.ks_wasserstein(
            xp, K.sort_sample(xp, xp.asarray(ref)), K.sort_sample(xp, xp.asarray(cur))
        )
    )
    for i in range(4):
        assert ks[i] == pytest.approx(stats.ks_2samp(ref[i], cur[i]).statistic, abs=1e-12)
        assert w[i] == pytest.approx(stats.wasserstein_distance(ref[i], cur[i]), rel=1e-10)


def test_block_columns_fits_the_host_budget():
    import array_api_compat.numpy as npx

    # 64 MiB of merge workspace; 8 float64 arrays of the pooled size per column
    assert K.block_columns(npx, 1_000, 50) == 50
    assert K.block_columns(npx, 200_000, 50) == 64 * 2**20 // (8 * 8 * 200_000)  # 5
    assert K.block_columns(npx, 10_000_000, 50) == 1  # never fewer than one column

"""The multivariate kernels agree with direct O(n^2) SciPy computations on every namespace.

Imports no polars (the GPU check runs this file on machines without it).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from aiops_lab.backend import to_numpy
from aiops_lab.drift import mv_kernels as MK


def direct_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """The unbiased MMD^2 straight from its definition (all three kernel matrices)."""
    g = 1.0 / (2.0 * sigma**2)
    kxx = np.exp(-g * cdist(x, x, "sqeuclidean"))
    kyy = np.exp(-g * cdist(y, y, "sqeuclidean"))
    kxy = np.exp(-g * cdist(x, y, "sqeuclidean"))
    m, n = len(x), len(y)
    np.fill_diagonal(kxx, 0.0)
    np.fill_diagonal(kyy, 0.0)
    return kxx.sum() / (m * (m - 1)) + kyy.sum() / (n * (n - 1)) - 2.0 * kxy.mean()


# -- kernels on every namespace -----------------------------------------------------------------
@pytest.mark.parametrize(("m", "n", "block"), [(30, 25, 10**9), (61, 47, 4_000), (9, 40, 600)])
def test_every_permutation_matches_the_direct_statistic(xp, rng, m, n, block):
    x = rng.normal(size=(m, 4))
    y = rng.normal(0.4, 1.2, size=(n, 4))
    z = np.vstack([x, y])
    sigma = 1.7
    w = MK.permutation_weights(xp, m, n, 12, 3, xp.float64)
    st = MK.mmd_stats(xp, xp.asarray(z), w, 1.0 / (2 * sigma**2), block_bytes=block)
    got = to_numpy(MK.mmd_from_stats(xp, st, m, n))
    w_host = to_numpy(w)
    assert np.allclose(w_host[:, 0], np.r_[np.full(m, 1 / m), np.full(n, -1 / n)])
    for p in range(w_host.shape[1]):
        is_ref = w_host[:, p] > 0
        assert is_ref.sum() == m
        want = direct_mmd2(z[is_ref], z[~is_ref], sigma)
        assert got[p] == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(("n", "block"), [(2, 10**9), (57, 10**9), (120, 3_000)])
def test_median_distance_matches_pdist(xp, rng, n, block):
    z = rng.normal(size=(n, 3)) * [1.0, 5.0, 0.1]
    got = MK.median_distance(xp, xp.asarray(z), block_bytes=block)
    assert got == pytest.approx(float(np.median(pdist(z))), rel=1e-6)


def test_nearest_neighbour_distances_match_cdist(xp, rng):
    q = rng.normal(size=(37, 5))
    p = rng.normal(size=(23, 5))
    got = to_numpy(MK.nearest_sq_distance(xp, xp.asarray(q), xp.asarray(p), block_bytes=900))
    assert np.allclose(got, cdist(q, p, "sqeuclidean").min(axis=1))
    loo = to_numpy(MK.nearest_sq_distance(xp, xp.asarray(p), xp.asarray(p), exclude_self=True))
    d = cdist(p, p, "sqeuclidean")
    np.fill_diagonal(d, np.inf)
    assert np.allclose(loo, d.min(axis=1))


def test_centroid_cosine_distance(xp):
    a = xp.asarray([[1.0, 0.0], [1.0, 0.0]])
    b = xp.asarray([[0.0, 2.0], [0.0, 4.0]])
    assert MK.centroid_cosine_distance(xp, a, b) == pytest.approx(1.0)
    assert MK.centroid_cosine_distance(xp, a, a) == pytest.approx(0.0)


def test_mmd_on_device_arrays_matches_numpy(xp, rng):
    """mmd() keeps arrays of any namespace where they are and gives NumPy's answer."""
    from aiops_lab.drift.multivariate import mmd

    x = rng.normal(size=(120, 8))
    y = rng.normal(0.2, 1.0, size=(100, 8))
    host = mmd(x, y, permutations=30, seed=4, dtype="float64")
    dev = mmd(xp.asarray(x), xp.asarray(y), permutations=30, seed=4, dtype="float64")
    assert dev.statistic == pytest.approx(host.statistic, rel=1e-9)
    assert dev.p_value == host.p_value
    assert dev.sigma == pytest.approx(host.sigma, rel=1e-6)

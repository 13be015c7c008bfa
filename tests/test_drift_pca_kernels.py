"""The PCA kernels on every namespace, against an SVD computed directly with NumPy.

Imports no polars or scikit-learn (the GPU check runs this file on machines without them).
"""

from __future__ import annotations

import numpy as np
import pytest

from aiops_lab.backend import to_numpy
from aiops_lab.drift import pca_kernels as K


def _correlated(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Columns on different scales mixed together, so PCA has a real structure to find."""
    return (rng.normal(size=(n, d)) @ rng.normal(size=(d, d))) * rng.uniform(0.1, 50, d)


def _svd_pca(z: np.ndarray, variance: float):
    """PCA by the SVD of the centred data, keeping components as scikit-learn's rule does:
    the fewest whose cumulative explained-variance ratio exceeds ``variance``."""
    zc = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(zc, full_matrices=False)
    ev = s**2 / (z.shape[0] - 1)
    ratio = ev / ev.sum()
    k = int(np.searchsorted(np.cumsum(ratio), variance, side="right")) + 1
    return k, vt[:k], ev[:k], ratio[:k], z.mean(axis=0)


@pytest.mark.parametrize("variance", [0.3, 0.65, 0.9, 0.999])
def test_pca_kernels_agree_with_an_svd(xp, rng, variance):
    x = _correlated(rng, 250, 6)
    model = K.fit(xp, xp.asarray(x), variance)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mu) / sd
    k, comps, ev, ratio, zmean = _svd_pca(z, variance)

    np.testing.assert_allclose(to_numpy(model.mean), x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(model.scale), x.std(axis=0), rtol=1e-12)
    components = to_numpy(model.components)
    assert components.shape == (k, 6)
    signs = np.sign(np.sum(components * comps, axis=1))
    np.testing.assert_allclose(components * signs[:, None], comps, atol=1e-8)
    np.testing.assert_allclose(to_numpy(model.explained_variance)[:k], ev)
    np.testing.assert_allclose(to_numpy(model.explained_variance_ratio)[:k], ratio)

    fresh = _correlated(np.random.default_rng(99), 40, 6)
    zk = K.standardize(xp, xp.asarray(fresh), model.mean, model.scale)
    error = to_numpy(K.reconstruction_error(xp, zk, model.center, model.components))
    zs = (fresh - mu) / sd - zmean
    expected = np.linalg.norm(zs - (zs @ comps.T) @ comps, axis=1)
    np.testing.assert_allclose(error, expected, rtol=1e-9, atol=1e-12)


def test_scaler_imputes_non_finite_values_with_the_mean(xp):
    x = np.array([[1.0, 5.0], [np.nan, 5.0], [3.0, 5.0], [np.inf, 5.0]])
    mean, scale = K.fit_scaler(xp, xp.asarray(x))
    np.testing.assert_allclose(to_numpy(mean), [2.0, 5.0])
    np.testing.assert_allclose(to_numpy(scale), [1.0, 1.0])  # std of (1, 3); constant -> 1
    z = to_numpy(K.standardize(xp, xp.asarray(x), mean, scale))
    np.testing.assert_allclose(z, [[-1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])


def test_window_means(xp):
    values = xp.asarray(np.arange(10, dtype=np.float64))
    offsets = xp.asarray(np.array([0, 3, 9, 5], dtype=np.int64))
    counts = xp.asarray(np.array([3, 6, 1, 0], dtype=np.int64))
    out = to_numpy(K.window_means(xp, values, offsets, counts))
    np.testing.assert_allclose(out[:3], [1.0, 5.5, 9.0])
    assert np.isnan(out[3])


def test_kernels_import_without_polars_altair_or_sklearn():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['polars'] = None; sys.modules['altair'] = None; "
        "sys.modules['sklearn'] = None; import aiops_lab.drift.pca_kernels; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr

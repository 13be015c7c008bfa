"""Property tests: on any small samples (ties, NaN, inf included) the kernels agree with SciPy."""

from __future__ import annotations

import array_api_compat.numpy as xp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from aiops_lab.drift import kernels as K

values = st.one_of(
    st.integers(-3, 3).map(float),  # heavy ties
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    st.sampled_from([np.nan, np.inf, -np.inf]),
)
samples = st.lists(values, min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(a=samples, b=samples)
def test_ks_and_wasserstein_agree_with_scipy(a, b):
    ra, rb = np.asarray(a), np.asarray(b)
    fa, fb = ra[np.isfinite(ra)], rb[np.isfinite(rb)]
    if fa.size == 0 or fb.size == 0:
        return
    width = max(ra.size, rb.size)
    pad = lambda r: np.concatenate([r, np.full(width - r.size, np.nan)])  # noqa: E731
    s_a = K.sort_sample(xp, pad(ra)[None, :])
    s_b = K.sort_sample(xp, pad(rb)[None, :])
    ks, w = K.ks_wasserstein(xp, s_a, s_b)
    assert abs(ks[0] - stats.ks_2samp(fa, fb).statistic) <= 1e-9
    expected_w = stats.wasserstein_distance(fa, fb)
    assert abs(w[0] - expected_w) <= 1e-9 * max(1.0, expected_w)


@settings(max_examples=100, deadline=None)
@given(a=samples, bins=st.integers(2, 12))
def test_bins_hold_every_finite_value_once(a, bins):
    r = np.asarray(a)[None, :]
    s = K.sort_sample(xp, r)
    if int(s.n_valid[0]) == 0:
        return
    edges = K.quantile_edges(xp, s, np.linspace(0, 1, bins + 1)[1:-1])
    counts = K.bin_counts(xp, s, edges)
    finite = r[0][np.isfinite(r[0])]
    expected = np.bincount(np.searchsorted(edges[0], finite, side="right"), minlength=bins)
    assert np.array_equal(counts[0], expected)

"""Budget-risk simulation, MASE and coverage kernels against closed forms and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from aiops_lab.backend import to_numpy
from aiops_lab.finops import kernels as K


def _run(xp, mean, sigma, spent, budget, n_paths=20_000, seed=7):
    z = K.standard_normal(xp, (mean.shape[0], n_paths, mean.shape[1]), seed)
    out = K.breach_simulation(xp, xp.asarray(mean), xp.asarray(sigma), xp.asarray(spent),
                              xp.asarray(budget), z)  # fmt: skip
    return [to_numpy(a) for a in out]


def test_iid_gaussian_days_match_the_normal_cdf(xp):
    # constant interval widths: independent days, the total is N(spent + n mu, n sigma^2)
    n, mu, sd, spent = 20, 100.0, 10.0, 500.0
    budgets = np.array([2450.0, 2500.0, 2560.0])
    mean, sigma = np.full((3, n), mu), np.full((3, n), sd)
    p, _, totals = _run(xp, mean, sigma, np.full(3, spent), budgets)
    expected = 1 - norm.cdf((budgets - spent - n * mu) / (sd * math.sqrt(n)))
    se = np.sqrt(expected * (1 - expected) / 20_000)
    assert np.all(np.abs(p - expected) < 4 * se + 1e-9)
    assert totals.shape == (3, 20_000)
    assert abs(totals.std() - sd * math.sqrt(n)) < 0.05 * sd * math.sqrt(n)


def test_widening_intervals_give_a_random_walk(xp):
    # sigma_h = s sqrt(h) is a random walk: var(total) = s^2 n(n+1)(2n+1)/6
    n, mu, s = 15, 100.0, 5.0
    mean = np.full((1, n), mu)
    sigma = s * np.sqrt(np.arange(1, n + 1, dtype=float))[None, :]
    budget = np.array([1600.0])
    p, _, _ = _run(xp, mean, sigma, np.zeros(1), budget)
    sd_total = s * math.sqrt(n * (n + 1) * (2 * n + 1) / 6)
    expected = 1 - norm.cdf((budget[0] - n * mu) / sd_total)
    assert abs(p[0] - expected) < 4 * math.sqrt(expected * (1 - expected) / 20_000)


def test_breach_day_without_noise_is_the_crossing_day(xp):
    # 100 a day from 250 already spent: cumulative 350, 450, 550 -> day index 2 passes 500
    mean, sigma = np.full((1, 10), 100.0), np.zeros((1, 10))
    p, day, _ = _run(xp, mean, sigma, np.array([250.0]), np.array([500.0]), n_paths=200)
    assert p[0] == 1.0
    assert day[0] == 2.0
    p, day, _ = _run(xp, mean, sigma, np.array([600.0]), np.array([500.0]), n_paths=200)
    assert p[0] == 1.0
    assert day[0] == -1.0
    p, day, _ = _run(xp, mean, sigma, np.array([0.0]), np.array([5000.0]), n_paths=200)
    assert p[0] == 0.0
    assert np.isnan(day[0])


def test_shock_weights_of_seasonal_naive_widths(xp):
    # seasonal-naive widths jump after each season: one shock per week
    sigma = np.sqrt(np.array([[1.0] * 7 + [2.0] * 7]))
    psi = to_numpy(K.shock_weights(xp, xp.asarray(sigma)))
    expected = np.zeros(14)
    expected[0], expected[7] = 1.0, 1.0
    np.testing.assert_allclose(psi[0], expected, atol=1e-12)


def test_mase_by_hand(xp):
    actual = np.array([[10.0, 12.0, 14.0, np.nan], [5.0, 5.0, 5.0, 5.0]])
    pred = np.array([[11.0, 10.0, 14.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    scale = np.array([2.0, 0.0])
    got = to_numpy(K.mase(xp, xp.asarray(actual), xp.asarray(pred), xp.asarray(scale)))
    assert got[0] == pytest.approx((1 + 2 + 0) / 3 / 2.0)
    assert np.isnan(got[1])  # a zero scale has no MASE


def test_coverage_by_hand(xp):
    actual = np.array([[1.0, 2.0, 3.0, 4.0, np.nan]])
    lo, hi = np.full((1, 5), 1.5), np.full((1, 5), 3.0)
    got = to_numpy(K.interval_coverage(xp, xp.asarray(actual), xp.asarray(lo), xp.asarray(hi)))
    assert got[0] == pytest.approx(2 / 4)


def test_kernels_import_without_polars():
    import subprocess
    import sys

    code = "import sys; sys.modules['polars'] = None; import aiops_lab.finops.kernels"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chunked_simulation_equals_the_unchunked_run(xp):
    rng = np.random.default_rng(11)
    mean = rng.uniform(50, 150, (9, 12))
    sigma = np.sqrt(np.cumsum(rng.uniform(1, 20, (9, 12)), axis=1))
    spent = rng.uniform(0, 500, 9)
    budget = spent + mean.sum(axis=1) + rng.normal(0, 30, 9)
    args = [xp.asarray(a) for a in (mean, sigma, spent, budget)]
    whole = [to_numpy(a) for a in K.simulate_breach(xp, *args, n_paths=300, seed=5, max_bytes=None)]
    # the same draws fed to the one-shot kernel
    direct = K.breach_simulation(
        xp, *args, xp.asarray(np.random.default_rng(5).standard_normal((9, 300, 12)))
    )
    for a, b in zip(whole, direct, strict=True):
        np.testing.assert_array_equal(a, to_numpy(b))
    for chunk in (1, 2, 4, 9):
        part = [to_numpy(a) for a in K.simulate_breach(xp, *args, n_paths=300, seed=5, chunk=chunk)]
        for a, b in zip(whole, part, strict=True):
            np.testing.assert_array_equal(a, b)
    # a byte limit picks the chunk: 5 working arrays of 300 x 12 float64 per series
    assert K.chunk_rows(9, 300, 12, 5 * 300 * 12 * 8 * 2) == 2
    assert K.chunk_rows(9, 300, 12, 1) == 1
    seen = []
    K.simulate_breach(xp, *args, n_paths=300, seed=5, max_bytes=5 * 300 * 12 * 8 * 4,
                      progress=lambda it: (seen.append(s) or s for s in it))  # fmt: skip
    assert seen == [0, 4, 8]

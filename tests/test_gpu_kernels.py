"""GPU accounting kernels against hand-computed cases, on every array namespace.

Imports nothing but NumPy and the kernels, so it runs on a GPU machine without polars.
"""

from __future__ import annotations

import numpy as np
import pytest

from aiops_lab.backend import to_numpy
from aiops_lab.gpu import kernels as K

MIN = 60_000_000  # one minute in microseconds


def test_sample_weights_cap_gaps_and_count_the_last_sample(xp):
    # GPU 0: every minute, with an 11-minute gap; GPU 1: every 30 s; GPU 2: one sample
    t = np.array([0, 1, 2, 3, 14, 15, 0, 0.5, 1.0, 7], dtype=np.float64) * MIN
    group = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    w, median = K.sample_weights(xp, xp.asarray(group), xp.asarray(t.astype(np.int64)), 3)
    w, median = to_numpy(w), to_numpy(median)
    # by hand: the gap (11 min) counts twice the median (2 min); last samples count the median
    assert list(w[:6]) == [60, 60, 60, 120, 60, 60]
    assert list(w[6:9]) == [30, 30, 30]
    assert w[9] == 0  # a lone sample has no interval to stand for
    assert list(median) == [60, 30, 0]


def test_idle_runs_take_the_longest_stretch(xp):
    group = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    idle = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
    w = np.array([60, 60, 60, 120, 60, 60, 30, 30, 30], dtype=np.float64)
    runs = to_numpy(K.idle_runs(xp, xp.asarray(group), xp.asarray(idle), xp.asarray(w), 3))
    assert list(runs) == [240, 60, 0]


def test_segment_quantile_matches_numpy(xp, rng):
    group = rng.integers(0, 6, 400)
    values = np.round(rng.normal(size=400), 1)
    values[rng.random(400) < 0.1] = np.nan
    for q in (0.0, 0.5, 0.95, 1.0):
        got = to_numpy(K.segment_quantile(xp, xp.asarray(group), xp.asarray(values), 7, q))
        for g in range(7):
            v = values[(group == g) & np.isfinite(values)]
            if v.size:
                assert got[g] == pytest.approx(np.quantile(v, q), abs=1e-12)
            else:
                assert np.isnan(got[g])


def test_median_interval_matches_numpy(xp, rng):
    """Random irregular sampling: each group's median interval is numpy's median of its diffs."""
    group = np.sort(rng.integers(0, 5, 300))
    t = np.zeros(300, dtype=np.int64)
    for g in range(5):
        rows = group == g
        t[rows] = np.cumsum(rng.integers(1, 90, rows.sum())) * 1_000_000
    _, median = K.sample_weights(xp, xp.asarray(group), xp.asarray(t), 6)
    median = to_numpy(median)
    for g in range(5):
        diffs = np.diff(t[group == g]) / 1e6
        assert median[g] == (np.median(diffs) if diffs.size else 0.0)
    assert median[5] == 0.0  # a group with no samples


def test_idle_run_parts_by_hand(xp):
    # GPU 0: idle idle busy idle idle | GPU 1: all idle | GPU 2: busy idle busy | GPU 3: none
    group = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
    idle = np.array([1, 1, 0, 1, 1, 1, 1, 0, 1, 0], dtype=bool)
    w = np.array([10, 20, 30, 40, 50, 5, 6, 1, 2, 3], dtype=np.float64)
    parts = K.idle_run_parts(xp, xp.asarray(group), xp.asarray(idle), xp.asarray(w), 4)
    longest, leading, trailing, full = (to_numpy(p) for p in parts)
    assert list(longest) == [90, 11, 2, 0]
    assert list(leading) == [30, 11, 0, 0]
    assert list(trailing) == [90, 11, 0, 0]
    assert list(full) == [False, True, False, True]  # a GPU without rows changes nothing


def test_next_intervals_by_hand(xp):
    group = np.array([0, 0, 0, 1, 2, 2])
    t_us = np.array([0, 10, 25, 7, 3, 4], dtype=np.int64)
    dt, same_next = (to_numpy(a) for a in K.next_intervals(xp, xp.asarray(group), xp.asarray(t_us)))
    assert list(dt) == [10, 15, 0, 0, 1, 0]  # a GPU's last sample has none yet
    assert list(same_next) == [True, True, False, False, True, False]


def test_idle_stretches_by_hand(xp):
    # GPU 0: idle idle busy idle | GPU 1: idle | GPU 2: busy busy
    group = np.array([0, 0, 0, 0, 1, 2, 2])
    idle = np.array([1, 1, 0, 1, 1, 0, 0], dtype=bool)
    w = np.array([10, 20, 30, 40, 5, 1, 2], dtype=np.float64)
    first, last, seconds = (
        to_numpy(a)
        for a in K.idle_stretches(xp, xp.asarray(group), xp.asarray(idle), xp.asarray(w))
    )
    assert list(first) == [0, 3, 4]  # GPU 1's stretch does not join GPU 0's
    assert list(last) == [1, 3, 4]
    assert list(seconds) == [30, 40, 5]
    none = K.idle_stretches(xp, xp.asarray(group[5:]), xp.asarray(idle[5:]), xp.asarray(w[5:]))
    assert [int(a.shape[0]) for a in none] == [0, 0, 0]


def test_idle_run_parts_combine_across_a_split(xp, rng):
    """Cutting every GPU's rows in two and combining the parts gives the whole's longest run."""
    sizes = [40, 25, 60]
    group = np.repeat(np.arange(3), sizes)
    idle = rng.random(group.size) < 0.6
    w = rng.uniform(1, 10, group.size)
    whole = to_numpy(K.idle_runs(xp, xp.asarray(group), xp.asarray(idle), xp.asarray(w), 3))
    cut = np.concatenate([np.arange(s) < s // 3 for s in sizes])  # first third of each GPU
    a = [to_numpy(p) for p in K.idle_run_parts(xp, xp.asarray(group[cut]), xp.asarray(idle[cut]), xp.asarray(w[cut]), 3)]  # fmt: skip
    b = [to_numpy(p) for p in K.idle_run_parts(xp, xp.asarray(group[~cut]), xp.asarray(idle[~cut]), xp.asarray(w[~cut]), 3)]  # fmt: skip
    combined = np.maximum(np.maximum(a[0], b[0]), a[2] + b[1])
    np.testing.assert_allclose(combined, whole, rtol=1e-12)
    # and by a plain loop over each GPU's rows
    for g in range(3):
        best = run = 0.0
        for i in np.flatnonzero(group == g):
            run = run + w[i] if idle[i] else 0.0
            best = max(best, run)
        assert whole[g] == pytest.approx(best)


def _distinct(group: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each distinct (group, value) pair once, shuffled, and how often it occurs."""
    pairs, counts = np.unique(np.stack([group, values], axis=1), axis=0, return_counts=True)
    shuffle = np.random.default_rng(0).permutation(len(counts))
    return pairs[shuffle, 0].astype(np.int64), pairs[shuffle, 1], counts[shuffle].astype(np.int64)


def test_counted_median_intervals_equal_numpys_median_of_every_interval(xp, rng):
    # few distinct intervals (whole seconds), so counts run high; group 3 has one sample
    sizes = [200, 51, 2, 1, 0, 77]
    group = np.repeat(np.arange(len(sizes)), sizes)
    t = np.concatenate([np.cumsum(rng.integers(1, 6, n)) * 1_000_000 for n in sizes])
    same = np.r_[group[1:] == group[:-1], False]
    dt = np.r_[np.diff(t), 0]
    g, d, c = _distinct(group[same], dt[same])
    got = to_numpy(
        K.counted_median_intervals(xp, xp.asarray(g), xp.asarray(d), xp.asarray(c), len(sizes))
    )
    for k in range(len(sizes)):
        diffs = np.diff(t[group == k]) / 1e6
        assert got[k] == (np.median(diffs) if diffs.size else 0.0), k
    # the same as the kernel over every row
    every = to_numpy(K.median_intervals(xp, xp.asarray(group), xp.asarray(t), len(sizes)))
    np.testing.assert_array_equal(got, every)


def test_counted_quantiles_equal_numpys_linear_quantiles(xp, rng):
    sizes = [300, 1, 0, 40, 9]
    group = np.repeat(np.arange(len(sizes)), sizes)
    values = rng.integers(0, 101, group.size).astype(np.float64)  # whole percents
    values[sizes[0] + sizes[1] :][:5] = 12.5  # and a few readings between
    g, v, c = _distinct(group, values)
    q50, q95 = (
        to_numpy(q)
        for q in K.counted_quantiles(
            xp, xp.asarray(g), xp.asarray(v), xp.asarray(c), len(sizes), (0.5, 0.95)
        )
    )
    for k in range(len(sizes)):
        part = values[group == k]
        if part.size == 0:
            assert np.isnan(q50[k])
            assert np.isnan(q95[k])
            continue
        assert q50[k] == pytest.approx(np.quantile(part, 0.5), abs=1e-12)
        assert q95[k] == pytest.approx(np.quantile(part, 0.95), abs=1e-12)


def test_counted_order_statistics_by_hand(xp):
    # group 0: 5 x3, 7 x1, 9 x2 -> sorted 5 5 5 7 9 9; group 1: 4 x2
    group = np.array([0, 1, 0, 0])
    values = np.array([9.0, 4.0, 5.0, 7.0])
    counts = np.array([2, 2, 3, 1])
    ranks = [np.array([0, 0]), np.array([3, 1]), np.array([5, 1]), np.array([2, 0])]
    got = K.counted_order_statistics(
        xp, xp.asarray(group), xp.asarray(values), xp.asarray(counts), 2,
        [xp.asarray(r) for r in ranks],
    )  # fmt: skip
    assert [list(to_numpy(a)) for a in got] == [[5, 4], [7, 4], [9, 4], [5, 4]]

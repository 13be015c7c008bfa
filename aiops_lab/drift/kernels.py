"""Batched drift statistics, written once against the array API standard.

Arrays in, arrays out; ``xp`` is passed down by the caller (NumPy, CuPy, or any
array-API namespace such as array_api_strict). Nothing here imports polars, altair,
ipywidgets or mlflow, so these kernels run on a GPU machine that has only NumPy/CuPy.

Layout: numeric data is ``(C, n)`` -- one row per column -- so sorting and reductions
run along the last, contiguous axis for every column at once. Values that are not
finite (null, NaN, +/-inf) are excluded: they are replaced by +inf and sorted to the
end of each row, and ``n_valid`` counts the finite ones.

Every statistic is computed from the sorted arrays, which are made once and reused.
The per-column summaries that do not need the raw data (bin counts on reference
edges, category counts, null counts) are plain counts, so they can be computed per
partition and summed.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = [
    "SortedSample",
    "auc",
    "bin_counts",
    "block_columns",
    "category_counts",
    "chi2_statistic",
    "divergences",
    "ks_wasserstein",
    "quantile_edges",
    "searchsorted_batched",
    "sort_sample",
    "std",
]


#: bytes of merge workspace per block of numeric columns in host memory
HOST_BLOCK_BYTES = 64 * 2**20
#: arrays of the pooled sample's size that ks_wasserstein holds at its peak
MERGE_ARRAYS = 8


def block_columns(xp: Any, n_rows: int, n_cols: int) -> int:
    """Numeric columns per block so one block's merge workspace fits the device.

    ``n_rows`` is the pooled row count (reference + current). On the host the budget
    is :data:`HOST_BLOCK_BYTES` (blocks then run on a thread pool); on a CUDA device it
    is 40 % of the free device memory, so a GPU takes many columns at once.
    """
    budget = HOST_BLOCK_BYTES
    try:
        import array_api_compat

        if array_api_compat.is_cupy_namespace(xp):
            import cupy

            free, _total = cupy.cuda.runtime.memGetInfo()
            budget = max(HOST_BLOCK_BYTES, int(free * 0.4))
    except Exception:  # no CUDA runtime to ask: the host budget is safe
        budget = HOST_BLOCK_BYTES
    per_col = 8 * MERGE_ARRAYS * max(n_rows, 1)
    return max(1, min(max(n_cols, 1), budget // per_col))


class SortedSample(NamedTuple):
    """A ``(C, n)`` sample sorted along the last axis, non-finite values at the end."""

    values: Any  # (C, n) float64, finite values first, +inf padding after
    n_valid: Any  # (C,) int64: finite values per column


def sort_sample(xp: Any, x: Any) -> SortedSample:
    """Sort every column of ``x`` (shape ``(C, n)``); non-finite values go last."""
    finite = xp.isfinite(x)
    n_valid = xp.sum(xp.astype(finite, xp.int64), axis=-1)
    filled = xp.where(finite, x, xp.asarray(math.inf, dtype=x.dtype))
    return SortedSample(xp.sort(filled, axis=-1, stable=False), n_valid)  # ties are equal values


def std(xp: Any, s: SortedSample) -> Any:
    """Population standard deviation (ddof=0) of the finite values of each column."""
    values, n = s
    valid = _valid_mask(xp, values, n)
    zero = xp.asarray(0.0, dtype=values.dtype)
    nf = xp.astype(xp.maximum(n, xp.ones_like(n)), values.dtype)
    mean = xp.sum(xp.where(valid, values, zero), axis=-1) / nf
    dev = xp.where(valid, values - mean[:, None], zero)
    return xp.sqrt(xp.sum(dev * dev, axis=-1) / nf)


def _valid_mask(xp: Any, values: Any, n_valid: Any) -> Any:
    idx = xp.arange(values.shape[-1], dtype=xp.int64)
    return idx[None, :] < n_valid[:, None]


def quantile_edges(xp: Any, s: SortedSample, probs: Any) -> Any:
    """Quantiles of each column at ``probs`` with NumPy's default "linear" method.

    Reproduces ``numpy.quantile(col, probs)`` bit for bit (same virtual index and the
    same two-sided interpolation), so bin edges, and hence bin counts, agree exactly.
    Returns ``(C, len(probs))``; rows of columns without finite values are garbage and
    must be masked by the caller.
    """
    values, n = s
    last = xp.maximum(n - 1, xp.zeros_like(n))
    virtual = xp.astype(last, values.dtype)[:, None] * probs[None, :]
    prev = xp.floor(virtual)
    gamma = virtual - prev
    prev_i = xp.astype(prev, xp.int64)
    next_i = xp.minimum(prev_i + 1, last[:, None])
    a = xp.take_along_axis(values, prev_i, axis=-1)
    b = xp.take_along_axis(values, next_i, axis=-1)
    diff = b - a
    low = a + diff * gamma
    high = b - diff * (1.0 - gamma)
    return xp.where(gamma >= 0.5, high, low)


def searchsorted_batched(xp: Any, s: SortedSample, v: Any, *, side: str = "left") -> Any:
    """Row-wise ``searchsorted``: for every column c, positions of ``v[c]`` in ``s[c]``.

    A vectorised binary search over the finite part of each row; ``v`` has shape
    ``(C, m)``. Meant for few needles per column (bin edges), where it costs
    ``O(C m log n)``.
    """
    values, n = s
    lo = xp.zeros(v.shape, dtype=xp.int64)
    hi = xp.broadcast_to(n[:, None], v.shape)
    hi = xp.astype(hi, xp.int64)
    last = max(int(values.shape[-1]) - 1, 0)
    for _ in range(max(int(values.shape[-1]), 1).bit_length() + 1):
        mid = (lo + hi) // 2
        probe = xp.take_along_axis(values, xp.clip(mid, 0, last), axis=-1)
        go_right = (probe < v) if side == "left" else (probe <= v)
        active = lo < hi
        lo = xp.where(active & go_right, mid + 1, lo)
        hi = xp.where(active & ~go_right, mid, hi)
    return lo


def bin_counts(xp: Any, s: SortedSample, edges: Any) -> Any:
    """Counts per bin, bin k holding ``edges[k-1] <= x < edges[k]``; shape ``(C, B)``.

    This is ``bincount(searchsorted(edges, x, side="right"))`` computed from the
    sorted sample: the number of values below each edge, differenced. Duplicate
    edges only create bins that are empty on both sides, which leaves every
    divergence unchanged, so edges need not be made unique.
    """
    below = searchsorted_batched(xp, s, edges, side="left")
    zeros = xp.zeros((below.shape[0], 1), dtype=xp.int64)
    cum = xp.concat([zeros, below, xp.astype(s.n_valid, xp.int64)[:, None]], axis=-1)
    return cum[:, 1:] - cum[:, :-1]


def divergences(xp: Any, p_counts: Any, q_counts: Any, *, eps: float = 1e-4) -> dict[str, Any]:
    """PSI, Jensen-Shannon distance, Hellinger distance and L-inf between binned samples.

    ``p_counts`` (reference) and ``q_counts`` (current) are ``(C, B)`` counts on the same
    bins. PSI floors proportions at ``eps``; Jensen-Shannon is the distance (square
    root of the divergence, natural log) as in ``scipy.spatial.distance.jensenshannon``.
    """
    pc = xp.astype(p_counts, xp.float64)
    qc = xp.astype(q_counts, xp.float64)
    one = xp.asarray(1.0, dtype=xp.float64)
    p = pc / xp.maximum(xp.sum(pc, axis=-1, keepdims=True), one)
    q = qc / xp.maximum(xp.sum(qc, axis=-1, keepdims=True), one)
    floor = xp.asarray(eps, dtype=xp.float64)
    pf, qf = xp.maximum(p, floor), xp.maximum(q, floor)
    psi = xp.sum((qf - pf) * xp.log(qf / pf), axis=-1)
    m = (p + q) / 2.0
    safe_m = xp.where(m > 0, m, one)
    zero = xp.asarray(0.0, dtype=xp.float64)
    left = xp.where(p > 0, p * xp.log(xp.where(p > 0, p, one) / safe_m), zero)
    right = xp.where(q > 0, q * xp.log(xp.where(q > 0, q, one) / safe_m), zero)
    js = xp.sqrt(xp.maximum((xp.sum(left, axis=-1) + xp.sum(right, axis=-1)) / 2.0, zero))
    bc = xp.sum(xp.sqrt(p * q), axis=-1)
    hellinger = xp.sqrt(xp.maximum(1.0 - bc, zero))
    linf = xp.max(xp.abs(p - q), axis=-1)
    return {"psi": psi, "js": js, "hellinger": hellinger, "linf": linf}


def ks_wasserstein(xp: Any, ref: SortedSample, cur: SortedSample) -> tuple[Any, Any]:
    """Two-sample Kolmogorov-Smirnov statistic and Wasserstein-1 distance per column.

    Both come from one merge of the two sorted samples: a stable argsort of their
    concatenation (two sorted runs, so a merge) labels every pooled value with its
    side; running counts give both empirical CDFs at every pooled value. The KS
    statistic is the largest CDF gap at the end of each group of tied values (what
    ``scipy.stats.ks_2samp`` evaluates); Wasserstein-1 integrates the gap between
    consecutive pooled values (``scipy.stats.wasserstein_distance``).
    """
    rv, nr = ref
    cv, nc = cur
    n_pad_ref = rv.shape[-1]
    # Names are dropped as soon as they are used: this runs on blocks of columns whose
    # size is set by the memory these temporaries take.
    pooled = xp.concat([rv, cv], axis=-1)
    order = xp.argsort(pooled, axis=-1, stable=True)
    z = xp.take_along_axis(pooled, order, axis=-1)
    del pooled
    cum_ref = xp.cumulative_sum(xp.astype(order < n_pad_ref, xp.int64), axis=-1)
    del order
    k1 = xp.arange(1, z.shape[-1] + 1, dtype=xp.int64)[None, :]
    one = xp.ones_like(nr)
    nrf = xp.astype(xp.maximum(nr, one), xp.float64)[:, None]
    ncf = xp.astype(xp.maximum(nc, one), xp.float64)[:, None]
    ref_cdf = xp.astype(cum_ref, xp.float64) / nrf
    cum_ref = xp.astype(k1 - cum_ref, xp.float64)  # now the current side's running count
    gap = xp.abs(ref_cdf - cum_ref / ncf)
    del ref_cdf, cum_ref
    zero = xp.asarray(0.0, dtype=xp.float64)
    if bool(xp.all(nr == rv.shape[-1])) and bool(xp.all(nc == cv.shape[-1])):
        # No padding (every value finite): half the passes over the pooled sample.
        step = z[:, 1:] - z[:, :-1]
        head = gap[:, :-1]
        ks = xp.maximum(xp.max(xp.where(step != 0, head, zero), axis=-1), gap[:, -1])
        return ks, xp.sum(head * step, axis=-1)
    m = (nr + nc)[:, None]
    inf_col = xp.full((z.shape[0], 1), math.inf, dtype=z.dtype)
    z_next = xp.concat([z[:, 1:], inf_col], axis=-1)
    valid = k1 <= m
    ks = xp.max(xp.where(valid & (z != z_next), gap, zero), axis=-1)
    # Padding is +inf; keep it out of the subtraction (inf - inf is NaN).
    inner = k1 < m
    z = xp.where(valid, z, zero)
    z_next = xp.where(inner, z_next, z)
    wasserstein = xp.sum(xp.where(inner, gap * (z_next - z), zero), axis=-1)
    return ks, wasserstein


def category_counts(xp: Any, codes: Any, n_categories: Any) -> Any:
    """Counts of integer category codes for many columns at once.

    ``codes`` is ``(C, n)`` with -1 for null; column c uses codes ``0..n_categories[c]-1``.
    Codes are shifted into one global range and counted in one go: ``bincount`` where
    the namespace has it (NumPy, CuPy), else a sort and ``searchsorted`` (the array
    API standard has no bincount). Returns ``(C, K_max)`` counts, zero-padded.
    """
    n_cols = codes.shape[0]
    k_max = max(int(xp.max(n_categories)) if n_cols else 0, 1)
    offsets = xp.arange(n_cols, dtype=xp.int64)[:, None] * k_max
    c64 = xp.astype(codes, xp.int64)
    flat = xp.reshape(xp.where(c64 >= 0, c64 + offsets, xp.asarray(-1, dtype=xp.int64)), (-1,))
    if hasattr(xp, "bincount"):  # NumPy and CuPy: one pass instead of a sort
        counts = xp.bincount(flat[flat >= 0], minlength=n_cols * k_max)
    else:
        flat = xp.sort(flat, stable=False)
        bounds = xp.arange(n_cols * k_max + 1, dtype=xp.int64)
        pos = xp.searchsorted(flat, bounds, side="left")
        counts = pos[1:] - pos[:-1]
    return xp.reshape(counts, (n_cols, k_max))


def chi2_statistic(xp: Any, ref_counts: Any, cur_counts: Any) -> tuple[Any, Any]:
    """Pearson chi-square of the 2 x K table [ref_counts; cur_counts] per column.

    Categories empty on both sides are left out (as if not in the table). Returns the
    statistic and the degrees of freedom ``K_present - 1`` (no continuity correction,
    as ``scipy.stats.chi2_contingency(..., correction=False)``).
    """
    r = xp.astype(ref_counts, xp.float64)
    c = xp.astype(cur_counts, xp.float64)
    col = r + c
    present = col > 0
    n_r = xp.sum(r, axis=-1, keepdims=True)
    n_c = xp.sum(c, axis=-1, keepdims=True)
    total = n_r + n_c
    one = xp.asarray(1.0, dtype=xp.float64)
    safe_total = xp.where(total > 0, total, one)
    e_r = n_r * col / safe_total
    e_c = n_c * col / safe_total
    zero = xp.asarray(0.0, dtype=xp.float64)
    # a side with no rows has zero expected counts: it contributes nothing (and p is NaN)
    ok_r, ok_c = present & (e_r > 0), present & (e_c > 0)
    term = xp.where(ok_r, (r - e_r) ** 2 / xp.where(ok_r, e_r, one), zero)
    term = term + xp.where(ok_c, (c - e_c) ** 2 / xp.where(ok_c, e_c, one), zero)
    dof = xp.sum(xp.astype(present, xp.int64), axis=-1) - 1
    return xp.sum(term, axis=-1), dof


def auc(xp: Any, scores: Any, labels: Any) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count 1/2).

    The Mann-Whitney form: for every positive, the negatives scored below it plus half
    those tied, found by ``searchsorted`` in the sorted negative scores.
    """
    pos = scores[labels == 1]
    neg = xp.sort(scores[labels == 0])
    n_pos, n_neg = int(pos.shape[0]), int(neg.shape[0])
    if n_pos == 0 or n_neg == 0:
        return math.nan
    left = xp.searchsorted(neg, pos, side="left")
    right = xp.searchsorted(neg, pos, side="right")
    wins = xp.sum(xp.astype(left, xp.float64)) + 0.5 * xp.sum(xp.astype(right - left, xp.float64))
    return float(wins) / (n_pos * n_neg)

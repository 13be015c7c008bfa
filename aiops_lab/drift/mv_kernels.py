"""Multivariate drift kernels: blocked pairwise work on the array API.

Arrays in, arrays out; ``xp`` is passed by the caller (NumPy, CuPy, array_api_strict).
Nothing here imports polars, altair or scikit-learn. Samples are ``(n, d)`` matrices,
one row per point.

Everything that needs all pairs of points (the median heuristic, the MMD statistic
and its permutations, nearest-neighbour distances) walks the pooled sample in row
blocks, so the ``n x n`` kernel matrix is never held: one block of rows against the
rest, sized by :func:`block_rows`. Only the upper triangle of a symmetric matrix is
computed.

The MMD permutation test rests on one identity. Write a split of the pooled sample
into ``m`` "reference" and ``n`` "current" points as the weight vector
``w_i = 1/m`` (reference) or ``-1/n`` (current), let ``K0`` be the Gaussian kernel
matrix with its diagonal set to zero, ``r = K0 @ 1`` its row sums and ``T = sum(r)``.
Then the unbiased MMD^2 of that split is ::

    MMD2_u = Q + S_xx / (m^2 (m-1)) + S_yy / (n^2 (n-1))
    Q    = w' K0 w
    S_xx = (Q + 2 u / n + T / n^2) / s^2      (sum of k over reference pairs)
    S_yy = (Q - 2 u / m + T / m^2) / s^2      (sum of k over current pairs)
    u = w' r,   s = 1/m + 1/n

so every permutation costs one column of ``K0 @ W`` (a matrix product with all the
permuted weight vectors at once) and a dot product with ``r``. ``Q`` is computed
directly rather than as a difference of large sums, which keeps float32 accurate.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = [
    "MMDStats",
    "block_rows",
    "centroid_cosine_distance",
    "median_distance",
    "mmd_from_stats",
    "mmd_stats",
    "nearest_sq_distance",
    "pairwise_sq_distances",
    "permutation_weights",
]

#: bytes one block of the kernel matrix may take (a few temporaries live at once)
DEFAULT_BLOCK_BYTES = 64 * 2**20


def block_rows(n_rows: int, n_cols: int, itemsize: int, budget: int = DEFAULT_BLOCK_BYTES) -> int:
    """Rows per block so that a ``(rows, n_cols)`` array of ``itemsize`` fits ``budget``."""
    return max(1, min(n_rows, budget // max(1, n_cols * itemsize)))


def pairwise_sq_distances(
    xp: Any, a: Any, b: Any, a2: Any | None = None, b2: Any | None = None
) -> Any:
    """Squared Euclidean distances between the rows of ``a`` and of ``b`` (clipped at 0)."""
    if a2 is None:
        a2 = xp.sum(a * a, axis=1)
    if b2 is None:
        b2 = xp.sum(b * b, axis=1)
    d = a2[:, None] + b2[None, :] - 2.0 * (a @ b.T)
    return xp.maximum(d, xp.zeros((), dtype=d.dtype))


def _upper_blocks(n: int, rows: int) -> list[tuple[int, int]]:
    return [(i, min(n, i + rows)) for i in range(0, n, rows)]


def median_distance(xp: Any, z: Any, *, block_bytes: int = DEFAULT_BLOCK_BYTES) -> float:
    """Median of the Euclidean distances over all pairs ``i < j`` of the rows of ``z``.

    The ``n (n - 1) / 2`` distances are gathered (as float32 where that halves the
    memory; the median is then exact to float32 rounding) and the middle one or two
    are selected. With an even number of pairs it is the mean of the two middle ones,
    as ``numpy.median`` does.
    """
    n = z.shape[0]
    if n < 2:
        msg = "the median heuristic needs at least two points"
        raise ValueError(msg)
    z2 = xp.sum(z * z, axis=1)
    rows = block_rows(n, n, 8, block_bytes)
    keep = xp.float32 if z.dtype == xp.float64 else z.dtype
    values = xp.empty(n * (n - 1) // 2, dtype=keep)
    pos = 0
    for i0, i1 in _upper_blocks(n, rows):
        d = pairwise_sq_distances(xp, z[i0:i1, :], z[i0:, :], z2[i0:i1], z2[i0:])
        b = i1 - i0
        # the square on the diagonal: only its strict upper triangle
        cols = xp.arange(b)[None, :]
        here = xp.arange(b)[:, None]
        tri = xp.astype(d[:, :b][cols > here], keep)
        values[pos : pos + tri.shape[0]] = tri
        pos += tri.shape[0]
        if i1 < n:  # everything right of the square is above the diagonal
            rest = xp.reshape(xp.astype(d[:, b:], keep), (-1,))
            values[pos : pos + rest.shape[0]] = rest
            pos += rest.shape[0]
    lo, hi = _middle(xp, values)
    return (math.sqrt(lo) + math.sqrt(hi)) / 2.0


def _middle(xp: Any, values: Any) -> tuple[float, float]:
    """The middle one or two values of a 1-D array (equal when its length is odd).

    A partial sort where the library has one (NumPy, CuPy), a full sort otherwise.
    """
    import array_api_compat

    k = values.shape[0]
    mid = [(k - 1) // 2, k // 2]
    if array_api_compat.is_numpy_array(values):
        import numpy as lib
    elif array_api_compat.is_cupy_array(values):
        import cupy as lib
    else:
        lib = None
    if lib is not None:
        part = lib.partition(values, mid)
        lo, hi = float(part[mid[0]]), float(part[mid[1]])
    else:
        s = xp.sort(values)
        lo, hi = float(s[mid[0]]), float(s[mid[1]])
    return lo, hi


def permutation_weights(
    xp: Any, n_ref: int, n_cur: int, permutations: int, seed: int, dtype: Any
) -> Any:
    """``(n_ref + n_cur, permutations + 1)`` weights: column 0 is the observed split.

    The permutations are drawn on the host with NumPy's generator, so a seed gives
    the same permutations, and the same p-value, on every backend.
    """
    import numpy as np

    from aiops_lab.backend import from_numpy

    n = n_ref + n_cur
    is_ref = np.zeros((permutations + 1, n), dtype=bool)
    is_ref[:, :n_ref] = True
    if permutations:
        rng = np.random.default_rng(seed)
        is_ref[1:] = rng.permuted(is_ref[1:], axis=1)
    host = np.where(is_ref.T, 1.0 / n_ref, -1.0 / n_cur)
    return xp.asarray(from_numpy(np.ascontiguousarray(host), xp), dtype=dtype)


class MMDStats(NamedTuple):
    """What the blocked pass returns: per permutation ``Q`` and ``u``, and ``T``."""

    q: Any  # (P + 1,) float64: w' K0 w
    u: Any  # (P + 1,) float64: w' r
    total: float  # T = sum of the off-diagonal kernel values


def mmd_stats(
    xp: Any,
    z: Any,
    weights: Any,
    gamma: float,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: Any = None,
) -> MMDStats:
    """One blocked pass over the Gaussian kernel matrix ``exp(-gamma ||zi - zj||^2)``.

    ``z`` is the pooled sample ``(N, d)``; ``weights`` is ``(N, P + 1)`` (see
    :func:`permutation_weights`). Each row block is compared with itself and every
    later row (the upper triangle), in the working dtype of ``z``; the per-block
    sums are accumulated in float64.
    """
    n = z.shape[0]
    z2 = xp.sum(z * z, axis=1)
    rows = block_rows(n, n, 4 * _itemsize(xp, z.dtype), block_bytes)
    acc = xp.float64
    q = xp.zeros(weights.shape[1], dtype=acc)
    r = xp.zeros(n, dtype=acc)
    row_sums = []
    col_sums = xp.zeros(n, dtype=acc)  # contributions of the off-diagonal blocks, by column
    blocks = _upper_blocks(n, rows)
    if progress is not None:
        blocks = progress(blocks)
    neg_gamma = -float(gamma)
    for i0, i1 in blocks:
        d = pairwise_sq_distances(xp, z[i0:i1, :], z[i0:, :], z2[i0:i1], z2[i0:])
        k = xp.exp(d * neg_gamma)
        b = i1 - i0
        # the diagonal of the diagonal block is k(x, x) = 1 exactly: leave it out
        diag = xp.eye(b, dtype=xp.bool)
        kd = xp.where(diag, xp.zeros((), dtype=k.dtype), k[:, :b])
        wi = weights[i0:i1, :]
        q_blk = xp.sum(wi * (kd @ wi), axis=0)
        rows_blk = xp.sum(kd, axis=1)
        if i1 < n:
            ko = k[:, b:]
            q_blk = q_blk + 2.0 * xp.sum(wi * (ko @ weights[i1:, :]), axis=0)
            rows_blk = rows_blk + xp.sum(ko, axis=1)
            tail = xp.astype(xp.sum(ko, axis=0), acc)
            col_sums = xp.concat([col_sums[:i1], col_sums[i1:] + tail])
        q = q + xp.astype(q_blk, acc)
        row_sums.append(xp.astype(rows_blk, acc))
    r = xp.concat(row_sums) + col_sums
    u = xp.sum(xp.astype(weights, acc) * r[:, None], axis=0)
    return MMDStats(q, u, float(xp.sum(r)))


def mmd_from_stats(xp: Any, stats: MMDStats, n_ref: int, n_cur: int) -> Any:
    """Unbiased MMD^2 for every split described by ``stats`` (see the module docstring)."""
    m, n = float(n_ref), float(n_cur)
    s2 = (1.0 / m + 1.0 / n) ** 2
    s_xx = (stats.q + 2.0 * stats.u / n + stats.total / n**2) / s2
    s_yy = (stats.q - 2.0 * stats.u / m + stats.total / m**2) / s2
    return stats.q + s_xx / (m * m * (m - 1.0)) + s_yy / (n * n * (n - 1.0))


def nearest_sq_distance(
    xp: Any,
    queries: Any,
    points: Any,
    *,
    exclude_self: bool = False,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Any:
    """Squared distance from each row of ``queries`` to its nearest row of ``points``.

    With ``exclude_self`` (``queries`` is ``points``), a point is not its own neighbour:
    the leave-one-out distance used to calibrate "far from any reference point".
    """
    nq = queries.shape[0]
    p2 = xp.sum(points * points, axis=1)
    q2 = xp.sum(queries * queries, axis=1)
    rows = block_rows(nq, points.shape[0], 2 * _itemsize(xp, points.dtype), block_bytes)
    out = []
    inf = xp.asarray(math.inf, dtype=points.dtype)
    for i0, i1 in _upper_blocks(nq, rows):
        d = pairwise_sq_distances(xp, queries[i0:i1, :], points, q2[i0:i1], p2)
        if exclude_self:
            cols = xp.arange(points.shape[0])[None, :]
            here = xp.arange(i0, i1)[:, None]
            d = xp.where(cols == here, inf, d)
        out.append(xp.min(d, axis=1))
    return xp.concat(out) if len(out) > 1 else out[0]


def centroid_cosine_distance(xp: Any, a: Any, b: Any) -> float:
    """``1 - cos`` of the angle between the mean rows of ``a`` and ``b``."""
    ca = xp.mean(a, axis=0)
    cb = xp.mean(b, axis=0)
    denom = float(xp.sqrt(xp.sum(ca * ca) * xp.sum(cb * cb)))
    if denom == 0.0:
        return math.nan
    return 1.0 - float(xp.sum(ca * cb)) / denom


def _itemsize(xp: Any, dtype: Any) -> int:
    return 4 if dtype == xp.float32 else 8

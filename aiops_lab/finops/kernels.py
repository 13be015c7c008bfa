"""FinOps kernels, written once against the array API standard.

Arrays in, arrays out, ``xp`` passed down; no polars here. Series are rows of 2-D
arrays ``(n_series, n_days)``.

Budget risk is simulated with Gaussian sample paths whose daily marginals match the
chosen model's prediction intervals. The path errors are built as a moving sum of
independent shocks, ``e_h = sum_{j<h} psi_j * z_{h-j}``, with the weights taken from the
growth of the interval widths: ``psi_0 = sigma_1`` and ``psi_j**2 = sigma_{j+1}**2 -
sigma_j**2``. So a model whose intervals widen (shocks that persist: trend, level,
seasonal-naive after one season) gives correlated days, and one whose intervals stay
flat gives independent days - the spread of the period total then follows the model
rather than assuming either extreme.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "DEFAULT_MAX_BYTES",
    "breach_simulation",
    "chunk_rows",
    "grouped_percentiles",
    "interval_coverage",
    "mase",
    "shock_weights",
    "simulate_breach",
    "standard_normal",
]

#: working memory one :func:`simulate_breach` chunk may use (bytes)
DEFAULT_MAX_BYTES = 256 * 2**20
# float arrays of shape (chunk, P, H) alive at once inside breach_simulation: the draws,
# the errors, the clipped days, the cumulative sums and the crossing mask (with slack)
_WORKING_COPIES = 5


def mase(xp: Any, actual: Any, forecast: Any, scale: Any) -> Any:
    """Mean absolute scaled error per row: ``mean(|actual - forecast|) / scale``.

    ``actual`` and ``forecast`` are ``(n_series, n_points)``; NaN points are left out.
    ``scale`` (``(n_series,)``) is the in-sample mean absolute error of the seasonal-naive
    forecast; a zero scale gives NaN.
    """
    err = xp.abs(actual - forecast)
    ok = xp.isfinite(err)
    total = xp.sum(xp.where(ok, err, xp.zeros_like(err)), axis=1)
    count = xp.sum(xp.astype(ok, err.dtype), axis=1)
    mae = total / xp.where(count > 0, count, xp.ones_like(count))
    nan = xp.full_like(mae, math.nan)
    mae = xp.where(count > 0, mae, nan)
    return xp.where(scale > 0, mae / xp.where(scale > 0, scale, xp.ones_like(scale)), nan)


def interval_coverage(xp: Any, actual: Any, lo: Any, hi: Any) -> Any:
    """Share of finite points per row with ``lo <= actual <= hi`` (NaN for none)."""
    ok = xp.isfinite(actual) & xp.isfinite(lo) & xp.isfinite(hi)
    inside = ok & (actual >= lo) & (actual <= hi)
    count = xp.sum(xp.astype(ok, actual.dtype), axis=1)
    hits = xp.sum(xp.astype(inside, actual.dtype), axis=1)
    share = hits / xp.where(count > 0, count, xp.ones_like(count))
    return xp.where(count > 0, share, xp.full_like(share, math.nan))


def shock_weights(xp: Any, sigma: Any) -> Any:
    """Moving-sum weights ``psi`` (see the module docs) from daily sigmas ``(n_series, H)``."""
    var = sigma * sigma
    prev = xp.concat([xp.zeros_like(var[:, :1]), var[:, :-1]], axis=1)
    return xp.sqrt(xp.clip(var - prev, min=0.0))


def standard_normal(xp: Any, shape: tuple[int, ...], seed: int | None) -> Any:
    """Standard normal draws made on the namespace's own device (CuPy draws on the GPU)."""
    import array_api_compat
    import numpy as np

    if array_api_compat.is_cupy_namespace(xp):
        import cupy

        return cupy.random.default_rng(seed).standard_normal(shape)
    draws = np.random.default_rng(seed).standard_normal(shape)
    if array_api_compat.is_numpy_namespace(xp):
        return draws
    return xp.asarray(draws)


def breach_simulation(
    xp: Any,
    mean: Any,
    sigma: Any,
    spent: Any,
    budget: Any,
    z: Any,
    *,
    clip_negative: bool = True,
) -> tuple[Any, Any, Any]:
    """P(period spend > budget), the median breach day and the simulated period totals.

    Parameters
    ----------
    mean, sigma
        ``(S, H)`` daily forecast mean and standard deviation for the rest of the period.
    spent, budget
        ``(S,)`` spend so far in the period and the budget.
    z
        ``(S, P, H)`` standard normal draws (``P`` paths per series).
    clip_negative
        Treat simulated negative days as zero spend (a cost cannot go below zero).

    Returns
    -------
    p_breach : (S,)
        Share of paths whose period total exceeds the budget.
    breach_day : (S,)
        Median over the breaching paths of the first day (0-based, into ``H``) on which
        cumulative spend passes the budget; NaN where no path breaches (or -1 where the
        budget is already spent).
    totals : (S, P)
        The simulated period totals.
    """
    psi = shock_weights(xp, sigma)
    n_days = mean.shape[1]
    # e[s, p, h] = sum_{k<=h} psi[s, h-k] z[s, p, k]: z times an upper-triangular Toeplitz
    # matrix U[s, k, h] = psi[s, h-k], built contiguous so the batched product stays on BLAS
    idx = xp.arange(n_days)
    lag = idx[None, :] - idx[:, None]
    lag_c = xp.clip(lag, min=0)
    upper = xp.take(psi, xp.reshape(lag_c, (-1,)), axis=1)
    upper = xp.reshape(upper, (psi.shape[0], n_days, n_days))
    upper = xp.where(lag[None, :, :] >= 0, upper, xp.zeros_like(upper))
    err = xp.matmul(z, upper)
    daily = mean[:, None, :] + err
    if clip_negative:
        daily = xp.clip(daily, min=0.0)
    cum = spent[:, None, None] + xp.cumulative_sum(daily, axis=2)
    # a copy, not a view: a view would keep the whole (S, P, H) cumulative array alive
    totals = xp.asarray(cum[:, :, -1], copy=True)
    over = totals > budget[:, None]
    p_breach = xp.mean(xp.astype(over, mean.dtype), axis=1)
    crossed = cum > budget[:, None, None]
    # first crossing: the number of days not yet crossed (cumulative spend is monotone
    # when days are clipped at zero; otherwise this counts days under the budget)
    first = xp.sum(xp.astype(~crossed, xp.int64), axis=2)
    first = xp.where(over, first, xp.full_like(first, n_days + 1))
    ordered = xp.sort(first, axis=1)
    n_over = xp.sum(xp.astype(over, xp.int64), axis=1)
    mid = xp.clip((n_over - 1) // 2, min=0)
    mid2 = xp.clip(n_over // 2, min=0)
    a = xp.take_along_axis(ordered, mid[:, None], axis=1)[:, 0]
    b = xp.take_along_axis(ordered, mid2[:, None], axis=1)[:, 0]
    median = (xp.astype(a, mean.dtype) + xp.astype(b, mean.dtype)) / 2.0
    median = xp.where(n_over > 0, median, xp.full_like(median, math.nan))
    already = spent > budget
    median = xp.where(already, xp.full_like(median, -1.0), median)
    return p_breach, median, totals


def chunk_rows(n_series: int, n_paths: int, n_days: int, max_bytes: int, itemsize: int = 8) -> int:
    """How many series one simulation chunk holds so its working arrays stay under ``max_bytes``.

    At least one series per chunk, whatever the limit (one series needs about
    ``5 * n_paths * n_days * itemsize`` bytes).
    """
    per_series = _WORKING_COPIES * max(n_paths, 1) * max(n_days, 1) * itemsize
    return max(1, min(max(n_series, 1), int(max_bytes) // per_series))


def simulate_breach(
    xp: Any,
    mean: Any,
    sigma: Any,
    spent: Any,
    budget: Any,
    *,
    n_paths: int,
    seed: int | None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    chunk: int | None = None,
    clip_negative: bool = True,
    device_draws: bool = False,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> tuple[Any, Any, Any]:
    """:func:`breach_simulation` over series chunks, drawing the paths chunk by chunk.

    Memory stays bounded by the chunk (``chunk x n_paths x H`` per working array) rather
    than growing with ``S x P x H``. The draws come from one NumPy generator seeded with
    ``seed`` and consumed in series order, so the result is the same for every chunk size
    (and the same as ``breach_simulation`` fed ``standard_normal(np, (S, P, H), seed)``),
    on every backend: chunks are drawn on the host and moved to the device.
    ``device_draws=True`` draws on the GPU instead when ``xp`` is CuPy (faster; the paths
    then depend on the chunk size as well as the seed).

    Parameters
    ----------
    mean, sigma
        ``(S, H)`` daily forecast mean and standard deviation.
    spent, budget
        ``(S,)``.
    n_paths, seed
        Sample paths per series and the generator's seed.
    max_bytes
        Working-memory limit per chunk (see :func:`chunk_rows`); None: one chunk.
    chunk
        Series per chunk (overrides ``max_bytes``).
    progress
        Wraps the iterable of chunk starts (e.g. a progress bar).

    Returns
    -------
    The same ``(p_breach, breach_day, totals)`` as :func:`breach_simulation`.
    """
    import array_api_compat
    import numpy as np

    n_series, n_days = int(mean.shape[0]), int(mean.shape[1])
    if chunk is not None:
        if int(chunk) < 1:
            raise ValueError(f"chunk must be a positive number of series, got {chunk!r}")
        rows = int(chunk)
    elif max_bytes is None:
        rows = max(n_series, 1)
    else:
        rows = chunk_rows(n_series, n_paths, n_days, max_bytes)
    on_gpu = device_draws and array_api_compat.is_cupy_namespace(xp)
    if on_gpu:
        import cupy

        gen: Any = cupy.random.default_rng(seed)
    else:
        gen = np.random.default_rng(seed)
    starts: Iterable[int] = range(0, n_series, rows)
    if progress is not None:
        starts = progress(starts)
    parts: list[tuple[Any, Any, Any]] = []
    for start in starts:
        stop = min(n_series, start + rows)
        z = gen.standard_normal((stop - start, n_paths, n_days))
        if not on_gpu and not array_api_compat.is_numpy_namespace(xp):
            z = xp.asarray(z)
        parts.append(breach_simulation(xp, mean[start:stop, ...], sigma[start:stop, ...],
                                       spent[start:stop], budget[start:stop], z,
                                       clip_negative=clip_negative))  # fmt: skip
        del z
    if len(parts) == 1:
        return parts[0]
    if not parts:
        empty = xp.zeros((0,), dtype=mean.dtype)
        return empty, empty, xp.zeros((0, n_paths), dtype=mean.dtype)
    return (
        xp.concat([p[0] for p in parts]),
        xp.concat([p[1] for p in parts]),
        xp.concat([p[2] for p in parts], axis=0),
    )


def grouped_percentiles(xp: Any, group: Any, values: Any, n_groups: int, q: Any) -> Any:
    """Percentiles of ``values`` within each group, as ``numpy.percentile``'s default method.

    The default ("linear", Hyndman & Fan type 7) takes, in the group's sorted values
    ``v_0 <= ... <= v_{n-1}``, the point ``h = (n - 1) q / 100`` and returns
    ``v_floor(h) + (h - floor(h)) (v_floor(h)+1 - v_floor(h))``.

    Parameters
    ----------
    group
        ``(N,)`` integer group ids in ``[0, n_groups)``.
    values
        ``(N,)`` finite values.
    q
        ``(K,)`` percentiles in ``[0, 100]``.

    Returns
    -------
    ``(n_groups, K)``; NaN for groups with no values.
    """
    order = xp.argsort(values, stable=True)
    g1 = xp.take(group, order)
    order2 = xp.argsort(g1, stable=True)
    gs = xp.take(g1, order2)
    vs = xp.take(xp.take(values, order), order2)
    ids = xp.arange(n_groups, dtype=gs.dtype)
    first = xp.searchsorted(gs, ids, side="left")
    last = xp.searchsorted(gs, ids, side="right")
    count = xp.astype(last - first, values.dtype)
    qq = xp.asarray(q, dtype=values.dtype) / 100.0
    h = (count[:, None] - 1.0) * qq[None, :]
    h = xp.clip(h, min=0.0)
    lo = xp.floor(h)
    frac = h - lo
    n_vals = int(vs.shape[0])
    if n_vals == 0:
        return xp.full((n_groups, int(qq.shape[0])), math.nan, dtype=values.dtype)
    base = xp.astype(first, xp.int64)[:, None]
    i_lo = base + xp.astype(lo, xp.int64)
    i_hi = xp.where(frac > 0, i_lo + 1, i_lo)
    i_lo = xp.clip(i_lo, max=n_vals - 1)
    i_hi = xp.clip(i_hi, max=n_vals - 1)
    v_lo = xp.reshape(xp.take(vs, xp.reshape(i_lo, (-1,))), i_lo.shape)
    v_hi = xp.reshape(xp.take(vs, xp.reshape(i_hi, (-1,))), i_hi.shape)
    diff = v_hi - v_lo
    # numpy's lerp: from the nearer end, so that frac = 1 gives v_hi exactly
    out = xp.where(frac >= 0.5, v_hi - diff * (1.0 - frac), v_lo + diff * frac)
    return xp.where(count[:, None] > 0, out, xp.full_like(out, math.nan))

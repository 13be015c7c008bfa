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
from typing import Any

__all__ = [
    "breach_simulation",
    "interval_coverage",
    "mase",
    "shock_weights",
    "standard_normal",
]


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
    # e[s, p, h] = sum_{k<=h} psi[s, h-k] z[s, p, k]: a lower-triangular Toeplitz product
    idx = xp.arange(n_days)
    lag = idx[:, None] - idx[None, :]
    lag_c = xp.clip(lag, min=0)
    toeplitz = xp.take(psi, xp.reshape(lag_c, (-1,)), axis=1)
    toeplitz = xp.reshape(toeplitz, (psi.shape[0], n_days, n_days))
    toeplitz = xp.where(lag[None, :, :] >= 0, toeplitz, xp.zeros_like(toeplitz))
    err = xp.matmul(z, xp.permute_dims(toeplitz, (0, 2, 1)))
    daily = mean[:, None, :] + err
    if clip_negative:
        daily = xp.clip(daily, min=0.0)
    cum = spent[:, None, None] + xp.cumulative_sum(daily, axis=2)
    totals = cum[:, :, -1]
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

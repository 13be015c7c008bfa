"""GPU telemetry accounting kernels, written once against the array API standard.

Arrays in, arrays out, ``xp`` passed down; no polars here, so these run on a GPU
machine that has only NumPy / CuPy. Samples arrive sorted by ``(group, time)``, where a
group is one GPU (or MIG instance) given as a dense integer code ``0..G-1``, and times
are integer microseconds.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "group_bounds",
    "grouped_quantiles",
    "idle_runs",
    "sample_weights",
    "segment_quantile",
    "segment_quantiles",
    "segment_sum",
]


def group_bounds(xp: Any, group: Any, n_groups: int) -> tuple[Any, Any]:
    """Start and end (exclusive) row of every group in ``group`` (sorted codes)."""
    codes = xp.arange(n_groups, dtype=group.dtype)
    return xp.searchsorted(group, codes, side="left"), xp.searchsorted(group, codes, side="right")


def segment_sum(xp: Any, values: Any, starts: Any, ends: Any) -> Any:
    """Sum of ``values`` over each contiguous segment ``[starts, ends)``."""
    zero = xp.zeros((1,), dtype=values.dtype)
    cum = xp.concat([zero, xp.cumulative_sum(values)])
    return xp.take(cum, ends) - xp.take(cum, starts)


def _group_order(xp: Any, group: Any, values: Any) -> Any:
    """Row order sorting by (group, value), exactly: two stable sorts (a lexsort)."""
    by_value = xp.argsort(values, stable=True)
    by_group = xp.argsort(xp.take(group, by_value), stable=True)
    return xp.take(by_value, by_group)


def segment_quantile(xp: Any, group: Any, values: Any, n_groups: int, q: float) -> Any:
    """The ``q`` quantile of ``values`` within each group (NumPy's linear method).

    ``group`` holds dense codes ``0..n_groups-1`` (any order). Non-finite values are
    left out; groups without values give NaN.
    """
    return segment_quantiles(xp, group, values, n_groups, (q,))[0]


def segment_quantiles(
    xp: Any, group: Any, values: Any, n_groups: int, qs: tuple[float, ...]
) -> list[Any]:
    """Several quantiles per group from one sort (see :func:`segment_quantile`)."""
    finite = xp.isfinite(values)
    filled = xp.where(finite, values, xp.asarray(xp.inf, dtype=values.dtype))
    order = _group_order(xp, group, filled)
    sorted_vals = xp.take(filled, order)
    sorted_group = xp.take(group, order)
    starts, ends = group_bounds(xp, sorted_group, n_groups)
    counts = segment_sum(xp, xp.astype(xp.take(finite, order), xp.int64), starts, ends)
    has = counts > 0
    last = xp.maximum(counts - 1, xp.zeros_like(counts))
    top = max(int(sorted_vals.shape[0]) - 1, 0)
    out = []
    for q in qs:
        virtual = xp.astype(last, values.dtype) * q
        lo = xp.floor(virtual)
        gamma = virtual - lo
        a = xp.take(sorted_vals, xp.clip(starts + xp.astype(lo, xp.int64), 0, top))
        b = xp.take(
            sorted_vals, xp.clip(starts + xp.minimum(xp.astype(lo, xp.int64) + 1, last), 0, top)
        )
        zero = xp.zeros_like(a)
        a, b = xp.where(has, a, zero), xp.where(has, b, zero)  # empty groups read padding (+inf)
        diff = b - a
        value = xp.where(gamma >= 0.5, b - diff * (1.0 - gamma), a + diff * gamma)
        out.append(xp.where(has, value, xp.asarray(xp.nan, dtype=values.dtype)))
    return out


#: up to this many groups, per-group kernels sort each group's slice on its own
_LOOP_GROUPS = 4096
#: intervals are packed with their group into one int64 sort key: group * 2**40 + interval
_SHIFT = 1 << 40


def _median_interval(xp: Any, group: Any, dt_us: Any, valid: Any, n_groups: int) -> Any:
    """Median of the valid intervals (microseconds) per group, in seconds; 0 for none.

    Rows are grouped already: with few groups each group's slice is sorted on its own;
    otherwise one unstable sort of ``group * 2**40 + interval`` orders every group's
    intervals (intervals are clipped below 2**40 us, 12.7 days). ``valid`` must be the
    rows followed by a sample of the same group (every row but each group's last).
    """
    if n_groups <= _LOOP_GROUPS:  # few GPUs: sort each GPU's intervals on its own
        starts, ends = group_bounds(xp, group, n_groups)
        out = [0.0] * n_groups
        for g, (lo_row, hi_row) in enumerate(zip(_ints(starts), _ints(ends), strict=True)):
            count = hi_row - lo_row - 1  # a GPU's last sample has no interval
            if count <= 0:
                continue
            part = xp.sort(dt_us[lo_row : hi_row - 1])
            out[g] = (float(part[(count - 1) // 2]) + float(part[count // 2])) / 2e6
        return xp.asarray(out, dtype=xp.float64)
    if n_groups >= 1 << 23:
        msg = f"{n_groups} GPUs exceed the 8 million the interval sort key can hold"
        raise ValueError(msg)
    sentinel = _SHIFT - 1
    packed = xp.clip(dt_us, 0, sentinel - 1)
    key = xp.astype(group, xp.int64) * _SHIFT + xp.where(
        valid, packed, xp.full_like(packed, sentinel)
    )
    key = xp.sort(key, stable=False)
    g_sorted = key // _SHIFT
    v_sorted = key - g_sorted * _SHIFT
    starts, ends = group_bounds(xp, g_sorted, n_groups)
    counts = segment_sum(xp, xp.astype(v_sorted != sentinel, xp.int64), starts, ends)
    top = max(int(v_sorted.shape[0]) - 1, 0)
    lo = xp.clip(starts + (counts - 1) // 2, 0, top)
    hi = xp.clip(starts + counts // 2, 0, top)
    mid = (
        xp.astype(xp.take(v_sorted, lo), xp.float64) + xp.astype(xp.take(v_sorted, hi), xp.float64)
    ) / 2e6
    return xp.where(counts > 0, mid, xp.zeros_like(mid))


def sample_weights(
    xp: Any, group: Any, t_us: Any, n_groups: int, *, cap: float = 2.0
) -> tuple[Any, Any]:
    """Seconds each sample stands for, and each group's median sampling interval.

    A sample counts the time until the same GPU's next sample, capped at ``cap``
    times that GPU's median interval (a gap in the log is not idle time); a GPU's
    last sample counts its median interval. A GPU with one sample counts zero.
    """
    n = t_us.shape[0]
    if n == 0:
        empty = xp.zeros((0,), dtype=xp.float64)
        return empty, xp.zeros((n_groups,), dtype=xp.float64)
    same_next = xp.concat([group[1:] == group[:-1], xp.asarray([False])])
    t_next = xp.concat([t_us[1:], t_us[-1:]])
    dt_us = xp.where(same_next, t_next - t_us, xp.zeros_like(t_us))  # exact integer microseconds
    median = _median_interval(xp, group, dt_us, same_next, n_groups)
    dt = xp.where(
        same_next, xp.astype(dt_us, xp.float64) / 1e6, xp.asarray(xp.nan, dtype=xp.float64)
    )
    per_row_median = xp.take(median, xp.astype(group, xp.int64))
    weight = xp.where(same_next, xp.minimum(dt, cap * per_row_median), per_row_median)
    return xp.where(xp.isnan(weight), xp.zeros_like(weight), weight), median


def idle_runs(xp: Any, group: Any, idle: Any, weight: Any, n_groups: int) -> Any:
    """Longest stretch of consecutive idle samples per group, in seconds."""
    n = idle.shape[0]
    if n == 0:
        return xp.zeros((n_groups,), dtype=xp.float64)
    prev_idle = xp.concat([xp.asarray([False]), idle[:-1]])
    prev_same = xp.concat([xp.asarray([False]), group[1:] == group[:-1]])
    starts_run = idle & ~(prev_idle & prev_same)
    run_id = xp.cumulative_sum(xp.astype(starts_run, xp.int64)) - 1
    n_runs = int(xp.sum(xp.astype(starts_run, xp.int64)))
    if n_runs == 0:
        return xp.zeros((n_groups,), dtype=xp.float64)
    # runs are contiguous: sort-free segment sums over the idle rows only
    idle_rows = xp.nonzero(idle)[0]
    rid = xp.take(run_id, idle_rows)
    w = xp.take(weight, idle_rows)
    r_starts, r_ends = group_bounds(xp, rid, n_runs)
    durations = segment_sum(xp, w, r_starts, r_ends)
    run_group = xp.take(xp.take(group, idle_rows), r_starts)
    # longest run per group: order runs by (group, duration), take each group's last
    order = _group_order(xp, run_group, durations)
    g_sorted = xp.take(run_group, order)
    d_sorted = xp.take(durations, order)
    g_starts, g_ends = group_bounds(xp, g_sorted, n_groups)
    has = g_ends > g_starts
    picked = xp.take(d_sorted, xp.clip(g_ends - 1, 0, max(int(d_sorted.shape[0]) - 1, 0)))
    return xp.where(has, picked, xp.zeros_like(picked))


def grouped_quantiles(
    xp: Any, group: Any, values: Any, n_groups: int, qs: tuple[float, ...]
) -> list[Any]:
    """:func:`segment_quantiles` for rows already sorted by ``group``.

    Each group's contiguous slice is sorted on its own (values only, no index sort);
    with very many groups this falls back to :func:`segment_quantiles`. Same results.
    """
    if n_groups > _LOOP_GROUPS:
        return segment_quantiles(xp, group, values, n_groups, qs)
    starts, ends = group_bounds(xp, group, n_groups)
    out = [[float("nan")] * n_groups for _ in qs]
    for g, (lo_row, hi_row) in enumerate(zip(_ints(starts), _ints(ends), strict=True)):
        part = values[lo_row:hi_row]
        part = xp.sort(part[xp.isfinite(part)])
        last = int(part.shape[0]) - 1
        if last < 0:
            continue
        for k, q in enumerate(qs):
            virtual = last * q
            lo = int(virtual // 1)
            gamma = virtual - lo
            a = float(part[lo])
            b = float(part[min(lo + 1, last)])
            diff = b - a
            out[k][g] = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    return [xp.asarray(row, dtype=values.dtype) for row in out]


def _ints(array: Any) -> list[int]:
    return [int(v) for v in array]

"""GPU telemetry accounting kernels, written once against the array API standard.

Arrays in, arrays out, ``xp`` passed down; no polars here, so these run on a GPU
machine that has only NumPy / CuPy. Samples arrive sorted by ``(group, time)``, where a
group is one GPU (or MIG instance) given as a dense integer code ``0..G-1``, and times
are integer microseconds.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "capped_weights",
    "counted_median_intervals",
    "counted_order_statistics",
    "counted_quantiles",
    "group_bounds",
    "grouped_quantiles",
    "idle_run_parts",
    "idle_runs",
    "idle_stretches",
    "median_intervals",
    "next_intervals",
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


def order_statistics(xp: Any, values: Any, ks: list[int]) -> list[float]:
    """The values at sorted positions ``ks`` of a 1-D array.

    A partial sort (``partition``, linear time) where the namespace has one, as NumPy
    and CuPy do; a full sort otherwise (the array API standard has no partition).
    """
    partition = getattr(xp, "partition", None)
    part = partition(values, sorted(set(ks))) if partition is not None else xp.sort(values)
    return [float(part[k]) for k in ks]


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
            a, b = order_statistics(xp, dt_us[lo_row : hi_row - 1], [(count - 1) // 2, count // 2])
            out[g] = (a + b) / 2e6
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


def next_intervals(xp: Any, group: Any, t_us: Any) -> tuple[Any, Any]:
    """Microseconds to the same group's next sample (0 for its last), and which rows have one."""
    same_next = xp.concat([group[1:] == group[:-1], xp.asarray([False])])
    dt_us = xp.concat([t_us[1:] - t_us[:-1], xp.zeros((1,), dtype=t_us.dtype)])
    return xp.where(same_next, dt_us, xp.zeros((), dtype=t_us.dtype)), same_next


def median_intervals(xp: Any, group: Any, t_us: Any, n_groups: int) -> Any:
    """Each group's median sampling interval in seconds (0 for fewer than two samples)."""
    if t_us.shape[0] == 0:
        return xp.zeros((n_groups,), dtype=xp.float64)
    dt_us, same_next = next_intervals(xp, group, t_us)
    return _median_interval(xp, group, dt_us, same_next, n_groups)


def _capped(xp: Any, group: Any, dt_us: Any, same_next: Any, median: Any, cap: float) -> Any:
    per_row_median = xp.take(median, xp.astype(group, xp.int64))
    dt = xp.astype(dt_us, xp.float64) / 1e6
    return xp.where(same_next, xp.minimum(dt, cap * per_row_median), per_row_median)


def capped_weights(xp: Any, group: Any, t_us: Any, median: Any, *, cap: float = 2.0) -> Any:
    """Seconds each sample stands for, given every group's median interval (``median[g]``).

    The time until the same group's next sample, capped at ``cap`` times the median;
    a group's last sample counts the median.
    """
    if t_us.shape[0] == 0:
        return xp.zeros((0,), dtype=xp.float64)
    dt_us, same_next = next_intervals(xp, group, t_us)
    return _capped(xp, group, dt_us, same_next, median, cap)


def sample_weights(
    xp: Any, group: Any, t_us: Any, n_groups: int, *, cap: float = 2.0
) -> tuple[Any, Any]:
    """Seconds each sample stands for, and each group's median sampling interval.

    A sample counts the time until the same GPU's next sample, capped at ``cap``
    times that GPU's median interval (a gap in the log is not idle time); a GPU's
    last sample counts its median interval. A GPU with one sample counts zero.
    """
    if t_us.shape[0] == 0:
        return xp.zeros((0,), dtype=xp.float64), xp.zeros((n_groups,), dtype=xp.float64)
    dt_us, same_next = next_intervals(xp, group, t_us)
    median = _median_interval(xp, group, dt_us, same_next, n_groups)
    return _capped(xp, group, dt_us, same_next, median, cap), median


def idle_stretches(xp: Any, group: Any, idle: Any, weight: Any) -> tuple[Any, Any, Any]:
    """Every stretch of consecutive idle rows of one group: first row, last row, seconds.

    Stretches are listed in row order (so by group); a stretch's seconds are the sum of
    its rows' ``weight``.
    """
    n = idle.shape[0]
    if n == 0:
        empty = xp.zeros((0,), dtype=xp.int64)
        return empty, empty, xp.zeros((0,), dtype=xp.float64)
    no = xp.asarray([False])
    same = group[1:] == group[:-1]
    # a stretch opens at an idle row whose previous row (of the same group) is busy or
    # absent, and closes at one whose next row is
    joined = idle[1:] & idle[:-1] & same
    opens = idle & ~xp.concat([no, joined])
    closes = idle & ~xp.concat([joined, no])
    first = xp.astype(xp.nonzero(opens)[0], xp.int64)
    last = xp.astype(xp.nonzero(closes)[0], xp.int64)
    if first.shape[0] == 0:
        return first, last, xp.zeros((0,), dtype=xp.float64)
    # every row of a stretch is idle: its seconds are a difference of the running sum
    cum = xp.cumulative_sum(weight)
    durations = xp.take(cum, last) - xp.take(cum, first) + xp.take(weight, first)
    return first, last, durations


def idle_runs(xp: Any, group: Any, idle: Any, weight: Any, n_groups: int) -> Any:
    """Longest stretch of consecutive idle samples per group, in seconds."""
    return idle_run_parts(xp, group, idle, weight, n_groups)[0]


def idle_run_parts(
    xp: Any, group: Any, idle: Any, weight: Any, n_groups: int
) -> tuple[Any, Any, Any, Any]:
    """Per group: the longest idle stretch, the stretch its rows open and close with, and all-idle.

    Returns ``(longest, leading, trailing, full)``: seconds of the longest run of
    consecutive idle samples, of the run starting at the group's first row and of the
    run ending at its last row (0 when that row is busy), and whether every row is idle
    (True for a group without rows). Consecutive pieces of one group's rows combine
    exactly: ``longest = max(longest_a, longest_b, trailing_a + leading_b)``.
    """
    zeros = xp.zeros((n_groups,), dtype=xp.float64)
    g_starts, g_ends = group_bounds(xp, group, n_groups)
    present = g_ends > g_starts
    n = idle.shape[0]
    first, last, durations = idle_stretches(xp, group, idle, weight)
    n_runs = int(first.shape[0])
    if n_runs == 0:
        return zeros, zeros, zeros, ~present
    run_group = xp.take(group, first)
    # longest run per group: order runs by (group, duration), take each group's last
    order = _group_order(xp, run_group, durations)
    g_sorted = xp.take(run_group, order)
    d_sorted = xp.take(durations, order)
    s_starts, s_ends = group_bounds(xp, g_sorted, n_groups)
    top = n_runs - 1
    picked = xp.take(d_sorted, xp.clip(s_ends - 1, 0, top))
    longest = xp.where(s_ends > s_starts, picked, zeros)
    # the runs opening at a group's first row and closing at its last
    start_row = xp.clip(g_starts, 0, n - 1)
    end_row = xp.clip(g_ends - 1, 0, n - 1)
    lead = xp.clip(xp.searchsorted(first, start_row), 0, top)
    trail = xp.clip(xp.searchsorted(last, end_row), 0, top)
    has_lead = present & (xp.take(first, lead) == start_row)
    has_trail = present & (xp.take(last, trail) == end_row)
    leading = xp.where(has_lead, xp.take(durations, lead), zeros)
    trailing = xp.where(has_trail, xp.take(durations, trail), zeros)
    # every row idle: one run from the group's first row to its last
    full = ~present | (has_lead & (xp.take(last, lead) == end_row))
    return longest, leading, trailing, full


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
        part = part[xp.isfinite(part)]
        last = int(part.shape[0]) - 1
        if last < 0:
            continue
        los = [int(last * q // 1) for q in qs]
        wanted = sorted({k for lo in los for k in (lo, min(lo + 1, last))})
        at = dict(zip(wanted, order_statistics(xp, part, wanted), strict=True))
        for k, q in enumerate(qs):
            virtual = last * q
            lo = los[k]
            gamma = virtual - lo
            a = at[lo]
            b = at[min(lo + 1, last)]
            diff = b - a
            out[k][g] = b - diff * (1.0 - gamma) if gamma >= 0.5 else a + diff * gamma
    return [xp.asarray(row, dtype=values.dtype) for row in out]


def counted_order_statistics(
    xp: Any, group: Any, values: Any, counts: Any, n_groups: int, ranks: list[Any]
) -> list[Any]:
    """Order statistics of every group from its distinct values and their counts.

    ``group``, ``values`` and ``counts`` list each distinct (group, value) pair once, in
    any order, with how often it occurs. ``ranks`` holds arrays of one 0-based rank per
    group; the result gives, for each, the value at that sorted position of the group's
    samples, as if every sample were there (ranks past a group's end read its largest
    value; groups without values read an arbitrary value, to be masked by the caller).
    """
    if values.shape[0] == 0:
        return [xp.zeros((n_groups,), dtype=values.dtype) for _ in ranks]
    order = _group_order(xp, group, values)
    g_sorted = xp.take(group, order)
    v_sorted = xp.take(values, order)
    cum = xp.cumulative_sum(xp.astype(xp.take(counts, order), xp.int64))
    starts, ends = group_bounds(xp, g_sorted, n_groups)
    top = int(v_sorted.shape[0]) - 1
    zero = xp.zeros((n_groups,), dtype=xp.int64)
    before = xp.where(starts > 0, xp.take(cum, xp.clip(starts - 1, 0, top)), zero)
    last = xp.clip(ends - 1, 0, top)
    out = []
    for rank in ranks:
        # the first pair whose running count passes the rank, within the group
        at = xp.searchsorted(cum, before + xp.astype(rank, xp.int64), side="right")
        out.append(xp.take(v_sorted, xp.clip(xp.minimum(at, last), 0, top)))
    return out


def _totals(xp: Any, group: Any, counts: Any, n_groups: int) -> Any:
    order = xp.argsort(group, stable=True)
    g_sorted = xp.take(group, order)
    starts, ends = group_bounds(xp, g_sorted, n_groups)
    return segment_sum(xp, xp.astype(xp.take(counts, order), xp.int64), starts, ends)


def counted_median_intervals(xp: Any, group: Any, dt_us: Any, counts: Any, n_groups: int) -> Any:
    """:func:`median_intervals` from the distinct intervals (microseconds) and their counts.

    Gives the same value as the median of every interval; 0 for a group without one.
    """
    total = _totals(xp, group, counts, n_groups)
    one = xp.ones_like(total)
    lo = (xp.maximum(total, one) - 1) // 2
    hi = total // 2
    a, b = counted_order_statistics(xp, group, dt_us, counts, n_groups, [lo, hi])
    mid = (xp.astype(a, xp.float64) + xp.astype(b, xp.float64)) / 2e6
    return xp.where(total > 0, mid, xp.zeros_like(mid))


def counted_quantiles(
    xp: Any, group: Any, values: Any, counts: Any, n_groups: int, qs: tuple[float, ...]
) -> list[Any]:
    """:func:`grouped_quantiles` (NumPy's linear method) from distinct values and counts.

    ``values`` must be finite; groups without values give NaN.
    """
    total = _totals(xp, group, counts, n_groups)
    has = total > 0
    last = xp.maximum(total - 1, xp.zeros_like(total))
    plans = []
    ranks = []
    for q in qs:
        virtual = xp.astype(last, xp.float64) * q
        lo = xp.floor(virtual)
        lo_rank = xp.astype(lo, xp.int64)
        plans.append((virtual - lo, len(ranks)))
        ranks += [lo_rank, xp.minimum(lo_rank + 1, last)]
    stats = counted_order_statistics(xp, group, values, counts, n_groups, ranks)
    out = []
    for gamma, k in plans:
        a = xp.astype(stats[k], xp.float64)
        b = xp.astype(stats[k + 1], xp.float64)
        diff = b - a
        value = xp.where(gamma >= 0.5, b - diff * (1.0 - gamma), a + diff * gamma)
        out.append(xp.where(has, value, xp.asarray(xp.nan, dtype=xp.float64)))
    return out


def _ints(array: Any) -> list[int]:
    return [int(v) for v in array]

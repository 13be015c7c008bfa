"""Every GPU's sampling intervals and utilization readings, counted by value.

The streamed review needs each GPU's median interval (to cap a sample's seconds) and
its utilization p50 / p95 without holding the log: a log read in chunks is *counted*
per distinct value, and the order statistics come from the counts, exactly
(:func:`aiops_lab.gpu.kernels.counted_order_statistics`). Intervals mostly take a few
values per GPU (whole milliseconds around the exporter's period), readings mostly whole
percents, so the counts stay small.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, to_numpy
from aiops_lab.gpu import kernels as K

#: intervals are counted with their GPU in one int64: gpu * 2**40 + microseconds
SHIFT = 1 << 40


def whole_percent() -> pl.Expr:
    """``_whole``: the utilization as a whole percent, or -1 for another reading (or none)."""
    util = pl.col("util_pct").cast(pl.Float64)
    return (
        pl.when(util.is_between(0.0, 100.0) & (util.floor() == util))
        .then(util.cast(pl.Int64))
        .otherwise(-1)
        .alias("_whole")
    )


class StatsCounter:
    """Intervals and utilization readings of ``n`` GPUs, counted over chunks of a log."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.intervals = _KeyCounts()
        self.readings = _PairCounts("_g", "_u")  # readings other than whole percents
        self.util_dense = np.zeros(n * 101, dtype=np.int64)  # whole percents, densely
        self.n_intervals = np.zeros(n, dtype=np.int64)
        self.rows, self.checked = 0, False

    def add_intervals(self, group: np.ndarray, dt: np.ndarray) -> bool:
        """Count intervals (microseconds) of GPUs ``group`` (sorted); False if one is too long.

        Intervals of 2**40 microseconds (12.7 days) or more cannot be counted.
        """
        if dt.size == 0:
            return True
        if int(dt.max()) >= SHIFT or int(dt.min()) < 0:
            return False
        _count_intervals(self.intervals, group, dt, self.n)
        self.n_intervals += np.bincount(group, minlength=self.n)
        return True

    def add_readings(self, ids: np.ndarray, whole: np.ndarray, util: Any) -> None:
        """Count utilization readings: ``whole`` the whole percent, or -1 for another
        reading (then taken from ``util``, a polars Series, where it is not null)."""
        if ids.size == 0:
            return
        n = self.n
        if int(whole.min()) >= 0:
            self.util_dense += np.bincount(ids * 101 + whole, minlength=n * 101)
            return
        is_whole = whole >= 0
        self.util_dense += np.bincount(ids[is_whole] * 101 + whole[is_whole], minlength=n * 101)
        util_f = util.cast(pl.Float64).fill_null(float("nan")).to_numpy()
        other = ~is_whole & np.isfinite(util_f)
        if other.any():
            self.readings.add(pl.DataFrame({"_g": ids[other], "_u": util_f[other]}))

    def over(self, limit: int) -> bool:
        """Whether more than ``limit`` distinct (GPU, interval) or (GPU, reading) pairs were seen."""
        return self.intervals.over(limit) or self.readings.over(limit)

    def too_many(self, rows: int, limit: int, *, after: int, total: int) -> bool:
        """Whether to stop counting, once ``rows`` more samples were counted.

        More than ``limit`` distinct pairs were seen; or, checked once ``after`` samples,
        most intervals are still new values (times to the microsecond with jitter) in a
        log of ``total`` samples with room for twice the limit: better given up now than
        at the limit.
        """
        self.rows += rows
        if self.over(limit):
            return True
        if not self.checked and self.rows >= after:
            self.checked = True
            distinct = self.intervals.merged()[0].shape[0]
            return 2 * distinct > int(self.n_intervals.sum()) and total > 2 * limit
        return False

    def medians(self, xp: Any) -> np.ndarray:
        """Every GPU's median interval in seconds (0 for fewer than two samples)."""
        key, d_count = self.intervals.merged()
        g_of = key // SHIFT
        return to_numpy(
            K.counted_median_intervals(
                xp, from_numpy(g_of, xp), from_numpy(key - g_of * SHIFT, xp),
                from_numpy(d_count, xp), self.n,
            )
        )  # fmt: skip

    def quantiles(self, xp: Any) -> tuple[np.ndarray, np.ndarray]:
        """Every GPU's utilization p50 and p95 (NaN without a reading)."""
        used = np.flatnonzero(self.util_dense)
        merged = self.readings.merged()
        u_counts = pl.concat(
            [
                pl.DataFrame(
                    {
                        "_g": used // 101,
                        "_u": (used % 101).astype(np.float64),
                        "len": self.util_dense[used],
                    }
                ),
                *([] if merged is None else [merged]),
            ],
            how="vertical_relaxed",
        )
        p50, p95 = K.counted_quantiles(
            xp, from_numpy(u_counts["_g"].to_numpy(), xp), from_numpy(u_counts["_u"].to_numpy(), xp),
            from_numpy(u_counts["len"].to_numpy(), xp), self.n, (0.5, 0.95),
        )  # fmt: skip
        return to_numpy(p50), to_numpy(p95)


#: slots of the dense interval counts of one chunk, over all its GPUs
_DENSE_SLOTS = 1 << 20


def _count_intervals(counts: _KeyCounts, group: np.ndarray, dt: np.ndarray, n: int) -> None:
    """Add one chunk's intervals (``group`` sorted) to ``counts``, keyed ``gpu * 2**40 + dt``.

    Most of a GPU's intervals lie close together: they are counted in a dense table
    per GPU, from that GPU's shortest interval here, in milliseconds when every interval
    is whole milliseconds (as most logs write time); the few beyond it (gaps) by value.
    """
    if dt.size == 0:
        return
    span = max(_DENSE_SLOTS // n, 1)
    if 8 * dt.size < n * span:  # few intervals (those into a chunk): by value
        counts.add(group * SHIFT + dt)
        return
    sizes = np.bincount(group, minlength=n)
    present = np.flatnonzero(sizes)
    starts = np.cumsum(sizes) - sizes
    lo = np.zeros(n, dtype=np.int64)
    lo[present] = np.minimum.reduceat(dt, starts[present])
    unit = 1000 if not bool(np.any(dt % 1000)) else 1
    offset = dt - np.take(lo, group, mode="clip")
    if unit > 1:
        offset //= unit
    key = group * span + offset
    beyond = offset >= span
    some_beyond = bool(beyond.any())
    if some_beyond:
        key[beyond] = n * span  # one more slot, counted by value below
    table = np.bincount(key, minlength=n * span + 1)[: n * span]
    used = np.flatnonzero(table)
    g_used = used // span
    value = lo[g_used] + (used - g_used * span) * unit
    counts.add(g_used * SHIFT + value, table[used])
    if some_beyond:
        counts.add(group[beyond] * SHIFT + dt[beyond])


class _KeyCounts:
    """How often each int64 key occurs, over arrays of keys added one by one."""

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.pending: list[tuple[np.ndarray, np.ndarray]] = []
        self.pending_rows = 0

    def add(self, keys: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Count ``keys``, each ``counts`` times (default once)."""
        if counts is None:
            counts = np.ones(keys.shape[0], dtype=np.int64)
        self.pending.append((keys, counts))
        self.pending_rows += keys.shape[0]
        if self.pending_rows > max(self.keys.shape[0], 1 << 16):
            self.merged()

    @property
    def distinct(self) -> int:
        """Distinct keys so far (an upper bound until merged)."""
        return self.keys.shape[0] + self.pending_rows

    def over(self, limit: int) -> bool:
        """Whether more than ``limit`` distinct keys were counted."""
        if self.distinct > limit:
            self.merged()
        return self.distinct > limit

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct keys so far, sorted, and their counts."""
        if self.pending:
            keys = np.concatenate([self.keys, *(k for k, _ in self.pending)])
            counts = np.concatenate([self.counts, *(c for _, c in self.pending)])
            self.pending, self.pending_rows = [], 0
            if keys.shape[0] == 0:
                return self.keys, self.counts
            order = np.argsort(keys)
            keys, counts = keys[order], counts[order]
            starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
            self.keys, self.counts = keys[starts], np.add.reduceat(counts, starts)
        return self.keys, self.counts


class _PairCounts:
    """How often each distinct row of some columns occurs, over frames added one by one."""

    def __init__(self, *columns: str) -> None:
        self.columns = list(columns)
        self.counted: pl.DataFrame | None = None
        self.pending: list[pl.DataFrame] = []
        self.pending_rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        """Count the rows of ``frame``."""
        part = frame.group_by(self.columns).agg(pl.len().cast(pl.Int64))
        self.pending.append(part)
        self.pending_rows += part.height
        if self.pending_rows > max(self.distinct - self.pending_rows, 1 << 16):
            self.merged()

    @property
    def distinct(self) -> int:
        """Distinct rows so far (an upper bound until merged)."""
        return (self.counted.height if self.counted is not None else 0) + self.pending_rows

    def over(self, limit: int) -> bool:
        """Whether more than ``limit`` distinct rows were counted."""
        if self.distinct > limit:
            self.merged()
        return self.distinct > limit

    def merged(self) -> pl.DataFrame | None:
        """The counts so far (column ``len``); None when nothing was added."""
        if self.pending:
            parts = [self.counted, *self.pending] if self.counted is not None else self.pending
            self.counted = (
                pl.concat(parts).group_by(self.columns).agg(pl.col("len").sum())
                if len(parts) > 1
                else parts[0]
            )
            self.pending, self.pending_rows = [], 0
        return self.counted

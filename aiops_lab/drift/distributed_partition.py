"""What every Dask drift pass does with a partition, and the grids and windows they share.

A partition (pandas, cuDF, pyarrow or polars) read as a polars frame, its time column
parsed as the in-memory path parses it, the counts of sorted values per slot of a grid
of reference order statistics (the KS / Wasserstein grid of
:mod:`aiops_lab.drift.distributed` and the AUC grid of
:mod:`aiops_lab.drift.distributed_quality`), and the windows of a set of summaries in
time (row) order, as :mod:`aiops_lab.drift.distributed_sample` needs them too.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from aiops_lab.errors import InputError


def _to_polars(part: Any) -> pl.DataFrame:
    """A partition (pandas, cuDF, pyarrow or polars) as a polars frame."""
    if isinstance(part, pl.DataFrame):
        return part
    if not type(part).__module__.startswith("pandas") and hasattr(part, "to_pandas"):
        part = part.to_pandas()  # cuDF partitions (dask-cudf)
    return pl.from_pandas(part)


def _as_datetime(series: pl.Series, column: str) -> pl.Series:
    """The time column as Datetime, as the in-memory path prepares it."""
    dtype = series.dtype
    if dtype == pl.Date:
        return series.cast(pl.Datetime("us"))
    if dtype == pl.Utf8:
        try:
            return series.str.to_datetime(time_zone="UTC")
        except Exception as exc:
            msg = f"Time column {column!r} of the current data holds strings that are not ISO timestamps ({exc})."
            raise InputError(msg) from exc
    return series


def _slot_counts(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Counts of sorted ``x`` per slot of grid ``g``: open cell k at 2k, grid value k at 2k+1."""
    cum = np.empty(2 * g.size + 2, dtype=np.int64)  # values before slot s, s = 0..2G+1
    cum[0], cum[-1] = 0, x.size
    cum[1:-1:2] = np.searchsorted(x, g, side="left")  # values < g[k]
    cum[2:-1:2] = np.searchsorted(x, g, side="right")  # values <= g[k]
    return np.diff(cum)


def _order_statistics(x: np.ndarray, size: int) -> np.ndarray:
    """About ``size`` evenly spaced order statistics of sorted ``x``, its ends included."""
    if x.size == 0:
        return np.empty(0)
    idx = np.unique(np.round(np.linspace(0, x.size - 1, min(size, x.size))).astype(np.int64))
    return np.unique(x[idx])


def _window_labels(
    summaries: dict[Any, Any], window: str | None, chunk_size: int | None
) -> list[tuple[Any, Any, Any]]:
    """``(key, window_start, window_end)`` per window in time (row) order, as in memory."""
    keys = sorted(summaries)
    if window is not None:
        ends = pl.Series(keys).dt.offset_by(window).to_list()
        return list(zip(keys, keys, ends, strict=True))
    assert chunk_size is not None
    return [(k, k * chunk_size, k * chunk_size + summaries[k].rows) for k in keys]

"""What every Dask drift pass does with a partition, and the grids and windows they share.

A partition (pandas, cuDF, pyarrow or polars) read as a polars frame, its time column
parsed as the in-memory path parses it, the counts of sorted values per slot of a grid
of reference order statistics (the KS / Wasserstein grid of
:mod:`aiops_lab.drift.distributed` and the AUC grid of
:mod:`aiops_lab.drift.distributed_quality`), and the windows of a set of summaries in
time (row) order, as :mod:`aiops_lab.drift.distributed_sample` needs them too.

It also names the categories of a partition as the in-memory path names them
(:func:`aiops_lab.drift.sources.category_codes` casts the values to strings): pandas
turns an integer column with missing values into float64 (a boolean one into object,
which Dask then makes strings), so a label ``0``/``1`` would count as ``"0.0"``/``"1.0"``
(``"True"``/``"False"``) where memory has ``"0"``/``"1"`` (``"true"``/``"false"``).
Where the reference column is an integer or boolean, :func:`_category_counts` counts
the values of a numeric partition as numbers, and :func:`_category_strings` names them
once every partition is in: as the reference's dtype names them when every value is a
whole number it holds (NaN then counts as missing only, as a null does), else as
float64 names them, as an in-memory float column would be named.
"""

from __future__ import annotations

import math
from collections import Counter
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


def _int_like(dtype: pl.DataType) -> bool:
    return dtype == pl.Boolean or dtype.is_integer()


def _value_counts(series: pl.Series) -> Counter:
    counts = series.alias("v").value_counts()
    return Counter(dict(zip(counts["v"].to_list(), counts["count"].to_list(), strict=True)))


def _category_counts(series: pl.Series, ref_dtype: pl.DataType) -> Counter:
    """Non-null values of one partition's categorical column, counted per category.

    Keyed by the value cast to a string, as in memory; but where the reference column
    is an integer or boolean and this one a number, keyed by the number (``None``
    counting NaN) until :func:`_category_strings` names them (see the module docstring).
    """
    dtype = series.dtype
    if not (_int_like(ref_dtype) and (_int_like(dtype) or dtype.is_float())):
        return _value_counts(series.cast(pl.Utf8).drop_nulls())
    values = series.drop_nulls()
    out: Counter = Counter()
    if dtype.is_float():
        nan = values.is_nan()
        if nan.any():
            out[None] = int(nan.sum())
            values = values.filter(~nan)
    out.update(_value_counts(values))
    return out


def _integral(counts: Counter, ref_dtype: pl.DataType) -> bool:
    """Whether every number in ``counts`` is a whole number the reference's dtype holds."""
    nums = [k for k in counts if k is not None and not isinstance(k, str)]
    if not _int_like(ref_dtype) or not nums:
        return True
    if any(isinstance(k, float) and not (math.isfinite(k) and k.is_integer()) for k in nums):
        return False
    ints = [int(k) for k in nums]
    if ref_dtype == pl.Boolean:
        return set(ints) <= {0, 1}
    try:
        return pl.Series(ints, strict=False).cast(ref_dtype, strict=False).null_count() == 0
    except Exception:  # beyond any integer dtype polars has
        return False


def _category_naming(counts: Counter, ref_dtype: pl.DataType) -> tuple[bool, bool]:
    """How :func:`_category_strings` names the categories, decided on all the rows.

    ``(integral, booleans)``: whether the numbers are whole numbers of the reference's
    dtype (:func:`_integral`), and whether the strings, against a boolean reference, are
    only ``"True"``/``"False"`` (pandas booleans with missing values, which Dask turns
    into strings).
    """
    strings = {k for k in counts if isinstance(k, str)}
    booleans = ref_dtype == pl.Boolean and bool(strings) and strings <= {"True", "False"}
    return _integral(counts, ref_dtype), booleans


def _category_strings(
    counts: Counter, ref_dtype: pl.DataType, naming: tuple[bool, bool]
) -> Counter:
    """``counts`` (of :func:`_category_counts`, merged) keyed by the in-memory strings.

    ``naming`` is :func:`_category_naming` of all the rows. Numbers are named by the
    reference's dtype when integral (NaN dropped: it is counted with the nulls), else
    by float64 (NaN as ``"NaN"``, as in memory); ``"True"``/``"False"`` become
    ``"true"``/``"false"`` as a boolean column names them.
    """
    integral, booleans = naming
    out = Counter({k: v for k, v in counts.items() if isinstance(k, str)})
    if booleans:
        out = Counter({k.lower(): v for k, v in out.items()})
    nums = [k for k in counts if not isinstance(k, str) and not (integral and k is None)]
    if not nums:
        return out
    if integral:
        names = pl.Series([int(k) for k in nums], strict=False).cast(ref_dtype).cast(pl.Utf8)
    else:
        floats = [math.nan if k is None else float(k) for k in nums]
        names = pl.Series(floats, dtype=pl.Float64).cast(pl.Utf8)
    for k, name in zip(nums, names.to_list(), strict=True):
        out[name] += counts[k]
    return out


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

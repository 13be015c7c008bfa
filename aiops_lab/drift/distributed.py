"""Drift comparisons on Dask DataFrames: per-partition summaries merged in a tree.

:func:`aiops_lab.drift.compare` sends Dask inputs here. The reference (the small side)
is brought into memory; the current data never is (only a row sample, for the
analyses that need rows; see below). Every partition of the current
data is reduced to a summary of fixed size, summaries are added pairwise-ish in a
tree (``split_every`` at a time), and the statistics are computed from the root.

What a partition summary holds, per column:

* rows and missing values (null, and NaN for floats) -- exact;
* finite values below each reference-quantile bin edge (PSI / Jensen-Shannon /
  Hellinger / L-inf) -- exact;
* category counts (chi-square and the category divergences) -- exact, the categories
  named as in memory even where pandas made an integer column float (see
  :mod:`aiops_lab.drift.distributed_partition`);
* min, max, mean and second central moment (Chan's merge) -- exact up to rounding;
* for KS and Wasserstein: counts on a fine grid made of reference values (the
  reference's ``grid`` evenly spaced order statistics, its minimum and maximum
  included), one count per grid value and one per open interval between grid values,
  and per open interval the sum of distances to its left end.

Error bounds (per column, computed from the data and returned in
``result.params["dask"]``; see :func:`error_bounds`)
------------------------------------------------------------------------------------
Both empirical CDFs are known exactly at every grid value and just left of it. The
reference CDF is also known between grid values, so within one open interval only
the placement of the current values is unknown.

* **KS.** The reported statistic is the largest CDF gap over those points, which are
  points the exact statistic also looks at: ``ks <= ks_exact <= ks + ks_error`` where
  ``ks_error`` is at most the largest share of reference values strictly inside one
  interval, ``<= ceil((n_ref - 1) / (grid - 1)) / n_ref`` (about ``1 / grid``). When the
  reference has at most ``grid`` distinct values the grid holds all of them and the
  statistic is exact. As the reported KS is a lower bound, its p-value is an upper
  bound: ``ks_p_lower <= ks_p_exact <= ks_p`` with ``ks_p_lower`` the p-value at
  ``ks + ks_error`` (reported too); a column flagged here is flagged in memory.
* **Wasserstein-1.** ``W = integral |F_ref - F_cur|``. Outside the reference's range
  and on every interval where the two CDFs do not cross, the integral follows exactly
  from the counts and the summed distances. On an interval where they may cross it
  lies between ``|integral (F_ref - F_cur)|`` and an upper bound (interval width
  times the largest possible gap); the midpoint is reported and ``wasserstein_error``
  is half the summed widths of those brackets, so ``|W - W_exact| <= wasserstein_error``.
  A priori that is at most ``sum over intervals of width * (p_ref + p_cur)``, i.e.
  about ``(range of the reference) * (1 / grid + largest current share in an
  interval)``; in practice far smaller, as only crossing intervals count.
  ``wasserstein_norm`` divides by the reference's standard deviation, as in memory.

Time windows (``window=`` with ``time_column=``, or ``chunk_size=`` in row order)
use the same summaries keyed by window, with a coarser grid (``window_grid``), so
their bounds are about ``1 / window_grid``; windows carry their own bounds.

The rest of a Dask comparison lives in the modules beside this one:

* realized model quality (``prediction_column`` with ``label_column``), summarized in
  the same pass: MAE, RMSE, bias, accuracy and positive rate exact up to rounding, the
  AUC within a reported ``auc_error`` -- :mod:`aiops_lab.drift.distributed_quality`;
* ``multivariate``, ``embeddings`` and ``estimate_quality``, on a seeded row sample
  drawn on the workers after the summary pass (about ``1.2 * sample_rows`` rows per
  window) -- :mod:`aiops_lab.drift.distributed_sample`;
* a partition read as polars, counts on a grid of reference order statistics, the
  windows in order -- :mod:`aiops_lab.drift.distributed_partition`.

Costs: a summary is about ``24 * (grid + window_grid * windows) bytes`` per numeric
column plus the category counts, and about ``56 * (grid + window_grid * windows)``
bytes for a binary model's AUC; workers hold one partition at a time.

Not computed on Dask: ``chunk_size`` together with ``time_column`` (it needs a global
sort; use ``window=``); reconstruction, embeddings and ``estimate_quality`` with
``chunk_size`` (see :mod:`aiops_lab.drift.distributed_sample`).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.drift import kernels as K
from aiops_lab.drift.distributed_partition import (
    _as_datetime,
    _category_counts,
    _category_naming,
    _category_strings,
    _int_like,
    _order_statistics,
    _slot_counts,
    _to_polars,
    _window_labels,
)
from aiops_lab.drift.distributed_quality import (
    _Quality,
    _quality_summary,
    _quality_table,
    _QualitySpec,
)
from aiops_lab.drift.distributed_sample import _Deeper
from aiops_lab.drift.engine import untested_reasons
from aiops_lab.drift.sources import null_counts, numeric_matrix, sorted_numeric
from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, InputError, ParameterError

__all__ = [
    "DEFAULT_GRID",
    "DEFAULT_WINDOW_GRID",
    "compare_dask",
    "error_bounds",
    "is_dask_frame",
]

#: reference order statistics in the KS / Wasserstein grid of the whole comparison
DEFAULT_GRID = 4096
#: the same for each time window
DEFAULT_WINDOW_GRID = 1024
#: summaries merged per node of the reduction tree
DEFAULT_SPLIT_EVERY = 8


def is_dask_frame(obj: Any) -> bool:
    """True for a Dask (or dask-cudf) DataFrame, without importing Dask."""
    root = (type(obj).__module__ or "").split(".")[0]
    return (
        root in ("dask", "dask_expr", "dask_cudf")
        and hasattr(obj, "__dask_graph__")
        and hasattr(obj, "npartitions")
    )


# -- summaries --------------------------------------------------------------------------------
@dataclass
class _Spec:
    """What every partition needs to know: columns, reference edges and grids."""

    columns: list[str]
    numeric: list[str]
    categorical: list[str]
    edges: np.ndarray  # (C_num, bins - 1) reference-quantile bin edges
    grids: list[np.ndarray]  # per numeric column: sorted distinct reference values
    window_grids: list[np.ndarray] | None
    time_column: str | None = None
    window: str | None = None
    chunk_size: int | None = None
    # realized model quality (set when predictions and labels are given)
    quality: _QualitySpec | None = None
    # per categorical column: the reference's dtype (how its values are named as categories)
    cat_dtypes: list[pl.DataType] = field(default_factory=list)


@dataclass
class _Summary:
    """Mergeable per-column summaries of a set of rows (see the module docstring)."""

    rows: int
    nulls: np.ndarray  # (C,) null (and NaN) counts, all compared columns
    n_valid: np.ndarray  # (C_num,) finite values
    below: np.ndarray  # (C_num, bins - 1) finite values < each edge
    slots: list[np.ndarray]  # per numeric column (2G + 1,): open cell k at 2k, grid value k at 2k+1
    offsets: list[np.ndarray]  # per numeric column (G + 1,): sum of (x - left end) per open cell
    lo: np.ndarray  # (C_num,) min of finite values (+inf when none)
    hi: np.ndarray  # (C_num,) max of finite values (-inf when none)
    mean: np.ndarray  # (C_num,)
    m2: np.ndarray  # (C_num,) sum of squared deviations from the mean
    # per categorical column: level -> count (numbers until _name_categories names them)
    cats: list[Counter] = field(default_factory=list)
    quality: _Quality | None = None

    def merge(self, other: _Summary) -> _Summary:
        """A new summary of both sets of rows (neither input is changed)."""
        na, nb = self.n_valid.astype(np.float64), other.n_valid.astype(np.float64)
        n = na + nb
        safe = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        mean = np.where(n > 0, self.mean + delta * nb / safe, 0.0)
        m2 = self.m2 + other.m2 + delta * delta * na * nb / safe
        return _Summary(
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            n_valid=self.n_valid + other.n_valid,
            below=self.below + other.below,
            slots=[a + b for a, b in zip(self.slots, other.slots, strict=True)],
            offsets=[a + b for a, b in zip(self.offsets, other.offsets, strict=True)],
            lo=np.minimum(self.lo, other.lo),
            hi=np.maximum(self.hi, other.hi),
            mean=mean,
            m2=m2,
            cats=[a + b for a, b in zip(self.cats, other.cats, strict=True)],
            quality=(
                self.quality.merge(other.quality)
                if self.quality is not None and other.quality is not None
                else self.quality or other.quality
            ),
        )


def _summarize(frame: pl.DataFrame, spec: _Spec, grids: list[np.ndarray]) -> _Summary:
    """Reduce a polars frame to a :class:`_Summary` on ``grids``."""
    n_num = len(spec.numeric)
    n_valid = np.zeros(n_num, dtype=np.int64)
    below = np.zeros(spec.edges.shape, dtype=np.int64)
    lo, hi = np.full(n_num, np.inf), np.full(n_num, -np.inf)
    mean, m2 = np.zeros(n_num), np.zeros(n_num)
    slots, offsets = [], []
    mat = numeric_matrix(frame, spec.numeric) if n_num else None
    for i in range(n_num):
        x = mat[i]
        # sorted once (polars sorts about twice as fast as NumPy): every count below is a
        # binary search into it
        x = pl.Series(x[np.isfinite(x)]).sort().to_numpy()
        n = x.size
        n_valid[i] = n
        e = spec.edges[i]
        if e.size:
            below[i] = np.searchsorted(x, e, side="left")
        g = grids[i]
        n_g = g.size
        if n:
            lo[i], hi[i] = x[0], x[-1]
            mean[i] = x.mean()
            d = x - mean[i]
            m2[i] = float(d @ d)
        if n_g == 0:
            slots.append(np.zeros(1, dtype=np.int64))
            offsets.append(np.zeros(1))
            continue
        counts = _slot_counts(x, g)
        slots.append(counts)
        # distance of each value in an open interval to its left end (to g[0] below it)
        cell = np.repeat(np.arange(2 * n_g + 1), counts)
        open_ = cell % 2 == 0
        k = cell[open_] // 2
        xo = x[open_]
        dist = np.where(k > 0, xo - g[np.maximum(k - 1, 0)], g[0] - xo)
        offsets.append(np.bincount(k, weights=dist, minlength=n_g + 1))
    cats = [
        _category_counts(frame[c], dtype)
        for c, dtype in zip(spec.categorical, spec.cat_dtypes, strict=True)
    ]
    return _Summary(
        rows=frame.height, nulls=null_counts(frame, spec.columns), n_valid=n_valid, below=below,
        slots=slots, offsets=offsets, lo=lo, hi=hi, mean=mean, m2=m2, cats=cats,
    )  # fmt: skip


def _name_categories(summaries: Sequence[_Summary | None], root: _Summary, spec: _Spec) -> None:
    """Key the category counts of ``summaries`` by the strings the in-memory path uses.

    ``root`` (the summary of all the rows) decides per column whether numbers are named
    as the reference's integer / boolean dtype names them or as floats, so every window
    names them alike (see :mod:`aiops_lab.drift.distributed_partition`).
    """
    for i, dtype in enumerate(spec.cat_dtypes):
        naming = _category_naming(root.cats[i], dtype)
        for s in summaries:
            if s is not None:
                s.cats[i] = _category_strings(s.cats[i], dtype, naming)


def _partition_summary(part: Any, spec: _Spec, row_offset: int = 0) -> dict[str, Any]:
    """Summaries of one partition: the whole of it, and each window in it."""
    frame = _to_polars(part)
    out: dict[str, Any] = {"overall": _summarize(frame, spec, spec.grids), "windows": {}}
    q = spec.quality
    if q is not None and spec.window is None and spec.chunk_size is None:
        out["overall"].quality = _quality_summary(frame, q, q.grid, q.cap)
    if spec.window is not None and spec.time_column is not None:
        ts = _as_datetime(frame[spec.time_column], spec.time_column)
        key = ts.dt.truncate(spec.window)
    elif spec.chunk_size is not None:
        key = pl.Series((np.arange(frame.height, dtype=np.int64) + row_offset) // spec.chunk_size)
    else:
        return out
    keyed = frame.with_columns(key.alias("__window__")).filter(pl.col("__window__").is_not_null())
    for (k,), sub in keyed.partition_by("__window__", as_dict=True, include_key=False).items():
        out["windows"][k] = s = _summarize(sub, spec, spec.window_grids)
        if q is not None:
            s.quality = _quality_summary(sub, q, q.window_grid, q.window_cap)
    return out


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Merge partition summaries (one node of the reduction tree)."""
    overall = parts[0]["overall"]
    windows = dict(parts[0]["windows"])
    for p in parts[1:]:
        overall = overall.merge(p["overall"])
        for k, s in p["windows"].items():
            windows[k] = windows[k].merge(s) if k in windows else s
    return {"overall": overall, "windows": windows}


# -- statistics from summaries ----------------------------------------------------------------
def _bins(below: np.ndarray, n_valid: np.ndarray) -> np.ndarray:
    """Counts per bin from counts below each edge (as ``kernels.bin_counts``)."""
    zeros = np.zeros((below.shape[0], 1), dtype=np.int64)
    cum = np.concatenate([zeros, below, n_valid.astype(np.int64)[:, None]], axis=1)
    return cum[:, 1:] - cum[:, :-1]


def ks_wasserstein_bounds(
    grid: np.ndarray,
    ref_slots: np.ndarray,
    ref_offsets: np.ndarray,
    n_ref: int,
    cur_slots: np.ndarray,
    cur_offsets: np.ndarray,
    n_cur: int,
) -> tuple[float, float, float, float]:
    """KS and Wasserstein-1 from grid summaries: ``(ks, ks_error, w, w_error)``.

    ``ks <= ks_exact <= ks + ks_error`` and ``|w - w_exact| <= w_error``; ``grid``
    must hold the reference's minimum and maximum (see the module docstring).
    """
    n_g = grid.size
    if n_g == 0 or n_ref == 0 or n_cur == 0:
        return math.nan, math.nan, math.nan, math.nan
    fr = np.cumsum(ref_slots) / n_ref  # CDF after each slot
    fc = np.cumsum(cur_slots) / n_cur
    r_left, r_at = fr[0 : 2 * n_g : 2], fr[1 : 2 * n_g + 1 : 2]  # F(g^-), F(g)
    c_left, c_at = fc[0 : 2 * n_g : 2], fc[1 : 2 * n_g + 1 : 2]
    ks = float(max(np.max(np.abs(r_left - c_left)), np.max(np.abs(r_at - c_at))))
    # interior open intervals (g[k-1], g[k]), k = 1..G-1
    r0, r1, c0, c1 = r_at[:-1], r_left[1:], c_at[:-1], c_left[1:]
    up = np.maximum(r1 - c0, c1 - r0)
    ks_hi = max(ks, float(np.max(up))) if up.size else ks
    width = np.diff(grid)
    integral = (r1 - c1) * width - (ref_offsets[1:n_g] / n_ref - cur_offsets[1:n_g] / n_cur)
    low = np.abs(integral)
    cross = (r0 - c1 < 0) & (r1 - c0 > 0)
    high = np.where(
        cross,
        np.minimum(width * up, low + 2.0 * width * np.minimum(r1 - c0, c1 - r0)),
        low,
    )
    high = np.maximum(high, low)
    # below the reference minimum F_ref = 0, above its maximum F_ref = 1: exact
    tails = (cur_offsets[0] + cur_offsets[n_g]) / n_cur
    w = float(tails + np.sum((low + high) / 2.0))
    return ks, ks_hi - ks, w, float(np.sum((high - low) / 2.0))


@dataclass
class _Reference:
    """The reference side, prepared once: the plan, edges, grids, its own summaries."""

    plan: Any
    spec: _Spec
    std: np.ndarray
    summary: _Summary
    window_summary: _Summary | None
    levels: list[list[str]]
    min_count: int


def _reference(
    ref: pl.DataFrame, plan: Any, *, bins: int, min_count: int, grid: int,
    window_grid: int | None, time_column: str | None, window: str | None, chunk_size: int | None,
) -> _Reference:  # fmt: skip
    num = plan.numeric
    if num:
        values, n_valid = sorted_numeric(ref, num)
        s = K.SortedSample(values, n_valid)
        probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        edges = np.asarray(K.quantile_edges(np, s, probs))
        std = np.asarray(K.std(np, s))
    else:
        values, n_valid = np.empty((0, 0)), np.zeros(0, dtype=np.int64)
        edges, std = np.empty((0, bins - 1)), np.zeros(0)

    def grids_of(size: int) -> list[np.ndarray]:
        return [_order_statistics(values[i, : int(n_valid[i])], size) for i in range(len(num))]

    spec = _Spec(
        columns=plan.columns, numeric=num, categorical=plan.categorical, edges=edges,
        grids=grids_of(grid), window_grids=grids_of(window_grid) if window_grid else None,
        time_column=time_column, window=window, chunk_size=chunk_size,
        cat_dtypes=[ref.schema[c] for c in plan.categorical],
    )  # fmt: skip
    summary = _summarize(ref, spec, spec.grids)
    window_summary = _summarize(ref, spec, spec.window_grids) if window_grid else None
    _name_categories([summary, window_summary], summary, spec)
    return _Reference(plan, spec, std, summary, window_summary, [], min_count)


def _statistics(
    ref: _Reference, rs: _Summary, cs: _Summary, grids: list[np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The statistics ``ReferenceProfile.compare`` returns, from two summaries, and bounds."""
    from aiops_lab.drift.engine import STATISTICS
    from aiops_lab.pvalues import chi2_pvalue, ks_pvalue, null_rate_test

    plan = ref.plan
    n_num, n_cat = len(plan.numeric), len(plan.categorical)
    n_all = n_num + n_cat
    out: dict[str, Any] = {s: np.full(n_all, np.nan) for s in STATISTICS}
    bounds = {k: np.full(n_all, np.nan) for k in ("ks_error", "ks_upper", "ks_p_lower", "wasserstein_error")}  # fmt: skip
    ref_bins: list[Any] = []
    cur_bins: list[Any] = []
    edges: list[Any] = []
    unseen: list[list[str]] = [[] for _ in range(n_num)]
    const = np.zeros(n_all, dtype=bool)
    if n_num:
        rb, cb = _bins(rs.below, rs.n_valid), _bins(cs.below, cs.n_valid)
        div = K.divergences(np, rb, cb)
        out["n_ref"][:n_num] = rs.n_valid
        out["n_cur"][:n_num] = cs.n_valid
        for k in ("psi", "js", "hellinger", "linf"):
            out[k][:n_num] = np.asarray(div[k])
        for i in range(n_num):
            ks, ks_err, w, w_err = ks_wasserstein_bounds(
                grids[i], rs.slots[i], rs.offsets[i], int(rs.n_valid[i]),
                cs.slots[i], cs.offsets[i], int(cs.n_valid[i]),
            )  # fmt: skip
            out["ks"][i], out["wasserstein"][i] = ks, w
            bounds["ks_error"][i], bounds["wasserstein_error"][i] = ks_err, w_err
        out["wasserstein_norm"][:n_num] = out["wasserstein"][:n_num] / np.maximum(ref.std, 1e-3)
        const[:n_num] = (rs.lo == rs.hi) & (cs.lo == cs.hi) & (rs.lo == cs.lo)
        ref_bins += list(rb)
        cur_bins += list(cb)
        edges += list(ref.spec.edges)
    if n_cat:
        k_max = max(max((len(lv) for lv in ref.levels), default=0), 1)
        rc = np.zeros((n_cat, k_max), dtype=np.int64)
        cc = np.zeros((n_cat, k_max), dtype=np.int64)
        for i, levels in enumerate(ref.levels):
            rc[i, : len(levels)] = [rs.cats[i].get(lv, 0) for lv in levels]
            cc[i, : len(levels)] = [cs.cats[i].get(lv, 0) for lv in levels]
        chi2, dof = K.chi2_statistic(np, rc, cc)
        div = K.divergences(np, rc, cc)
        out["n_ref"][n_num:] = rc.sum(axis=1)
        out["n_cur"][n_num:] = cc.sum(axis=1)
        out["chi2"][n_num:] = chi2
        out["chi2_p"][n_num:] = chi2_pvalue(np.asarray(chi2), np.asarray(dof))
        for k in ("psi", "js", "hellinger", "linf"):
            out[k][n_num:] = np.asarray(div[k])
        const[n_num:] = np.asarray(dof) < 1
        for i, levels in enumerate(ref.levels):
            ref_bins.append(rc[i, : len(levels)])
            cur_bins.append(cc[i, : len(levels)])
            unseen.append([lv for j, lv in enumerate(levels) if cc[i, j] > 0 and rc[i, j] == 0])
        edges += [None] * n_cat
    out["null_ref"] = rs.nulls / max(rs.rows, 1)
    out["null_cur"] = cs.nulls / max(cs.rows, 1)
    out["null_p"] = null_rate_test(rs.nulls, rs.rows, cs.nulls, cs.rows)
    if n_num:
        n_r, n_c = out["n_ref"][:n_num], out["n_cur"][:n_num]
        out["ks_p"][:n_num] = ks_pvalue(out["ks"][:n_num], n_r, n_c)
        out["p_value"][:n_num] = out["ks_p"][:n_num]
        bounds["ks_upper"][:n_num] = np.minimum(out["ks"][:n_num] + bounds["ks_error"][:n_num], 1.0)
        bounds["ks_p_lower"][:n_num] = ks_pvalue(bounds["ks_upper"][:n_num], n_r, n_c)
    if n_cat:
        out["p_value"][n_num:] = out["chi2_p"][n_num:]
        for k in ("ks_error", "wasserstein_error"):
            bounds[k][n_num:] = 0.0
    k = len(plan.columns)
    reason = untested_reasons(out["n_ref"][:k], out["n_cur"][:k], const[:k], ref.min_count)
    untestable = np.asarray([r is not None for r in reason])
    for key in STATISTICS:
        if key not in ("n_ref", "n_cur", "null_ref", "null_cur", "null_p"):
            out[key][untestable] = np.nan
    for key in bounds:
        bounds[key][untestable] = np.nan
    out.update(
        reason=reason, ref_bins=ref_bins, cur_bins=cur_bins, edges=edges, unseen=unseen,
        levels=[None] * n_num + list(ref.levels),
    )  # fmt: skip
    return out, bounds


# -- the reduction ---------------------------------------------------------------------------
def _reduce(
    current: Any,
    spec: _Spec,
    *,
    split_every: int,
    client: Any,
    offsets: list[int] | None,
    progress: bool = True,
) -> dict[str, Any]:
    """Summaries of every partition of ``current``, merged in a tree of ``split_every``."""
    import dask

    parts = current.to_delayed()
    spec_node = dask.delayed(spec, pure=True, traverse=False)
    summarize = dask.delayed(_partition_summary, pure=True)
    merge = dask.delayed(_merge, pure=True)
    level = [summarize(p, spec_node, offsets[i] if offsets else 0) for i, p in enumerate(parts)]
    while len(level) > 1:
        level = [merge(*level[i : i + split_every]) for i in range(0, len(level), split_every)]
    from aiops_lab.progress import dask_compute

    return dask_compute(level[0], client=client, enabled=progress)


def _materialize(frame: Any) -> pl.DataFrame:
    return _to_polars(frame.compute())


def _check_time_dtype(dtype: pl.DataType, column: str) -> None:
    if (dtype.is_temporal() and dtype != pl.Time) or dtype == pl.Utf8:
        return
    msg = f"Time column {column!r} of the current data has type {dtype}; expected a Datetime, Date or ISO string."
    raise InputError(msg)


def _binary_flags(
    current: Any, label: str, prediction: str | None, client: Any
) -> tuple[bool, bool]:
    """Whether the current labels, and predictions, take only the values 0 and 1."""
    import dask

    def only01(s: Any) -> Any:
        v = s.dropna().astype("float64")
        return ((v == 0.0) | (v == 1.0)).all()

    jobs = [only01(current[label])]
    if prediction is not None:
        jobs.append(only01(current[prediction]))
    got = client.gather(client.compute(jobs)) if client is not None else dask.compute(*jobs)
    flags = [bool(g) for g in got]
    return flags[0], flags[1] if prediction is not None else False


def compare_dask(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    time_column: str | None = None,
    window: str | None = None,
    chunk_size: int | None = None,
    alpha: float = 0.05,
    correction: str = "bh",
    bins: int = 10,
    decide_by: str = "p_value",
    threshold: float | None = None,
    min_count: int = 5,
    null_tolerance: float = 0.01,
    prediction_column: str | None = None,
    label_column: str | None = None,
    task: str = "auto",
    multivariate: bool | str | Sequence[str] = False,
    embeddings: str | Sequence[str] | None = None,
    estimate_quality: bool = False,
    sample_rows: int = 5_000,
    seed: int = 0,
    backend: str | None = None,
    progress: bool | None = None,
    grid: int = DEFAULT_GRID,
    window_grid: int = DEFAULT_WINDOW_GRID,
    split_every: int = DEFAULT_SPLIT_EVERY,
    client: Any = None,
) -> Any:
    """:func:`aiops_lab.drift.compare` for Dask DataFrames (``compare`` calls this).

    ``current`` (and ``reference``) may be Dask or dask-cudf DataFrames; a Dask
    reference is computed into memory. The computation runs on ``client``, or on the
    scheduler Dask would use (the active ``distributed.Client``, if any). ``grid`` and
    ``window_grid`` set the KS / Wasserstein resolution overall and per window; the
    error bounds are in ``result.params["dask"]`` (:func:`error_bounds` as a table),
    the AUC's in ``params["dask"]["quality_error_bounds"]``. ``multivariate``,
    ``embeddings`` and ``estimate_quality`` run on a row sample of about ``1.2 *
    sample_rows`` rows per window. The parameters shared with ``compare`` mean the
    same; see :mod:`aiops_lab.drift.distributed_sample` for what runs on a sample and
    the module docstring for what is not computed.
    """
    from aiops_lab.backend import backend_info
    from aiops_lab.drift import analysis as A
    from aiops_lab.drift.quality import resolve_task
    from aiops_lab.drift.result import Decision, DriftResult
    from aiops_lab.drift.sources import plan_columns, read_frame

    started = time.perf_counter()
    A._check_params(
        alpha, correction, bins, decide_by, threshold, min_count, window, chunk_size,
        time_column, task,
    )  # fmt: skip
    for name, value in (("grid", grid), ("window_grid", window_grid), ("split_every", split_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ParameterError(name, "an integer >= 2", value)
    if not isinstance(sample_rows, int) or isinstance(sample_rows, bool) or sample_rows < 50:
        raise ParameterError("sample_rows", "an integer >= 50", sample_rows)
    if chunk_size is not None and time_column is not None:
        raise ParameterError(
            "chunk_size", "used without `time_column` on Dask inputs (row order)", chunk_size,
            "Use window= with time_column= for time windows.",
        )  # fmt: skip
    info = backend_info(backend if backend in (None, "numpy") else "numpy")
    if not is_dask_frame(current):  # only the reference is a Dask frame: it is the small side
        ref_frame = _materialize(reference) if is_dask_frame(reference) else reference
        from aiops_lab.drift.analysis import compare

        kwargs = {k: v for k, v in locals().items() if k in compare.__kwdefaults__}
        return compare(ref_frame, current, **kwargs)
    ref = (
        _materialize(reference) if is_dask_frame(reference) else read_frame(reference, "reference")
    )
    if ref.height == 0:
        raise EmptyInputError("The reference data has no rows; a drift comparison needs rows on both sides.")  # fmt: skip
    meta = _to_polars(current._meta_nonempty)
    for name, col in (
        ("time_column", time_column),
        ("prediction_column", prediction_column),
        ("label_column", label_column),
    ):
        if col is not None and col not in meta.columns:
            raise ColumnNotFoundError(col, f"the current data (from `{name}=`)", meta.columns)
    if time_column is not None:
        _check_time_dtype(meta.schema[time_column], time_column)
        if time_column in ref.columns:
            ref = A._ensure_time(ref, time_column, "reference")
    # task and the 0/1 prediction rule, as compare() decides them (one small pass for labels)
    cur_pred_binary = False
    if not (label_column and prediction_column):
        task_kind = resolve_task(ref, meta, label_column, prediction_column, task)
    else:  # dtype checks on the schema; the values from one pass over two columns
        task_kind = resolve_task(ref, meta, label_column, prediction_column, "binary" if task == "auto" else task)  # fmt: skip
        # an integer prediction with missing values is float64 in pandas partitions: 0/1 as in memory
        pred_type = meta.schema[prediction_column]
        pred_01 = _int_like(pred_type) or (pred_type.is_float() and _int_like(ref.schema[prediction_column]))  # fmt: skip
        label_01, cur_pred_binary = _binary_flags(
            current, label_column, prediction_column if pred_01 else None, client
        )
        if task == "auto":
            ref_01 = set(ref[label_column].drop_nulls().cast(pl.Float64).unique().to_list()) <= {0.0, 1.0}  # fmt: skip
            task_kind = "binary" if (ref_01 and label_01) else "regression"
        cur_pred_binary = cur_pred_binary and pred_01
    cat_extra = [c for c in (label_column,) if c and task_kind == "binary"]
    if prediction_column and task_kind == "binary" and cur_pred_binary:
        cat_extra.append(prediction_column)
    exclude = [c for c in (time_column,) if c]
    plan = plan_columns(
        ref, meta, columns=columns, categorical=[*(categorical or []), *cat_extra], exclude=exclude
    )
    roles = {c: "feature" for c in plan.columns}
    if prediction_column in roles:
        roles[prediction_column] = "prediction"
    if label_column in roles:
        roles[label_column] = "label"
    deeper = _Deeper.plan(
        ref, current, plan=plan, roles=roles, multivariate=multivariate, embeddings=embeddings,
        estimate_quality=estimate_quality, prediction_column=prediction_column,
        label_column=label_column, task=task_kind, time_column=time_column, chunk_size=chunk_size,
    )  # fmt: skip
    windowed = window is not None or chunk_size is not None
    prep = _reference(
        ref, plan, bins=bins, min_count=min_count, grid=grid,
        window_grid=window_grid if windowed else None, time_column=time_column, window=window,
        chunk_size=chunk_size,
    )  # fmt: skip
    quality_cols: list[str] = []
    if prediction_column and label_column and task_kind is not None:
        scores = ref[prediction_column].cast(pl.Float64).drop_nulls().to_numpy()
        scores = np.sort(scores[np.isfinite(scores)])
        prep.spec.quality = _QualitySpec(
            prediction_column, label_column, task_kind, grid=_order_statistics(scores, grid),
            window_grid=_order_statistics(scores, window_grid), cap=grid, window_cap=window_grid,
        )  # fmt: skip
        quality_cols = [prediction_column, label_column]
    needed = list(
        dict.fromkeys(
            [*plan.columns, *quality_cols, *([time_column] if window is not None else [])]
        )
    )
    cur = current[needed]
    offsets = None
    if chunk_size is not None:
        import dask

        sizes = cur.map_partitions(len).to_delayed()
        lengths = client.gather(client.compute(sizes)) if client is not None else dask.compute(*sizes)  # fmt: skip
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64).tolist()
    merged = _reduce(
        cur, prep.spec, split_every=split_every, client=client, offsets=offsets,
        progress=progress is not False,
    )  # fmt: skip
    cs = merged["overall"]
    if cs.rows == 0:
        raise EmptyInputError("The current data has no rows; a drift comparison needs rows on both sides.")  # fmt: skip
    _name_categories([cs, *merged["windows"].values()], cs, prep.spec)
    # categories: the union of both sides, sorted as strings (as category_codes does)
    prep.levels = [
        sorted(set(prep.summary.cats[i]) | set(cs.cats[i])) for i in range(len(plan.categorical))
    ]
    params: dict[str, Any] = {
        "columns": plan.columns, "categorical": plan.categorical, "time_column": time_column, "window": window,
        "chunk_size": chunk_size, "alpha": alpha, "correction": correction, "bins": bins, "decide_by": decide_by,
        "threshold": threshold, "min_count": min_count, "null_tolerance": null_tolerance, "prediction_column": prediction_column,
        "label_column": label_column, "task": task_kind, "backend": info.name,
    }  # fmt: skip
    rule = Decision(alpha, correction, decide_by, threshold, null_tolerance)
    overall, bounds = _statistics(prep, prep.summary, cs, prep.spec.grids)
    table = A._table(plan, overall, roles, rule)
    distributions = A._distributions(plan, overall)
    windows = quality = quality_bounds = None
    window_bounds: dict[str, list[Any]] = {}
    if windowed:
        windows, window_bounds = _windows(prep, merged["windows"], roles, rule, window, chunk_size, time_column)  # fmt: skip
    if prep.spec.quality is not None:
        if windowed:
            parts = [
                (start, end, merged["windows"][k].quality, merged["windows"][k].rows)
                for k, start, end in _window_labels(merged["windows"], window, chunk_size)
            ]
        else:
            parts = [(None, None, cs.quality, cs.rows)]
        quality, quality_bounds = _quality_table(ref, prep.spec.quality, parts)
    extras: dict[str, Any] = {}
    deeper_rows = None
    if deeper.wanted:
        extras, deeper_rows = deeper.run(
            ref, current, merged, window=window, sample_rows=sample_rows, seed=seed,
            alpha=alpha, correction=correction, backend=backend, progress=progress, client=client,
        )  # fmt: skip
        for col in deeper.embeddings:
            plan.skipped.pop(col, None)
        params.update(multivariate=deeper.multivariate, embeddings=deeper.embeddings,
                      estimate_quality=estimate_quality, sample_rows=sample_rows, seed=seed)  # fmt: skip
    params["dask"] = {
        "partitions": int(current.npartitions),
        "grid": grid,
        "window_grid": window_grid if windowed else None,
        "split_every": split_every,
        "error_bounds": _bounds_records(plan.columns, bounds),
        "window_error_bounds": window_bounds or None,
        "current_moments": {
            c: {
                "mean": float(cs.mean[i]),
                "std": float(math.sqrt(cs.m2[i] / cs.n_valid[i])) if cs.n_valid[i] else math.nan,
            }
            for i, c in enumerate(plan.numeric)
        },
        "quality_error_bounds": quality_bounds,
        "deeper_sample_rows": deeper_rows,
        "not_computed": [],
    }
    return DriftResult(
        table=table, windows=windows, distributions=distributions, quality=quality,
        params=params, skipped=plan.skipped, backend=info, elapsed_s=time.perf_counter() - started,
        n_ref=ref.height, n_cur=cs.rows, extras=extras,
    )  # fmt: skip


def _bounds_records(
    columns: list[str], bounds: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    return {c: {k: float(v[i]) for k, v in bounds.items()} for i, c in enumerate(columns)}


def _windows(
    prep: _Reference, summaries: dict[Any, _Summary], roles: dict[str, str], rule: Any,
    window: str | None, chunk_size: int | None, time_column: str | None,
) -> tuple[pl.DataFrame, dict[str, list[Any]]]:  # fmt: skip
    from aiops_lab.drift.analysis import _table

    if not summaries:
        what = f"window={window!r} over {time_column!r}" if window else f"chunk_size={chunk_size}"
        raise EmptyInputError(f"{what} yields no rows (is the time column all null?).")
    parts = []
    rec: dict[str, list[Any]] = {k: [] for k in ("window_start", "column", "ks_error", "ks_upper", "ks_p_lower", "wasserstein_error")}  # fmt: skip
    for key, start, end in _window_labels(summaries, window, chunk_size):
        stats, bounds = _statistics(
            prep, prep.window_summary, summaries[key], prep.spec.window_grids
        )
        part = _table(prep.plan, stats, roles, rule)
        parts.append(
            part.with_columns(pl.lit(start).alias("window_start"), pl.lit(end).alias("window_end"))
        )
        for i, c in enumerate(prep.plan.columns):
            rec["window_start"].append(start)
            rec["column"].append(c)
            for k, v in bounds.items():
                rec[k].append(float(v[i]))
    frame = pl.concat(parts, how="vertical_relaxed")
    lead = ["window_start", "window_end"]
    return frame.select(lead + [c for c in frame.columns if c not in lead]), rec


def error_bounds(result: Any, *, windows: bool = False, quality: bool = False) -> pl.DataFrame:
    """The error bounds of a Dask comparison as a table.

    One row per column (per window and column with ``windows=True``): ``ks_error``
    (``ks <= exact <= ks + ks_error``), ``ks_upper``, ``ks_p_lower`` (the exact p-value
    lies in ``[ks_p_lower, ks_p]``) and ``wasserstein_error`` (``|w - exact| <=``).
    Zero for categorical columns, null where the column was not tested.

    With ``quality=True``, one row per window of realized model quality (one row without
    windows): ``auc_error`` bounds ``|auc - exact|`` (0 when exact). The other quality
    metrics are exact on Dask.
    """
    info = result.params.get("dask")
    if info is None:
        raise InputError("This result was computed in memory; its statistics are exact.")
    if quality:
        rec = info.get("quality_error_bounds")
        if not rec:
            raise InputError(
                "This result has no AUC to bound: realized quality needs a binary model's "
                "scores and labels (prediction_column and label_column); regression metrics, "
                "accuracy and positive rate are exact on Dask."
            )
        return pl.DataFrame(rec, strict=False)
    if windows:
        rec = info.get("window_error_bounds")
        if not rec:
            raise InputError("This result has no windows.")
        return pl.DataFrame(rec, strict=False).fill_nan(None)
    rows = [{"column": c, **v} for c, v in info["error_bounds"].items()]
    return pl.DataFrame(rows).fill_nan(None)

"""Drift in the joint distribution and in embedding space: the MMD test and friends.

>>> from aiops_lab import drift
>>> drift.mmd(reference_matrix, current_matrix).p_value            # doctest: +SKIP
>>> drift.embedding_drift("bundled:credit_reference", "bundled:credit_production",
...                       column="purpose_embedding", time_column="timestamp", window="1d")  # doctest: +SKIP

Per-column tests see each marginal distribution alone; a shift in how columns move
together (or in a 768-dimensional embedding) passes them by. The maximum mean
discrepancy compares whole samples through a Gaussian kernel; its permutation test
needs ``permutations + 1`` passes over all pairs of points, which is matrix-product
work that runs on the GPU when CuPy is there (see :mod:`aiops_lab.drift.mv_kernels`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, InputError, ParameterError
from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

__all__ = ["EmbeddingDriftResult", "MMDResult", "as_matrices", "embedding_drift", "mmd"]

#: pooled points above which the median heuristic uses a seeded random subset
MEDIAN_POINTS = 10_000


# -- input --------------------------------------------------------------------------------
def _is_array(obj: Any) -> bool:
    """NumPy, CuPy or any array-API array (not a frame, list or path)."""
    if isinstance(obj, np.ndarray) or hasattr(obj, "__array_namespace__"):
        return True
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - a dependency
        return False
    return bool(array_api_compat.is_array_api_obj(obj)) and not hasattr(obj, "columns")


def _check_matrix(x: Any, name: str) -> Any:
    if len(x.shape) != 2:
        raise InputError(
            f"The {name} array has shape {tuple(x.shape)}; expected a 2-D array "
            "(one row per point, one column per dimension)."
        )
    if x.shape[0] == 0:
        raise EmptyInputError(f"The {name} array has no rows.")
    return x


def as_matrices(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | str | None = None,
    nan_policy: str = "raise",
    standardize: bool = True,
) -> tuple[Any, Any, list[str], str]:
    """Turn two samples into ``(n, d)`` float matrices; return them, the names and the kind.

    - 2-D arrays (NumPy, CuPy, any array-API array) pass through unchanged.
    - A frame whose selected column is a list/array column (an embedding) is stacked.
    - Otherwise the numeric columns (``columns`` or every shared numeric one) are
      standardized with the reference's mean and standard deviation, so no column
      dominates the distances by its units.

    ``nan_policy="raise"`` stops at rows with a null or NaN, naming the column;
    ``"drop"`` leaves those rows out (on each side).
    """
    if nan_policy not in ("raise", "drop"):
        raise ParameterError("nan_policy", "'raise' or 'drop'", nan_policy)
    if _is_array(reference) or _is_array(current):
        if not (_is_array(reference) and _is_array(current)):
            raise InputError(
                "Pass both samples as 2-D arrays, or both as frames; got "
                f"{type(reference).__name__} and {type(current).__name__}."
            )
        ref = _check_matrix(reference, "reference")
        cur = _check_matrix(current, "current")
        if ref.shape[1] != cur.shape[1]:
            raise InputError(
                f"The reference has {ref.shape[1]} dimensions but the current data has "
                f"{cur.shape[1]}; both samples must have the same number of columns."
            )
        from aiops_lab.backend import namespace_of

        xp = namespace_of(ref, cur)
        ref, cur = (
            _drop_or_raise_array(xp, a, side, nan_policy)
            for a, side in ((ref, "reference"), (cur, "current"))
        )
        names = [f"dim_{i}" for i in range(ref.shape[1])]
        return ref, cur, names, "array"
    import polars as pl

    from aiops_lab.drift.sources import read_frame

    ref_f = read_frame(reference, "reference")
    cur_f = read_frame(current, "current")
    wanted = (
        [columns] if isinstance(columns, str) else (list(columns) if columns is not None else None)
    )
    if wanted is not None:
        for c in wanted:
            if c not in ref_f.columns:
                raise ColumnNotFoundError(c, "the reference data", ref_f.columns)
            if c not in cur_f.columns:
                raise ColumnNotFoundError(c, "the current data", cur_f.columns)
    if wanted is not None and len(wanted) == 1 and _is_vector(ref_f.schema[wanted[0]]):
        col = wanted[0]
        ref = _stack(ref_f, col, "reference", nan_policy)
        cur = _stack(cur_f, col, "current", nan_policy)
        if ref.shape[1] != cur.shape[1]:
            raise InputError(
                f"Embedding column {col!r} has vectors of length {ref.shape[1]} in the reference "
                f"but {cur.shape[1]} in the current data; both must come from the same model."
            )
        return ref, cur, [col], "embedding"
    if wanted is None:
        wanted = [
            c
            for c in ref_f.columns
            if c in cur_f.columns and ref_f.schema[c].is_numeric() and cur_f.schema[c].is_numeric()
        ]
        if not wanted:
            raise InputError(
                "No numeric column is shared by both samples; pass `columns=[...]` with numeric "
                "columns, or one embedding (list/array) column."
            )
    for c in wanted:
        for side, frame in (("reference", ref_f), ("current", cur_f)):
            dtype = frame.schema[c]
            if not (dtype.is_numeric() or dtype == pl.Boolean):
                raise InputError(
                    f"Column {c!r} ({side}) has type {dtype}; the joint tests need numeric columns "
                    "(or a single list/array embedding column)."
                )
    ref = _numeric(ref_f, wanted, "reference", nan_policy)
    cur = _numeric(cur_f, wanted, "current", nan_policy)
    if standardize:
        mean = ref.mean(axis=0)
        scale = ref.std(axis=0)
        scale[~(scale > 0)] = 1.0  # a constant reference column is only centred
        ref = (ref - mean) / scale
        cur = (cur - mean) / scale
    return ref, cur, wanted, "columns"


def _is_vector(dtype: Any) -> bool:
    import polars as pl

    return isinstance(dtype, (pl.List, pl.Array))


def _drop_or_raise_array(xp: Any, a: Any, side: str, nan_policy: str) -> Any:
    bad = ~xp.all(xp.isfinite(a), axis=1)
    n_bad = int(xp.sum(xp.astype(bad, xp.int64)))
    if n_bad == 0:
        return a
    if nan_policy == "raise":
        raise InputError(
            f"The {side} array has {n_bad} row(s) with NaN or infinite values; clean them, or "
            "pass nan_policy='drop' to leave those rows out."
        )
    return a[~bad, :]


def _numeric(frame: pl.DataFrame, cols: list[str], side: str, nan_policy: str) -> np.ndarray:
    import polars as pl

    sub = frame.select(pl.col(c).cast(pl.Float64) for c in cols)
    bad = sub.select(
        pl.any_horizontal(pl.col(c).is_null() | ~pl.col(c).is_finite() for c in cols)
    ).to_series()
    if bad.any():
        if nan_policy == "raise":
            counts = {
                c: int(sub[c].is_null().sum() + (~sub[c].is_finite()).sum())
                for c in cols
                if sub[c].is_null().any() or (~sub[c].fill_null(0.0).is_finite()).any()
            }
            raise InputError(
                f"The {side} data has rows with null/NaN values in {counts}; the joint tests need "
                "complete rows. Impute those columns, leave them out of `columns=`, or pass "
                "nan_policy='drop' to leave the incomplete rows out."
            )
        sub = sub.filter(~bad)
        if sub.height == 0:
            raise EmptyInputError(
                f"No complete row is left in the {side} data after dropping nulls."
            )
    return sub.to_numpy().astype(np.float64, copy=False)


def _stack(frame: pl.DataFrame, col: str, side: str, nan_policy: str) -> np.ndarray:
    import polars as pl

    s = frame[col]
    if isinstance(s.dtype, pl.Array):
        keep = s.is_not_null()
        if not keep.all():
            if nan_policy == "raise":
                raise InputError(
                    f"Embedding column {col!r} ({side}) has {int((~keep).sum())} null row(s); "
                    "pass nan_policy='drop' to leave them out."
                )
            s = s.filter(keep)
        out = s.to_numpy()
    else:
        lengths = s.list.len()
        keep = lengths.is_not_null()
        if not keep.all() and nan_policy == "raise":
            raise InputError(
                f"Embedding column {col!r} ({side}) has {int((~keep).sum())} null row(s); "
                "pass nan_policy='drop' to leave them out."
            )
        s = s.filter(keep)
        lengths = lengths.filter(keep)
        if s.len() == 0:
            raise EmptyInputError(f"Embedding column {col!r} ({side}) has no vectors.")
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo != hi:
            raise InputError(
                f"Embedding column {col!r} ({side}) holds vectors of different lengths "
                f"({lo} to {hi}); every embedding must have the same length."
            )
        out = np.asarray(s.explode().to_numpy(), dtype=np.float64).reshape(-1, lo)
    out = np.asarray(out, dtype=np.float64)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        if nan_policy == "raise":
            raise InputError(
                f"Embedding column {col!r} ({side}) has {int(bad.sum())} vector(s) with NaN or "
                "infinite entries; pass nan_policy='drop' to leave them out."
            )
        out = out[~bad]
    if out.shape[0] == 0:
        raise EmptyInputError(f"Embedding column {col!r} ({side}) has no complete vectors.")
    return out


# -- device placement -----------------------------------------------------------------------
def _namespace(backend: str | None, arrays: Sequence[Any]) -> tuple[Any, str]:
    import array_api_compat

    from aiops_lab.backend import get_namespace

    if not isinstance(arrays[0], np.ndarray):
        xp = array_api_compat.array_namespace(*arrays)
        return xp, "cupy" if array_api_compat.is_cupy_namespace(xp) else xp.__name__.split(".")[-1]
    xp, info = get_namespace(backend)
    return xp, info.name


def _resolve_dtype(xp: Any, backend_name: str, dtype: str | None) -> Any:
    if dtype is None:
        dtype = "float32" if backend_name == "cupy" else "float64"
    if dtype not in ("float32", "float64"):
        raise ParameterError(
            "dtype", "'float32' or 'float64' (or None for the backend's default)", dtype
        )
    return getattr(xp, dtype)


def _block_budget(xp: Any) -> int:
    import array_api_compat

    from aiops_lab.drift.mv_kernels import DEFAULT_BLOCK_BYTES

    if array_api_compat.is_cupy_namespace(xp):
        import cupy

        free, _total = cupy.cuda.runtime.memGetInfo()
        return int(min(2 * 2**30, max(DEFAULT_BLOCK_BYTES, free // 10)))
    return DEFAULT_BLOCK_BYTES


def _to_device(xp: Any, a: Any, dtype: Any) -> Any:
    from aiops_lab.backend import from_numpy

    if isinstance(a, np.ndarray):
        a = from_numpy(np.ascontiguousarray(a), xp)
    return xp.astype(a, dtype) if a.dtype != dtype else a


def _subsample_rows(xp: Any, a: Any, k: int | None, rng: np.random.Generator) -> Any:
    n = a.shape[0]
    if k is None or n <= k:
        return a
    idx = np.sort(rng.choice(n, size=k, replace=False))
    from aiops_lab.backend import from_numpy

    return xp.take(a, from_numpy(idx, xp) if not isinstance(a, np.ndarray) else idx, axis=0)


# -- MMD ------------------------------------------------------------------------------------
class MMDResult(Result):
    """The maximum mean discrepancy between two samples, with its permutation p-value."""

    analysis = "mmd"
    default_chart = "null"

    def __init__(
        self,
        *,
        statistic: float,
        p_value: float,
        null: np.ndarray,
        sigma: float,
        n_reference: int,
        n_current: int,
        dim: int,
        columns: list[str],
        kind: str,
        params: dict[str, Any],
    ) -> None:
        self.statistic = float(statistic)
        self.p_value = float(p_value)
        self.null = np.asarray(null, dtype=np.float64)
        self.sigma = float(sigma)
        self.n_reference = int(n_reference)
        self.n_current = int(n_current)
        self.dim = int(dim)
        self.columns = list(columns)
        self.kind = kind
        self._params = params

    @property
    def drift(self) -> bool:
        return self.p_value < self._params["alpha"]

    @property
    def table(self) -> pl.DataFrame:
        import polars as pl

        return pl.DataFrame(
            {
                "test": ["mmd"],
                "statistic": [self.statistic],
                "p_value": [self.p_value],
                "sigma": [self.sigma],
                "null_mean": [float(self.null.mean()) if self.null.size else math.nan],
                "null_q95": [float(np.quantile(self.null, 0.95)) if self.null.size else math.nan],
                "n_reference": [self.n_reference],
                "n_current": [self.n_current],
                "dim": [self.dim],
                "drift": [self.drift],
            }
        )

    @property
    def summary(self) -> dict[str, Any]:
        what = (
            f"embedding {self.columns[0]!r}"
            if self.kind == "embedding"
            else f"{self.dim} columns jointly"
        )
        if self.drift:
            headline = (
                f"Joint drift: MMD^2 = {self.statistic:.3g} on {what}, p = {self.p_value:.3g} "
                f"({self._params['permutations']} permutations)."
            )
        else:
            headline = f"No joint drift found on {what} (MMD p = {self.p_value:.3g})."
        return {
            "alert": self.drift,
            "headline": headline,
            "mmd2": self.statistic,
            "mmd_p_value": self.p_value,
            "sigma": self.sigma,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "dim": self.dim,
        }

    def tables(self) -> dict[str, pl.DataFrame]:
        import polars as pl

        return {"table": self.table, "null": pl.DataFrame({"mmd2": self.null})}

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        kind = kind or self.default_chart
        if kind != "null":
            raise ParameterError("kind", "'null'", kind)
        return _null_chart(self)


def _null_chart(result: MMDResult) -> alt.TopLevelMixin:
    import altair as alt
    import polars as pl

    null = pl.DataFrame({"mmd2": result.null})
    bars = (
        alt.Chart(null)
        .mark_bar(color="#98a2b3")
        .encode(
            x=alt.X("mmd2:Q", bin=alt.Bin(maxbins=30), title="MMD^2 under permutation"),
            y=alt.Y("count():Q", title="permutations"),
        )
    )
    color = "#d92d20" if result.drift else "#067647"
    rule = (
        alt.Chart(pl.DataFrame({"observed": [result.statistic]}))
        .mark_rule(color=color, strokeWidth=2)
        .encode(x="observed:Q", tooltip=["observed:Q"])
    )
    return (bars + rule).properties(
        title=f"Observed MMD^2 against its permutation null (p = {result.p_value:.3g})",
        width=420,
        height=180,
    )


def mmd(
    reference: Any,
    current: Any,
    *,
    permutations: int = 100,
    bandwidth: str | float = "median",
    seed: int = 0,
    columns: Sequence[str] | str | None = None,
    max_rows: int | None = None,
    alpha: float = 0.05,
    nan_policy: str = "raise",
    median_points: int = MEDIAN_POINTS,
    dtype: str | None = None,
    backend: str | None = None,
    progress: bool | None = None,
) -> MMDResult:
    """Two-sample test with the maximum mean discrepancy (Gaussian kernel).

    Parameters
    ----------
    reference, current
        2-D arrays (NumPy or CuPy, one row per point), or frames / paths: their numeric
        ``columns`` (standardized on the reference) or one list/array embedding column.
    permutations
        Random re-splits of the pooled sample; the p-value is
        ``(1 + #{permuted MMD^2 >= observed}) / (1 + permutations)``.
    bandwidth
        ``"median"``: sigma is the median Euclidean distance between pooled points
        (over a seeded random ``median_points`` of them when the pool is larger); a
        positive float sets sigma. The kernel is ``exp(-||x - y||^2 / (2 sigma^2))``.
    seed
        Fixes the permutations, the subsamples and so the p-value, on every backend.
    max_rows
        Use at most this many rows per side (a seeded random subset).
    dtype
        Working precision: ``"float64"`` (default on the CPU) or ``"float32"`` (default on
        the GPU; sums are still accumulated in float64).
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"`` for frames and NumPy input; CuPy arrays stay
        on their device.

    Returns
    -------
    MMDResult
        ``.statistic`` (unbiased MMD^2), ``.p_value``, ``.null`` (the permuted values),
        ``.sigma``; drift when ``p_value < alpha``.
    """
    if (
        not isinstance(permutations, (int, np.integer))
        or isinstance(permutations, bool)
        or permutations < 1
    ):
        raise ParameterError("permutations", "a positive integer", permutations)
    if not 0.0 < alpha < 1.0:
        raise ParameterError("alpha", "a number between 0 and 1", alpha)
    if max_rows is not None and max_rows < 2:
        raise ParameterError("max_rows", "None or an integer >= 2", max_rows)
    if isinstance(bandwidth, str):
        if bandwidth != "median":
            raise ParameterError("bandwidth", "'median' or a positive number (sigma)", bandwidth)
    elif not (isinstance(bandwidth, (int, float)) and math.isfinite(bandwidth) and bandwidth > 0):
        raise ParameterError("bandwidth", "'median' or a positive number (sigma)", bandwidth)

    ref, cur, names, kind = as_matrices(reference, current, columns=columns, nan_policy=nan_policy)
    xp, backend_name = _namespace(backend, (ref, cur))
    rng = np.random.default_rng(seed)
    ref = _subsample_rows(xp, ref, max_rows, rng)
    cur = _subsample_rows(xp, cur, max_rows, rng)
    m, n = int(ref.shape[0]), int(cur.shape[0])
    _check_sizes(m, n, permutations)

    work = _resolve_dtype(xp, backend_name, dtype)
    observed, null, p_value, sigma = _mmd_test(
        xp,
        _to_device(xp, ref, work),
        _to_device(xp, cur, work),
        permutations=permutations,
        bandwidth=bandwidth,
        seed=seed,
        median_points=median_points,
        progress=progress,
    )
    params = {
        "permutations": int(permutations),
        "bandwidth": bandwidth if isinstance(bandwidth, str) else float(bandwidth),
        "sigma_from": (
            "given"
            if not isinstance(bandwidth, str)
            else (
                "all pooled points"
                if m + n <= median_points
                else f"{median_points} random pooled points"
            )
        ),
        "seed": int(seed),
        "max_rows": max_rows,
        "alpha": float(alpha),
        "dtype": "float32" if work == xp.float32 else "float64",
        "backend": backend_name,
        "columns": names,
        "kind": kind,
    }
    return MMDResult(
        statistic=observed,
        p_value=p_value,
        null=null,
        sigma=sigma,
        n_reference=m,
        n_current=n,
        dim=int(ref.shape[1]),
        columns=names,
        kind=kind,
        params=params,
    )


def _mmd_test(
    xp: Any,
    ref: Any,
    cur: Any,
    *,
    permutations: int,
    bandwidth: str | float,
    seed: int,
    median_points: int,
    progress: bool | None,
) -> tuple[float, np.ndarray, float, float]:
    """(observed MMD^2, permuted values, p-value, sigma) for two device matrices."""
    from aiops_lab.backend import from_numpy, to_numpy
    from aiops_lab.drift import mv_kernels as MK

    m, n = int(ref.shape[0]), int(cur.shape[0])
    work = ref.dtype
    z = xp.concat([ref, cur], axis=0)
    budget = _block_budget(xp)
    if bandwidth == "median":
        pts = z
        if m + n > median_points:
            pick = np.random.default_rng([seed, 1]).choice(m + n, size=median_points, replace=False)
            pts = xp.take(z, from_numpy(np.sort(pick), xp), axis=0)
        sigma = MK.median_distance(xp, pts, block_bytes=budget)
        if not sigma > 0:
            raise InputError(
                "The median distance between pooled points is 0 (most points are identical), so "
                "the median bandwidth is undefined; pass bandwidth=<sigma> explicitly."
            )
    else:
        sigma = float(bandwidth)
    weights = MK.permutation_weights(xp, m, n, permutations, seed, work)
    bar = _progress(progress, m + n, budget, work, xp)
    stats = MK.mmd_stats(xp, z, weights, 1.0 / (2.0 * sigma**2), block_bytes=budget, progress=bar)
    values = to_numpy(MK.mmd_from_stats(xp, stats, m, n))
    observed, null = float(values[0]), values[1:]
    # ties count against the observed value; a tolerance absorbs float rounding
    rel = 1e-6 if work == xp.float32 else 1e-12
    tol = 1e-15 + rel * float(np.abs(values).max())
    p_value = (1.0 + float(np.sum(null >= observed - tol))) / (1.0 + permutations)
    return observed, null, p_value, sigma


def _check_sizes(m: int, n: int, permutations: int) -> None:
    if m < 2 or n < 2:
        raise InputError(
            f"The MMD test needs at least 2 points per side; got {m} reference and {n} current."
        )
    splits = math.comb(m + n, m)
    if splits < permutations + 1:
        raise InputError(
            f"With {m} reference and {n} current points there are only {splits} distinct splits, "
            f"fewer than permutations + 1 = {permutations + 1}; the p-value would repeat "
            "splits. Use more data or fewer permutations."
        )


def _progress(progress: bool | None, n: int, budget: int, work: Any, xp: Any) -> Any:
    from aiops_lab.drift.mv_kernels import block_rows

    rows = block_rows(n, n, 4 * (4 if work == xp.float32 else 8), budget)
    blocks = -(-n // rows)
    show = progress if progress is not None else blocks >= 8
    if not show:
        return None
    from aiops_lab.progress import progress_bar

    return lambda items: progress_bar(items, desc="MMD kernel blocks", total=blocks)


# -- embeddings -----------------------------------------------------------------------------
class EmbeddingDriftResult(Result):
    """Drift of an embedding column (LLM prompts, RAG queries, documents), overall and per window.

    Three views of the same question, "does current traffic live where the reference did?":

    - ``mmd``: the MMD two-sample test on the (unit-normalised) vectors;
    - ``centroid_distance``: ``1 - cos`` between the mean reference and mean current
      vectors (0 when the average topic has not moved);
    - ``far_share``: the share of current points whose nearest reference point is
      further than the ``quantile`` of the reference points' own leave-one-out
      nearest-neighbour distances; about ``1 - quantile`` when nothing changed, higher
      when new regions (new topics, new languages, a broken encoder) appear.
      ``far_p_value`` is the binomial test of that excess.
    """

    analysis = "embedding_drift"
    default_chart = "timeline"

    def __init__(
        self,
        *,
        overall: dict[str, Any],
        windows: pl.DataFrame | None,
        mmd_result: MMDResult,
        params: dict[str, Any],
    ) -> None:
        self.overall = overall
        self.windows = windows
        self.mmd = mmd_result
        self._params = params

    @property
    def table(self) -> pl.DataFrame:
        import polars as pl

        if self.windows is not None:
            return self.windows
        return pl.DataFrame([self.overall])

    @property
    def drift(self) -> bool:
        return bool(self.overall["drift"])

    @property
    def first_drift(self) -> Any:
        """Start of the first window that drifted (None without windows or drift)."""
        if self.windows is None:
            return None
        hit = self.windows.filter(self.windows["drift"])
        return hit["window_start"][0] if hit.height else None

    @property
    def summary(self) -> dict[str, Any]:
        o = self.overall
        col = self._params["column"]
        if self.drift:
            headline = (
                f"Embedding drift in {col!r}: {o['far_share']:.1%} of current points are far from "
                f"every reference point (expected {1 - self._params['quantile']:.0%}), "
                f"MMD p = {o['mmd_p_value']:.3g}."
            )
            if self.first_drift is not None:
                headline += f" First drifting window: {self.first_drift}."
        else:
            headline = f"No embedding drift found in {col!r} (MMD p = {o['mmd_p_value']:.3g})."
        out = {
            "alert": self.drift,
            "headline": headline,
            "mmd2": o["mmd2"],
            "mmd_p_value": o["mmd_p_value"],
            "centroid_distance": o["centroid_distance"],
            "far_share": o["far_share"],
            "far_p_value": o["far_p_value"],
            "n_reference": o["n_reference"],
            "n_current": o["n_current"],
        }
        if self.windows is not None:
            out["windows"] = self.windows.height
            out["drifted_windows"] = int(self.windows["drift"].sum())
        return out

    def tables(self) -> dict[str, pl.DataFrame]:
        import polars as pl

        out = {"table": self.table, "overall": pl.DataFrame([self.overall])}
        return out

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        kind = kind or self.default_chart
        if kind == "null":
            return self.mmd.chart("null")
        if kind != "timeline":
            raise ParameterError("kind", "'timeline' or 'null'", kind)
        if self.windows is None:
            return self.mmd.chart("null")
        return _embedding_timeline(self)


def _embedding_timeline(result: EmbeddingDriftResult) -> alt.TopLevelMixin:
    import altair as alt
    import polars as pl

    w = result.windows
    assert w is not None
    expected = 1.0 - result.params["quantile"]
    long = pl.concat(
        [
            w.select(
                "window_start",
                "drift",
                pl.lit("share of current points far from the reference").alias("measure"),
                pl.col("far_share").alias("value"),
            ),
            w.select(
                "window_start",
                "drift",
                pl.lit("centroid cosine distance").alias("measure"),
                pl.col("centroid_distance").alias("value"),
            ),
        ]
    )
    base = alt.Chart(long).encode(x=alt.X("window_start", title="window start"))
    line = base.mark_line(color="#667085").encode(y=alt.Y("value:Q", title=None))
    dots = base.mark_circle(size=60).encode(
        y="value:Q",
        color=alt.Color(
            "drift:N",
            scale=alt.Scale(domain=[True, False], range=["#d92d20", "#98a2b3"]),
            title="MMD drift",
        ),
        tooltip=["window_start", "measure", alt.Tooltip("value:Q", format=".4f"), "drift"],
    )
    layers = line + dots
    return (
        layers.properties(width=460, height=140)
        .facet(row=alt.Row("measure:N", title=None), data=long)
        .resolve_scale(y="independent")
        .properties(
            title=f"Embedding drift of {result.params['column']!r} per window "
            f"(about {expected:.0%} of points are 'far' when nothing changed)"
        )
    )


def _unit_rows(xp: Any, a: Any, side: str) -> Any:
    norms = xp.sqrt(xp.sum(a * a, axis=1))
    if bool(xp.any(norms == 0)):
        raise InputError(
            f"The {side} embeddings contain all-zero vectors, which have no direction; drop them "
            "or use metric='euclidean'."
        )
    return a / norms[:, None]


def _embedding_column(frame: pl.DataFrame, column: str | None) -> str:
    if column is not None:
        if column not in frame.columns:
            raise ColumnNotFoundError(column, "the reference data", frame.columns)
        if not _is_vector(frame.schema[column]):
            raise InputError(
                f"Column {column!r} has type {frame.schema[column]}; an embedding column holds "
                "lists or arrays of numbers."
            )
        return column
    found = [c for c, t in frame.schema.items() if _is_vector(t)]
    if len(found) != 1:
        raise ParameterError(
            "column",
            "the name of the embedding (list/array) column",
            None,
            f"List/array columns found: {found or 'none'}.",
        )
    return found[0]


def _window_stats(
    xp: Any,
    ref: Any,
    cur: Any,
    ref_nn_threshold: float,
    quantile: float,
    *,
    permutations: int,
    bandwidth: str | float,
    seed: int,
    progress: bool | None,
) -> dict[str, Any]:
    from scipy import stats

    from aiops_lab.drift import mv_kernels as MK

    n = int(cur.shape[0])
    observed, null, p_value, sigma = _mmd_test(
        xp,
        ref,
        cur,
        permutations=permutations,
        bandwidth=bandwidth,
        seed=seed,
        median_points=MEDIAN_POINTS,
        progress=progress,
    )
    nn = MK.nearest_sq_distance(xp, cur, ref, block_bytes=_block_budget(xp))
    far = int(xp.sum(xp.astype(nn > ref_nn_threshold, xp.int64)))
    expected = 1.0 - quantile
    return {
        "n": n,
        "mmd2": observed,
        "mmd_p_value": p_value,
        "sigma": sigma,
        "centroid_distance": MK.centroid_cosine_distance(xp, ref, cur),
        "far_share": far / n,
        "far_p_value": float(stats.binom.sf(far - 1, n, expected)),
        "_null": null,
    }


def embedding_drift(
    reference: Any,
    current: Any,
    *,
    column: str | None = None,
    time_column: str | None = None,
    window: str | None = None,
    chunk_size: int | None = None,
    permutations: int = 100,
    metric: str = "cosine",
    quantile: float = 0.95,
    max_rows: int | None = 2_000,
    alpha: float = 0.05,
    correction: str = "bh",
    bandwidth: str | float = "median",
    seed: int = 0,
    min_rows: int = 30,
    dtype: str | None = None,
    backend: str | None = None,
    progress: bool | None = None,
) -> EmbeddingDriftResult:
    """Has the embedding distribution moved? Overall and, with a time column, per window.

    Parameters
    ----------
    reference, current
        Frames / paths with an embedding column (a polars list or array of numbers), or
        2-D arrays (then no windows).
    column
        The embedding column; found automatically when there is exactly one.
    time_column, window, chunk_size
        Per-window results as in :func:`aiops_lab.drift.compare` (e.g. ``window="1d"``).
    metric
        ``"cosine"`` (vectors scaled to unit length first, the usual choice for text
        embeddings) or ``"euclidean"``.
    quantile
        A current point is "far" when its nearest reference point is further than this
        quantile of the reference points' leave-one-out nearest-neighbour distances.
    max_rows
        Rows per side used (seeded random subset) for the reference and for each window;
        the pairwise work grows with its square. ``None`` uses everything.
    alpha, correction
        A window drifts when its MMD p-value, corrected over windows (``"bh"``,
        ``"holm"``, ``"bonferroni"``, ``"none"``), is below ``alpha``. Each window gets
        at least ``windows / alpha`` permutations, so that a single drifting window can
        pass the correction (with fewer, the smallest attainable p-value is too large).
    min_rows
        Windows with fewer rows are reported without a test.
    """
    from aiops_lab.drift import mv_kernels as MK
    from aiops_lab.pvalues import adjust

    if metric not in ("cosine", "euclidean"):
        raise ParameterError("metric", "'cosine' or 'euclidean'", metric)
    if not 0.5 <= quantile < 1.0:
        raise ParameterError("quantile", "a number in [0.5, 1)", quantile)
    if not 0.0 < alpha < 1.0:
        raise ParameterError("alpha", "a number between 0 and 1", alpha)
    if max_rows is not None and max_rows < min_rows:
        raise ParameterError("max_rows", f"None or an integer >= min_rows ({min_rows})", max_rows)

    bounds = None
    window_perms = permutations
    if _is_array(reference) or _is_array(current):
        if time_column is not None or window is not None or chunk_size is not None:
            raise ParameterError(
                "time_column",
                "None for array input",
                time_column,
                "Windows need frames with a time column.",
            )
        ref_host, cur_host, _names, _kind = as_matrices(reference, current)
        col = "embedding"
        cur_frame = None
    else:
        from aiops_lab.drift.analysis import _window_bounds
        from aiops_lab.drift.sources import read_frame

        ref_f = read_frame(reference, "reference")
        cur_f = read_frame(current, "current")
        col = _embedding_column(ref_f, column)
        if col not in cur_f.columns:
            raise ColumnNotFoundError(col, "the current data", cur_f.columns)
        if time_column is not None:
            if time_column not in cur_f.columns:
                raise ColumnNotFoundError(time_column, "the current data", cur_f.columns)
            cur_f = cur_f.sort(time_column)
        if (
            (window is not None or chunk_size is not None)
            and window is not None
            and time_column is None
        ):
            raise ParameterError("time_column", "a time column when window= is set", None)
        bounds = _window_bounds(cur_f, time_column, window, chunk_size)
        ref_host, cur_host, _names, _kind = as_matrices(ref_f, cur_f, columns=[col])
        cur_frame = cur_f

    xp, backend_name = _namespace(backend, (ref_host, cur_host))
    work = _resolve_dtype(xp, backend_name, dtype)
    rng = np.random.default_rng(seed)
    ref = _to_device(xp, _subsample_rows(xp, ref_host, max_rows, rng), work)
    if metric == "cosine":
        ref = _unit_rows(xp, ref, "reference")
    n_ref = int(ref.shape[0])
    if n_ref < min_rows:
        raise InputError(
            f"The reference has {n_ref} embeddings; at least min_rows={min_rows} are needed."
        )
    loo = MK.nearest_sq_distance(xp, ref, ref, exclude_self=True, block_bytes=_block_budget(xp))
    from aiops_lab.backend import to_numpy

    threshold = float(np.quantile(to_numpy(loo), quantile))

    def prepare(a: Any, side: str) -> Any:
        a = _to_device(xp, _subsample_rows(xp, a, max_rows, rng), work)
        return _unit_rows(xp, a, side) if metric == "cosine" else a

    cur_all = prepare(cur_host, "current")
    if cur_all.shape[0] < 2:
        raise InputError("The current data has fewer than 2 embeddings.")
    _check_sizes(n_ref, int(cur_all.shape[0]), permutations)
    test_args = {"permutations": permutations, "bandwidth": bandwidth, "seed": seed}
    overall = _window_stats(xp, ref, cur_all, threshold, quantile, progress=progress, **test_args)
    null = overall.pop("_null")
    overall.update(n_reference=n_ref, n_current=int(cur_host.shape[0]))
    overall["drift"] = overall["mmd_p_value"] < alpha
    mmd_result = MMDResult(
        statistic=overall["mmd2"],
        p_value=overall["mmd_p_value"],
        null=null,
        sigma=overall["sigma"],
        n_reference=n_ref,
        n_current=int(cur_all.shape[0]),
        dim=int(ref.shape[1]),
        columns=[col],
        kind="embedding",
        params={"permutations": permutations, "alpha": alpha, "bandwidth": bandwidth, "seed": seed},
    )

    windows = None
    if bounds is not None and cur_frame is not None:
        import polars as pl

        from aiops_lab.progress import progress_bar

        rows = []
        # enough permutations that one drifting window can pass the correction alone
        window_perms = max(permutations, math.ceil(len(bounds) / alpha))
        window_args = {**test_args, "permutations": window_perms}
        show = progress if progress is not None else len(bounds) > 5
        for start, end, offset, count in progress_bar(
            bounds, desc="embedding windows", enabled=show
        ):
            row: dict[str, Any] = {"window_start": start, "window_end": end, "n": count}
            if count < min_rows:
                row.update(
                    mmd2=None,
                    mmd_p_value=None,
                    sigma=None,
                    centroid_distance=None,
                    far_share=None,
                    far_p_value=None,
                )
            else:
                # the stacked current rows are in the frame's (time) order: slice, not re-stack
                w = prepare(cur_host[offset : offset + count], "current")
                if w.shape[0] < 2 or math.comb(n_ref + int(w.shape[0]), n_ref) < window_perms + 1:
                    row.update(mmd2=None, mmd_p_value=None, sigma=None, centroid_distance=None,
                               far_share=None, far_p_value=None)  # fmt: skip
                    rows.append(row)
                    continue
                stats = _window_stats(
                    xp, ref, w, threshold, quantile, progress=False, **window_args
                )
                stats.pop("_null")
                stats.pop("n")
                row.update(stats)
            rows.append(row)
        windows = pl.DataFrame(rows, infer_schema_length=None)
        p_adj = adjust(windows["mmd_p_value"].fill_null(float("nan")).to_numpy(), correction)
        windows = windows.with_columns(
            pl.Series("mmd_p_adjusted", p_adj).fill_nan(None),
        ).with_columns((pl.col("mmd_p_adjusted") < alpha).fill_null(False).alias("drift"))
        overall["drift"] = bool(overall["drift"] or windows["drift"].any())

    params = {
        "column": col,
        "metric": metric,
        "quantile": quantile,
        "far_threshold": math.sqrt(threshold),
        "permutations": permutations,
        "window_permutations": window_perms if bounds is not None else None,
        "max_rows": max_rows,
        "alpha": alpha,
        "correction": correction,
        "bandwidth": bandwidth,
        "seed": seed,
        "window": window,
        "chunk_size": chunk_size,
        "time_column": time_column,
        "backend": backend_name,
        "dtype": "float32" if work == xp.float32 else "float64",
    }
    return EmbeddingDriftResult(
        overall=overall, windows=windows, mmd_result=mmd_result, params=params
    )

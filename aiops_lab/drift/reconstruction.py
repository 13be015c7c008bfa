"""PCA reconstruction-error drift: does the current data still fit the reference's structure?

Principal components fitted on the reference capture how its columns move together.
A current row that follows the same structure is reconstructed well from those few
components; a row that breaks it (a correlation that flipped, a combination never
seen) leaves a larger residual, even when every column on its own looks unchanged.
The mean residual per window, against a band learned from reference windows, is a
single multivariate drift signal over time (the approach NannyML popularised).

>>> result = reconstruction_drift(ref, cur, time_column="ts", window="1d")
>>> result.chart("errors")
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aiops_lab.errors import InputError, ParameterError
from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

    from aiops_lab.backend import BackendInfo

__all__ = ["ReconstructionDriftResult", "reconstruction_drift"]

#: most frequent reference levels of a categorical column that get their own indicator
MAX_LEVELS = 20
CHARTS = ("errors",)


def reconstruction_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    time_column: str | None = None,
    window: str | None = None,
    chunk_size: int | None = None,
    variance: float = 0.65,
    sigmas: float = 3.0,
    backend: str | None = None,
) -> ReconstructionDriftResult:
    """Detect multivariate drift by the PCA reconstruction error of current rows.

    Fitted on the reference only:

    1. numeric nulls (and NaN, +/-inf) are imputed with the reference mean;
    2. each categorical column becomes indicator columns: one per level among its
       ``MAX_LEVELS`` (20) most frequent reference levels, one for any other level
       (rarer or unseen), one for null;
    3. every feature is standardized with the reference mean and standard deviation
       (a feature constant in the reference keeps scale 1, so any change in it counts
       fully in the error);
    4. PCA keeps the fewest components that explain more than ``variance`` of the
       variance.

    A row's reconstruction error is the Euclidean distance between its standardized
    features and their projection on the kept components. Each window's error is the
    mean over its rows. The reference is split into windows of the same kind (time
    windows on ``time_column`` when the reference has it, else consecutive chunks of
    about the current windows' median row count), and the band is the mean of the
    reference windows' errors +/- ``sigmas`` times their standard deviation. When the
    reference gives fewer than two such windows, the band uses the standard error of
    a window mean instead, ``sigmas x sd(row errors) / sqrt(rows per window)``, which
    is what the window spread estimates for independent rows (``summary["band"]``
    says which). Reference errors are in-sample, so the band is slightly narrow, as
    in every reference-fitted monitor.

    Parameters
    ----------
    reference, current : DataFrame, LazyFrame, path or "bundled:NAME"
        The two samples; anything :func:`aiops_lab.drift.sources.read_frame` accepts.
    columns : list of str, optional
        Features to use. Default: every column both sides share except ``time_column``,
        date/time columns and identifier-like strings.
    time_column : str, optional
        Timestamp column (Datetime, Date or ISO strings); rows are ordered by it.
    window : str, optional
        Time window such as ``"1d"``, ``"6h"`` (polars duration); needs ``time_column``.
    chunk_size : int, optional
        Windows of this many consecutive rows instead. Without ``window`` and
        ``chunk_size`` the whole current set is one window.
    variance : float
        Share of the reference variance the kept components explain, in (0, 1).
    sigmas : float
        Half-width of the band in standard deviations of the reference windows' errors.
    backend : {"auto", "numpy", "cupy"}, optional
        Array backend for the PCA (default: the configured one).

    Returns
    -------
    ReconstructionDriftResult
        ``.table``: one row per window (reference windows first, ``period`` says which),
        ``.components``: explained variance per component.

    Examples
    --------
    >>> from aiops_lab.drift.reconstruction import reconstruction_drift
    >>> result = reconstruction_drift(ref, cur, time_column="timestamp", window="1d")
    >>> result.table.filter(pl.col("alert"))
    """
    from aiops_lab.backend import from_numpy, get_namespace, to_numpy
    from aiops_lab.drift import pca_kernels as K
    from aiops_lab.drift.analysis import _ensure_time, _window_bounds
    from aiops_lab.drift.sources import plan_columns, read_frame

    started = time.perf_counter()
    _check_params(time_column, window, chunk_size, variance, sigmas)
    xp, info = get_namespace(backend)
    ref = read_frame(reference, "reference")
    cur = read_frame(current, "current")
    if time_column is not None:
        if time_column not in cur.columns:
            from aiops_lab.errors import ColumnNotFoundError

            raise ColumnNotFoundError(
                time_column, "the current data (from `time_column=`)", cur.columns
            )
        cur = _ensure_time(cur, time_column, "current").sort(time_column)
        if time_column in ref.columns:
            ref = _ensure_time(ref, time_column, "reference").sort(time_column)
    plan = plan_columns(
        ref, cur, columns=columns, categorical=None, exclude=[time_column] if time_column else []
    )
    if ref.height < 2:
        msg = f"The reference data has {ref.height} row; PCA needs at least 2 reference rows."
        raise InputError(msg)
    ref_x, names = _design(ref, ref, plan.numeric, plan.categorical)
    cur_x, _ = _design(cur, ref, plan.numeric, plan.categorical)

    model = K.fit(xp, from_numpy(ref_x, xp), variance)
    errors = []
    for x in (ref_x, cur_x):
        z = K.standardize(xp, from_numpy(x, xp), model.mean, model.scale)
        errors.append(K.reconstruction_error(xp, z, model.center, model.components))
    ref_err, cur_err = errors

    cur_bounds = _window_bounds(cur, time_column, window, chunk_size) or [_whole(cur, time_column)]
    size = chunk_size or int(np.median([b[3] for b in cur_bounds]))
    if window is not None and time_column is not None and time_column in ref.columns:
        ref_bounds = _window_bounds(ref, time_column, window, None) or []
    else:
        ref_bounds = _chunks(ref, time_column, size)

    def means(err: Any, bounds: list[tuple[Any, Any, int, int]]) -> np.ndarray:
        offsets = from_numpy(np.array([b[2] for b in bounds], dtype=np.int64), xp)
        counts = from_numpy(np.array([b[3] for b in bounds], dtype=np.int64), xp)
        return to_numpy(K.window_means(xp, err, offsets, counts))

    ref_means = means(ref_err, ref_bounds)
    cur_means = means(cur_err, cur_bounds)
    centre = float(np.mean(to_numpy(ref_err)))
    if len(ref_bounds) >= 2:
        spread = float(np.std(ref_means, ddof=1))
        band = "reference windows"
    else:
        spread = float(np.std(to_numpy(ref_err), ddof=1)) / math.sqrt(size)
        band = "standard error"
    lower, upper = max(centre - sigmas * spread, 0.0), centre + sigmas * spread

    parts = []
    for period, bounds, values in (
        ("reference", ref_bounds, ref_means),
        ("current", cur_bounds, cur_means),
    ):
        parts.append(
            pl.DataFrame(
                {
                    "period": [period] * len(bounds),
                    "window_start": [b[0] for b in bounds],
                    "window_end": [b[1] for b in bounds],
                    "n": [b[3] for b in bounds],
                    "error": values,
                },
                strict=False,
            )
        )
    ref_part, cur_part = parts
    if ref_part.schema["window_start"] != cur_part.schema["window_start"]:
        # current windows are labelled by time, reference chunks only by row: no time label
        dtype = cur_part.schema["window_start"]
        ref_part = ref_part.with_columns(
            pl.lit(None, dtype=dtype).alias("window_start"),
            pl.lit(None, dtype=dtype).alias("window_end"),
        )
    table = pl.concat([ref_part, cur_part], how="vertical_relaxed").with_columns(
        pl.lit(lower).alias("lower"), pl.lit(upper).alias("upper")
    )
    table = table.with_columns(
        ((pl.col("error") > pl.col("upper")) | (pl.col("error") < pl.col("lower")))
        .fill_null(False)
        .alias("alert")
    )
    explained = to_numpy(model.explained_variance)
    ratio = to_numpy(model.explained_variance_ratio)
    k = int(model.components.shape[0])
    components = pl.DataFrame(
        {
            "component": np.arange(1, ratio.size + 1),
            "explained_variance": explained,
            "explained_variance_ratio": ratio,
            "cumulative_ratio": np.cumsum(ratio),
            "kept": np.arange(ratio.size) < k,
        }
    )
    params = {
        "columns": plan.columns,
        "time_column": time_column,
        "window": window,
        "chunk_size": chunk_size,
        "variance": variance,
        "sigmas": sigmas,
        "backend": backend,
    }
    return ReconstructionDriftResult(
        table=table,
        components=components,
        features=names,
        params=params,
        skipped=plan.skipped,
        band=band,
        reference_error=centre,
        n_reference=ref.height,
        n_current=cur.height,
        backend=info,
        elapsed_s=time.perf_counter() - started,
    )


def _check_params(
    time_column: Any, window: Any, chunk_size: Any, variance: Any, sigmas: Any
) -> None:
    if window is not None and chunk_size is not None:
        raise ParameterError("window", "either `window` or `chunk_size`, not both", window)
    if window is not None and time_column is None:
        raise ParameterError(
            "time_column", "the timestamp column's name when `window` is given", None
        )
    if window is not None:
        try:
            if not isinstance(window, str):
                raise TypeError
            pl.Series([0], dtype=pl.Datetime("us")).dt.truncate(window)
        except Exception:
            raise ParameterError(
                "window", 'a polars duration string such as "1d", "6h", "30m", "1w"', window
            ) from None
    if chunk_size is not None and (
        not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
    ):
        raise ParameterError("chunk_size", "a positive integer number of rows", chunk_size)
    if not isinstance(variance, (int, float)) or not 0 < variance < 1:
        raise ParameterError(
            "variance", "a share strictly between 0 and 1", variance, "0.65 is customary."
        )
    if not isinstance(sigmas, (int, float)) or isinstance(sigmas, bool) or not sigmas > 0:
        raise ParameterError("sigmas", "a positive number", sigmas, "3 is customary.")


def _design(
    frame: pl.DataFrame, ref: pl.DataFrame, numeric: list[str], categorical: list[str]
) -> tuple[np.ndarray, list[str]]:
    """``(n, d)`` float features: numbers (non-finite -> NaN) then indicator columns.

    Levels come from the reference (``ref``) so both sides get the same columns.
    """
    exprs: list[pl.Expr] = []
    names: list[str] = []
    for c in numeric:
        v = pl.col(c).cast(pl.Float64)
        exprs.append(pl.when(v.is_finite()).then(v).otherwise(None).alias(c))
        names.append(c)
    for c in categorical:
        counts = ref[c].cast(pl.Utf8).drop_nulls().value_counts(sort=True, name="n")
        levels = counts[c].head(MAX_LEVELS).to_list()
        v = pl.col(c).cast(pl.Utf8)
        for level in levels:
            exprs.append((v == level).fill_null(False).cast(pl.Float64))
            names.append(f"{c}={level}")
        exprs.append((v.is_not_null() & ~v.is_in(levels)).cast(pl.Float64))
        names.append(f"{c}=(other)")
        exprs.append(v.is_null().cast(pl.Float64))
        names.append(f"{c}=(null)")
    out = frame.select([e.alias(f"f{i}") for i, e in enumerate(exprs)]).to_numpy()
    return np.ascontiguousarray(out, dtype=np.float64), names


def _whole(frame: pl.DataFrame, time_column: str | None) -> tuple[Any, Any, int, int]:
    if time_column is not None:
        ts = frame[time_column]
        return ts.min(), ts.max(), 0, frame.height
    return 0, frame.height, 0, frame.height


def _chunks(
    frame: pl.DataFrame, time_column: str | None, size: int
) -> list[tuple[Any, Any, int, int]]:
    """Consecutive windows of about ``size`` rows (sizes differ by at most one)."""
    k = max(frame.height // max(size, 1), 1)
    edges = np.linspace(0, frame.height, k + 1).round().astype(np.int64)
    out = []
    for a, b in itertools.pairwise(edges):
        a, b = int(a), int(b)
        if time_column is not None and time_column in frame.columns:
            out.append((frame[time_column][a], frame[time_column][b - 1], a, b - a))
        else:
            out.append((a, b, a, b - a))
    return out


class ReconstructionDriftResult(Result):
    """The outcome of :func:`reconstruction_drift`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per window: ``period`` ("reference"/"current"), ``window_start``,
        ``window_end``, ``n`` (rows), ``error`` (mean reconstruction error), ``lower``,
        ``upper`` (the band) and ``alert`` (error outside the band).
    components : polars.DataFrame
        ``component, explained_variance, explained_variance_ratio, cumulative_ratio,
        kept`` for every principal axis of the standardized reference.
    features : list of str
        The model's input features (indicator columns named ``column=level``).
    """

    analysis = "reconstruction_drift"
    default_chart = "errors"

    def __init__(
        self,
        *,
        table: pl.DataFrame,
        components: pl.DataFrame,
        features: list[str],
        params: dict[str, Any],
        skipped: dict[str, str],
        band: str,
        reference_error: float,
        n_reference: int,
        n_current: int,
        backend: BackendInfo,
        elapsed_s: float,
    ) -> None:
        self._table = table
        self.components = components
        self.features = list(features)
        self._params = dict(params)
        self.skipped = dict(skipped)
        self.band = band
        self.reference_error = reference_error
        self.n_reference, self.n_current = n_reference, n_current
        self.backend = backend
        self.elapsed_s = elapsed_s
        self._summary = self._make_summary()

    @property
    def table(self) -> pl.DataFrame:
        return self._table

    @property
    def current(self) -> pl.DataFrame:
        """The current windows only."""
        return self._table.filter(pl.col("period") == "current")

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"table": self._table, "components": self.components}

    def _make_summary(self) -> dict[str, Any]:
        cur = self.current
        alerts = cur.filter(pl.col("alert"))
        lower, upper = float(self._table["lower"][0]), float(self._table["upper"][0])
        k = int(self.components["kept"].sum())
        kept = self.components.filter(pl.col("kept"))
        explained = float(kept["cumulative_ratio"][-1])
        worst = float(cur["error"].max())  # type: ignore[arg-type]
        if alerts.height:
            first = alerts["window_start"][0]
            headline = (
                f"joint drift: reconstruction error outside [{lower:.3g}, {upper:.3g}] in "
                f"{alerts.height} of {cur.height} windows (first at {first}; worst {worst:.3g})"
            )
        else:
            first = None
            headline = (
                f"no joint drift: reconstruction error within [{lower:.3g}, {upper:.3g}] "
                f"in all {cur.height} windows"
            )
        return {
            "headline": headline,
            "alert": bool(alerts.height),
            "n_windows": cur.height,
            "n_alerts": alerts.height,
            "first_alert": first,
            "max_error": worst,
            "reference_error": self.reference_error,
            "lower": lower,
            "upper": upper,
            "band": self.band,
            "n_reference_windows": self._table.height - cur.height,
            "n_components": k,
            "n_features": len(self.features),
            "variance_explained": explained,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "backend": self.backend.name,
            "elapsed_s": round(self.elapsed_s, 4),
        }

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart of the result.

        Parameters
        ----------
        kind : {"errors"}
            Mean reconstruction error per window, reference and current, with the band.
        """
        kind = kind or self.default_chart
        if kind == "errors":
            return _errors_chart(self, **kwargs)
        raise ParameterError("kind", "one of " + ", ".join(map(repr, CHARTS)), kind)


def _errors_chart(result: ReconstructionDriftResult) -> alt.TopLevelMixin:
    import altair as alt

    t = result.table.with_row_index("window")
    # reference chunks without a time column have no start: fall back to the window index
    temporal = t.schema["window_start"].is_temporal() and t["window_start"].null_count() == 0
    x = (
        alt.X("window_start:T", title="window start")
        if temporal
        else alt.X("window:Q", title="window (reference, then current)")
    )
    sides = alt.Scale(domain=["reference", "current"], range=["#667085", "#f79009"])
    base = alt.Chart(t)
    band = base.mark_area(opacity=0.15, color="#98a2b3").encode(x=x, y="lower:Q", y2="upper:Q")
    line = base.mark_line(point=True).encode(
        x=x,
        y=alt.Y("error:Q", title="mean reconstruction error", scale=alt.Scale(zero=False)),
        color=alt.Color("period:N", scale=sides, title=None),
        tooltip=["period", "window_start", "window_end", "n",
                 alt.Tooltip("error:Q", format=".4f"), "alert"],
    )  # fmt: skip
    flagged = (
        base.transform_filter(alt.datum.alert)
        .mark_point(color="#d92d20", size=80, filled=True)
        .encode(x=x, y="error:Q")
    )
    s = result.summary
    return (band + line + flagged).properties(
        title=f"PCA reconstruction error ({s['n_components']} components, "
        f"{s['variance_explained']:.0%} of variance): {s['n_alerts']} of "
        f"{s['n_windows']} windows outside the band",
        width=560,
        height=260,
    )

"""Model quality over time: realized from (delayed) labels, estimated without them.

For a binary classifier whose scores can be calibrated on labelled reference data,
the quality of unlabelled production data can be estimated from the calibrated
probabilities alone (confidence-based performance estimation, CBPE): if a row's
label is a Bernoulli draw with probability ``p``, a predicted positive is a true
positive with probability ``p``, so the expected confusion matrix, and from it
accuracy, precision, recall and F1, are sums of ``p`` and ``1 - p``; the expected
ROC AUC follows from cumulative sums in score order.

The estimate holds under *covariate shift* (the inputs, hence the scores, change
but the relation between score and outcome does not). It cannot see *concept
shift*: when the same score comes to mean a different default rate, the estimate
stays where the scores put it while the realized quality moves. Realized values,
shown beside the estimate wherever labels have arrived, are the check on that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aiops_lab.backend import BackendInfo, from_numpy, get_namespace
from aiops_lab.drift import estimation_kernels as EK
from aiops_lab.drift.analysis import _ensure_time, _window_bounds
from aiops_lab.drift.sources import read_frame
from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError
from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

__all__ = ["METRICS", "PerformanceEstimate", "estimate_performance"]

#: metrics that can be estimated, in display order
METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1")
#: the reference is split into at least this many chunks for the alert band
_MIN_REF_CHUNKS = 5
_ECE_BINS = 10
_CV_FOLDS = 5


def estimate_performance(
    reference: Any,
    current: Any,
    *,
    score: str,
    label: str,
    prediction: str | None = None,
    threshold: float = 0.5,
    time_column: str | None = None,
    window: str | None = None,
    chunk_size: int | None = None,
    metrics: Sequence[str] = METRICS,
    labels: Any = None,
    id_column: str | None = None,
    calibrate: bool = True,
    sigmas: float = 3.0,
    backend: str | None = None,
) -> PerformanceEstimate:
    """Estimate a binary classifier's quality per window without labels, beside the realized one.

    The scores are calibrated on ``reference`` (isotonic regression of the label on
    the score); in every window of ``current`` the expected confusion matrix and the
    expected ROC curve are computed from the calibrated probabilities. Where labels
    exist (in ``current`` or joined from ``labels``) the realized metric is computed
    too. A window alerts when an estimate leaves the band ``mean +/- sigmas * std``
    of the realized metric over reference chunks of the window's size.

    Assumes the score-to-outcome relation of the reference still holds (covariate
    shift only); a concept shift shows in the realized values, not in the estimate.

    Parameters
    ----------
    reference : polars DataFrame / LazyFrame, path, or "bundled:NAME"
        Labelled data the model is known to behave on (e.g. validation data); needs
        ``score`` and ``label`` and both classes.
    current : same kinds as ``reference``
        Production data with ``score`` (and ``prediction``, ``time_column`` if used).
    score : str
        Column of model scores in [0, 1] (higher = more likely positive).
    label : str
        Column of 0/1 (or boolean) outcomes; null where not yet known.
    prediction : str, optional
        Column of the model's 0/1 decisions; default ``score >= threshold``.
    threshold : float
        Decision threshold on the score when ``prediction`` is not given (default 0.5).
    time_column : str, optional
        Timestamp column of ``current``; needed for ``window``.
    window : str, optional
        Window length as a polars duration ("1d", "6h", "1w").
    chunk_size : int, optional
        Windows of this many consecutive rows instead. Without ``window`` and
        ``chunk_size`` the whole of ``current`` is one window.
    metrics : sequence of str
        Any of "roc_auc", "accuracy", "precision", "recall", "f1".
    labels : frame-like, optional
        Labels that arrived later, in a table of ``id_column`` and ``label``; they
        are joined onto ``current`` by ``id_column`` and take precedence over any
        label already there.
    id_column : str, optional
        Row identifier shared by ``current`` and ``labels``.
    calibrate : bool
        Calibrate the scores on the reference (default True); False uses the scores
        as probabilities.
    sigmas : float
        Width of the alert band in reference standard deviations (default 3).
    backend : {"auto", "numpy", "cupy"}, optional
        Array backend; default from :func:`aiops_lab.set_config`.

    Returns
    -------
    PerformanceEstimate

    Examples
    --------
    >>> from aiops_lab.drift.estimation import estimate_performance
    >>> est = estimate_performance(
    ...     "bundled:credit_reference", "bundled:credit_production", score="score",
    ...     label="label", prediction="prediction", time_column="timestamp", window="1d")
    >>> est.summary["alert"]
    True
    """
    metrics = _check_params(metrics, threshold, window, chunk_size, time_column, sigmas)
    xp, info = get_namespace(backend)
    ref = read_frame(reference, "reference")
    cur = read_frame(current, "current")
    for col, side, frame, arg in (
        (score, "reference", ref, "score"), (label, "reference", ref, "label"),
        (score, "current", cur, "score"), (prediction, "reference", ref, "prediction"),
        (prediction, "current", cur, "prediction"), (time_column, "current", cur, "time_column"),
    ):  # fmt: skip
        if col is not None and col not in frame.columns:
            raise ColumnNotFoundError(col, f"the {side} data (from `{arg}=`)", frame.columns)
    cur = _attach_labels(cur, labels, id_column, label)
    if time_column is not None:
        cur = _ensure_time(cur, time_column, "current").sort(time_column, maintain_order=True)
        if time_column in ref.columns:
            ref = _ensure_time(ref, time_column, "reference").sort(time_column, maintain_order=True)

    ref_y = _labels(ref, label, "reference")
    known = ~np.isnan(ref_y)
    ref = ref.filter(pl.Series(known))
    ref_y = ref_y[known]
    if ref.height == 0 or np.unique(ref_y).size < 2:
        msg = (
            f"The reference column {label!r} must hold both classes (0 and 1) to calibrate "
            f"the scores; it has {int(np.sum(ref_y == 1))} positives and "
            f"{int(np.sum(ref_y == 0))} negatives among its labelled rows. Use a larger or "
            "more recent labelled sample."
        )
        raise InputError(msg)
    ref_s = _scores(ref, score, "reference")
    ref_pred = _decisions(ref, score, prediction, threshold, "reference")
    cur_s = _scores(cur, score, "current")
    cur_pred = _decisions(cur, score, prediction, threshold, "current")
    cur_y = _labels(cur, "__label", "current") if "__label" in cur.columns else None
    if cur_y is None:
        cur_y = np.full(cur.height, np.nan)

    calibrator, ece_before, ece_after = _calibration(ref_s, ref_y, calibrate)
    cur_p = calibrator(cur_s)

    bounds = _window_bounds(cur, time_column, window, chunk_size)
    windows = bounds or [(None, None, 0, cur.height)]
    sizes = [n for *_, n in windows]
    target = chunk_size or int(np.median(sizes))
    band = _reference_band(xp, ref_s, ref_y, ref_pred, metrics, target)

    arrays = [from_numpy(a, xp) for a in (cur_s, cur_p, cur_pred, cur_y)]
    rows: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
    for start, end, offset, n in windows:
        s, p, pred, y = (a[offset : offset + n] for a in arrays)
        est, se = _estimate(xp, s, p, pred, metrics)
        labelled = ~xp.isnan(y)
        n_lab = int(xp.sum(xp.astype(labelled, xp.int64)))
        real = (
            _realized(xp, s[labelled], y[labelled], pred[labelled], metrics)
            if n_lab
            else dict.fromkeys(metrics, math.nan)
        )
        for m in metrics:
            mean, std, size = band[m]
            half = sigmas * std * math.sqrt(size / n)
            lo, hi = max(mean - half, 0.0), min(mean + half, 1.0)
            value = est[m]
            alert = bool(math.isfinite(value) and math.isfinite(half) and not lo <= value <= hi)
            for key, v in (
                ("window_start", start), ("window_end", end), ("n", n), ("n_labelled", n_lab),
                ("metric", m), ("estimated", value), ("realized", real[m]),
                ("standard_error", se[m]), ("reference_mean", mean), ("lower", lo),
                ("upper", hi), ("alert", alert),
            ):  # fmt: skip
                rows[key].append(v)
    table = pl.DataFrame(rows, strict=False).with_columns(
        pl.col(c).fill_nan(None) for c in _FLOAT_COLUMNS
    )
    reference_table = pl.DataFrame(
        {
            "metric": list(metrics),
            "mean": [band[m][0] for m in metrics],
            "std": [band[m][1] for m in metrics],
            "chunk_size": [band[m][2] for m in metrics],
        }
    ).with_columns(pl.col("mean", "std").fill_nan(None))
    params = {
        "score": score, "label": label, "prediction": prediction,
        "threshold": None if prediction else threshold, "time_column": time_column,
        "window": window, "chunk_size": chunk_size, "metrics": list(metrics),
        "id_column": id_column, "delayed_labels": labels is not None, "calibrate": calibrate,
        "sigmas": sigmas, "backend": info.name,
    }  # fmt: skip
    return PerformanceEstimate(
        table=table, reference=reference_table, params=params, backend=info,
        calibration_error=(ece_before, ece_after), n_ref=ref.height, n_cur=cur.height,
    )  # fmt: skip


_COLUMNS = (
    "window_start", "window_end", "n", "n_labelled", "metric", "estimated", "realized",
    "standard_error", "reference_mean", "lower", "upper", "alert",
)  # fmt: skip
_FLOAT_COLUMNS = ("estimated", "realized", "standard_error", "reference_mean", "lower", "upper")


# -- inputs ------------------------------------------------------------------------------------
def _check_params(
    metrics: Sequence[str],
    threshold: float,
    window: str | None,
    chunk_size: int | None,
    time_column: str | None,
    sigmas: float,
) -> tuple[str, ...]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    chosen = tuple(metrics)
    unknown = [m for m in chosen if m not in METRICS]
    if unknown or not chosen:
        raise ParameterError("metrics", "a non-empty list of " + ", ".join(map(repr, METRICS)), list(metrics))  # fmt: skip
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:  # fmt: skip
        raise ParameterError("threshold", "a number in [0, 1]", threshold)
    if isinstance(sigmas, bool) or not isinstance(sigmas, (int, float)) or not sigmas > 0:
        raise ParameterError("sigmas", "a positive number", sigmas, "3 is customary.")
    if window is not None and chunk_size is not None:
        raise ParameterError("window", "either `window` or `chunk_size`, not both", window)
    if window is not None and time_column is None:
        raise ParameterError("time_column", "the timestamp column's name when `window` is given", None)  # fmt: skip
    if window is not None:
        try:
            pl.Series([0], dtype=pl.Datetime("us")).dt.truncate(window)
        except Exception:
            raise ParameterError("window", 'a polars duration string such as "1d", "6h", "1w"', window) from None  # fmt: skip
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ParameterError("chunk_size", "a positive integer number of rows", chunk_size)
    return chosen


def _attach_labels(
    cur: pl.DataFrame, labels: Any, id_column: str | None, label: str
) -> pl.DataFrame:
    """Put the known labels of ``current`` in ``__label`` (joined from ``labels`` if given)."""
    if labels is None:
        if label in cur.columns:
            return cur.with_columns(pl.col(label).alias("__label"))
        return cur
    if id_column is None:
        raise ParameterError("id_column", "the row identifier shared by `current` and `labels`", None)  # fmt: skip
    lab = read_frame(labels, "labels")
    for frame, where in ((cur, "the current data"), (lab, "the labels data")):
        if id_column not in frame.columns:
            raise ColumnNotFoundError(id_column, f"{where} (from `id_column=`)", frame.columns)
    if label not in lab.columns:
        raise ColumnNotFoundError(label, "the labels data (from `label=`)", lab.columns)
    lab = lab.select(pl.col(id_column), pl.col(label).alias("__label")).drop_nulls("__label")
    if lab[id_column].is_duplicated().any():
        dup = lab.filter(pl.col(id_column).is_duplicated())[id_column][0]
        msg = f"The labels data has more than one label for {id_column}={dup!r}; keep one label per id."  # fmt: skip
        raise InputError(msg)
    try:
        joined = cur.join(lab, on=id_column, how="left", maintain_order="left")
    except Exception as exc:
        msg = f"Could not join the labels onto the current data by {id_column!r}: {exc}. Give both the same id type."  # fmt: skip
        raise InputError(msg) from exc
    if label in cur.columns:  # labels already in place count where none arrived later
        joined = joined.with_columns(pl.coalesce("__label", label).alias("__label"))
    return joined


def _numeric(frame: pl.DataFrame, col: str, side: str, what: str) -> np.ndarray:
    dtype = frame.schema[col]
    if not (dtype.is_numeric() or dtype == pl.Boolean):
        msg = f"Column {col!r} ({side}) has type {dtype}; {what}."
        raise InputError(msg)
    return frame[col].cast(pl.Float64).fill_null(float("nan")).to_numpy()


def _scores(frame: pl.DataFrame, col: str, side: str) -> np.ndarray:
    s = _numeric(frame, col, side, "expected numeric scores in [0, 1]")
    bad = ~((s >= 0.0) & (s <= 1.0))  # also catches NaN and nulls
    if bad.any():
        shown = ", ".join(f"{v:g}" for v in s[bad][:3])
        msg = (
            f"Column {col!r} ({side}) must hold scores in [0, 1] without nulls; "
            f"{int(bad.sum())} rows do not (e.g. {shown}). Pass probabilities (apply a "
            "sigmoid to raw margins) and drop rows without a score."
        )
        raise InputError(msg)
    return s


def _labels(frame: pl.DataFrame, col: str, side: str) -> np.ndarray:
    name = "label" if col == "__label" else col
    y = _numeric(frame, col, side, f"labels in {name!r} must be 0/1 or boolean")
    known = y[~np.isnan(y)]
    if known.size and not np.all((known == 0.0) | (known == 1.0)):
        msg = f"Column {name!r} ({side}) must hold 0/1 labels (or null where unknown); found {np.unique(known)[:5].tolist()}."  # fmt: skip
        raise InputError(msg)
    return y


def _decisions(
    frame: pl.DataFrame, score: str, prediction: str | None, threshold: float, side: str
) -> np.ndarray:
    if prediction is None:
        return frame[score].cast(pl.Float64).to_numpy() >= threshold
    d = _numeric(frame, prediction, side, "expected 0/1 decisions")
    if not np.all((d == 0.0) | (d == 1.0)):
        msg = f"Column {prediction!r} ({side}) must hold 0/1 decisions without nulls; pass `threshold=` instead to derive them from the score."  # fmt: skip
        raise InputError(msg)
    return d == 1.0


# -- calibration -------------------------------------------------------------------------------
def _ece(p: np.ndarray, y: np.ndarray) -> float:
    """Expected calibration error on ten equal-width probability bins."""
    bins = np.minimum((p * _ECE_BINS).astype(np.int64), _ECE_BINS - 1)
    count = np.bincount(bins, minlength=_ECE_BINS)
    gap = np.bincount(bins, weights=y - p, minlength=_ECE_BINS)
    return float(np.sum(np.abs(gap)) / max(count.sum(), 1))


def _calibration(s: np.ndarray, y: np.ndarray, calibrate: bool) -> tuple[Any, float, float]:
    """The score -> probability map, and the calibration error before and after.

    The error after is cross-fitted (each fold scored by a map fitted on the others),
    since an isotonic fit scored on its own data is calibrated by construction.
    """
    before = _ece(s, y)
    if not calibrate:
        return (lambda x: x), before, before
    from sklearn.isotonic import IsotonicRegression

    def fit(a: np.ndarray, b: np.ndarray) -> IsotonicRegression:
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        return iso.fit(a, b)

    fold = np.arange(s.size) % _CV_FOLDS
    crossed = np.empty_like(s)
    for k in range(_CV_FOLDS):
        test = fold == k
        train = ~test
        if test.any() and np.unique(y[train]).size == 2:
            crossed[test] = fit(s[train], y[train]).predict(s[test])
        else:
            crossed[test] = s[test]
    iso = fit(s, y)
    return (lambda x: np.asarray(iso.predict(x), dtype=np.float64)), before, _ece(crossed, y)


# -- per-window computation --------------------------------------------------------------------
def _estimate(
    xp: Any, s: Any, p: Any, pred: Any, metrics: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Estimated metrics and their sampling standard errors for one window."""
    tp, fp, fn, tn = (float(v) for v in EK.expected_confusion(xp, p, pred))
    var_tp, var_fn = (float(v) for v in EK.expected_variances(xp, p, pred))
    est = EK.rates(tp, fp, fn, tn)
    est["roc_auc"] = EK.expected_auc(xp, s, p) if "roc_auc" in metrics else math.nan
    se = _standard_errors(est, tp, fp, fn, tn, var_tp, var_fn)
    return {m: est[m] for m in metrics}, {m: se[m] for m in metrics}


def _standard_errors(
    est: dict[str, float], tp: float, fp: float, fn: float, tn: float, var_tp: float, var_fn: float
) -> dict[str, float]:
    """How far the realized metric is expected to fall from the estimate (one s.d.).

    Given the window's scores, the labels are independent Bernoulli draws, so the
    counts ``tp`` and ``fn`` vary with ``var_tp`` and ``var_fn``; ratios use the delta
    method. ROC AUC uses Hanley and McNeil's formula with the expected class counts.
    """
    n, n_pp, a, b = tp + fp + fn + tn, tp + fp, tp, fn

    def root(v: float, d: float) -> float:
        return math.sqrt(v) / d if d > 0 else math.nan

    out = {
        "accuracy": root(var_tp + var_fn, n),
        "precision": root(var_tp, n_pp),
        "recall": root(b * b * var_tp + a * a * var_fn, (a + b) ** 2),
        "f1": root(4 * ((n_pp + b) ** 2 * var_tp + a * a * var_fn), (a + n_pp + b) ** 2),
    }
    auc, pos, neg = est["roc_auc"], tp + fn, fp + tn
    if math.isfinite(auc) and pos > 0 and neg > 0:
        q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
        var = auc * (1 - auc) + (pos - 1) * (q1 - auc * auc) + (neg - 1) * (q2 - auc * auc)
        out["roc_auc"] = math.sqrt(max(var, 0.0) / (pos * neg))
    else:
        out["roc_auc"] = math.nan
    return out


def _realized(xp: Any, s: Any, y: Any, pred: Any, metrics: Sequence[str]) -> dict[str, float]:
    tp, fp, fn, tn = (float(v) for v in EK.realized_confusion(xp, y, pred))
    out = EK.rates(tp, fp, fn, tn)
    out["roc_auc"] = EK.realized_auc(xp, s, y) if "roc_auc" in metrics else math.nan
    return {m: out[m] for m in metrics}


def _reference_band(
    xp: Any,
    s: np.ndarray,
    y: np.ndarray,
    pred: np.ndarray,
    metrics: Sequence[str],
    target: int,
) -> dict[str, tuple[float, float, int]]:
    """Mean and s.d. of each realized metric over reference chunks, and the chunk size.

    Chunks have the typical window size, or fewer rows when the reference holds fewer
    than five such chunks (the band is then scaled by sqrt(chunk size / window size)).
    """
    size = max(1, min(int(target), s.size // _MIN_REF_CHUNKS))
    values: dict[str, list[float]] = {m: [] for m in metrics}
    for off in range(0, s.size - size + 1, size):
        cs, cy, cp = (from_numpy(a[off : off + size], xp) for a in (s, y, pred))
        for m, v in _realized(xp, cs, cy, cp, metrics).items():
            if math.isfinite(v):
                values[m].append(v)
    out = {}
    for m in metrics:
        vals = np.asarray(values[m])
        if vals.size >= 2:
            out[m] = (float(vals.mean()), float(vals.std(ddof=1)), size)
        else:
            out[m] = (math.nan, math.nan, size)
    return out


# -- result ------------------------------------------------------------------------------------
class PerformanceEstimate(Result):
    """The outcome of :func:`estimate_performance`.

    Attributes
    ----------
    table : polars.DataFrame
        Long format, one row per window and metric: ``window_start, window_end, n,
        n_labelled, metric, estimated, realized, standard_error, reference_mean, lower,
        upper, alert``. ``realized`` is null where no label has arrived;
        ``standard_error`` is the expected spread of the realized value around the
        estimate; ``lower``/``upper`` bound the reference band.
    reference : polars.DataFrame
        Per metric: mean and s.d. of the realized value over reference chunks of
        ``chunk_size`` rows.
    calibration_error : tuple of float
        Expected calibration error (10 bins) of the reference scores before and after
        calibration (after: cross-fitted).
    """

    analysis = "performance_estimate"
    default_chart = "estimate"

    def __init__(
        self,
        *,
        table: pl.DataFrame,
        reference: pl.DataFrame,
        params: dict[str, Any],
        backend: BackendInfo,
        calibration_error: tuple[float, float],
        n_ref: int,
        n_cur: int,
    ) -> None:
        self._table = table
        self.reference = reference
        self._params = params
        self.backend = backend
        self.calibration_error = calibration_error
        self.n_ref, self.n_cur = n_ref, n_cur
        self._summary = self._make_summary()

    @property
    def table(self) -> pl.DataFrame:
        return self._table

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"table": self._table, "reference": self.reference}

    def _make_summary(self) -> dict[str, Any]:
        t = self._table
        alerts = t.filter(pl.col("alert"))
        n_windows = t.select(pl.struct("window_start", "window_end").n_unique()).item()
        summary: dict[str, Any] = {
            "alert": alerts.height > 0,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "n_windows": n_windows,
            "n_alerts": alerts.height,
            "calibration_error_before": self.calibration_error[0],
            "calibration_error_after": self.calibration_error[1],
        }
        z = t.with_columns(
            (
                (pl.col("estimated") - pl.col("reference_mean")).abs()
                / (pl.col("upper") - pl.col("lower")).clip(1e-12)
            ).alias("z")
        ).filter(pl.col("z").is_not_null())
        if z.height:
            worst = z.sort("z", descending=True).row(0, named=True)
            summary.update(
                worst_metric=worst["metric"], worst_window=worst["window_start"],
                worst_estimated=worst["estimated"], worst_reference=worst["reference_mean"],
            )  # fmt: skip
        for m in t["metric"].unique(maintain_order=True):
            rows = t.filter(pl.col("metric") == m)
            summary[f"{m}_estimated_latest"] = rows["estimated"][-1]
            summary[f"{m}_reference"] = rows["reference_mean"][0]
        if alerts.height:
            first = alerts.row(0, named=True)
            summary["first_alert"] = first["window_start"]
            names = ", ".join(alerts["metric"].unique(maintain_order=True).to_list())
            when = f" from window {first['window_start']}" if first["window_start"] is not None else ""  # fmt: skip
            headline = (
                f"estimated {names} outside the reference band in "
                f"{alerts['window_start'].n_unique()} of {n_windows} windows{when}"
            )
            if "worst_metric" in summary:
                headline += (
                    f" (worst: {summary['worst_metric']} {summary['worst_estimated']:.3f} "
                    f"vs {summary['worst_reference']:.3f} on the reference)"
                )
        else:
            headline = f"estimated model quality within the reference band in all {n_windows} windows"  # fmt: skip
        summary["headline"] = headline
        return {"headline": summary.pop("headline"), **summary}

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        for m in self._table["metric"].unique(maintain_order=True):
            rows = self._table.filter(pl.col("metric") == m)
            out[f"{m}.alerts"] = float(rows["alert"].sum())
        return out

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart of the result.

        Parameters
        ----------
        kind : {"estimate"}
            Estimated metric per window (line) inside the reference band (shaded),
            realized values (points) beside it, one panel per metric.
        """
        kind = kind or self.default_chart
        if kind != "estimate":
            raise ParameterError("kind", "'estimate'", kind)
        return estimate_chart(self, **kwargs)


def estimate_chart(result: PerformanceEstimate, *, metrics: Sequence[str] | None = None) -> alt.TopLevelMixin:  # fmt: skip
    """Estimated quality with its alert band and the realized values, faceted by metric."""
    import altair as alt

    t = result.table
    if metrics is not None:
        t = t.filter(pl.col("metric").is_in(list(metrics)))
    if t["window_start"].dtype == pl.Null or t["window_start"].null_count() == t.height:
        t = t.with_columns(pl.int_range(pl.len()).over("metric").alias("window_start"))
    temporal = t["window_start"].dtype.is_temporal()
    x = alt.X("window_start:T" if temporal else "window_start:Q", title="window start")
    base = alt.Chart().encode(x=x)
    band = base.mark_area(opacity=0.2, color="#98a2b3").encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(point=True, color="#1570ef").encode(
        y=alt.Y("estimated:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["window_start", "metric", alt.Tooltip("estimated:Q", format=".3f"),
                 alt.Tooltip("standard_error:Q", format=".3f"), alt.Tooltip("realized:Q", format=".3f"),
                 "n", "n_labelled", "alert"],
    )  # fmt: skip
    real = base.mark_point(shape="diamond", filled=True, color="#f79009", size=50).encode(
        y="realized:Q"
    )
    flagged = (
        base.transform_filter("datum.alert")
        .mark_point(color="#d92d20", size=120)
        .encode(y="estimated:Q")
    )
    return (
        alt.layer(band, line, real, flagged, data=t)
        .properties(width=560, height=130)
        .facet(row=alt.Row("metric:N", title=None, sort=list(METRICS)))
        .resolve_scale(y="independent")
        .properties(title="Estimated (line, band = reference) vs realized (diamonds) model quality")
    )

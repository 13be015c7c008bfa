"""Domain-classifier drift: can a model tell current rows from reference rows?

Per-column tests look at one marginal at a time and miss a change that lives in the
joint distribution (two columns whose correlation flips, a combination of values that
was never seen). A classifier trained to separate the two samples sees every column
at once: if it cannot beat chance on held-out rows (AUC 0.5), the samples are
exchangeable as far as the model can tell; the further its AUC rises above 0.5, the
more the joint distribution has moved, and permutation importance says which columns
carry the difference.

>>> result = classifier_drift("reference.parquet", "current.parquet")
>>> result.auc, result.ci, result.importance
"""

from __future__ import annotations

import contextlib
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

__all__ = ["ClassifierDriftResult", "classifier_drift", "delong_variance"]

#: histogram gradient boosting bins categorical codes into at most 255 bins
_MAX_CATEGORIES = 254
#: shuffles per column and fold in the permutation importance
_REPEATS = 3
#: points kept of the ROC curve (the chart needs no more)
_ROC_POINTS = 400
CHARTS = ("importance", "roc")
#: below this many pooled rows the model trains on one OpenMP thread: per-node thread
#: synchronisation outweighs the work there, and on a busy machine the spin-waits of
#: idle threads multiply it (1,600 rows, 3 folds on 2 loaded cores: 9 s vs 0.6 s)
_SINGLE_THREAD_BELOW = 50_000


def delong_variance(scores: Any, labels: Any) -> tuple[float, float]:
    """AUC of ``scores`` for binary ``labels`` (1 = positive) and DeLong's variance of it.

    DeLong, DeLong & Clarke-Pearson (1988): the AUC is a two-sample U-statistic, and its
    variance is ``S10 / m + S01 / n`` where ``S10`` is the sample variance over the
    ``m`` positives of the share of negatives each one outranks (ties count 1/2) and
    ``S01`` the same over the ``n`` negatives. The shares come from mid-ranks (Sun &
    Xu, 2014), so this costs a sort instead of the ``m x n`` comparisons.
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels).astype(bool)
    pos, neg = s[y], s[~y]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        return math.nan, math.nan
    pooled = rankdata(np.concatenate([pos, neg]))
    # pooled rank minus rank within its own side = how many of the other side lie below
    v10 = (pooled[:m] - rankdata(pos)) / n
    v01 = 1.0 - (pooled[m:] - rankdata(neg)) / m
    auc = float(v10.mean())
    s10 = float(v10.var(ddof=1)) if m > 1 else 0.0
    s01 = float(v01.var(ddof=1)) if n > 1 else 0.0
    return auc, s10 / m + s01 / n


def classifier_drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    max_rows: int | None = 100_000,
    confidence: float = 0.95,
    threshold: float = 0.55,
    backend: str | None = None,
) -> ClassifierDriftResult:
    """Detect multivariate drift with a classifier that tells current rows from reference rows.

    A histogram gradient-boosting classifier (scikit-learn's
    ``HistGradientBoostingClassifier``: categorical columns split natively, missing
    values allowed) is cross-validated with stratified K-fold on the pooled rows,
    labelled 0 (reference) and 1 (current). Every row gets a score from the model
    that did not see it, and the AUC of these out-of-fold scores measures how far
    apart the two samples are: 0.5 means indistinguishable, 1.0 fully separable.

    The confidence interval uses DeLong's variance of the AUC (normal
    approximation, clipped to [0, 1]); the p-value is one-sided, against AUC = 0.5.
    Both treat the out-of-fold scores as if they came from one model, which is the
    usual approximation for cross-validated AUC.

    Drift is declared when the interval's lower bound is above 0.5 *and* the AUC is
    at least ``threshold``. The first condition rules out chance; the second rules
    out a difference that is real but too small to matter: with 100,000 rows a side,
    an AUC of 0.51 is already significant, yet a model that ranks a current row above
    a reference row 51% of the time points to no change worth acting on.

    Which columns drive the separation is measured by permutation importance on each
    held-out fold: the drop in AUC when one column is shuffled (3 shuffles per
    fold), averaged over folds; ``std`` is the spread over folds.

    Parameters
    ----------
    reference, current : DataFrame, LazyFrame, path or "bundled:NAME"
        The two samples; anything :func:`aiops_lab.drift.sources.read_frame` accepts.
    columns : list of str, optional
        Columns to use. Default: every column both sides share, except date/time
        columns and identifier-like strings. Numbers are numeric features; strings,
        booleans and categoricals are categorical features.
    folds : int
        Number of cross-validation folds (>= 2).
    seed : int
        Seed of the subsampling, the fold split, the model and the shuffles.
    max_rows : int or None
        Each side is subsampled (without replacement, seeded) to at most this many
        rows; the summary says when it was. ``None`` uses every row.
    confidence : float
        Level of the AUC's two-sided confidence interval, in (0, 1).
    threshold : float
        Smallest AUC that counts as drift, in [0.5, 1).
    backend : str, optional
        Recorded for consistency with the other analyses; the classifier itself always
        runs on the CPU (scikit-learn).

    Returns
    -------
    ClassifierDriftResult
        ``.auc``, ``.ci``, ``.p_value``, ``.importance`` and the out-of-fold
        ``.scores`` / ``.labels``.

    Examples
    --------
    >>> from aiops_lab.drift.classifier import classifier_drift
    >>> result = classifier_drift("bundled:credit_reference", "bundled:credit_current")
    >>> result.chart("importance")
    """
    from scipy.stats import norm
    from sklearn.metrics import roc_curve
    from sklearn.model_selection import StratifiedKFold

    from aiops_lab.backend import backend_info
    from aiops_lab.drift.sources import plan_columns, read_frame

    started = time.perf_counter()
    _check_params(folds, seed, max_rows, confidence, threshold)
    info = backend_info(backend)
    ref = read_frame(reference, "reference")
    cur = read_frame(current, "current")
    plan = plan_columns(ref, cur, columns=columns, categorical=None)
    for side, frame in (("reference", ref), ("current", cur)):
        if frame.height < 2 * folds:
            msg = (
                f"The {side} data has {frame.height} rows; classifier drift with folds={folds} "
                f"needs at least {2 * folds} rows on each side. Pass more rows or fewer `folds`."
            )
            raise InputError(msg)
    n_ref_total, n_cur_total = ref.height, cur.height
    rng = np.random.default_rng(seed)
    ref = _subsample(ref, max_rows, rng)
    cur = _subsample(cur, max_rows, rng)
    x, is_cat = _features(ref, cur, plan.numeric, plan.categorical)
    y = np.concatenate([np.zeros(ref.height, np.int8), np.ones(cur.height, np.int8)])

    names = plan.columns
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros(y.size), y))
    small = y.size < _SINGLE_THREAD_BELOW
    with _one_openmp_thread() if small else contextlib.nullcontext():
        scores, drops, fold_auc = _cross_validate(x, y, is_cat, splits, seed)

    auc, variance = delong_variance(scores, y)
    se = math.sqrt(max(variance, 0.0))
    z = float(norm.ppf(0.5 + confidence / 2.0))
    ci = (max(0.0, auc - z * se), min(1.0, auc + z * se))
    p_value = float(norm.sf((auc - 0.5) / se)) if se > 0 else float(auc <= 0.5)
    kinds = ["numeric"] * len(plan.numeric) + ["categorical"] * len(plan.categorical)
    importance = pl.DataFrame(
        {
            "column": names,
            "kind": kinds,
            "importance": drops.mean(axis=0),
            "std": drops.std(axis=0, ddof=1),
        }
    ).sort("importance", descending=True, maintain_order=True)
    fpr, tpr, _ = roc_curve(y, scores)
    keep = np.unique(np.linspace(0, fpr.size - 1, min(fpr.size, _ROC_POINTS)).astype(np.int64))
    roc = pl.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})
    params = {
        "columns": names,
        "folds": folds,
        "seed": seed,
        "max_rows": max_rows,
        "confidence": confidence,
        "threshold": threshold,
        "backend": backend,
    }
    return ClassifierDriftResult(
        auc=auc,
        variance=variance,
        ci=ci,
        p_value=p_value,
        importance=importance,
        roc=roc,
        fold_auc=fold_auc,
        scores=scores,
        labels=y,
        params=params,
        skipped=plan.skipped,
        n_reference=ref.height,
        n_current=cur.height,
        n_reference_total=n_ref_total,
        n_current_total=n_cur_total,
        backend=info,
        elapsed_s=time.perf_counter() - started,
    )


def _check_params(folds: Any, seed: Any, max_rows: Any, confidence: Any, threshold: Any) -> None:
    if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2:
        raise ParameterError("folds", "an integer >= 2", folds, "5 is customary.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ParameterError("seed", "a non-negative integer", seed)
    if max_rows is not None and (
        not isinstance(max_rows, int) or isinstance(max_rows, bool) or max_rows < 2 * folds
    ):
        raise ParameterError("max_rows", f"None or an integer >= 2 x folds = {2 * folds}", max_rows)
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ParameterError("confidence", "a number strictly between 0 and 1", confidence)
    if not isinstance(threshold, (int, float)) or not 0.5 <= threshold < 1:
        raise ParameterError(
            "threshold", "an AUC in [0.5, 1)", threshold, "0.55 flags a modest separation."
        )


def _one_openmp_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _cross_validate(
    x: np.ndarray, y: np.ndarray, is_cat: np.ndarray, splits: list[Any], seed: int
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Out-of-fold scores, per-fold permutation drops ``(folds, d)`` and per-fold AUC."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from aiops_lab.progress import progress_bar

    scores = np.empty(y.size)
    drops = np.zeros((len(splits), x.shape[1]))
    fold_auc = []
    shuffler = np.random.default_rng(seed + 1)
    for f, (train, test) in enumerate(
        progress_bar(splits, desc="classifier folds", enabled=y.size > 50_000)
    ):
        model = HistGradientBoostingClassifier(
            categorical_features=is_cat if is_cat.any() else None,
            class_weight="balanced",
            # a held-out tenth stops boosting once it stops helping: no fitting noise
            early_stopping=True,
            random_state=seed,
        )
        model.fit(x[train], y[train])
        x_test, y_test = x[test], y[test]
        scores[test] = model.predict_proba(x_test)[:, 1]
        base = roc_auc_score(y_test, scores[test])
        fold_auc.append(float(base))
        n_test = x_test.shape[0]
        for j in range(x.shape[1]):
            # all shuffles of a column in one prediction call: far less per-call overhead
            shuffled = np.tile(x_test, (_REPEATS, 1))
            for r in range(_REPEATS):
                shuffled[r * n_test : (r + 1) * n_test, j] = x_test[shuffler.permutation(n_test), j]
            shuffled_scores = model.predict_proba(shuffled)[:, 1]
            drops[f, j] = base - np.mean(
                [
                    roc_auc_score(y_test, shuffled_scores[r * n_test : (r + 1) * n_test])
                    for r in range(_REPEATS)
                ]
            )
    return scores, drops, fold_auc


def _subsample(frame: pl.DataFrame, max_rows: int | None, rng: np.random.Generator) -> pl.DataFrame:
    if max_rows is None or frame.height <= max_rows:
        return frame
    rows = np.sort(rng.choice(frame.height, size=max_rows, replace=False))
    return frame[rows]


def _features(
    ref: pl.DataFrame, cur: pl.DataFrame, numeric: list[str], categorical: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Pooled ``(n_ref + n_cur, d)`` float features and the categorical mask.

    Numbers stay numbers (null -> NaN, which the model routes natively; +/-inf become
    NaN too, as the binner cannot place them). Categories become codes 0..253 of the
    levels most frequent over both sides, 254 for all rarer levels, NaN for null.
    """
    from aiops_lab.drift.sources import category_codes, numeric_matrix

    parts = []
    if numeric:
        both = np.concatenate(
            [numeric_matrix(ref, numeric), numeric_matrix(cur, numeric)], axis=1
        ).T
        parts.append(np.where(np.isfinite(both), both, np.nan))
    if categorical:
        ref_codes, cur_codes, levels = category_codes(ref, cur, categorical)
        codes = np.concatenate([ref_codes, cur_codes], axis=1)
        coded = np.empty(codes.shape)
        for i, cats in enumerate(levels):
            row = codes[i]
            if len(cats) > _MAX_CATEGORIES:
                counts = np.bincount(row[row >= 0], minlength=len(cats))
                order = np.argsort(-counts, kind="stable")
                remap = np.full(len(cats), _MAX_CATEGORIES, dtype=np.int64)
                remap[order[:_MAX_CATEGORIES]] = np.arange(_MAX_CATEGORIES)
                row = np.where(row >= 0, remap[np.maximum(row, 0)], -1)
            coded[i] = np.where(row >= 0, row, np.nan)
        parts.append(coded.T)
    x = np.ascontiguousarray(np.concatenate(parts, axis=1))
    mask = np.array([False] * len(numeric) + [True] * len(categorical))
    return x, mask


class ClassifierDriftResult(Result):
    """The outcome of :func:`classifier_drift`.

    Attributes
    ----------
    auc : float
        AUC of the out-of-fold scores (0.5: no separation; 1: fully separable).
    ci : tuple of float
        DeLong confidence interval of the AUC at ``params["confidence"]``.
    p_value : float
        One-sided p-value of AUC > 0.5.
    importance : polars.DataFrame
        ``column, kind, importance, std``: mean drop in held-out AUC when the column
        is shuffled, and its standard deviation over folds; largest first.
    roc : polars.DataFrame
        ``fpr, tpr``: the ROC curve of the out-of-fold scores (thinned).
    scores, labels : numpy.ndarray
        Out-of-fold probability of "current" per row, and the true side (1 = current);
        reference rows first.
    fold_auc : list of float
        AUC within each held-out fold.
    """

    analysis = "classifier_drift"
    default_chart = "importance"

    def __init__(
        self,
        *,
        auc: float,
        variance: float,
        ci: tuple[float, float],
        p_value: float,
        importance: pl.DataFrame,
        roc: pl.DataFrame,
        fold_auc: list[float],
        scores: np.ndarray,
        labels: np.ndarray,
        params: dict[str, Any],
        skipped: dict[str, str],
        n_reference: int,
        n_current: int,
        n_reference_total: int,
        n_current_total: int,
        backend: BackendInfo,
        elapsed_s: float,
    ) -> None:
        self.auc, self.variance, self.ci, self.p_value = auc, variance, ci, p_value
        self.importance, self.roc = importance, roc
        self.fold_auc = [float(a) for a in fold_auc]
        self.scores, self.labels = scores, labels
        self._params = dict(params)
        self.skipped = dict(skipped)
        self.n_reference, self.n_current = n_reference, n_current
        self.n_reference_total, self.n_current_total = n_reference_total, n_current_total
        self.backend = backend
        self.elapsed_s = elapsed_s
        self._summary = self._make_summary()

    @property
    def drifted(self) -> bool:
        """True when the AUC's interval excludes 0.5 and the AUC reaches the threshold."""
        return bool(self.ci[0] > 0.5 and self.auc >= self._params["threshold"])

    @property
    def table(self) -> pl.DataFrame:
        return self.importance

    def tables(self) -> dict[str, pl.DataFrame]:
        folds = pl.DataFrame({"fold": list(range(1, len(self.fold_auc) + 1)), "auc": self.fold_auc})
        return {"table": self.importance, "roc": self.roc, "folds": folds}

    def _make_summary(self) -> dict[str, Any]:
        level = f"{self._params['confidence']:.0%}"
        low, high = self.ci
        top = self.importance["column"][0]
        if self.drifted:
            headline = (
                f"joint drift: a classifier tells current from reference rows with AUC "
                f"{self.auc:.3f} ({level} CI {low:.3f}-{high:.3f}); most telling column: {top}"
            )
        else:
            headline = f"no joint drift: AUC {self.auc:.3f} ({level} CI {low:.3f}-{high:.3f})"
        subsampled = (
            self.n_reference < self.n_reference_total or self.n_current < self.n_current_total
        )
        if subsampled:
            headline += (
                f"; subsampled to {self.n_reference:,} of {self.n_reference_total:,} reference"
                f" and {self.n_current:,} of {self.n_current_total:,} current rows"
            )
        return {
            "headline": headline,
            "alert": self.drifted,
            "auc": self.auc,
            "auc_low": low,
            "auc_high": high,
            "p_value": self.p_value,
            "auc_std": math.sqrt(max(self.variance, 0.0)),
            "confidence": self._params["confidence"],
            "threshold": self._params["threshold"],
            "top_column": top,
            "n_columns": self.importance.height,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_reference_total": self.n_reference_total,
            "n_current_total": self.n_current_total,
            "subsampled": subsampled,
            "folds": self._params["folds"],
            "backend": "numpy (scikit-learn on the CPU)",
            "elapsed_s": round(self.elapsed_s, 4),
        }

    def metrics(self) -> dict[str, float]:
        import re

        out = super().metrics()
        for row in self.importance.iter_rows(named=True):
            key = re.sub(r"[^0-9A-Za-z_\-./ ]", "_", row["column"])
            out[f"{key}.importance"] = float(row["importance"])
        return out

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart of the result.

        Parameters
        ----------
        kind : {"importance", "roc"}
            Drop in AUC per shuffled column (with +/- one std over folds); or the ROC
            curve of the out-of-fold scores against the chance diagonal.
        """
        kind = kind or self.default_chart
        if kind == "importance":
            return _importance_chart(self, **kwargs)
        if kind == "roc":
            return _roc_chart(self, **kwargs)
        raise ParameterError("kind", "one of " + ", ".join(map(repr, CHARTS)), kind)


def _importance_chart(result: ClassifierDriftResult, *, top: int = 30) -> alt.TopLevelMixin:
    import altair as alt

    t = result.importance.head(top).with_columns(
        (pl.col("importance") - pl.col("std").fill_null(0.0)).alias("low"),
        (pl.col("importance") + pl.col("std").fill_null(0.0)).alias("high"),
    )
    y = alt.Y("column:N", sort="-x", title=None)
    bars = (
        alt.Chart(t)
        .mark_bar(color="#f79009")
        .encode(
            x=alt.X("importance:Q", title="drop in AUC when shuffled"),
            y=y,
            tooltip=["column", "kind", alt.Tooltip("importance:Q", format=".4f"),
                     alt.Tooltip("std:Q", format=".4f")],
        )
    )  # fmt: skip
    whiskers = alt.Chart(t).mark_rule(color="#344054").encode(x="low:Q", x2="high:Q", y=y)
    return (bars + whiskers).properties(
        title=f"What tells current from reference rows (AUC {result.auc:.3f})",
        width=480,
        height=alt.Step(16),
    )


def _roc_chart(result: ClassifierDriftResult) -> alt.TopLevelMixin:
    import altair as alt

    curve = (
        alt.Chart(result.roc)
        .mark_line(color="#f79009")
        .encode(
            x=alt.X("fpr:Q", title="false positive rate (reference rows flagged)"),
            y=alt.Y("tpr:Q", title="true positive rate (current rows flagged)"),
        )
    )
    chance = (
        alt.Chart(pl.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]}))
        .mark_line(strokeDash=[4, 4], color="#98a2b3")
        .encode(x="fpr:Q", y="tpr:Q")
    )
    low, high = result.ci
    return (curve + chance).properties(
        title=f"ROC of out-of-fold scores: AUC {result.auc:.3f} ({low:.3f}-{high:.3f})",
        width=360,
        height=360,
    )

"""``compare``: has production data drifted from the reference, where, when, how badly.

Data flows load (sources) -> reference profile and comparisons on the array backend
(engine, kernels) -> a :class:`DriftResult` that only presents (charts, widgets,
report, tracking).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import get_namespace
from aiops_lab.drift.deeper import embedding_columns, resolve_multivariate, run_deeper
from aiops_lab.drift.engine import ReferenceProfile
from aiops_lab.drift.quality import model_quality, resolve_task
from aiops_lab.drift.result import DECIDE_BY, Decision, DriftResult, decide
from aiops_lab.drift.sources import ColumnPlan, plan_columns, read_frame
from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, InputError, ParameterError
from aiops_lab.pvalues import CORRECTIONS, adjust

__all__ = ["compare"]


def compare(
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
) -> DriftResult:
    """Compare every column of ``current`` with ``reference`` and test for drift.

    Numeric columns get the two-sample Kolmogorov-Smirnov test, the Wasserstein
    distance, and PSI / Jensen-Shannon / Hellinger on ``bins`` reference-quantile bins;
    categorical columns (strings, booleans, categoricals, or listed in
    ``categorical``) get a chi-square test, PSI, Jensen-Shannon, Hellinger and L-inf on
    category shares. Null rates are compared too. P-values are corrected across
    columns. With ``window`` (or ``chunk_size``) the current data is also compared
    window by window, to show when drift started.

    Parameters
    ----------
    reference, current : polars DataFrame / LazyFrame, path, or frame-like
        The baseline (e.g. validation data) and the production sample.
    columns : list of str, optional
        Columns to compare; default all shared columns except the time, identifier-like
        and date columns.
    categorical : list of str, optional
        Columns to treat as categorical even if numeric (e.g. integer codes).
    time_column : str, optional
        Timestamp column of ``current``; needed for ``window``.
    window : str, optional
        Window length as a polars duration ("1d", "6h", "1w").
    chunk_size : int, optional
        Windows of this many consecutive rows instead (in time order when
        ``time_column`` is given).
    alpha : float
        Significance level for ``drifted`` (default 0.05).
    correction : {"bh", "holm", "bonferroni", "none"}
        Multiple-testing correction across columns (within each window).
    bins : int
        Reference-quantile bins for PSI / JS / Hellinger (default 10).
    decide_by : {"p_value", "psi", "js", "hellinger", "wasserstein_norm"}
        What flags a column as drifted: the corrected p-value below ``alpha`` (default)
        or a distance above ``threshold``.
    threshold : float, optional
        Threshold for distance-based decisions (defaults: psi 0.2, js 0.1,
        hellinger 0.1, wasserstein_norm 0.1).
    min_count : int
        Fewer non-null values than this on either side leaves a column untested.
    null_tolerance : float
        A change in the share of missing values is flagged (``null_drifted``) when it
        is significant and at least this large (default 0.01, one percentage point).
    prediction_column, label_column : str, optional
        Model output and ground truth; with both, realized model quality is computed
        per window (rows whose label has not arrived yet are left out).
    task : {"auto", "binary", "regression"}
        How to score model quality; "auto" infers it from the labels.
    multivariate : bool or list of {"mmd", "classifier", "reconstruction"}
        Also test the feature columns jointly: the MMD permutation test on the numeric
        features (standardized; rows with a missing value left out), a domain
        classifier (cross-validated AUC and the columns that drive it) and the PCA
        reconstruction error per window. ``True`` runs all three. Results go to
        ``result.extras``; a joint drift raises the alert even when no single column moved.
    embeddings : "auto", str or list of str, optional
        Embedding (list/array) columns to test with :func:`embedding_drift`, per window
        when windows are set; ``"auto"`` takes every list/array column.
    estimate_quality : bool
        Estimate a binary classifier's AUC and accuracy per window without labels
        (confidence-based, from the calibrated ``prediction_column`` scores), shown beside
        the realized values where labels exist.
    sample_rows : int
        Rows per side (a seeded random subset) for the pairwise and classifier work of
        ``multivariate`` and ``embeddings``.
    seed : int
        Seed for those subsets and permutations.
    backend : {"auto", "numpy", "cupy"}, optional
        Array backend; default from :func:`aiops_lab.set_config`.
    progress : bool, optional
        Show a progress bar over windows (default: when there are more than 5); for Dask
        inputs, over the cluster's tasks (default: on). Never in a headless report.

    Returns
    -------
    DriftResult

    Examples
    --------
    >>> import aiops_lab
    >>> ref = aiops_lab.datasets.load("credit_reference")
    >>> cur = aiops_lab.datasets.load("credit_production")
    >>> result = aiops_lab.drift.compare(ref, cur, time_column="timestamp", window="1d")
    >>> result.summary["dataset_drift"]
    True
    """
    # -- Dask inputs: per-partition summaries merged in a tree (aiops_lab.drift.distributed)
    args = dict(locals())  # the parameters, before any other name is bound
    from aiops_lab.drift.distributed import compare_dask, is_dask_frame

    if is_dask_frame(reference) or is_dask_frame(current):
        return compare_dask(**args)
    # -- end of the Dask hook
    started = time.perf_counter()
    _check_params(
        alpha,
        correction,
        bins,
        decide_by,
        threshold,
        min_count,
        window,
        chunk_size,
        time_column,
        task,
    )
    joint = resolve_multivariate(multivariate)
    if not isinstance(sample_rows, int) or sample_rows < 50:
        raise ParameterError("sample_rows", "an integer >= 50", sample_rows)
    xp, info = get_namespace(backend)
    ref = read_frame(reference, "reference")
    cur = read_frame(current, "current")
    exclude = [c for c in (time_column,) if c]
    for name, col in (
        ("time_column", time_column),
        ("prediction_column", prediction_column),
        ("label_column", label_column),
    ):
        if col is not None and col not in cur.columns:
            raise ColumnNotFoundError(col, f"the current data (from `{name}=`)", cur.columns)
    if time_column is not None:
        cur = _ensure_time(cur, time_column, "current")
        if time_column in ref.columns:
            ref = _ensure_time(ref, time_column, "reference")
        cur = cur.sort(time_column)
    task_kind = resolve_task(ref, cur, label_column, prediction_column, task)
    cat_extra = [c for c in (label_column,) if c and task_kind == "binary"]
    if prediction_column and task_kind == "binary" and _is_binary_values(cur[prediction_column]):
        cat_extra.append(prediction_column)
    plan = plan_columns(
        ref, cur, columns=columns, categorical=[*(categorical or []), *cat_extra], exclude=exclude
    )
    bounds = _window_bounds(cur, time_column, window, chunk_size)
    profile = ReferenceProfile(
        ref, plan, xp=xp, bins=bins, min_count=min_count, cur_rows_hint=cur.height,
        cat_frame=cur, retain=bounds is not None,
    )  # fmt: skip
    params = {
        "columns": plan.columns, "categorical": plan.categorical, "time_column": time_column, "window": window,
        "chunk_size": chunk_size, "alpha": alpha, "correction": correction, "bins": bins, "decide_by": decide_by,
        "threshold": threshold, "min_count": min_count, "null_tolerance": null_tolerance, "prediction_column": prediction_column,
        "label_column": label_column, "task": task_kind, "backend": info.name,
    }  # fmt: skip
    roles = {c: "feature" for c in plan.columns}
    if prediction_column in roles:
        roles[prediction_column] = "prediction"
    if label_column in roles:
        roles[label_column] = "label"
    overall = profile.compare(cur)
    rule = Decision(alpha, correction, decide_by, threshold, null_tolerance)
    table = _table(plan, overall, roles, rule)
    distributions = _distributions(plan, overall)
    windows = quality = None
    if bounds is not None:
        windows = _windowed(profile, cur, bounds, roles, rule, progress)
    if prediction_column and label_column and task_kind is not None:
        quality = model_quality(xp, ref, cur, prediction_column, label_column, task_kind, bounds)
    extras = {}
    emb_cols = embedding_columns(ref, cur, embeddings)
    if joint or emb_cols or estimate_quality:
        features = [c for c in plan.columns if roles[c] == "feature"]
        extras = run_deeper(
            ref, cur, features=features, numeric=[c for c in plan.numeric if c in features],
            multivariate=joint, embeddings=emb_cols, estimate_quality=estimate_quality,
            prediction_column=prediction_column, label_column=label_column, task=task_kind,
            time_column=time_column, window=window, chunk_size=chunk_size, rows=sample_rows,
            alpha=alpha, correction=correction, seed=seed, backend=backend, progress=progress,
        )  # fmt: skip
        for col in emb_cols:
            plan.skipped.pop(col, None)
        params.update(multivariate=joint, embeddings=emb_cols, estimate_quality=estimate_quality,
                      sample_rows=sample_rows, seed=seed)  # fmt: skip
    elapsed = time.perf_counter() - started
    return DriftResult(
        table=table, windows=windows, distributions=distributions, quality=quality,
        params=params, skipped=plan.skipped, backend=info, elapsed_s=elapsed,
        n_ref=ref.height, n_cur=cur.height, extras=extras,
    )  # fmt: skip


def _check_params(
    alpha, correction, bins, decide_by, threshold, min_count, window, chunk_size, time_column, task
) -> None:
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ParameterError(
            "alpha", "a number strictly between 0 and 1", alpha, "0.05 is customary."
        )
    if correction not in CORRECTIONS:
        raise ParameterError(
            "correction", "one of " + ", ".join(map(repr, CORRECTIONS)), correction
        )
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ParameterError("bins", "an integer >= 2", bins, "10 is customary for PSI.")
    if decide_by not in DECIDE_BY:
        raise ParameterError("decide_by", "one of " + ", ".join(map(repr, DECIDE_BY)), decide_by)
    if threshold is not None and (decide_by == "p_value" or not threshold > 0):
        raise ParameterError(
            "threshold", "a positive number, used with a distance in `decide_by`", threshold,
            "With decide_by='p_value' the cut-off is `alpha`.",
        )  # fmt: skip
    if not isinstance(min_count, int) or min_count < 1:
        raise ParameterError("min_count", "an integer >= 1", min_count)
    if window is not None and chunk_size is not None:
        raise ParameterError("window", "either `window` or `chunk_size`, not both", window)
    if window is not None and time_column is None:
        raise ParameterError(
            "time_column", "the timestamp column's name when `window` is given", None
        )
    if window is not None:
        if not isinstance(window, str):
            raise ParameterError("window", 'a duration string such as "1d" or "6h"', window)
        try:
            pl.Series([0], dtype=pl.Datetime("us")).dt.truncate(window)
        except Exception:
            raise ParameterError(
                "window", 'a polars duration string such as "1d", "6h", "30m", "1w"', window
            ) from None
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ParameterError("chunk_size", "a positive integer number of rows", chunk_size)
    if task not in ("auto", "binary", "regression"):
        raise ParameterError("task", "'auto', 'binary' or 'regression'", task)


def _ensure_time(frame: pl.DataFrame, column: str, side: str) -> pl.DataFrame:
    dtype = frame.schema[column]
    if dtype.is_temporal() and dtype != pl.Time:
        if dtype == pl.Date:
            return frame.with_columns(pl.col(column).cast(pl.Datetime("us")))
        return frame
    if dtype == pl.Utf8:
        try:
            return frame.with_columns(pl.col(column).str.to_datetime(time_zone="UTC"))
        except Exception as exc:
            msg = f"Time column {column!r} of the {side} data holds strings that are not ISO timestamps ({exc})."
            raise InputError(msg) from exc
    msg = f"Time column {column!r} of the {side} data has type {dtype}; expected a Datetime, Date or ISO string."
    raise InputError(msg)


def _is_binary_values(series: pl.Series) -> bool:
    if series.dtype == pl.Boolean:
        return True
    if not series.dtype.is_integer():
        return False
    return set(series.drop_nulls().unique().to_list()) <= {0, 1}


def _table(
    plan: ColumnPlan, stats: dict[str, Any], roles: dict[str, str], rule: Decision
) -> pl.DataFrame:
    n_num = len(plan.numeric)
    kinds = ["numeric"] * n_num + ["categorical"] * len(plan.categorical)
    p_adj = adjust(stats["p_value"], rule.correction)
    frame = pl.DataFrame(
        {
            "column": plan.columns,
            "kind": kinds,
            "role": [roles[c] for c in plan.columns],
            "n_ref": stats["n_ref"].astype(np.int64),
            "n_cur": stats["n_cur"].astype(np.int64),
            **{k: stats[k] for k in ("null_ref", "null_cur", "ks", "ks_p", "wasserstein", "wasserstein_norm",
                                     "psi", "js", "hellinger", "chi2", "chi2_p", "linf", "null_p", "p_value")},
            "p_adjusted": p_adj,
        },
        strict=False,
    ).fill_nan(None)  # fmt: skip
    frame = frame.with_columns(
        pl.Series("unseen_categories", [len(u) for u in stats["unseen"]], dtype=pl.Int64),
        pl.Series("unseen", [", ".join(u[:10]) or None for u in stats["unseen"]], dtype=pl.Utf8),
        pl.Series("reason", stats["reason"], dtype=pl.Utf8),
    )
    return decide(frame, rule)


def _distributions(plan: ColumnPlan, stats: dict[str, Any]) -> pl.DataFrame:
    """Ref / current shares per bin (numeric) or category, for distribution charts."""
    rows: dict[str, list[Any]] = {
        k: [] for k in ("column", "kind", "bin", "label", "left", "right", "ref_share", "cur_share")
    }
    n_num = len(plan.numeric)
    for i, col in enumerate(plan.columns):
        r = np.asarray(stats["ref_bins"][i], dtype=np.float64)
        c = np.asarray(stats["cur_bins"][i], dtype=np.float64)
        rs, cs = r / max(r.sum(), 1.0), c / max(c.sum(), 1.0)
        if i < n_num:
            e = np.asarray(stats["edges"][i], dtype=np.float64)
            lefts = np.concatenate([[-np.inf], e])
            rights = np.concatenate([e, [np.inf]])
            keep = [
                k for k in range(len(rs)) if k == 0 or lefts[k] != rights[k]
            ]  # drop empty duplicate-edge bins
            labels = [_interval(lefts[k], rights[k]) for k in keep]
        else:
            keep = list(range(len(rs)))
            lefts = rights = np.full(len(rs), np.nan)
            labels = list(stats["levels"][i])
        for j, k in enumerate(keep):
            rows["column"].append(col)
            rows["kind"].append("numeric" if i < n_num else "categorical")
            rows["bin"].append(j)
            rows["label"].append(labels[j])
            rows["left"].append(float(lefts[k]) if np.isfinite(lefts[k]) else None)
            rows["right"].append(float(rights[k]) if np.isfinite(rights[k]) else None)
            rows["ref_share"].append(float(rs[k]))
            rows["cur_share"].append(float(cs[k]))
    return pl.DataFrame(rows, schema_overrides={"left": pl.Float64, "right": pl.Float64})


def _interval(lo: float, hi: float) -> str:
    a = "-inf" if not np.isfinite(lo) else f"{lo:.4g}"
    b = "inf" if not np.isfinite(hi) else f"{hi:.4g}"
    return f"[{a}, {b})"


def _window_bounds(
    cur: pl.DataFrame, time_column: str | None, window: str | None, chunk_size: int | None
) -> list[tuple[Any, Any, int, int]] | None:
    """(start label, end label, row offset, row count) per window of the sorted current frame."""
    if window is not None and time_column is not None:
        ts = cur[time_column]
        if ts.null_count() == cur.height:
            raise EmptyInputError(
                f"Time column {time_column!r} is all null, so window={window!r} yields no rows."
            )
        starts = ts.dt.truncate(window)
        groups = (
            pl.DataFrame({"start": starts}).with_row_index("row")
            .drop_nulls("start")
            .group_by("start", maintain_order=True)
            .agg(pl.col("row").min().alias("offset"), pl.len().alias("n"))
            .sort("start")
        )  # fmt: skip
        if groups.height == 0:
            raise EmptyInputError(f"window={window!r} over {time_column!r} yields no rows.")
        ends = groups["start"].dt.offset_by(window)
        return list(
            zip(
                groups["start"].to_list(),
                ends.to_list(),
                groups["offset"].to_list(),
                groups["n"].to_list(),
                strict=True,
            )
        )
    if chunk_size is not None:
        out = []
        for off in range(0, cur.height, chunk_size):
            n = min(chunk_size, cur.height - off)
            if time_column is not None:
                out.append((cur[time_column][off], cur[time_column][off + n - 1], off, n))
            else:
                out.append((off, off + n, off, n))
        return out
    return None


def _windowed(
    profile: ReferenceProfile,
    cur: pl.DataFrame,
    bounds: list[tuple[Any, Any, int, int]],
    roles: dict[str, str],
    rule: Decision,
    progress: bool | None,
) -> pl.DataFrame:
    from aiops_lab.progress import progress_bar

    parts = []
    show = progress if progress is not None else len(bounds) > 5
    for start, end, offset, n in progress_bar(bounds, desc="drift windows", enabled=show):
        stats = profile.compare(cur.slice(offset, n))
        part = _table(profile.plan, stats, roles, rule)
        parts.append(
            part.with_columns(pl.lit(start).alias("window_start"), pl.lit(end).alias("window_end"))
        )
    frame = pl.concat(parts, how="vertical_relaxed")
    lead = ["window_start", "window_end"]
    return frame.select(lead + [c for c in frame.columns if c not in lead])

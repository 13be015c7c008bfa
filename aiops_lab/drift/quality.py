"""Realized model quality over time, from predictions and (delayed) labels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy
from aiops_lab.drift import kernels as K
from aiops_lab.errors import InputError

__all__ = ["METRICS", "model_quality", "resolve_task"]

#: metrics per task; the first is the headline metric
METRICS = {"binary": ("auc", "accuracy", "positive_rate"), "regression": ("mae", "rmse", "bias")}


def resolve_task(
    ref: pl.DataFrame, cur: pl.DataFrame, label: str | None, prediction: str | None, task: str
) -> str | None:
    """Decide "binary" or "regression" (None without labels and predictions)."""
    if label is None or prediction is None:
        return None if task == "auto" else task
    for side, frame in (("reference", ref), ("current", cur)):
        for col in (label, prediction):
            if col not in frame.columns:
                from aiops_lab.errors import ColumnNotFoundError

                raise ColumnNotFoundError(col, f"the {side} data", frame.columns)
            dtype = frame.schema[col]
            if not (dtype.is_numeric() or dtype == pl.Boolean):
                msg = f"Column {col!r} ({side}) has type {dtype}; model quality needs numeric or boolean predictions and labels."
                raise InputError(msg)
    if task != "auto":
        return task
    values = set(
        pl.concat([ref[label], cur[label]]).drop_nulls().cast(pl.Float64).unique().to_list()
    )
    return "binary" if values <= {0.0, 1.0} else "regression"


def _scores(xp: Any, pred: np.ndarray, label: np.ndarray, task: str) -> dict[str, float]:
    n = label.shape[0]
    if n == 0:
        return {m: math.nan for m in METRICS[task]}
    if task == "binary":
        is_score = not np.all((pred == 0) | (pred == 1))
        hard = (pred >= 0.5).astype(np.float64) if is_score else pred
        auc = K.auc(xp, from_numpy(pred, xp), from_numpy(label, xp)) if is_score else math.nan
        return {
            "auc": auc,
            "accuracy": float(np.mean(hard == label)),
            "positive_rate": float(np.mean(label)),
        }
    err = pred - label
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
    }


def _labeled(frame: pl.DataFrame, prediction: str, label: str) -> tuple[np.ndarray, np.ndarray]:
    sub = (
        frame.select(pl.col(prediction).cast(pl.Float64), pl.col(label).cast(pl.Float64))
        .drop_nulls()
        .drop_nans()
    )
    return sub[prediction].to_numpy(), sub[label].to_numpy()


def model_quality(
    xp: Any,
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    prediction: str,
    label: str,
    task: str,
    bounds: list[tuple[Any, Any, int, int]] | None,
) -> pl.DataFrame:
    """Long table: window_start, window_end, metric, value, reference_value, n_labeled, n_rows.

    Rows whose label has not arrived (null) are left out; a window without labels has
    null values. Without windows, one row per metric for the whole current sample.
    """
    ref_scores = _scores(xp, *_labeled(ref, prediction, label), task)
    windows = bounds or [(None, None, 0, cur.height)]
    rows: dict[str, list[Any]] = {
        k: []
        for k in (
            "window_start",
            "window_end",
            "metric",
            "value",
            "reference_value",
            "n_labeled",
            "n_rows",
        )
    }
    for start, end, offset, n in windows:
        pred, lab = _labeled(cur.slice(offset, n), prediction, label)
        scores = _scores(xp, pred, lab, task)
        for metric, value in scores.items():
            rows["window_start"].append(start)
            rows["window_end"].append(end)
            rows["metric"].append(metric)
            rows["value"].append(None if math.isnan(value) else value)
            ref_value = ref_scores[metric]
            rows["reference_value"].append(None if math.isnan(ref_value) else ref_value)
            rows["n_labeled"].append(int(lab.shape[0]))
            rows["n_rows"].append(int(n))
    return pl.DataFrame(rows, strict=False)

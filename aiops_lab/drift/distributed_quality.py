"""Realized model quality on Dask: mergeable sums and counts, summarized with the drift.

:func:`~aiops_lab.drift.distributed.compare_dask` reduces the predictions and labels
(``prediction_column`` with ``label_column``) in the same pass over the partitions as
the per-column statistics: each partition summary (overall, or per window) carries a
:class:`_Quality`, merged in the same tree, and :func:`_quality_table` turns the root
into the long table of :func:`aiops_lab.drift.quality.model_quality`.

Per window (or overall) and per partition, over the rows whose prediction and label
are both present, as :func:`aiops_lab.drift.quality.model_quality` counts them:

* regression -- the count and the sums of ``|e|``, ``e**2`` and ``e`` (``e`` =
  prediction - label): MAE, RMSE and bias equal the in-memory values up to rounding;
* binary -- the count, the correct decisions (scores thresholded at 0.5) and the sum
  of labels: accuracy and positive rate as in memory. A window whose labelled
  predictions are all 0 or 1 gets no AUC, as in memory.
* binary AUC -- ``P(s+ > s-) + P(s+ = s-) / 2``. Exact while the scores of a window
  take at most ``window_grid`` distinct values (``grid`` overall): positives and
  negatives are then counted per distinct score. Otherwise from positives and
  negatives counted on a grid of reference-score order statistics (per grid value
  and per open cell between them, as for KS): pairs in different slots, or tied on
  a grid value, are exact; a pair in the same open cell is unknown and counted 1/2,
  so ``|auc - auc_exact| <= auc_error = 0.5 * sum_k pos_k * neg_k / (P * N)`` over
  the open cells ``k``. ``params["dask"]["quality_error_bounds"]`` holds
  ``auc_error`` per window (0 when exact).

Reference values come from the in-memory reference, exactly as in memory.

Cost: about ``56 * (grid + window_grid * windows)`` bytes per summary for a binary
model's AUC (a few numbers for a regression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.drift.distributed_partition import _slot_counts


@dataclass
class _QualitySpec:
    """Realized-quality columns, the task, and the AUC grids (reference score order statistics)."""

    prediction: str
    label: str
    task: str
    grid: np.ndarray  # overall AUC grid
    window_grid: np.ndarray  # per-window AUC grid
    cap: int  # distinct scores kept exactly, overall
    window_cap: int  # the same per window


@dataclass
class _Quality:
    """Mergeable realized-quality sums of a set of labelled rows (see the module docstring)."""

    n: int  # labelled rows (prediction and label both present)
    # regression: sum |e|, sum e^2, sum e; binary: correct, sum of labels, scores not 0/1
    sums: np.ndarray
    pos: np.ndarray | None = None  # binary: positives per grid slot (as _Summary.slots)
    neg: np.ndarray | None = None  # binary: negatives per grid slot
    values: np.ndarray | None = None  # binary: the distinct scores, None once more than ``cap``
    vpos: np.ndarray | None = None  # positives per distinct score
    vneg: np.ndarray | None = None  # negatives per distinct score
    cap: int = 0

    def merge(self, other: _Quality) -> _Quality:
        """A new summary of both sets of rows (neither input is changed)."""
        out = _Quality(n=self.n + other.n, sums=self.sums + other.sums, cap=self.cap)
        if self.pos is None or other.pos is None or self.neg is None or other.neg is None:
            return out
        out.pos, out.neg = self.pos + other.pos, self.neg + other.neg
        exact = [(q.values, q.vpos, q.vneg) for q in (self, other)]
        if all(v is not None and p is not None and n is not None for v, p, n in exact):
            values = np.union1d(exact[0][0], exact[1][0])  # type: ignore[arg-type]
            if values.size <= self.cap:
                vpos = np.zeros(values.size, dtype=np.int64)
                vneg = np.zeros(values.size, dtype=np.int64)
                for v, p, n in exact:
                    at = np.searchsorted(values, v)  # type: ignore[arg-type]
                    vpos[at] += p  # type: ignore[arg-type]
                    vneg[at] += n  # type: ignore[arg-type]
                out.values, out.vpos, out.vneg = values, vpos, vneg
        return out


def _quality_summary(frame: pl.DataFrame, q: _QualitySpec, grid: np.ndarray, cap: int) -> _Quality:
    """Reduce the labelled rows of a frame to a :class:`_Quality` (rules of ``model_quality``)."""
    from aiops_lab.drift.quality import _labeled

    pred, lab = _labeled(frame, q.prediction, q.label)
    if q.task != "binary":
        err = pred - lab
        sums = np.array([np.abs(err).sum(), (err * err).sum(), err.sum()])
        return _Quality(n=int(lab.size), sums=sums, cap=cap)
    hard = (pred >= 0.5).astype(np.float64)  # equals pred itself for 0/1 predictions
    non01 = ~((pred == 0) | (pred == 1))
    sums = np.array([float(np.sum(hard == lab)), float(lab.sum()), float(non01.sum())])
    pos, neg = np.sort(pred[lab == 1]), np.sort(pred[lab == 0])
    out = _Quality(
        n=int(lab.size),
        sums=sums,
        pos=_slot_counts(pos, grid),
        neg=_slot_counts(neg, grid),
        cap=cap,
    )
    values = np.unique(pred)
    if values.size <= cap:
        out.values = values
        out.vpos = np.searchsorted(pos, values, "right") - np.searchsorted(pos, values, "left")
        out.vneg = np.searchsorted(neg, values, "right") - np.searchsorted(neg, values, "left")
    return out


# -- realized model quality from summaries ----------------------------------------------------
def _auc(q: _Quality) -> tuple[float, float]:
    """AUC (ties count 1/2) and ``auc_error`` from a binary quality summary.

    From the exact distinct scores when they were kept (error 0); else from the grid
    slots, where pairs in one open cell count 1/2 and add 1/2 each to the error bound.
    """
    exact = q.values is not None
    pos = np.asarray(q.vpos if exact else q.pos, dtype=np.float64)
    neg = np.asarray(q.vneg if exact else q.neg, dtype=np.float64)
    pairs = pos.sum() * neg.sum()
    if pairs == 0:
        return math.nan, math.nan
    tied = pos * neg
    auc = (pos @ (np.cumsum(neg) - neg) + 0.5 * tied.sum()) / pairs
    return float(auc), 0.0 if exact else float(0.5 * tied[0::2].sum() / pairs)


def _quality_scores(q: _Quality | None, task: str) -> tuple[dict[str, float], float]:
    """The metrics of ``quality._scores`` from a summary, and the AUC error bound."""
    from aiops_lab.drift.quality import METRICS

    if q is None or q.n == 0:
        return dict.fromkeys(METRICS[task], math.nan), math.nan
    n, s = q.n, q.sums
    if task != "binary":
        return {"mae": s[0] / n, "rmse": math.sqrt(s[1] / n), "bias": s[2] / n}, math.nan
    auc, err = _auc(q) if s[2] > 0 else (math.nan, math.nan)  # 0/1 predictions: no AUC
    return {"auc": auc, "accuracy": s[0] / n, "positive_rate": s[1] / n}, err


def _quality_table(
    ref: pl.DataFrame, q: _QualitySpec, parts: list[tuple[Any, Any, _Quality | None, int]]
) -> tuple[pl.DataFrame, dict[str, list[Any]] | None]:
    """The long table of ``quality.model_quality``, and the AUC error bounds per window."""
    from aiops_lab.drift.quality import _labeled, _scores

    ref_scores = _scores(np, *_labeled(ref, q.prediction, q.label), q.task)
    keys = ("window_start", "window_end", "metric", "value", "reference_value", "n_labeled", "n_rows")  # fmt: skip
    rows: dict[str, list[Any]] = {k: [] for k in keys}
    bounds: dict[str, list[Any]] = {"window_start": [], "window_end": [], "auc_error": []}
    for start, end, summary, n_rows in parts:
        scores, err = _quality_scores(summary, q.task)
        for metric, value in scores.items():
            ref_value = ref_scores[metric]
            for key, v in zip(keys, (
                start, end, metric, None if math.isnan(value) else float(value),
                None if math.isnan(ref_value) else ref_value,
                summary.n if summary is not None else 0, int(n_rows),
            ), strict=True):  # fmt: skip
                rows[key].append(v)
        bounds["window_start"].append(start)
        bounds["window_end"].append(end)
        bounds["auc_error"].append(err)
    return pl.DataFrame(rows, strict=False), bounds if q.task == "binary" else None

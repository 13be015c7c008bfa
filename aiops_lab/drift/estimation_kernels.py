"""Model-quality kernels for binary classifiers, written against the array API standard.

Arrays in, arrays out; ``xp`` is passed down by the caller (NumPy, CuPy or any
array-API namespace). Nothing here imports polars, altair or scikit-learn.

Two families:

* *expected* quantities, computed from calibrated probabilities ``p`` alone (no
  labels): if every label is an independent Bernoulli(``p``) draw, the expected
  confusion matrix is a sum of ``p`` and ``1 - p`` over predicted positives and
  negatives, and the expected ROC curve follows from cumulative sums of ``p`` and
  ``1 - p`` in score order (confidence-based performance estimation);
* *realized* quantities, from labels that have arrived.

Confusion matrices are 1-D arrays ``[tp, fp, fn, tn]``.
"""

from __future__ import annotations

import math
from typing import Any

from aiops_lab.drift import kernels as K

__all__ = [
    "expected_auc",
    "expected_confusion",
    "expected_variances",
    "rates",
    "realized_auc",
    "realized_confusion",
]


def expected_confusion(xp: Any, p: Any, predicted: Any) -> Any:
    """Expected ``[tp, fp, fn, tn]`` when each label is Bernoulli(``p``).

    Parameters
    ----------
    p : array of float, shape (n,)
        Calibrated probabilities of the positive class.
    predicted : array of bool, shape (n,)
        The model's decision (True = predicted positive).
    """
    zero = xp.zeros_like(p)
    q = 1.0 - p
    return xp.stack(
        [
            xp.sum(xp.where(predicted, p, zero)),
            xp.sum(xp.where(predicted, q, zero)),
            xp.sum(xp.where(predicted, zero, p)),
            xp.sum(xp.where(predicted, zero, q)),
        ]
    )


def expected_variances(xp: Any, p: Any, predicted: Any) -> Any:
    """Variances ``[var tp, var fn]`` of the true-positive and false-negative counts.

    Each row contributes a Bernoulli variance ``p (1 - p)`` to the count of its side
    (``fp = n_predicted_positive - tp`` and ``tn = n_predicted_negative - fn``, so two
    variances describe the whole matrix).
    """
    v = p * (1.0 - p)
    zero = xp.zeros_like(p)
    return xp.stack([xp.sum(xp.where(predicted, v, zero)), xp.sum(xp.where(predicted, zero, v))])


def expected_auc(xp: Any, scores: Any, p: Any) -> float:
    """Expected ROC AUC from ``scores`` (for the order) and calibrated ``p``.

    Thresholds run over the distinct scores from the highest down; at each one the
    expected true-positive count is the cumulative sum of ``p`` and the expected
    false-positive count that of ``1 - p``. Rows with tied scores enter together, and
    the area under the expected (FPR, TPR) curve is taken with the trapezoid rule.
    NaN when the expected positives or negatives are zero.
    """
    n = int(scores.shape[0])
    if n == 0:
        return math.nan
    order = xp.argsort(scores, descending=True, stable=True)
    s = xp.take(scores, order)
    w = xp.take(p, order)
    tp = xp.cumulative_sum(w)
    fp = xp.cumulative_sum(1.0 - w)
    pos, neg = float(tp[-1]), float(fp[-1])
    if not (pos > 0.0 and neg > 0.0):
        return math.nan
    # the curve only moves at the last row of each group of equal scores
    last = xp.concat([s[:-1] != s[1:], xp.ones((1,), dtype=xp.bool)])
    zero = xp.zeros((1,), dtype=tp.dtype)
    tpr = xp.concat([zero, tp[last] / pos])
    fpr = xp.concat([zero, fp[last] / neg])
    area = xp.sum((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1])) / 2.0
    return float(area)


def realized_confusion(xp: Any, labels: Any, predicted: Any) -> Any:
    """Observed ``[tp, fp, fn, tn]`` counts (as floats) for 0/1 ``labels``."""
    y = labels == 1
    f = xp.astype
    return xp.stack(
        [
            xp.sum(f(predicted & y, xp.float64)),
            xp.sum(f(predicted & ~y, xp.float64)),
            xp.sum(f(~predicted & y, xp.float64)),
            xp.sum(f(~predicted & ~y, xp.float64)),
        ]
    )


def realized_auc(xp: Any, scores: Any, labels: Any) -> float:
    """ROC AUC of ``scores`` for 0/1 ``labels`` (ties count 1/2); NaN with one class."""
    return K.auc(xp, scores, labels)


def rates(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of a (possibly expected) confusion matrix.

    A ratio whose denominator is zero is NaN.
    """

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    return {
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2.0 * tp, 2.0 * tp + fp + fn),
    }

"""PCA reconstruction error, written once against the array API standard.

Arrays in, arrays out; ``xp`` is passed down by the caller (NumPy, CuPy or any
array-API namespace such as array_api_strict). Nothing here imports polars, altair
or scikit-learn.

Layout: a sample is ``(n, d)`` -- one row per observation, one column per feature --
the usual layout for PCA, so the ``d x d`` covariance is ``z.T @ z``. Features are
few (tens to hundreds) and rows many, so the principal axes come from ``eigh`` of the
covariance: one pass over the rows and a tiny eigenproblem, instead of an SVD of the
whole ``(n, d)`` matrix.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

__all__ = [
    "PCAModel",
    "fit",
    "fit_pca",
    "fit_scaler",
    "n_components_for",
    "reconstruction_error",
    "standardize",
    "window_means",
]


class PCAModel(NamedTuple):
    """A standardizer and the principal axes fitted on the reference.

    ``mean`` and ``scale`` standardize raw features; ``center`` is the mean of the
    standardized reference (zero up to rounding, kept so the reconstruction is exactly
    that of ``sklearn.decomposition.PCA``); ``components`` is ``(k, d)``, one unit axis
    per row; ``explained_variance`` and ``explained_variance_ratio`` cover all ``d``
    axes, largest first.
    """

    mean: Any
    scale: Any
    center: Any
    components: Any
    explained_variance: Any
    explained_variance_ratio: Any


def fit_scaler(xp: Any, x: Any) -> tuple[Any, Any]:
    """Mean and population standard deviation (ddof=0) of each column, ignoring non-finite values.

    A column without spread gets scale 1 (as ``sklearn.preprocessing.StandardScaler``),
    so any value it takes later that differs from the reference lands wholly in the
    reconstruction error. A column without any finite value gets mean 0.
    """
    finite = xp.isfinite(x)
    zero = xp.asarray(0.0, dtype=x.dtype)
    count = xp.sum(xp.astype(finite, x.dtype), axis=0)
    safe = xp.maximum(count, xp.ones_like(count))
    filled = xp.where(finite, x, zero)
    mean = xp.sum(filled, axis=0) / safe
    dev = xp.where(finite, x - mean[None, :], zero)
    sd = xp.sqrt(xp.sum(dev * dev, axis=0) / safe)
    # StandardScaler's rule: a spread at rounding level is no spread
    tiny = 10.0 * xp.finfo(x.dtype).eps * xp.maximum(xp.abs(mean), xp.ones_like(mean))
    scale = xp.where(sd > tiny, sd, xp.ones_like(sd))
    return mean, scale


def standardize(xp: Any, x: Any, mean: Any, scale: Any) -> Any:
    """``(x - mean) / scale`` with non-finite values imputed by the mean (so they become 0)."""
    z = (x - mean[None, :]) / scale[None, :]
    return xp.where(xp.isfinite(x), z, xp.asarray(0.0, dtype=x.dtype))


def n_components_for(xp: Any, ratio: Any, variance: float) -> int:
    """Fewest leading axes whose explained-variance ratios sum to more than ``variance``.

    The rule of ``PCA(n_components=variance)`` in scikit-learn: the count of cumulative
    ratios at or below ``variance``, plus one, at most ``d``.
    """
    cumulative = xp.cumulative_sum(ratio)
    below = int(xp.sum(xp.astype(cumulative <= variance, xp.int64)))
    return max(1, min(below + 1, int(ratio.shape[0])))


def fit_pca(xp: Any, z: Any, variance: float) -> tuple[Any, Any, Any, Any]:
    """Principal axes of ``z`` (``(n, d)``, n >= 2) keeping ``variance`` of the variance.

    Returns ``(center, components (k, d), explained_variance (d,), ratio (d,))``. The
    variances use ``n - 1`` as scikit-learn does. Each axis is signed so that its
    largest-magnitude loading is positive, which makes the output reproducible across
    backends (an axis and its negative describe the same subspace).
    """
    n = int(z.shape[0])
    center = xp.mean(z, axis=0)
    zc = z - center[None, :]
    cov = (zc.T @ zc) / float(n - 1)
    values, vectors = xp.linalg.eigh(cov)
    values = xp.flip(values)
    vectors = xp.flip(vectors, axis=1)
    # eigh of a covariance can return rounding-level negatives for empty directions
    values = xp.maximum(values, xp.asarray(0.0, dtype=values.dtype))
    total = xp.sum(values)
    ratio = values / total if float(total) > 0 else xp.zeros_like(values)
    axes = vectors.T  # (d, d), one axis per row
    pivot = xp.argmax(xp.abs(axes), axis=1)
    lead = xp.take_along_axis(axes, pivot[:, None], axis=1)
    axes = xp.where(lead < 0, -axes, axes)
    k = n_components_for(xp, ratio, variance) if float(total) > 0 else 1
    return center, axes[:k, :], values, ratio


def fit(xp: Any, x: Any, variance: float) -> PCAModel:
    """Standardize ``x`` (``(n, d)``, NaN allowed) and fit PCA on it: the whole reference fit."""
    mean, scale = fit_scaler(xp, x)
    z = standardize(xp, x, mean, scale)
    center, components, explained, ratio = fit_pca(xp, z, variance)
    return PCAModel(mean, scale, center, components, explained, ratio)


def reconstruction_error(xp: Any, z: Any, center: Any, components: Any) -> Any:
    """Euclidean distance between each standardized row and its projection on ``components``.

    ``|| (z - center) - ((z - center) W^T) W ||`` per row, ``W`` the ``(k, d)`` axes;
    the distance scikit-learn's ``inverse_transform(transform(z))`` leaves.
    """
    zc = z - center[None, :]
    residual = zc - (zc @ components.T) @ components
    return xp.sqrt(xp.sum(residual * residual, axis=1))


def window_means(xp: Any, values: Any, offsets: Any, counts: Any) -> Any:
    """Mean of ``values[offset : offset + count]`` for every window, from one cumulative sum.

    ``offsets`` and ``counts`` are int64 arrays; windows with no rows give NaN.
    """
    zero = xp.zeros((1,), dtype=values.dtype)
    cum = xp.concat([zero, xp.cumulative_sum(values)])
    total = xp.take(cum, offsets + counts) - xp.take(cum, offsets)
    n = xp.astype(counts, values.dtype)
    nan = xp.asarray(math.nan, dtype=values.dtype)
    return xp.where(counts > 0, total / xp.where(counts > 0, n, xp.ones_like(n)), nan)

"""P-values and multiple-testing corrections (host side, SciPy's distributions).

The statistics are computed on the array backend; turning a handful of statistics
(one per column) into p-values is cheap and is done here with SciPy, so results agree
with ``scipy.stats`` exactly.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import special, stats

from aiops_lab.errors import ParameterError

__all__ = ["CORRECTIONS", "adjust", "chi2_pvalue", "ks_pvalue", "null_rate_test"]

CORRECTIONS = ("bh", "holm", "bonferroni", "none")
#: scipy.stats.ks_2samp uses the exact distribution up to this sample size
_KS_EXACT_MAX_N = 10_000

try:  # the exact two-sample distribution SciPy uses; fall back to the asymptotic one
    from scipy.stats._stats_py import _attempt_exact_2kssamp as _exact_2samp
except ImportError:  # pragma: no cover - depends on SciPy internals
    _exact_2samp = None


def ks_pvalue(d: Any, n1: Any, n2: Any) -> np.ndarray:
    """Two-sided p-values of two-sample KS statistics, as ``scipy.stats.ks_2samp``.

    Uses the exact distribution when ``max(n1, n2) <= 10000`` (falling back to the
    asymptotic one when the exact computation fails, as SciPy does) and
    ``kstwo.sf(d, round(n1 n2 / (n1 + n2)))`` otherwise. Entries with ``n1`` or
    ``n2`` equal to zero or a NaN statistic give NaN.
    """
    d = np.asarray(d, dtype=np.float64)
    n1 = np.asarray(n1, dtype=np.int64)
    n2 = np.asarray(n2, dtype=np.int64)
    out = np.full(d.shape, np.nan)
    ok = (n1 > 0) & (n2 > 0) & np.isfinite(d)
    exact = ok & (np.maximum(n1, n2) <= _KS_EXACT_MAX_N)
    if _exact_2samp is not None:
        for i in np.flatnonzero(exact):
            a, b = int(n1[i]), int(n2[i])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                success, _, prob = _exact_2samp(a, b, math.gcd(a, b), float(d[i]), "two-sided")
            if success:
                out[i] = prob
            else:
                exact[i] = False
    else:  # pragma: no cover
        exact[:] = False
    asymp = ok & ~exact
    if asymp.any():
        m = np.maximum(n1[asymp], n2[asymp]).astype(np.float64)
        n = np.minimum(n1[asymp], n2[asymp]).astype(np.float64)
        out[asymp] = [
            _kstwo_sf(float(x), float(k))
            for x, k in zip(d[asymp], np.round(m * n / (m + n)), strict=True)
        ]
    return np.clip(out, 0.0, 1.0)


def _kstwo_sf(x: float, n: float) -> float:
    """``scipy.stats.kstwo.sf(x, n)``, with SciPy's slowest branch computed faster.

    For large ``n`` and ``2.2 <= n x^2 < 370`` SciPy evaluates ``2 * smirnov(n, x)``
    term by term in a scalar loop (about a second at n = 10^6). The same exact sum,
    Smirnov's one-sided formula, is evaluated here as one vectorised log-sum-exp,
    agreeing to about 1e-9 relative.
    """
    t = n * x
    if n > 140 and 1.0 < t < n - 1 and x < 0.5 and 2.2 <= t * x < 370.0:
        return min(2.0 * _smirnov_sf(n, x), 1.0)
    return float(stats.kstwo.sf(x, n))


def _smirnov_sf(n: float, e: float) -> float:
    """P(D+_n >= e), Smirnov (1944): e * sum_j C(n, j) (1 - e - j/n)^(n-j) (e + j/n)^(j-1)."""
    j = np.arange(int(np.floor(n * (1.0 - e))) + 1, dtype=np.float64)
    rest = (n * (1.0 - e) - j) / n
    with np.errstate(divide="ignore"):
        log_terms = (
            special.gammaln(n + 1) - special.gammaln(j + 1) - special.gammaln(n - j + 1)
            + (n - j) * np.log(rest)
            + (j - 1) * np.log(e + j / n)
        )  # fmt: skip
    return float(e * np.exp(special.logsumexp(log_terms)))


def chi2_pvalue(statistic: Any, dof: Any) -> np.ndarray:
    """Upper-tail chi-square p-values; ``dof <= 0`` (a single category) gives NaN."""
    statistic = np.asarray(statistic, dtype=np.float64)
    dof = np.asarray(dof)
    out = np.full(statistic.shape, np.nan)
    ok = (dof > 0) & np.isfinite(statistic)
    out[ok] = stats.chi2.sf(statistic[ok], dof[ok])
    return out


def null_rate_test(null_ref: Any, n_ref: Any, null_cur: Any, n_cur: Any) -> np.ndarray:
    """Chi-square test (no continuity correction) of the 2x2 table null / not null.

    ``n_ref`` and ``n_cur`` are row counts including nulls. A table with an empty
    margin (no nulls at all, or nothing but nulls) has no test: NaN.
    """
    a = np.asarray(null_ref, dtype=np.float64)
    b = np.asarray(n_ref, dtype=np.float64) - a
    c = np.asarray(null_cur, dtype=np.float64)
    d = np.asarray(n_cur, dtype=np.float64) - c
    total = a + b + c + d
    rows = np.stack([a + b, c + d])
    cols = np.stack([a + c, b + d])
    ok = (rows > 0).all(axis=0) & (cols > 0).all(axis=0)
    out = np.full(a.shape, np.nan)
    if ok.any():
        t = total[ok]
        obs = np.stack([a[ok], b[ok], c[ok], d[ok]])
        exp = (
            np.stack(
                [
                    rows[0, ok] * cols[0, ok],
                    rows[0, ok] * cols[1, ok],
                    rows[1, ok] * cols[0, ok],
                    rows[1, ok] * cols[1, ok],
                ]
            )
            / t
        )
        chi2 = ((obs - exp) ** 2 / exp).sum(axis=0)
        out[ok] = stats.chi2.sf(chi2, 1)
    return out


def adjust(p_values: Any, method: str = "bh") -> np.ndarray:
    """Correct p-values for multiple testing; NaN entries are left out and stay NaN.

    Parameters
    ----------
    p_values : array-like
        Raw p-values, one per test.
    method : {"bh", "holm", "bonferroni", "none"}
        Benjamini-Hochberg (false discovery rate), Holm step-down or Bonferroni
        (family-wise error rate), or no correction.
    """
    if method not in CORRECTIONS:
        raise ParameterError(
            "correction",
            "one of " + ", ".join(repr(c) for c in CORRECTIONS),
            method,
            "Use 'bh' (false discovery rate) unless you need family-wise control ('holm').",
        )
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    if method == "none":
        adj = q.copy()
    elif method == "bonferroni":
        adj = np.minimum(q * m, 1.0)
    elif method == "holm":
        order = np.argsort(q, kind="stable")
        scaled = q[order] * (m - np.arange(m))
        adj_sorted = np.minimum(np.maximum.accumulate(scaled), 1.0)
        adj = np.empty(m)
        adj[order] = adj_sorted
    else:  # Benjamini-Hochberg step-up
        order = np.argsort(q, kind="stable")
        scaled = q[order] * m / np.arange(1, m + 1)
        adj_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
        adj = np.empty(m)
        adj[order] = adj_sorted
    out[ok] = adj
    return out

"""The drift engine: prepare the reference once, compare any current sample to it.

The reference is sorted once (per block of columns, on the chosen array backend) and
its bin edges, bin counts, category counts and spread are kept; every comparison --
the whole current sample or one time window of it -- reuses them. Numeric columns
are processed in blocks so the merge workspace stays small whatever the row count;
on NumPy the blocks run on a thread pool (sorting releases the GIL).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, to_numpy
from aiops_lab.drift import kernels as K
from aiops_lab.drift.sources import (
    ColumnPlan,
    category_codes,
    null_counts,
    numeric_matrix,
    sorted_numeric,
)
from aiops_lab.pvalues import chi2_pvalue, ks_pvalue, null_rate_test

__all__ = ["STATISTICS", "ReferenceProfile"]

#: the statistics every comparison returns, one value per column
STATISTICS = (
    "n_ref", "n_cur", "null_ref", "null_cur", "ks", "ks_p", "wasserstein", "wasserstein_norm",
    "psi", "js", "hellinger", "chi2", "chi2_p", "linf", "null_p", "p_value",
)  # fmt: skip


@dataclass
class _NumericBlock:
    columns: list[str]
    ref: K.SortedSample | None = None  # kept only when the profile retains it
    edges: Any = None
    ref_bins: Any = None
    ref_std: np.ndarray | None = None


class ReferenceProfile:
    """Everything about the reference sample that comparisons need, computed once.

    With ``retain=True`` (several comparisons, e.g. time windows) the sorted reference
    is kept, which costs as much memory as the reference's numeric columns. Without
    it, each block of the reference is sorted when it is compared and then dropped;
    only its bin edges, bin counts and spread are kept.
    """

    def __init__(
        self,
        ref: pl.DataFrame,
        plan: ColumnPlan,
        *,
        xp: Any,
        bins: int,
        min_count: int,
        cur_rows_hint: int,
        cat_frame: pl.DataFrame,
        retain: bool = True,
    ) -> None:
        self.xp, self.plan, self.bins, self.min_count = xp, plan, bins, min_count
        self._ref_frame, self.retain = ref, retain
        self.n_rows = ref.height
        self._threads = _is_numpy(xp)
        probs = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        self._probs = from_numpy(probs, xp)
        size = K.block_columns(xp, ref.height + max(cur_rows_hint, 1), len(plan.numeric))
        if self._threads:
            workers = min(os.cpu_count() or 1, 8)
            size = max(1, min(size, math.ceil(len(plan.numeric) / workers)))
        groups = [plan.numeric[i : i + size] for i in range(0, len(plan.numeric), size)]
        self.blocks = [_NumericBlock(cols) for cols in groups]
        if retain:
            self._map(self._reference_of, self.blocks)
        self.ref_nulls = null_counts(ref, plan.columns)
        # categories: codes over the union with the full current sample, so windows share them
        cats = plan.categorical
        self.categories: list[list[str]] = []
        if cats:
            rc, _, self.categories = category_codes(ref, cat_frame, cats)
            self._n_levels = from_numpy(np.asarray([len(c) for c in self.categories], np.int64), xp)
            self.ref_cat_counts = K.category_counts(xp, from_numpy(rc, xp), self._n_levels)
            self._ref_levels = [set(c) for c in self._ref_seen(to_numpy(self.ref_cat_counts))]

    def _ref_seen(self, counts: np.ndarray) -> list[list[str]]:
        return [
            [lv for j, lv in enumerate(levels) if counts[i, j] > 0]
            for i, levels in enumerate(self.categories)
        ]

    def _run(self, cur: pl.DataFrame) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """Numeric blocks and the categorical columns; on NumPy, all at once on a thread pool."""
        has_cat = bool(self.plan.categorical)
        if self._threads and len(self.blocks) + has_cat > 1:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                cat_job = pool.submit(self._compare_categories, cur) if has_cat else None
                parts = list(pool.map(lambda b: self._compare_block(b, cur), self.blocks))
                return parts, cat_job.result() if cat_job is not None else None
        parts = [self._compare_block(b, cur) for b in self.blocks]
        return parts, self._compare_categories(cur) if has_cat else None

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        if self._threads and len(items) > 1:
            with ThreadPoolExecutor(max_workers=min(len(items), os.cpu_count() or 1)) as pool:
                return list(pool.map(fn, items))
        return [fn(item) for item in items]

    def _sorted(self, frame: pl.DataFrame, columns: list[str]) -> K.SortedSample:
        """Sort once: on the host with polars for NumPy (parallel), on the device otherwise."""
        if self._threads:
            values, n_valid = sorted_numeric(frame, columns)
            return K.SortedSample(values, n_valid)
        return K.sort_sample(self.xp, from_numpy(numeric_matrix(frame, columns), self.xp))

    def _reference_of(self, block: _NumericBlock) -> K.SortedSample:
        """The block's sorted reference (kept or made again), its edges and counts on first use."""
        if block.ref is not None:
            return block.ref
        xp = self.xp
        s = self._sorted(self._ref_frame, block.columns)
        if block.edges is None:
            block.edges = K.quantile_edges(xp, s, self._probs)
            block.ref_bins = K.bin_counts(xp, s, block.edges)
            block.ref_std = to_numpy(K.std(xp, s))
        if self.retain:
            block.ref = s
        return s

    # -- comparisons -----------------------------------------------------------------------
    def compare(self, cur: pl.DataFrame) -> dict[str, Any]:
        """Statistics of ``cur`` against the reference: a dict of per-column NumPy arrays
        (in ``plan.columns`` order), plus ``reason`` (list of str|None), the shared-bin
        histograms in ``ref_bins``/``cur_bins``, and ``unseen`` categories."""
        plan = self.plan
        n_num, n_cat = len(plan.numeric), len(plan.categorical)
        out: dict[str, Any] = {s: np.full(n_num + n_cat, np.nan) for s in STATISTICS}
        parts, cat = self._run(cur)
        if parts:
            for key in (
                "n_ref",
                "n_cur",
                "ks",
                "wasserstein",
                "wasserstein_norm",
                "psi",
                "js",
                "hellinger",
                "linf",
            ):
                out[key][:n_num] = np.concatenate([p[key] for p in parts])
            const = np.concatenate([p["constant"] for p in parts])
        else:
            const = np.zeros(0, dtype=bool)
        ref_bins = [row for p in parts for row in p["ref_bins"]]
        cur_bins = [row for p in parts for row in p["cur_bins"]]
        edges = [row for p in parts for row in p["edges"]]
        unseen: list[list[str]] = [[] for _ in range(n_num)]
        if cat is not None:
            for key in ("n_ref", "n_cur", "chi2", "psi", "js", "hellinger", "linf"):
                out[key][n_num:] = cat[key]
            out["chi2_p"][n_num:] = cat["chi2_p"]
            const = np.concatenate([const, cat["constant"]])
            ref_bins += cat["ref_bins"]
            cur_bins += cat["cur_bins"]
            edges += [None] * n_cat
            unseen += cat["unseen"]
        # null fractions and their test, over all rows
        n_ref_rows, n_cur_rows = self.n_rows, cur.height
        cur_nulls = null_counts(cur, plan.columns)
        out["null_ref"] = self.ref_nulls / max(n_ref_rows, 1)
        out["null_cur"] = cur_nulls / max(n_cur_rows, 1)
        out["null_p"] = null_rate_test(self.ref_nulls, n_ref_rows, cur_nulls, n_cur_rows)
        # primary test p-values
        if n_num:
            out["ks_p"][:n_num] = ks_pvalue(
                out["ks"][:n_num], out["n_ref"][:n_num], out["n_cur"][:n_num]
            )
            out["p_value"][:n_num] = out["ks_p"][:n_num]
        if n_cat:
            out["p_value"][n_num:] = out["chi2_p"][n_num:]
        reason = self._reasons(out, const)
        untestable = np.asarray([r is not None for r in reason])
        for key in STATISTICS:
            if key not in ("n_ref", "n_cur", "null_ref", "null_cur", "null_p"):
                out[key][untestable] = np.nan
        levels: list[list[str] | None] = [None] * n_num + list(self.categories)
        out.update(
            reason=reason,
            ref_bins=ref_bins,
            cur_bins=cur_bins,
            edges=edges,
            unseen=unseen,
            levels=levels,
        )
        return out

    def _compare_block(self, block: _NumericBlock, cur: pl.DataFrame) -> dict[str, Any]:
        xp = self.xp
        ref = self._reference_of(block)
        c = self._sorted(cur, block.columns)
        ks, w = K.ks_wasserstein(xp, ref, c)
        cur_bins = K.bin_counts(xp, c, block.edges)
        div = K.divergences(xp, block.ref_bins, cur_bins)
        n_ref, n_cur = to_numpy(ref.n_valid), to_numpy(c.n_valid)
        # constant: one distinct value, the same on both sides
        last_r = xp.take_along_axis(
            ref.values,
            xp.maximum(ref.n_valid - 1, xp.zeros_like(ref.n_valid))[:, None],
            axis=-1,
        )[:, 0]
        last_c = xp.take_along_axis(
            c.values, xp.maximum(c.n_valid - 1, xp.zeros_like(c.n_valid))[:, None], axis=-1
        )[:, 0]
        first_r, first_c = ref.values[:, 0], c.values[:, 0]
        constant = to_numpy((first_r == last_r) & (first_c == last_c) & (first_r == first_c))
        w_np = to_numpy(w)
        return {
            "n_ref": n_ref.astype(np.float64),
            "n_cur": n_cur.astype(np.float64),
            "ks": to_numpy(ks),
            "wasserstein": w_np,
            "wasserstein_norm": w_np / np.maximum(np.asarray(block.ref_std), 1e-3),
            **{k: to_numpy(v) for k, v in div.items()},
            "constant": constant,
            "ref_bins": list(to_numpy(block.ref_bins)),
            "cur_bins": list(to_numpy(cur_bins)),
            "edges": list(to_numpy(block.edges)),
        }

    def _compare_categories(self, cur: pl.DataFrame) -> dict[str, Any]:
        xp = self.xp
        cols = self.plan.categorical
        codes = np.full((len(cols), cur.height), -1, dtype=np.int32)
        for i, c in enumerate(cols):
            codes[i] = (
                cur[c]
                .cast(pl.Utf8)
                .cast(pl.Enum(self.categories[i]))
                .to_physical()
                .fill_null(-1)
                .to_numpy()
            )
        cur_counts = K.category_counts(xp, from_numpy(codes, xp), self._n_levels)
        chi2, dof = K.chi2_statistic(xp, self.ref_cat_counts, cur_counts)
        div = K.divergences(xp, self.ref_cat_counts, cur_counts)
        rc, cc = to_numpy(self.ref_cat_counts), to_numpy(cur_counts)
        dof_np = to_numpy(dof)
        ref_bins, cur_bins, unseen = [], [], []
        for i, levels in enumerate(self.categories):
            k = len(levels)
            ref_bins.append(rc[i, :k])
            cur_bins.append(cc[i, :k])
            unseen.append(
                [
                    lv
                    for j, lv in enumerate(levels)
                    if cc[i, j] > 0 and lv not in self._ref_levels[i]
                ]
            )
        return {
            "n_ref": rc.sum(axis=1).astype(np.float64),
            "n_cur": cc.sum(axis=1).astype(np.float64),
            "chi2": to_numpy(chi2),
            "chi2_p": chi2_pvalue(to_numpy(chi2), dof_np),
            **{k: to_numpy(v) for k, v in div.items()},
            "constant": dof_np < 1,
            "ref_bins": ref_bins,
            "cur_bins": cur_bins,
            "unseen": unseen,
        }

    def _reasons(self, out: dict[str, Any], constant: np.ndarray) -> list[str | None]:
        k = len(self.plan.columns)
        return untested_reasons(out["n_ref"][:k], out["n_cur"][:k], constant[:k], self.min_count)


def untested_reasons(n_ref: Any, n_cur: Any, constant: Any, min_count: int) -> list[str | None]:
    """Why each column is left untested (None: tested), from its valid counts per side."""
    reasons: list[str | None] = []
    for n_r, n_c, same in zip(n_ref, n_cur, constant, strict=True):
        n_r, n_c = int(n_r), int(n_c)
        if n_r == 0:
            reasons.append("no non-null values in the reference")
        elif n_c == 0:
            reasons.append("no non-null values in the current data")
        elif n_r < min_count or n_c < min_count:
            reasons.append(
                f"too few values (reference {n_r}, current {n_c}; min_count={min_count})"
            )
        elif same:
            reasons.append("constant: one and the same value on both sides")
        else:
            reasons.append(None)
    return reasons


def _is_numpy(xp: Any) -> bool:
    import array_api_compat

    return bool(array_api_compat.is_numpy_namespace(xp))

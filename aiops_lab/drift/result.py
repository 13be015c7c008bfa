"""``DriftResult``: what ``compare`` found, ready to show, report and track."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import polars as pl

from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

    from aiops_lab.backend import BackendInfo
    from aiops_lab.drift.widgets import DriftExplorer

__all__ = ["DECIDE_BY", "DEFAULT_THRESHOLDS", "Decision", "DriftResult", "decide"]

#: distance-based decisions and their default thresholds
DEFAULT_THRESHOLDS = {"psi": 0.2, "js": 0.1, "hellinger": 0.1, "wasserstein_norm": 0.1}
DECIDE_BY = ("p_value", *DEFAULT_THRESHOLDS)
#: the dataset has drifted when at least this share of tested columns drifted
DATASET_DRIFT_SHARE = 0.5


@dataclass(frozen=True)
class Decision:
    """How a column is judged drifted (see :func:`aiops_lab.drift.compare`)."""

    alpha: float = 0.05
    correction: str = "bh"
    decide_by: str = "p_value"
    threshold: float | None = None
    null_tolerance: float = 0.01


def decide(frame: pl.DataFrame, rule: Decision) -> pl.DataFrame:
    """Add ``drifted``, ``severity`` (larger = worse; for ranking) and the null-rate verdict.

    ``null_drifted`` flags a change in the share of missing values (corrected
    ``null_p`` below ``alpha`` and a change of at least ``null_tolerance`` in the
    share); labels are exempt, since delayed labels are missing by design.
    """
    from aiops_lab.pvalues import adjust

    alpha = rule.alpha
    null_adj = adjust(frame["null_p"].fill_null(float("nan")).to_numpy(), rule.correction)
    frame = frame.with_columns(pl.Series("null_p_adjusted", null_adj).fill_nan(None))
    if rule.decide_by == "p_value":
        drifted = pl.col("p_adjusted") < alpha
        severity = -pl.col("p_adjusted").clip(1e-300, 1.0).log10()
    else:
        cut = rule.threshold if rule.threshold is not None else DEFAULT_THRESHOLDS[rule.decide_by]
        drifted = pl.col(rule.decide_by) > cut
        severity = pl.col(rule.decide_by) / cut
    return frame.with_columns(
        drifted.fill_null(False).alias("drifted"),
        severity.alias("severity"),
        (
            (pl.col("null_p_adjusted") < alpha)
            & ((pl.col("null_cur") - pl.col("null_ref")).abs() >= rule.null_tolerance)
            & (pl.col("role") != "label")
        )
        .fill_null(False)
        .alias("null_drifted"),
    )


class DriftResult(Result):
    """The outcome of :func:`aiops_lab.drift.compare`.

    Attributes
    ----------
    table : polars.DataFrame
        One row per column: ``column, kind, role, n_ref, n_cur, null_ref, null_cur, ks,
        ks_p, wasserstein, wasserstein_norm, psi, js, hellinger, chi2, chi2_p, linf,
        null_p, p_value, p_adjusted, unseen_categories, unseen, reason, drifted,
        severity``, most severe first.
    windows : polars.DataFrame or None
        The same statistics per time window (``window_start``, ``window_end`` first).
    distributions : polars.DataFrame
        Reference and current shares on the shared bins / categories of every column.
    quality : polars.DataFrame or None
        Realized model quality per window (when predictions and labels are given).
    skipped : dict
        Columns left out and why.
    extras : dict of str to Result
        The analyses run beside the per-column tests, by name: ``"mmd"``,
        ``"classifier"``, ``"reconstruction"`` (``multivariate=``),
        ``"embedding:<column>"`` (``embeddings=``), ``"estimate"``
        (``estimate_quality=``). Each is a full result of its own, with its tables and
        charts; their headline numbers join this result's summary, metrics and alert.
    """

    analysis = "drift"
    default_chart = "overview"

    def __init__(
        self,
        *,
        table: pl.DataFrame,
        windows: pl.DataFrame | None,
        distributions: pl.DataFrame,
        quality: pl.DataFrame | None,
        params: dict[str, Any],
        skipped: dict[str, str],
        backend: BackendInfo,
        elapsed_s: float,
        n_ref: int,
        n_cur: int,
        extras: dict[str, Result] | None = None,
    ) -> None:
        self._table = table.sort(["drifted", "severity"], descending=True, nulls_last=True)
        self.windows = windows
        self.distributions = distributions
        self.quality = quality
        self._params = params
        self.skipped = dict(skipped)
        self.backend = backend
        self.elapsed_s = elapsed_s
        self.n_ref, self.n_cur = n_ref, n_cur
        self.extras: dict[str, Result] = dict(extras or {})
        self._summary = self._make_summary()

    # -- data ------------------------------------------------------------------------------
    @property
    def table(self) -> pl.DataFrame:
        return self._table

    @property
    def drifted_columns(self) -> list[str]:
        """Columns flagged as drifted, most severe first."""
        return self._table.filter(pl.col("drifted"))["column"].to_list()

    @property
    def first_drift(self) -> pl.DataFrame | None:
        """For each column that drifted in some window: the first such window."""
        if self.windows is None:
            return None
        return (
            self.windows.filter(pl.col("drifted"))
            .group_by("column")
            .agg(
                pl.col("window_start").min().alias("first_drift_start"),
                pl.len().alias("windows_drifted"),
            )
            .sort("first_drift_start")
        )

    def tables(self) -> dict[str, pl.DataFrame]:
        out = {"table": self._table, "distributions": self.distributions}
        if self.windows is not None:
            out["windows"] = self.windows
        if self.quality is not None:
            out["quality"] = self.quality
        first = self.first_drift
        if first is not None:
            out["first_drift"] = first
        for name, extra in self.extras.items():
            for key, frame in extra.tables().items():
                if frame is not None:
                    out[f"{_extra_key(name)}.{key}"] = frame
        return out

    def _make_summary(self) -> dict[str, Any]:
        t = self._table
        tested = t.filter(pl.col("reason").is_null())
        n_drifted = int(t["drifted"].sum())
        null_cols = t.filter(pl.col("null_drifted"))["column"].to_list()
        share = n_drifted / tested.height if tested.height else 0.0
        dataset_drift = tested.height > 0 and share >= DATASET_DRIFT_SHARE
        pred = t.filter((pl.col("role") == "prediction") & pl.col("drifted")).height > 0
        alert = bool(n_drifted > 0 or null_cols)
        top = ", ".join(self.drifted_columns[:5])
        if n_drifted:
            headline = f"drift in {n_drifted} of {tested.height} columns ({top}{'...' if n_drifted > 5 else ''})"
        else:
            headline = f"no distribution drift in {tested.height} columns"
        if null_cols:
            headline += f"; missing-value rate changed in {', '.join(null_cols[:5])}"
        summary: dict[str, Any] = {
            "headline": headline,
            "alert": alert,
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            "n_columns": t.height,
            "n_tested": tested.height,
            "n_drifted": n_drifted,
            "drift_share": share,
            "dataset_drift": dataset_drift,
            "prediction_drift": pred,
            "drifted_columns": self.drifted_columns,
            "null_drifted_columns": null_cols,
            "correction": self._params["correction"],
            "alpha": self._params["alpha"],
            "backend": self.backend.name,
            "elapsed_s": round(self.elapsed_s, 4),
        }
        if self.windows is not None:
            summary["n_windows"] = self.windows["window_start"].n_unique()
            first = self.first_drift
            if first is not None and first.height:
                summary["first_drift"] = first["first_drift_start"].min()
        if self.quality is not None and self.quality.height:
            summary.update(self._quality_summary())
        if self.extras:
            summary.update(self._extras_summary(summary))
        return summary

    def _extras_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Headline numbers of the extra analyses; their alerts join this one."""
        out: dict[str, Any] = {}
        notes = []
        for name, extra in self.extras.items():
            s = extra.summary
            key = _extra_key(name)
            out[f"{key}.alert"] = bool(s.get("alert", False))
            if name == "mmd":
                out["mmd_p_value"] = s["mmd_p_value"]
                out["joint_drift"] = bool(s["alert"])
            elif name == "classifier":
                out["classifier_auc"] = s["auc"]
                out["classifier_auc_low"] = s["auc_low"]
            elif name == "reconstruction":
                out["reconstruction_alerts"] = s.get("n_alerts")
            elif name.startswith("embedding:"):
                out[f"{key}.far_share"] = s["far_share"]
                out[f"{key}.mmd_p_value"] = s["mmd_p_value"]
            if s.get("alert") and name != "estimate":
                notes.append(_extra_note(name, s))
        if notes:
            out["headline"] = summary["headline"] + "; " + "; ".join(notes)
            out["alert"] = True
        estimate = self.extras.get("estimate")
        if estimate is not None and estimate.summary.get("alert"):
            out["alert"] = True
            out["headline"] = out.get("headline", summary["headline"]) + "; estimated quality fell"
        return out

    def _quality_summary(self) -> dict[str, Any]:
        q = self.quality
        assert q is not None
        metric = q["metric"][0]
        rows = q.filter((pl.col("metric") == metric) & pl.col("value").is_not_null())
        out: dict[str, Any] = {"quality_metric": metric}
        if rows.height:
            out["quality_reference"] = rows["reference_value"][0]
            out["quality_latest"] = rows["value"][-1]
            out["quality_worst"] = (
                rows["value"].max() if metric in ("mae", "rmse") else rows["value"].min()
            )
        return out

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        for row in self._table.iter_rows(named=True):
            key = _metric_key(row["column"])
            for stat in (
                "p_adjusted",
                "psi",
                "js",
                "ks",
                "wasserstein_norm",
                "chi2",
                "null_cur",
                "null_p_adjusted",
            ):
                value = row.get(stat)
                if value is not None and math.isfinite(value):
                    out[f"{key}.{stat}"] = float(value)
            out[f"{key}.drifted"] = float(row["drifted"])
        for name, extra in self.extras.items():
            for k, v in Result.metrics(extra).items():
                out[f"{_extra_key(name)}.{k}"] = v
        return out

    # -- presentation ----------------------------------------------------------------------
    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart of the result.

        Parameters
        ----------
        kind : {"overview", "distribution", "timeline", "quality"}
            Columns ranked by severity; reference vs current distribution of
            ``column=``; drift per column and window (heatmap); model quality over time.
        """
        from aiops_lab.drift import charts

        return charts.draw(self, kind or self.default_chart, **kwargs)

    def explore(self) -> DriftExplorer:
        """An ipywidgets dashboard to pick a column and a window."""
        from aiops_lab.drift.widgets import DriftExplorer

        return DriftExplorer(self)


def _extra_note(name: str, s: dict[str, Any]) -> str:
    if name == "mmd":
        return f"the features drift jointly (MMD p = {s['mmd_p_value']:.2g})"
    if name == "classifier":
        return f"a classifier tells current rows from reference rows (AUC {s['auc']:.2f})"
    if name == "reconstruction":
        return f"PCA reconstruction error out of its band in {s.get('n_alerts')} window(s)"
    if name.startswith("embedding:"):
        col = name.split(":", 1)[1]
        return f"embedding {col!r} drifted ({s['far_share']:.0%} of points far from the reference)"
    return f"{name} alert"


def _extra_key(name: str) -> str:
    return _metric_key(name.replace(":", "."))


def _metric_key(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-./ ]", "_", name)

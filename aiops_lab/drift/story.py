"""The investigation in words: the verdict and what to do next, from a DriftResult."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from aiops_lab.drift.result import DriftResult

__all__ = ["next_steps", "verdict"]


def _when(value: object) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value)


def verdict(result: DriftResult) -> str:
    """A short Markdown verdict: did the data drift, how much, since when."""
    s = result.summary
    lines = []
    if s["n_drifted"] == 0 and not s["null_drifted_columns"]:
        lines.append(f"**No drift.** None of the {s['n_tested']} tested columns moved away from the reference "
                     f"(corrected p >= {s['alpha']}, {s['correction']} correction).")  # fmt: skip
    else:
        scope = "most of the data" if s["dataset_drift"] else "part of the data"
        lines.append(f"**Drift in {scope}:** {s['n_drifted']} of {s['n_tested']} columns "
                     f"({s['drift_share']:.0%}) differ from the reference at alpha = {s['alpha']} "
                     f"({s['correction']} correction).")  # fmt: skip
        if s["drifted_columns"]:
            lines.append(
                "Most affected: " + ", ".join(f"`{c}`" for c in s["drifted_columns"][:5]) + "."
            )
        if s["null_drifted_columns"]:
            lines.append(
                "The share of missing values changed in "
                + ", ".join(f"`{c}`" for c in s["null_drifted_columns"])
                + "."
            )
    if "first_drift" in s:
        lines.append(f"The first window with drift starts {_when(s['first_drift'])}.")
    if s.get("prediction_drift"):
        lines.append("The model's predictions drifted too.")
    if s.get("quality_metric") and s.get("quality_latest") is not None:
        lines.append(f"Realized {s['quality_metric']}: {s['quality_reference']:.3f} on the reference, "
                     f"{s['quality_latest']:.3f} in the latest labeled window (worst {s['quality_worst']:.3f}).")  # fmt: skip
    lines.extend(_extras_verdict(result))
    if result.skipped:
        lines.append(
            "Not compared: "
            + "; ".join(f"`{c}` ({why})" for c, why in result.skipped.items())
            + "."
        )
    return "\n\n".join(lines)


def next_steps(result: DriftResult) -> list[str]:
    """Concrete follow-ups, most urgent first."""
    s = result.summary
    t = result.table
    steps: list[str] = []
    unseen = t.filter(pl.col("unseen_categories") > 0)
    for row in unseen.iter_rows(named=True):
        steps.append(f"`{row['column']}` has categories the model never saw ({row['unseen']}): check how the "
                     "model encodes unknown values, and whether an upstream source changed.")  # fmt: skip
    for col in s["null_drifted_columns"]:
        row = t.filter(pl.col("column") == col).row(0, named=True)
        steps.append(f"`{col}` is missing in {row['null_cur']:.1%} of rows (reference {row['null_ref']:.1%}): "
                     "look for a broken upstream pipeline before blaming the world.")  # fmt: skip
    if s.get("quality_metric") and s.get("quality_latest") is not None:
        drop = s["quality_reference"] - s["quality_worst"]
        worse = (
            drop > 0.02
            if s["quality_metric"] in ("auc", "accuracy")
            else s["quality_worst"] > 1.1 * s["quality_reference"]
        )
        if worse:
            steps.append(f"Model quality fell ({s['quality_metric']} {s['quality_reference']:.3f} -> "
                         f"{s['quality_worst']:.3f}): plan retraining on recent labeled data, and recalibrate.")  # fmt: skip
    if s.get("prediction_drift"):
        steps.append(
            "Predictions drifted: check the positive rate and any downstream thresholds or budgets tied to it."
        )
    if result.quality is not None:
        pending = result.quality.filter(pl.col("n_labeled") == 0)["window_start"].n_unique()
        if pending:
            steps.append(
                f"{pending} recent windows have no labels yet: rerun when they arrive to confirm the quality trend."
            )
    numeric = t.filter(
        pl.col("drifted") & (pl.col("kind") == "numeric") & (pl.col("role") == "feature")
    )
    if numeric.height:
        cols = ", ".join(f"`{c}`" for c in numeric["column"].head(5))
        steps.append(f"Compare the distributions of {cols} with the business calendar (campaigns, pricing, "
                     "new markets) to tell a real shift from a data bug.")  # fmt: skip
    steps.extend(_extras_steps(result))
    if not steps:
        steps.append("Nothing to do: keep the scheduled report running.")
    return steps


def _extras_verdict(result: DriftResult) -> list[str]:
    """Sentences on the joint, embedding and estimated-quality analyses that ran."""
    out = []
    ex = result.extras
    mmd, clf, rec = ex.get("mmd"), ex.get("classifier"), ex.get("reconstruction")
    if mmd is not None or clf is not None or rec is not None:
        parts = []
        if mmd is not None:
            parts.append(f"MMD p = {mmd.summary['mmd_p_value']:.2g}")
        if clf is not None:
            cs = clf.summary
            parts.append(
                f"domain-classifier AUC {cs['auc']:.2f} [{cs['auc_low']:.2f}, {cs['auc_high']:.2f}]"
            )
        if rec is not None:
            parts.append(
                f"PCA reconstruction error out of band in {rec.summary.get('n_alerts', 0)} window(s)"
            )
        joint = any(r is not None and r.alert for r in (mmd, clf, rec))
        if joint and result.summary["n_drifted"] == 0:
            lead = "**The columns drift together although none drifts alone:**"
        elif joint:
            lead = "**Taken together, the features drifted as well:**"
        else:
            lead = "**No joint drift** beyond the columns above:"
        out.append(f"{lead} {'; '.join(parts)}.")
        if clf is not None and clf.alert and clf.importance.height:
            top = clf.importance.head(3)["column"].to_list()
            out.append("The classifier relies most on " + ", ".join(f"`{c}`" for c in top) + ".")
    for name, res in ex.items():
        if name.startswith("embedding:"):
            col = name.split(":", 1)[1]
            es = res.summary
            if res.alert:
                when = (
                    f", first in the window of {_when(res.first_drift)}"
                    if res.first_drift is not None
                    else ""
                )
                out.append(f"**Embedding `{col}` drifted**{when}: {es['far_share']:.1%} of current points are far "
                           f"from every reference point (about {1 - res.params['quantile']:.0%} expected), "
                           f"centroid cosine distance {es['centroid_distance']:.3f}.")  # fmt: skip
            else:
                out.append(f"Embedding `{col}`: no drift (MMD p = {es['mmd_p_value']:.2g}).")
    est = ex.get("estimate")
    if est is not None:
        out.append(f"Estimated without labels: {est.headline}")
    return out


def _extras_steps(result: DriftResult) -> list[str]:
    steps = []
    ex = result.extras
    clf = ex.get("classifier")
    if result.summary["n_drifted"] == 0 and any(
        ex.get(k) is not None and ex[k].alert for k in ("mmd", "classifier", "reconstruction")
    ):
        hint = ""
        if clf is not None and clf.importance.height:
            top = clf.importance.head(2)["column"].to_list()
            hint = " Start with " + " and ".join(f"`{c}`" for c in top) + "."
        steps.append("The joint distribution moved while every column looks unchanged: look for a join or "
                     "row-alignment bug upstream, or a change in how features relate." + hint)  # fmt: skip
    for name, res in ex.items():
        if name.startswith("embedding:") and res.alert:
            steps.append(f"New regions appeared in `{name.split(':', 1)[1]}`: read a sample of the far points "
                         "(new topics, languages or templates?) and check retrieval quality on them.")  # fmt: skip
    est = ex.get("estimate")
    if est is not None and est.alert:
        steps.append("Estimated quality is below its reference band where labels are not in yet: treat it "
                     "as an early warning (it cannot see concept drift) and confirm when labels arrive.")  # fmt: skip
    return steps

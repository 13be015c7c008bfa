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
    if not steps:
        steps.append("Nothing to do: keep the scheduled report running.")
    return steps

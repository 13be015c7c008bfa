"""The review in words: the fleet verdict and what to change, from a GpuReview."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from aiops_lab.gpu.result import GpuReview

__all__ = ["next_steps", "verdict"]


def verdict(review: GpuReview) -> str:
    """A short Markdown verdict: how much of the fleet's time and money went idle."""
    s = review.summary
    mig = f" (with {s['n_mig_instances']} MIG instances)" if s.get("n_mig_instances") else ""
    lines = [
        f"**{s['n_gpus']} GPUs{mig}, {s['gpu_hours']:,.0f} GPU-hours** from {s['period_start']:%Y-%m-%d %H:%M} "
        f"to {s['period_end']:%Y-%m-%d %H:%M} UTC.",
        f"**{s['idle_share']:.0%} idle** ({s['idle_gpu_hours']:,.0f} GPU-hours under {s['idle_threshold']:g}% "
        f"utilization), costing **${s['idle_cost']:,.0f}** of ${s['total_cost']:,.0f}.",
    ]
    if s["busy_but_idle_gpus"]:
        lines.append(f"{s['busy_but_idle_gpus']} GPUs look busy but their SMs are mostly idle.")
    if s.get("unpriced_gpu_hours"):
        lines.append(
            f"{s['unpriced_gpu_hours']:,.0f} GPU-hours are of models the price table lacks: "
            "they count $0, so the costs above are too low."
        )
    from aiops_lab.gpu.analysis import NO_JOB

    users = review.per_user
    unheld = users.filter(pl.col("user") == NO_JOB)
    if unheld.height and (unheld["idle_cost"][0] or 0) > 0:
        unknown = review.recommendations.filter(pl.col("kind") == "job usage unknown")
        who = (
            "GPU time no job is known to have held (some jobs' GPUs the telemetry cannot tell apart)"
            if unknown.height
            else "GPUs that no job held"
        )
        lines.append(f"{who} account for ${unheld['idle_cost'][0]:,.0f} of the idle cost.")
    top = users.filter(pl.col("user") != NO_JOB).head(1)
    if top.height and (top["idle_cost"][0] or 0) > 0:
        lines.append(
            f"Among users, `{top['user'][0]}` holds the most idle GPU time: ${top['idle_cost'][0]:,.0f}."
        )
    lines.append(
        "**Alert:** idle time above the set limit."
        if s["alert"]
        else "Idle time is within the set limit."
    )
    return "\n\n".join(lines).replace("$", "\\$")


def next_steps(review: GpuReview) -> list[str]:
    """Concrete changes, most valuable first, from the recommendations table."""
    rec = review.recommendations
    steps = []
    # one step per kind; None: the recommendations' own actions (they differ by case)
    actions = {
        "price missing": None,
        "idle GPU": "release them to a shared pool, or scale nodes down when idle",
        "busy but idle": "profile them: the GPUs are held by polling or waiting, not computing",
        "right-size": "move them to the MIG slice or smaller GPU their peak memory fits (see the table)",
        "queue": None,
        "job usage unknown": None,
    }
    for kind, action in actions.items():
        part = rec.filter(pl.col("kind") == kind)
        if part.height == 0:
            continue
        saving = part["saving_usd"].sum()
        targets = ", ".join(part["target"].head(4).to_list()) + (" ..." if part.height > 4 else "")
        todo = action or "; ".join(part["action"].unique(maintain_order=True).to_list())
        worth = f"; up to ${saving:,.0f}" if saving else ""
        steps.append(f"**{kind}** ({part.height}{worth}): {targets}: {todo}.")
    steps = [step.replace("$", "\\$") for step in steps]  # Markdown renders $...$ as math
    return steps or ["Nothing to change: the fleet is well used."]

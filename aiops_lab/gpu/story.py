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
    lines = [
        f"**{s['n_gpus']} GPUs, {s['gpu_hours']:,.0f} GPU-hours** from {s['period_start']:%Y-%m-%d %H:%M} "
        f"to {s['period_end']:%Y-%m-%d %H:%M} UTC.",
        f"**{s['idle_share']:.0%} idle** ({s['idle_gpu_hours']:,.0f} GPU-hours under {s['idle_threshold']:g}% "
        f"utilization), costing **${s['idle_cost']:,.0f}** of ${s['total_cost']:,.0f}.",
    ]
    if s["busy_but_idle_gpus"]:
        lines.append(f"{s['busy_but_idle_gpus']} GPUs look busy but their SMs are mostly idle.")
    from aiops_lab.gpu.analysis import NO_JOB

    users = review.per_user
    unheld = users.filter(pl.col("user") == NO_JOB)
    if unheld.height and (unheld["idle_cost"][0] or 0) > 0:
        lines.append(
            f"GPUs that no job held account for ${unheld['idle_cost'][0]:,.0f} of the idle cost."
        )
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
    actions = {
        "idle GPU": "release them to a shared pool, or scale nodes down when idle",
        "busy but idle": "profile them: the GPUs are held by polling or waiting, not computing",
        "right-size": "move them to the MIG slice or smaller GPU their peak memory fits (see the table)",
        "queue": "let partitions borrow idle GPUs, or merge the partitions",
    }
    for kind, action in actions.items():
        part = rec.filter(pl.col("kind") == kind)
        if part.height == 0:
            continue
        saving = part["saving_usd"].sum()
        targets = ", ".join(part["target"].head(4).to_list()) + (" ..." if part.height > 4 else "")
        steps.append(f"**{kind}** ({part.height}; up to ${saving:,.0f}): {targets}: {action}.")
    steps = [step.replace("$", "\\$") for step in steps]  # Markdown renders $...$ as math
    return steps or ["Nothing to change: the fleet is well used."]

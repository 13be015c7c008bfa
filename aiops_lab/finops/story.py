"""The FinOps notebook's words: the verdict and the next steps, computed from the data.

The notebook only displays what these functions return, so every sentence of the report
can be tested here. Each next step is a dict ``{"kind", "text", "saving"}``: ``kind`` is one
of ``"budget"``, ``"driver"``, ``"model tier"``, ``"commitment"``, ``"idle GPUs"``,
``"anomaly"``, ``"honesty"``, ``"gpu review"``; ``saving`` is an estimated monthly saving
in the bill's currency, or None.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from aiops_lab.finops.result import CostForecast

__all__ = [
    "commitment_candidates",
    "dominated_models",
    "gpu_idle",
    "model_tiers",
    "next_steps",
    "verdict",
]

#: suggest a commitment where less than this share of a GPU SKU's list cost is covered
LOW_COVERAGE = 0.7
#: a model "carries most cost" from this share of the LLM spend on
MOST_COST = 0.5
#: error rates within this absolute difference count as no worse (they are noisy shares)
ERROR_RATE_TOLERANCE = 0.005
#: the discount assumed for a new commitment when the bill shows none
DEFAULT_COMMIT_DISCOUNT = 0.30


def verdict(result: CostForecast, *, period: str | None = None) -> list[str]:
    """The verdict, as Markdown sentences: spend so far, the forecast, the budget risk.

    Parameters
    ----------
    result
        A forecast of the total (``by=None``) from :func:`aiops_lab.finops.forecast`.
    period
        The budget period's name for the text (default: the forecast's own).
    """
    period = period or result.params["period"]
    daily = result.history.group_by("date").agg(pl.col("y").sum()).sort("date")
    last_30 = float(daily.tail(30)["y"].sum())
    before = float(daily.tail(60).head(30)["y"].sum())
    change = (
        f" ({last_30 / before - 1:+.0%} on the 30 days before)"
        if daily.height >= 60 and before
        else ""
    )
    horizon = result.params["horizon"]
    mase = result.summary["mase"]
    models = ", ".join(result.forecast["model"].unique(maintain_order=True).to_list())
    lines = [
        f"**{daily['y'].sum():,.0f}** spent from {daily['date'].min()} to {daily['date'].max()}; "
        f"the last 30 days cost {last_30:,.0f}{change}.",
        f"Next {horizon} days forecast: **{result.forecast['mean'].sum():,.0f}** "
        f"(model chosen by backtest: {models}"
        + (f", MASE {mase:.2f}" if mase is not None else "")
        + ").",
    ]
    if result.breach is not None and result.breach.height:
        b = result.breach.sort("p_breach", descending=True).row(0, named=True)
        when = (
            f", most likely from {b['expected_breach_date']}"
            if b["p_breach"] > 0 and b["expected_breach_date"]
            else ""
        )
        lines.append(
            f"This {period} ({b['period_start']} to {b['period_end']}): expected "
            f"**{b['forecast_total']:,.0f}** (80 % of simulated paths between {b['p10_total']:,.0f} "
            f"and {b['p90_total']:,.0f}) against a budget of {b['budget']:,.0f}: "
            f"**{b['p_breach']:.0%} chance of passing it**{when}."
        )
        level = result.params["alert_p_breach"]
        lines.append(
            f"**At risk**: the alert level is a {level:.0%} chance."
            if result.alert
            else f"Below the alert level of a {level:.0%} chance."
        )
    else:
        lines.append("No budget given: set `budget` to see the chance of passing it.")
    if result.anomalies.height:
        lines.append(f"{result.anomalies.height} day(s) of anomalous spend (section 8).")
    return lines


def model_tiers(calls: pl.DataFrame) -> pl.DataFrame:
    """Per requested model: traffic, cost, price per 1k tokens, p95 latency and error rate.

    ``calls`` is a priced call log (:func:`aiops_lab.finops.price_tokens`). Failed calls
    count as requests and in the error rate; the cost share is of the log's total.
    """
    model = (
        pl.coalesce("request_model", "model")
        if "request_model" in calls.columns
        else pl.col("model")
    )
    tokens = pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)
    failed = (
        (pl.col("status") == "error")
        if "status" in calls.columns
        else pl.lit(False)  # no status: no errors known
    )
    latency = pl.col("latency_s") if "latency_s" in calls.columns else pl.lit(None, pl.Float64)
    out = (
        calls.with_columns(_model=model, _tokens=tokens, _failed=failed, _lat=latency)
        .group_by("_model")
        .agg(
            requests=pl.len(),
            tokens=pl.col("_tokens").sum(),
            cost=pl.col("cost").fill_null(0.0).sum(),
            latency_p95_s=pl.col("_lat").quantile(0.95),
            error_rate=pl.col("_failed").mean(),
        )
        .rename({"_model": "model"})
    )
    total = float(out["cost"].sum())
    return out.with_columns(
        cost_per_1k_tokens=pl.when(pl.col("tokens") > 0).then(
            pl.col("cost") / pl.col("tokens") * 1000
        ),
        share=pl.col("cost") / total if total else pl.lit(None, pl.Float64),
    ).sort("cost", descending=True)


def dominated_models(tiers: pl.DataFrame) -> pl.DataFrame:
    """Models beaten on every axis by a cheaper one: ``model, by, saving`` rows.

    A model is dominated by another when the other is cheaper per 1k tokens and no worse on
    p95 latency and error rate (Pareto dominance on those three; error rates within
    :data:`ERROR_RATE_TOLERANCE` of each other count as equal). ``by`` is the cheapest
    dominating model; ``saving`` is what the dominated model's tokens would have cost less
    at that model's price per 1k tokens (over the log's period).
    """
    rows = []
    items = [r for r in tiers.iter_rows(named=True) if r["cost_per_1k_tokens"] is not None]
    for a in items:
        better = [
            b
            for b in items
            if b["model"] != a["model"]
            and b["cost_per_1k_tokens"] < a["cost_per_1k_tokens"]
            and _no_worse(b["latency_p95_s"], a["latency_p95_s"])
            and _no_worse(b["error_rate"], a["error_rate"], ERROR_RATE_TOLERANCE)
        ]
        if better:
            best = min(better, key=lambda b: b["cost_per_1k_tokens"])
            saving = a["tokens"] * (a["cost_per_1k_tokens"] - best["cost_per_1k_tokens"]) / 1000.0
            rows.append({"model": a["model"], "by": best["model"], "share": a["share"],
                         "saving": float(saving)})  # fmt: skip
    schema = {"model": pl.String, "by": pl.String, "share": pl.Float64, "saving": pl.Float64}
    return pl.DataFrame(rows, schema=schema).sort("saving", descending=True)


def _no_worse(b: float | None, a: float | None, tolerance: float = 0.0) -> bool:
    return a is None or b is None or b <= a + tolerance


def _period_days(frame: pl.DataFrame) -> float:
    if "timestamp" in frame.columns and frame.height:
        span = frame["timestamp"].max() - frame["timestamp"].min()  # type: ignore[operator]
        return max(span.total_seconds() / 86400.0, 1.0)  # type: ignore[union-attr]
    return 30.0


def commitment_candidates(costs: pl.DataFrame, *, window_days: int = 30) -> pl.DataFrame:
    """GPU instance SKUs whose steady base of hours is not under a commitment.

    Over the last ``window_days`` of the bill, per instance SKU billed in hours (with
    ``x_GpusPerInstance`` > 0 where the bill has that column): ``base_hours`` (the 10th
    percentile of daily instance-hours: what runs nearly every day), ``covered_hours``
    (mean over the billed days of the hours under a commitment, ``CommitmentDiscountStatus``
    = Used), ``coverage``
    (covered share of the list cost), the list rate per hour, the discount the bill's
    commitments already get (or :data:`DEFAULT_COMMIT_DISCOUNT`), and ``monthly_saving``
    = uncovered base hours x 30 x list rate x discount. Only rows with uncovered base
    hours and coverage below :data:`LOW_COVERAGE` are returned.
    """
    need = {
        "SkuId",
        "ConsumedQuantity",
        "ConsumedUnit",
        "ListCost",
        "EffectiveCost",
        "ChargePeriodStart",
    }
    schema = {"sku": pl.String, "base_hours": pl.Float64, "covered_hours": pl.Float64,
              "coverage": pl.Float64, "list_rate": pl.Float64, "discount": pl.Float64,
              "monthly_saving": pl.Float64}  # fmt: skip
    if not need <= set(costs.columns):
        return pl.DataFrame(schema=schema)
    hours = costs.filter(
        pl.col("ConsumedUnit").cast(pl.String).str.to_lowercase().str.starts_with("hour")
        & (pl.col("ConsumedQuantity") > 0)
    )
    if "ChargeCategory" in costs.columns:
        hours = hours.filter(pl.col("ChargeCategory").cast(pl.String).str.to_lowercase() == "usage")
    if "x_GpusPerInstance" in costs.columns:
        hours = hours.filter(pl.col("x_GpusPerInstance").cast(pl.Float64, strict=False) > 0)
    if hours.height == 0:
        return pl.DataFrame(schema=schema)
    used = (
        pl.col("CommitmentDiscountStatus").cast(pl.String).str.to_lowercase() == "used"
        if "CommitmentDiscountStatus" in hours.columns
        else pl.lit(False)
    )
    hours = hours.with_columns(
        _day=pl.col("ChargePeriodStart").dt.date(), _used=used.fill_null(False)
    )
    last = hours["_day"].max()
    recent = hours.filter(pl.col("_day") > pl.lit(last) - pl.duration(days=window_days))
    committed = recent.filter(pl.col("_used") & (pl.col("ListCost") > 0))
    discount = (
        1.0 - float(committed["EffectiveCost"].sum()) / float(committed["ListCost"].sum())
        if committed.height
        else DEFAULT_COMMIT_DISCOUNT
    )
    daily = recent.group_by("SkuId", "_day").agg(
        h=pl.col("ConsumedQuantity").sum(),
        covered=pl.col("ConsumedQuantity").filter(pl.col("_used")).sum(),
        list_cost=pl.col("ListCost").sum(),
        covered_list=pl.col("ListCost").filter(pl.col("_used")).sum(),
    )
    per = daily.group_by("SkuId").agg(
        base_hours=pl.col("h").quantile(0.1, interpolation="lower"),
        covered_hours=pl.col("covered").mean(),
        coverage=pl.col("covered_list").sum() / pl.col("list_cost").sum(),
        list_rate=pl.col("list_cost").sum() / pl.col("h").sum(),
    )
    return (
        per.with_columns(discount=pl.lit(discount))
        .with_columns(
            monthly_saving=(pl.col("base_hours") - pl.col("covered_hours")).clip(lower_bound=0.0)
            * 30.0
            * pl.col("list_rate")
            * pl.col("discount")
        )
        .filter((pl.col("monthly_saving") > 0) & (pl.col("coverage") < LOW_COVERAGE))
        .rename({"SkuId": "sku"})
        .select(list(schema))
        .cast(schema)  # type: ignore[arg-type]
        .sort("monthly_saving", descending=True)
    )


def gpu_idle(path: str | Path | Mapping[str, Any]) -> dict[str, Any] | None:
    """Idle GPU cost from a GPU review: its ``result.json`` (a path) or that dict.

    Returns ``idle_cost, idle_gpu_hours, idle_share, period_start, period_end, top`` (the
    review's "idle GPU" recommendations, largest first) or None when the file is not a GPU
    review or has no idle cost.
    """
    if isinstance(path, Mapping):
        data: Any = path
    else:
        p = Path(path)
        if p.is_dir():
            p = p / "result.json"
        data = json.loads(p.read_text())
    if not isinstance(data, Mapping) or data.get("analysis") != "gpu":
        return None
    summary = data.get("summary") or {}
    if summary.get("idle_cost") is None:
        return None
    recs = [r for r in (data.get("recommendations") or []) if r.get("kind") == "idle GPU"]
    return {
        "idle_cost": float(summary["idle_cost"]),
        "idle_gpu_hours": float(summary.get("idle_gpu_hours") or 0.0),
        "idle_share": float(summary.get("idle_share") or 0.0),
        "period_start": str(summary.get("period_start") or "")[:10] or None,
        "period_end": str(summary.get("period_end") or "")[:10] or None,
        "top": sorted(recs, key=lambda r: -(r.get("saving_usd") or 0.0)),
    }


def next_steps(
    result: CostForecast,
    *,
    outlook: pl.DataFrame | None = None,
    group_by: str | None = None,
    calls: pl.DataFrame | None = None,
    costs: pl.DataFrame | None = None,
    gpu_review: str | Path | Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Concrete actions suggested by the data, most pressing first.

    Parameters
    ----------
    result
        The forecast of the total (with a budget for the budget step).
    outlook
        Per value of the dimension: ``group`` (or ``group_by``), ``next_days``-like forecast
        sum in the second column, and ``change`` (on the last 30 days); the largest first.
    calls
        The priced call log: a cheaper model tier is suggested where a Pareto-dominated
        model carries most of the LLM cost.
    costs
        The bill: reserved capacity / a commitment is suggested where a GPU SKU's steady
        hours are under-covered.
    gpu_review
        A GPU review's ``result.json`` (path or dict), for its idle GPU cost.
    """
    steps: list[dict[str, Any]] = []

    def add(kind: str, text: str, saving: float | None = None) -> None:
        steps.append({"kind": kind, "text": text, "saving": saving})

    period = result.params["period"]
    if result.breach is not None and result.breach.height:
        b = result.breach.sort("p_breach", descending=True).row(0, named=True)
        if result.alert:
            cut = max(b["p90_total"] - b["budget"], 0.0)
            add("budget",
                f"The {period} is at risk ({b['p_breach']:.0%} chance of passing {b['budget']:,.0f}). To bring "
                f"the risk down to about one in ten, raise the budget to {b['p90_total']:,.0f} or cut about "
                f"{cut:,.0f} of spend before {b['expected_breach_date'] or b['period_end']}.")  # fmt: skip
        else:
            add(
                "budget",
                f"The budget holds ({b['p_breach']:.0%} chance of passing it); check again next week.",
            )
    if outlook is not None and outlook.height:
        top = outlook.row(0, named=True)
        name = group_by or "group"
        value = top.get(name, top.get("group"))
        amount = next(v for k, v in top.items() if k.startswith("next_"))
        trend = f" ({top['change']:+.0%} on the last 30)" if top.get("change") is not None else ""
        add("driver", f"The largest driver is {name} **{value}**: {amount:,.0f} over the next "
                      f"{result.params['horizon']} days{trend}.")  # fmt: skip
    if calls is not None and calls.height and "cost" in calls.columns:
        tiers = model_tiers(calls)
        beaten = dominated_models(tiers)
        heavy = beaten.filter(pl.col("share") >= MOST_COST)
        if heavy.height:
            r = heavy.row(0, named=True)
            t = {x["model"]: x for x in tiers.iter_rows(named=True)}
            a, c = t[r["model"]], t[r["by"]]
            monthly = r["saving"] * 30.0 / _period_days(calls)
            add("model tier",
                f"**{a['model']}** carries {a['share']:.0%} of LLM API spend at {a['cost_per_1k_tokens']:.4f} per "
                f"1k tokens, yet {c['model']} is cheaper ({c['cost_per_1k_tokens']:.4f}) with no worse p95 latency "
                f"and error rate in this log: try the cheaper tier on a sample of its traffic and compare answer "
                f"quality; at that price the same tokens would cost about {monthly:,.0f} less a month.",
                monthly)  # fmt: skip
    if costs is not None:
        cands = commitment_candidates(costs)
        if cands.height:
            r = cands.row(0, named=True)
            extra = max(r["base_hours"] - r["covered_hours"], 0.0)
            more = f" (and {cands.height - 1} more SKU(s))" if cands.height > 1 else ""
            add("commitment",
                f"Only {r['coverage']:.0%} of **{r['sku']}** list cost is under a commitment, yet at least "
                f"{r['base_hours']:,.0f} instance-hours run every day: reserve capacity or extend the savings plan "
                f"by about {extra:,.0f} hours a day, saving about {r['monthly_saving']:,.0f} a month at a "
                f"{r['discount']:.0%} discount{more}.", float(cands["monthly_saving"].sum()))  # fmt: skip
    idle = None
    if gpu_review:
        idle = gpu_idle(gpu_review)
    if idle is not None and idle["idle_cost"] > 0:
        top = idle["top"][0] if idle["top"] else None
        worst = (
            f" The largest: {top['target']} ({top['saving_usd']:,.0f}; {top['action']})."
            if top
            else ""
        )
        add("idle GPUs",
            f"The GPU review ({idle['period_start']} to {idle['period_end']}) found {idle['idle_share']:.0%} of "
            f"GPU-hours idle ({idle['idle_gpu_hours']:,.0f} h), costing **{idle['idle_cost']:,.0f}**: release "
            f"or scale down idle GPUs before buying more capacity.{worst}", idle["idle_cost"])  # fmt: skip
    if result.anomalies.height:
        worst_day = result.anomalies.row(0, named=True)
        add("anomaly",
            f"Explain the {result.anomalies.height} anomalous day(s); the largest, {worst_day['date']} "
            f"({worst_day['excess']:+,.0f}), was driven by {worst_day['drivers'] or 'no single dimension'}.")  # fmt: skip
    honest = result.summary.get("coverage_80")
    if honest is not None and honest < 0.7:
        add(
            "honesty",
            "The 80 % intervals covered fewer than 70 % of backtest days: treat the risk as a lower bound.",
        )
    if idle is None:
        add("gpu review", "Idle GPU-hours cost money too: run the GPU review (`aiops-lab report gpu`) on the same "
                          "fleet and pass its `result.json` as `gpu_review_json`.")  # fmt: skip
    return steps

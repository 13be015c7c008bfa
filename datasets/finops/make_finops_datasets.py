"""Regenerate the synthetic AI-spend datasets in ``datasets/finops/``.

Run ``python datasets/finops/make_finops_datasets.py`` from the repository root. The
output is deterministic (NumPy ``default_rng(SEED)``, gzip with ``mtime=0``):

* ``ai_spend_focus.csv.gz``: a FOCUS 1.1-style daily bill of a year, 2025-07-01 .. 2026-06-30
  (UTC):
  GPU instances, object storage and LLM API usage of three teams.
* ``genai_spans.jsonl.gz``: one OpenTelemetry GenAI span per LLM call (JSON lines);
  the bill's LLM rows are exactly these calls priced with genai-prices, day by day.

Everything is synthetic. ``datasets/finops/README.md`` documents the patterns and the
injected anomalies; ``generate()`` returns the ground truth that the tests check.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20260701
OUT_DIR = Path(__file__).resolve().parent
START, DAYS = date(2025, 7, 1), 365  # 2025-07-01 .. 2026-06-30
#: growth is linear in the days since this date (1.0 on it, smaller before)
GROWTH_ORIGIN = date(2026, 1, 1)
UTC = timezone.utc

#: injected anomalies: date -> (service, what happened, extra cost in USD, list prices)
ANOMALIES = {
    date(2025, 10, 21): ("Amazon Elastic Compute Cloud", "an autoscaler stuck at its maximum: +96 g6e.12xlarge hours (platform)"),
    date(2026, 2, 17): ("Amazon Elastic Compute Cloud", "a forgotten on-demand p5.48xlarge ran 24 h (research)"),
    date(2026, 4, 8): ("Amazon Simple Storage Service", "a one-off 7.8 TB bulk egress (research)"),
    date(2026, 5, 12): ("Anthropic API", "a retry storm in code-review: ~900 extra long-context calls"),
}  # fmt: skip
LAUNCH = date(2026, 3, 16)  # doc-search goes live (gpt-4o, research)
STUCK, STUCK_HOURS = date(2025, 10, 21), 96.0  # the g6e autoscaler anomaly

#: GPU SKUs: (SkuId, list USD per instance-hour, GPUs per instance)
P5 = ("p5.48xlarge", 55.04, 8)
G6E = ("g6e.12xlarge", 10.49, 4)
SAVINGS_PLAN = "arn:aws:savingsplans::123456789012:savingsplan/sp-0a1b2c3d"
SP_HOURS_PER_DAY, SP_DISCOUNT = 8.0, 0.40
S3_GB_MONTH = 0.023
EGRESS_GB = 0.09

#: LLM features: (feature, team, provider attr key, provider, request model, response model,
#:                weekday calls/day, mean input tokens, mean output tokens, first day)
FEATURES = [
    ("code-review", "platform", "gen_ai.provider.name", "anthropic", "claude-sonnet-4-0",
     "claude-sonnet-4-20250514", 40, 110_000, 3_000, START),
    ("support-chat", "support", "gen_ai.provider.name", "openai", "gpt-4o-mini",
     "gpt-4o-mini-2024-07-18", 40, 2_000, 400, START),
    ("summaries", "support", "gen_ai.system", "gemini", "gemini-2.0-flash", "gemini-2.0-flash",
     12, 20_000, 1_000, START),
    ("doc-search", "research", "gen_ai.provider.name", "openai", "gpt-4o", "gpt-4o-2024-08-06",
     30, 30_000, 800, LAUNCH),
]  # fmt: skip


def _weekend(d: date) -> bool:
    return d.weekday() >= 5


def _calls(rng: np.random.Generator) -> list[dict]:
    """Every LLM call as a flat record (the ground truth of the span log)."""
    out = []
    for i in range(DAYS):
        d = START + timedelta(days=i)
        growth = 1.0 + 0.004 * (d - GROWTH_ORIGIN).days
        for feature, team, key, provider, req, resp, per_day, n_in, n_out, first in FEATURES:
            if d < first:
                continue
            rate = per_day * growth * (0.35 if _weekend(d) else 1.0)
            n = int(rng.poisson(rate))
            storm = feature == "code-review" and d == date(2026, 5, 12)
            if storm:
                n += 900
            hours = np.sort(rng.uniform(7.0, 20.0, n) if not storm else rng.uniform(0.0, 24.0, n))
            ins = np.maximum(50, rng.lognormal(np.log(n_in) - 0.18, 0.6, n)).astype(int)
            if storm:
                ins = np.full(n, 150_000)  # the retry loop resent the whole context
            outs = np.maximum(5, rng.lognormal(np.log(n_out) - 0.18, 0.6, n)).astype(int)
            outage = feature == "doc-search" and d == date(2026, 4, 21)
            err = rng.uniform(size=n) < (0.20 if outage else 0.01)
            lat = 0.4 + outs / (60.0 if "mini" in req or "flash" in req else 35.0) + ins / 80_000
            lat = lat * rng.lognormal(0.0, 0.25, n)
            for h, a, b, e, s in zip(hours, ins, outs, err, lat, strict=True):
                t0 = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(hours=float(h))
                out.append({"start": t0, "end": t0 + timedelta(seconds=float(s)), "key": key,
                            "provider": provider, "request_model": req, "response_model": resp,
                            "input_tokens": int(a), "output_tokens": int(b) if not e else 0,
                            "error": bool(e), "team": team, "feature": feature})  # fmt: skip
    return out


def _span(call: dict, n: int) -> dict:
    attrs = {
        "gen_ai.operation.name": "chat",
        call["key"]: call["provider"],
        "gen_ai.request.model": call["request_model"],
        "gen_ai.usage.input_tokens": call["input_tokens"],
        "gen_ai.usage.output_tokens": call["output_tokens"],
        "app.team": call["team"],
        "app.feature": call["feature"],
    }
    if call["error"]:
        attrs["error.type"] = "500" if call["feature"] == "doc-search" else "timeout"
    else:
        attrs["gen_ai.response.model"] = call["response_model"]
    return {
        "name": f"chat {call['request_model']}",
        "span_id": f"{n:016x}",
        "start_time": call["start"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "end_time": call["end"].isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "status": {"status_code": "ERROR" if call["error"] else "UNSET"},
        "attributes": attrs,
    }


def _row(d: date, **kw: object) -> dict:
    month = date(d.year, d.month, 1)
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    base = {
        "BillingAccountId": "123456789012", "BillingAccountName": "ai-platform",
        "BillingCurrency": "USD", "BillingPeriodStart": f"{month} 00:00:00",
        "BillingPeriodEnd": f"{nxt} 00:00:00", "ChargeCategory": "Usage", "ChargeClass": None,
        "ChargeFrequency": "Usage-Based", "ChargePeriodStart": f"{d} 00:00:00",
        "ChargePeriodEnd": f"{d + timedelta(days=1)} 00:00:00", "CommitmentDiscountId": None,
        "CommitmentDiscountStatus": None, "CommitmentDiscountType": None,
        "CommitmentDiscountCategory": None, "InvoiceIssuerName": "Amazon Web Services, Inc.",
        "ProviderName": "AWS", "PublisherName": "Amazon Web Services, Inc.",
        "RegionId": "us-east-1", "RegionName": "US East (N. Virginia)",
        "PricingCategory": "Standard", "SubAccountId": "210987654321", "SubAccountName": "ml-prod",
    }  # fmt: skip
    base.update(kw)
    return base


def _cost(list_cost: float, effective: float | None = None, billed: float | None = None) -> dict:
    eff = list_cost if effective is None else effective
    return {"ListCost": round(list_cost, 6), "ContractedCost": round(list_cost, 6),
            "EffectiveCost": round(eff, 6), "BilledCost": round(eff if billed is None else billed, 6)}  # fmt: skip


def _tags(team: str, project: str) -> str:
    return json.dumps({"team": team, "project": project})


def _cloud_rows(rng: np.random.Generator) -> list[dict]:
    rows = []
    for i in range(DAYS):
        d = START + timedelta(days=i)
        k = (d - GROWTH_ORIGIN).days
        trend = 1.0 + 0.002 * k
        if d.day == 1:  # the savings plan is billed monthly, amortized into the usage rows
            days = ((date(d.year + (d.month == 12), d.month % 12 + 1, 1)) - d).days
            fee = SP_HOURS_PER_DAY * days * P5[1] * (1 - SP_DISCOUNT)
            rows.append(_row(d, ChargeCategory="Purchase", ChargeFrequency="Recurring",
                             ChargeDescription="Compute Savings Plan, monthly fee",
                             ServiceName="AWS Savings Plans", ServiceCategory="Compute",
                             SkuId="ComputeSavingsPlans", CommitmentDiscountId=SAVINGS_PLAN,
                             CommitmentDiscountType="Compute Savings Plan",
                             CommitmentDiscountCategory="Spend", PricingCategory="Committed",
                             ConsumedQuantity=None, ConsumedUnit=None, Tags=_tags("research", "foundation-models"),
                             **_cost(0.0, 0.0, fee)))  # fmt: skip
        # research training on p5: busy on weekdays; the first SP_HOURS covered by the plan
        hours = (14.0 if not _weekend(d) else 8.0) * trend * rng.lognormal(0.0, 0.05)
        if d == date(2026, 2, 17):
            hours += 24.0
        covered = min(hours, SP_HOURS_PER_DAY)
        ec2 = {"ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute",
               "SkuId": P5[0], "ConsumedUnit": "Hours", "PricingUnit": "Hours",
               "x_GpusPerInstance": P5[2], "Tags": _tags("research", "foundation-models")}  # fmt: skip
        rows.append(_row(d, ChargeDescription=f"{P5[0]} covered by Savings Plan",
                         CommitmentDiscountId=SAVINGS_PLAN, CommitmentDiscountStatus="Used",
                         CommitmentDiscountType="Compute Savings Plan", CommitmentDiscountCategory="Spend",
                         PricingCategory="Committed", ConsumedQuantity=round(covered, 4),
                         PricingQuantity=round(covered, 4),
                         **ec2, **_cost(covered * P5[1], covered * P5[1] * (1 - SP_DISCOUNT), 0.0)))  # fmt: skip
        rest = hours - covered
        rows.append(_row(d, ChargeDescription=f"{P5[0]} on demand", ConsumedQuantity=round(rest, 4),
                         PricingQuantity=round(rest, 4), **ec2, **_cost(rest * P5[1])))  # fmt: skip
        # platform inference on g6e, around the clock, growing with traffic
        serve = 48.0 * (1.0 + 0.003 * k) * rng.lognormal(0.0, 0.03)
        if d == STUCK:
            serve += STUCK_HOURS
        rows.append(_row(d, ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute",
                         ChargeDescription=f"{G6E[0]} on demand", SkuId=G6E[0], ConsumedUnit="Hours",
                         PricingUnit="Hours", ConsumedQuantity=round(serve, 4), PricingQuantity=round(serve, 4),
                         x_GpusPerInstance=G6E[2], Tags=_tags("platform", "inference"),
                         **_cost(serve * G6E[1])))  # fmt: skip
        # the doc-search launch also brings its self-hosted reranker: two g6e around the clock
        if d >= LAUNCH:
            rerank = 48.0 * rng.lognormal(0.0, 0.02)
            rows.append(_row(d, ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute",
                             ChargeDescription=f"{G6E[0]} on demand", SkuId=G6E[0], ConsumedUnit="Hours",
                             PricingUnit="Hours", ConsumedQuantity=round(rerank, 4),
                             PricingQuantity=round(rerank, 4), x_GpusPerInstance=G6E[2],
                             Tags=_tags("research", "doc-search"), **_cost(rerank * G6E[1])))  # fmt: skip
        # storage: datasets and checkpoints grow steadily
        for team, project, tb in (("research", "foundation-models", 60.0), ("platform", "inference", 12.0),
                                  ("support", "assistant", 3.0)):  # fmt: skip
            gb = tb * 1000 * (1.0 + 0.003 * k)
            rows.append(_row(d, ServiceName="Amazon Simple Storage Service", ServiceCategory="Storage",
                             ChargeDescription="Standard storage", SkuId="TimedStorage-ByteHrs",
                             ConsumedUnit="GB-Month", PricingUnit="GB-Month",
                             ConsumedQuantity=round(gb / 30, 4), PricingQuantity=round(gb / 30, 4),
                             Tags=_tags(team, project), **_cost(gb * S3_GB_MONTH / 30)))  # fmt: skip
        if d == date(2026, 4, 8):
            gb = 7_800.0
            rows.append(_row(d, ServiceName="Amazon Simple Storage Service", ServiceCategory="Storage",
                             ChargeDescription="Data transfer out to the internet", SkuId="DataTransfer-Out-Bytes",
                             ConsumedUnit="GB", PricingUnit="GB", ConsumedQuantity=gb, PricingQuantity=gb,
                             Tags=_tags("research", "foundation-models"), **_cost(gb * EGRESS_GB)))  # fmt: skip
    return rows


def generate() -> tuple[pl.DataFrame, list[dict], pl.DataFrame]:
    """The bill (as written), the calls (ground truth) and the priced calls."""
    sys.path.insert(0, str(OUT_DIR.parent.parent))
    from aiops_lab.finops.sources import price_tokens, token_spend_as_focus

    rng = np.random.default_rng(SEED)
    calls = _calls(rng)
    cloud = _cloud_rows(rng)
    usage = pl.DataFrame(
        {
            "timestamp": [c["start"] for c in calls],
            "provider": [c["provider"] for c in calls],
            "model": [c["response_model"] if not c["error"] else c["request_model"] for c in calls],
            "input_tokens": [c["input_tokens"] for c in calls],
            "output_tokens": [c["output_tokens"] for c in calls],
            "team": [c["team"] for c in calls],
            "feature": [c["feature"] for c in calls],
        }
    )
    priced = price_tokens(usage, on_unknown="raise")
    llm = token_spend_as_focus(priced, billing_account="llm-api", tags=("team", "feature"))
    llm_rows = []
    for r in llm.iter_rows(named=True):
        tags = {t["key"]: t["value"] for t in r["Tags"]}
        d = r["ChargePeriodStart"].date()
        llm_rows.append(_row(d, BillingAccountId="llm-api", BillingAccountName="LLM APIs",
                             InvoiceIssuerName=r["InvoiceIssuerName"], ProviderName=r["ProviderName"],
                             PublisherName=r["PublisherName"], ServiceName=r["ServiceName"],
                             ServiceCategory="AI and Machine Learning", RegionId=None, RegionName=None,
                             SubAccountId=None, SubAccountName=None,
                             ChargeDescription=r["ChargeDescription"], SkuId=r["SkuId"],
                             ConsumedQuantity=r["ConsumedQuantity"], ConsumedUnit="Tokens",
                             PricingQuantity=r["ConsumedQuantity"], PricingUnit="Tokens",
                             Tags=_tags(tags["team"], tags["feature"]), x_Model=r["x_Model"],
                             x_Requests=r["x_Requests"], x_InputTokens=r["x_InputTokens"],
                             x_OutputTokens=r["x_OutputTokens"], **_cost(r["EffectiveCost"])))  # fmt: skip
    bill = pl.DataFrame(cloud + llm_rows, infer_schema_length=None)
    bill = bill.sort("ChargePeriodStart", "ServiceName", "SkuId", maintain_order=True)
    return bill, calls, priced


def _gzip(path: Path, data: bytes) -> None:
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(data)


def render(bill: pl.DataFrame, calls: list[dict]) -> dict[str, bytes]:
    buf = io.BytesIO()
    bill.write_csv(buf, null_value="NULL", float_precision=6)
    spans = "".join(
        json.dumps(_span(c, n), separators=(",", ":")) + "\n" for n, c in enumerate(calls, 1)
    )
    return {"ai_spend_focus.csv.gz": buf.getvalue(), "genai_spans.jsonl.gz": spans.encode()}


def main() -> None:
    bill, calls, _ = generate()
    for name, data in render(bill, calls).items():
        _gzip(OUT_DIR / name, data)
        print(f"wrote {name}: {(OUT_DIR / name).stat().st_size:,} bytes")


if __name__ == "__main__":
    main()

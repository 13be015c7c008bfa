"""The notebook's verdict and next steps, from hand-made inputs with known answers."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from aiops_lab.finops import forecast, story

START = date(2026, 1, 5)


def _bill(values: np.ndarray) -> pl.DataFrame:
    n = values.shape[0]
    frame = pl.DataFrame({"ServiceName": ["svc"] * n, "EffectiveCost": values,
                          "ChargePeriodStart": [START + timedelta(days=i) for i in range(n)],
                          "BillingCurrency": "USD"})  # fmt: skip
    return frame.with_columns(pl.col("ChargePeriodStart").cast(pl.Datetime("us", "UTC")))


@pytest.fixture(scope="module")
def flat():
    # a constant 100 a day forecast exactly: March (4 days spent) totals 3,100
    return forecast(_bill(np.full(59, 100.0)), horizon=5, models=("snaive",), budget=3050.0,
                    alert_p_breach=0.5)  # fmt: skip


def test_verdict_states_spend_forecast_and_risk(flat):
    lines = story.verdict(flat)
    assert lines[0].startswith("**5,900** spent from 2026-01-05 to 2026-03-04")
    assert lines[0].endswith("the last 30 days cost 3,000.")  # under 60 days: no comparison
    assert "Next 5 days forecast: **500**" in lines[1]
    assert "snaive" in lines[1]
    assert "expected **3,100**" in lines[2]
    assert "**100% chance of passing it**, most likely from 2026-03-31" in lines[2]
    assert lines[3].startswith("**At risk**")
    no_budget = story.verdict(flat.with_budget(None))
    assert "No budget given" in no_budget[2]


def test_budget_step_names_the_p90_and_the_cut(flat):
    steps = story.next_steps(flat)
    budget = next(s for s in steps if s["kind"] == "budget")
    assert "raise the budget to 3,100 or cut about 50 of spend before 2026-03-31" in budget["text"]
    held = story.next_steps(flat.with_budget(5000.0))
    assert next(s for s in held if s["kind"] == "budget")["text"].startswith(
        "The budget holds (0% chance"
    )
    assert steps[-1]["kind"] == "gpu review"  # no GPU review given: suggest running one


def _calls(rows: list[tuple[str, int, int, float, float, str]]) -> pl.DataFrame:
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    return pl.DataFrame({
        "timestamp": [t0 + timedelta(days=30 * i / max(len(rows) - 1, 1)) for i in range(len(rows))],
        "request_model": [r[0] for r in rows], "model": [r[0] for r in rows],
        "input_tokens": [r[1] for r in rows], "output_tokens": [r[2] for r in rows],
        "cost": [r[3] for r in rows], "latency_s": [r[4] for r in rows], "status": [r[5] for r in rows],
    })  # fmt: skip


def test_a_dominated_expensive_model_gets_a_cheaper_tier(flat):
    # "big": 10 calls of 1,000 tokens at 0.01 each (0.01 per 1k), slow; "small": 10 calls of
    # 1,000 tokens at 0.001 (0.001 per 1k), fast; "odd": cheapest but slower than big
    rows = [("big", 900, 100, 0.01, 10.0, "ok")] * 10 + [("small", 900, 100, 0.001, 2.0, "ok")] * 10
    rows += [("odd", 900, 100, 0.0001, 50.0, "ok")] * 2
    calls = _calls(rows)
    tiers = story.model_tiers(calls)
    big = tiers.filter(pl.col("model") == "big").row(0, named=True)
    assert big["cost_per_1k_tokens"] == pytest.approx(0.01)
    assert big["share"] == pytest.approx(0.1 / (0.1 + 0.01 + 0.0002))
    beaten = story.dominated_models(tiers)
    assert beaten["model"].to_list() == ["big"]  # "small" is not dominated: "odd" is slower
    assert beaten["by"][0] == "small"
    assert beaten["saving"][0] == pytest.approx(10_000 * (0.01 - 0.001) / 1000)
    step = next(s for s in story.next_steps(flat, calls=calls) if s["kind"] == "model tier")
    assert "**big** carries 91% of LLM API spend" in step["text"]
    assert "small is cheaper" in step["text"]
    assert step["saving"] == pytest.approx(0.09 * 30 / 30)  # the log spans 30 days
    # an error-prone cheap model does not dominate; nor does one carrying little cost
    worse = _calls(
        [("big", 900, 100, 0.01, 10.0, "ok")] * 10 + [("small", 900, 100, 0.001, 2.0, "error")] * 10
    )
    assert story.dominated_models(story.model_tiers(worse)).height == 0
    minor = _calls(rows + [("huge", 900, 100, 1.0, 1.0, "ok")] * 10)
    assert not [s for s in story.next_steps(flat, calls=minor) if s["kind"] == "model tier"]


def _gpu_bill() -> pl.DataFrame:
    # 10 days of one GPU SKU: 12 h a day, the first 4 under a commitment at 40 % off
    rows = []
    for i in range(10):
        day = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(days=i)
        hours = 12.0 if i != 3 else 20.0
        for h, used in ((4.0, "Used"), (hours - 4.0, None)):
            rows.append({"SkuId": "gpu.big", "ConsumedQuantity": h, "ConsumedUnit": "Hours",
                         "ListCost": 10.0 * h, "EffectiveCost": 10.0 * h * (0.6 if used else 1.0),
                         "ChargePeriodStart": day, "ChargeCategory": "Usage", "x_GpusPerInstance": 8,
                         "CommitmentDiscountStatus": used})  # fmt: skip
    rows.append({**rows[0], "SkuId": "cpu.small", "x_GpusPerInstance": 0})
    return pl.DataFrame(rows)


def test_steady_uncovered_gpu_hours_get_a_commitment(flat):
    got = story.commitment_candidates(_gpu_bill())
    assert got["sku"].to_list() == ["gpu.big"]  # the CPU SKU is not a GPU instance
    r = got.row(0, named=True)
    assert r["base_hours"] == pytest.approx(12.0)
    assert r["covered_hours"] == pytest.approx(4.0)
    assert r["coverage"] == pytest.approx(40.0 / 128.0)  # 4 h of 12.8 h a day on average
    assert r["discount"] == pytest.approx(0.4)
    assert r["monthly_saving"] == pytest.approx(8.0 * 30 * 10.0 * 0.4)
    step = next(s for s in story.next_steps(flat, costs=_gpu_bill()) if s["kind"] == "commitment")
    assert "Only 31% of **gpu.big**" in step["text"]
    assert "by about 8 hours a day" in step["text"]
    # fully covered: nothing to suggest
    covered = _gpu_bill().with_columns(CommitmentDiscountStatus=pl.lit("Used"))
    assert story.commitment_candidates(covered).height == 0


def test_idle_gpus_come_from_the_gpu_review(tmp_path, flat):
    review = {"analysis": "gpu", "summary": {"idle_cost": 1234.5, "idle_gpu_hours": 300.0, "idle_share": 0.25,
                                             "period_start": "2026-03-01", "period_end": "2026-03-08"},
              "recommendations": [{"kind": "idle GPU", "target": "node-1/0", "saving_usd": 200.0,
                                   "action": "release it"},
                                  {"kind": "idle GPU", "target": "node-2/3", "saving_usd": 900.0,
                                   "action": "scale down"}]}  # fmt: skip
    (tmp_path / "result.json").write_text(json.dumps(review))
    idle = story.gpu_idle(tmp_path)  # a report folder works as well as the file
    assert idle["idle_cost"] == 1234.5
    assert idle["top"][0]["target"] == "node-2/3"
    steps = story.next_steps(flat, gpu_review=str(tmp_path / "result.json"))
    step = next(s for s in steps if s["kind"] == "idle GPUs")
    assert (
        "25% of GPU-hours idle (300 h), costing **1,234**" in step["text"]
        or "**1,235**" in step["text"]
    )
    assert "node-2/3" in step["text"]
    assert step["saving"] == 1234.5
    assert not [s for s in steps if s["kind"] == "gpu review"]
    assert story.gpu_idle({"analysis": "drift", "summary": {}}) is None

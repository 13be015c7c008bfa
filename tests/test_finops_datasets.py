"""The bundled synthetic bill and token log agree with each other and with their README."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from aiops_lab.finops import price_tokens, read_focus, read_token_usage

DATA = Path(__file__).resolve().parent.parent / "datasets" / "finops"


def test_llm_rows_of_the_bill_are_the_priced_token_log():
    from genai_prices import Usage, calc_price

    bill = read_focus(DATA / "ai_spend_focus.csv.gz")
    calls = read_token_usage(DATA / "genai_spans.jsonl.gz")
    assert calls.height > 20_000
    assert set(calls["feature"].unique()) == {
        "code-review",
        "support-chat",
        "summaries",
        "doc-search",
    }
    priced = price_tokens(calls, on_unknown="raise")
    # spot-check the pricing of one call against genai-prices directly
    row = priced.filter(pl.col("model") == "gpt-4o-2024-08-06").row(0, named=True)
    ref = calc_price(Usage(input_tokens=row["input_tokens"], output_tokens=row["output_tokens"]),
                     row["model"], provider_id="openai",
                     genai_request_timestamp=row["timestamp"].replace(hour=12, minute=0, second=0, microsecond=0))  # fmt: skip
    assert row["cost"] == pytest.approx(float(ref.total_price), rel=1e-12)
    daily_log = priced.group_by(pl.col("timestamp").dt.date().alias("d")).agg(pl.col("cost").sum())
    llm = bill.filter(pl.col("ServiceCategory") == "AI and Machine Learning")
    daily_bill = llm.group_by(pl.col("ChargePeriodStart").dt.date().alias("d")).agg(
        pl.col("EffectiveCost").sum()
    )
    both = daily_log.join(daily_bill, on="d", how="full", coalesce=True).fill_null(0.0)
    assert both.height == 365  # a year: 2025-07-01 .. 2026-06-30
    assert (both["cost"] - both["EffectiveCost"]).abs().max() < 1e-4  # the CSV keeps 6 decimals
    storm = priced.filter(
        pl.col("timestamp").dt.date() == pl.date(2026, 5, 12), pl.col("feature") == "code-review"
    )
    assert storm.height > 900


def test_bundled_files_stay_small():
    total = sum(p.stat().st_size for p in DATA.iterdir() if p.is_file())
    assert total < 3_000_000


def test_a_year_with_the_launch_step_and_the_autoscaler_anomaly():
    import csv
    import gzip
    import io
    import json
    from datetime import date

    with gzip.open(DATA / "ai_spend_focus.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(io.StringIO(fh.read())))
    days = sorted({r["ChargePeriodStart"][:10] for r in rows})
    assert (days[0], days[-1], len(days)) == ("2025-07-01", "2026-06-30", 365)
    # the doc-search reranker (research / doc-search on g6e) runs from the launch day on
    rerank = sorted(r["ChargePeriodStart"][:10] for r in rows
                    if r["SkuId"] == "g6e.12xlarge" and json.loads(r["Tags"])["project"] == "doc-search")  # fmt: skip
    assert rerank[0] == "2026-03-16"
    assert len(rerank) == (date(2026, 6, 30) - date(2026, 3, 16)).days + 1
    # the platform g6e hours on 2025-10-21 carry the +96 h of the stuck autoscaler
    platform = {r["ChargePeriodStart"][:10]: float(r["ConsumedQuantity"]) for r in rows
                if r["SkuId"] == "g6e.12xlarge" and json.loads(r["Tags"])["team"] == "platform"}  # fmt: skip
    around = [
        platform[f"2025-10-{d:02d}"]
        for d in (14, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28)
    ]
    extra = platform["2025-10-21"] - sum(around) / len(around)
    assert 85.0 < extra < 107.0

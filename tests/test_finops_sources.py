"""FOCUS reader, token-log reader and token pricing, checked against independent references."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from aiops_lab.errors import AiopsLabWarning, InputError
from aiops_lab.finops import (
    FOCUS_MANDATORY,
    price_tokens,
    read_focus,
    read_token_usage,
    tag,
    token_spend_as_focus,
    unpriced,
)

DATA = Path(__file__).resolve().parent.parent / "datasets" / "finops"
SAMPLE = DATA / "focus1.0_sample_1000rows.csv"


def test_real_focus_sample_totals_match_a_plain_decimal_sum():
    sums = dict.fromkeys(("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"), Decimal(0))
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for column in sums:
            if row[column] not in ("", "NULL"):
                sums[column] += Decimal(row[column])
    bill = read_focus(SAMPLE)
    assert bill.height == len(rows) == 1000
    for column, total in sums.items():
        assert bill[column].sum() == pytest.approx(float(total), rel=1e-12, abs=1e-12)
    assert bill.schema["ChargePeriodStart"] == pl.Datetime("us", "UTC")
    assert set(bill["ChargeCategory"].unique()) <= {
        "Usage",
        "Purchase",
        "Tax",
        "Credit",
        "Adjustment",
    }
    with_tags = [r for r in rows if r["Tags"] not in ("", "NULL")]
    first = json.loads(with_tags[0]["Tags"])
    key = next(iter(first))
    got = bill.select(tag(key)).to_series().drop_nulls()
    expected = [json.loads(r["Tags"]).get(key) for r in with_tags]
    assert got.to_list() == [v for v in expected if v is not None]


MESSY = """\ufeffbilledcost,EffectiveCost,ListCost,ContractedCost,BillingAccountId,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,ProviderName,ServiceCategory,ServiceName,ChargeFrequency,Tags,x_CostCenter
1.50, 1.25 ,2.00,2.00,acct,USD,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,usage,2026-03-05T00:00:00Z,2026-03-06T00:00:00Z,AWS,compute,EC2,usage-based,"{""team"": ""ml"", ""cost"": 3}",cc-1
NULL,0,,,acct,USD,2026-03-01,2026-04-01,CREDIT,2026-03-05 10:00:00+02:00,2026-03-06 00:00:00,AWS,AI AND MACHINE LEARNING,Bedrock,one time,NULL,
"""


def test_messy_focus_rows_are_normalised(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text(MESSY, encoding="utf-8")
    bill = read_focus(path)
    assert bill["BilledCost"].to_list() == [1.5, None]
    assert bill["EffectiveCost"].to_list() == [1.25, 0.0]
    assert bill["ListCost"].to_list() == [2.0, None]
    assert bill["ChargeCategory"].to_list() == ["Usage", "Credit"]
    assert bill["ServiceCategory"].to_list() == ["Compute", "AI and Machine Learning"]
    assert bill["ChargeFrequency"].to_list() == ["Usage-Based", "One-Time"]
    assert bill["ChargePeriodStart"].to_list() == [
        datetime(2026, 3, 5, tzinfo=timezone.utc),
        datetime(2026, 3, 5, 8, tzinfo=timezone.utc),  # +02:00 converted to UTC
    ]
    assert bill.select(tag("team")).to_series().to_list() == ["ml", None]
    assert bill.select(tag("cost")).to_series().to_list() == ["3", None]
    assert bill["x_CostCenter"].to_list() == ["cc-1", None]
    assert bill["CommitmentDiscountId"].null_count() == 2  # absent columns come back as nulls
    pq = tmp_path / "messy.parquet"
    bill.write_parquet(pq)
    assert read_focus(pq).equals(bill)


def test_missing_mandatory_columns_are_named(tmp_path):
    path = tmp_path / "bad.csv"
    pl.read_csv(SAMPLE, infer_schema=False).drop("BilledCost", "ServiceName").write_csv(path)
    with pytest.raises(InputError, match="BilledCost, ServiceName") as info:
        read_focus(path)
    assert set(FOCUS_MANDATORY) >= {"BilledCost", "ServiceName"}
    assert "bad.csv" in str(info.value)


def test_non_numeric_cost_names_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(MESSY.replace("1.50", "$1.50"), encoding="utf-8")
    with pytest.raises(InputError, match=r"row 2: column 'BilledCost' holds '\$1.50'"):
        read_focus(path)


def _span(model: str, n_in: int, n_out: int, **extra) -> dict:
    return {"name": "chat", "start_time": "2026-05-01T10:00:00Z", "end_time": "2026-05-01T10:00:02.5Z",
            "status": {"status_code": "UNSET"},
            "attributes": {"gen_ai.provider.name": "openai", "gen_ai.request.model": model,
                           "gen_ai.response.model": model, "gen_ai.usage.input_tokens": n_in,
                           "gen_ai.usage.output_tokens": n_out, "app.team": "search", **extra}}  # fmt: skip


def test_token_logs_nested_otlp_and_flat_agree(tmp_path):
    nested = tmp_path / "calls.jsonl.gz"
    with gzip.open(nested, "wt") as fh:
        fh.write(json.dumps(_span("gpt-4o", 1200, 300)) + "\n\n")
        fh.write(json.dumps(_span("gpt-4o-mini", 50, 0, **{"error.type": "timeout"})) + "\n")
    otlp = tmp_path / "otlp.jsonl"
    start = int(datetime(2026, 5, 1, 10, tzinfo=timezone.utc).timestamp() * 1e9)
    otlp.write_text(json.dumps({"startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 2_500_000_000),
        "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                       {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                       {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1200"}},
                       {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "300"}},
                       {"key": "app.team", "value": {"stringValue": "search"}}]}) + "\n")  # fmt: skip
    flat = tmp_path / "flat.csv"
    flat.write_text("timestamp,provider,gen_ai.request.model,input_tokens,output_tokens,latency_ms,team\n"
                    "2026-05-01 10:00:00,openai,gpt-4o,1200,300,2500,search\n")  # fmt: skip
    a, b, c = read_token_usage(nested), read_token_usage(otlp), read_token_usage(flat)
    assert a["status"].to_list() == ["ok", "error"]
    assert a["error_type"].to_list() == [None, "timeout"]
    for frame in (a.head(1), b, c):
        row = frame.row(0, named=True)
        assert row["timestamp"] == datetime(2026, 5, 1, 10, tzinfo=timezone.utc)
        assert row["model"] == "gpt-4o"
        assert row["provider"] == "openai"
        assert row["team"] == "search"
        assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
        assert row["latency_s"] == pytest.approx(2.5)


def test_prices_match_genai_prices_and_unknown_models_stay_null(tmp_path):
    from genai_prices import Usage, calc_price

    usage = pl.DataFrame({
        "timestamp": [datetime(2026, 5, 1, tzinfo=timezone.utc)] * 3,
        "provider": ["openai", "anthropic", "openai"],
        "model": ["gpt-4o-mini", "claude-sonnet-4-20250514", "in-house-llm-7b"],
        "input_tokens": [10_000, 200_000 - 1, 5], "output_tokens": [2_000, 4_000, 5],
    })  # fmt: skip
    with pytest.warns(AiopsLabWarning, match="in-house-llm-7b"):
        priced = price_tokens(usage)
    when = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
    for i, (prov, model) in enumerate(
        [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-20250514")]
    ):
        ref = calc_price(Usage(input_tokens=usage["input_tokens"][i], output_tokens=usage["output_tokens"][i]),
                         model, provider_id=prov, genai_request_timestamp=when)  # fmt: skip
        assert priced["cost"][i] == pytest.approx(float(ref.total_price), rel=1e-12)
    assert priced["cost"][2] is None
    assert not priced["priced"][2]
    assert unpriced(priced).select("model", "calls").rows() == [("in-house-llm-7b", 1)]
    with pytest.raises(InputError, match="in-house-llm-7b"):
        price_tokens(usage, on_unknown="raise")
    rows = token_spend_as_focus(priced.filter(pl.col("priced")).with_columns(team=pl.lit("search")))
    assert rows["EffectiveCost"].sum() == pytest.approx(priced["cost"].sum())
    assert set(rows["ServiceName"]) == {"OpenAI API", "Anthropic API"}
    assert rows.select(tag("team")).to_series().to_list() == ["search", "search"]

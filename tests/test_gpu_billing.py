"""GPU-hour prices from a FOCUS bill: instance types, GPU counts, effective cost per GPU-hour."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import polars as pl
import pytest

from aiops_lab import gpu
from aiops_lab.errors import InputError, ParameterError
from aiops_lab.gpu.billing import gpu_instance

BILL = Path(__file__).resolve().parents[1] / "datasets" / "finops" / "ai_spend_focus.csv.gz"


@pytest.mark.parametrize(
    ("instance", "expected"),
    [
        ("p5.48xlarge", ("H100 80GB HBM3", 8)),
        ("p4d.24xlarge", ("A100-SXM4-40GB", 8)),
        ("g6e.12xlarge", ("L40S", 4)),
        ("g6e.2xlarge", ("L40S", 1)),
        ("a2-highgpu-4g", ("A100-SXM4-40GB", 4)),
        ("a3-highgpu-8g", ("H100 80GB HBM3", 8)),
        ("Standard_ND96asr_v4", ("A100-SXM4-40GB", 8)),
        ("m5.xlarge", None),
    ],
)
def test_instance_types(instance, expected):
    assert gpu_instance(instance) == expected


def _tiny_bill() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ChargeDescription": [
                "USD 98.32 per On Demand Linux p5.48xlarge Instance Hour",
                "p5.48xlarge savings plan covered usage",
                "a2-highgpu-2g running in us-central1",
                "m5.xlarge instance hour",
                "S3 storage",
            ],
            "ConsumedQuantity": [10.0, 30.0, 5.0, 100.0, 1000.0],
            "ConsumedUnit": ["Hours", "Hours", "Hours", "Hours", "GB-Month"],
            "EffectiveCost": [983.2, 1800.0, 36.0, 19.2, 23.0],
        }
    )


def test_price_per_gpu_hour_by_hand():
    p = gpu.prices_from_focus(_tiny_bill())
    rows = {r["model"]: r for r in p.iter_rows(named=True)}
    assert set(rows) == {"H100 80GB HBM3", "A100-SXM4-40GB"}
    # (983.2 + 1800) USD over (10 + 30) instance-hours x 8 GPUs
    assert rows["H100 80GB HBM3"]["price_per_gpu_hour_usd"] == pytest.approx(2783.2 / 320)
    assert rows["A100-SXM4-40GB"]["price_per_gpu_hour_usd"] == pytest.approx(36.0 / 10)


def test_review_uses_the_billed_prices():
    t = pl.DataFrame(
        {
            "timestamp": pl.datetime_range(
                pl.datetime(2026, 10, 1), pl.datetime(2026, 10, 1, 0, 59), "1m", eager=True,
                time_zone="UTC",
            ),
            "host": "n1", "gpu": 0, "model": "NVIDIA H100 80GB HBM3", "util_pct": 0.0,
            "mem_used_mib": 0.0, "mem_total_mib": 81559.0,
        }
    )  # fmt: skip
    r = gpu.review(t, prices=gpu.prices_from_focus(_tiny_bill()), backend="numpy")
    assert r.summary["idle_cost"] == pytest.approx(2783.2 / 320)  # one idle GPU-hour


def test_bundled_bill_matches_a_plain_sum():
    cost: dict[str, float] = {}
    gpu_hours: dict[str, float] = {}
    with gzip.open(BILL, "rt", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["ConsumedUnit"] != "Hours" or not row["x_GpusPerInstance"]:
                continue
            sku = row["SkuId"]
            cost[sku] = cost.get(sku, 0.0) + float(row["EffectiveCost"])
            hours = float(row["ConsumedQuantity"]) * int(row["x_GpusPerInstance"])
            gpu_hours[sku] = gpu_hours.get(sku, 0.0) + hours
    p = {r["instance_types"]: r for r in gpu.prices_from_focus(BILL).iter_rows(named=True)}
    assert set(p) == {s.lower() for s in cost}
    for sku in cost:
        assert p[sku.lower()]["price_per_gpu_hour_usd"] == pytest.approx(cost[sku] / gpu_hours[sku])


def test_bad_bills():
    with pytest.raises(InputError, match="No GPU instance-hours"):
        gpu.prices_from_focus(_tiny_bill().filter(pl.col("ConsumedUnit") == "GB-Month"))
    with pytest.raises(ParameterError, match="cost"):
        gpu.prices_from_focus(_tiny_bill(), cost="Price")

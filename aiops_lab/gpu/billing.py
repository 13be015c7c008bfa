"""GPU-hour prices from what the cloud actually billed (a FOCUS export).

>>> from aiops_lab import finops, gpu
>>> bill = finops.read_focus("bundled:finops/ai_spend_focus.csv.gz")
>>> prices = gpu.prices_from_focus(bill)          # doctest: +SKIP
>>> gpu.review("bundled:gpu/dcgm.prom.gz", prices=prices)  # doctest: +SKIP

The list prices bundled with the package are illustrative; a FOCUS bill says what an
instance-hour cost after discounts and commitments. Each GPU instance row is matched
to its instance type (in ``SkuId``, ``ResourceType``, ``SkuMeter``,
``ChargeDescription`` or ``x_InstanceType``), the instance type to its GPU model and
count (``x_GpusPerInstance`` when the bill has it, else the table below), and the
price per GPU-hour is ``sum(cost) / sum(instance-hours x GPUs per instance)`` per GPU
model, the shape :func:`aiops_lab.gpu.review` takes as ``prices=``.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError

__all__ = ["INSTANCE_GPUS", "gpu_instance", "prices_from_focus"]

#: instance type (regular expression, full match, lower case) -> (GPU model as NVML names it, GPUs)
#: from the providers' published instance specifications.
INSTANCE_GPUS: list[tuple[str, str, int | None]] = [
    (r"p5e?n?\.48xlarge", "H100 80GB HBM3", 8),
    (r"p4de\.24xlarge", "A100-SXM4-80GB", 8),
    (r"p4d\.24xlarge", "A100-SXM4-40GB", 8),
    (r"g6e\.(12|24)xlarge", "L40S", 4),
    (r"g6e\.48xlarge", "L40S", 8),
    (r"g6e\.\d*x?large", "L40S", 1),
    (r"g6\.(12|24)xlarge", "L4", 4),
    (r"g6\.48xlarge", "L4", 8),
    (r"g6\.\d*x?large", "L4", 1),
    (r"g5\.(12|24)xlarge", "A10G", 4),
    (r"g5\.48xlarge", "A10G", 8),
    (r"g5\.\d*x?large", "A10G", 1),
    (r"a3-(high|mega|edge)gpu-(\d+)g", "H100 80GB HBM3", None),
    (r"a2-ultragpu-(\d+)g", "A100-SXM4-80GB", None),
    (r"a2-highgpu-(\d+)g", "A100-SXM4-40GB", None),
    (r"a2-megagpu-16g", "A100-SXM4-40GB", 16),
    (r"g2-standard-(4|8|12|16|32)", "L4", 1),
    (r"g2-standard-24", "L4", 2),
    (r"g2-standard-48", "L4", 4),
    (r"g2-standard-96", "L4", 8),
    (r"standard_nd96isr_h100_v5", "H100 80GB HBM3", 8),
    (r"standard_nd96amsr_a100_v4", "A100-SXM4-80GB", 8),
    (r"standard_nd96asr_v4", "A100-SXM4-40GB", 8),
    (r"standard_nc24ads_a100_v4", "A100 80GB PCIe", 1),
    (r"standard_nc48ads_a100_v4", "A100 80GB PCIe", 2),
    (r"standard_nc96ads_a100_v4", "A100 80GB PCIe", 4),
]

_TOKEN = re.compile(
    r"\b([pg]\d+[a-z]*\.\d*x?large|a[23]-[a-z]+gpu-\d+g|g2-standard-\d+|standard_n[cd]\w+)\b",
    re.IGNORECASE,
)
_WHERE = ("x_InstanceType", "SkuId", "ResourceType", "SkuMeter", "ChargeDescription")


def gpu_instance(instance_type: str) -> tuple[str, int] | None:
    """(GPU model, GPUs per instance) of a cloud instance type, or None if it has no GPU we know."""
    name = instance_type.lower()
    for pattern, model, count in INSTANCE_GPUS:
        m = re.fullmatch(pattern, name)
        if m:
            if count is None:  # the count is in the name: a2-highgpu-4g
                count = int(m.groups()[-1])
            return model, count
    return None


def _instance_of(row: dict[str, Any]) -> str | None:
    for col in _WHERE:
        value = row.get(col)
        if value:
            m = _TOKEN.search(str(value))
            if m:
                return m.group(1).lower()
    return None


def prices_from_focus(bill: Any, *, cost: str = "EffectiveCost") -> pl.DataFrame:
    """Price per GPU-hour, per GPU model, from a FOCUS bill's GPU instance rows.

    Parameters
    ----------
    bill : polars DataFrame or path
        A FOCUS export (:func:`aiops_lab.finops.read_focus` reads a path).
    cost : str
        ``"EffectiveCost"`` (after discounts and commitments, the default),
        ``"BilledCost"``, ``"ListCost"`` or ``"ContractedCost"``.

    Returns
    -------
    polars.DataFrame
        ``model``, ``price_per_gpu_hour_usd``, ``gpu_hours``, ``cost``, ``instance_types``
        and ``source``: pass it as ``prices=`` to :func:`aiops_lab.gpu.review`.
    """
    if cost not in ("EffectiveCost", "BilledCost", "ListCost", "ContractedCost"):
        raise ParameterError(
            "cost", "'EffectiveCost', 'BilledCost', 'ListCost' or 'ContractedCost'", cost
        )
    if not isinstance(bill, pl.DataFrame):
        from aiops_lab.finops import read_focus

        bill = read_focus(bill)
    for col in (cost, "ConsumedQuantity", "ConsumedUnit"):
        if col not in bill.columns:
            raise ColumnNotFoundError(col, "the FOCUS bill", bill.columns)
    hours = bill.filter(pl.col("ConsumedUnit").str.to_lowercase().str.contains("hour"))
    keep = [c for c in (*_WHERE, "x_GpusPerInstance") if c in hours.columns]
    rows = []
    for row in hours.select(*keep, cost, "ConsumedQuantity").iter_rows(named=True):
        instance = _instance_of(row)
        if instance is None:
            continue
        known = gpu_instance(instance)
        if known is None:
            continue
        model, count = known
        given = row.get("x_GpusPerInstance")
        if given not in (None, ""):
            count = int(float(given))
        rows.append(
            {
                "model": model,
                "instance_type": instance,
                "gpu_hours": float(row["ConsumedQuantity"] or 0.0) * count,
                "cost": float(row[cost] or 0.0),
            }
        )
    if not rows:
        raise InputError(
            "No GPU instance-hours found in the bill: no row with an hourly ConsumedUnit names a "
            "known GPU instance type (p5, p4d, g5, g6, g6e, a2, a3, g2, Azure ND/NC A100/H100). "
            "Pass prices= as a {model: price} dict instead."
        )
    frame = pl.DataFrame(rows)
    return (
        frame.group_by("model")
        .agg(
            pl.col("gpu_hours").sum(),
            pl.col("cost").sum(),
            pl.col("instance_type").unique().sort().str.join(", ").alias("instance_types"),
        )
        .filter(pl.col("gpu_hours") > 0)
        .with_columns(
            (pl.col("cost") / pl.col("gpu_hours")).alias("price_per_gpu_hour_usd"),
            pl.lit(f"FOCUS bill, {cost} per GPU-hour").alias("source"),
        )
        .select("model", "price_per_gpu_hour_usd", "gpu_hours", "cost", "instance_types", "source")
        .sort("model")
    )

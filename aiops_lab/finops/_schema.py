"""FOCUS and token-log column sets, and the parsing rules the finops readers share."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import polars as pl

from aiops_lab.errors import AiopsLabWarning, InputError

__all__ = [
    "COST_COLUMNS",
    "FOCUS_COLUMNS",
    "FOCUS_MANDATORY",
    "TOKEN_SCHEMA",
    "PathLike",
]

PathLike = str | os.PathLike[str]
UTC = pl.Datetime("us", "UTC")
TAGS = pl.List(pl.Struct({"key": pl.String(), "value": pl.String()}))

#: the four cost columns of every FOCUS row (decimal amounts in BillingCurrency)
COST_COLUMNS = ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost")

#: columns FOCUS 1.0, 1.1 and 1.2 all mark Mandatory and the analyses need
FOCUS_MANDATORY = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ContractedCost",
    "EffectiveCost",
    "ListCost",
    "ProviderName",
    "ServiceCategory",
    "ServiceName",
)

_DECIMAL = pl.Float64()
_STRING = pl.String()

#: every FOCUS 1.0-1.2 column the readers type; columns not in a file are added as nulls
FOCUS_COLUMNS: dict[str, pl.DataType] = {
    "AvailabilityZone": _STRING,
    "BilledCost": _DECIMAL,
    "BillingAccountId": _STRING,
    "BillingAccountName": _STRING,
    "BillingAccountType": _STRING,
    "BillingCurrency": _STRING,
    "BillingPeriodEnd": UTC,
    "BillingPeriodStart": UTC,
    "CapacityReservationId": _STRING,
    "CapacityReservationStatus": _STRING,
    "ChargeCategory": _STRING,
    "ChargeClass": _STRING,
    "ChargeDescription": _STRING,
    "ChargeFrequency": _STRING,
    "ChargePeriodEnd": UTC,
    "ChargePeriodStart": UTC,
    "CommitmentDiscountCategory": _STRING,
    "CommitmentDiscountId": _STRING,
    "CommitmentDiscountName": _STRING,
    "CommitmentDiscountQuantity": _DECIMAL,
    "CommitmentDiscountStatus": _STRING,
    "CommitmentDiscountType": _STRING,
    "CommitmentDiscountUnit": _STRING,
    "ConsumedQuantity": _DECIMAL,
    "ConsumedUnit": _STRING,
    "ContractedCost": _DECIMAL,
    "ContractedUnitPrice": _DECIMAL,
    "EffectiveCost": _DECIMAL,
    "InvoiceId": _STRING,
    "InvoiceIssuerName": _STRING,
    "ListCost": _DECIMAL,
    "ListUnitPrice": _DECIMAL,
    "PricingCategory": _STRING,
    "PricingCurrency": _STRING,
    "PricingQuantity": _DECIMAL,
    "PricingUnit": _STRING,
    "ProviderName": _STRING,
    "PublisherName": _STRING,
    "RegionId": _STRING,
    "RegionName": _STRING,
    "ResourceId": _STRING,
    "ResourceName": _STRING,
    "ResourceType": _STRING,
    "ServiceCategory": _STRING,
    "ServiceName": _STRING,
    "ServiceSubcategory": _STRING,
    "SkuId": _STRING,
    "SkuMeter": _STRING,
    "SkuPriceId": _STRING,
    "SubAccountId": _STRING,
    "SubAccountName": _STRING,
    "SubAccountType": _STRING,
    "Tags": TAGS,
}

#: enum columns and their canonical values (matched ignoring case, blanks, '-' and '_')
FOCUS_ENUMS: dict[str, tuple[str, ...]] = {
    "ChargeCategory": ("Usage", "Purchase", "Tax", "Credit", "Adjustment"),
    "ChargeClass": ("Correction",),
    "ChargeFrequency": ("One-Time", "Recurring", "Usage-Based"),
    "CommitmentDiscountCategory": ("Spend", "Usage"),
    "CommitmentDiscountStatus": ("Used", "Unused"),
    "PricingCategory": ("Standard", "Dynamic", "Committed", "Other"),
    "CapacityReservationStatus": ("Used", "Unused"),
    "ServiceCategory": (
        "AI and Machine Learning",
        "Analytics",
        "Business Applications",
        "Compute",
        "Databases",
        "Developer Tools",
        "Multicloud",
        "Identity",
        "Integration",
        "Internet of Things",
        "Management and Governance",
        "Media",
        "Migration",
        "Mobile",
        "Networking",
        "Security",
        "Storage",
        "Web",
        "Other",
    ),
}

#: the schema :func:`aiops_lab.finops.read_token_usage` returns (extra attributes follow)
TOKEN_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": UTC,
    "end_timestamp": UTC,
    "latency_s": pl.Float64(),
    "provider": _STRING,
    "request_model": _STRING,
    "response_model": _STRING,
    "model": _STRING,
    "operation": _STRING,
    "input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "cache_read_tokens": pl.Int64(),
    "status": _STRING,
    "error_type": _STRING,
    "team": _STRING,
    "feature": _STRING,
    "trace_id": _STRING,
    "span_id": _STRING,
}

NULL_TEXT = ("", "NULL", "null", "Null", "None", "NaN", "nan", "N/A")


def existing(path: PathLike, what: str) -> Path:
    """``path`` as a Path, or an :class:`InputError` that says what is wrong with it.

    ``"bundled:<file>"`` names a file of the bundled data (``aiops-lab datasets``).
    """
    from aiops_lab.datasets import resolve_path

    p = resolve_path(path)
    if not p.exists():
        msg = f"The {what} {str(p)!r} does not exist. Check the path (relative paths start at {Path.cwd()})."
        raise InputError(msg)
    if p.is_dir():
        msg = f"The {what} {str(p)!r} is a folder; pass one file."
        raise InputError(msg)
    return p


def is_parquet(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(4) == b"PAR1"


def utc_times(text: pl.Expr) -> pl.Expr:
    """Parse date / date-time text to UTC: zone-less times are UTC (as FOCUS requires)."""
    t = text.str.strip_chars().str.replace("T", " ", literal=True).str.replace(r"Z$", "+00:00")
    aware = [
        t.str.strptime(pl.Datetime("us", "UTC"), f, strict=False)
        for f in ("%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z", "%Y-%m-%d %H:%M%:z")
    ]
    naive = [
        t.str.strptime(pl.Datetime("us"), f, strict=False).dt.replace_time_zone("UTC")
        for f in (
            "%Y-%m-%d %H:%M:%S%.f",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d",
            "%Y/%m/%d %H:%M:%S",
            "%Y/%m/%d",
        )
    ]
    return pl.coalesce([*aware, *naive])


def canonical_key(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def warn(message: str) -> None:
    """Warn, pointing at the first caller outside this package."""
    here, level = Path(__file__).parent.parent, 1
    frame = sys._getframe(0)
    while frame.f_back is not None and Path(frame.f_code.co_filename).is_relative_to(here):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, AiopsLabWarning, stacklevel=level)

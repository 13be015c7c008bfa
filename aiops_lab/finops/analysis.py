"""Who and what drives the spend: allocation, savings, commitment coverage, unit costs.

Every function takes a FOCUS frame (from :func:`aiops_lab.finops.read_focus`, or LLM
spend from :func:`aiops_lab.finops.token_spend_as_focus`, or both stacked) or a path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError
from aiops_lab.finops._schema import COST_COLUMNS, FOCUS_COLUMNS

__all__ = ["DIMENSIONS", "allocate", "commitment_coverage", "savings", "unit_costs"]

#: short names accepted by ``by=`` (a FOCUS column name, or ``tag:<key>``, works too)
DIMENSIONS = {
    "provider": "ProviderName",
    "service": "ServiceName",
    "category": "ServiceCategory",
    "sku": "SkuId",
    "region": "RegionId",
    "account": "SubAccountName",
    "charge": "ChargeCategory",
    "model": "x_Model",
}


def bill_frame(costs: Any) -> pl.DataFrame:
    """A FOCUS frame from a frame or a path."""
    if isinstance(costs, pl.LazyFrame):
        return costs.collect()
    if isinstance(costs, pl.DataFrame):
        return costs
    from aiops_lab.finops.sources import read_focus

    try:
        return read_focus(costs)
    except TypeError as exc:
        raise ParameterError(
            "costs", "a FOCUS polars DataFrame or the path of a FOCUS export", type(costs).__name__
        ) from exc


def dimension(frame: pl.DataFrame, by: str) -> pl.Expr:
    """The expression for one ``by`` dimension (a column, a short name or ``tag:<key>``)."""
    if not isinstance(by, str):
        raise ParameterError("by", "a column name, a short name or 'tag:<key>'", by)
    if by.startswith("tag:"):
        if "Tags" not in frame.columns:
            raise ColumnNotFoundError("Tags", "the bill", frame.columns)
        from aiops_lab.finops.sources import tag

        return tag(by[4:]).fill_null("(untagged)").alias(by)
    column = DIMENSIONS.get(by, by)
    if column == "x_Model" and column not in frame.columns:
        column = "SkuId"
    if column not in frame.columns:
        raise ColumnNotFoundError(column, "the bill", frame.columns)
    return pl.col(column).cast(pl.String).fill_null("(none)").alias(by)


def check_cost(frame: pl.DataFrame, cost: str, currency: str | None = None) -> pl.DataFrame:
    """Check the cost column and keep one currency (refusing to add currencies up)."""
    if cost not in frame.columns:
        raise ColumnNotFoundError(cost, "the bill", frame.columns)
    if not frame.schema[cost].is_numeric():
        msg = f"Column {cost!r} is {frame.schema[cost]}, not numbers; read the bill with read_focus()."
        raise InputError(msg)
    if "BillingCurrency" in frame.columns:
        found = sorted(frame["BillingCurrency"].drop_nulls().unique().to_list())
        if currency is not None:
            frame = frame.filter(pl.col("BillingCurrency") == currency)
            if frame.height == 0:
                raise ParameterError("currency", f"one of {found}", currency)
        elif len(found) > 1:
            msg = (
                f"The bill mixes currencies {found}; costs in different currencies are never added "
                "up. Pass currency='USD' (or another) to analyse one, or convert them first."
            )
            raise InputError(msg)
    return frame


def _by_list(by: str | Sequence[str] | None) -> list[str]:
    if by is None:
        return []
    return [by] if isinstance(by, str) else list(by)


def allocate(
    costs: Any,
    by: str | Sequence[str] = "service",
    cost: str = "EffectiveCost",
    *,
    currency: str | None = None,
) -> pl.DataFrame:
    """Spend per value of one or more dimensions, largest first, with its share.

    Parameters
    ----------
    costs
        A FOCUS frame or path.
    by
        ``"provider"``, ``"service"``, ``"sku"``, ``"region"``, ``"account"``,
        ``"model"``, ``"tag:<key>"`` (e.g. ``"tag:team"``), any column, or a list of them.
    cost
        The cost column to add up (``EffectiveCost`` by default: amortized, after discounts).
    currency
        Keep only rows billed in this currency (required when the bill mixes currencies).

    Returns
    -------
    polars.DataFrame
        The ``by`` columns, ``cost`` (the sum), ``share`` (0-1) and ``rows``.

    Examples
    --------
    >>> allocate(bill, by="tag:team")  # doctest: +SKIP
    """
    frame = check_cost(bill_frame(costs), cost, currency)
    keys = _by_list(by)
    if not keys:
        raise ParameterError("by", "at least one dimension", by)
    grouped = frame.group_by([dimension(frame, k) for k in keys]).agg(
        pl.col(cost).sum().alias("cost"), pl.len().alias("rows")
    )
    total = grouped["cost"].sum()
    return (
        grouped.with_columns(
            share=pl.col("cost") / total if total else pl.lit(None, dtype=pl.Float64)
        )
        .sort("cost", descending=True, maintain_order=True)
        .select([*keys, "cost", "share", "rows"])
    )


def savings(
    costs: Any, by: str | Sequence[str] | None = None, *, currency: str | None = None
) -> pl.DataFrame:
    """List vs contracted vs effective vs billed cost, and what discounts saved.

    ``negotiated_savings = ListCost - ContractedCost`` and
    ``commitment_savings = ContractedCost - EffectiveCost``; rates are shares of list.
    Purchases of commitments (ChargeCategory "Purchase") are left out: their cost
    is already spread over the usage rows through EffectiveCost.
    """
    frame = check_cost(bill_frame(costs), "EffectiveCost", currency)
    frame = frame.filter(pl.col("ChargeCategory") != "Purchase")
    keys = _by_list(by)
    aggs = [pl.col(c).sum() for c in COST_COLUMNS]
    out = (
        frame.group_by([dimension(frame, k) for k in keys]).agg(aggs)
        if keys
        else frame.select(aggs)
    )
    out = out.with_columns(
        negotiated_savings=pl.col("ListCost") - pl.col("ContractedCost"),
        commitment_savings=pl.col("ContractedCost") - pl.col("EffectiveCost"),
        total_savings=pl.col("ListCost") - pl.col("EffectiveCost"),
    ).with_columns(
        savings_rate=pl.when(pl.col("ListCost") > 0).then(pl.col("total_savings") / pl.col("ListCost"))
    )  # fmt: skip
    return out.sort("ListCost", descending=True) if keys else out


def commitment_coverage(
    costs: Any, by: str | Sequence[str] | None = "service", *, currency: str | None = None
) -> pl.DataFrame:
    """Share of usage (at list price) covered by commitment discounts, and unused commitment.

    ``coverage = covered list cost / usage list cost`` over usage rows, where covered rows
    carry a ``CommitmentDiscountId`` with status "Used"; ``unused_cost`` is the
    EffectiveCost of rows with status "Unused". Bills without commitments give
    coverage 0 (and a null ``CommitmentDiscountId`` everywhere).
    """
    frame = check_cost(bill_frame(costs), "ListCost", currency)
    keys = _by_list(by)
    covered = pl.col("CommitmentDiscountId").is_not_null() & (
        pl.col("CommitmentDiscountStatus") != "Unused"
    )
    usage = pl.col("ChargeCategory") == "Usage"
    aggs = [
        pl.col("ListCost").filter(usage).sum().alias("usage_list_cost"),
        pl.col("ListCost").filter(usage & covered).sum().alias("covered_list_cost"),
        pl.col("EffectiveCost").filter(pl.col("CommitmentDiscountStatus") == "Unused").sum().alias("unused_cost"),
    ]  # fmt: skip
    out = (
        frame.group_by([dimension(frame, k) for k in keys]).agg(aggs)
        if keys
        else frame.select(aggs)
    )
    out = out.with_columns(
        coverage=pl.when(pl.col("usage_list_cost") > 0).then(
            pl.col("covered_list_cost") / pl.col("usage_list_cost")
        )
    )
    return out.sort("usage_list_cost", descending=True) if keys else out


_UNITS = {  # ConsumedUnit (lower case) -> the unit cost reported
    "hours": ("instance_hours", 1.0), "hour": ("instance_hours", 1.0), "hrs": ("instance_hours", 1.0),
    "tokens": ("tokens_1k", 1e-3), "requests": ("requests", 1.0), "gb-month": ("gb_months", 1.0),
    "gb": ("gb", 1.0),
}  # fmt: skip


def unit_costs(costs: Any, by: str | Sequence[str] = "sku", cost: str = "EffectiveCost", *,
               currency: str | None = None) -> pl.DataFrame:  # fmt: skip
    """Cost per unit of use: per 1k tokens, per request, per instance- and GPU-hour, per GB.

    Units come from ``ConsumedUnit`` / ``ConsumedQuantity``; GPU-hours use an
    ``x_GpusPerInstance`` column where the bill has one, and LLM rows (from
    :func:`token_spend_as_focus`) give requests through ``x_Requests``.

    Returns
    -------
    polars.DataFrame
        ``by``, ``unit``, ``quantity``, ``cost``, ``cost_per_unit`` and, where known,
        ``gpu_hours``, ``cost_per_gpu_hour``, ``requests``, ``cost_per_request``.
    """
    frame = check_cost(bill_frame(costs), cost, currency)
    frame = frame.filter(pl.col("ChargeCategory") == "Usage")
    keys = _by_list(by)
    unit = pl.col("ConsumedUnit").str.to_lowercase()
    names = {k: v[0] for k, v in _UNITS.items()}
    scale = {k: v[1] for k, v in _UNITS.items()}
    frame = frame.with_columns(
        _unit=unit.replace_strict(names, default=pl.col("ConsumedUnit")),
        _qty=pl.col("ConsumedQuantity") * unit.replace_strict(scale, default=1.0, return_dtype=pl.Float64),
        _gpus=(pl.col("ConsumedQuantity") * pl.col("x_GpusPerInstance").cast(pl.Float64, strict=False))
        if "x_GpusPerInstance" in frame.columns else pl.lit(None, dtype=pl.Float64),
        _req=pl.col("x_Requests").cast(pl.Float64, strict=False) if "x_Requests" in frame.columns
        else pl.lit(None, dtype=pl.Float64),
    )  # fmt: skip
    out = frame.group_by([*[dimension(frame, k) for k in keys], pl.col("_unit").alias("unit")]).agg(
        quantity=pl.col("_qty").sum(), cost=pl.col(cost).sum(),
        gpu_hours=pl.col("_gpus").sum(), requests=pl.col("_req").sum(),
    )  # fmt: skip
    return out.with_columns(
        cost_per_unit=pl.when(pl.col("quantity") > 0).then(pl.col("cost") / pl.col("quantity")),
        cost_per_gpu_hour=pl.when(pl.col("gpu_hours") > 0).then(
            pl.col("cost") / pl.col("gpu_hours")
        ),
        cost_per_request=pl.when(pl.col("requests") > 0).then(pl.col("cost") / pl.col("requests")),
    ).sort("cost", descending=True)


_ = FOCUS_COLUMNS

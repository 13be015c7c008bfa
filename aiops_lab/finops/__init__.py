"""FinOps for AI: FOCUS bills and LLM token spend, allocation, forecasts and budget risk.

>>> from aiops_lab import finops
>>> bill = finops.read_focus("focus_export.csv")
>>> finops.allocate(bill, by="tag:team")
>>> fc = finops.forecast(bill, by="service", budget=40_000)

The kernels (``aiops_lab.finops.kernels``) import without polars, so they run on
machines that have only NumPy / CuPy; the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiops_lab.finops.analysis import allocate, commitment_coverage, savings, unit_costs
    from aiops_lab.finops.forecast import daily_series, forecast
    from aiops_lab.finops.llm import LlmUsageReview, llm_usage
    from aiops_lab.finops.result import CostForecast
    from aiops_lab.finops.sources import (
        FOCUS_COLUMNS,
        FOCUS_MANDATORY,
        TOKEN_SCHEMA,
        price_tokens,
        read_focus,
        read_token_usage,
        tag,
        token_spend_as_focus,
        unpriced,
    )
    from aiops_lab.finops.widgets import CostExplorer

__all__ = [
    "FOCUS_COLUMNS",
    "FOCUS_MANDATORY",
    "TOKEN_SCHEMA",
    "CostExplorer",
    "CostForecast",
    "LlmUsageReview",
    "allocate",
    "commitment_coverage",
    "daily_series",
    "forecast",
    "llm_usage",
    "price_tokens",
    "read_focus",
    "read_token_usage",
    "savings",
    "tag",
    "token_spend_as_focus",
    "unit_costs",
    "unpriced",
]

_WHERE = {
    "allocate": "aiops_lab.finops.analysis",
    "commitment_coverage": "aiops_lab.finops.analysis",
    "savings": "aiops_lab.finops.analysis",
    "unit_costs": "aiops_lab.finops.analysis",
    "daily_series": "aiops_lab.finops.forecast",
    "forecast": "aiops_lab.finops.forecast",
    "CostForecast": "aiops_lab.finops.result",
    "CostExplorer": "aiops_lab.finops.widgets",
    "LlmUsageReview": "aiops_lab.finops.llm",
    "llm_usage": "aiops_lab.finops.llm",
    "FOCUS_COLUMNS": "aiops_lab.finops.sources",
    "FOCUS_MANDATORY": "aiops_lab.finops.sources",
    "TOKEN_SCHEMA": "aiops_lab.finops.sources",
    "price_tokens": "aiops_lab.finops.sources",
    "read_focus": "aiops_lab.finops.sources",
    "read_token_usage": "aiops_lab.finops.sources",
    "tag": "aiops_lab.finops.sources",
    "token_spend_as_focus": "aiops_lab.finops.sources",
    "unpriced": "aiops_lab.finops.sources",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'aiops_lab.finops' has no attribute {name!r}"
    raise AttributeError(msg)

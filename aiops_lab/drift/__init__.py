"""Drift investigation: has production data moved away from the reference?

>>> from aiops_lab import drift
>>> result = drift.compare("reference.parquet", "production.parquet", time_column="ts", window="1d")

The kernels (``aiops_lab.drift.kernels``) import without polars or altair, so they
run on machines that have only NumPy / CuPy; the rest loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiops_lab.drift.analysis import compare
    from aiops_lab.drift.result import DriftResult
    from aiops_lab.drift.widgets import DriftExplorer

__all__ = ["DriftExplorer", "DriftResult", "compare"]

_WHERE = {
    "compare": "aiops_lab.drift.analysis",
    "DriftResult": "aiops_lab.drift.result",
    "DriftExplorer": "aiops_lab.drift.widgets",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'aiops_lab.drift' has no attribute {name!r}"
    raise AttributeError(msg)

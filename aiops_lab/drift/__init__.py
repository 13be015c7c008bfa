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
    from aiops_lab.drift.classifier import ClassifierDriftResult, classifier_drift
    from aiops_lab.drift.estimation import PerformanceEstimate, estimate_performance
    from aiops_lab.drift.multivariate import EmbeddingDriftResult, MMDResult, embedding_drift, mmd
    from aiops_lab.drift.reconstruction import ReconstructionDriftResult, reconstruction_drift
    from aiops_lab.drift.result import DriftResult
    from aiops_lab.drift.widgets import DriftExplorer

__all__ = [
    "ClassifierDriftResult",
    "DriftExplorer",
    "DriftResult",
    "EmbeddingDriftResult",
    "MMDResult",
    "PerformanceEstimate",
    "ReconstructionDriftResult",
    "classifier_drift",
    "compare",
    "embedding_drift",
    "estimate_performance",
    "mmd",
    "reconstruction_drift",
]

_WHERE = {
    "compare": "aiops_lab.drift.analysis",
    "DriftResult": "aiops_lab.drift.result",
    "DriftExplorer": "aiops_lab.drift.widgets",
    "EmbeddingDriftResult": "aiops_lab.drift.multivariate",
    "MMDResult": "aiops_lab.drift.multivariate",
    "embedding_drift": "aiops_lab.drift.multivariate",
    "PerformanceEstimate": "aiops_lab.drift.estimation",
    "ClassifierDriftResult": "aiops_lab.drift.classifier",
    "classifier_drift": "aiops_lab.drift.classifier",
    "ReconstructionDriftResult": "aiops_lab.drift.reconstruction",
    "reconstruction_drift": "aiops_lab.drift.reconstruction",
    "estimate_performance": "aiops_lab.drift.estimation",
    "mmd": "aiops_lab.drift.multivariate",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'aiops_lab.drift' has no attribute {name!r}"
    raise AttributeError(msg)

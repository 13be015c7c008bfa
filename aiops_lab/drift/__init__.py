"""Drift investigation: has production data moved away from the reference?

>>> from aiops_lab import drift
>>> result = drift.compare("reference.parquet", "production.parquet", time_column="ts", window="1d")
"""

from aiops_lab.drift.analysis import compare
from aiops_lab.drift.result import DriftResult

__all__ = ["DriftResult", "compare"]

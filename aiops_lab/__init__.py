"""aiops_lab: drift investigation, GPU utilization review and FinOps forecasting,
on NumPy or CuPy, for JupyterLab, headless reports and plain Python.

>>> import aiops_lab
>>> ref = aiops_lab.datasets.load("credit_reference")
>>> cur = aiops_lab.datasets.load("credit_production")
>>> result = aiops_lab.drift.compare(ref, cur, time_column="timestamp", window="1d")
"""

from __future__ import annotations

import importlib
from typing import Any

from aiops_lab._version import __version__
from aiops_lab.backend import BackendInfo, backend_info
from aiops_lab.config import config_context, get_config, set_config
from aiops_lab.errors import AiopsLabError

__all__ = [
    "AiopsLabError",
    "BackendInfo",
    "__version__",
    "backend_info",
    "config_context",
    "datasets",
    "drift",
    "errors",
    "finops",
    "get_config",
    "gpu",
    "reporting",
    "set_config",
    "tracking",
]

_LAZY = {"datasets", "drift", "errors", "finops", "gpu", "reporting", "tracking"}


def __getattr__(name: str) -> Any:
    # heavy parts (polars, altair, mlflow) load on first use
    if name in _LAZY:
        module = importlib.import_module(f"aiops_lab.{name}")
        globals()[name] = module
        return module
    msg = f"module 'aiops_lab' has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted(__all__)

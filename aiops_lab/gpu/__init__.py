"""GPU utilization review: how well are the GPUs used, by which jobs, and where is the waste?

>>> from aiops_lab import gpu
>>> telemetry = gpu.read_telemetry("gpu-node-01.csv")  # nvidia-smi, dcgm-exporter or Parquet
>>> jobs = gpu.read_sacct("sacct.txt")

The readers return polars frames in one documented schema (``TELEMETRY_SCHEMA``,
``JOBS_SCHEMA``; see ``aiops_lab.gpu.sources``); everything loads on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiops_lab.gpu.analysis import load_prices, review
    from aiops_lab.gpu.attribution import attribute_jobs
    from aiops_lab.gpu.billing import prices_from_focus
    from aiops_lab.gpu.live import GpuStatus, Sampler, gpu_status, sample
    from aiops_lab.gpu.result import GpuReview
    from aiops_lab.gpu.sources import (
        JOBS_SCHEMA,
        TELEMETRY_SCHEMA,
        read_dcgm,
        read_nvidia_smi,
        read_sacct,
        read_telemetry,
    )
    from aiops_lab.gpu.widgets import GpuMonitor

__all__ = [
    "JOBS_SCHEMA",
    "TELEMETRY_SCHEMA",
    "GpuMonitor",
    "GpuReview",
    "GpuStatus",
    "Sampler",
    "attribute_jobs",
    "gpu_status",
    "load_prices",
    "prices_from_focus",
    "read_dcgm",
    "read_nvidia_smi",
    "read_sacct",
    "read_telemetry",
    "review",
    "sample",
    "story",
]

_WHERE = {
    "review": "aiops_lab.gpu.analysis",
    "attribute_jobs": "aiops_lab.gpu.attribution",
    "load_prices": "aiops_lab.gpu.analysis",
    "prices_from_focus": "aiops_lab.gpu.billing",
    "GpuReview": "aiops_lab.gpu.result",
    "gpu_status": "aiops_lab.gpu.live",
    "sample": "aiops_lab.gpu.live",
    "GpuStatus": "aiops_lab.gpu.live",
    "Sampler": "aiops_lab.gpu.live",
    "GpuMonitor": "aiops_lab.gpu.widgets",
    "read_nvidia_smi": "aiops_lab.gpu.sources",
    "read_dcgm": "aiops_lab.gpu.sources",
    "read_sacct": "aiops_lab.gpu.sources",
    "read_telemetry": "aiops_lab.gpu.sources",
    "TELEMETRY_SCHEMA": "aiops_lab.gpu.sources",
    "JOBS_SCHEMA": "aiops_lab.gpu.sources",
}


def __getattr__(name: str) -> Any:
    if name == "story":
        module = importlib.import_module("aiops_lab.gpu.story")
        globals()[name] = module
        return module
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    msg = f"module 'aiops_lab.gpu' has no attribute {name!r}"
    raise AttributeError(msg)

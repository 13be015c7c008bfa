"""Shared fixtures: the array namespaces every kernel test runs on."""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest


def _namespaces() -> list:
    out = [
        pytest.param("numpy", id="numpy"),
        pytest.param("array_api_strict", id="array_api_strict"),
    ]
    if importlib.util.find_spec("cupy") is not None:
        out.append(pytest.param("cupy", id="cupy"))
    return out


@pytest.fixture(params=_namespaces())
def xp(request):
    """An array namespace: NumPy (through array_api_compat), array_api_strict, CuPy if a GPU works."""
    name = request.param
    if name == "numpy":
        import array_api_compat.numpy as mod
    elif name == "array_api_strict":
        mod = pytest.importorskip("array_api_strict")
    else:
        from aiops_lab.backend import backend_info

        try:
            backend_info("cupy")
        except Exception as exc:
            pytest.skip(f"cupy not usable: {exc}")
        import array_api_compat.cupy as mod
    return mod


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="module")
def client():
    """A Dask client of a real two-process LocalCluster on the loopback, per test module."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None, memory_limit="1GiB",
    )  # fmt: skip
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Record what the CLI asks reporting to run, without running a notebook."""
    from pathlib import Path

    from aiops_lab import reporting

    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_run_report(kind: str, *, parameters: Any = None, **kwargs: Any) -> Any:
        calls.append((kind, dict(parameters or {})))
        return reporting.ReportOutcome(
            kind=kind,
            html_path=Path("r.html"),
            notebook_path=Path("r.ipynb"),
            result_path=Path("r.json"),
            summary={"alert": False, "headline": "ok"},
            alert=False,
        )

    monkeypatch.setattr(reporting, "run_report", fake_run_report)
    return calls

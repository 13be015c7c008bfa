"""Backend choice and configuration."""

from __future__ import annotations

import importlib.util

import pytest

import aiops_lab
from aiops_lab import errors
from aiops_lab.backend import _probe_cupy


def test_numpy_is_always_available():
    info = aiops_lab.backend_info("numpy")
    assert info.name == "numpy"
    assert info.reason == "requested explicitly"


def test_auto_falls_back_with_a_reason():
    usable, reason, _ = _probe_cupy()
    info = aiops_lab.backend_info("auto")
    if usable:
        assert info.name == "cupy"
    else:
        assert info.name == "numpy"
        assert info.reason == reason
        expected = "cupy not installed" if importlib.util.find_spec("cupy") is None else ""
        assert expected in info.reason
        with pytest.raises(errors.BackendUnavailableError, match="aiops_lab\\[gpu\\]"):
            aiops_lab.backend_info("cupy")


def test_config_context_restores_the_setting():
    assert aiops_lab.get_config()["backend"] == "auto"
    with aiops_lab.config_context(backend="numpy"):
        assert aiops_lab.get_config()["backend"] == "numpy"
        assert aiops_lab.backend_info().requested == "numpy"
    assert aiops_lab.get_config()["backend"] == "auto"


def test_set_config_and_bad_values():
    try:
        aiops_lab.set_config(backend="numpy")
        assert aiops_lab.backend_info().name == "numpy"
    finally:
        aiops_lab.set_config(backend="auto")
    with pytest.raises(errors.ParameterError, match="'backend'"):
        aiops_lab.set_config(backend="gpu")  # type: ignore[arg-type]


def test_public_api_is_small_and_lazy():
    import subprocess
    import sys

    code = "import sys, aiops_lab; print('polars' in sys.modules, 'altair' in sys.modules, 'mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False False"
    assert "drift" in dir(aiops_lab)

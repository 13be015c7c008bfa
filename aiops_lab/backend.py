"""The only module that knows NumPy from CuPy.

The numeric kernels are written once against the array API standard and receive an
array namespace ``xp``. This module chooses that namespace (from the configuration or
from the arrays given), and moves data between the host and the device.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiops_lab.config import get_config
from aiops_lab.errors import BackendUnavailableError, ParameterError

__all__ = [
    "BackendInfo",
    "backend_info",
    "from_numpy",
    "get_namespace",
    "namespace_of",
    "to_numpy",
]


@dataclass(frozen=True)
class BackendInfo:
    """Which array backend is active and why.

    Attributes
    ----------
    name : str
        "numpy" or "cupy".
    requested : str
        What was asked for: "auto", "numpy" or "cupy".
    reason : str
        Why this backend was chosen, in words (e.g. "cupy not installed").
    device : str or None
        The GPU in use, when the backend is CuPy.
    """

    name: str
    requested: str
    reason: str
    device: str | None = None

    def __str__(self) -> str:
        where = f" on {self.device}" if self.device else ""
        return f"{self.name}{where} (requested {self.requested!r}: {self.reason})"

    def _repr_html_(self) -> str:
        return f"<code>aiops_lab</code> backend: <b>{self.name}</b>{' on ' + self.device if self.device else ''} <small>({self.reason})</small>"


@functools.lru_cache(maxsize=1)
def _probe_cupy() -> tuple[bool, str, str | None]:
    """Return (usable, reason, device name). Cached: the probe runs once per process."""
    if importlib.util.find_spec("cupy") is None:
        return False, "cupy not installed", None
    try:
        import cupy
    except Exception as exc:  # a broken CUDA install must not break NumPy users
        return False, f"cupy failed to import ({type(exc).__name__}: {exc})", None
    try:
        if not cupy.cuda.is_available():
            return False, "no CUDA device", None
        # is_available() can be True while kernels still fail (driver/NVRTC mismatch).
        if float(cupy.asarray([1.0, 2.0]).sum().get()) != 3.0:
            return False, "CUDA smoke test gave a wrong answer", None
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return False, f"CUDA smoke test failed ({type(exc).__name__}: {exc})", None
    return True, "CUDA device works", name


def backend_info(backend: str | None = None) -> BackendInfo:
    """Say which backend ``backend`` (default: the configured one) resolves to, and why.

    Examples
    --------
    >>> import aiops_lab
    >>> aiops_lab.backend_info(backend="numpy").name
    'numpy'
    """
    requested = backend if backend is not None else get_config()["backend"]
    if requested == "numpy":
        return BackendInfo("numpy", requested, "requested explicitly")
    if requested not in ("auto", "cupy"):
        raise ParameterError("backend", "'auto', 'numpy' or 'cupy'", requested)
    ok, reason, device = _probe_cupy()
    if ok:
        return BackendInfo("cupy", requested, reason, device)
    if requested == "cupy":
        raise BackendUnavailableError(
            f"backend='cupy' was requested but CuPy cannot run here: {reason}. "
            'Use backend="auto" (falls back to NumPy) or backend="numpy"; on a machine with an '
            'NVIDIA GPU install the GPU extra: pip install "aiops_lab[gpu]".'
        )
    return BackendInfo("numpy", requested, reason)


def get_namespace(backend: str | None = None) -> tuple[Any, BackendInfo]:
    """Return the array namespace for ``backend`` and the :class:`BackendInfo` behind it."""
    info = backend_info(backend)
    module = "array_api_compat.cupy" if info.name == "cupy" else "array_api_compat.numpy"
    return importlib.import_module(module), info


def namespace_of(*arrays: Any) -> Any:
    """Return the array namespace of the given arrays (NumPy, CuPy, array_api_strict...)."""
    import array_api_compat

    return array_api_compat.array_namespace(*arrays)


def from_numpy(array: np.ndarray, xp: Any) -> Any:
    """Move a host NumPy array into namespace ``xp`` (copies to the device for CuPy)."""
    import array_api_compat

    if array_api_compat.is_numpy_namespace(xp):
        return array
    return xp.asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    """Bring any array (NumPy, CuPy, array_api_strict) back to host NumPy."""
    import array_api_compat

    if isinstance(array, np.ndarray):
        return array
    if array_api_compat.is_cupy_array(array):
        return array.get()  # type: ignore[no-any-return,unused-ignore]
    try:
        return np.from_dlpack(array)
    except Exception:
        return np.asarray(array)

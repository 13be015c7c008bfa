"""Process-wide settings: which array backend to use.

>>> import aiops_lab
>>> aiops_lab.set_config(backend="numpy")
>>> with aiops_lab.config_context(backend="auto"):
...     pass
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Literal

from aiops_lab.errors import ParameterError

__all__ = ["BACKENDS", "config_context", "get_config", "set_config"]

Backend = Literal["auto", "numpy", "cupy"]
BACKENDS: tuple[str, ...] = ("auto", "numpy", "cupy")

_DEFAULTS: dict[str, Any] = {"backend": "auto"}
_local = threading.local()


def _current() -> dict[str, Any]:
    if not hasattr(_local, "config"):
        _local.config = dict(_global)
    return _local.config  # type: ignore[no-any-return,unused-ignore]


_global: dict[str, Any] = dict(_DEFAULTS)


def _check(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ParameterError("backend", "one of " + ", ".join(repr(b) for b in BACKENDS), backend)


def get_config() -> dict[str, Any]:
    """Return a copy of the settings in force in this thread."""
    return dict(_current())


def set_config(*, backend: Backend | None = None) -> None:
    """Change settings for the whole process.

    Parameters
    ----------
    backend : {"auto", "numpy", "cupy"}, optional
        "auto" uses CuPy only when a CUDA device really works, else NumPy.
        "cupy" insists on the GPU and raises if none is usable.
    """
    _check(backend)
    if backend is not None:
        _global["backend"] = backend
        _current()["backend"] = backend


@contextlib.contextmanager
def config_context(*, backend: Backend | None = None) -> Iterator[None]:
    """Change settings inside a ``with`` block only (this thread)."""
    _check(backend)
    cfg = _current()
    saved = dict(cfg)
    if backend is not None:
        cfg["backend"] = backend
    try:
        yield
    finally:
        cfg.clear()
        cfg.update(saved)

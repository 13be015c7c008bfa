"""Running a report notebook: papermill in a fresh kernel, with its own environment.

The kernel gets the report's environment variables through a kernel-manager subclass,
never through this process's ``os.environ``; without a ``python3`` kernelspec it runs
this interpreter's ipykernel. Cell and start-up timeouts are whole seconds (papermill
reads 0 as "none"). A failed run keeps its executed notebook as
``<kind>.failed.ipynb`` and raises :class:`~aiops_lab.errors.ReportError` naming the
failing cell.

Notes
-----
Private helpers of :mod:`aiops_lab.reporting`; this module does not import it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from aiops_lab.display import REPORT_ENV
from aiops_lab.errors import AiopsLabError, ReportError

__all__ = ["kernel_setup", "quiet_papermill", "read_result", "run_notebook"]


def kernel_setup(kernel_name: str | None, extra_env: dict[str, str]) -> tuple[str, type]:
    """Return the kernel name and a kernel manager class that adds ``extra_env``.

    The environment goes to the kernel only, never into this process's ``os.environ``.
    """
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    spec = None
    name = kernel_name or "python3"
    if kernel_name is None and "python3" not in KernelSpecManager().find_kernel_specs():
        from ipykernel.kernelspec import get_kernel_dict

        spec = KernelSpec(resource_dir="", **get_kernel_dict())

    class ReportKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> Any:
            return spec if spec is not None else super().kernel_spec

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            env = dict(kw.pop("env", None) or os.environ)
            env.update(extra_env)
            argv = getattr(self.kernel_spec, "argv", None) or []
            if any("ipykernel" in str(arg) for arg in argv):
                # ipykernel 7 warns on stderr about unencrypted local TCP on every start
                extra = list(kw.pop("extra_arguments", None) or [])
                kw["extra_arguments"] = [*extra, "--IPKernelApp.log_level=ERROR"]
            return await super()._async_pre_start_kernel(env=env, **kw)

    return name, ReportKernelManager


@contextlib.contextmanager
def quiet_papermill() -> Iterator[None]:
    """Show only papermill's errors while the block runs.

    Parameters are checked before the run; papermill's own check misparses commented
    lines and would warn about them.
    """
    logger = logging.getLogger("papermill")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_notebook(
    kind: str,
    nb_file: Path,
    run_dir: Path,
    params: dict[str, Any],
    *,
    kernel_name: str | None,
    timeout: float,
    start_timeout: float,
    progress: bool,
    result_env: str,
    render: Callable[[Any, str], str],
) -> tuple[Path, str, dict[str, Any]]:
    """Run the notebook; return (executed notebook's temporary path, HTML, result dict).

    Parameters
    ----------
    kind : str
        The report kind; names the files in ``run_dir``.
    nb_file : pathlib.Path
        The notebook to run.
    run_dir : pathlib.Path
        The run folder, also the kernel's working directory.
    params : dict
        Values injected into the notebook's ``parameters`` cell (already checked).
    kernel_name : str or None
        Jupyter kernel; None means ``python3``, else this interpreter.
    timeout, start_timeout : float
        Seconds one cell may run, and seconds to wait for the kernel to start.
    progress : bool
        Show papermill's progress bar on stderr.
    result_env : str
        Name of the environment variable telling the kernel where to write its result.
    render : callable
        ``render(notebook, title) -> html``, run on the executed notebook.

    Returns
    -------
    tuple of (pathlib.Path, str, dict)

    Raises
    ------
    ReportError
        The notebook failed, timed out, emitted no usable result, or could not be
        rendered; the executed notebook is kept as ``<kind>.failed.ipynb`` if any.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    partial = run_dir / f".{kind}.partial.ipynb"
    result_tmp = run_dir / ".result.partial.json"
    failed = run_dir / f"{kind}.failed.ipynb"
    env = {REPORT_ENV: "1", result_env: str(result_tmp)}
    name, manager = kernel_setup(kernel_name, env)

    def keep_failed() -> Path | None:
        if partial.exists():
            os.replace(partial, failed)
            return failed
        return None

    try:
        with quiet_papermill():
            nb = papermill.execute_notebook(
                str(nb_file),
                str(partial),
                parameters=params,
                kernel_name=name,
                language="python",
                progress_bar=progress,
                # papermill treats a timeout of 0 as "none": round up to whole seconds
                start_timeout=max(1, math.ceil(start_timeout)),
                execution_timeout=max(1, math.ceil(timeout)),
                kernel_manager_class=manager,
                resources={"metadata": {"path": str(run_dir)}},
            )
            result = read_result(result_tmp, kind)
            html_text = render(nb, f"aiops_lab {kind} report ({run_dir.name})")
    except PapermillExecutionError as exc:
        kept = keep_failed()
        msg = (
            f"The {kind} report failed in cell In [{exc.exec_count}] (cell #{exc.cell_index}): "
            f"{exc.ename}: {exc.evalue}. The executed notebook, with the error marked, is kept "
            f"at {kept}; no HTML was written."
        )
        raise ReportError(msg, executed_notebook=kept) from exc
    except AiopsLabError as exc:
        kept = keep_failed()
        msg = f"{exc} The executed notebook is kept at {kept}; no HTML was written."
        raise ReportError(msg, executed_notebook=kept) from exc
    except BaseException as exc:
        kept = keep_failed()
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        msg = f"The {kind} report could not run ({type(exc).__name__}: {exc})."
        if isinstance(exc, TimeoutError):
            msg += f" A cell ran longer than {timeout:g} s; raise the limit (--timeout)."
        if type(exc).__name__ == "NoSuchKernel":
            msg += " List the kernels with `jupyter kernelspec list` and pass one (--kernel)."
        msg += f" Partial notebook: {kept}." if kept else " No notebook was written."
        raise ReportError(msg, executed_notebook=kept) from exc
    finally:
        with contextlib.suppress(OSError):
            result_tmp.unlink()
    return partial, html_text, result


def read_result(path: Path, kind: str) -> dict[str, Any]:
    """Read the result a notebook handed over; it must have ``summary['alert']``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = (
            f"The {kind} notebook ran but never handed over its result: its last cell must "
            "call aiops_lab.reporting.emit(result)."
        )
        raise ReportError(msg) from None
    except ValueError as exc:
        msg = f"The {kind} notebook emitted a result that is not valid JSON ({exc})."
        raise ReportError(msg) from None
    summary = data.get("summary") if isinstance(data, dict) else None
    if not isinstance(summary, dict) or "alert" not in summary:
        msg = (
            f"The {kind} notebook emitted a result without summary['alert']; emit a "
            "Result (or its to_dict()) whose summary has 'alert' and 'headline'."
        )
        raise ReportError(msg)
    return data

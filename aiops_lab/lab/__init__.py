"""JupyterLab integration: server routes under ``<base_url>/aiops-lab/`` and the front end.

The server part is a Jupyter server extension. Installed from a wheel it is switched on by
``etc/jupyter/jupyter_server_config.d/aiops_lab.json``; by hand::

    jupyter lab --ServerApp.jpserver_extensions="{'aiops_lab.lab': True}"

Every route needs the server's token (or a logged-in session) and answers 403 without it:

``GET  aiops-lab/status``
    ``version``, ``backend`` (``name``, ``reason``...), ``gpus`` (empty without a GPU),
    ``gpu_reason``, ``tracking_uri`` and the report ``templates`` that are installed.
``GET  aiops-lab/gpu/samples?seconds=N``
    Live NVML samples of the last ``N`` seconds (1 to 900, default 300) from a background
    sampler that starts on the first request and stops after 5 idle minutes. Without a GPU:
    ``available`` false, ``reason`` and no samples.
``POST aiops-lab/templates/<kind>`` with ``{"path": "<folder>"}``
    Copies the report notebook of ``<kind>`` into that folder (relative to the server
    root) without overwriting anything (``name-1.ipynb``, ``name-2.ipynb``...); 201 with
    the new notebook's ``path``.
``POST aiops-lab/reports/<kind>`` with ``{"path": "<notebook>"}``
    Starts the report pipeline (:func:`aiops_lab.reporting.run_report`) on that notebook
    in a worker thread and answers 202 with a ``job`` id at once; optional ``parameters``
    (a mapping) and ``track`` (default true). Reports go to ``reports/`` under the
    server root.
``GET  aiops-lab/reports/jobs/<job>``
    The job's ``state`` (``running``, ``done`` or ``error``); when done, ``html`` (its
    path under the server root), ``headline``, ``alert`` and the tracking run.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LABEXTENSION_NAME"]

#: the front end's npm package name, and its folder under share/jupyter/labextensions
LABEXTENSION_NAME = "aiops-lab-jupyterlab"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": LABEXTENSION_NAME}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "aiops_lab.lab"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from aiops_lab.lab.handlers import setup_handlers

    setup_handlers(serverapp)


# the name jupyter_server 1.x looked for
load_jupyter_server_extension = _load_jupyter_server_extension

"""How charts are shown: interactive in JupyterLab, static SVG in reports, all offline.

Altair 6 emits Vega-Lite 6, which JupyterLab's built-in renderer does not draw, and
Altair's default renderer loads Vega from the network. ``"jupyter"`` with
``offline=True`` (an anywidget) works interactively; SVG rendered by vl-convert works
everywhere, including the code-free HTML reports.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["chart_to_svg", "enable_charts", "in_report"]

REPORT_ENV = "AIOPS_LAB_REPORT"


def in_report() -> bool:
    """True inside a headless report run (``aiops-lab report``)."""
    return os.environ.get(REPORT_ENV, "") not in ("", "0")


def enable_charts(mode: str = "auto") -> str:
    """Choose Altair's renderer for this kernel and return the one chosen.

    Parameters
    ----------
    mode : {"auto", "interactive", "svg", "png"}
        "auto" picks static SVG in reports and interactive offline charts otherwise
        (falling back to SVG when anywidget is missing).
    """
    import altair as alt

    if mode == "auto":
        mode = "svg" if in_report() else "interactive"
    if mode == "interactive":
        try:
            alt.renderers.enable("jupyter", offline=True)
            return "jupyter"
        except Exception:
            mode = "svg"
    alt.renderers.enable(mode)
    return mode


def chart_to_svg(chart: Any) -> str:
    """Render an Altair chart to an SVG string offline (vl-convert)."""
    import vl_convert as vlc

    spec = chart.to_dict()
    return str(vlc.vegalite_to_svg(spec))

"""The base of every analysis result.

A result is computed once and then only shown: ``.table`` (polars), ``.summary``
(a plain dict), ``.chart()`` (Altair), ``.to_dict()`` (JSON-ready), and a rich
display in Jupyter that needs no running kernel and no network: text/plain,
text/html (with the headline chart inlined as SVG) and the Vega-Lite spec.
"""

from __future__ import annotations

import html
import json
import math
import traceback
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import altair as alt
    import polars as pl

__all__ = ["Result", "jsonable"]

_MAX_HTML_ROWS = 25


def jsonable(value: Any) -> Any:
    """Convert numbers, dates and containers into plain JSON-ready values (NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, (list, dict)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int):
        return value
    return str(value)


class Result:
    """Base class: subclasses set ``analysis`` and implement the properties below."""

    analysis: str = "result"
    #: chart kind shown by default in rich displays and reports
    default_chart: str = "overview"
    #: what subclasses computed once: the parameters and the summary
    _params: dict[str, Any] | None = None
    _summary: dict[str, Any] | None = None

    @property
    def table(self) -> pl.DataFrame:
        """The main result table (one row per analysed item)."""
        raise NotImplementedError

    @property
    def summary(self) -> dict[str, Any]:
        """Headline numbers as a plain dict; always has ``alert`` (bool) and ``headline`` (str).

        Subclasses that compute it once store it in ``self._summary``.
        """
        if self._summary is None:
            raise NotImplementedError
        return dict(self._summary)

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Return an Altair chart of this result."""
        raise NotImplementedError

    @property
    def alert(self) -> bool:
        """True when the result calls for attention (what a scheduled report alerts on)."""
        return bool(self.summary.get("alert", False))

    @property
    def headline(self) -> str:
        """One line that says what the result found."""
        return str(self.summary.get("headline", ""))

    @property
    def params(self) -> dict[str, Any]:
        """The parameters the analysis ran with (JSON-ready), from ``self._params``."""
        return dict(self._params or {})

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics for experiment tracking: the numeric summary values.

        Subclasses add per-item metrics (e.g. one per column). Keys use only letters,
        digits, ``_ - . /`` so every tracking store accepts them.
        """
        out: dict[str, float] = {}
        for key, value in self.summary.items():
            if isinstance(value, bool) or (
                isinstance(value, (int, float)) and math.isfinite(value)
            ):
                out[key] = float(value)
        return out

    def tables(self) -> dict[str, pl.DataFrame]:
        """Every table of the result, by name (the main one is ``"table"``)."""
        return {"table": self.table}

    def to_dict(self) -> dict[str, Any]:
        """Everything in the result as JSON-ready Python values."""
        out: dict[str, Any] = {
            "analysis": self.analysis,
            "summary": jsonable(self.summary),
            "params": jsonable(self.params),
            "metrics": jsonable(self.metrics()),
        }
        for name, frame in self.tables().items():
            out[name] = None if frame is None else jsonable(frame.to_dicts())
        return out

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` serialised as JSON."""
        return json.dumps(self.to_dict(), **kwargs)

    # -- display ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}: {self.headline}"]
        for key, value in self.summary.items():
            if key in ("headline",):
                continue
            lines.append(f"  {key}: {value}")
        return "\n".join(lines)

    def _summary_html(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
            f"<td style='text-align:left'>{html.escape(_fmt(v))}</td></tr>"
            for k, v in self.summary.items()
            if k != "headline"
        )
        color = "#b42318" if self.alert else "#067647"
        return (
            f"<div class='aiops-lab-result'><h4 style='color:{color}'>"
            f"{html.escape(type(self).__name__)}: {html.escape(self.headline)}</h4>"
            f"<details><summary>summary</summary><table>{rows}</table></details>"
        )

    def _table_html(self) -> str:
        frame = self.table
        shown = frame.head(_MAX_HTML_ROWS)
        note = ""
        if frame.height > _MAX_HTML_ROWS:
            note = f"<p><small>first {_MAX_HTML_ROWS} of {frame.height} rows; see <code>.table</code></small></p>"
        return shown._repr_html_() + note

    def _repr_html_(self) -> str:
        parts = [self._summary_html()]
        try:
            from aiops_lab.display import chart_to_svg

            parts.append(chart_to_svg(self.chart(self.default_chart)))
        except Exception:
            parts.append(
                "<pre style='color:#b42318'>chart could not be rendered:\n"
                + html.escape(traceback.format_exc(limit=3))
                + "</pre>"
            )
        parts.append(self._table_html())
        parts.append("</div>")
        return "".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        try:
            bundle["text/html"] = self._repr_html_()
        except Exception:
            bundle["text/html"] = "<pre>" + html.escape(traceback.format_exc()) + "</pre>"
        return bundle


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)

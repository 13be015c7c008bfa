"""``CostExplorer``: pick a series and a budget, see the forecast fan and the breach risk.

Moving the budget redraws only the sample paths of the rest of the period
(:meth:`CostForecast.with_budget`); no model is refitted.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl

if TYPE_CHECKING:
    from aiops_lab.finops.result import CostForecast

__all__ = ["CostExplorer"]


class CostExplorer(widgets.VBox):
    """An interactive view of a :class:`CostForecast` (for exploring; reports never use it).

    Parameters
    ----------
    result
        A forecast from :func:`aiops_lab.finops.forecast`.
    group
        The series shown first (default: the one with the most spend).
    budget
        The period budget shown first (default: the forecast's own budget for that
        group, else its median simulated period total rounded up).
    """

    def __init__(self, result: CostForecast, *, group: str | None = None, budget: float | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        self.result = result
        groups = result.groups
        if group is None:
            totals = (
                result.history.group_by("group").agg(pl.col("y").sum()).sort("y", descending=True)
            )
            group = str(totals["group"][0])
        self.group = widgets.Dropdown(options=groups, value=group, description="series")
        self.budget = widgets.BoundedFloatText(
            value=0.0, min=0.0, max=1e15, step=100.0, description="budget",
            layout=widgets.Layout(width="240px"),
        )  # fmt: skip
        self.stats = widgets.HTML()
        self.output = widgets.Output()
        self.current: CostForecast | None = None
        self._cache: dict[tuple[str, float], CostForecast] = {}
        self.budget.value = float(budget) if budget is not None else self._default_budget(group)
        self.group.observe(self._on_group, names="value")
        self.budget.observe(self._refresh, names="value")
        super().__init__(
            [widgets.HBox([self.group, self.budget]), self.stats, self.output], **kwargs
        )
        self._refresh()

    def _default_budget(self, group: str) -> float:
        breach = self.result.breach
        if breach is not None:
            row = breach.filter(pl.col("group") == group)
            if row.height:
                return float(row["budget"][0])
        sim = self.result._simulation or {}
        groups = sim.get("groups", [])
        if group in groups:
            i = groups.index(group)
            total = float(sim["spent"][i] + sim["mean"][i].sum())
            step = 10 ** max(0, len(f"{int(total):d}") - 2)
            return float(-(-total // step) * step)
        return 0.0

    def _on_group(self, change: Any) -> None:
        value = self._default_budget(change["new"])
        if value != self.budget.value:
            self.budget.value = value  # refreshes through its observer
        else:
            self._refresh()

    @property
    def row(self) -> dict[str, Any]:
        """The breach row now shown (group, budget, spent, p_breach, expected_breach_date ...)."""
        assert self.current is not None
        assert self.current.breach is not None
        return self.current.breach.row(0, named=True)

    def _refresh(self, *_: Any) -> None:
        g, b = self.group.value, float(self.budget.value)
        key = (g, b)
        if key not in self._cache:
            self._cache[key] = self.result.with_budget({g: b})
        self.current = self._cache[key]
        r = self.row
        when = r["expected_breach_date"]
        cells = {
            "budget": f"{r['budget']:,.0f}",
            "spent so far": f"{r['spent']:,.0f}",
            "forecast total": f"{r['forecast_total']:,.0f}",
            "p10 / p50 / p90": f"{r['p10_total']:,.0f} / {r['p50_total']:,.0f} / {r['p90_total']:,.0f}",
            "P(breach)": f"{r['p_breach']:.1%}",
            "expected breach": "-" if when is None else str(when),
            "period": f"{r['period_start']} .. {r['period_end']}",
        }
        alert = r["p_breach"] >= self.result.params["alert_p_breach"]
        color = "#b42318" if alert else "#067647"
        body = "".join(
            f"<td><b>{html.escape(k)}</b><br>{html.escape(v)}</td>" for k, v in cells.items()
        )
        self.stats.value = f"<table style='color:{color}'><tr>{body}</tr></table>"
        self.output.clear_output(wait=True)
        with self.output:
            from IPython.display import display

            display(self.current.chart("fan", group=g))

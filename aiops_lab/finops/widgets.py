"""``CostExplorer``: pick a dimension, a horizon, a series and a budget; see the forecast
fan and the breach risk.

Moving the budget redraws only the sample paths of the rest of the period
(:meth:`CostForecast.with_budget`); no model is refitted. Changing the dimension or the
horizon refits the forecast (when the explorer was given the bill), with a working state
shown meanwhile; every fit is kept, so going back is instant.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import polars as pl

if TYPE_CHECKING:
    from aiops_lab.finops.result import CostForecast

__all__ = ["DIMENSIONS", "CostExplorer"]

TOTAL = "(total)"
#: the dimensions offered, where the bill has them
DIMENSIONS = (
    "service",
    "provider",
    "sku",
    "region",
    "model",
    "tag:team",
    "tag:project",
    "tag:feature",
)


class CostExplorer(widgets.VBox):
    """An interactive view of a :class:`CostForecast` (for exploring; reports never use it).

    Parameters
    ----------
    result
        A forecast from :func:`aiops_lab.finops.forecast` (optional when ``costs`` is given:
        the total is forecast first).
    costs
        The bill the forecast came from. With it, the dimension (allocation column) and the
        horizon can be changed too: each change refits the forecast on the bill.
    group
        The series shown first (default: the one with the most spend).
    budget
        The period budget shown first (default: the forecast's own budget for that
        group, else its median simulated period total rounded up).
    dimensions
        The dimensions offered (default: those of :data:`DIMENSIONS` the bill has).
    forecast_kwargs
        Passed to :func:`aiops_lab.finops.forecast` on every refit (``models``, ``currency``,
        ``n_paths``, ``backend`` ...); ``by``, ``horizon`` and ``budget`` are the widget's.
    """

    def __init__(self, result: CostForecast | None = None, *, costs: Any = None, group: str | None = None,
                 budget: float | None = None, dimensions: Sequence[str] | None = None,
                 forecast_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        from aiops_lab.errors import ParameterError

        if result is None and costs is None:
            raise ParameterError("result", "a CostForecast, or the bill as costs=", None)
        self._kwargs = dict(forecast_kwargs or {})
        for key in ("by", "horizon", "budget"):
            self._kwargs.pop(key, None)
        self.costs = None
        if costs is not None:
            from aiops_lab.finops.analysis import bill_frame

            self.costs = bill_frame(costs)
        if result is None:
            result = self._fit(None, 30)
        self.result = result
        self._fits: dict[tuple[str | None, int], CostForecast] = {
            (result.params.get("by"), int(result.params["horizon"])): result
        }
        offered = [TOTAL, *self._dimensions(dimensions)]
        by = result.params.get("by")
        if by is not None and by not in offered:
            offered.append(by)
        self.dimension = widgets.Dropdown(options=offered, value=by or TOTAL, description="dimension",
                                          disabled=self.costs is None)  # fmt: skip
        self.horizon = widgets.BoundedIntText(value=int(result.params["horizon"]), min=1, max=365, step=1,
                                              description="horizon", disabled=self.costs is None,
                                              layout=widgets.Layout(width="180px"))  # fmt: skip
        self.status = widgets.HTML()
        groups = result.groups
        if group is None:
            group = self._largest(result)
        self.group = widgets.Dropdown(options=groups, value=group, description="series")
        self.budget = widgets.BoundedFloatText(
            value=0.0, min=0.0, max=1e15, step=100.0, description="budget",
            layout=widgets.Layout(width="240px"),
        )  # fmt: skip
        self.stats = widgets.HTML()
        self.output = widgets.Output()
        self.current: CostForecast | None = None
        self._cache: dict[tuple[int, str, float], CostForecast] = {}
        self._busy = False
        self.budget.value = float(budget) if budget is not None else self._default_budget(group)
        self.group.observe(self._on_group, names="value")
        self.budget.observe(self._refresh, names="value")
        self.dimension.observe(self._on_refit, names="value")
        self.horizon.observe(self._on_refit, names="value")
        super().__init__(
            [widgets.HBox([self.dimension, self.horizon]), widgets.HBox([self.group, self.budget]),
             self.status, self.stats, self.output], **kwargs,
        )  # fmt: skip
        self._set_status(self._fit_note(result))
        self._refresh()

    # -- refits (dimension / horizon) ------------------------------------------------------
    def _dimensions(self, dimensions: Sequence[str] | None) -> list[str]:
        if self.costs is None:
            return []
        from aiops_lab.finops.analysis import dimension

        out = []
        for d in dimensions if dimensions is not None else DIMENSIONS:
            try:
                expr = dimension(self.costs, d)
            except Exception:
                continue
            if dimensions is None and self.costs.select(expr.drop_nulls().n_unique()).item() < 2:
                continue  # one value only: nothing to allocate
            out.append(d)
        return out

    def _fit(self, by: str | None, horizon: int) -> CostForecast:
        from aiops_lab.finops.forecast import forecast

        return forecast(self.costs, by=by, horizon=horizon, **self._kwargs)

    @staticmethod
    def _largest(result: CostForecast) -> str:
        totals = result.history.group_by("group").agg(pl.col("y").sum()).sort("y", descending=True)
        return str(totals["group"][0])

    @staticmethod
    def _fit_note(result: CostForecast) -> str:
        by = result.params.get("by") or "the total"
        return (f"forecast of {html.escape(str(by))}, {result.params['horizon']} days, "
                f"{len(result.groups)} series ({result.elapsed_s:.1f} s to fit)")  # fmt: skip

    def _set_status(self, text: str, working: bool = False) -> None:
        color = "#175cd3" if working else "#475467"
        icon = "&#8987; " if working else ""
        self.status.value = f"<span style='color:{color}'>{icon}{text}</span>"

    def _on_refit(self, _: Any = None) -> None:
        if self._busy or self.costs is None:
            return
        by = None if self.dimension.value == TOTAL else str(self.dimension.value)
        horizon = int(self.horizon.value)
        key = (by, horizon)
        if key not in self._fits:
            controls = (self.dimension, self.horizon, self.group, self.budget)
            for c in controls:
                c.disabled = True
            self._set_status(f"working: refitting the forecast by {html.escape(by or 'the total')} "
                             f"over {horizon} days ...", working=True)  # fmt: skip
            t0 = time.perf_counter()
            try:
                self._fits[key] = self._fit(by, horizon)
            except Exception as exc:  # show it, keep the previous forecast
                self._set_status(f"refit failed: {html.escape(str(exc))}")
                for c in controls:
                    c.disabled = False
                return
            finally:
                self.group.disabled = self.budget.disabled = False
                self.dimension.disabled = self.horizon.disabled = False
            note = f"refitted in {time.perf_counter() - t0:.1f} s: "
        else:
            note = "kept from before: "
        self.result = self._fits[key]
        group = self._largest(self.result)
        self._busy = True
        try:
            self.group.unobserve(self._on_group, names="value")
            self.group.options = self.result.groups
            self.group.value = group
            self.group.observe(self._on_group, names="value")
            value = self._default_budget(group)
            self.budget.unobserve(self._refresh, names="value")
            self.budget.value = value
            self.budget.observe(self._refresh, names="value")
        finally:
            self._busy = False
        self._set_status(note + self._fit_note(self.result))
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
        if self._busy:
            return
        g, b = self.group.value, float(self.budget.value)
        key = (id(self.result), g, b)
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

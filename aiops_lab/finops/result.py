"""``CostForecast``: what ``forecast`` found, ready to show, report and track."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

    from aiops_lab.backend import BackendInfo

__all__ = ["CostForecast"]


class CostForecast(Result):
    """The outcome of :func:`aiops_lab.finops.forecast`.

    Attributes
    ----------
    forecast : polars.DataFrame
        ``date, group, model, mean, lo_<level>, hi_<level>`` for every forecast day.
    breach : polars.DataFrame or None
        Per group: ``budget, spent`` (so far in the period), ``forecast_total``, simulated
        ``p10/p50/p90_total``, ``p_breach`` and ``expected_breach_date`` (the median
        first day over budget among the paths that breach); None without a budget.
    backtest : polars.DataFrame
        Per group and candidate model: ``mase``, ``coverage_<level>`` (the share of
        backtest actuals inside the intervals), ``chosen``, ``windows``, ``horizon``.
    anomalies : polars.DataFrame
        Days outside the in-sample interval: ``actual, expected, lo, hi, excess``
        (actual - expected), ``beyond`` (distance past the interval) and ``drivers``.
    history : polars.DataFrame
        The daily series with the in-sample fit and interval the anomalies were judged on
        (``fit_model`` names the model: the chosen one, except that a chosen seasonal-naive
        model is replaced by the best other candidate, or by a seasonal-naive reference
        that skips anomalous days, so that a spike does not echo a week later).

    Use :meth:`with_budget` to see the breach risk of another budget without refitting.
    """

    analysis = "finops"
    default_chart = "fan"

    def __init__(self, *, forecast: pl.DataFrame, breach: pl.DataFrame | None, backtest: pl.DataFrame,
                 anomalies: pl.DataFrame, history: pl.DataFrame, params: dict[str, Any],
                 backend: BackendInfo, elapsed_s: float,
                 simulation: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.forecast, self.breach, self.backtest = forecast, breach, backtest
        self._simulation = simulation
        self.anomalies, self.history = anomalies, history
        self._params, self.backend, self.elapsed_s = params, backend, elapsed_s
        self._summary = self._make_summary()

    @property
    def table(self) -> pl.DataFrame:
        """The forecast, one row per group and day."""
        return self.forecast

    def tables(self) -> dict[str, pl.DataFrame]:
        out = {"table": self.forecast, "backtest": self.backtest, "anomalies": self.anomalies}
        if self.breach is not None:
            out["breach"] = self.breach
        return out

    def _make_summary(self) -> dict[str, Any]:
        chosen = self.backtest.filter(pl.col("chosen"))
        levels = self._params["level"]
        out: dict[str, Any] = {
            "alert": False,
            "n_series": self.forecast["group"].n_unique(),
            "history_days": self.history["date"].n_unique(),
            "last_actual": self.history["date"].max(),
            "forecast_total": float(self.forecast["mean"].sum()),
            "horizon_days": self._params["horizon"],
            "mase": _mean(chosen["mase"]),
        }
        for lv in levels:
            out[f"coverage_{lv}"] = _mean(chosen[f"coverage_{lv}"])
        out["n_anomalies"] = self.anomalies.height
        if "fit_model" in self.history.columns:
            judged = self.history["fit_model"].drop_nulls().unique(maintain_order=True).to_list()
            out["anomaly_models"] = ", ".join(judged) if judged else None
        zero = self.backtest.filter(pl.col("model") == "zero")
        if zero.height:
            out["zero_series"] = zero.height
        headline = (
            f"{out['horizon_days']}-day forecast {out['forecast_total']:,.0f} over "
            f"{out['n_series']} series (backtest MASE {out['mase']:.2f})"
            if out["mase"] is not None
            else f"{out['horizon_days']}-day forecast {out['forecast_total']:,.0f}"
        )
        if self.breach is not None and self.breach.height:
            worst = self.breach.sort("p_breach", descending=True).row(0, named=True)
            out["p_breach"] = worst["p_breach"]
            out["p_breach_group"] = worst["group"]
            out["expected_breach_date"] = worst["expected_breach_date"]
            out["alert"] = bool(worst["p_breach"] >= self._params["alert_p_breach"])
            headline += (
                f"; {worst['p_breach']:.0%} chance {worst['group']} exceeds its budget of "
                f"{worst['budget']:,.0f} this {self._params['period']}"
            )
        if self.anomalies.height:
            headline += f"; {self.anomalies.height} anomalous day(s)"
        out["headline"] = headline
        out["backend"] = self.backend.name
        out["elapsed_s"] = round(self.elapsed_s, 3)
        return {"headline": out.pop("headline"), **out}

    @property
    def groups(self) -> list[str]:
        """The forecast series, in order."""
        return [str(g) for g in self.forecast["group"].unique(maintain_order=True)]

    def with_budget(self, budget: float | dict[str, float | None] | None) -> CostForecast:
        """This forecast with the breach risk of another budget, without refitting any model.

        Only the sample paths of the rest of the period are drawn again, from the stored
        daily means and spreads and the same seed: the same paths as the first run, so
        ``p_breach`` never falls as the budget falls. Everything else is shared.

        Parameters
        ----------
        budget
            One amount for every group, ``{group: amount}`` (others get none), or None.
        """
        from aiops_lab.backend import get_namespace
        from aiops_lab.errors import ParameterError
        from aiops_lab.finops.forecast import breach_table, check_budget

        if self._simulation is None:
            raise ParameterError("budget", "a forecast made by finops.forecast()", "a hand-built CostForecast",
                                 "Call finops.forecast(..., budget=...) instead.")  # fmt: skip
        check_budget(budget)
        groups = self._simulation["groups"]
        if budget is None:
            breach = None
        else:
            if isinstance(budget, dict):
                unknown = [k for k in budget if k not in groups]
                if unknown:
                    raise ParameterError("budget", f"amounts for groups among {groups}", unknown)
                budgets = {g: budget.get(g) for g in groups}
            else:
                budgets = dict.fromkeys(groups, float(budget))
            xp, _ = get_namespace(self.backend.name)
            breach = breach_table(self._simulation, budgets, xp)
        params = {**self._params, "budget": budget}
        return CostForecast(forecast=self.forecast, breach=breach, backtest=self.backtest,
                            anomalies=self.anomalies, history=self.history, params=params,
                            backend=self.backend, elapsed_s=self.elapsed_s,
                            simulation=self._simulation)  # fmt: skip

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        for r in self.backtest.filter(pl.col("chosen")).iter_rows(named=True):
            if r["mase"] is not None:
                out[f"group.{_key(r['group'])}.mase"] = float(r["mase"])
        if self.breach is not None:
            for r in self.breach.iter_rows(named=True):
                out[f"group.{_key(r['group'])}.p_breach"] = float(r["p_breach"])
        return out

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart: "fan" (history + forecast), "breach", "allocation", "anomalies"."""
        from aiops_lab.finops import charts

        return charts.draw(self, kind or self.default_chart, **kwargs)


def _mean(values: pl.Series) -> float | None:
    clean = values.drop_nulls().drop_nans()
    return float(clean.mean()) if clean.len() else None  # type: ignore[arg-type]


def _key(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(text))

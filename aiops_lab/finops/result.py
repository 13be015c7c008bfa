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
        The daily series with the chosen model's in-sample fit and interval.
    """

    analysis = "finops"
    default_chart = "fan"

    def __init__(self, *, forecast: pl.DataFrame, breach: pl.DataFrame | None, backtest: pl.DataFrame,
                 anomalies: pl.DataFrame, history: pl.DataFrame, params: dict[str, Any],
                 backend: BackendInfo, elapsed_s: float) -> None:  # fmt: skip
        self.forecast, self.breach, self.backtest = forecast, breach, backtest
        self.anomalies, self.history = anomalies, history
        self._params, self.backend, self.elapsed_s = params, backend, elapsed_s
        self._summary = self._make_summary()

    @property
    def table(self) -> pl.DataFrame:
        """The forecast, one row per group and day."""
        return self.forecast

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._params)

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
    def summary(self) -> dict[str, Any]:
        return dict(self._summary)

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

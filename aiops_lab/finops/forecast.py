"""``forecast``: daily spend per group, honest intervals, budget-breach risk, anomalies.

Load (a FOCUS frame) -> daily series per group -> statsforecast models, chosen per
series by a rolling-origin backtest -> sample paths of the rest of the period on the
array backend (kernels) -> a :class:`CostForecast` that only presents.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, get_namespace, to_numpy
from aiops_lab.errors import InputError, ParameterError
from aiops_lab.finops import kernels as K
from aiops_lab.finops._schema import warn
from aiops_lab.finops.analysis import bill_frame, check_cost, dimension
from aiops_lab.finops.result import CostForecast

__all__ = ["MODELS", "SEASON", "daily_series", "forecast"]

SEASON = 7
#: model names accepted by ``models=`` and their statsforecast column names
MODELS = {"ets": "AutoETS", "arima": "AutoARIMA", "snaive": "SeasonalNaive"}
#: below this many days a series is forecast by its recent mean (and a warning says so)
MIN_DAYS = 2 * SEASON + 1
TOTAL = "total"


def daily_series(costs: Any, *, by: str | None = None, cost: str = "EffectiveCost",
                 currency: str | None = None) -> pl.DataFrame:  # fmt: skip
    """Daily spend per group: ``group, date, y``, every day of the bill present (0 if none).

    A charge counts on the UTC day its ``ChargePeriodStart`` falls on.
    """
    frame = check_cost(bill_frame(costs), cost, currency)
    if "ChargePeriodStart" not in frame.columns:
        from aiops_lab.errors import ColumnNotFoundError

        raise ColumnNotFoundError("ChargePeriodStart", "the bill", frame.columns)
    group = dimension(frame, by).alias("group") if by else pl.lit(TOTAL).alias("group")
    daily = frame.group_by(group, pl.col("ChargePeriodStart").dt.date().alias("date")).agg(
        pl.col(cost).sum().alias("y")
    )
    first, last = daily["date"].min(), daily["date"].max()
    days = pl.DataFrame({"date": pl.date_range(first, last, "1d", eager=True)})  # type: ignore[arg-type]
    grid = daily.select("group").unique().join(days, how="cross")
    out = grid.join(daily, on=["group", "date"], how="left").with_columns(
        pl.col("y").fill_null(0.0)
    )
    return out.sort("group", "date")


def _check(horizon: int, level: Sequence[int], budget: Any, period: str, models: Sequence[str],
           n_paths: int, anomaly_level: float) -> tuple[int, ...]:  # fmt: skip
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ParameterError("horizon", "a whole number of days >= 1", horizon)
    levels = tuple(int(v) for v in level)
    if not levels or any(not 0 < v < 100 for v in levels):
        raise ParameterError("level", "interval levels in percent, between 0 and 100", level)
    if period not in ("month", "quarter"):
        raise ParameterError("period", "'month' or 'quarter'", period)
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        raise ParameterError("models", f"names from {list(MODELS)}", models)
    if n_paths < 100:
        raise ParameterError("n_paths", "at least 100 sample paths", n_paths)
    if anomaly_level != int(anomaly_level) or not 50 < anomaly_level < 100:
        raise ParameterError("anomaly_level", "a whole percent between 51 and 99", anomaly_level)
    values = budget.values() if isinstance(budget, Mapping) else [budget]
    for v in values:
        if v is not None and (not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0):
            raise ParameterError("budget", "a non-negative amount in the bill's currency", v,
                                 "Pass one number, or a {group: amount} dict.")  # fmt: skip
    return tuple(sorted(set(levels)))


def _period_bounds(first_day: date, period: str) -> tuple[date, date]:
    """Start and (exclusive) end of the month / quarter containing ``first_day``."""
    if period == "month":
        start = first_day.replace(day=1)
    else:
        start = date(first_day.year, 3 * ((first_day.month - 1) // 3) + 1, 1)
    months = 1 if period == "month" else 3
    m = start.month - 1 + months
    return start, date(start.year + m // 12, m % 12 + 1, 1)


def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 200.0))


def _wide(frame: pl.DataFrame, column: str, groups: list[str]) -> np.ndarray:
    """``(n_groups, n_points)`` array of ``column``, rows in ``groups`` order, by date."""
    rows = frame.partition_by("unique_id", as_dict=True, maintain_order=True)
    return np.stack([rows[(g,)].sort("ds")[column].to_numpy().astype(float) for g in groups])


def forecast(
    costs: Any,
    *,
    horizon: int = 30,
    by: str | None = None,
    level: Sequence[int] = (80, 95),
    budget: float | Mapping[str, float] | None = None,
    period: str = "month",
    cost: str = "EffectiveCost",
    currency: str | None = None,
    models: Sequence[str] = ("ets", "arima", "snaive"),
    backtest_windows: int = 3,
    n_paths: int = 4000,
    anomaly_level: float = 99.0,
    alert_p_breach: float = 0.5,
    seed: int | None = 0,
    backend: str | None = None,
) -> CostForecast:
    """Forecast daily spend per group, with intervals, budget-breach risk and anomalies.

    Each daily series (one per value of ``by``, or the total) is backtested from
    ``backtest_windows`` rolling origins, ``horizon`` days ahead each (fewer when the
    history is short); the model with the lowest MASE forecasts it. MASE divides the
    backtest's mean absolute error by the mean absolute error of the weekly seasonal-naive
    forecast on the history before the first origin, so below 1 beats that baseline.

    Budget risk: ``n_paths`` Gaussian sample paths of every remaining day of the period
    (the month, or quarter, of the first forecast day) are drawn on the array backend,
    with daily spreads matched to the chosen model's intervals and the correlation
    between days their widening implies (see :mod:`aiops_lab.finops.kernels`);
    ``p_breach`` is the share of paths whose period total passes the budget.

    Anomalies are days whose actual spend lies outside the chosen model's in-sample
    ``anomaly_level`` % interval; the dimension values that moved most that day (against
    their median of the four weeks before) are named as drivers.

    Parameters
    ----------
    costs
        A FOCUS frame or path (see :func:`aiops_lab.finops.read_focus`).
    horizon
        Days to forecast.
    by
        A dimension to forecast per value (``"service"``, ``"tag:team"`` ...); None: the total.
    level
        Interval levels in percent.
    budget
        The period budget: one amount (for every group), or ``{group: amount}``.
    period
        ``"month"`` or ``"quarter"``.
    models
        Candidates: ``"ets"`` (AutoETS), ``"arima"`` (AutoARIMA), ``"snaive"`` (weekly).
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"`` for the simulation.

    Returns
    -------
    CostForecast

    Examples
    --------
    >>> fc = forecast("bill.csv", by="service", budget=50_000)  # doctest: +SKIP
    >>> fc.breach  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    levels = _check(horizon, level, budget, period, models, n_paths, anomaly_level)
    xp, info = get_namespace(backend)
    frame = check_cost(bill_frame(costs), cost, currency)
    series = daily_series(frame, by=by, cost=cost)
    if series.height == 0:
        from aiops_lab.errors import EmptyInputError

        raise EmptyInputError("The bill has no charges to forecast.")
    groups = series["group"].unique(maintain_order=True).to_list()
    last_day: date = series["date"].max()  # type: ignore[assignment]
    n_days = series.filter(pl.col("group") == groups[0]).height
    p_start, p_end = _period_bounds(last_day + timedelta(days=1), period)
    remaining = (p_end - last_day).days - 1
    h_fit = max(horizon, remaining)
    top = max(levels)
    fit_levels = sorted({*levels, int(anomaly_level)})
    data = series.rename({"group": "unique_id", "date": "ds"})
    y = _wide(data, "y", groups)

    if n_days < MIN_DAYS:
        warn(f"Only {n_days} days of spend: too short for a backtest or seasonal models "
             f"(they need {MIN_DAYS}); forecasting each series by its recent mean instead.")  # fmt: skip
        mean, lo, hi, chosen, backtest, fitted = _fallback(y, groups, h_fit, levels, fit_levels)
    else:
        mean, lo, hi, chosen, backtest, fitted = _statistical(
            data,
            y,
            groups,
            h_fit,
            horizon,
            levels,
            fit_levels,
            int(anomaly_level),
            models,
            backtest_windows,
            xp,
        )
    dates = [last_day + timedelta(days=i + 1) for i in range(h_fit)]
    rows: dict[str, Any] = {
        "date": np.repeat(np.array(dates[:horizon], dtype="datetime64[D]"), 1)[None, :].repeat(len(groups), 0).ravel(),
        "group": np.repeat(np.array(groups, dtype=object), horizon),
        "model": np.repeat(np.array(chosen, dtype=object), horizon),
        "mean": mean[:, :horizon].ravel(),
    }  # fmt: skip
    for lv in levels:
        rows[f"lo_{lv}"] = lo[lv][:, :horizon].ravel()
        rows[f"hi_{lv}"] = hi[lv][:, :horizon].ravel()
    fc_table = pl.DataFrame(rows).with_columns(pl.col("date").cast(pl.Date), pl.col("group").cast(pl.String),
                                               pl.col("model").cast(pl.String))  # fmt: skip

    # budget risk on the rest of the period
    breach = None
    budgets = _budgets(budget, groups)
    if budgets is not None:
        in_period = series.filter(pl.col("date") >= p_start)
        spent = np.array([float(in_period.filter(pl.col("group") == g)["y"].sum()) for g in groups])
        sigma = (hi[top] - lo[top]) / (2.0 * _z(top))
        n_rest = max(remaining, 0)
        b = np.array([np.nan if (v := budgets[g]) is None else float(v) for g in groups])
        if n_rest > 0:
            m_r, s_r = mean[:, :n_rest], np.nan_to_num(sigma[:, :n_rest])
            z = K.standard_normal(xp, (len(groups), n_paths, n_rest), seed)
            p, day, totals = K.breach_simulation(
                xp, from_numpy(m_r, xp), from_numpy(s_r, xp), from_numpy(spent, xp),
                from_numpy(np.nan_to_num(b, nan=np.inf), xp), z,
            )  # fmt: skip
            p, day, totals = to_numpy(p), to_numpy(day), to_numpy(totals)
            q = np.quantile(totals, [0.1, 0.5, 0.9], axis=1)
        else:
            p = (spent > b).astype(float)
            day = np.where(spent > b, -1.0, np.nan)
            q = np.stack([spent, spent, spent])
        breach_rows = []
        for i, g in enumerate(groups):
            if np.isnan(b[i]):
                continue
            if day[i] == -1.0:
                when = _already(series, g, p_start, b[i])
            elif np.isfinite(day[i]):
                when = last_day + timedelta(days=math.floor(day[i]) + 1)
            else:
                when = None
            breach_rows.append({"group": g, "budget": b[i], "spent": spent[i],
                                "forecast_total": float(spent[i] + mean[i, :n_rest].sum()),
                                "p10_total": float(q[0, i]), "p50_total": float(q[1, i]), "p90_total": float(q[2, i]),
                                "p_breach": float(p[i]), "expected_breach_date": when,
                                "period_start": p_start, "period_end": p_end - timedelta(days=1)})  # fmt: skip
        breach = pl.DataFrame(breach_rows, schema={
            "group": pl.String, "budget": pl.Float64, "spent": pl.Float64, "forecast_total": pl.Float64,
            "p10_total": pl.Float64, "p50_total": pl.Float64, "p90_total": pl.Float64, "p_breach": pl.Float64,
            "expected_breach_date": pl.Date, "period_start": pl.Date, "period_end": pl.Date})  # fmt: skip

    history = series.join(fitted, on=["group", "date"], how="left")
    anomalies = _anomalies(history, frame, by, cost, anomaly_level)
    params = {"horizon": horizon, "by": by, "level": list(levels), "budget": budget, "period": period,
              "cost": cost, "currency": currency, "models": list(models), "backtest_windows": backtest_windows,
              "n_paths": n_paths, "anomaly_level": anomaly_level, "alert_p_breach": alert_p_breach,
              "seed": seed}  # fmt: skip
    return CostForecast(forecast=fc_table, breach=breach, backtest=backtest, anomalies=anomalies,
                        history=history, params=params, backend=info,
                        elapsed_s=time.perf_counter() - t0)  # fmt: skip


def _budgets(budget: Any, groups: list[str]) -> dict[str, float | None] | None:
    if budget is None:
        return None
    if isinstance(budget, Mapping):
        unknown = [k for k in budget if k not in groups]
        if unknown:
            raise ParameterError("budget", f"amounts for groups among {groups}", unknown)
        return {g: budget.get(g) for g in groups}
    return dict.fromkeys(groups, float(budget))


def _already(series: pl.DataFrame, group: str, start: date, budget: float) -> date | None:
    s = series.filter((pl.col("group") == group) & (pl.col("date") >= start)).sort("date")
    over = s.filter(pl.col("y").cum_sum() > budget)
    return over["date"][0] if over.height else None


def _fallback(y: np.ndarray, groups: list[str], h: int, levels: tuple[int, ...],
              fit_levels: list[int]) -> tuple[Any, ...]:  # fmt: skip
    recent = y[:, -SEASON:]
    mu = recent.mean(axis=1)
    sd = recent.std(axis=1, ddof=1) if recent.shape[1] > 1 else np.zeros(len(groups))
    sd = sd * math.sqrt(1.0 + 1.0 / recent.shape[1])
    mean = np.repeat(mu[:, None], h, axis=1)
    lo = {lv: mean - _z(lv) * sd[:, None] for lv in set(levels) | set(fit_levels)}
    hi = {lv: mean + _z(lv) * sd[:, None] for lv in set(levels) | set(fit_levels)}
    backtest = pl.DataFrame({"group": groups, "model": ["recent mean"] * len(groups), "chosen": [True] * len(groups),
                             "mase": [None] * len(groups), **{f"coverage_{lv}": [None] * len(groups) for lv in levels},
                             "windows": [0] * len(groups), "horizon": [0] * len(groups)},
                            schema_overrides={"mase": pl.Float64, **{f"coverage_{lv}": pl.Float64 for lv in levels}})  # fmt: skip
    fitted = pl.DataFrame(schema={"group": pl.String, "date": pl.Date, "fitted": pl.Float64,
                                  "fitted_lo": pl.Float64, "fitted_hi": pl.Float64})  # fmt: skip
    return mean, lo, hi, ["recent mean"] * len(groups), backtest, fitted


def _sf_models(models: Sequence[str]) -> list[Any]:
    try:
        from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive
    except ImportError as exc:  # pragma: no cover - a dependency
        from aiops_lab.errors import MissingDependencyError

        raise MissingDependencyError("statsforecast", "finops", "Forecasting spend") from exc
    made = {"ets": lambda: AutoETS(season_length=SEASON), "arima": lambda: AutoARIMA(season_length=SEASON),
            "snaive": lambda: SeasonalNaive(season_length=SEASON)}  # fmt: skip
    return [made[m]() for m in models]


def _statistical(data: pl.DataFrame, y: np.ndarray, groups: list[str], h_fit: int, horizon: int,
                 levels: tuple[int, ...], fit_levels: list[int], a_lv: int, models: Sequence[str],
                 windows: int, xp: Any) -> tuple[Any, ...]:  # fmt: skip
    from statsforecast import StatsForecast

    n = y.shape[1]
    min_train = 2 * SEASON
    h_bt = min(horizon, max(1, (n - min_train) // max(windows, 1)))
    n_win = max(1, min(windows, (n - min_train) // h_bt))
    sf = StatsForecast(models=_sf_models(models), freq="1d", n_jobs=1)
    cv = sf.cross_validation(df=data, h=h_bt, n_windows=n_win, step_size=h_bt, level=list(levels))
    actual = _wide(cv.sort("cutoff", "ds"), "y", groups)
    # scale: in-sample seasonal-naive MAE of the history before the first origin
    first_origin = n - n_win * h_bt
    hist = y[:, :first_origin]
    scale = np.mean(np.abs(hist[:, SEASON:] - hist[:, :-SEASON]), axis=1)
    bt_rows, best, best_score = [], [], np.full(len(groups), np.inf)
    best = [models[0]] * len(groups)
    a_x, s_x = from_numpy(actual, xp), from_numpy(scale, xp)
    for name in models:
        col = MODELS[name]
        pred = _wide(cv, col, groups)
        score = to_numpy(K.mase(xp, a_x, from_numpy(pred, xp), s_x))
        cover = {lv: to_numpy(K.interval_coverage(xp, a_x, from_numpy(_wide(cv, f"{col}-lo-{lv}", groups), xp),
                                                  from_numpy(_wide(cv, f"{col}-hi-{lv}", groups), xp)))
                 for lv in levels}  # fmt: skip
        for i, g in enumerate(groups):
            s = score[i] if np.isfinite(score[i]) else np.inf
            if s < best_score[i]:
                best_score[i], best[i] = s, name
            bt_rows.append({"group": g, "model": name, "mase": float(score[i]),
                            **{f"coverage_{lv}": float(cover[lv][i]) for lv in levels},
                            "windows": n_win, "horizon": h_bt})  # fmt: skip
    backtest = (
        pl.DataFrame(bt_rows)
        .with_columns(
            chosen=pl.struct("group", "model").map_elements(
                lambda r: best[groups.index(r["group"])] == r["model"], return_dtype=pl.Boolean
            )
        )
        .select(
            "group",
            "model",
            "chosen",
            "mase",
            *[f"coverage_{lv}" for lv in levels],
            "windows",
            "horizon",
        )
    )
    fc = sf.forecast(df=data, h=h_fit, level=fit_levels, fitted=True)
    fv = sf.forecast_fitted_values()
    mean = np.empty((len(groups), h_fit))
    lo = {lv: np.empty((len(groups), h_fit)) for lv in fit_levels}
    hi = {lv: np.empty((len(groups), h_fit)) for lv in fit_levels}
    fitted_parts = []
    for name in models:
        col = MODELS[name]
        rows = [i for i, b in enumerate(best) if b == name]
        if not rows:
            continue
        sel = [groups[i] for i in rows]
        mean[rows] = _wide(fc.filter(pl.col("unique_id").is_in(sel)), col, sel)
        for lv in fit_levels:
            lo[lv][rows] = _wide(fc.filter(pl.col("unique_id").is_in(sel)), f"{col}-lo-{lv}", sel)
            hi[lv][rows] = _wide(fc.filter(pl.col("unique_id").is_in(sel)), f"{col}-hi-{lv}", sel)
        fitted_parts.append(fv.filter(pl.col("unique_id").is_in(sel)).select(
            pl.col("unique_id").alias("group"), pl.col("ds").alias("date"), pl.col(col).alias("fitted"),
            pl.col(f"{col}-lo-{a_lv}").alias("fitted_lo"), pl.col(f"{col}-hi-{a_lv}").alias("fitted_hi")))  # fmt: skip
    fitted = pl.concat(fitted_parts).with_columns(pl.col("date").cast(pl.Date)).fill_nan(None)
    return mean, lo, hi, best, backtest, fitted


def _drivers(frame: pl.DataFrame, day: date, dims: list[str], cost: str) -> str:
    """The dimension values whose spend moved most on ``day`` against their last 4 weeks."""
    window = frame.filter((pl.col("_date") >= day - timedelta(days=28)) & (pl.col("_date") <= day))
    moves = []
    for d in dims:
        per = window.group_by(dimension(window, d).alias("value"), "_date").agg(
            pl.col(cost).sum().alias("c")
        )
        today = per.filter(pl.col("_date") == day).select("value", "c")
        before = (
            per.filter(pl.col("_date") < day)
            .group_by("value")
            .agg(pl.col("c").median().alias("base"))
        )
        joined = today.join(before, on="value", how="full", coalesce=True).fill_null(0.0)
        for value, c, base in joined.select("value", "c", "base").iter_rows():
            moves.append((abs(c - base), c - base, d, value))
    order = {d: i for i, d in enumerate(dims)}
    best: dict[str, tuple[float, float, str]] = {}
    for size, delta, d, value in moves:
        if d not in best or size > best[d][0]:
            best[d] = (size, delta, value)
    out = [f"{d}={best[d][2]} ({best[d][1]:+,.0f})" for d in sorted(best, key=order.__getitem__)]
    return "; ".join(out[:3])


def _anomalies(history: pl.DataFrame, frame: pl.DataFrame, by: str | None, cost: str,
               level: float) -> pl.DataFrame:  # fmt: skip
    flagged = history.filter(
        pl.col("fitted_lo").is_not_null() & ((pl.col("y") > pl.col("fitted_hi")) | (pl.col("y") < pl.col("fitted_lo")))
    ).with_columns(
        expected=pl.col("fitted"),
        excess=pl.col("y") - pl.col("fitted"),
        beyond=pl.when(pl.col("y") > pl.col("fitted_hi")).then(pl.col("y") - pl.col("fitted_hi"))
        .otherwise(pl.col("y") - pl.col("fitted_lo")),
    ).sort(pl.col("excess").abs(), descending=True)  # fmt: skip
    schema = {"date": pl.Date, "group": pl.String, "actual": pl.Float64, "expected": pl.Float64,
              "lo": pl.Float64, "hi": pl.Float64, "excess": pl.Float64, "beyond": pl.Float64,
              "drivers": pl.String}  # fmt: skip
    if flagged.height == 0:
        return pl.DataFrame(schema=schema)
    candidates = ["service", "sku", "tag:team", "tag:project"]
    dims = []
    for d in candidates:
        if d == by:
            continue
        try:
            dimension(frame, d)
        except Exception:
            continue
        if d.startswith("tag:") and "Tags" not in frame.columns:
            continue
        dims.append(d)
    base = frame.with_columns(_date=pl.col("ChargePeriodStart").dt.date())
    if by:
        base = base.with_columns(dimension(base, by).alias("_group"))
    rows = []
    for r in flagged.iter_rows(named=True):
        part = base.filter(pl.col("_group") == r["group"]) if by else base
        rows.append({"date": r["date"], "group": r["group"], "actual": r["y"], "expected": r["expected"],
                     "lo": r["fitted_lo"], "hi": r["fitted_hi"], "excess": r["excess"], "beyond": r["beyond"],
                     "drivers": _drivers(part, r["date"], dims, cost)})  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


_ = InputError

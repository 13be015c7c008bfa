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

__all__ = [
    "MODELS",
    "SEASON",
    "breach_table",
    "check_budget",
    "daily_series",
    "default_models",
    "forecast",
]

SEASON = 7
#: model names accepted by ``models=`` and their statsforecast column names:
#: ``ets`` AutoETS (searches error, trend and season forms), ``arima`` AutoARIMA,
#: ``theta`` the standard Theta method (seasonally adjusted exponential smoothing with
#: drift), ``ets_ana`` one fixed ETS form (additive error, no trend, additive weekly
#: season: ~30x cheaper than the search), ``snaive`` the weekly seasonal naive
MODELS = {"ets": "AutoETS", "arima": "AutoARIMA", "theta": "Theta", "ets_ana": "ETS_ANA",
          "snaive": "SeasonalNaive"}  # fmt: skip
#: the default candidates by number of series (see :func:`default_models`)
ARIMA_MAX_SERIES = 4
SEARCH_MAX_SERIES = 100
#: from this many series statsforecast fits in worker processes (``n_jobs=-1``)
PARALLEL_MIN_SERIES = 200
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


def default_models(n_series: int) -> tuple[str, ...]:
    """The candidate models ``forecast`` tries when ``models`` is not given.

    The cost of a fit grows with the model search, so the set shrinks as series multiply
    (one fit on a 365-day series, one core: AutoARIMA ~1.5 s, AutoETS ~0.25 s, Theta and
    ETS(A,N,A) ~0.01 s, seasonal naive ~0.001 s):

    * up to ``ARIMA_MAX_SERIES`` (4) series: ``("ets", "arima", "snaive")``;
    * up to ``SEARCH_MAX_SERIES`` (100): ``("ets", "theta", "snaive")``;
    * more: ``("theta", "snaive")`` - Theta (seasonally adjusted smoothing with a drift,
      so it follows growth) against the weekly baseline, without the AutoETS search.
    """
    if n_series <= ARIMA_MAX_SERIES:
        return ("ets", "arima", "snaive")
    if n_series <= SEARCH_MAX_SERIES:
        return ("ets", "theta", "snaive")
    return ("theta", "snaive")


def _check(horizon: int, level: Sequence[int], budget: Any, period: str, models: Sequence[str] | None,
           n_paths: int, anomaly_level: float, sim_max_bytes: int | None) -> tuple[int, ...]:  # fmt: skip
    if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
        raise ParameterError("horizon", "a whole number of days >= 1", horizon)
    levels = tuple(int(v) for v in level)
    if not levels or any(not 0 < v < 100 for v in levels):
        raise ParameterError("level", "interval levels in percent, between 0 and 100", level)
    if period not in ("month", "quarter"):
        raise ParameterError("period", "'month' or 'quarter'", period)
    if models is not None:
        bad = [m for m in models if m not in MODELS] if not isinstance(models, str) else [models]
        if bad or not models:
            raise ParameterError("models", f"a list of names from {list(MODELS)}, or None", models)
    if n_paths < 100:
        raise ParameterError("n_paths", "at least 100 sample paths", n_paths)
    if anomaly_level != int(anomaly_level) or not 50 < anomaly_level < 100:
        raise ParameterError("anomaly_level", "a whole percent between 51 and 99", anomaly_level)
    check_budget(budget)
    if sim_max_bytes is not None and (not isinstance(sim_max_bytes, int) or sim_max_bytes < 1):
        raise ParameterError("sim_max_bytes", "a positive number of bytes, or None", sim_max_bytes)
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


def _wide(frame: pl.DataFrame, column: str | list[str], groups: list[str]) -> Any:
    """``(n_groups, n_points)`` array of ``column``, rows in ``groups`` order, by date.

    Every group must have the same number of points (the daily grid makes it so). A
    list of columns gives ``{column: array}`` from one sort.
    """
    order = pl.DataFrame({"unique_id": groups, "_o": np.arange(len(groups))},
                         schema_overrides={"unique_id": frame.schema["unique_id"]})  # fmt: skip
    keys = ["_o", "cutoff", "ds"] if "cutoff" in frame.columns else ["_o", "ds"]
    names = [column] if isinstance(column, str) else column
    rows = frame.select("unique_id", *keys[1:], *names).join(order, on="unique_id").sort(keys)
    if rows.height % max(len(groups), 1):
        raise RuntimeError("the forecast frame is not one equal-length block per series")
    out = {c: rows[c].cast(pl.Float64).to_numpy().reshape(len(groups), -1) for c in names}
    return out[column] if isinstance(column, str) else out


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
    models: Sequence[str] | None = None,
    backtest_windows: int = 3,
    n_paths: int = 4000,
    anomaly_level: float = 99.0,
    alert_p_breach: float = 0.5,
    seed: int | None = 0,
    backend: str | None = None,
    sim_max_bytes: int | None = K.DEFAULT_MAX_BYTES,
    n_jobs: int | None = None,
) -> CostForecast:
    """Forecast daily spend per group, with intervals, budget-breach risk and anomalies.

    All daily series (one per value of ``by``, or the total) go through one
    statsforecast object at once. Each is backtested from ``backtest_windows`` rolling
    origins, ``horizon`` days ahead each (fewer when the history is short); the models
    are fitted once, on the history before the first origin, and carried forward with
    their parameters fixed to the later origins (statsforecast's ``refit=False``: no
    refit per window, and still nothing from after an origin is used to forecast it).
    Per series, the model with the lowest MASE is refitted on the whole history and
    forecasts it. MASE divides the backtest's mean absolute error by the mean absolute
    error of the weekly seasonal-naive forecast on the history before the first origin,
    so below 1 beats that baseline.

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
        Candidates among ``"ets"`` (AutoETS), ``"arima"`` (AutoARIMA), ``"theta"``
        (Theta), ``"ets_ana"`` (ETS(A,N,A)) and ``"snaive"`` (weekly seasonal naive).
        None: chosen by the number of series (:func:`default_models`): AutoARIMA only for
        a few series, the AutoETS search up to 100, Theta and the baseline beyond.
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"`` for the simulation.
    n_jobs
        Processes statsforecast fits in; None: 1 below ``PARALLEL_MIN_SERIES`` (200)
        series, else all cores.

    Returns
    -------
    CostForecast

    Examples
    --------
    >>> fc = forecast("bill.csv", by="service", budget=50_000)  # doctest: +SKIP
    >>> fc.breach  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    levels = _check(horizon, level, budget, period, models, n_paths, anomaly_level, sim_max_bytes)
    if n_jobs is not None and (not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1):
        raise ParameterError(
            "n_jobs", "a positive number of processes, -1 (all cores) or None", n_jobs
        )
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

    zero = np.all(y == 0.0, axis=1)
    if zero.any():
        names = ", ".join(repr(g) for g, z in zip(groups, zero, strict=True) if z)
        warn(f"No spend at all in {names}: forecasting zero with zero-width intervals "
             "(no model search; MASE is null).")  # fmt: skip
    live = [g for g, z in zip(groups, zero, strict=True) if not z]
    if models is None:
        models = default_models(len(live))
    models = tuple(models)
    if n_jobs is None:
        n_jobs = 1 if len(live) < PARALLEL_MIN_SERIES else -1
    if not live:
        parts = []
    elif n_days < MIN_DAYS:
        warn(f"Only {n_days} days of spend: too short for a backtest or seasonal models "
             f"(they need {MIN_DAYS}); forecasting each series by its recent mean instead.")  # fmt: skip
        parts = [(live, _fallback(y[~zero], live, h_fit, levels, fit_levels))]
    else:
        sub = data.filter(pl.col("unique_id").is_in(live)) if zero.any() else data
        parts = [(live, _statistical(sub, y[~zero], live, h_fit, horizon, levels, fit_levels,
                                     int(anomaly_level), models, backtest_windows, xp, n_jobs))]  # fmt: skip
    if zero.any():
        dead = [g for g, z in zip(groups, zero, strict=True) if z]
        parts.append((dead, _zero_series(dead, h_fit, levels, fit_levels)))
    mean, lo, hi, chosen, backtest, fitted = _merge(parts, groups, h_fit, levels, fit_levels)
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

    # budget risk on the rest of the period: the simulation's inputs are kept, so that
    # CostForecast.with_budget can redraw the same paths against another budget
    in_period = series.filter(pl.col("date") >= p_start)
    sums = dict(in_period.group_by("group").agg(pl.col("y").sum()).iter_rows())
    spent = np.array([float(sums.get(g, 0.0)) for g in groups])
    n_rest = max(remaining, 0)
    sigma = (hi[top] - lo[top]) / (2.0 * _z(top))
    simulation = {"groups": groups, "mean": mean[:, :n_rest].copy(),
                  "sigma": np.nan_to_num(sigma[:, :n_rest]), "spent": spent, "n_rest": n_rest,
                  "last_day": last_day, "period_start": p_start, "period_end": p_end,
                  "in_period": in_period, "n_paths": n_paths, "seed": seed,
                  "max_bytes": sim_max_bytes}  # fmt: skip
    budgets = _budgets(budget, groups)
    breach = None if budgets is None else breach_table(simulation, budgets, xp)

    history = series.join(fitted, on=["group", "date"], how="left")
    anomalies = _anomalies(history.drop("fit_model"), frame, by, cost, anomaly_level)
    params = {"horizon": horizon, "by": by, "level": list(levels), "budget": budget, "period": period,
              "cost": cost, "currency": currency, "models": list(models), "backtest_windows": backtest_windows,
              "n_paths": n_paths, "anomaly_level": anomaly_level, "alert_p_breach": alert_p_breach,
              "seed": seed}  # fmt: skip
    return CostForecast(forecast=fc_table, breach=breach, backtest=backtest, anomalies=anomalies,
                        history=history, params=params, backend=info,
                        elapsed_s=time.perf_counter() - t0, simulation=simulation)  # fmt: skip


def breach_table(
    simulation: Mapping[str, Any], budgets: Mapping[str, float | None], xp: Any
) -> pl.DataFrame:
    """The ``breach`` table of a forecast for ``budgets`` ({group: amount or None}).

    ``simulation`` holds what the forecast kept (daily mean and sigma of the rest of the
    period, spend so far, seed ...); only the sample paths are drawn again, from the same seed.
    """
    from aiops_lab.progress import progress_bar

    groups, spent, n_rest = simulation["groups"], simulation["spent"], simulation["n_rest"]
    p_start, p_end, last_day = (
        simulation["period_start"],
        simulation["period_end"],
        simulation["last_day"],
    )
    mean = simulation["mean"]
    b = np.array([np.nan if (v := budgets.get(g)) is None else float(v) for g in groups])
    keep = np.flatnonzero(~np.isnan(b))
    n_paths = simulation["n_paths"]
    if n_rest > 0 and keep.size:
        n_chunks = math.ceil(keep.size / K.chunk_rows(keep.size, n_paths, n_rest,
                                                       simulation["max_bytes"] or 2**62))  # fmt: skip

        def bar(items: Any) -> Any:
            return progress_bar(items, desc="breach paths", enabled=n_chunks > 1, total=n_chunks)

        p_k, day_k, totals = K.simulate_breach(
            xp, from_numpy(mean[keep], xp), from_numpy(simulation["sigma"][keep], xp),
            from_numpy(spent[keep], xp), from_numpy(b[keep], xp), n_paths=n_paths,
            seed=simulation["seed"], max_bytes=simulation["max_bytes"], progress=bar,
        )  # fmt: skip
        q_k = np.quantile(to_numpy(totals), [0.1, 0.5, 0.9], axis=1)
        p, day, q = (
            np.full(len(groups), np.nan),
            np.full(len(groups), np.nan),
            np.full((3, len(groups)), np.nan),
        )
        p[keep], day[keep], q[:, keep] = to_numpy(p_k), to_numpy(day_k), q_k
    else:
        p = (spent > b).astype(float)
        day = np.where(spent > b, -1.0, np.nan)
        q = np.stack([spent, spent, spent])
    breach_rows = []
    for i, g in enumerate(groups):
        if np.isnan(b[i]):
            continue
        if day[i] == -1.0:
            when = _already(simulation["in_period"], g, p_start, b[i])
        elif np.isfinite(day[i]):
            when = last_day + timedelta(days=math.floor(day[i]) + 1)
        else:
            when = None
        breach_rows.append({"group": g, "budget": b[i], "spent": spent[i],
                            "forecast_total": float(spent[i] + mean[i, :n_rest].sum()),
                            "p10_total": float(q[0, i]), "p50_total": float(q[1, i]), "p90_total": float(q[2, i]),
                            "p_breach": float(p[i]), "expected_breach_date": when,
                            "period_start": p_start, "period_end": p_end - timedelta(days=1)})  # fmt: skip
    return pl.DataFrame(breach_rows, schema={
        "group": pl.String, "budget": pl.Float64, "spent": pl.Float64, "forecast_total": pl.Float64,
        "p10_total": pl.Float64, "p50_total": pl.Float64, "p90_total": pl.Float64, "p_breach": pl.Float64,
        "expected_breach_date": pl.Date, "period_start": pl.Date, "period_end": pl.Date})  # fmt: skip


def check_budget(budget: Any) -> None:
    """Raise :class:`ParameterError` unless ``budget`` is None, an amount >= 0 or a dict of them."""
    values = budget.values() if isinstance(budget, Mapping) else [budget]
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not math.isfinite(v) or v < 0):  # fmt: skip
            raise ParameterError("budget", "a non-negative amount in the bill's currency", v,
                                 "Pass one number, or a {group: amount} dict.")  # fmt: skip


_FIT_SCHEMA = {"group": pl.String, "date": pl.Date, "fitted": pl.Float64, "fitted_lo": pl.Float64,
               "fitted_hi": pl.Float64, "fit_model": pl.String}  # fmt: skip


def _zero_series(
    groups: list[str], h: int, levels: tuple[int, ...], fit_levels: list[int]
) -> tuple[Any, ...]:
    """Series with no spend at all: zero forecasts, zero-width intervals, no backtest."""
    mean = np.zeros((len(groups), h))
    lo = {lv: mean.copy() for lv in set(levels) | set(fit_levels)}
    hi = {lv: mean.copy() for lv in set(levels) | set(fit_levels)}
    return (
        mean,
        lo,
        hi,
        ["zero"] * len(groups),
        _empty_backtest(groups, "zero", levels),
        pl.DataFrame(schema=_FIT_SCHEMA),
    )


def _empty_backtest(groups: list[str], model: str, levels: tuple[int, ...]) -> pl.DataFrame:
    n = len(groups)
    return pl.DataFrame({"group": groups, "model": [model] * n, "chosen": [True] * n, "mase": [None] * n,
                         **{f"coverage_{lv}": [None] * n for lv in levels}, "windows": [0] * n,
                         "horizon": [0] * n, "mase_scale": [None] * n},
                        schema_overrides={"mase": pl.Float64, "windows": pl.Int64, "horizon": pl.Int64,
                                          "mase_scale": pl.String,
                                          **{f"coverage_{lv}": pl.Float64 for lv in levels}})  # fmt: skip


def _merge(parts: list[tuple[list[str], tuple[Any, ...]]], groups: list[str], h: int,
           levels: tuple[int, ...], fit_levels: list[int]) -> tuple[Any, ...]:  # fmt: skip
    """Put the per-part forecasts back in ``groups`` order."""
    if len(parts) == 1 and parts[0][0] == groups:
        return parts[0][1]
    where = {g: i for i, g in enumerate(groups)}
    keys = set(levels) | set(fit_levels)
    mean = np.empty((len(groups), h))
    lo = {lv: np.empty((len(groups), h)) for lv in keys}
    hi = {lv: np.empty((len(groups), h)) for lv in keys}
    chosen = [""] * len(groups)
    for names, (m, lo_p, hi_p, ch, _, _) in parts:
        rows = [where[g] for g in names]
        mean[rows] = m
        for lv in keys:
            lo[lv][rows], hi[lv][rows] = lo_p[lv], hi_p[lv]
        for r, c in zip(rows, ch, strict=True):
            chosen[r] = c
    backtest = pl.concat([p[1][4] for p in parts], how="vertical_relaxed")
    order = pl.DataFrame({"group": groups, "_o": range(len(groups))})
    backtest = (
        backtest.join(order, on="group", how="left").sort("_o", maintain_order=True).drop("_o")
    )
    fitted = pl.concat([p[1][5] for p in parts], how="vertical_relaxed")
    return mean, lo, hi, chosen, backtest, fitted


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
    backtest = _empty_backtest(groups, "recent mean", levels)
    return mean, lo, hi, ["recent mean"] * len(groups), backtest, pl.DataFrame(schema=_FIT_SCHEMA)


def _sf_models(models: Sequence[str]) -> list[Any]:
    try:
        from statsforecast.models import AutoARIMA, AutoETS, SeasonalNaive
    except ImportError as exc:  # pragma: no cover - a dependency
        from aiops_lab.errors import MissingDependencyError

        raise MissingDependencyError("statsforecast", "finops", "Forecasting spend") from exc
    from statsforecast.models import Theta

    made = {"ets": lambda: AutoETS(season_length=SEASON), "arima": lambda: AutoARIMA(season_length=SEASON),
            "theta": lambda: Theta(season_length=SEASON),
            "ets_ana": lambda: AutoETS(season_length=SEASON, model="ANA", alias=MODELS["ets_ana"]),
            "snaive": lambda: SeasonalNaive(season_length=SEASON)}  # fmt: skip
    return [made[m]() for m in models]


def _statistical(data: pl.DataFrame, y: np.ndarray, groups: list[str], h_fit: int, horizon: int,
                 levels: tuple[int, ...], fit_levels: list[int], a_lv: int, models: Sequence[str],
                 windows: int, xp: Any, n_jobs: int = 1) -> tuple[Any, ...]:  # fmt: skip
    from statsforecast import StatsForecast

    n = y.shape[1]
    min_train = 2 * SEASON
    h_bt = min(horizon, max(1, (n - min_train) // max(windows, 1)))
    n_win = max(1, min(windows, (n - min_train) // h_bt))
    sf = StatsForecast(models=_sf_models(models), freq="1d", n_jobs=n_jobs)
    # one fit per series and model at the first origin, carried forward to the others
    cv = sf.cross_validation(df=data, h=h_bt, n_windows=n_win, step_size=h_bt, level=list(levels),
                             refit=False)  # fmt: skip
    cols = [
        MODELS[m] + s
        for m in models
        for s in ("", *(f"-{b}-{lv}" for lv in levels for b in ("lo", "hi")))
    ]
    wide_cv = _wide(cv, ["y", *cols], groups)
    actual = wide_cv["y"]
    # scale: in-sample seasonal-naive MAE of the history before the first origin; where
    # that is (near) zero - a smooth or exactly repeating series - the one-day naive MAE
    first_origin = n - n_win * h_bt
    scale, scale_kind = mase_scale(y[:, :first_origin])
    bt_rows = []
    a_x = from_numpy(actual, xp)
    score: dict[str, np.ndarray] = {}
    for name in models:
        col = MODELS[name]
        pred = from_numpy(wide_cv[col], xp)
        mase = to_numpy(K.mase(xp, a_x, pred, from_numpy(np.nan_to_num(scale, nan=0.0), xp)))
        # ranking: MASE, or the plain MAE where the series has no usable scale
        mae = to_numpy(K.mase(xp, a_x, pred, from_numpy(np.ones(len(groups)), xp)))
        score[name] = np.where(np.isfinite(scale), mase, mae)
        cover = {lv: to_numpy(K.interval_coverage(xp, a_x, from_numpy(wide_cv[f"{col}-lo-{lv}"], xp),
                                                  from_numpy(wide_cv[f"{col}-hi-{lv}"], xp)))
                 for lv in levels}  # fmt: skip
        bt_rows.append(pl.DataFrame({"group": groups, "model": [name] * len(groups),
                                     "mase": np.where(np.isfinite(mase), mase, np.nan),
                                     **{f"coverage_{lv}": np.asarray(cover[lv], dtype=float) for lv in levels},
                                     "windows": [n_win] * len(groups), "horizon": [h_bt] * len(groups),
                                     "mase_scale": scale_kind}).fill_nan(None))  # fmt: skip
    best = _rank(score, models, len(groups))
    # anomalies are judged on a fit that does not copy last week forward: a spike would
    # otherwise come back a week later as a "negative anomaly" of the seasonal naive
    judge = _rank({m: v for m, v in score.items() if m != "snaive"}, [m for m in models if m != "snaive"],
                  len(groups)) if any(m != "snaive" for m in models) else ["snaive"] * len(groups)  # fmt: skip
    judge = [best[i] if best[i] != "snaive" else judge[i] for i in range(len(groups))]
    schema = {"group": pl.String, "model": pl.String, "mase": pl.Float64, "windows": pl.Int64,
              "horizon": pl.Int64, "mase_scale": pl.String, **{f"coverage_{lv}": pl.Float64 for lv in levels}}  # fmt: skip
    picked = pl.DataFrame({"group": groups, "model": best, "chosen": [True] * len(groups)})
    backtest = (
        pl.concat(bt_rows, how="vertical_relaxed")
        .cast(schema)  # type: ignore[arg-type]
        .join(picked, on=["group", "model"], how="left", maintain_order="left")
        .with_columns(pl.col("chosen").fill_null(False))
        .select(
            "group",
            "model",
            "chosen",
            "mase",
            *[f"coverage_{lv}" for lv in levels],
            "windows",
            "horizon",
            "mase_scale",
        )
    )
    fc = sf.forecast(df=data, h=h_fit, level=fit_levels, fitted=True)
    fv = sf.forecast_fitted_values()
    mean = np.empty((len(groups), h_fit))
    lo = {lv: np.empty((len(groups), h_fit)) for lv in fit_levels}
    hi = {lv: np.empty((len(groups), h_fit)) for lv in fit_levels}
    used = [m for m in models if m in best]
    wide_fc = _wide(fc, [MODELS[m] + s for m in used for s in
                         ("", *(f"-{b}-{lv}" for lv in fit_levels for b in ("lo", "hi")))], groups)  # fmt: skip
    chosen_of = np.array(best, dtype=object)
    for name in used:
        col = MODELS[name]
        rows = np.flatnonzero(chosen_of == name)
        mean[rows] = wide_fc[col][rows]
        for lv in fit_levels:
            lo[lv][rows] = wide_fc[f"{col}-lo-{lv}"][rows]
            hi[lv][rows] = wide_fc[f"{col}-hi-{lv}"][rows]
    fitted_parts = []
    for name in models:
        col = MODELS[name]
        sel = [groups[i] for i, j in enumerate(judge) if j == name]
        if not sel:
            continue
        part = fv.filter(pl.col("unique_id").is_in(sel)).select(
            pl.col("unique_id").alias("group"), pl.col("ds").alias("date"), pl.col(col).alias("fitted"),
            pl.col(f"{col}-lo-{a_lv}").alias("fitted_lo"), pl.col(f"{col}-hi-{a_lv}").alias("fitted_hi"),
            pl.lit(name).alias("fit_model"))  # fmt: skip
        if name == "snaive":
            at = {g: i for i, g in enumerate(groups)}
            part = _clean_naive_fit(part, y[[at[g] for g in sel]], sel, _z(a_lv))
        fitted_parts.append(part.with_columns(pl.col("date").cast(pl.Date)))
    fitted = pl.concat(fitted_parts, how="vertical_relaxed").fill_nan(None)
    return mean, lo, hi, best, backtest, fitted


def mase_scale(history: np.ndarray, rel_tol: float = 1e-4) -> tuple[np.ndarray, list[str | None]]:
    """MASE scale per row of ``history`` and which naive forecast gave it.

    The weekly seasonal-naive in-sample MAE (``"seasonal"``); where that is zero or tiny
    (``<= rel_tol`` x the mean absolute spend: an exactly repeating or very smooth series),
    the one-day naive MAE (``"naive"``); where both are, NaN (``None``: MASE is undefined).
    """
    level = np.mean(np.abs(history), axis=1)
    floor = rel_tol * np.maximum(level, np.finfo(float).tiny)
    if history.shape[1] > SEASON:
        seasonal = np.mean(np.abs(history[:, SEASON:] - history[:, :-SEASON]), axis=1)
    else:
        seasonal = np.zeros(history.shape[0])
    naive = (
        np.mean(np.abs(np.diff(history, axis=1)), axis=1)
        if history.shape[1] > 1
        else np.zeros(len(level))
    )
    use_seasonal = seasonal > floor
    use_naive = ~use_seasonal & (naive > floor)
    scale = np.where(use_seasonal, seasonal, np.where(use_naive, naive, np.nan))
    kind: list[str | None] = [
        "seasonal" if s else "naive" if n else None
        for s, n in zip(use_seasonal, use_naive, strict=True)
    ]
    return scale, kind


def _rank(score: Mapping[str, np.ndarray], models: Sequence[str], n: int) -> list[str]:
    """Per series, the model with the lowest finite score (the first model when none is finite)."""
    best, best_score = [models[0]] * n, np.full(n, np.inf)
    for name in models:
        s = np.where(np.isfinite(score[name]), score[name], np.inf)
        better = s < best_score
        best_score = np.where(better, s, best_score)
        best = [name if b else old for b, old in zip(better, best, strict=True)]
    return best


def _clean_naive_fit(
    part: pl.DataFrame, y: np.ndarray, groups: list[str], z: float
) -> pl.DataFrame:
    """A seasonal-naive in-sample fit whose reference skips days already judged anomalous.

    Walking forward, day ``t`` is compared with the cleaned value of ``t - 7``; a day outside
    ``+- z * sigma`` is replaced by its reference before later days look back at it, so a
    spike is not copied a week forward. ``sigma`` is a robust spread of the week-on-week
    changes (1.4826 x their median absolute deviation), which the spikes do not inflate.
    """
    n = y.shape[1]
    rows = []
    for k, g in enumerate(groups):
        series = y[k]
        diffs = series[SEASON:] - series[:-SEASON]
        mad = np.median(np.abs(diffs - np.median(diffs))) if diffs.size else 0.0
        half = z * 1.4826 * mad
        tol = 1e-9 * max(float(np.mean(np.abs(series))), 1.0)
        clean = series.copy()
        fit = np.full(n, np.nan)
        for t in range(SEASON, n):
            ref = clean[t - SEASON]
            fit[t] = ref
            if abs(series[t] - ref) > half + tol:
                clean[t] = ref
        rows.append(pl.DataFrame({"group": [g] * n, "fitted": fit, "fitted_lo": fit - half,
                                  "fitted_hi": fit + half, "_i": np.arange(n)}))  # fmt: skip
    made = pl.concat(rows)
    indexed = part.sort("group", "date").with_columns(_i=pl.int_range(pl.len()).over("group"))
    return indexed.drop("fitted", "fitted_lo", "fitted_hi").join(made, on=["group", "_i"], how="left").select(
        "group", "date", "fitted", "fitted_lo", "fitted_hi", "fit_model")  # fmt: skip


def _drivers(base: pl.DataFrame, keys: pl.DataFrame, dims: list[str], cost: str) -> pl.DataFrame:
    """For each flagged ``(group, date)`` of ``keys``, the dimension values that moved most.

    Per dimension, the value whose spend that day differs most from its median over the
    28 days before (the days it had charges; a value absent on one side counts 0).
    Returns ``group, date, drivers`` (``"dim=value (+delta); ..."``, up to 3 dimensions).
    """
    parts = []
    for k, d in enumerate(dims):
        per = base.group_by("_group", dimension(base, d).alias("value"), "_date").agg(
            pl.col(cost).sum().alias("c")
        )
        today = keys.join(per, left_on=["group", "date"], right_on=["_group", "_date"], how="inner").select(
            "group", "date", "value", "c")  # fmt: skip
        before = (
            keys.join(per, left_on="group", right_on="_group", how="inner")
            .filter((pl.col("_date") < pl.col("date")) & (pl.col("_date") >= pl.col("date") - timedelta(days=28)))
            .group_by("group", "date", "value")
            .agg(pl.col("c").median().alias("base"))
        )  # fmt: skip
        moved = (
            today.join(before, on=["group", "date", "value"], how="full", coalesce=True)
            .with_columns(pl.col("c").fill_null(0.0), pl.col("base").fill_null(0.0))
            .with_columns(delta=pl.col("c") - pl.col("base"))
            .sort(pl.col("delta").abs(), "value", descending=[True, False])
            .group_by("group", "date", maintain_order=True)
            .first()
        )
        parts.append(moved.select("group", "date", pl.lit(k).alias("_k"),
                                  text=pl.format("{}={} ({})", pl.lit(d), "value",
                                                 pl.col("delta").map_batches(_signed, return_dtype=pl.String))))  # fmt: skip
    if not parts:
        return keys.with_columns(drivers=pl.lit(""))
    texts = (
        pl.concat(parts)
        .sort("_k")
        .group_by("group", "date", maintain_order=True)
        .agg(pl.col("text").head(3).str.join("; ").alias("drivers"))
    )
    return keys.join(texts, on=["group", "date"], how="left").with_columns(
        pl.col("drivers").fill_null("")
    )


def _signed(values: pl.Series) -> pl.Series:
    return pl.Series([f"{v:+,.0f}" for v in values.to_list()], dtype=pl.String)


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
    base = base.with_columns((dimension(base, by) if by else pl.lit(TOTAL)).alias("_group"))
    keys = flagged.select("group", "date").unique(maintain_order=True)
    named = _drivers(base, keys, dims, cost)
    out = flagged.join(named, on=["group", "date"], how="left", maintain_order="left").select(
        "date", "group", actual="y", expected="expected", lo="fitted_lo", hi="fitted_hi", excess="excess",
        beyond="beyond", drivers="drivers")  # fmt: skip
    return out.cast(schema)  # type: ignore[arg-type]


_ = InputError

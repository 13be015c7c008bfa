"""``llm_usage``: the LLM service view of token logs - volume, tokens, latency, errors, cost.

Per group (model and feature by default) and per time window: requests, tokens per
request, latency percentiles, error rate, cost per request and per 1k tokens; the same
per model over the whole log, which shows the cost / latency trade-off between models;
and the windows that cross an alert threshold.

Percentiles follow ``numpy.percentile``'s default ("linear", Hyndman & Fan type 7) and
are computed by :func:`aiops_lab.finops.kernels.grouped_percentiles` on the array backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, get_namespace, to_numpy
from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, ParameterError
from aiops_lab.finops import kernels as K
from aiops_lab.result import Result

if TYPE_CHECKING:
    import altair as alt

    from aiops_lab.backend import BackendInfo

__all__ = ["LlmUsageReview", "llm_usage"]

PERCENTILES = (50, 95, 99)
_METRICS = ["requests", "errors", "error_rate", "input_tokens", "output_tokens",
            "input_tokens_per_request", "output_tokens_per_request", "latency_p50_s", "latency_p95_s",
            "latency_p99_s", "cost", "cost_per_request", "cost_per_1k_tokens", "unpriced"]  # fmt: skip


def llm_usage(
    usage: Any,
    *,
    by: str | Sequence[str] = ("model", "feature"),
    window: str = "1d",
    backend: str | None = None,
    model: str = "request",
    max_error_rate: float = 0.05,
    max_p95_latency_s: float | None = None,
    cost_jump: float | None = 1.0,
    baseline_windows: int = 7,
    min_requests: int = 20,
    alpha: float = 0.01,
    alert_last: int | None = None,
) -> LlmUsageReview:
    """Review LLM calls: requests, tokens, latency, errors and cost per group and window.

    Parameters
    ----------
    usage
        Calls from :func:`aiops_lab.finops.read_token_usage` (priced by
        :func:`~aiops_lab.finops.price_tokens` or not: unpriced frames are priced here),
        or a path to such a log.
    by
        Columns to group by. ``"model"`` is the model the caller asked for
        (``request_model``, else the response model) with ``model="request"``, so that a
        failed call - which has no response model - counts against the model that failed;
        ``model="response"`` groups by the response model instead.
    window
        A polars duration (``"1h"``, ``"1d"``, ``"1w"``): calls are grouped by the window
        their start falls in (UTC).
    backend
        ``"auto"``, ``"numpy"`` or ``"cupy"`` for the percentile kernel.
    max_error_rate
        A window is flagged when its error rate is above this share *and* a one-sided
        binomial test rejects "the true rate is at most ``max_error_rate``" at ``alpha``
        (so two failures out of ten calls are not an incident).
    max_p95_latency_s
        Flag windows whose p95 latency is above this many seconds (None: not checked).
    cost_jump
        Flag windows whose cost per request, or cost, is above ``(1 + cost_jump)`` x the
        median of the group's ``baseline_windows`` windows before (None: not checked).
    min_requests
        Latency and cost checks skip windows with fewer calls (too few to judge).
    alert_last
        Only flags in the last this many windows raise ``summary["alert"]`` (None: any).

    Returns
    -------
    LlmUsageReview

    Examples
    --------
    >>> review = llm_usage(price_tokens(read_token_usage("spans.jsonl")))  # doctest: +SKIP
    >>> review.models  # doctest: +SKIP
    """
    t0 = time.perf_counter()
    keys = [by] if isinstance(by, str) else list(by)
    if not keys:
        raise ParameterError("by", "one or more column names", by)
    if model not in ("request", "response"):
        raise ParameterError("model", "'request' or 'response'", model)
    if not 0 <= max_error_rate < 1:
        raise ParameterError("max_error_rate", "a share in [0, 1)", max_error_rate)
    if max_p95_latency_s is not None and not max_p95_latency_s > 0:
        raise ParameterError(
            "max_p95_latency_s", "a positive number of seconds, or None", max_p95_latency_s
        )
    if cost_jump is not None and not cost_jump > 0:
        raise ParameterError(
            "cost_jump", "a positive relative increase (0.5 = +50 %), or None", cost_jump
        )
    if not isinstance(baseline_windows, int) or baseline_windows < 1:
        raise ParameterError("baseline_windows", "a whole number >= 1", baseline_windows)
    if not 0 < alpha < 1:
        raise ParameterError("alpha", "a significance level in (0, 1)", alpha)
    try:
        pl.select(pl.lit(0).cast(pl.Datetime("us", "UTC")).dt.truncate(window))
    except Exception as exc:
        raise ParameterError(
            "window", "a polars duration such as '1h', '1d' or '1w'", window
        ) from exc
    calls = _prepare(usage, keys, model, window)
    xp, info = get_namespace(backend)

    windows = _aggregate(calls, [*keys, "window_start"], xp).sort([*keys, "window_start"])
    groups = _aggregate(calls, keys, xp).sort("cost", descending=True, nulls_last=True)
    models = _aggregate(calls, ["model"], xp).sort("cost_per_request", nulls_last=True)
    total_cost = models["cost"].sum()
    models = models.with_columns(
        cost_share=pl.col("cost") / total_cost if total_cost else pl.lit(None, dtype=pl.Float64),
        pareto=_pareto(models["cost_per_request"].to_numpy(), models["latency_p95_s"].to_numpy()),
    )
    windows = windows.with_columns(group=_label(keys))
    groups = groups.with_columns(group=_label(keys))
    flags = _flags(
        windows,
        keys,
        max_error_rate,
        max_p95_latency_s,
        cost_jump,
        baseline_windows,
        alpha,
        min_requests,
    )
    params = {"by": keys, "window": window, "model": model, "max_error_rate": max_error_rate,
              "max_p95_latency_s": max_p95_latency_s, "cost_jump": cost_jump,
              "baseline_windows": baseline_windows, "min_requests": min_requests, "alpha": alpha,
              "alert_last": alert_last}  # fmt: skip
    return LlmUsageReview(groups=groups, windows=windows, models=models, flags=flags, params=params,
                          backend=info, elapsed_s=time.perf_counter() - t0,
                          n_unpriced=int((~calls["priced"]).sum()))  # fmt: skip


def _prepare(usage: Any, keys: list[str], model: str, window: str) -> pl.DataFrame:
    from aiops_lab.finops.sources import price_tokens, read_token_usage

    frame = usage if isinstance(usage, pl.DataFrame) else read_token_usage(usage)
    if frame.height == 0:
        raise EmptyInputError("The token log has no calls to review.")
    for column in ("timestamp", "status", "input_tokens", "output_tokens"):
        if column not in frame.columns:
            raise ColumnNotFoundError(column, "the token usage frame", frame.columns)
    if "cost" not in frame.columns:
        frame = price_tokens(frame)
    if model == "request" and "request_model" in frame.columns:
        frame = frame.with_columns(model=pl.coalesce("request_model", "model"))
    for k in keys:
        if k not in frame.columns:
            raise ColumnNotFoundError(k, "the token usage frame", frame.columns)
    latency = (
        pl.col("latency_s") if "latency_s" in frame.columns else pl.lit(None, dtype=pl.Float64)
    )
    return frame.with_columns(
        window_start=pl.col("timestamp").dt.truncate(window),
        _error=(pl.col("status") == "error").fill_null(False),
        _latency=latency.cast(pl.Float64),
        priced=pl.col("priced") if "priced" in frame.columns else pl.col("cost").is_not_null(),
    ).with_columns([pl.col(k).cast(pl.String).fill_null("(none)") for k in keys])


def _aggregate(calls: pl.DataFrame, keys: list[str], xp: Any) -> pl.DataFrame:
    tokens = pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)
    table = (
        calls.group_by(keys, maintain_order=True)
        .agg(
            requests=pl.len(),
            errors=pl.col("_error").sum(),
            input_tokens=pl.col("input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
            priced_tokens=tokens.filter(pl.col("priced")).sum(),
            priced_requests=pl.col("priced").sum(),
            cost=pl.col("cost").sum(),
            unpriced=(~pl.col("priced")).sum(),
        )
        .with_columns(
            error_rate=pl.col("errors") / pl.col("requests"),
            input_tokens_per_request=pl.col("input_tokens") / pl.col("requests"),
            output_tokens_per_request=pl.col("output_tokens") / pl.col("requests"),
            # cost per request and per 1k tokens over the calls that could be priced
            cost_per_request=pl.when(pl.col("priced_requests") > 0).then(
                pl.col("cost") / pl.col("priced_requests")
            ),
            cost_per_1k_tokens=pl.when(pl.col("priced_tokens") > 0).then(
                1000.0 * pl.col("cost") / pl.col("priced_tokens")
            ),
        )
    )
    # latency percentiles on the array backend: one sort for every group at once
    ids = calls.join(table.select(keys).with_row_index("_gid"), on=keys, how="left")
    ok = ids.filter(pl.col("_latency").is_not_null() & pl.col("_latency").is_finite())
    pct = to_numpy(K.grouped_percentiles(
        xp, from_numpy(ok["_gid"].cast(pl.Int64).to_numpy(), xp), from_numpy(ok["_latency"].to_numpy(), xp),
        table.height, from_numpy(np.array(PERCENTILES, dtype=float), xp)))  # fmt: skip
    table = table.with_columns(
        [pl.Series(f"latency_p{q}_s", pct[:, k]).fill_nan(None) for k, q in enumerate(PERCENTILES)]
    )
    return table.select(*keys, *_METRICS)


def _label(keys: list[str]) -> pl.Expr:
    return pl.concat_str([pl.col(k) for k in keys], separator=" / ")


def _pareto(cost: np.ndarray, latency: np.ndarray) -> pl.Series:
    """True for models no other model beats on both cost per request and p95 latency."""
    out = []
    for i in range(len(cost)):
        if not (np.isfinite(cost[i]) and np.isfinite(latency[i])):
            out.append(None)
            continue
        dominated = any(
            np.isfinite(cost[j]) and np.isfinite(latency[j]) and cost[j] <= cost[i]
            and latency[j] <= latency[i] and (cost[j] < cost[i] or latency[j] < latency[i])
            for j in range(len(cost)) if j != i
        )  # fmt: skip
        out.append(not dominated)
    return pl.Series("pareto", out, dtype=pl.Boolean)


def _flags(windows: pl.DataFrame, keys: list[str], max_error_rate: float, max_p95: float | None,
           cost_jump: float | None, baseline: int, alpha: float, min_requests: int) -> pl.DataFrame:  # fmt: skip
    from scipy.stats import binom

    schema = {"window_start": pl.Datetime("us", "UTC"), "group": pl.String, "metric": pl.String,
              "value": pl.Float64, "threshold": pl.Float64, "detail": pl.String}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for part in windows.partition_by(keys, maintain_order=True):
        part = part.sort("window_start")
        cpr = part["cost_per_request"].to_numpy().astype(float)
        cost = part["cost"].to_numpy().astype(float)
        for i, r in enumerate(part.iter_rows(named=True)):
            n, k = r["requests"], r["errors"]
            if r["error_rate"] > max_error_rate:
                p = float(binom.sf(k - 1, n, max_error_rate))
                if p < alpha:
                    rows.append({"window_start": r["window_start"], "group": r["group"], "metric": "error_rate",
                                 "value": r["error_rate"], "threshold": max_error_rate,
                                 "detail": f"{k} of {n} calls failed (binomial p = {p:.2g})"})  # fmt: skip
            if n < min_requests:
                continue
            if (
                max_p95 is not None
                and r["latency_p95_s"] is not None
                and r["latency_p95_s"] > max_p95
            ):
                rows.append({"window_start": r["window_start"], "group": r["group"], "metric": "latency_p95_s",
                             "value": r["latency_p95_s"], "threshold": max_p95,
                             "detail": f"p95 latency {r['latency_p95_s']:.1f} s over {n} calls"})  # fmt: skip
            if cost_jump is None or i == 0:
                continue
            lo = max(0, i - baseline)
            for name, values in (("cost_per_request", cpr), ("cost", cost)):
                before = values[lo:i]
                before = before[np.isfinite(before)]
                if not before.size or not np.isfinite(values[i]):
                    continue
                ref = float(np.median(before))
                if ref > 0 and values[i] > (1.0 + cost_jump) * ref:
                    rows.append({"window_start": r["window_start"], "group": r["group"], "metric": name,
                                 "value": float(values[i]), "threshold": (1.0 + cost_jump) * ref,
                                 "detail": f"{values[i] / ref:.2f}x the median of the {before.size} "
                                           f"window(s) before ({ref:,.4g})"})  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort("window_start", "group", "metric")


class LlmUsageReview(Result):
    """The outcome of :func:`llm_usage`.

    Attributes
    ----------
    table : polars.DataFrame
        Per group over the whole log: ``requests, errors, error_rate, input_tokens,
        output_tokens, input/output_tokens_per_request, latency_p50/p95/p99_s, cost,
        cost_per_request, cost_per_1k_tokens, unpriced`` and ``group`` (a label).
    windows : polars.DataFrame
        The same per group and ``window_start``.
    models : polars.DataFrame
        The same per model, with ``cost_share`` and ``pareto`` (no other model is both
        cheaper per request and faster at p95): the cost / latency trade-off.
    flags : polars.DataFrame
        Windows over a threshold: ``window_start, group, metric, value, threshold, detail``.
    """

    analysis = "llm"
    default_chart = "tradeoff"

    def __init__(self, *, groups: pl.DataFrame, windows: pl.DataFrame, models: pl.DataFrame,
                 flags: pl.DataFrame, params: dict[str, Any], backend: BackendInfo, elapsed_s: float,
                 n_unpriced: int = 0) -> None:  # fmt: skip
        self.groups, self.windows, self.models, self.flags = groups, windows, models, flags
        self._params, self.backend, self.elapsed_s = params, backend, elapsed_s
        self.n_unpriced = n_unpriced
        self._summary = self._make_summary()

    @property
    def table(self) -> pl.DataFrame:
        return self.groups

    def tables(self) -> dict[str, pl.DataFrame]:
        return {
            "table": self.groups,
            "windows": self.windows,
            "models": self.models,
            "flags": self.flags,
        }

    def _make_summary(self) -> dict[str, Any]:
        m = self.models
        requests = int(m["requests"].sum())
        cost = float(m["cost"].sum() or 0.0)
        starts = self.windows["window_start"].unique().sort()
        flags = self.flags
        last = self._params.get("alert_last")
        if last is not None and starts.len():
            cut = starts[max(0, starts.len() - int(last))]
            flags = flags.filter(pl.col("window_start") >= cut)
        out: dict[str, Any] = {
            "alert": bool(flags.height),
            "requests": requests,
            "cost": cost,
            "cost_per_request": cost / requests if requests else None,
            "error_rate": float(m["errors"].sum()) / requests if requests else None,
            "n_models": m.height,
            "n_groups": self.groups.height,
            "n_windows": starts.len(),
            "n_flags": flags.height,
            "unpriced_calls": self.n_unpriced,
        }
        priced = m.filter(pl.col("cost_per_request").is_not_null())
        if priced.height:
            cheap, dear = priced.row(0, named=True), priced.row(priced.height - 1, named=True)
            out["cheapest_model"], out["costliest_model"] = cheap["model"], dear["model"]
            out["cost_ratio"] = (dear["cost_per_request"] / cheap["cost_per_request"]
                                 if cheap["cost_per_request"] else None)  # fmt: skip
        headline = f"{requests:,} LLM calls, {cost:,.2f} spent ({out['cost_per_request'] or 0:,.4f} per call)"
        if priced.height > 1 and out.get("cost_ratio"):
            headline += (f"; {out['costliest_model']} costs {out['cost_ratio']:,.0f}x "
                         f"{out['cheapest_model']} per call")  # fmt: skip
        if flags.height:
            worst = _worst(flags)
            headline += f"; {flags.height} flagged window(s), e.g. {worst}"
        if self.n_unpriced:
            headline += f"; {self.n_unpriced} call(s) unpriced"
        out["backend"] = self.backend.name
        out["elapsed_s"] = round(self.elapsed_s, 3)
        return {"headline": headline, **out}

    def metrics(self) -> dict[str, float]:
        out = super().metrics()
        for r in self.models.iter_rows(named=True):
            key = "".join(ch if ch.isalnum() or ch in "_-./" else "_" for ch in str(r["model"]))
            for name in ("cost_per_request", "latency_p95_s", "error_rate"):
                if r[name] is not None and math.isfinite(r[name]):
                    out[f"model.{key}.{name}"] = float(r[name])
        return out

    def chart(self, kind: str | None = None, **kwargs: Any) -> alt.TopLevelMixin:
        """Altair chart: "tradeoff" (cost per call vs p95 latency per model) or "timeline"."""
        kind = kind or self.default_chart
        if kind == "tradeoff":
            return tradeoff_chart(self, **kwargs)
        if kind == "timeline":
            return timeline_chart(self, **kwargs)
        raise ParameterError("kind", "'tradeoff' or 'timeline'", kind)


def _worst(flags: pl.DataFrame) -> str:
    r = (
        flags.with_columns(ratio=pl.col("value") / pl.col("threshold"))
        .sort("ratio", descending=True)
        .row(0, named=True)
    )
    value = f"{r['value']:.1%}" if r["metric"] == "error_rate" else f"{r['value']:,.4g}"
    return f"{r['group']} {r['metric']} {value} on {r['window_start']:%Y-%m-%d %H:%M}"


def tradeoff_chart(review: LlmUsageReview) -> alt.TopLevelMixin:
    """Cost per request against p95 latency, one point per model, sized by requests."""
    import altair as alt

    frame = review.models.filter(pl.col("cost_per_request").is_not_null())
    base = alt.Chart(frame).encode(
        x=alt.X(
            "cost_per_request:Q", title="cost per request (USD, log)", scale=alt.Scale(type="log")
        ),
        y=alt.Y("latency_p95_s:Q", title="p95 latency (s)"),
    )
    points = base.mark_circle(opacity=0.8).encode(
        size=alt.Size("requests:Q", title="requests"), color=alt.Color("model:N", legend=None),
        tooltip=["model", "requests", alt.Tooltip("cost_per_request:Q", format=",.5f"),
                 alt.Tooltip("cost_per_1k_tokens:Q", format=",.5f"), alt.Tooltip("latency_p50_s:Q", format=",.2f"),
                 alt.Tooltip("latency_p95_s:Q", format=",.2f"), alt.Tooltip("error_rate:Q", format=".2%"),
                 "pareto"],
    )  # fmt: skip
    labels = base.mark_text(align="left", dx=9, fontSize=11).encode(text="model:N")
    return alt.layer(points, labels).properties(
        title="Cost per request vs p95 latency, by model", width=520, height=300
    )


def timeline_chart(
    review: LlmUsageReview, *, groups: Sequence[str] | None = None
) -> alt.TopLevelMixin:
    """Cost per request, p95 latency and error rate per window, one line per group."""
    import altair as alt

    frame = review.windows
    if groups is not None:
        frame = frame.filter(pl.col("group").is_in(list(groups)))
    names = {"cost_per_request": "cost per request", "latency_p95_s": "p95 latency (s)",
             "error_rate": "error rate"}  # fmt: skip
    long = (
        frame.select("window_start", "group", *names)
        .unpivot(index=["window_start", "group"], variable_name="metric", value_name="value")
        .with_columns(pl.col("metric").replace_strict(names))
    )
    return (
        alt.Chart(long)
        .mark_line(strokeWidth=1.2)
        .encode(
            x=alt.X("window_start:T", title=None),
            y=alt.Y("value:Q", title=None),
            color=alt.Color("group:N", title=None),
            tooltip=["window_start:T", "group", "metric", alt.Tooltip("value:Q", format=",.4g")],
        )
        .properties(width=620, height=120)
        .facet(row=alt.Row("metric:N", title=None, sort=list(names.values())))
        .resolve_scale(y="independent")
        .properties(title="LLM calls over time")
    )

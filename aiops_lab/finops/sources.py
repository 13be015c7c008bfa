"""Read cloud bills in FOCUS and LLM call logs into validated polars frames, and price tokens.

``read_focus`` returns every column of the file, with the FOCUS 1.0-1.2 columns typed
(``FOCUS_COLUMNS``; known columns missing from the file are added as nulls):

- ``NULL``, ``null``, ``None``, ``N/A`` and empty strings are null; text is stripped.
- Cost, price and quantity columns are Float64 (amounts in ``BillingCurrency``). A value
  that is not a number raises :class:`~aiops_lab.errors.InputError` naming row and column.
- Date-times are ``Datetime(us, UTC)``; zone-less times are UTC, as FOCUS requires.
- Enum columns (``ChargeCategory``, ``ChargeFrequency``, ``ServiceCategory``,
  ``CommitmentDiscountStatus``, ``PricingCategory`` ...) take the spec's spelling,
  whatever the case in the file (``usage`` -> ``Usage``, ``one time`` -> ``One-Time``).
- ``Tags`` (a JSON object per row) becomes a list of ``{key, value}`` structs; use
  :func:`aiops_lab.finops.tag` or ``by="tag:team"`` in the analyses to read one key.
- Provider extension columns (``x_...``) and other columns are kept as they are.
- Column names match ignoring case; the FOCUS 1.0-1.2 mandatory columns the analyses
  need (``FOCUS_MANDATORY``) must be present, or the error names the missing ones.

``read_token_usage`` returns ``TOKEN_SCHEMA`` (one row per LLM call) followed by any
other attributes of the calls, as strings:

================= ================= ===================================================
timestamp         Datetime(us, UTC) call start
end_timestamp     Datetime(us, UTC) call end (null when unknown)
latency_s         Float64           seconds (from a latency column or end - start)
provider          String            ``gen_ai.provider.name`` (or legacy ``gen_ai.system``)
request_model     String            ``gen_ai.request.model``
response_model    String            ``gen_ai.response.model``
model             String            the response model, else the requested one
operation         String            ``gen_ai.operation.name`` ("chat", "embeddings" ...)
input_tokens      Int64             ``gen_ai.usage.input_tokens`` (legacy ``prompt_tokens``)
output_tokens     Int64             ``gen_ai.usage.output_tokens``
cache_read_tokens Int64             cached input tokens, when logged
status            String            "ok" or "error"
error_type        String            ``error.type`` (null when the call succeeded)
team, feature     String            any attribute whose last dotted part is team / feature
trace_id, span_id String
================= ================= ===================================================
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import polars as pl

from aiops_lab.errors import EmptyInputError, InputError, ParameterError
from aiops_lab.finops._schema import (
    COST_COLUMNS,
    FOCUS_COLUMNS,
    FOCUS_ENUMS,
    FOCUS_MANDATORY,
    NULL_TEXT,
    TAGS,
    TOKEN_SCHEMA,
    UTC,
    PathLike,
    canonical_key,
    existing,
    is_parquet,
    utc_times,
    warn,
)

__all__ = [
    "COST_COLUMNS",
    "FOCUS_COLUMNS",
    "FOCUS_MANDATORY",
    "TOKEN_SCHEMA",
    "price_tokens",
    "read_focus",
    "read_token_usage",
    "tag",
    "token_spend_as_focus",
    "unpriced",
]


# --------------------------------------------------------------------------- FOCUS


def read_focus(path: PathLike) -> pl.DataFrame:
    """Read a FOCUS 1.0-1.2 cost and usage export (CSV, gzip CSV or Parquet).

    Parameters
    ----------
    path
        The export. The format is recognised from the content, not the name.

    Returns
    -------
    polars.DataFrame
        One row per charge; FOCUS columns typed as described in this module's docs.

    Examples
    --------
    >>> bill = read_focus("datasets/finops/focus1.0_sample_1000rows.csv")
    >>> bill["EffectiveCost"].sum()  # doctest: +SKIP
    """
    p = existing(path, "FOCUS file")
    where = f"FOCUS file {str(p)!r}"
    try:
        if is_parquet(p):
            raw = pl.read_parquet(p)
        else:
            raw = pl.read_csv(_text_bytes(p), infer_schema=False, truncate_ragged_lines=False)
    except pl.exceptions.PolarsError as exc:
        msg = f"Could not read the {where}: {exc}"
        raise InputError(msg) from exc
    raw = _canonical_names(raw)
    if "ProviderName" not in raw.columns and "ServiceProviderName" in raw.columns:
        raw = raw.with_columns(pl.col("ServiceProviderName").alias("ProviderName"))
    missing = [c for c in FOCUS_MANDATORY if c not in raw.columns]
    if missing:
        shown = ", ".join(raw.columns[:30])
        msg = (
            f"The {where} lacks the mandatory FOCUS column(s) {', '.join(missing)} "
            f"(FOCUS 1.0-1.2 require them). Its columns are: {shown}. "
            "Export the bill with the FOCUS schema, or rename the provider's columns."
        )
        raise InputError(msg)
    if raw.height == 0:
        msg = f"The {where} has a header but no rows."
        raise EmptyInputError(msg)
    frame = raw.with_columns(
        [_null_text(pl.col(c)) for c, t in raw.schema.items() if t == pl.String]
    )
    frame = frame.with_row_index("_row", offset=2)  # CSV line numbers (header is line 1)
    typed = []
    for column, dtype in FOCUS_COLUMNS.items():
        if column not in frame.columns:
            typed.append(pl.lit(None, dtype=dtype).alias(column))
        elif column == "Tags":
            continue
        elif dtype == pl.Float64():
            typed.append(pl.col(column).cast(pl.Float64, strict=False))
        elif dtype == UTC:
            typed.append(_to_utc(frame, column))
    frame = _check_numbers(frame, where)
    frame = frame.with_columns(typed)
    frame = frame.with_columns(_enum(frame, c, values) for c, values in FOCUS_ENUMS.items())
    frame = frame.with_columns(_tags(frame, where))
    _check_times(frame, where)
    known = [c for c in FOCUS_COLUMNS]
    extra = [c for c in frame.columns if c not in FOCUS_COLUMNS and c != "_row"]
    return frame.select(known + extra)


def tag(key: str) -> pl.Expr:
    """A polars expression: the value of tag ``key`` in ``Tags`` (null where absent).

    >>> bill.with_columns(team=tag("team"))  # doctest: +SKIP
    """
    values = pl.col("Tags").list.eval(
        pl.element().filter(pl.element().struct.field("key") == key).struct.field("value")
    )
    return values.list.first().alias(f"tag:{key}")


def _text_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.removeprefix(b"\xef\xbb\xbf")


def _canonical_names(frame: pl.DataFrame) -> pl.DataFrame:
    known = {c.lower(): c for c in FOCUS_COLUMNS} | {"serviceprovidername": "ServiceProviderName"}
    rename: dict[str, str] = {}
    for name in frame.columns:
        clean = name.strip().strip("\ufeff").strip()
        target = known.get(clean.lower(), clean)
        if target != name:
            rename[name] = target
    if len(set(rename.values()) | (set(frame.columns) - set(rename))) < frame.width:
        dupes = sorted({c for c in rename.values() if list(rename.values()).count(c) > 1})
        msg = f"Columns {dupes} appear more than once (names are matched ignoring case)."
        raise InputError(msg)
    return frame.rename(rename)


def _null_text(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped.is_in(NULL_TEXT)).then(None).otherwise(stripped).name.keep()


def _check_numbers(frame: pl.DataFrame, where: str) -> pl.DataFrame:
    for column, dtype in FOCUS_COLUMNS.items():
        if dtype != pl.Float64() or column not in frame.columns:
            continue
        if frame.schema[column] != pl.String:
            continue
        bad = frame.filter(
            pl.col(column).is_not_null() & pl.col(column).cast(pl.Float64, strict=False).is_null()
        )
        if bad.height:
            row, value = bad["_row"][0], bad[column][0]
            msg = (
                f"The {where}, row {row}: column {column!r} holds {value!r}, not a number "
                f"({bad.height} row(s) like it). Costs and quantities must be plain decimals "
                "such as 12.50, without currency symbols or thousands separators."
            )
            raise InputError(msg)
    return frame


def _to_utc(frame: pl.DataFrame, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        col = pl.col(column).cast(pl.Datetime("us", dtype.time_zone))
        if dtype.time_zone is None:
            return col.dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return pl.col(column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return utc_times(pl.col(column).cast(pl.String)).alias(column)


def _check_times(frame: pl.DataFrame, where: str) -> None:
    for column in (
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingPeriodStart",
        "BillingPeriodEnd",
    ):
        bad = frame.filter(pl.col(column).is_null())
        if bad.height:
            msg = (
                f"The {where}, row {bad['_row'][0]}: column {column!r} is empty or not a date-time "
                f"({bad.height} row(s) like it). FOCUS date-times look like 2024-09-01T00:00:00Z."
            )
            raise InputError(msg)


def _enum(frame: pl.DataFrame, column: str, values: tuple[str, ...]) -> pl.Expr:
    canon = {canonical_key(v): v for v in values}
    if frame.schema[column] != pl.String:
        return pl.col(column)
    seen = frame[column].drop_nulls().unique().to_list()
    mapping = {v: canon.get(canonical_key(v), v) for v in seen}
    return pl.col(column).replace(mapping)


def _tag_list(text: str, where: str) -> list[dict[str, str]]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"The {where}: a Tags value is not valid JSON ({exc.msg}): {text[:80]!r}."
        raise InputError(msg) from exc
    if not isinstance(obj, dict):
        msg = f"The {where}: a Tags value is JSON but not an object of key-value pairs: {text[:80]!r}."
        raise InputError(msg)
    return [{"key": str(k), "value": _tag_value(v)} for k, v in obj.items()]


def _tag_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _tags(frame: pl.DataFrame, where: str) -> pl.Expr:
    dtype = frame.schema["Tags"]
    if dtype == TAGS:
        return pl.col("Tags")
    if isinstance(dtype, pl.Struct):  # Parquet exports may store the tags as a struct
        return pl.col("Tags").map_elements(
            lambda s: [{"key": k, "value": _tag_value(v)} for k, v in s.items() if v is not None],
            return_dtype=TAGS,
        )
    if isinstance(dtype, pl.List):  # map-like: a list of {key, value}
        return pl.col("Tags").cast(TAGS)
    text = frame["Tags"].cast(pl.String)
    seen = text.drop_nulls().unique().to_list()
    parsed = {t: _tag_list(t, where) for t in seen}
    lookup = pl.DataFrame(
        {"_text": list(parsed), "Tags": pl.Series([parsed[k] for k in parsed], dtype=TAGS)}
    )
    joined = pl.DataFrame({"_text": text}).join(
        lookup, on="_text", how="left", maintain_order="left"
    )
    return joined["Tags"].cast(TAGS)


# --------------------------------------------------------------------------- token logs

_ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("start_time", "startTimeUnixNano", "start_time_unix_nano", "timestamp", "time", "start", "ts"),
    "end_timestamp": ("end_time", "endTimeUnixNano", "end_time_unix_nano", "end_timestamp", "end"),
    "provider": ("gen_ai.provider.name", "gen_ai.system", "provider"),
    "request_model": ("gen_ai.request.model", "request_model", "model"),
    "response_model": ("gen_ai.response.model", "response_model"),
    "operation": ("gen_ai.operation.name", "operation"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "input_tokens", "prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "output_tokens", "completion_tokens"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens", "cache_read_tokens"),
    "error_type": ("error.type", "error_type"),
    "status": ("status", "status_code", "otel.status_code"),
    "trace_id": ("trace_id", "traceId", "context.trace_id"),
    "span_id": ("span_id", "spanId", "context.span_id"),
}  # fmt: skip
_LATENCY = (("latency_s", 1.0), ("duration_s", 1.0), ("gen_ai.client.operation.duration", 1.0),
            ("latency_ms", 1e-3), ("duration_ms", 1e-3))  # fmt: skip
_SKIP = {
    "name",
    "kind",
    "parent_id",
    "parentSpanId",
    "events",
    "links",
    "status_message",
    "resource",
}


def read_token_usage(path: PathLike) -> pl.DataFrame:
    """Read LLM call logs: OpenTelemetry GenAI spans as JSON lines, or a flat CSV / Parquet.

    Each JSON line is one span (or one log record). Attributes may sit under an
    ``attributes`` object (a plain object, or OTLP's list of ``{key, value}``) or at
    the top level as flat keys; start / end times may be ISO text or Unix nanoseconds.
    A flat CSV or Parquet uses the same names (``gen_ai.request.model`` ...) or the
    short ones of ``TOKEN_SCHEMA``. Gzip files are read as they are.

    Returns
    -------
    polars.DataFrame
        ``TOKEN_SCHEMA`` and then every other attribute (as strings), sorted by time.

    Examples
    --------
    >>> calls = read_token_usage("datasets/finops/genai_spans.jsonl.gz")  # doctest: +SKIP
    """
    p = existing(path, "token log")
    where = f"token log {str(p)!r}"
    if is_parquet(p):
        raw = pl.read_parquet(p)
    else:
        data = _text_bytes(p)
        head = data.lstrip()[:1]
        if head in (b"{", b"["):
            raw = _json_records(data, where)
        else:
            try:
                raw = pl.read_csv(io.BytesIO(data), infer_schema=False)
            except pl.exceptions.PolarsError as exc:
                msg = f"Could not read the {where} as CSV: {exc}"
                raise InputError(msg) from exc
    if raw.height == 0:
        msg = f"The {where} holds no calls."
        raise EmptyInputError(msg)
    return _finish_tokens(raw, where)


def _otlp_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((kind, inner),) = value.items()
        if kind.endswith("Value") or kind.endswith("_value"):
            if kind in ("intValue", "int_value"):
                return int(inner)
            return inner
    return value


def _flatten(record: dict[str, Any], out: dict[str, Any], prefix: str = "") -> None:
    for key, value in record.items():
        if key == "attributes" and not prefix:
            if isinstance(value, list):  # OTLP JSON: [{"key": ..., "value": {"stringValue": ...}}]
                for item in value:
                    out[str(item.get("key"))] = _otlp_value(item.get("value"))
            elif isinstance(value, dict):
                for k, v in value.items():
                    out[str(k)] = v if not isinstance(v, (dict, list)) else json.dumps(v)
            continue
        if key == "status" and isinstance(value, dict):
            out["status"] = value.get("status_code", value.get("code"))
            continue
        if isinstance(value, dict) and key not in _SKIP:
            _flatten(value, out, f"{prefix}{key}.")
        elif key not in _SKIP or prefix:
            out[f"{prefix}{key}"] = value if not isinstance(value, list) else json.dumps(value)


def _json_records(data: bytes, where: str) -> pl.DataFrame:
    text = data.decode("utf-8")
    records: list[dict[str, Any]] = []
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"The {where} is not valid JSON: {exc}"
            raise InputError(msg) from exc
        lines = [(i + 1, item) for i, item in enumerate(items)]
    else:
        lines = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                lines.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                msg = f"The {where}, line {number}: not valid JSON ({exc.msg}). Fix or delete the line."
                raise InputError(msg) from exc
    for number, item in lines:
        if not isinstance(item, dict):
            msg = f"The {where}, line {number}: expected a JSON object (one call), got {type(item).__name__}."
            raise InputError(msg)
        flat: dict[str, Any] = {}
        _flatten(item, flat)
        records.append({k: None if v is None else str(v) for k, v in flat.items()})
    columns = list(dict.fromkeys(k for r in records for k in r))
    return pl.DataFrame(records, schema=dict.fromkeys(columns, pl.String), orient="row")


def _pick(frame: pl.DataFrame, names: tuple[str, ...]) -> tuple[pl.Expr, list[str]]:
    present = [n for n in names if n in frame.columns]
    if not present:
        return pl.lit(None, dtype=pl.String), []
    return pl.coalesce([pl.col(n).cast(pl.String) for n in present]), present


def _any_time(text: pl.Expr) -> pl.Expr:
    t = text.str.strip_chars()
    digits = t.str.contains(r"^\d{16,}$")
    seconds = t.str.contains(r"^\d{9,11}(\.\d+)?$")
    from_ns = pl.from_epoch(t.cast(pl.Int64, strict=False), time_unit="ns")
    from_s = pl.from_epoch((t.cast(pl.Float64, strict=False) * 1e6).cast(pl.Int64), time_unit="us")
    return (
        pl.when(digits)
        .then(from_ns.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
        .when(seconds)
        .then(from_s.dt.replace_time_zone("UTC"))
        .otherwise(utc_times(t))
    )


def _finish_tokens(raw: pl.DataFrame, where: str) -> pl.DataFrame:
    raw = raw.with_columns(
        pl.col(c).cast(pl.String) for c, t in raw.schema.items() if not isinstance(t, pl.String)
    ).with_columns(_null_text(pl.col(c)) for c in raw.columns)
    used: set[str] = set()
    exprs: dict[str, pl.Expr] = {}
    for target, names in _ALIASES.items():
        exprs[target], present = _pick(raw, names)
        used.update(present)
    for target in ("team", "feature"):
        names = tuple(
            c for c in raw.columns if c.rsplit(".", 1)[-1].lower() == target and c not in used
        )
        exprs[target], present = _pick(raw, names)
        used.update(present)
    latency = [
        pl.col(c).cast(pl.Float64, strict=False) * f for c, f in _LATENCY if c in raw.columns
    ]
    used.update(c for c, _ in _LATENCY if c in raw.columns)
    if exprs["timestamp"].meta.is_literal() or not any(
        n in raw.columns for n in _ALIASES["timestamp"]
    ):
        msg = (
            f"The {where} has no call start time: expected one of "
            f"{', '.join(_ALIASES['timestamp'])}. Its fields are: {', '.join(raw.columns[:30])}."
        )
        raise InputError(msg)
    if not any(n in raw.columns for n in _ALIASES["request_model"] + _ALIASES["response_model"]):
        msg = f"The {where} names no model: expected gen_ai.request.model or gen_ai.response.model."
        raise InputError(msg)
    frame = raw.with_row_index("_line", offset=1).with_columns(
        timestamp=_any_time(exprs["timestamp"]),
        end_timestamp=_any_time(exprs["end_timestamp"]),
        provider=exprs["provider"].str.to_lowercase(),
        request_model=exprs["request_model"],
        response_model=exprs["response_model"],
        operation=exprs["operation"],
        input_tokens=exprs["input_tokens"].cast(pl.Float64, strict=False).cast(pl.Int64),
        output_tokens=exprs["output_tokens"].cast(pl.Float64, strict=False).cast(pl.Int64),
        cache_read_tokens=exprs["cache_read_tokens"].cast(pl.Float64, strict=False).cast(pl.Int64),
        error_type=exprs["error_type"],
        _status=exprs["status"].str.to_lowercase(),
        team=exprs["team"],
        feature=exprs["feature"],
        trace_id=exprs["trace_id"],
        span_id=exprs["span_id"],
        _latency=pl.coalesce(latency) if latency else pl.lit(None, dtype=pl.Float64),
    )
    bad = frame.filter(pl.col("timestamp").is_null())
    if bad.height:
        msg = f"The {where}, call {bad['_line'][0]}: the start time is missing or not a time ({bad.height} call(s) like it)."
        raise InputError(msg)
    for column in ("input_tokens", "output_tokens"):
        negative = frame.filter(pl.col(column) < 0)
        if negative.height:
            msg = f"The {where}, call {negative['_line'][0]}: {column} is negative."
            raise InputError(msg)
    error = (
        pl.col("_status").is_in(["error", "status_code_error", "2"])
        | pl.col("error_type").is_not_null()
    )
    span = (pl.col("end_timestamp") - pl.col("timestamp")).dt.total_microseconds() / 1e6
    frame = frame.with_columns(
        model=pl.coalesce("response_model", "request_model"),
        status=pl.when(error).then(pl.lit("error")).otherwise(pl.lit("ok")),
        latency_s=pl.coalesce("_latency", span),
    )
    extra = [c for c in raw.columns if c not in used and c not in TOKEN_SCHEMA]
    out = frame.select([*(pl.col(c).cast(t) for c, t in TOKEN_SCHEMA.items()), *extra])
    return out.sort("timestamp", maintain_order=True)


# --------------------------------------------------------------------------- pricing

#: OpenTelemetry provider names -> genai-prices provider ids
_PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "gcp.gemini": "google", "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google", "vertex_ai": "google", "gemini": "google", "google": "google",
    "aws.bedrock": "aws", "aws_bedrock": "aws", "azure.ai.openai": "azure", "az.ai.openai": "azure",
    "azure.ai.inference": "azure", "az.ai.inference": "azure", "mistral_ai": "mistral",
    "mistral": "mistral", "x_ai": "x-ai", "xai": "x-ai", "deepseek": "deepseek", "groq": "groq",
    "cohere": "cohere", "perplexity": "perplexity", "together": "together",
}  # fmt: skip


def price_tokens(
    usage: pl.DataFrame, *, on_unknown: Literal["warn", "raise", "ignore"] = "warn"
) -> pl.DataFrame:
    """Cost of every call from the ``genai-prices`` tables bundled with that package.

    Prices are those in force on the day of each call (USD). Calls whose model the
    tables do not know get null costs, never zero; :func:`unpriced` lists them.

    Parameters
    ----------
    usage
        A frame from :func:`read_token_usage` (needs ``model``, ``input_tokens``,
        ``output_tokens``; uses ``provider``, ``cache_read_tokens`` and ``timestamp``).
    on_unknown
        What to do about calls to unknown models: ``"warn"`` (an AiopsLabWarning naming
        them), ``"raise"`` (:class:`~aiops_lab.errors.InputError`) or ``"ignore"``.

    Returns
    -------
    polars.DataFrame
        ``usage`` with ``input_cost``, ``output_cost``, ``cost`` (USD, Float64, null when
        unknown), ``priced`` (bool) and ``price_model`` (the model genai-prices matched).

    Examples
    --------
    >>> priced = price_tokens(read_token_usage("calls.jsonl"))  # doctest: +SKIP
    """
    if on_unknown not in ("warn", "raise", "ignore"):
        raise ParameterError("on_unknown", "'warn', 'raise' or 'ignore'", on_unknown)
    for column in ("model", "input_tokens", "output_tokens"):
        if column not in usage.columns:
            from aiops_lab.errors import ColumnNotFoundError

            raise ColumnNotFoundError(column, "the token usage frame", usage.columns)
    from genai_prices import Usage, calc_price

    frame = usage.with_row_index("_i")
    provider = (
        frame["provider"]
        if "provider" in frame.columns
        else pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    )
    cache = (
        frame["cache_read_tokens"]
        if "cache_read_tokens" in frame.columns
        else pl.repeat(None, frame.height, dtype=pl.Int64, eager=True)
    )
    if "timestamp" in frame.columns:
        day = frame["timestamp"].dt.date()
    else:
        day = pl.repeat(None, frame.height, dtype=pl.Date, eager=True)  # fmt: skip
    keys = pl.DataFrame({"provider": provider, "model": frame["model"], "day": day,
                         "input_tokens": frame["input_tokens"], "output_tokens": frame["output_tokens"],
                         "cache_read_tokens": cache})  # fmt: skip
    unique = keys.unique(maintain_order=True)
    rows = []
    for prov, model, d, n_in, n_out, n_cache in unique.iter_rows():
        rows.append(_price_one(calc_price, Usage, prov, model, d, n_in, n_out, n_cache))
    prices = pl.concat(
        [unique, pl.DataFrame(rows, schema={"input_cost": pl.Float64, "output_cost": pl.Float64,
                                            "price_model": pl.String}, orient="row")],
        how="horizontal",
    )  # fmt: skip
    joined = keys.join(
        prices, on=list(keys.columns), how="left", nulls_equal=True, maintain_order="left"
    )
    out = usage.with_columns(
        input_cost=joined["input_cost"],
        output_cost=joined["output_cost"],
        cost=joined["input_cost"] + joined["output_cost"],
        priced=joined["price_model"].is_not_null(),
        price_model=joined["price_model"],
    )
    missing = unpriced(out)
    if missing.height and on_unknown != "ignore":
        names = ", ".join(
            f"{m} ({n} calls)" for m, n in missing.select("model", "calls").iter_rows()
        )
        msg = (
            f"{missing['calls'].sum()} call(s) use models genai-prices does not know: {names}. "
            "Their cost is null, not zero; see finops.unpriced(priced) and price them yourself."
        )
        if on_unknown == "raise":
            raise InputError(msg)
        warn(msg)
    return out


def _price_one(calc_price: Any, usage_type: Any, provider: str | None, model: str | None,
               day: Any, n_in: int | None, n_out: int | None, n_cache: int | None) -> tuple[Any, ...]:  # fmt: skip
    if model is None:
        return (None, None, None)
    when = None
    if day is not None:
        when = datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc)
    usage = usage_type(input_tokens=int(n_in or 0), output_tokens=int(n_out or 0))
    if n_cache:
        usage.cache_read_tokens = int(n_cache)
    pid = _PROVIDERS.get(provider or "")
    try:
        result = calc_price(usage, model, provider_id=pid, genai_request_timestamp=when)
    except LookupError:
        if pid is None:
            return (None, None, None)
        try:  # the provider's name may not be genai-prices' own: let it match by model
            result = calc_price(usage, model, genai_request_timestamp=when)
        except LookupError:
            return (None, None, None)
    return (
        float(Decimal(result.input_price)),
        float(Decimal(result.output_price)),
        result.model.id,
    )


def unpriced(priced: pl.DataFrame) -> pl.DataFrame:
    """The models :func:`price_tokens` could not price: ``provider, model, calls, tokens``."""
    cols = [c for c in ("provider", "model") if c in priced.columns]
    return (
        priced.filter(~pl.col("priced"))
        .group_by(cols)
        .agg(
            calls=pl.len(),
            input_tokens=pl.col("input_tokens").sum(),
            output_tokens=pl.col("output_tokens").sum(),
        )
        .sort("calls", descending=True)
    )


_PROVIDER_NAMES = {"openai": "OpenAI", "anthropic": "Anthropic", "google": "Google",
                   "aws": "AWS", "azure": "Microsoft", "mistral": "Mistral AI"}  # fmt: skip


def token_spend_as_focus(
    priced: pl.DataFrame,
    *,
    billing_account: str = "llm-api",
    tags: tuple[str, ...] = ("team", "feature"),
) -> pl.DataFrame:
    """Daily LLM API spend as FOCUS rows, to stack under a cloud bill.

    One row per day, provider, model and tag values (``tags``: token-log columns that
    become ``Tags`` keys). All four cost columns carry the token cost (no discounts are
    known); ``ConsumedQuantity`` is tokens in + out; ``x_Requests``, ``x_InputTokens``
    and ``x_OutputTokens`` keep the detail. Unpriced calls are left out (see
    :func:`unpriced`).

    Returns
    -------
    polars.DataFrame
        Columns of :data:`FOCUS_COLUMNS` (typed like :func:`read_focus`) plus the ``x_`` ones;
        ``pl.concat([bill, token_spend_as_focus(priced)], how="diagonal_relaxed")`` joins them.
    """
    if "cost" not in priced.columns:
        msg = "token_spend_as_focus needs priced calls: pass the frame price_tokens() returned."
        raise InputError(msg)
    tag_cols = [t for t in tags if t in priced.columns]
    calls = priced.filter(pl.col("priced")).with_columns(
        _day=pl.col("timestamp").dt.truncate("1d"),
        _provider=pl.col("provider").fill_null("unknown") if "provider" in priced.columns else pl.lit("unknown"),
    )  # fmt: skip
    daily = (
        calls.group_by(["_day", "_provider", "model", *tag_cols])
        .agg(
            cost=pl.col("cost").sum(),
            x_Requests=pl.len().cast(pl.Int64),
            x_InputTokens=pl.col("input_tokens").sum(),
            x_OutputTokens=pl.col("output_tokens").sum(),
        )
        .sort(["_day", "_provider", "model", *tag_cols], nulls_last=True)
    )
    names = pl.Series(
        [_PROVIDER_NAMES.get(_PROVIDERS.get(p, p), p) for p in daily["_provider"]], dtype=pl.String
    )
    if tag_cols:
        tags_expr = pl.concat_list(
            [pl.struct(key=pl.lit(t), value=pl.col(t).cast(pl.String)) for t in tag_cols]
        ).list.eval(pl.element().filter(pl.element().struct.field("value").is_not_null()))
    else:
        tags_expr = pl.lit(None, dtype=TAGS)
    month = pl.col("_day").dt.truncate("1mo")
    out = daily.with_columns(_name=names).select(
        BilledCost=pl.col("cost"), EffectiveCost=pl.col("cost"), ListCost=pl.col("cost"),
        ContractedCost=pl.col("cost"), BillingAccountId=pl.lit(billing_account),
        BillingCurrency=pl.lit("USD"), BillingPeriodStart=month,
        BillingPeriodEnd=month.dt.offset_by("1mo"), ChargeCategory=pl.lit("Usage"),
        ChargeDescription=pl.concat_str(pl.lit("LLM API tokens, "), pl.col("model")),
        ChargeFrequency=pl.lit("Usage-Based"), ChargePeriodStart=pl.col("_day"),
        ChargePeriodEnd=pl.col("_day") + timedelta(days=1),
        ConsumedQuantity=(pl.col("x_InputTokens") + pl.col("x_OutputTokens")).cast(pl.Float64),
        ConsumedUnit=pl.lit("Tokens"), InvoiceIssuerName=pl.col("_name"), ProviderName=pl.col("_name"),
        PublisherName=pl.col("_name"), ServiceCategory=pl.lit("AI and Machine Learning"),
        ServiceName=pl.concat_str(pl.col("_name"), pl.lit(" API")), SkuId=pl.col("model"),
        Tags=tags_expr, x_Model=pl.col("model"), x_Requests=pl.col("x_Requests"),
        x_InputTokens=pl.col("x_InputTokens"), x_OutputTokens=pl.col("x_OutputTokens"),
    )  # fmt: skip
    missing = [
        pl.lit(None, dtype=t).alias(c) for c, t in FOCUS_COLUMNS.items() if c not in out.columns
    ]
    out = out.with_columns(missing)
    return out.select([*FOCUS_COLUMNS, "x_Model", "x_Requests", "x_InputTokens", "x_OutputTokens"])

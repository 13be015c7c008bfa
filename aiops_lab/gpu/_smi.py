"""Parse ``nvidia-smi --query-gpu ... --format=csv`` logs into telemetry rows.

:func:`parse_log` does the work of ``aiops_lab.gpu.sources.read_nvidia_smi``: it finds
the header line(s), splits every data line by the header above it (or by the default
query when the log has none), converts units and hands the rows to ``_finish``.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl

from aiops_lab.errors import EmptyInputError, InputError
from aiops_lab.gpu._schema import (
    _BLANK,
    TELEMETRY_SCHEMA,
    _collect,
    _finish,
    _lines,
    _local_times,
    _missing,
    _peek,
    _stem,
)

__all__ = ["check_slots", "parse_log"]

#: the query order of a headerless log (``--format=csv,noheader``)
_SMI_QUERY = (
    "timestamp",
    "index",
    "uuid",
    "name",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "power.draw",
    "temperature.gpu",
)
_SMI_NAMES = {  # our column: the nvidia-smi --query-gpu names for it
    "timestamp": ("timestamp",),
    "host": ("host", "hostname"),
    "gpu": ("index",),
    "uuid": ("uuid", "gpu_uuid"),
    "model": ("name", "gpu_name"),
    "util_pct": ("utilization.gpu",),
    "mem_used_mib": ("memory.used",),
    "mem_total_mib": ("memory.total",),
    "power_w": ("power.draw", "power.draw.instant", "power.draw.average"),
    "temp_c": ("temperature.gpu",),
}
_SMI_FIELDS = {name: column for column, names in _SMI_NAMES.items() for name in names}
_MEMORY = {
    "MiB": 1.0,
    "B": 2.0**-20,
    "KiB": 2.0**-10,
    "GiB": 2.0**10,
    "TiB": 2.0**20,
    "KB": 1e3 * 2.0**-20,
    "MB": 1e6 * 2.0**-20,
    "GB": 1e9 * 2.0**-20,
    "TB": 1e12 * 2.0**-20,
}
#: factors to each column's unit; the first is the column's own unit, that of a bare number
_UNITS: dict[str, dict[str, float]] = {
    "util_pct": {"%": 1.0},
    "mem_used_mib": _MEMORY,
    "mem_total_mib": _MEMORY,
    "power_w": {"W": 1.0, "mW": 1e-3, "kW": 1e3},
    "temp_c": {"C": 1.0, "°C": 1.0},
}
_SMI_TIMES = ("%Y/%m/%d %H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f")
_PY_TIMES = ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
#: pdsh / clush put "node07: " before every line they gather
_PREFIX = r"^(?P<prefix>[A-Za-z0-9_.\-]+):\s+(?P<text>.*)$"
_NUMBER = r"^(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>\S*)$"


def _field_name(field: str) -> tuple[str, str]:
    """``"memory.used [MiB]"`` -> ``("memory.used", "MiB")``."""
    m = re.match(r"^\s*(.*?)\s*(?:\[(.*)\])?\s*$", field)
    assert m is not None  # the pattern matches any text
    return m[1].lower(), (m[2] or "").strip()


class _Header:
    """Where each of our columns sits in one nvidia-smi header line, with its unit."""

    def __init__(self, text: str | None, line: int | None, where: str) -> None:
        fields = (text or ", ".join(_SMI_QUERY)).split(",")
        self.text, self.line, self.width = text, line, len(fields)
        self.columns: dict[str, tuple[int, str, str]] = {}
        for i, field in enumerate(fields):
            name, unit = _field_name(field)
            target = _SMI_FIELDS.get(name)
            if target is None or target in self.columns:
                continue
            if unit and target in _UNITS and unit not in _UNITS[target]:
                msg = (
                    f"The {where}, line {line}: header column {field.strip()!r} has unit {unit!r}; "
                    f"expected one of {', '.join(_UNITS[target])}."
                )
                raise InputError(msg)
            own = next(iter(_UNITS[target])) if target in _UNITS else ""
            self.columns[target] = (i, unit or own, field.strip())
        lacking = [
            n for n, t in (("timestamp", "timestamp"), ("index", "gpu")) if t not in self.columns
        ]
        if lacking:
            msg = (
                f"The {where}, line {line}: the header {text!r} has no {' or '.join(lacking)} column. "
                f"Log with nvidia-smi --query-gpu={','.join(_SMI_QUERY)} --format=csv -l 10."
            )
            raise InputError(msg)


def _quantity(target: str, unit: str, label: str) -> tuple[dict[str, pl.Expr], pl.Expr, pl.Expr]:
    """Parse column ``_{target}`` (like ``"1129 MiB"``) into the column's unit.

    Returns the intermediate columns to add first (so each regex runs once), then the
    value and the error message expressions that read them.
    """
    factors = _UNITS[target]
    raw, parts = pl.col(f"_{target}"), pl.col(f"_{target}").str.extract_groups(_NUMBER)
    written = parts.struct.field("unit")
    unit_col = pl.when(written == "").then(pl.lit(unit)).otherwise(written)
    stage = {
        f"_{target}_absent": _missing(raw),
        f"_{target}_number": parts.struct.field("num").cast(pl.Float64, strict=False),
        f"_{target}_unit": unit_col,
        f"_{target}_factor": unit_col.replace_strict(
            factors, default=None, return_dtype=pl.Float64
        ),
    }
    present = ~pl.col(f"_{target}_absent")
    number, factor = pl.col(f"_{target}_number"), pl.col(f"_{target}_factor")
    at = f"column {label!r}: "
    error = (
        pl.when(present & number.is_null())
        .then(pl.concat_str(pl.lit(f"{at}'"), raw, pl.lit("' is not a number")))
        .when(present & factor.is_null())
        .then(
            pl.concat_str(
                pl.lit(f"{at}unknown unit '"),
                pl.col(f"_{target}_unit"),
                pl.lit("' in '"),
                raw,
                pl.lit(f"'; expected one of {', '.join(factors)}"),
            )
        )
    )
    return stage, pl.when(present).then(number * factor), error


def _smi_rows(data: pl.LazyFrame, header: _Header, host: str, zone: str) -> pl.LazyFrame:
    fields = pl.col("_text").str.split(",")
    data = data.with_columns(_fields=fields).with_columns(
        _count=pl.col("_fields").list.len(),
        **{
            f"_{target}": pl.col("_fields").list.get(i, null_on_oob=True).str.strip_chars()
            for target, (i, _, _) in header.columns.items()
        },
    )

    def raw(target: str) -> pl.Expr:
        return pl.col(f"_{target}") if target in header.columns else pl.lit(None, pl.String)

    def text(target: str) -> pl.Expr:
        return pl.when(~_missing(raw(target))).then(raw(target))

    stage: dict[str, pl.Expr] = {
        "timestamp": _local_times(raw("timestamp"), _SMI_TIMES, zone),
        "gpu": raw("gpu").cast(pl.Int32, strict=False),
    }
    out = {
        "timestamp": pl.col("timestamp"),
        "host": pl.coalesce(text("host"), pl.col("_prefix"), pl.lit(host)),
        "gpu": pl.col("gpu"),
        "uuid": text("uuid"),
        "model": text("model"),
    }
    errors: list[pl.Expr] = [
        pl.when(raw("timestamp").is_not_null() & pl.col("timestamp").is_null()).then(
            pl.concat_str(
                pl.lit("timestamp '"),
                raw("timestamp"),
                pl.lit("' is not a time like 2026/10/05 14:03:01.123"),
            )
        ),
        pl.when(raw("gpu").is_not_null() & pl.col("gpu").is_null()).then(
            pl.concat_str(pl.lit("GPU index '"), raw("gpu"), pl.lit("' is not an integer"))
        ),
    ]
    for target in _UNITS:
        if target in header.columns:
            _, unit, label = header.columns[target]
            parts, out[target], error = _quantity(target, unit, label)
            stage.update(parts)
            errors.append(error)
        else:
            out[target] = pl.lit(None, pl.Float64)
    count = pl.col("_count")
    where_header = f"the header on line {header.line}" if header.line else "the nvidia-smi query"
    error = (
        pl.when(count != header.width)
        .then(
            pl.concat_str(
                pl.lit(
                    f"expected {header.width} comma-separated values (as {where_header}), found "
                ),
                count.cast(pl.String),
            )
        )
        .otherwise(pl.coalesce(errors))
    )
    columns = [
        out[c].alias(c) if c in out else pl.lit(None, t).alias(c)
        for c, t in TELEMETRY_SCHEMA.items()
        if c != "source"
    ]
    return data.with_columns(**stage).select(
        *columns, pl.lit("nvidia-smi").alias("source"), "_line", error.alias("_error"), "_last"
    )


def _looks_like_row(text: str) -> bool:
    fields = text.split(",")
    if len(fields) != len(_SMI_QUERY):
        return False
    stamp = fields[0].strip().split(".")[0]
    for fmt in _PY_TIMES:
        try:
            datetime.strptime(stamp, fmt)
        except ValueError:
            continue
        return True
    return False


def check_slots(frame: pl.DataFrame, where: str, fix: str) -> None:
    """Raise when two GPUs (UUIDs) sampled over overlapping times share one host and index.

    That happens when several hosts' logs are joined without a host column: every row
    gets one host, and the interleaved samples of two GPUs would look like intervals of
    about 0 s. A UUID change without overlap (a GPU replaced in its slot) is fine.
    ``fix`` ends the message.
    """
    slot = ["host", "gpu", "mig_instance"]
    spans = (
        frame.filter(pl.col("uuid").is_not_null())
        .group_by([*slot, "uuid"])
        .agg(pl.col("timestamp").min().alias("_first"), pl.col("timestamp").max().alias("_last"))
        .sort([*slot, "_first", "uuid"], nulls_last=True)
    )
    # a UUID overlaps an earlier one of its slot when it starts before that one's last sample
    before = pl.col("_last").cum_max().shift(1).over(slot)
    clash = spans.filter(pl.col("_first") <= before)
    if clash.height == 0:
        return
    host, gpu, mig = clash.row(0)[:3]
    uuids = spans.filter(
        (pl.col("host") == host) & (pl.col("gpu") == gpu) & pl.col("mig_instance").eq_missing(mig)
    )["uuid"].to_list()
    shown = ", ".join(uuids[:3]) + (f" and {len(uuids) - 3} more" if len(uuids) > 3 else "")
    msg = (
        f"The {where}: GPU index {gpu} of host {host!r} has {len(uuids)} different UUIDs "
        f"sampled over overlapping times ({shown}), so several GPUs share one (host, GPU) "
        f"slot. {fix}"
    )
    raise InputError(msg)


def parse_log(path: Path, where: str, *, host: str | None, zone: str, lazy: bool) -> pl.LazyFrame:
    """The plan for the log at ``path`` (``where`` names it in messages), validated.

    An eager read (``lazy=False``) also runs :func:`check_slots`; a lazy one skips it,
    as it would parse the whole log once more.
    """
    peek = _peek(path, where, 1)
    if not peek:
        msg = f"The {where} is empty."
        raise EmptyInputError(msg)
    line = pl.col("line").str.strip_chars(_BLANK)
    if re.match(_PREFIX, peek[0]):  # pdsh prefixes every line; skip the regex otherwise
        parts = line.str.extract_groups(_PREFIX)
        prefix, text = parts.struct.field("prefix"), pl.coalesce(parts.struct.field("text"), line)
    else:
        prefix, text = pl.lit(None, pl.String), line
    lines = _lines(path).with_columns(_prefix=prefix, _text=text).filter(pl.col("_text") != "")
    if not lazy:
        lines = _collect(lines, where).lazy()
    first = pl.col("_text").str.extract(r"^([^,\[]*)").str.strip_chars().str.to_lowercase()
    lines = lines.with_columns(_is_header=first.is_in(list(_SMI_FIELDS))).with_columns(
        _last=pl.col("_is_header").shift(-1).fill_null(True),
        _variant=pl.when(pl.col("_is_header")).then(pl.col("_text")).forward_fill(),
    )
    found = _collect(
        lines.filter(pl.col("_is_header"))
        .group_by("_text")
        .agg(pl.col("_line").min())
        .sort("_line"),
        where,
    )
    head = _collect(lines.head(1).select("_line", "_text", "_is_header"), where)
    if not head["_is_header"][0] and not _looks_like_row(head["_text"][0]):
        msg = (
            f"The {where} does not look like nvidia-smi CSV output: line {head['_line'][0]} is "
            f"{head['_text'][0][:80]!r}. Expected a header naming columns such as "
            "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], "
            "memory.total [MiB], power.draw [W], temperature.gpu, or headerless rows in that "
            f"order (nvidia-smi --query-gpu={','.join(_SMI_QUERY)} --format=csv,noheader)."
        )
        raise InputError(msg)
    data = lines.filter(~pl.col("_is_header"))
    fallback = host if host is not None else _stem(path)
    parts_by_header = [
        _smi_rows(data.filter(pl.col("_variant") == got), _Header(got, at, where), fallback, zone)
        for got, at in found.iter_rows()
    ]
    if not head["_is_header"][0]:
        headerless = data.filter(pl.col("_variant").is_null())
        parts_by_header.append(_smi_rows(headerless, _Header(None, None, where), fallback, zone))
    plan = _finish(pl.concat(parts_by_header), where, lazy=lazy)
    if lazy:
        return plan
    frame = _collect(plan, where)
    check_slots(
        frame,
        where,
        "The log probably joins several hosts' logs without a host column: add one (a 'host' "
        "header field, each line's host name in it), or split the file per host and read each "
        "part with host=.",
    )
    return frame.lazy()

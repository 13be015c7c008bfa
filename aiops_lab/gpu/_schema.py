"""The telemetry and job schemas, and the checks every GPU reader shares.

``aiops_lab.gpu.sources`` documents the schemas and holds the public readers;
``_smi`` and ``_sacct`` parse their formats into frames that :func:`_finish` validates.
"""

from __future__ import annotations

import os
import sys
import warnings
import zoneinfo
from pathlib import Path

import polars as pl

from aiops_lab.errors import AiopsLabWarning, InputError, ParameterError

__all__ = ["JOBS_SCHEMA", "TELEMETRY_SCHEMA", "PathLike"]

PathLike = str | os.PathLike[str]
_UTC = pl.Datetime("us", "UTC")
#: white space, and the byte-order mark Windows editors put before the first line
_BLANK = " \t\r\n\ufeff"

TELEMETRY_SCHEMA: dict[str, pl.DataType] = {
    "timestamp": _UTC,
    "host": pl.String(),
    "gpu": pl.Int32(),
    "uuid": pl.String(),
    "model": pl.String(),
    "util_pct": pl.Float64(),
    "sm_active": pl.Float64(),
    "tensor_active": pl.Float64(),
    "mem_used_mib": pl.Float64(),
    "mem_total_mib": pl.Float64(),
    "power_w": pl.Float64(),
    "temp_c": pl.Float64(),
    "mig_profile": pl.String(),
    "mig_instance": pl.String(),
    "job_id": pl.String(),
    "user": pl.String(),
    "pod": pl.String(),
    "namespace": pl.String(),
    "source": pl.String(),
}

JOBS_SCHEMA: dict[str, pl.DataType] = {
    "job_id": pl.String(),
    "job_name": pl.String(),
    "user": pl.String(),
    "partition": pl.String(),
    "state": pl.String(),
    "submit": _UTC,
    "start": _UTC,
    "end": _UTC,
    "elapsed_s": pl.Float64(),
    "gpus": pl.Int32(),
    "gpu_type": pl.String(),
    "gpu_hours_alloc": pl.Float64(),
    "queue_wait_s": pl.Float64(),
    "gpu_util_avg": pl.Float64(),
    "gpu_mem_avg_mib": pl.Float64(),
    "nodes": pl.String(),
}

_SOURCES = ("nvidia-smi", "dcgm", "nvml")
_BOUNDS = {"util_pct": 100.0, "sm_active": 1.0, "tensor_active": 1.0}
_ROUNDING = 1e-3
_ORDER = ["timestamp", "host", "gpu", "mig_instance"]
_KEY = [*_ORDER, "uuid"]


# --------------------------------------------------------------------------- shared


def _existing(path: PathLike, what: str, *, folder: bool = False) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        msg = f"The {what} {str(p)!r} does not exist. Check the path (relative paths start at {Path.cwd()})."
        raise InputError(msg)
    if p.is_dir() and not folder:
        msg = f"The {what} {str(p)!r} is a folder; pass one file."
        raise InputError(msg)
    return p


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".csv", ".txt", ".log", ".prom"):
        name = name.removesuffix(suffix)
    return name or path.name


def _lines(path: Path) -> pl.LazyFrame:
    """The file's lines (gzip is decompressed), ``_line`` numbered from 1, ``line`` the text."""
    if hasattr(pl, "scan_lines"):
        return pl.scan_lines(path, name="line", row_index_name="_line", row_index_offset=1)
    # polars before scan_lines: one column per line (0x1f never appears in these logs)
    return pl.scan_csv(
        path,
        has_header=False,
        separator="\x1f",
        quote_char=None,
        schema={"line": pl.String},
        row_index_name="_line",
        row_index_offset=1,
    )


def _collect(frame: pl.LazyFrame, where: str) -> pl.DataFrame:
    try:
        return frame.collect()
    except pl.exceptions.PolarsError as exc:
        msg = f"Could not read the {where}: {exc}"
        raise InputError(msg) from exc


def _peek(path: Path, where: str, n: int = 50) -> list[str]:
    """The first ``n`` non-blank lines, stripped."""
    lines = _lines(path).select(pl.col("line").str.strip_chars(_BLANK)).filter(pl.col("line") != "")
    return _collect(lines.head(n), where)["line"].to_list()


def _check_zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ParameterError(
            "timezone", "an IANA time zone name", name, 'Use e.g. "UTC" or "Europe/Berlin".'
        ) from exc
    return name


def _local_times(text: pl.Expr, formats: tuple[str, ...], zone: str) -> pl.Expr:
    """Parse zone-less times written in ``zone`` and convert them to UTC."""
    naive = pl.coalesce([text.str.strptime(pl.Datetime("us"), f, strict=False) for f in formats])
    local = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    return local.dt.convert_time_zone("UTC")


def _missing(text: pl.Expr) -> pl.Expr:
    """nvidia-smi's ``[N/A]``, ``[Not Supported]`` and friends, or nothing at all."""
    return (
        text.is_null()
        | text.is_in(["", "N/A", "n/a"])
        | (text.str.starts_with("[") & text.str.ends_with("]"))
    )


def _warn(message: str) -> None:
    """Warn, pointing at the first caller outside this package (the user's line)."""
    here, level = Path(__file__).parent, 1
    frame = sys._getframe(0)
    while frame.f_back is not None and Path(frame.f_code.co_filename).parent == here:
        frame, level = frame.f_back, level + 1
    warnings.warn(message, AiopsLabWarning, stacklevel=level)


def _drop_bad(frame: pl.LazyFrame, where: str, *, lazy: bool, row: str) -> pl.LazyFrame:
    """Raise on rows with an ``_error``, or warn and drop them when they end the log."""
    bad_rows = pl.col("_error").is_not_null()
    if lazy:
        bad = _collect(frame.filter(bad_rows).select("_line", "_error", "_last"), where)
    else:
        full = _collect(frame, where)
        bad = full.filter(bad_rows).select("_line", "_error", "_last")
        frame = full.lazy()
    if bad.height == 0:
        return frame
    bad = bad.sort("_line")
    fatal = bad.filter(~pl.col("_last"))
    if fatal.height:
        line, error = fatal["_line"][0], fatal["_error"][0]
        more = f" ({fatal.height - 1} more {row}s have problems too)" if fatal.height > 1 else ""
        msg = f"The {where}, {row} {line}: {error}{more}. Fix or delete the {row}."
        raise InputError(msg)
    for line, error in zip(bad["_line"], bad["_error"], strict=True):
        msg = (
            f"The {where}, {row} {line}: dropped an incomplete last {row} ({error}); "
            "the log was probably cut while being written."
        )
        _warn(msg)
    return frame.filter(~pl.col("_line").is_in(bad["_line"].to_list()))


def _finish(frame: pl.LazyFrame, where: str, *, lazy: bool, row: str = "line") -> pl.LazyFrame:
    """Cast to ``TELEMETRY_SCHEMA``, check ranges and keys, drop duplicates, sort.

    ``frame`` carries the schema columns plus ``_line`` (for messages), ``_error`` (a
    reason the row is bad, or null) and ``_last`` (the row ends the log).
    """
    frame = frame.with_columns(
        [pl.col(c).cast(t) for c, t in TELEMETRY_SCHEMA.items()]
    ).with_columns(
        [pl.col(c).fill_nan(None) for c, t in TELEMETRY_SCHEMA.items() if t == pl.Float64()]
    )
    checks = [
        pl.when(pl.col(c).is_null()).then(pl.lit(f"no {what}"))
        for c, what in (("timestamp", "timestamp"), ("host", "host"), ("gpu", "GPU index"))
    ]
    checks.append(
        pl.when(~pl.col("source").is_in(_SOURCES)).then(
            pl.concat_str(
                pl.lit("source '"),
                pl.col("source"),
                pl.lit(f"' is not one of {', '.join(_SOURCES)}"),
            )
        )
    )
    for column, bound in _BOUNDS.items():
        x = pl.col(column)
        frame = frame.with_columns(
            pl.when((x > bound) & (x <= bound * (1 + _ROUNDING)))
            .then(bound)
            .otherwise(x)
            .alias(column)
        )
        checks.append(
            pl.when((x < 0) | (x > bound)).then(
                pl.concat_str(
                    pl.lit(f"column {column!r} is "),
                    x.cast(pl.String),
                    pl.lit(f", outside 0-{bound:g}"),
                )
            )
        )
    frame = frame.with_columns(_error=pl.coalesce(pl.col("_error"), *checks))
    frame = _drop_bad(frame, where, lazy=lazy, row=row)
    return (
        frame.sort([*_ORDER, "_line"], nulls_last=True, maintain_order=True)
        .unique(subset=_KEY, keep="first", maintain_order=True)
        .select(list(TELEMETRY_SCHEMA))
    )

"""Parse ``sacct --parsable2`` dumps into one row per Slurm job.

:func:`parse_dump` does the work of ``aiops_lab.gpu.sources.read_sacct``: it folds job
steps into their job, reads GPU counts and types from AllocTRES and GPU usage from
TRESUsageInAve, and converts the times to UTC.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from aiops_lab.errors import EmptyInputError, InputError
from aiops_lab.gpu._schema import _BLANK, JOBS_SCHEMA, _collect, _lines, _local_times, _peek, _warn

__all__ = ["parse_dump"]

#: the fields needed; JobName and NodeList are used when present
_SACCT_FIELDS = (
    *("JobID", "User", "Partition", "State", "Submit", "Start", "End", "Elapsed"),
    *("AllocTRES", "TRESUsageInAve"),
)
_FORMAT = (
    "JobID,JobName,User,Partition,State,Submit,Start,End,Elapsed,AllocTRES,TRESUsageInAve,NodeList"
)
_SACCT_TIMES = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
_NO_TIME = ["", "Unknown", "None"]
_ELAPSED = r"^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)$"
#: Slurm writes usage in bytes with binary K/M/G/T/P suffixes
_SLURM_MIB = {"": 2.0**-20, "K": 2.0**-10, "M": 1.0, "G": 2.0**10, "T": 2.0**20, "P": 2.0**30}


def _tres(field: str, name: str) -> pl.Expr:
    """The number after ``name=`` in a TRES list like ``cpu=8,gres/gpu=2,mem=64G``."""
    return pl.col(field).str.extract(r"(?:^|,)" + re.escape(name) + r"=([0-9.]+)", 1)


def _fields(path: Path, where: str) -> pl.DataFrame:
    """The dump's fields by header name, ``_line`` the line number; empty fields are null.

    A cut-off last line is dropped with a warning; any other line with a field count other
    than the header's raises. sacct --parsable2 does not quote fields, so a ``|`` inside one
    (a JobName, say) adds a field and cannot be told from a separator.
    """
    text = pl.col("line").str.strip_chars(_BLANK)
    lines = _collect(
        _lines(path).select("_line", text.alias("_text")).filter(pl.col("_text") != ""), where
    )
    header, at = lines["_text"][0], lines["_line"][0]
    names = [name.strip() for name in header.split("|")]
    width = len(names)
    data = lines.slice(1).with_columns(
        _count=pl.col("_text").str.count_matches("|", literal=True) + 1
    )
    if data.height and data["_count"][-1] < width:
        line, count = data["_line"][-1], data["_count"][-1]
        _warn(
            f"The {where}, line {line}: dropped an incomplete last line ({count} of the "
            f"{width} '|'-separated fields of the header); the dump was probably cut while "
            "being written."
        )
        data = data.slice(0, data.height - 1)
    bad = data.filter(pl.col("_count") != width)
    if bad.height:
        line, count = bad["_line"][0], bad["_count"][0]
        more = f" ({bad.height - 1} more lines have problems too)" if bad.height > 1 else ""
        msg = (
            f"The {where}, line {line}: found {count} '|'-separated fields, expected {width} "
            f"(as the header on line {at}){more}. "
        )
        if count > width:
            msg += (
                "sacct --parsable2 does not quote fields, so a '|' inside one (most often "
                "JobName) splits it. Rename the job without '|' and export again, or leave "
                "JobName out of --format."
            )
        else:
            msg += "Fix or delete the line."
        raise InputError(msg)
    split = pl.col("_text").str.split("|")
    columns: dict[str, pl.Expr] = {}
    for i, name in enumerate(names):
        if name and name not in columns:  # --parsable ends the header with an empty name
            value = split.list.get(i)
            columns[name] = pl.when(value != "").then(value)
    return data.select("_line", **columns)


def parse_dump(path: Path, where: str, *, zone: str) -> pl.DataFrame:
    """The jobs in the dump at ``path`` (``where`` names it in messages), ``JOBS_SCHEMA``."""
    if not _peek(path, where, 1):
        msg = f"The {where} is empty."
        raise EmptyInputError(msg)
    raw = _fields(path, where)
    given = [c for c in raw.columns if c != "_line"]
    lacking = [f for f in _SACCT_FIELDS if f not in given]
    if lacking:
        msg = (
            f"The {where} lacks the field(s) {', '.join(lacking)}; its header has "
            f"{', '.join(repr(c) for c in given[:20])}. Run sacct --parsable2 --format={_FORMAT}."
        )
        raise InputError(msg)
    frame = raw.with_columns(
        JobName=pl.col("JobName") if "JobName" in given else pl.lit(None, pl.String),
        _job=pl.col("JobID").str.extract(r"^([^.]+)", 1),
        _step=pl.col("JobID").str.contains(".", literal=True),
        NodeList=pl.col("NodeList") if "NodeList" in given else pl.lit(None, pl.String),
    )
    typed = pl.col("AllocTRES").fill_null("").str.extract_all(r"(?:^|,)gres/gpu:[^=,]+=\d+")
    mem = pl.col("TRESUsageInAve").str.extract_groups(
        r"(?:^|,)gres/gpumem=(?P<n>[0-9.]+)(?P<u>[KMGTP]?)(?:,|$)"
    )
    frame = frame.with_columns(
        _gpus=pl.coalesce(
            _tres("AllocTRES", "gres/gpu").cast(pl.Int32, strict=False),
            pl.when(typed.list.len() > 0).then(
                typed.list.eval(pl.element().str.extract(r"=(\d+)$", 1).cast(pl.Int32)).list.sum()
            ),
            pl.lit(0, pl.Int32),
        ),
        _types=typed.list.eval(pl.element().str.extract(r"gres/gpu:([^=,]+)=", 1)),
        _util=_tres("TRESUsageInAve", "gres/gpuutil").cast(pl.Float64, strict=False),
        _mem=mem.struct.field("n").cast(pl.Float64, strict=False)
        * mem.struct.field("u").replace_strict(_SLURM_MIB, default=None, return_dtype=pl.Float64),
        _order=pl.col("_line").min().over("_job"),
    ).sort(["_order", "_step", "_line"])
    job_fields = ["JobName", "User", "Partition", "State", "Submit", "Start", "End", "Elapsed"]
    jobs = frame.group_by("_job", maintain_order=True).agg(
        *(pl.col(c).first() for c in [*job_fields, "NodeList", "_gpus", "_types", "_line"]),
        pl.col("_util").max(),
        pl.col("_mem").max(),
    )
    times = {c: _local_times(pl.col(c), _SACCT_TIMES, zone) for c in ("Submit", "Start", "End")}
    parts = pl.col("Elapsed").str.extract_groups(_ELAPSED)
    elapsed = (
        parts.struct.field("d").cast(pl.Float64).fill_null(0.0) * 86400
        + parts.struct.field("h").cast(pl.Float64).fill_null(0.0) * 3600
        + parts.struct.field("m").cast(pl.Float64) * 60
        + parts.struct.field("s").cast(pl.Float64)
    )
    errors = [
        pl.when(~pl.col(c).is_in(_NO_TIME) & pl.col(c).is_not_null() & t.is_null()).then(
            pl.concat_str(
                pl.lit(f"{c} '"), pl.col(c), pl.lit("' is not a time like 2026-10-05T14:03:01")
            )
        )
        for c, t in times.items()
    ]
    errors.append(
        pl.when(pl.col("Elapsed").is_not_null() & elapsed.is_null()).then(
            pl.concat_str(
                pl.lit("Elapsed '"), pl.col("Elapsed"), pl.lit("' is not [D-]HH:MM:SS or MM:SS.mmm")
            )
        )
    )
    jobs = jobs.with_columns(
        _error=pl.coalesce(errors),
        **{c.lower(): t for c, t in times.items()},
        elapsed_s=elapsed,
        _types=pl.col("_types").list.unique(maintain_order=True).list.join(","),
    )
    bad = jobs.filter(pl.col("_error").is_not_null())
    if bad.height:
        msg = f"The {where}, line {bad['_line'][0]}: {bad['_error'][0]}. Fix or delete the line."
        raise InputError(msg)
    wait = (pl.col("start") - pl.col("submit")).dt.total_microseconds().cast(pl.Float64) / 1e6
    out = jobs.select(
        pl.col("_job").alias("job_id"),
        pl.col("JobName").alias("job_name"),
        pl.col("User").alias("user"),
        pl.col("Partition").alias("partition"),
        pl.col("State").str.extract(r"^([A-Za-z_]+)", 1).str.to_uppercase().alias("state"),
        "submit",
        "start",
        "end",
        "elapsed_s",
        pl.col("_gpus").alias("gpus"),
        pl.when(pl.col("_types") != "").then(pl.col("_types")).alias("gpu_type"),
        (pl.col("_gpus") * pl.col("elapsed_s") / 3600.0).alias("gpu_hours_alloc"),
        wait.alias("queue_wait_s"),
        pl.col("_util").alias("gpu_util_avg"),
        pl.col("_mem").alias("gpu_mem_avg_mib"),
        pl.when(~pl.col("NodeList").is_in(["None assigned", "None", ""]))
        .then(pl.col("NodeList"))
        .alias("nodes"),
    )
    return out.cast(JOBS_SCHEMA)  # type: ignore[arg-type]

"""Read GPU telemetry and Slurm job accounting into validated polars frames.

Telemetry comes from ``nvidia-smi --query-gpu`` CSV logs (:func:`read_nvidia_smi`),
dcgm-exporter scrapes (:func:`read_dcgm`) or tables already in this schema
(:func:`read_telemetry` sniffs which). Every telemetry reader returns exactly
``TELEMETRY_SCHEMA``, in this order:

=============== ================= ====================================================
column          dtype             meaning
=============== ================= ====================================================
timestamp       Datetime(us, UTC) sample time
host            String            node name
gpu             Int32             GPU index on the host (the parent GPU for MIG)
uuid            String            GPU UUID (null when the source lacks it)
model           String            product name, e.g. "NVIDIA A100-SXM4-80GB"
util_pct        Float64           GPU utilization, 0-100 (percent of time a kernel ran)
sm_active       Float64           share of SM cycles with a warp resident, 0-1 (nullable)
tensor_active   Float64           share of cycles the tensor pipe is busy, 0-1 (nullable)
mem_used_mib    Float64           framebuffer memory used, MiB
mem_total_mib   Float64           framebuffer memory total, MiB
power_w         Float64           power draw, W
temp_c          Float64           GPU temperature, degrees C
mig_profile     String            MIG profile, e.g. "1g.10gb" (null without MIG)
mig_instance    String            MIG GPU instance id (null without MIG)
job_id          String            scheduler job id, when the source labels it
user            String            job owner, when known
pod             String            Kubernetes pod(s) holding the GPU, comma-separated
namespace       String            Kubernetes namespace(s) of those pods
source          String            "nvidia-smi", "dcgm" or "nvml"
=============== ================= ====================================================

Conventions shared by the telemetry readers:

- Rows are sorted by ``timestamp, host, gpu, mig_instance`` (logs with times out of order
  are fine). Duplicate samples (same timestamp, host, gpu, mig_instance and uuid) are
  dropped, keeping the first one in the file.
- Missing values (nvidia-smi's ``[N/A]``, ``[Not Supported]`` and other bracketed
  placeholders, empty fields, NaN) become null.
- ``util_pct`` must lie in 0-100 and ``sm_active`` / ``tensor_active`` in 0-1. Rounding
  excess up to 0.1 % above the bound is clipped to it; anything else raises
  :class:`~aiops_lab.errors.InputError` naming the file, line and column.
- An incomplete last line (a log cut while being written; also the last line before a
  repeated header, where a ``-l`` run was killed) is dropped with an
  :class:`~aiops_lab.errors.AiopsLabWarning`; a bad line anywhere else raises.
- With ``lazy=True`` the file is still read once at the call, streaming, so that errors
  surface there; the LazyFrame returned reads it again when collected.

``read_sacct`` returns ``JOBS_SCHEMA``, one row per job (steps folded in), in file order:

=============== ================= ====================================================
job_id          String            "123", or "123_4" for an array task
job_name        String            null when the dump has no JobName
user            String
partition       String
state           String            first word, upper case: "CANCELLED by 12" -> "CANCELLED"
submit          Datetime(us, UTC) null for "Unknown" / "None"
start           Datetime(us, UTC) null while pending
end             Datetime(us, UTC) null while pending or running
elapsed_s       Float64           sacct Elapsed, seconds
gpus            Int32             GPUs allocated (AllocTRES gres/gpu), 0 for none
gpu_type        String            typed gres, e.g. "a100" (null when untyped)
gpu_hours_alloc Float64           gpus * elapsed hours
queue_wait_s    Float64           start - submit, seconds
gpu_util_avg    Float64           TRESUsageInAve gres/gpuutil, max over steps (nullable)
gpu_mem_avg_mib Float64           TRESUsageInAve gres/gpumem in MiB, max over steps
nodes           String            NodeList, when the dump has it
=============== ================= ====================================================
"""

from __future__ import annotations

import glob
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, overload

import polars as pl

from aiops_lab.errors import EmptyInputError, InputError, ParameterError
from aiops_lab.gpu import _prometheus, _sacct, _smi
from aiops_lab.gpu._schema import (
    _KEY,
    _ORDER,
    _UTC,
    JOBS_SCHEMA,
    TELEMETRY_SCHEMA,
    PathLike,
    _check_zone,
    _drop_bad,
    _existing,
    _finish,
    _lines,
    _peek,
    _stem,
)
from aiops_lab.gpu._smi import _SMI_FIELDS, _field_name, _looks_like_row

__all__ = [
    "JOBS_SCHEMA",
    "TELEMETRY_SCHEMA",
    "read_dcgm",
    "read_nvidia_smi",
    "read_sacct",
    "read_telemetry",
]

_UTC_ZONE = timezone.utc  # the readers' `timezone` parameters shadow the name


# --------------------------------------------------------------------------- nvidia-smi


@overload
def read_nvidia_smi(
    path: PathLike, *, host: str | None = ..., lazy: Literal[False] = ..., timezone: str = ...
) -> pl.DataFrame: ...
@overload
def read_nvidia_smi(
    path: PathLike, *, host: str | None = ..., lazy: Literal[True], timezone: str = ...
) -> pl.LazyFrame: ...
def read_nvidia_smi(
    path: PathLike, *, host: str | None = None, lazy: bool = False, timezone: str = "UTC"
) -> pl.DataFrame | pl.LazyFrame:
    """Read an ``nvidia-smi --query-gpu ... --format=csv -l N`` log.

    Accepts logs with or without units (``nounits``) and header (``noheader``: columns
    in the order ``timestamp,index,uuid,name,utilization.gpu,memory.used,memory.total,
    power.draw,temperature.gpu``), columns in any order, header lines repeated where
    several ``-l`` runs were appended, gzip files, a ``host`` column, and the
    ``node07: `` prefix pdsh / clush put on gathered lines. Values may carry units
    (``87 %``, ``1129 MiB``, ``1.1 GiB``, ``65.32 W``); memory is converted to MiB.

    Parameters
    ----------
    path
        The log (``.csv``, ``.csv.gz`` or any text file).
    host
        Host name for lines that name none (no ``host`` column, no pdsh prefix);
        defaults to the file name without suffixes.
    lazy
        Return a ``polars.LazyFrame`` that parses the log when collected. The lines are
        still validated at the call, but the check for GPUs sharing a slot (see Raises)
        runs on eager reads only: it would parse the log once more.
    timezone
        Zone the log's times were written in (nvidia-smi writes local time without
        a zone); they are converted to UTC.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        ``TELEMETRY_SCHEMA`` with ``source == "nvidia-smi"``; ``sm_active``,
        ``tensor_active``, MIG, job and pod columns are null.

    Raises
    ------
    InputError
        The file is not an nvidia-smi log, or a line (named) has a bad value or unit; or
        one host's GPU index shows two or more UUIDs over overlapping times (several
        hosts' logs joined without a host column). A UUID that follows another without
        overlap (a replaced GPU) is fine.

    Examples
    --------
    >>> frame = read_nvidia_smi("gpu-node-01.csv")  # doctest: +SKIP
    >>> frame.group_by("gpu").agg(pl.col("util_pct").mean())  # doctest: +SKIP
    """
    path = _existing(path, "nvidia-smi log")
    where = f"nvidia-smi log {str(path)!r}"
    zone = _check_zone(timezone)
    plan = _smi.parse_log(path, where, host=host, zone=zone, lazy=lazy)
    return plan if lazy else plan.collect()


# --------------------------------------------------------------------------- dcgm


@overload
def read_dcgm(path: PathLike, *, lazy: Literal[False] = ...) -> pl.DataFrame: ...
@overload
def read_dcgm(path: PathLike, *, lazy: Literal[True]) -> pl.LazyFrame: ...
def read_dcgm(path: PathLike, *, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """Read dcgm-exporter scrapes (Prometheus text exposition), one or many.

    Metrics used: ``DCGM_FI_DEV_GPU_UTIL`` (percent) -> ``util_pct``;
    ``DCGM_FI_PROF_SM_ACTIVE`` and ``DCGM_FI_PROF_PIPE_TENSOR_ACTIVE`` (ratios) ->
    ``sm_active``, ``tensor_active``; ``DCGM_FI_DEV_FB_USED`` -> ``mem_used_mib`` and
    ``FB_USED + FB_FREE (+ FB_RESERVED when present)`` -> ``mem_total_mib``;
    ``DCGM_FI_DEV_POWER_USAGE`` (W); ``DCGM_FI_DEV_GPU_TEMP`` (C). Where ``GPU_UTIL``
    is absent (MIG instances do not report it) but ``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` is
    present, ``util_pct = 100 * GR_ENGINE_ACTIVE``. Profiling metrics are optional and
    null when absent: dcgm-exporter's shipped counter files leave ``SM_ACTIVE``
    commented out, so enable it to get ``sm_active``. Other metrics are ignored.

    Labels: ``Hostname`` -> host (the file name when absent), ``gpu``, ``UUID``,
    ``modelName``, ``GPU_I_PROFILE`` / ``GPU_I_ID`` -> MIG columns, ``pod`` /
    ``namespace`` (comma-separated when time-sliced pods share a GPU), and ``hpc_job``,
    ``job_id`` or ``slurm_job_id`` -> ``job_id``.

    Time of each sample: its own time stamp (epoch milliseconds, the Prometheus
    convention), else the last ``# TIMESTAMP <time>`` or ``# scrape <time>`` comment
    before it (ISO 8601, or epoch seconds), else the file's modification time (a single
    ``curl`` of ``/metrics``). Several scrapes in one file must be told apart by one
    of the first two.

    Parameters
    ----------
    path
        The saved scrape(s), plain text or gzip.
    lazy
        Return a ``polars.LazyFrame`` that parses the file when collected.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        ``TELEMETRY_SCHEMA`` with ``source == "dcgm"``, one row per timestamp, host,
        GPU and MIG instance.

    Examples
    --------
    >>> frame = read_dcgm("scrapes.prom")  # doctest: +SKIP
    >>> frame.filter(pl.col("sm_active") < 0.1)  # doctest: +SKIP
    """
    path = _existing(path, "dcgm-exporter scrape")
    where = f"dcgm-exporter scrape {str(path)!r}"
    if not _peek(path, where, 1):
        msg = f"The {where} is empty."
        raise EmptyInputError(msg)
    rows = _drop_bad(_prometheus.dcgm_samples(_lines(path)), where, lazy=lazy, row="line")
    saved = datetime.fromtimestamp(path.stat().st_mtime, tz=_UTC_ZONE)
    plan = _finish(_prometheus.dcgm_rows(rows, _stem(path), saved), where, lazy=lazy)
    return plan if lazy else plan.collect()


# --------------------------------------------------------------------------- sacct


def read_sacct(path: PathLike, *, timezone: str = "UTC") -> pl.DataFrame:
    """Read ``sacct --parsable2`` output into one row per job.

    Needs the fields JobID, User, Partition, State, Submit, Start, End, Elapsed,
    AllocTRES and TRESUsageInAve (JobName and NodeList are used when present; other
    fields are ignored). Steps (``123.batch``, ``123.extern``, ``123.0``) fold into job ``123``:
    name, user, partition, state, times, NodeList and AllocTRES come from the job line,
    GPU utilization and memory are the maximum over its lines. Array tasks (``123_4``)
    are jobs of their own.

    GPUs are the ``gres/gpu=N`` entry of AllocTRES, else the sum of typed entries
    ``gres/gpu:a100=2`` (whose types give ``gpu_type``); ``gres/gpumem`` and
    ``gres/gpuutil`` are not counts. ``gres/gpumem`` usage is converted to MiB (a bare
    number is bytes). Elapsed may be ``[D-]HH:MM:SS`` or ``MM:SS.mmm``.

    Every line must have as many ``|``-separated fields as the header. A shorter last
    line (a dump cut while being written) is dropped with an
    :class:`~aiops_lab.errors.AiopsLabWarning`; any other line with too few or too many
    fields raises. sacct does not quote fields, so a ``|`` in a JobName adds one: rename
    the job, or leave JobName out of ``--format``.

    Parameters
    ----------
    path
        The dump, e.g. from ``sacct --parsable2 --allocations=no
        --format=JobID,JobName,User,Partition,State,Submit,Start,End,Elapsed,AllocTRES,
        TRESUsageInAve,NodeList``.
    timezone
        Zone the cluster writes times in (sacct prints them without one).

    Returns
    -------
    polars.DataFrame
        ``JOBS_SCHEMA``, one row per job in the order the dump lists them.

    Raises
    ------
    InputError
        A needed field is missing, or a line (named) has the wrong number of fields or a
        bad time or Elapsed.

    Examples
    --------
    >>> jobs = read_sacct("sacct.txt")  # doctest: +SKIP
    >>> jobs.filter(pl.col("gpus") > 0).select("job_id", "gpu_hours_alloc")  # doctest: +SKIP
    """
    path = _existing(path, "sacct dump")
    where = f"sacct dump {str(path)!r}"
    return _sacct.parse_dump(path, where, zone=_check_zone(timezone))


# --------------------------------------------------------------------------- any telemetry

_KINDS = ("auto", "nvidia-smi", "dcgm", "table")
#: one path, or several files for read_telemetry
_Paths = PathLike | list[PathLike] | tuple[PathLike, ...]
_TABLE_REQUIRED = ("timestamp", "host", "gpu", "source")
_SAMPLE_LINE = re.compile(
    r"^[A-Za-z_:][\w:]*(\{.*\})?\s+([-+]?(\d[\d.eE+-]*|\.\d+|NaN|Inf))(\s+-?\d+)?$"
)


def _sniff(path: Path, where: str) -> str:
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        return "table"
    lines = _peek(path, where)
    if not lines:
        msg = f"The {where} is empty."
        raise EmptyInputError(msg)
    if any(line.startswith("#") or _SAMPLE_LINE.match(line) for line in lines):
        return "dcgm"
    first = re.sub(r"^[A-Za-z0-9_.\-]+:\s+", "", lines[0])
    names = [_field_name(f)[0] for f in first.split(",")]
    if set(_TABLE_REQUIRED) <= set(names):
        return "table"
    if names[0] in _SMI_FIELDS or _looks_like_row(first):
        return "nvidia-smi"
    msg = (
        f"The {where} is not a telemetry format aiops_lab knows: line 1 is {lines[0][:80]!r}. "
        "Expected nvidia-smi --query-gpu CSV, dcgm-exporter (Prometheus) text, or a Parquet/CSV "
        f"table with the columns {', '.join(TELEMETRY_SCHEMA)}. Pass kind= to say which."
    )
    raise InputError(msg)


def _table(path: Path | list[Path], where: str, *, lazy: bool) -> pl.LazyFrame:
    """A Parquet file, a folder or list of them, or a CSV, already in ``TELEMETRY_SCHEMA``."""
    if isinstance(path, list):
        frame, row = pl.scan_parquet(path).with_row_index("_line", offset=1), "row"
    elif path.is_dir():
        files = sorted(path.rglob("*.parquet"))
        if not files:
            msg = f"The {where} holds no .parquet files."
            raise InputError(msg)
        frame, row = pl.scan_parquet(files).with_row_index("_line", offset=1), "row"
    elif path.suffix.lower() in (".parquet", ".pq"):
        frame, row = pl.scan_parquet(path).with_row_index("_line", offset=1), "row"
    else:
        frame = pl.scan_csv(path, infer_schema=False).with_row_index("_line", offset=2)
        row = "line"
    try:
        have = frame.collect_schema()
    except pl.exceptions.PolarsError as exc:
        msg = f"Could not read the {where}: {exc}"
        raise InputError(msg) from exc
    lacking = [c for c in _TABLE_REQUIRED if c not in have]
    if lacking:
        msg = (
            f"The {where} lacks the column(s) {', '.join(lacking)}; it has "
            f"{', '.join(list(have)[:20])}. A telemetry table needs {', '.join(TELEMETRY_SCHEMA)} "
            "(only timestamp, host, gpu and source are required)."
        )
        raise InputError(msg)
    columns, errors = [], []
    for c, t in TELEMETRY_SCHEMA.items():
        if c not in have:
            columns.append(pl.lit(None, t).alias(c))
            continue
        given = pl.col(c)
        if t == _UTC and have[c] == pl.String():
            value = _prometheus.iso_times(given)
        elif t == _UTC and isinstance(have[c], pl.Datetime):
            zoned = have[c].time_zone is not None  # type: ignore[attr-defined]
            value = (
                given.dt.convert_time_zone("UTC") if zoned else given.dt.replace_time_zone("UTC")
            )
        else:
            value = given.cast(t, strict=False)
        columns.append(value.cast(t).alias(c))
        errors.append(
            pl.when(given.is_not_null() & value.is_null()).then(
                pl.concat_str(
                    pl.lit(f"column {c!r}: '"), given.cast(pl.String), pl.lit(f"' is not {t}")
                )
            )
        )
    frame = frame.select(
        *columns, "_line", pl.coalesce(errors).alias("_error"), _last=pl.lit(False)
    )
    return _finish(frame, where, lazy=lazy, row=row)


def _read_one(path: Path, kind: str, *, lazy: bool) -> pl.DataFrame | pl.LazyFrame:
    """One file or folder of telemetry, of ``kind`` (``"auto"`` sniffs it)."""
    where = f"telemetry input {str(path)!r}"
    if kind == "auto":
        kind = _sniff(path, where)
    if kind == "nvidia-smi":
        return read_nvidia_smi(path, lazy=True) if lazy else read_nvidia_smi(path)
    if kind == "dcgm":
        return read_dcgm(path, lazy=True) if lazy else read_dcgm(path)
    plan = _table(path, f"telemetry table {str(path)!r}", lazy=lazy)
    return plan if lazy else plan.collect()


def _read_many(
    files: list[Path], what: str, kind: str, *, lazy: bool
) -> pl.DataFrame | pl.LazyFrame:
    """Files matched by a glob or listed (``what`` names them), each read as its own kind."""
    parquet = [f for f in files if f.suffix.lower() in (".parquet", ".pq")]
    if kind in ("auto", "table") and len(parquet) == len(files):
        plan = _table(files, f"telemetry tables {what}", lazy=lazy)
        return plan if lazy else plan.collect()
    kinds = [_sniff(f, f"telemetry input {str(f)!r}") if kind == "auto" else kind for f in files]
    logs = [f for f, k in zip(files, kinds, strict=True) if k != "table"]
    if parquet and logs:
        msg = (
            f"The telemetry {what} mixes {len(parquet)} Parquet file(s) (e.g. "
            f"{str(parquet[0])!r}) with {len(logs)} text log(s) (e.g. {str(logs[0])!r}). "
            "Read the Parquet files and the logs separately and pl.concat the frames."
        )
        raise InputError(msg)
    frames = [_read_one(f, k, lazy=lazy) for f, k in zip(files, kinds, strict=True)]
    plan = pl.concat([frame.lazy() for frame in frames])
    # one order and one copy of each sample over all files, as within one file
    plan = plan.sort(_ORDER, nulls_last=True, maintain_order=True).unique(
        subset=_KEY, keep="first", maintain_order=True
    )
    if lazy:
        return plan
    frame = plan.collect()
    _smi.check_slots(
        frame,
        f"telemetry {what}",
        "Files of different hosts probably share a host name (an nvidia-smi log without a "
        "host column takes its file name): rename them, or read them one by one with "
        "read_nvidia_smi(path, host=...) and pl.concat the frames.",
    )
    return frame


def _matches(path: _Paths) -> tuple[list[Path], str] | None:
    """The files of a glob or a list of paths, and words naming them; None for one path."""
    if isinstance(path, (list, tuple)):
        if not path:
            raise ParameterError("path", "a path, a glob or a non-empty list of paths", path)
        return [_existing(p, "telemetry input") for p in path], f"files ({len(path)} listed)"
    text = os.fspath(path)
    if not any(ch in text for ch in "*?[") or Path(text).expanduser().exists():
        return None
    matched = sorted(Path(f) for f in glob.glob(os.path.expanduser(text), recursive=True))
    files = [f for f in matched if f.is_file()]
    if not files:
        msg = (
            f"The telemetry glob {text!r} matches no files"
            + (f" (only {len(matched)} folder(s))" if matched else "")
            + f". Check the pattern (relative paths start at {Path.cwd()})."
        )
        raise InputError(msg)
    return files, f"glob {text!r}"


@overload
def read_telemetry(
    path: _Paths, kind: str = ..., *, lazy: Literal[False] = ...
) -> pl.DataFrame: ...
@overload
def read_telemetry(path: _Paths, kind: str = ..., *, lazy: Literal[True]) -> pl.LazyFrame: ...
def read_telemetry(
    path: _Paths, kind: str = "auto", *, lazy: bool = False
) -> pl.DataFrame | pl.LazyFrame:
    """Read GPU telemetry of any supported kind into ``TELEMETRY_SCHEMA``.

    Parameters
    ----------
    path
        An nvidia-smi CSV log, a dcgm-exporter scrape file, a Parquet or CSV file already
        in ``TELEMETRY_SCHEMA`` (say, saved from an earlier read), a folder of such
        Parquet files, or several files: a glob (``"logs/*.csv.gz"``; folders it matches
        are skipped) or a list or tuple of paths. Parquet files only are scanned together
        with ``polars.scan_parquet``; otherwise each file is read as its own kind (an
        nvidia-smi log without a host column takes its file name as host, as alone) and
        the frames are concatenated, sorted and deduplicated as within one file. Parquet
        files and text logs cannot be mixed.
    kind
        ``"auto"`` (sniff the first lines of each file: Prometheus comments or samples ->
        ``"dcgm"``; a header with timestamp, host, gpu and source -> ``"table"``;
        nvidia-smi header names or headerless nvidia-smi rows -> ``"nvidia-smi"``), or one
        of those for every file.
    lazy
        Return a ``polars.LazyFrame``. Each file is still validated at the call (see the
        conventions above); the check that no (host, GPU) slot holds two GPUs at once
        runs on eager reads only.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        ``TELEMETRY_SCHEMA``. A table may omit the nullable columns (null-filled).

    Raises
    ------
    InputError
        A file is missing or not telemetry, a glob matches no files or mixes Parquet with
        text logs, or a file (named) has a bad line.

    Examples
    --------
    >>> frame = read_telemetry("telemetry/")  # a folder of Parquet files  # doctest: +SKIP
    >>> frame = read_telemetry("logs/*.csv.gz")  # one host per file, named by host  # doctest: +SKIP
    """
    if kind not in _KINDS:
        raise ParameterError("kind", f"one of {', '.join(_KINDS)}", kind)
    many = _matches(path)
    if many is not None:
        return _read_many(*many, kind, lazy=lazy)
    p = _existing(path, "telemetry input", folder=True)  # type: ignore[arg-type]  # one path
    return _read_one(p, kind, lazy=lazy)

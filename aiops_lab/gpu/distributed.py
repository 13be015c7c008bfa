"""GPU reviews of Dask DataFrames: whole GPUs per partition, summaries merged exactly.

:func:`aiops_lab.gpu.review` sends Dask inputs here. The time accounting of a GPU needs
all of its samples together (each sample's weight is the time to the GPU's next one),
and nothing else, so:

1. every row is tagged with its partition number and position (which keeps the input
   order within a GPU, as the in-memory review sees it), and the frame is shuffled on
   ``host`` and ``gpu`` so that every physical GPU -- its MIG instances included --
   lands whole in one partition;
2. each partition is reviewed on a worker by the same accountant as a streamed review
   (in batches of whole GPUs of about ``batch_rows`` samples), which leaves per-batch
   summaries: *runs* (stretches of a GPU's samples with the same labels, with their
   sums and peaks), one row of statistics per GPU, the samples condensed to 10-minute
   cells for the charts, and the period seen;
3. the summaries come back (their size grows with GPUs and label changes, not with
   samples), the GPUs are renumbered in (host, GPU, instance) order as in memory, and
   the review's own merge builds every table from them.

Every table is an aggregation of the runs, so the result equals the in-memory review
up to floating-point summation order; :attr:`GpuReview.samples` holds the condensed
cells, as in a streamed review.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import get_namespace
from aiops_lab.drift.distributed import _to_polars, is_dask_frame
from aiops_lab.errors import EmptyInputError, ParameterError
from aiops_lab.gpu.analysis import (
    _GPU_KEY,
    BATCH_ROWS,
    _Accountant,
    _as_time,
    _batch_filter,
    _plan_batches,
    _read_jobs,
    _source,
    load_prices,
)
from aiops_lab.gpu.attribution import _hosts_from_gpus, attribute_jobs, usage_known
from aiops_lab.gpu.result import GpuReview
from aiops_lab.progress import dask_compute

__all__ = ["dask_telemetry", "is_dask_frame", "review_dask"]

#: the columns that carry a row's place in the input through the shuffle
_PART, _ROW = "__part__", "__row__"


@dataclass
class _Spec:
    """What every partition needs: the period, the accounting settings, small tables."""

    start: Any
    end: Any
    threshold: float
    backend: str | None
    prices: pl.DataFrame
    owners: pl.DataFrame | None
    batch_rows: int
    #: Slurm jobs and the fleet's GPUs per host, to put unnamed samples down to jobs
    attribution: tuple[pl.DataFrame, pl.DataFrame] | None = None


def _tag(part: Any, partition_info: dict[str, Any] | None = None) -> Any:
    """Each row's partition number and position in it (Dask passes ``partition_info``)."""
    number = (partition_info or {}).get("number", 0)
    return part.assign(
        **{
            _PART: np.full(len(part), number, dtype=np.int64),
            _ROW: np.arange(len(part), dtype=np.int64),
        }
    )


def _prepare(part: Any, spec: _Spec) -> pl.DataFrame:
    """A partition as the in-memory review prepares its telemetry."""
    frame = _to_polars(part)
    if _PART in frame.columns:
        frame = frame.sort(_PART, _ROW).drop(_PART, _ROW)
    ts = frame.schema.get("timestamp")
    if isinstance(ts, pl.Datetime) and ts.time_unit != "us":  # pandas holds nanoseconds
        frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us", ts.time_zone)))
    frame = _source(frame, spec.start, spec.end)
    if spec.attribution is not None:  # the telemetry names no job: whole-node jobs
        frame = attribute_jobs(frame, *spec.attribution)
    if spec.owners is not None:  # attribute samples to users through their Slurm job
        frame = (
            frame.join(spec.owners, on="job_id", how="left", maintain_order="left")
            .with_columns(pl.coalesce("user", "_job_user").alias("user"))
            .drop("_job_user")
        )
    return frame


def _partition_review(part: Any, spec: _Spec) -> dict[str, Any]:
    """The accountant's summaries of one partition of whole GPUs."""
    frame = _prepare(part, spec)
    xp, _ = get_namespace(spec.backend)
    account = _Accountant(xp, spec.threshold, spec.prices)
    if frame.height > spec.batch_rows:
        sizes = frame.group_by("host", "gpu").agg(pl.len().alias("n")).sort("host", "gpu", nulls_last=True)  # fmt: skip
        for batch in _plan_batches(sizes, spec.batch_rows):
            account.add(frame.filter(_batch_filter(batch)), condense=True)
    elif frame.height:
        account.add(frame, condense=True)
    return {
        "rows": frame.height,
        "runs": account.runs,
        "gpus": account.gpus,
        "samples": account.samples,
        "period": account.period,
    }


def _merge(parts: list[dict[str, Any]], account: _Accountant) -> None:
    """Hand the partitions' summaries to ``account``, GPUs renumbered as in memory.

    In memory, GPU ``_g`` counts GPUs in (host, GPU, instance) order and ``_pg``
    physical GPUs in that order; every table reads runs in ``_g`` order.
    """
    gpus, runs, samples = [], [], []
    for i, part in enumerate(parts):
        tag = pl.lit(i, dtype=pl.Int64).alias(_PART)
        gpus += [g.with_columns(tag) for g in part["gpus"]]
        runs += [r.with_columns(tag) for r in part["runs"]]
        samples += part["samples"]
        account.period += part["period"]
    if not runs:
        return
    table = (
        pl.concat(gpus, how="vertical_relaxed")
        .sort(list(_GPU_KEY), nulls_last=True)
        .with_columns(
            pl.int_range(pl.len(), dtype=pl.Int64).alias("_new_g"),
            pl.struct("host", "gpu").rle_id().cast(pl.Int64).alias("_new_pg"),
        )
    )
    ids = table.select(_PART, "_g", "_new_g", "_new_pg")
    merged = (
        pl.concat(runs, how="vertical_relaxed")
        .join(ids, on=[_PART, "_g"], how="left", maintain_order="left")
        .with_columns(pl.col("_new_g").alias("_g"), pl.col("_new_pg").alias("_pg"))
        .drop(_PART, "_new_g", "_new_pg")
        .sort("_g", maintain_order=True)
    )
    account.runs = [merged]
    account.gpus = [
        table.with_columns(pl.col("_new_g").alias("_g")).drop(_PART, "_new_g", "_new_pg")
    ]
    account.samples = [
        pl.concat(samples, how="vertical_relaxed").sort(
            list(_GPU_KEY), nulls_last=True, maintain_order=True
        )
    ]


def review_dask(
    telemetry: Any,
    jobs: Any = None,
    prices: Any = None,
    idle_threshold: float = 5.0,
    *,
    start: Any = None,
    end: Any = None,
    alert_idle_share: float = 0.3,
    alert_idle_cost: float | None = None,
    backend: str | None = None,
    batch_rows: int = BATCH_ROWS,
    npartitions: int | None = None,
    client: Any = None,
    progress: bool | None = None,
) -> GpuReview:
    """:func:`aiops_lab.gpu.review` of a Dask DataFrame in the telemetry schema.

    The arguments are those of ``review`` (``batch_rows`` bounds the samples accounted
    at once on a worker), plus ``npartitions``, the partitions of whole GPUs after the
    shuffle (default: as many as the input has), and ``client``, a
    ``distributed.Client`` to run on (default: Dask's current scheduler). ``jobs`` and
    ``prices`` are small and stay in memory. Only the per-partition summaries come
    back; :attr:`GpuReview.samples` holds 10-minute cells, as a streamed review's.
    ``params["dask"]`` records the partitions reviewed. ``progress`` (default: on, off
    in reports) shows a bar of the cluster's tasks.
    """
    import dask

    started = time.perf_counter()
    if not is_dask_frame(telemetry):
        raise ParameterError("telemetry", "a Dask DataFrame", type(telemetry).__name__)
    if not isinstance(idle_threshold, (int, float)) or not 0 <= idle_threshold <= 100:
        raise ParameterError(
            "idle_threshold", "a utilization percentage between 0 and 100", idle_threshold
        )
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ParameterError("batch_rows", "a positive number of samples", batch_rows)
    if npartitions is not None and (
        not isinstance(npartitions, int) or isinstance(npartitions, bool) or npartitions < 1
    ):
        raise ParameterError("npartitions", "a positive number of partitions", npartitions)
    _, info = get_namespace(backend)
    jobs = _read_jobs(jobs)
    owners = None
    if jobs is not None:
        owners = jobs.select("job_id", pl.col("user").alias("_job_user")).unique(
            "job_id", keep="first", maintain_order=True
        )
    wanted = ["timestamp", *_GPU_KEY, "util_pct", "sm_active", "mem_used_mib", "mem_total_mib",
              "power_w", "temp_c", "model", "mig_profile", "user", "job_id", "pod", "namespace"]  # fmt: skip
    frame = telemetry[[c for c in wanted if c in telemetry.columns]]
    known, attribution = None, None
    if jobs is not None and "nodes" in jobs.columns and jobs["nodes"].drop_nulls().len():
        hosts = _hosts(_in_period(frame, start, end), client, progress)
        known = usage_known(jobs, hosts)
        attribution = None if hosts["named"].all() else (jobs, hosts)
    spec = _Spec(
        start=start, end=end, threshold=float(idle_threshold), backend=backend,
        prices=load_prices(prices), owners=owners, batch_rows=batch_rows,
        attribution=attribution,
    )  # fmt: skip
    # checks the columns, the period and the types on the (empty) metadata, here
    _prepare(telemetry._meta, spec)
    meta = _tag(frame._meta)
    tagged = frame.map_partitions(_tag, meta=meta)
    n_out = npartitions or telemetry.npartitions
    whole = tagged.shuffle(on=["host", "gpu"], npartitions=n_out)
    spec_node = dask.delayed(spec, pure=True, traverse=False)
    review_part = dask.delayed(_partition_review, pure=True)
    tasks = [review_part(p, spec_node) for p in whole.to_delayed()]
    parts = dask_compute(tasks, client=client, enabled=progress is not False)
    if sum(p["rows"] for p in parts) == 0:
        raise EmptyInputError(
            "The telemetry has no samples"
            + (" in the requested period" if start or end else "")
            + "."
        )
    account = _Accountant(None, spec.threshold, spec.prices)
    _merge(parts, account)
    params = {
        "idle_threshold": idle_threshold, "alert_idle_share": alert_idle_share,
        "alert_idle_cost": alert_idle_cost,
        "dask": {"partitions": int(telemetry.npartitions), "shuffled_partitions": n_out},
    }  # fmt: skip
    return account.result(jobs, started, info, params, known=known)


def _in_period(frame: Any, start: Any, end: Any) -> Any:
    """A Dask frame's samples from ``start`` to before ``end``, as ``_source`` keeps them."""
    import pandas as pd

    zone = getattr(frame._meta["timestamp"].dtype, "tz", None)
    for value, name, keep in ((start, "start", True), (end, "end", False)):
        if value is None:
            continue
        bound = pd.Timestamp(_as_time(value, name))
        if bound.tzinfo is None and zone is not None:
            bound = bound.tz_localize("UTC")
        elif bound.tzinfo is not None and zone is None:
            bound = bound.tz_convert("UTC").tz_localize(None)
        frame = frame[frame["timestamp"] >= bound] if keep else frame[frame["timestamp"] < bound]
    return frame


def _hosts(frame: Any, client: Any, progress: bool | None) -> pl.DataFrame:
    """:func:`~aiops_lab.gpu.attribution.gpus_per_host` of a Dask frame, on the cluster."""
    spec: dict[str, Any] = {"timestamp": ["min", "max", "size"]}
    keys = ["host", "gpu", *(["mig_instance"] if "mig_instance" in frame.columns else [])]
    if "job_id" in frame.columns:
        spec["job_id"] = "count"  # non-null values
    # observed: a categorical host groups by the hosts present, as in memory
    grouped = frame[[*keys, *spec]].groupby(keys, observed=True, dropna=False)
    per_key = dask_compute(grouped.agg(spec), client=client, enabled=progress is not False)
    per_key.columns = ["_".join(c) if isinstance(c, tuple) else c for c in per_key.columns]
    table = pl.from_pandas(per_key.reset_index())
    return _hosts_from_gpus(
        table.select(
            pl.col("host").cast(pl.Utf8),
            "gpu",
            (pl.col("job_id_count") > 0 if "job_id" in spec else pl.lit(False)).alias("named"),
            (pl.col("mig_instance").is_not_null() if "mig_instance" in keys else pl.lit(False)).alias("mig"),
            pl.col("timestamp_min").alias("first"),
            pl.col("timestamp_max").alias("last"),
            pl.col("timestamp_size").alias("n"),
        )
    )  # fmt: skip


def dask_telemetry(source: Any, client: Any = None, *, kind: str = "auto") -> tuple[Any, bool]:
    """``source`` as a Dask DataFrame for :func:`review_dask`, and whether the workers read it.

    Parquet telemetry (a file, a folder of files or a glob, or ``"bundled:..."``) is
    read lazily by the workers. A text log (nvidia-smi CSV, dcgm-exporter scrape) is
    parsed as a whole, so it is read here with :func:`aiops_lab.gpu.read_telemetry`
    and split into one partition per worker thread of ``client`` (2 without one): it
    must fit in this process's memory; ``kind`` is its kind (default: sniffed; see
    :func:`~aiops_lab.gpu.read_telemetry`). Returns ``(frame, read_on_workers)``.
    """
    import glob
    from pathlib import Path

    from aiops_lab.datasets import resolve_path
    from aiops_lab.gpu.sources import read_telemetry
    from aiops_lab.reporting import check_dask, dask_frame

    check_dask("A GPU review on Dask")
    import dask.dataframe as dd

    path = resolve_path(source)
    text = str(path)
    files = glob.glob(text) if glob.has_magic(text) and not path.exists() else [text]
    parquet = bool(files) and all(
        Path(f).is_file() and Path(f).suffix.lower() in (".parquet", ".pq") for f in files
    )
    if path.is_dir() or parquet:
        return dask_frame(source, name="telemetry"), True
    frame = read_telemetry(path, kind=kind)
    threads = sum(client.nthreads().values()) if client is not None else 2
    return dd.from_pandas(frame.to_pandas(), npartitions=max(1, threads), sort=False), False

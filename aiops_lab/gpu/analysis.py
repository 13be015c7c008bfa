"""``review``: who used which GPUs how well, how many GPU-hours sat idle, what it cost.

Data flows load (sources) -> per-sample time accounting on the array backend (kernels)
-> runs (a GPU's consecutive samples with the same model, user, job and pod, with their
sums) -> roll-ups per GPU, host, job, user and pod from the runs -> a :class:`GpuReview`
that only presents. Large lazy or Parquet inputs are accounted in pieces -- chunks of a
log read in time order, or batches of whole GPUs -- whose runs add up to the same roll-ups.
"""

from __future__ import annotations

import functools
import operator
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.backend import from_numpy, get_namespace, to_numpy
from aiops_lab.errors import ColumnNotFoundError, EmptyInputError, InputError, ParameterError
from aiops_lab.gpu import kernels as K
from aiops_lab.gpu.accounting import (
    _GPU_KEY,
    _LABELS,
    _VALUES,
    _Accountant,
    _floats,
    _KeyCoder,
    _ordered,
    _OutOfOrder,
    _profiles_of,
    _Restart,
    chunk_query,
)
from aiops_lab.gpu.attribution import (
    _hosts_from_gpus,
    attribute_jobs,
    gpus_per_host,
    usage_known,
)
from aiops_lab.gpu.counting import StatsCounter, whole_percent
from aiops_lab.gpu.result import GpuReview
from aiops_lab.gpu.rollups import MEMORY_TIERS, NO_JOB
from aiops_lab.progress import progress_bar

__all__ = ["MEMORY_TIERS", "NO_JOB", "load_prices", "review"]

_REQUIRED = ("timestamp", "host", "gpu", "util_pct", "mem_used_mib", "mem_total_mib")


def load_prices(prices: Any = None) -> pl.DataFrame:
    """The GPU price table: ``model`` (substring to match) and ``price_per_gpu_hour_usd``.

    ``None`` loads the bundled, dated table of illustrative on-demand prices; a path to
    a CSV with those two columns, a polars frame, or a ``{model: price}`` dict
    overrides it.
    """
    if prices is None:
        from aiops_lab import datasets

        prices = datasets.data_dir() / "gpu" / "prices.csv"
    if isinstance(prices, dict):
        frame = pl.DataFrame(
            {"model": list(prices), "price_per_gpu_hour_usd": [float(v) for v in prices.values()]}
        )
    elif isinstance(prices, (str, Path)):
        from aiops_lab.datasets import resolve_path

        path = resolve_path(prices)
        if not path.exists():
            msg = f"Price table {str(path)!r} does not exist; expected a CSV with columns model, price_per_gpu_hour_usd."
            raise InputError(msg)
        frame = pl.read_csv(path)
    elif isinstance(prices, pl.DataFrame):
        frame = prices
    else:
        raise ParameterError(
            "prices",
            "None, a CSV path, a polars DataFrame or a {model: price} dict",
            type(prices).__name__,
        )
    for col in ("model", "price_per_gpu_hour_usd"):
        if col not in frame.columns:
            raise ColumnNotFoundError(col, "the price table", frame.columns)
    return frame.select(
        pl.col("model").cast(pl.Utf8), pl.col("price_per_gpu_hour_usd").cast(pl.Float64)
    )


#: samples per streaming batch, by default
BATCH_ROWS = 4_000_000
#: the columns the review reads, in this order
_COLUMNS = ("timestamp", *_GPU_KEY, *_VALUES, *_LABELS, "mig_profile")
_OPTIONAL = {
    "pod": pl.Utf8, "namespace": pl.Utf8, "sm_active": pl.Float64, "mig_instance": pl.Utf8,
    "job_id": pl.Utf8, "user": pl.Utf8, "model": pl.Utf8, "power_w": pl.Float64,
    "mig_profile": pl.Utf8, "temp_c": pl.Float64,
}  # fmt: skip


def review(
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
    progress: bool = False,
    streaming: bool | None = None,
    batch_rows: int = BATCH_ROWS,
) -> GpuReview:
    """Account every GPU-hour in ``telemetry``: active or idle, by whom, at what cost.

    Each sample stands for the time until the same GPU's next sample, capped at twice
    that GPU's median interval (a gap in the log is not idle time); a GPU's last sample
    counts its median interval (a GPU with a single sample has no interval: 0 hours). A
    sample is idle when ``util_pct < idle_threshold`` or it has no utilization reading
    (nvidia-smi's ``[N/A]``, as for a GPU in MIG mode, whose instances dcgm-exporter
    reads).

    Parameters
    ----------
    telemetry : polars DataFrame / LazyFrame, Dask DataFrame, or a path
        Samples in the telemetry schema (see :mod:`aiops_lab.gpu.sources`). A path is
        read with :func:`aiops_lab.gpu.read_telemetry`; a Parquet file, a folder of
        Parquet files or a glob of them (``"telemetry/*.parquet"``) is scanned lazily.
        A Dask DataFrame is shuffled so each partition holds whole GPUs, summarised on
        the workers and merged exactly (:func:`aiops_lab.gpu.distributed.review_dask`).
    jobs : polars DataFrame or path, optional
        Slurm jobs (:func:`aiops_lab.gpu.read_sacct`) for queue waits and allocated
        GPU-hours. Telemetry that names no job at all (nvidia-smi logs, say) has its
        samples put down to the job that held their whole host at the time, from the
        jobs' node lists (:func:`aiops_lab.gpu.attribute_jobs`; Slurm does not record
        which GPUs of a node a job had, so a job on part of a node is not seen), in
        memory, streamed or on Dask alike. There, a job the telemetry does not show has
        unknown usage and waste (null), not a wasted allocation.
    prices : None, path, DataFrame or dict
        GPU hourly prices (default: the bundled illustrative table).
    idle_threshold : float
        Utilization (percent) below which a sample is idle (default 5).
    start, end : datetime or ISO string, optional
        Review only this period.
    alert_idle_share : float
        The review alerts when at least this share of GPU-hours was idle (default 0.3).
    alert_idle_cost : float, optional
        Alert instead when the idle cost (USD) exceeds this.
    backend : {"auto", "numpy", "cupy"}, optional
        Array backend for the accounting kernels.
    progress : bool
        Show a progress bar (over the chunks or batches when streaming, over the
        cluster's tasks on Dask).
    streaming : bool, optional
        Review the telemetry in pieces, so that memory is bounded by ``batch_rows``
        rather than by the log. ``None`` (default) streams a lazy or Parquet input
        holding more than ``batch_rows`` samples; a DataFrame is reviewed in memory
        unless ``True`` (then in batches of whole GPUs). A lazy input is read once, in
        chunks in the order it is read, each GPU's last sample held back until the next
        chunk: every GPU's sampling intervals and utilization readings are counted by
        value as they come (its median interval and p50 / p95, exactly), and the few
        samples whose interval exceeds 1.5 times a provisional median (taken from the
        GPU's first intervals) are weighed at the end, once the median is known. A GPU
        whose sampling gets much faster or slower along the log makes that guess fail:
        the log is then read twice, three columns first to count, then whole. Should a
        chunk go back in time for some GPU (files read out of time order), the log is
        accounted in batches of whole GPUs instead, each read from the input; should the
        intervals take more than :data:`COUNT_LIMIT` distinct values (times to the
        microsecond with jitter), the statistics come from such batches. Every way gives
        the in-memory result (up to floating-point summation order); only
        :attr:`GpuReview.samples` is condensed to 10-minute cells when streaming.
    batch_rows : int
        About how many samples one piece holds: chunks hold a quarter of it, batches of
        whole GPUs all of it (three times as many for three columns). The default, 4M,
        peaked at about 2.1 GB over the process in the benchmark at 100M samples.

    Returns
    -------
    GpuReview
    """
    started = time.perf_counter()
    if not isinstance(idle_threshold, (int, float)) or not 0 <= idle_threshold <= 100:
        raise ParameterError(
            "idle_threshold", "a utilization percentage between 0 and 100", idle_threshold
        )
    if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
        raise ParameterError("batch_rows", "a positive number of samples", batch_rows)
    # -- Dask DataFrames: reviewed on the workers, whole GPUs per partition --------------
    if type(telemetry).__module__.split(".")[0] in ("dask", "dask_expr", "dask_cudf"):
        from aiops_lab.gpu.distributed import is_dask_frame, review_dask

        if is_dask_frame(telemetry):
            return review_dask(telemetry, jobs, prices, idle_threshold, start=start, end=end, alert_idle_share=alert_idle_share, alert_idle_cost=alert_idle_cost, backend=backend, batch_rows=batch_rows, progress=progress)  # fmt: skip
    # -- end of the Dask hook ----------------------------------------------------------------
    xp, info = get_namespace(backend)
    frame = _source(telemetry, start, end)
    jobs = _read_jobs(jobs)
    price_table = load_prices(prices)
    account = _Accountant(xp, float(idle_threshold), price_table)
    empty = (
        "The telemetry has no samples" + (" in the requested period" if start or end else "") + "."
    )
    if isinstance(frame, pl.LazyFrame) and streaming is not False:
        # samples per GPU, samples without a time included (reading the times costs),
        # and with jobs whether the telemetry names any
        named = (
            [
                pl.col("job_id").is_not_null().any().alias("_named"),
                pl.col("timestamp").min().alias("_first"),
                pl.col("timestamp").max().alias("_last"),
            ]
            if jobs is not None
            else []
        )
        sizes = (
            frame.group_by(*_GPU_KEY).agg(pl.len().alias("n"), *named).collect(engine="streaming")
        )
        sizes = sizes.join(_profiles(frame, sizes), on=list(_GPU_KEY), how="left", nulls_equal=True)
        frame, known = _with_jobs(frame, jobs, _hosts_of(sizes) if jobs is not None else None)
        frame = frame.filter(pl.col("timestamp").is_not_null())
        total = int(sizes["n"].sum()) if sizes.height else 0
        if total == 0:
            raise EmptyInputError(empty)
        if streaming or total > batch_rows:
            account = _stream(frame, sizes, account, batch_rows=batch_rows, progress=progress, empty=empty)  # fmt: skip
        else:
            collected = frame.collect(engine="streaming")
            if collected.height == 0:
                raise EmptyInputError(empty)
            account.add(collected, condense=False)
    else:
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect(engine="streaming")
        frame, known = _with_jobs(frame, jobs)
        if frame.height == 0:
            raise EmptyInputError(empty)
        if streaming:  # the same batches as a lazy input, from memory
            sizes = (
                frame.group_by("host", "gpu")
                .agg(pl.len().alias("n"))
                .sort("host", "gpu", nulls_last=True)
            )
            for batch in progress_bar(
                _plan_batches(sizes, batch_rows), desc="gpu review", enabled=progress
            ):
                account.add(frame.filter(_batch_filter(batch)), condense=True)
        else:
            account.add(frame, condense=False)
    return account.result(jobs, started, info, {"idle_threshold": idle_threshold, "alert_idle_share": alert_idle_share, "alert_idle_cost": alert_idle_cost}, known=known)  # fmt: skip


def _hosts_of(sizes: pl.DataFrame) -> pl.DataFrame:
    """:func:`~aiops_lab.gpu.attribution.gpus_per_host` from the samples per GPU."""
    return _hosts_from_gpus(
        sizes.select(
            "host", "gpu", pl.col("_named").alias("named"),
            pl.col("mig_instance").is_not_null().alias("mig"),
            pl.col("_first").alias("first"), pl.col("_last").alias("last"), "n",
        )
    )  # fmt: skip


def _with_jobs(
    frame: Any, jobs: pl.DataFrame | None, hosts: pl.DataFrame | None = None
) -> tuple[Any, pl.DataFrame | None]:
    """``frame`` with its samples' jobs and users from Slurm, and whose usage it shows.

    On hosts whose samples name no job (nvidia-smi logs), samples are put down to the
    job that held the whole host at the time (:func:`attribute_jobs`); every sample
    with a job gets its user from it. ``hosts``: :func:`gpus_per_host` of ``frame``,
    when known. Also returns :func:`usage_known` of the jobs (None: no jobs, or no node
    lists to tell).
    """
    if jobs is None:
        return frame, None
    known = None
    if "nodes" in jobs.columns and jobs["nodes"].drop_nulls().len():
        hosts = gpus_per_host(frame) if hosts is None else hosts
        known = usage_known(jobs, hosts)
        if not hosts["named"].all():
            frame = attribute_jobs(frame, jobs, hosts)
    owners = jobs.select("job_id", pl.col("user").alias("_job_user")).unique(
        "job_id", keep="first", maintain_order=True
    )
    frame = (
        frame.join(
            owners.lazy() if isinstance(frame, pl.LazyFrame) else owners,
            on="job_id",
            how="left",
            maintain_order="left",
        )
        .with_columns(pl.coalesce("user", "_job_user").alias("user"))
        .drop("_job_user")
    )
    return frame, known


def _profiles(frame: pl.LazyFrame, sizes: pl.DataFrame) -> pl.DataFrame:
    """Each MIG instance's profile (its price), read only when there are MIG instances."""
    if sizes["mig_instance"].null_count() == sizes.height:
        return sizes.select(*_GPU_KEY, pl.lit(None, dtype=pl.Utf8).alias("mig_profile")).clear()
    return _profiles_of(frame)


def _stream(
    frame: pl.LazyFrame,
    sizes: pl.DataFrame,
    account: _Accountant,
    *,
    batch_rows: int,
    progress: bool,
    empty: str,
) -> _Accountant:
    """Account a long lazy log in bounded memory; see :func:`review` (``streaming``).

    One read, in chunks of ``batch_rows // 4`` samples in the order it is read, each
    GPU's last sample held back to the next chunk: the intervals and readings are
    counted as they come, and the few samples whose interval exceeds 1.5 times their
    GPU's provisional median are weighed at the end (:meth:`_Accountant.start_chunks`).
    Should that not hold exactly, a second way: first each GPU's median interval and
    utilization quantiles, counted from three columns (:func:`_counted_stats`; by
    batches of whole GPUs when there are too many distinct intervals), then the chunks
    with every sample's seconds known. A log that goes back in time for a GPU from one
    chunk to the next (files not in time order) is accounted in batches of whole GPUs,
    each read from the input.
    """
    by_gpu = (
        sizes.group_by("host", "gpu").agg(pl.col("n").sum()).sort("host", "gpu", nulls_last=True)
    )
    coder = _KeyCoder.of_keys(sizes)
    total = int(sizes["n"].sum())
    chunk_rows = max(batch_rows // 4, 1)
    time_dtype = frame.collect_schema()["timestamp"]
    xp, threshold, prices = account.xp, account.threshold, account.prices
    profiles = sizes.filter(pl.col("mig_profile").is_not_null()).select(*_GPU_KEY, "mig_profile")
    account.profiles = profiles
    account.start_chunks(coder, time_dtype=time_dtype)
    try:
        _account_chunks(frame, account, chunk_rows, total, progress=progress)
        if not account.seen.any():
            raise EmptyInputError(empty)
        return account
    except _OutOfOrder:
        return _by_gpu(frame, by_gpu, account, batch_rows=batch_rows, progress=progress)
    except _Restart as restart:
        reason = restart.reason
    finally:
        account.close()
    account = _Accountant(xp, threshold, prices)
    account.profiles = profiles
    counted: Any = None
    if reason != "count":
        counted, seen = _counted_stats(frame, coder, chunk_rows, xp, progress=progress, total=total)  # fmt: skip
        if counted is _OUT_OF_ORDER:
            return _by_gpu(frame, by_gpu, account, batch_rows=batch_rows, progress=progress)
    if counted is None:  # too many distinct intervals to count: a pass by whole GPUs
        sizes = frame.group_by(*_GPU_KEY).agg(pl.len().alias("n")).collect(engine="streaming")
        if sizes.height == 0:
            raise EmptyInputError(empty)
        coder = _KeyCoder.of_keys(sizes)
        counted = _interval_stats(frame, coder, sizes, 3 * batch_rows, xp)
    elif not seen.all():  # GPUs whose every sample lacks a time are left out
        if not seen.any():
            raise EmptyInputError(empty)
        coder = coder.subset(seen)
        counted = tuple(stat[seen] for stat in counted)
    account.start_chunks(coder, *counted, time_dtype=time_dtype)
    try:
        _account_chunks(frame, account, chunk_rows, total, progress=progress)
        return account
    except _OutOfOrder:
        pass
    finally:
        account.close()
    return _by_gpu(frame, by_gpu, account, batch_rows=batch_rows, progress=progress)


def _account_chunks(
    frame: pl.LazyFrame, account: _Accountant, chunk_rows: int, total: int, *, progress: bool
) -> None:
    """Read ``frame`` in chunks into ``account`` (see :meth:`_Accountant.start_chunks`)."""
    assert account.coder is not None
    counter = account.counter
    if counter is not None:
        account.check = _single_read_checks(account, counter, chunk_rows, total)
    query = chunk_query(frame, account.coder, counting=counter is not None)
    for chunk in progress_bar(
        _chunks(query, chunk_rows), desc="gpu review", enabled=progress,
        total=-(-total // chunk_rows),
    ):  # fmt: skip
        account.add_chunk(chunk, final=False)
    account.finish_chunks()


def _single_read_checks(
    account: _Accountant, counter: StatsCounter, chunk_rows: int, total: int
) -> Any:
    """What a single read checks once each chunk is counted: :class:`_Restart` early."""
    chunks = 0

    def check(rows: int) -> None:
        nonlocal chunks
        chunks += 1
        # a GPU sampled faster than its first intervals said (its provisional median
        # too high): known for sure only at the end, but best given up early
        if (chunks in (4, 8) or chunks % 16 == 0) and not account.provisional_holds():
            raise _Restart("median")
        if counter.too_many(rows, COUNT_LIMIT, after=4 * chunk_rows, total=total):
            raise _Restart("count")

    return check


def _by_gpu(
    frame: pl.LazyFrame,
    by_gpu: pl.DataFrame,
    account: _Accountant,
    *,
    batch_rows: int,
    progress: bool,
) -> _Accountant:
    """Account ``frame`` in batches of whole GPUs, each read from the input."""
    account = _Accountant(account.xp, account.threshold, account.prices)
    for batch in progress_bar(
        _plan_batches(by_gpu, batch_rows), desc="gpu review (by GPU)", enabled=progress
    ):
        account.add(frame.filter(_batch_filter(batch)).collect(engine="streaming"), condense=True)
    return account


def _chunks(frame: pl.LazyFrame, rows: int) -> Any:
    """``frame`` in chunks of about ``rows`` samples, in order, by the streaming engine."""
    batches = getattr(frame, "collect_batches", None)
    if batches is None:  # older polars: slices of the query
        offset = 0
        while True:
            chunk = frame.slice(offset, rows).collect(engine="streaming")
            if chunk.height:
                yield chunk
            if chunk.height < rows:
                return
            offset += rows
    stream = batches(chunk_size=rows, maintain_order=True)
    try:
        yield from stream
    finally:
        stop = getattr(stream, "stop", None)
        if stop is not None:
            stop()


#: distinct (GPU, interval) and (GPU, utilization) pairs the counting pass holds
COUNT_LIMIT = 1 << 22
#: :func:`_counted_stats`: the log goes back in time for some GPU between chunks
_OUT_OF_ORDER = object()


def _counted_stats(
    frame: pl.LazyFrame, coder: _KeyCoder, chunk_rows: int, xp: Any, *, progress: bool, total: int
) -> Any:
    """Median interval and utilization p50 / p95 of every GPU, from one read of three columns.

    The log is read in chunks in its own order; each GPU's intervals (its last time
    carried to the next chunk) and utilization readings are *counted* per distinct
    value, and the order statistics come from the counts: exact, in memory bounded by
    the distinct values (intervals to the microsecond, readings mostly whole percents).
    Returns ``(median, p50, p95)``, or ``None`` when more than :data:`COUNT_LIMIT`
    distinct pairs turn up (the caller reads whole GPUs instead), or :data:`_OUT_OF_ORDER`
    when a chunk goes back in time for some GPU (the log must then be accounted by GPU);
    and which GPUs had a sample (complete only with the statistics).
    """
    n = coder.table.height
    keys = [coder.code_expr()] if coder.fits else [pl.col(c) for c in _GPU_KEY]
    query = frame.select(
        *keys,
        pl.col("timestamp").dt.epoch("us").alias("_t"),
        pl.col("util_pct").cast(pl.Float64),
        whole_percent(),
    )
    no_time = np.iinfo(np.int64).min
    last_t = np.full(n, no_time, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    counter = StatsCounter(n)
    for chunk in progress_bar(
        _chunks(query, chunk_rows), desc="gpu review (statistics)", enabled=progress,
        total=-(-total // chunk_rows),
    ):  # fmt: skip
        if chunk.height == 0:
            continue
        ids = coder.ids(chunk)
        counter.add_readings(ids, chunk["_whole"].to_numpy(), chunk["util_pct"])
        _, group, t_us = _ordered(ids, chunk["_t"].to_numpy(), n)
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        first_group = group[starts]
        before = last_t[first_group]
        if bool(np.any(t_us[starts] < before)):
            return _OUT_OF_ORDER, seen
        seen[first_group] = True
        dt = np.empty_like(t_us)
        dt[0] = 0
        np.subtract(t_us[1:], t_us[:-1], out=dt[1:])
        dt[starts] = t_us[starts] - before
        valid = np.ones(t_us.shape[0], dtype=bool)
        valid[starts] = before != no_time
        last_t[first_group] = t_us[np.r_[starts[1:] - 1, t_us.shape[0] - 1]]
        if not valid.all():
            dt, group = dt[valid], group[valid]
        if not counter.add_intervals(group, dt):  # intervals over 12.7 days
            return None, seen
        if counter.too_many(chunk.height, COUNT_LIMIT, after=4 * chunk_rows, total=total):
            return None, seen
    return (counter.medians(xp), *counter.quantiles(xp)), seen


def _interval_stats(
    frame: pl.LazyFrame, coder: _KeyCoder, sizes: pl.DataFrame, batch_rows: int, xp: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median sampling interval and utilization p50 / p95 of every GPU of ``coder``.

    Reads three columns (the GPU's key code, computed in the query, the time and the
    utilization) for consecutive GPUs of about ``batch_rows`` samples at a time.
    """
    table = coder.table
    n = table.height
    counts = (
        table.join(sizes, on=list(_GPU_KEY), how="left", nulls_equal=True)
        .sort("_g")["n"]
        .fill_null(0)
        .to_numpy()
    )
    median, p50, p95 = np.zeros(n), np.full(n, np.nan), np.full(n, np.nan)
    lo, rows = 0, 0
    spans = []
    for g, count in enumerate(counts):
        if g > lo and rows + count > batch_rows:
            spans.append((lo, g - 1))
            lo, rows = g, 0
        rows += int(count)
    spans.append((lo, n - 1))
    for first, last in spans:
        # the batch's GPUs by plain comparisons the Parquet reader applies as it reads;
        # key codes only for the rows kept
        pairs = list(
            table.slice(first, last - first + 1).select("host", "gpu").unique().iter_rows()
        )
        kept = frame.filter(_batch_filter(pairs))
        if coder.fits:
            part = kept.select(coder.code_expr(), "timestamp", "util_pct").collect(
                engine="streaming"
            )
        else:
            part = kept.select(*_GPU_KEY, "timestamp", "util_pct").collect(engine="streaming")
        ids = coder.ids(part)
        inside = (ids >= first) & (ids <= last)  # MIG siblings outside the span
        if not inside.all():
            part, ids = part.filter(pl.Series(inside)), ids[inside]
        if part.height == 0:
            continue
        n_local = last - first + 1
        order, group, t_us = _ordered(
            ids - first, part["timestamp"].dt.epoch("us").to_numpy(), n_local
        )
        g_x = from_numpy(group, xp)
        median[first : last + 1] = to_numpy(
            K.median_intervals(xp, g_x, from_numpy(t_us, xp), n_local)
        )
        util = from_numpy(_floats(part["util_pct"], order), xp)
        q50, q95 = K.grouped_quantiles(xp, g_x, util, n_local, (0.5, 0.95))
        p50[first : last + 1], p95[first : last + 1] = to_numpy(q50), to_numpy(q95)
    return median, p50, p95


def _source(telemetry: Any, start: Any, end: Any) -> pl.DataFrame | pl.LazyFrame:
    """The review's columns of ``telemetry`` in the period, eager or lazy as given."""
    if isinstance(telemetry, (str, Path)):
        telemetry = _open(telemetry)
    if not isinstance(telemetry, (pl.DataFrame, pl.LazyFrame)):
        raise ParameterError(
            "telemetry",
            "a polars DataFrame/LazyFrame in the telemetry schema, or a path",
            type(telemetry).__name__,
        )
    columns = telemetry.collect_schema().names()
    for col in _REQUIRED:
        if col not in columns:
            raise ColumnNotFoundError(
                col,
                "the telemetry",
                columns,
                "The review needs " + ", ".join(_REQUIRED) + " (aiops_lab.gpu.TELEMETRY_SCHEMA); "
                "the readers (read_telemetry, read_nvidia_smi, read_dcgm) produce them.",
            )
    telemetry = telemetry.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in _OPTIONAL.items() if c not in columns
    )
    if start is not None:
        telemetry = telemetry.filter(pl.col("timestamp") >= _as_time(start, "start"))
    if end is not None:
        telemetry = telemetry.filter(pl.col("timestamp") < _as_time(end, "end"))
    # categorical or enum inputs become plain text
    text = ("host", "mig_instance", *_LABELS, "mig_profile")
    return telemetry.select(
        *(pl.col(c) for c in _COLUMNS if c not in ("gpu", *text)),
        pl.col("gpu").cast(pl.Int32),
        *(pl.col(c).cast(pl.Utf8) for c in text),
    ).select(_COLUMNS)


def _open(path: str | Path) -> pl.DataFrame | pl.LazyFrame:
    """A path: Parquet (file, folder or glob) stays lazy; text logs are read now, checked whole."""
    import glob

    from aiops_lab.datasets import resolve_path
    from aiops_lab.gpu.sources import read_telemetry

    p = resolve_path(path)
    text = str(p)
    if glob.has_magic(text) and not p.exists():
        parquet = all(Path(f).suffix.lower() in (".parquet", ".pq") for f in glob.glob(text))
        return read_telemetry(text, lazy=True) if parquet else read_telemetry(text)
    if p.is_dir() or p.suffix.lower() in (".parquet", ".pq"):
        return read_telemetry(p, lazy=True)
    return read_telemetry(p)


def _plan_batches(sizes: pl.DataFrame, batch_rows: int) -> list[list[tuple[Any, int]]]:
    """Consecutive GPUs (in host, GPU order) of about ``batch_rows`` samples each."""
    batches: list[list[tuple[Any, int]]] = []
    current: list[tuple[Any, int]] = []
    rows = 0
    for host, gpu, n in sizes.iter_rows():
        if current and rows + n > batch_rows:
            batches.append(current)
            current, rows = [], 0
        current.append((host, gpu))
        rows += n
    if current:
        batches.append(current)
    return batches


def _batch_filter(batch: list[tuple[Any, int]]) -> pl.Expr:
    """Rows of the batch's GPUs, as plain comparisons the Parquet reader can push down."""
    by_host: dict[Any, list[int]] = {}
    for host, gpu in batch:
        by_host.setdefault(host, []).append(gpu)
    terms = []
    for host, gpus in by_host.items():
        on_host = pl.col("host").is_null() if host is None else pl.col("host") == host
        known = [g for g in gpus if g is not None]
        gpu = pl.col("gpu").is_in(known)
        if len(known) < len(gpus):
            gpu = gpu | pl.col("gpu").is_null()
        terms.append(on_host & gpu)
    return functools.reduce(operator.or_, terms)


def _as_time(value: Any, name: str) -> Any:
    try:
        return (
            pl.Series([value]).cast(pl.Utf8).str.to_datetime(time_zone="UTC")[0]
            if isinstance(value, str)
            else value
        )
    except Exception:
        raise ParameterError(name, "a datetime or an ISO timestamp", value) from None


def _read_jobs(jobs: Any) -> pl.DataFrame | None:
    if jobs is None:
        return None
    if isinstance(jobs, (str, Path)):
        from aiops_lab.datasets import resolve_path
        from aiops_lab.gpu.sources import read_sacct

        jobs = read_sacct(resolve_path(jobs))
    if not isinstance(jobs, pl.DataFrame):
        raise ParameterError(
            "jobs", "a polars DataFrame from read_sacct or a sacct file path", type(jobs).__name__
        )
    return jobs

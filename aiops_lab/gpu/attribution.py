"""Jobs for telemetry without job ids, from Slurm's node lists and times.

nvidia-smi logs carry no job id, and neither do dcgm-exporter scrapes without the HPC job
mapping. Slurm accounting says which nodes each job held and when, but not which GPU
indices: a sample can be put down to a job for sure only when that job held every GPU
of the sample's host at the sample's time (a whole-node allocation). Those samples get
the job's id; the others keep none, and the review says their jobs' usage is unknown
rather than counting their whole allocation as waste.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import polars as pl

from aiops_lab.errors import ColumnNotFoundError, InputError

__all__ = [
    "attribute_jobs",
    "expand_hostlist",
    "gpus_per_host",
    "usage_known",
    "whole_node_windows",
]

_GROUP = re.compile(r"\[([^\[\]]*)\]")


def expand_hostlist(text: str) -> list[str]:
    """The host names of a Slurm host list, in order.

    ``"gpu-node-[01-03,07]"`` is gpu-node-01, -02, -03 and -07 (zero padding kept);
    several lists join with commas outside brackets, and a name may hold several bracket
    groups (``"rack[1-2]-n[1-2]"``: every combination).

    >>> expand_hostlist("gpu-node-[01-02],login1")
    ['gpu-node-01', 'gpu-node-02', 'login1']
    """
    hosts: list[str] = []
    for part in _split_top(text.strip()):
        if not part:
            continue
        pieces = _GROUP.split(part)  # text, group, text, group, ..., text
        if "[" in "".join(pieces[::2]) or "]" in "".join(pieces[::2]):
            msg = f"Slurm host list {text!r}: unbalanced brackets in {part!r}."
            raise InputError(msg)
        choices = [[p] if i % 2 == 0 else _range_items(p, text) for i, p in enumerate(pieces)]
        hosts.extend("".join(combo) for combo in itertools.product(*choices))
    return hosts


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside brackets."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"[": 1, "]": -1}.get(ch, 0)
        current.append(ch)
    parts.append("".join(current))
    return parts


def _range_items(group: str, text: str) -> list[str]:
    items: list[str] = []
    for item in group.split(","):
        lo, sep, hi = item.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            msg = f"Slurm host list {text!r}: {item!r} is not a number or a range like 01-04."
            raise InputError(msg)
        width = len(lo) if lo.startswith("0") else 0
        end = int(hi) if sep else int(lo)
        items.extend(str(n).zfill(width) for n in range(int(lo), end + 1))
    return items


def _node_rows(jobs: pl.DataFrame) -> pl.DataFrame:
    """One row per (job, node it held): ``job_id``, ``host``, ``start``, ``end`` and
    ``_per_node`` (its GPUs over its nodes). Jobs without nodes are left out."""
    for col in ("job_id", "nodes", "start", "end", "gpus"):
        if col not in jobs.columns:
            raise ColumnNotFoundError(col, "the jobs frame (read_sacct)", jobs.columns)
    rows: list[tuple[Any, ...]] = []
    for job_id, nodes, start, end, gpus in jobs.select(
        "job_id", "nodes", "start", "end", "gpus"
    ).iter_rows():
        if nodes is None:
            continue
        hosts = list(dict.fromkeys(expand_hostlist(nodes)))  # a host named twice: once
        share = None if gpus is None else gpus / len(hosts)
        rows.extend((job_id, h, start, end, share) for h in hosts)
    schema = {
        "job_id": pl.Utf8, "host": pl.Utf8, "start": jobs.schema["start"],
        "end": jobs.schema["end"], "_per_node": pl.Float64,
    }  # fmt: skip
    return pl.DataFrame(rows, schema=schema, orient="row")


def whole_node_windows(jobs: pl.DataFrame, hosts: pl.DataFrame) -> pl.DataFrame:
    """When each host was wholly held by one job: ``host``, ``start``, ``end``, ``job_id``.

    A job holds ``gpus / number of its nodes`` GPUs on each of its nodes; it holds a host
    whole when that is at least the GPUs the telemetry shows there (``hosts``: ``host``,
    ``n_gpus``, ``mig``). Left out: jobs without nodes, GPUs or times; hosts with MIG
    instances (Slurm counts each slice as a GPU, the telemetry a slice's GPU once); and
    windows that overlap another on their host (which job a sample was is unclear).
    """
    whole = hosts.filter(~pl.col("mig")) if "mig" in hosts.columns else hosts
    windows = (
        _node_rows(jobs)
        .filter(
            pl.col("start").is_not_null()
            & pl.col("end").is_not_null()
            & (pl.col("end") > pl.col("start"))
            & (pl.col("_per_node") > 0)
        )
        .join(whole.select("host", "n_gpus"), on="host", how="inner")
        .filter(pl.col("_per_node") >= pl.col("n_gpus"))
        .sort("host", "start", "end")
    )
    # a window overlaps a neighbour when it starts before the previous one ends, or
    # ends after the next one starts
    before = pl.col("end").cum_max().shift(1).over("host")
    after = pl.col("start").reverse().cum_min().reverse().shift(-1).over("host")
    clear = (pl.col("start") >= before).fill_null(True) & (pl.col("end") <= after).fill_null(True)
    return windows.filter(clear).select("host", "start", "end", "job_id")


def usage_known(jobs: pl.DataFrame, hosts: pl.DataFrame) -> pl.DataFrame:
    """``job_id``, ``known`` and ``alloc_seen_h``: whether the telemetry shows a job's GPU
    time, and the GPU-hours it held while the telemetry ran.

    A job's usage is known when it ran while its nodes had telemetry (``hosts``:
    ``first`` and ``end``, when their samples begin and stop counting) and each of its
    nodes either names jobs in its samples or was held whole by it
    (:func:`whole_node_windows`, put down to it by :func:`attribute_jobs`); a job
    without a node list, when the telemetry names jobs anywhere. ``alloc_seen_h`` counts
    only the part of the allocation inside each node's telemetry (all of it, without a
    node list). Otherwise (a host without telemetry, part of a node whose samples name
    no job, a MIG host) the usage is unknown.
    """
    named_any = bool(hosts["named"].any()) if hosts.height else False
    unnamed = hosts.filter(~pl.col("named"))
    whole = whole_node_windows(jobs, unnamed).select("job_id", "host", pl.lit(True).alias("_whole"))
    # the job's time inside the node's telemetry: 0 without telemetry there, null (so
    # unknown) without the job's own start or end
    seen_s = (
        pl.when(pl.col("start").is_null() | pl.col("end").is_null())
        .then(None)
        .when(pl.col("_h_first").is_null() | pl.col("_h_end").is_null())
        .then(0)
        .otherwise(
            pl.min_horizontal("end", "_h_end").cast(pl.Int64)
            - pl.max_horizontal("start", "_h_first").cast(pl.Int64)
        )
    )  # fmt: skip
    per_node = (
        _node_rows(jobs)
        .join(
            hosts.select(
                "host", "named",
                pl.col("first").cast(jobs.schema["start"]).alias("_h_first"),
                pl.col("end").cast(jobs.schema["end"]).alias("_h_end"),
            ),
            on="host", how="left",
        )
        .join(whole, on=["job_id", "host"], how="left")
        .with_columns(
            seen_s.clip(lower_bound=0).alias("_seen"),
        )
    )  # fmt: skip
    unit = (
        3600.0 * {"ns": 1e9, "us": 1e6, "ms": 1e3}[getattr(jobs.schema["start"], "time_unit", "us")]
    )
    node_known = per_node.group_by("job_id").agg(
        (
            (pl.col("named").fill_null(False) | pl.col("_whole").fill_null(False))
            & (pl.col("_seen") > 0).fill_null(False)
        )
        .all()
        .alias("known"),
        # unknown (null) when a node's share or time is
        pl.when(pl.col("_per_node").is_null().any() | pl.col("_seen").is_null().any())
        .then(None)
        .otherwise((pl.col("_per_node") * pl.col("_seen") / unit).sum())
        .alias("alloc_seen_h"),
    )
    return (
        jobs.select("job_id", pl.col("gpu_hours_alloc") if "gpu_hours_alloc" in jobs.columns else pl.lit(None, pl.Float64).alias("gpu_hours_alloc"))
        .unique("job_id", maintain_order=True)
        .join(node_known, on="job_id", how="left")
        .with_columns(
            pl.col("known").fill_null(named_any),
            pl.coalesce("alloc_seen_h", "gpu_hours_alloc").alias("alloc_seen_h"),
        )
        .drop("gpu_hours_alloc")
    )  # fmt: skip


def gpus_per_host(telemetry: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per host: ``n_gpus`` (physical GPUs the telemetry shows), ``named`` (whether any
    sample names a job), ``mig`` (whether it has MIG instances), ``first`` (its first
    sample) and ``end`` (when its samples stop counting: each GPU's last sample plus its
    mean interval), read in one pass."""
    cols = telemetry.collect_schema().names()
    mig = pl.col("mig_instance") if "mig_instance" in cols else pl.lit(None, pl.Utf8)
    per_key = (
        telemetry.lazy()
        .group_by("host", "gpu", mig.alias("_mig"))
        .agg(
            pl.col("job_id").is_not_null().any().alias("named"),
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
            pl.len().alias("n"),
        )
        .with_columns(pl.col("_mig").is_not_null().alias("mig"))
    )
    return _hosts_from_gpus(per_key.collect(engine="streaming"))


def _hosts_from_gpus(per_key: pl.DataFrame) -> pl.DataFrame:
    """:func:`gpus_per_host` from per-GPU (or per MIG instance) ``host``, ``gpu``,
    ``named``, ``mig``, ``first``, ``last`` and ``n`` (samples)."""
    step = (pl.col("last") - pl.col("first")) / (pl.col("n") - 1).clip(lower_bound=1)
    return per_key.group_by("host").agg(
        pl.col("gpu").n_unique().alias("n_gpus"),
        pl.col("named").any(),
        pl.col("mig").any(),
        pl.col("first").min(),
        (pl.col("last") + step).max().alias("end"),
    )


#: a host's place in the window keys: times in milliseconds stay below it until 2109
_HOST_MS = 1 << 42


def attribute_jobs(
    telemetry: pl.DataFrame | pl.LazyFrame,
    jobs: pl.DataFrame,
    hosts: pl.DataFrame | None = None,
) -> pl.DataFrame | pl.LazyFrame:
    """``telemetry`` with ``job_id`` filled where Slurm says one job held the whole host.

    On a host whose samples name no job (and without MIG instances), a sample that a
    job held whole (all the GPUs the telemetry shows there; see
    :func:`whole_node_windows`) between its start and end gets that job's id. The
    others keep theirs or none: without GPU indices in Slurm's accounting, a job on
    part of a node cannot be told apart from its neighbours. Rows and their order are
    kept; a lazy frame stays lazy and streams, batch by batch (each batch read with all
    its columns).

    Parameters
    ----------
    telemetry : polars.DataFrame or LazyFrame
        Samples in the telemetry schema (``timestamp``, ``host``, ``gpu``, ``job_id``).
    jobs : polars.DataFrame
        Jobs from :func:`~aiops_lab.gpu.read_sacct` (``job_id``, ``nodes``, ``start``,
        ``end``, ``gpus``).
    hosts : polars.DataFrame, optional
        :func:`gpus_per_host` of ``telemetry`` (``host``, ``n_gpus``, ``named``), when
        already read.

    Returns
    -------
    polars.DataFrame or LazyFrame
    """
    if hosts is None:
        hosts = gpus_per_host(telemetry)
    # hosts whose samples name jobs keep theirs alone
    windows = whole_node_windows(jobs, hosts.filter(~pl.col("named")))
    if windows.height == 0:
        return telemetry
    levels = hosts["host"].drop_nulls().unique().sort()
    code = {h: k for k, h in enumerate(levels.to_list())}
    # one sorted key per window, host first: the last window starting at or before a
    # sample's key is the only one that can hold it (a host is held whole by one job)
    w = windows.with_columns(
        pl.col("host").replace_strict(code, return_dtype=pl.Int64).alias("_h"),
        pl.col("start").dt.epoch("ms").alias("_s"),
        pl.col("end").dt.epoch("ms").alias("_e"),
    ).with_columns(
        (pl.col("_h") * _HOST_MS + pl.col("_s")).alias("_ks"),
        (pl.col("_h") * _HOST_MS + pl.col("_e")).alias("_ke"),
    ).sort("_ks")  # fmt: skip
    starts, ends, ids = w["_ks"], w["_ke"], w["job_id"]
    # a host the table does not know (not in ``hosts``) gets no job
    host = pl.col("host").cast(pl.Enum(levels.to_list()), strict=False).to_physical().cast(pl.Int64)
    key = host * _HOST_MS + pl.col("timestamp").dt.epoch("ms")
    at = (pl.lit(starts).search_sorted(key, side="right").cast(pl.Int64) - 1).clip(0)
    held = key.is_not_null() & (pl.lit(starts).gather(at) <= key) & (key < pl.lit(ends).gather(at))

    filled = (
        pl.when(pl.col("job_id").is_null() & held)
        .then(pl.lit(ids).gather(at))
        .otherwise(pl.col("job_id"))
        .alias("job_id")
    )
    if isinstance(telemetry, pl.DataFrame):
        return telemetry.with_columns(filled)
    # batch by batch, so a long log streams (the search is not a streaming expression);
    # every batch whole, so what a query reads cannot change which samples are filled
    return telemetry.map_batches(
        lambda batch: batch.with_columns(filled), streamable=True, validate_output_schema=False
    )

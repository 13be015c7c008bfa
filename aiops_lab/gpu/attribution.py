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

__all__ = ["attribute_jobs", "expand_hostlist", "whole_node_windows"]

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


def whole_node_windows(jobs: pl.DataFrame, gpus_per_host: pl.DataFrame) -> pl.DataFrame:
    """When each host was wholly held by one job: ``host``, ``start``, ``end``, ``job_id``.

    A job holds ``gpus / number of its nodes`` GPUs on each of its nodes; it holds a host
    whole when that is at least the GPUs the telemetry shows there (``gpus_per_host``:
    ``host``, ``n_gpus``). Jobs without nodes, GPUs or times are left out.
    """
    for col in ("job_id", "nodes", "start", "end", "gpus"):
        if col not in jobs.columns:
            raise ColumnNotFoundError(col, "the jobs frame (read_sacct)", jobs.columns)
    usable = jobs.filter(
        pl.col("nodes").is_not_null()
        & pl.col("start").is_not_null()
        & pl.col("end").is_not_null()
        & (pl.col("gpus").fill_null(0) > 0)
        & (pl.col("end") > pl.col("start"))
    )
    rows: list[tuple[Any, ...]] = []
    for job_id, nodes, start, end, gpus in usable.select(
        "job_id", "nodes", "start", "end", "gpus"
    ).iter_rows():
        hosts = expand_hostlist(nodes)
        rows.extend((h, start, end, job_id, gpus / len(hosts)) for h in hosts)
    schema = {
        "host": pl.Utf8, "start": jobs.schema["start"], "end": jobs.schema["end"],
        "job_id": pl.Utf8, "_per_node": pl.Float64,
    }  # fmt: skip
    windows = pl.DataFrame(rows, schema=schema, orient="row")
    return (
        windows.join(gpus_per_host, on="host", how="inner")
        .filter(pl.col("_per_node") >= pl.col("n_gpus"))
        .select("host", "start", "end", "job_id")
        .sort("host", "start")
    )


def attribute_jobs(telemetry: pl.DataFrame, jobs: pl.DataFrame) -> pl.DataFrame:
    """``telemetry`` with ``job_id`` filled where Slurm says one job held the whole host.

    A sample without a job id, on a host a job held whole (all the GPUs the telemetry
    shows on it; see :func:`whole_node_windows`) between its start and end, gets that
    job's id. Samples that have a job id keep it; the others keep none: without GPU
    indices in Slurm's accounting, a job on part of a node cannot be told apart from
    its neighbours. Row order is kept.

    Parameters
    ----------
    telemetry : polars.DataFrame
        Samples in the telemetry schema (``timestamp``, ``host``, ``gpu``, ``job_id``).
    jobs : polars.DataFrame
        Jobs from :func:`~aiops_lab.gpu.read_sacct` (``job_id``, ``nodes``, ``start``,
        ``end``, ``gpus``).

    Returns
    -------
    polars.DataFrame
    """
    need = telemetry.filter(pl.col("job_id").is_null() & pl.col("timestamp").is_not_null())
    if need.height == 0:
        return telemetry
    gpus_per_host = (
        telemetry.filter(pl.col("mig_instance").is_null() if "mig_instance" in telemetry.columns else pl.lit(True))
        .group_by("host")
        .agg(pl.col("gpu").n_unique().alias("n_gpus"))
    )  # fmt: skip
    windows = whole_node_windows(jobs, gpus_per_host)
    if windows.height == 0:
        return telemetry
    t_type = telemetry.schema["timestamp"]
    windows = windows.with_columns(pl.col("start", "end").cast(t_type))
    rows = (
        telemetry.with_row_index("_row")
        .filter(pl.col("job_id").is_null() & pl.col("timestamp").is_not_null())
        .select("_row", "host", "timestamp")
        .sort("host", "timestamp")
    )
    found = (
        rows.join_asof(
            windows.rename({"start": "timestamp", "job_id": "_job"}),
            on="timestamp",
            by="host",
            strategy="backward",
            check_sortedness=False,  # sorted by time within each host, as required
        )
        .filter(pl.col("timestamp") < pl.col("end"))
        .select("_row", "_job")
    )
    return (
        telemetry.with_row_index("_row")
        .join(found, on="_row", how="left", maintain_order="left")
        .with_columns(pl.coalesce("job_id", "_job").alias("job_id"))
        .drop("_row", "_job")
    )

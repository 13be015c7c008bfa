"""Bundled example datasets: a credit-risk model in production, a GPU cluster, AI spend.

``credit_reference`` is a credit-risk model's validation period (September 2026, all
labels known); ``credit_production`` is 30 days of its production traffic (October
2026) with drifts injected at known dates and labels that arrive 7 days late. Both are
Parquet files; ``datasets/README.md`` in the repository gives the schema and the exact
drift schedule.

The other files are named by their path inside the data folder (``gpu/sacct.txt``,
``finops/ai_spend_focus.csv.gz``), the same path that ``"bundled:<path>"`` names in the
analyses' arguments. They are raw exports (nvidia-smi and dcgm-exporter logs, a Slurm
``sacct`` dump, FOCUS bills, OpenTelemetry GenAI spans); :func:`load` parses each with
the reader of its format and returns the frame that reader gives.

>>> from aiops_lab import datasets
>>> datasets.list()[:3]
['credit_production', 'credit_reference', 'finops/ai_spend_focus.csv.gz']
>>> ref = datasets.load("credit_reference")
>>> prod = datasets.load("credit_production", lazy=True)  # a polars.LazyFrame
>>> jobs = datasets.load("gpu/sacct.txt")  # parsed by aiops_lab.gpu.read_sacct
"""

from __future__ import annotations

import builtins
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Literal, overload

import polars as pl

from aiops_lab.errors import InputError, ParameterError

__all__ = ["list", "load", "path", "describe", "data_dir", "resolve_path"]  # noqa: RUF022 - the order of the docs

_DESCRIPTIONS: dict[str, str] = {
    "credit_reference": (
        "Credit-risk model, validation period 2026-09-01..2026-09-30: "
        "features, score, prediction and known default labels."
    ),
    "credit_production": (
        "Credit-risk model, production 2026-10-01..2026-10-30: income drift (10-08), "
        "new 'partner' channel (10-15), employment_years decoupled from age (10-17; a joint "
        "shift that per-column tests miss), utilization nulls (10-20), concept drift and "
        "debt_to_income shift (10-22), a new embedding cluster in purpose_embedding "
        "(10-26); labels null from 10-24 (7-day delay)."
    ),
    "gpu/dcgm.prom.gz": (
        "GPU cluster (synthetic), 32 GPUs on 4 hosts, one week from 2026-10-05: "
        "dcgm-exporter Prometheus scrapes every 10 min, with Slurm job labels."
    ),
    "gpu/nvidia-smi/gpu-node-01.csv.gz": (
        "GPU cluster (synthetic): nvidia-smi CSV log of gpu-node-01 (8 A100), a sample "
        "per GPU every 2 min."
    ),
    "gpu/nvidia-smi/gpu-node-02.csv.gz": (
        "GPU cluster (synthetic): nvidia-smi CSV log of gpu-node-02 (8 A100), with a "
        "logging gap and a repeated header after the restart."
    ),
    "gpu/nvidia-smi/gpu-node-03.csv.gz": (
        "GPU cluster (synthetic): nvidia-smi CSV log of gpu-node-03 (8 H100), a sample "
        "per GPU every 2 min."
    ),
    "gpu/nvidia-smi/gpu-node-04.csv.gz": (
        "GPU cluster (synthetic): nvidia-smi CSV log of gpu-node-04 (8 H100), a sample "
        "per GPU every 2 min."
    ),
    "gpu/sacct.txt": (
        "GPU cluster (synthetic): Slurm accounting, `sacct --parsable2`, 220 jobs with their steps."
    ),
    "gpu/prices.csv": (
        "Illustrative on-demand prices per GPU-hour by GPU model (not a quote from any provider)."
    ),
    "finops/ai_spend_focus.csv.gz": (
        "AI spend (synthetic), FOCUS 1.1-style daily bill of a year, 2025-07-01..2026-06-30: "
        "GPU instances with a savings plan, storage, LLM API tokens; teams in Tags; a launch "
        "step 2026-03-16; injected anomalies 2025-10-21, 2026-02-17, 04-08, 05-12."
    ),
    "finops/genai_spans.jsonl.gz": (
        "AI spend (synthetic): one OpenTelemetry GenAI span per LLM call, 2025-07..2026-06, "
        "with team and feature; the calls behind the bill's API rows."
    ),
    "finops/focus1.0_sample_1000rows.csv": (
        "Real FOCUS 1.0 sample bill, 1,000 rows (AWS, Microsoft, Oracle; September 2024); "
        "FinOps Foundation, FOCUS Sample Data, CC BY 4.0."
    ),
}

#: name -> "module:function" that parses a file which is not Parquet
_READERS: dict[str, str] = {
    "gpu/dcgm.prom.gz": "aiops_lab.gpu:read_telemetry",
    "gpu/nvidia-smi/gpu-node-01.csv.gz": "aiops_lab.gpu:read_telemetry",
    "gpu/nvidia-smi/gpu-node-02.csv.gz": "aiops_lab.gpu:read_telemetry",
    "gpu/nvidia-smi/gpu-node-03.csv.gz": "aiops_lab.gpu:read_telemetry",
    "gpu/nvidia-smi/gpu-node-04.csv.gz": "aiops_lab.gpu:read_telemetry",
    "gpu/sacct.txt": "aiops_lab.gpu:read_sacct",
    "gpu/prices.csv": "aiops_lab.gpu:load_prices",
    "finops/ai_spend_focus.csv.gz": "aiops_lab.finops:read_focus",
    "finops/genai_spans.jsonl.gz": "aiops_lab.finops:read_token_usage",
    "finops/focus1.0_sample_1000rows.csv": "aiops_lab.finops:read_focus",
}

_REGENERATE = "python datasets/make_datasets.py"
_REGENERATE_BY_FOLDER = {
    "gpu": "python datasets/make_gpu_datasets.py",
    "finops": "python datasets/finops/make_finops_datasets.py",
}
_COPIED = {  # files taken from elsewhere, not generated
    "finops/focus1.0_sample_1000rows.csv": (
        "Copy it again from the FinOps Foundation's FOCUS Sample Data repository "
        "(FOCUS-1.0/focus_sample.csv); datasets/finops/README.md says which commit"
    ),
}


def _data_dir() -> Path:
    """The folder holding the Parquet files.

    A wheel carries them in ``aiops_lab/_datasets``; an editable install or a source
    checkout reads the repository's ``datasets/`` folder next to the package.
    """
    package = Path(__file__).resolve().parent
    bundled = package / "_datasets"
    if bundled.is_dir():
        return bundled
    return package.parent / "datasets"


def data_dir() -> Path:
    """The folder holding the bundled data files."""
    return _data_dir()


def resolve_path(value: str | Path) -> Path:
    """A path, where ``"bundled:<relative path>"`` names a file in the bundled data folder.

    >>> resolve_path("bundled:gpu/sacct.txt").name
    'sacct.txt'
    """
    text = str(value)
    if text.startswith("bundled:"):
        return data_dir() / text[len("bundled:") :]
    return Path(value).expanduser()


def list() -> builtins.list[str]:  # shadows the builtin on purpose: datasets.list()
    """Names of the bundled datasets.

    Returns
    -------
    list of str
        The names accepted by :func:`load` and :func:`path`, sorted: the credit-risk
        Parquet frames by name, the other files by their path in the data folder
        (``"gpu/sacct.txt"``), as written after ``bundled:``.

    Examples
    --------
    >>> from aiops_lab import datasets
    >>> [name for name in datasets.list() if name.startswith("credit")]
    ['credit_production', 'credit_reference']
    >>> "finops/ai_spend_focus.csv.gz" in datasets.list()
    True
    """
    return sorted(_DESCRIPTIONS)


def _check_name(name: str) -> None:
    if name not in _DESCRIPTIONS:
        raise ParameterError(
            name="name",
            expected=f"one of {list()}",
            got=name,
            fix="Call aiops_lab.datasets.list() to see the bundled datasets.",
        )


def _regenerate_hint(name: str) -> str:
    if name in _COPIED:
        return _COPIED[name]
    folder = name.split("/", 1)[0] if "/" in name else ""
    command = _REGENERATE_BY_FOLDER.get(folder, _REGENERATE)
    return f"Regenerate it from the repository root with: {command}"


def path(name: str) -> Path:
    """Location of a bundled dataset's file.

    Parameters
    ----------
    name : str
        A name from :func:`list`, e.g. ``"credit_production"`` or ``"gpu/sacct.txt"``.

    Returns
    -------
    pathlib.Path
        The absolute path of ``<name>.parquet`` for the credit-risk frames, of the file
        itself for the others.

    Raises
    ------
    aiops_lab.errors.ParameterError
        If ``name`` is not a bundled dataset.
    aiops_lab.errors.InputError
        If the file is missing (e.g. a source checkout without the data).
    """
    _check_name(name)
    file = _data_dir() / (name if name in _READERS else f"{name}.parquet")
    if not file.is_file():
        raise InputError(
            f"Dataset {name!r} was expected at {file}, but the file does not exist. "
            f"{_regenerate_hint(name)}."
        )
    return file


@overload
def load(name: str, *, lazy: Literal[False] = ...) -> pl.DataFrame: ...
@overload
def load(name: str, *, lazy: Literal[True]) -> pl.LazyFrame: ...
@overload
def load(name: str, *, lazy: bool) -> pl.DataFrame | pl.LazyFrame: ...


def load(name: str, *, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """Load a bundled dataset.

    Parameters
    ----------
    name : str
        A name from :func:`list`, e.g. ``"credit_reference"`` or ``"gpu/sacct.txt"``.
    lazy : bool, default False
        Return a :class:`polars.LazyFrame`. The Parquet frames are scanned, not read;
        the other files are parsed in full first (their formats cannot be scanned).

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        The credit-risk frames as stored (``timestamp`` is ``Datetime("us", "UTC")``).
        The other files as their reader returns them (the ``reader`` column of
        :func:`describe`): GPU telemetry in ``aiops_lab.gpu.TELEMETRY_SCHEMA``, one row
        per Slurm job, the GPU price table, a FOCUS bill from
        :func:`aiops_lab.finops.read_focus`, LLM calls from
        :func:`aiops_lab.finops.read_token_usage`.

    Raises
    ------
    aiops_lab.errors.ParameterError
        If ``name`` is not a bundled dataset.
    aiops_lab.errors.InputError
        If the file is missing.

    Examples
    --------
    >>> from aiops_lab import datasets
    >>> prod = datasets.load("credit_production")
    >>> prod.columns[:3]
    ['request_id', 'timestamp', 'age']
    >>> datasets.load("gpu/sacct.txt").height
    220
    """
    file = path(name)
    if name not in _READERS:
        return pl.scan_parquet(file) if lazy else pl.read_parquet(file)
    frame = _reader(name)(file)
    return frame.lazy() if lazy else frame


def _reader(name: str) -> Callable[[Path], pl.DataFrame]:
    module, function = _READERS[name].split(":")
    return getattr(importlib.import_module(module), function)


def describe() -> pl.DataFrame:
    """One row per bundled dataset.

    Returns
    -------
    polars.DataFrame
        Columns ``name`` (str), ``rows`` (int), ``columns`` (int), ``description`` (str)
        and ``reader`` (str: what :func:`load` parses the file with), sorted by name.
        Row and column counts are read from the Parquet metadata, not by loading the
        data; they are null for the other files, which would have to be parsed in full.

    Raises
    ------
    aiops_lab.errors.InputError
        If a dataset's file is missing.
    """
    records = []
    for name in list():
        file = path(name)
        rows = columns = None
        if name not in _READERS:
            scan = pl.scan_parquet(file)
            rows, columns = scan.select(pl.len()).collect().item(), scan.collect_schema().len()
        reader = _READERS.get(name, "polars:read_parquet").replace(":", ".")
        records.append(
            {
                "name": name,
                "rows": rows,
                "columns": columns,
                "description": _DESCRIPTIONS[name],
                "reader": reader,
            }
        )
    return pl.DataFrame(
        records,
        schema={
            "name": pl.String,
            "rows": pl.Int64,
            "columns": pl.Int64,
            "description": pl.String,
            "reader": pl.String,
        },
    )

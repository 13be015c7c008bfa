"""Bundled example datasets: a credit-risk model in production.

Two Parquet files ship with the package. ``credit_reference`` is the model's
validation period (September 2026, all labels known); ``credit_production`` is 30
days of production traffic (October 2026) with four drifts injected at known dates
and labels that arrive 7 days late. ``datasets/README.md`` in the repository gives
the schema and the exact drift schedule.

>>> from aiops_lab import datasets
>>> datasets.list()
['credit_production', 'credit_reference']
>>> ref = datasets.load("credit_reference")
>>> prod = datasets.load("credit_production", lazy=True)  # a polars.LazyFrame
"""

from __future__ import annotations

import builtins
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
        "new 'partner' channel (10-15), utilization nulls (10-20), concept drift and "
        "debt_to_income shift (10-22); labels null from 10-24 (7-day delay)."
    ),
}

_REGENERATE = "python datasets/make_datasets.py"


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
        The names accepted by :func:`load` and :func:`path`, sorted.

    Examples
    --------
    >>> from aiops_lab import datasets
    >>> datasets.list()
    ['credit_production', 'credit_reference']
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


def path(name: str) -> Path:
    """Location of a bundled dataset's Parquet file.

    Parameters
    ----------
    name : str
        A name from :func:`list`, e.g. ``"credit_production"``.

    Returns
    -------
    pathlib.Path
        The absolute path of ``<name>.parquet``.

    Raises
    ------
    aiops_lab.errors.ParameterError
        If ``name`` is not a bundled dataset.
    aiops_lab.errors.InputError
        If the file is missing (e.g. a source checkout without the data).
    """
    _check_name(name)
    file = _data_dir() / f"{name}.parquet"
    if not file.is_file():
        raise InputError(
            f"Dataset {name!r} was expected at {file}, but the file does not exist. "
            f"Regenerate it from the repository root with: {_REGENERATE}"
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
        A name from :func:`list`, e.g. ``"credit_reference"``.
    lazy : bool, default False
        Return a :class:`polars.LazyFrame` that scans the file instead of reading it.

    Returns
    -------
    polars.DataFrame or polars.LazyFrame
        The dataset; ``timestamp`` is ``Datetime("us", "UTC")``.

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
    """
    file = path(name)
    return pl.scan_parquet(file) if lazy else pl.read_parquet(file)


def describe() -> pl.DataFrame:
    """One row per bundled dataset.

    Returns
    -------
    polars.DataFrame
        Columns ``name`` (str), ``rows`` (int), ``columns`` (int) and
        ``description`` (str), sorted by name. Row and column counts are read from
        the Parquet metadata, not by loading the data.

    Raises
    ------
    aiops_lab.errors.InputError
        If a dataset's file is missing.
    """
    records = []
    for name in list():
        scan = pl.scan_parquet(path(name))
        records.append(
            {
                "name": name,
                "rows": scan.select(pl.len()).collect().item(),
                "columns": scan.collect_schema().len(),
                "description": _DESCRIPTIONS[name],
            }
        )
    return pl.DataFrame(
        records,
        schema={"name": pl.String, "rows": pl.Int64, "columns": pl.Int64, "description": pl.String},
    )

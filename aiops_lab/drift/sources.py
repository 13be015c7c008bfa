"""Load and validate the two samples a drift comparison needs.

Accepts polars DataFrames and LazyFrames, paths to Parquet / CSV / IPC / NDJSON
files, and anything ``polars.DataFrame(...)`` takes (pandas, pyarrow, dicts). Column
kinds are inferred here, and the data leaves as plain NumPy arrays in the ``(C, n)``
layout the kernels use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.errors import (
    ColumnNotFoundError,
    EmptyInputError,
    InputError,
    ParameterError,
    SchemaMismatchError,
)

__all__ = ["ColumnPlan", "category_codes", "numeric_matrix", "plan_columns", "read_frame"]

_READERS = {
    ".parquet": pl.read_parquet,
    ".pq": pl.read_parquet,
    ".csv": lambda p: pl.read_csv(p, try_parse_dates=True),
    ".tsv": lambda p: pl.read_csv(p, separator="\t", try_parse_dates=True),
    ".ipc": pl.read_ipc,
    ".arrow": pl.read_ipc,
    ".feather": pl.read_ipc,
    ".ndjson": pl.read_ndjson,
    ".jsonl": pl.read_ndjson,
}
#: prefix naming a bundled dataset instead of a file: "bundled:credit_reference"
BUNDLED = "bundled:"
#: share of distinct values above which a string column is treated as an identifier
_ID_LIKE_SHARE = 0.5


def read_frame(data: Any, name: str) -> pl.DataFrame:
    """Turn ``data`` into a polars DataFrame; ``name`` ("reference"/"current") is for errors.

    A string ``"bundled:NAME"`` loads the bundled dataset NAME (see ``aiops-lab datasets``).
    """
    if isinstance(data, pl.DataFrame):
        frame = data
    elif isinstance(data, pl.LazyFrame):
        frame = data.collect()
    elif isinstance(data, str) and data.startswith(BUNDLED):
        from aiops_lab import datasets

        frame = datasets.load(data[len(BUNDLED) :])
    elif isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if not path.exists():
            msg = f"The {name} file {str(path)!r} does not exist. Check the path (relative paths start at {Path.cwd()})."
            raise InputError(msg)
        reader = _READERS.get(path.suffix.lower())
        if reader is None:
            msg = (
                f"The {name} file {str(path)!r} has suffix {path.suffix!r}; expected one of "
                + ", ".join(sorted(_READERS))
                + ". Convert it, or load it with polars and pass the frame."
            )
            raise InputError(msg)
        try:
            frame = reader(path)
        except Exception as exc:
            msg = f"Could not read the {name} file {str(path)!r} as {path.suffix[1:]}: {exc}"
            raise InputError(msg) from exc
    else:
        try:
            frame = pl.DataFrame(data)
        except Exception as exc:
            msg = (
                f"The {name} data is a {type(data).__name__}, which polars cannot turn into a "
                "DataFrame. Pass a polars/pandas/pyarrow frame or a Parquet/CSV path."
            )
            raise InputError(msg) from exc
    if frame.height == 0:
        msg = f"The {name} data has no rows; a drift comparison needs rows on both sides."
        raise EmptyInputError(msg)
    return frame


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


def _is_categorical(dtype: pl.DataType) -> bool:
    return dtype in (pl.Utf8, pl.Boolean) or isinstance(dtype, (pl.Categorical, pl.Enum))


@dataclass(frozen=True)
class ColumnPlan:
    """Which columns are compared, as what kind, and which were skipped and why."""

    numeric: list[str]
    categorical: list[str]
    skipped: dict[str, str]

    @property
    def columns(self) -> list[str]:
        return self.numeric + self.categorical


def plan_columns(
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    *,
    columns: Sequence[str] | None,
    categorical: Sequence[str] | None,
    exclude: Sequence[str] = (),
) -> ColumnPlan:
    """Check the requested columns and infer numeric vs categorical.

    Explicit ``columns`` must exist on both sides with compatible types. Without
    ``columns``, every column in both frames is used except ``exclude``, date/time
    columns and identifier-like strings (mostly distinct values), which are listed in
    ``skipped`` with the reason.
    """
    categorical = list(categorical or [])
    for c in categorical:
        if c not in ref.columns:
            raise ColumnNotFoundError(c, "the reference data (from `categorical=`)", ref.columns)
    skipped: dict[str, str] = {}
    if columns is not None:
        if isinstance(columns, str):
            raise ParameterError(
                "columns", "a list of column names", columns, f"Use columns=[{columns!r}]."
            )
        wanted = list(dict.fromkeys(columns))
        if not wanted:
            raise ParameterError("columns", "at least one column name", columns)
        for c in wanted:
            if c not in ref.columns:
                raise ColumnNotFoundError(c, "the reference data", ref.columns)
            if c not in cur.columns:
                raise ColumnNotFoundError(c, "the current data", cur.columns)
    else:
        only_ref = [c for c in ref.columns if c not in cur.columns and c not in exclude]
        only_cur = [c for c in cur.columns if c not in ref.columns and c not in exclude]
        if only_ref or only_cur:
            msg = (
                "Reference and current data have different columns: "
                f"only in reference: {only_ref or 'none'}; only in current: {only_cur or 'none'}. "
                "Pass `columns=[...]` to compare the shared ones."
            )
            raise SchemaMismatchError(msg)
        wanted = [c for c in ref.columns if c not in exclude]
    numeric: list[str] = []
    cats: list[str] = []
    for c in wanted:
        rt, ct = ref.schema[c], cur.schema[c]
        if c in categorical:
            cats.append(c)
            continue
        if _is_numeric(rt) and _is_numeric(ct):
            numeric.append(c)
        elif _is_categorical(rt) and _is_categorical(ct):
            if columns is None and rt == pl.Utf8 and _id_like(ref[c]):
                skipped[c] = (
                    "identifier-like (mostly distinct values); pass it in `columns=` to compare"
                )
            else:
                cats.append(c)
        elif (_is_numeric(rt) or _is_categorical(rt)) and (_is_numeric(ct) or _is_categorical(ct)):
            msg = (
                f"Column {c!r} is {rt} in the reference but {ct} in the current data. "
                "Cast one side, or list the column in `categorical=` to compare its values as categories."
            )
            raise SchemaMismatchError(msg)
        elif columns is not None:
            msg = (
                f"Column {c!r} has type {rt} (reference) / {ct} (current), which cannot be compared; "
                "expected numbers, strings, booleans or categoricals."
            )
            raise InputError(msg)
        else:
            skipped[c] = f"type {rt} is not compared (numbers, strings, booleans, categoricals are)"
    if not numeric and not cats:
        msg = (
            "No column left to compare"
            + (f" (skipped: {skipped})" if skipped else "")
            + ". Pass `columns=[...]` with numeric or categorical columns."
        )
        raise InputError(msg)
    return ColumnPlan(numeric, cats, skipped)


def _id_like(series: pl.Series) -> bool:
    n = series.len() - series.null_count()
    return n >= 20 and series.n_unique() > _ID_LIKE_SHARE * n


def numeric_matrix(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``(C, n)`` float64 array of the columns; nulls become NaN."""
    if not columns:
        return np.empty((0, frame.height))
    sub = frame.select([pl.col(c).cast(pl.Float64) for c in columns])
    return np.ascontiguousarray(sub.to_numpy().T)


def sorted_numeric(frame: pl.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each column sorted, non-finite values (null, NaN, +/-inf) replaced by +inf at the end.

    The host-side equivalent of :func:`aiops_lab.drift.kernels.sort_sample`, used for
    the NumPy backend: polars sorts the columns in parallel, about twice as fast as
    NumPy's single-threaded sort. Returns the ``(C, n)`` values and the finite count
    per column.
    """
    finite = [pl.col(c).cast(pl.Float64).is_finite() for c in columns]
    values = frame.select(
        pl.when(f).then(pl.col(c).cast(pl.Float64)).sort(nulls_last=True).fill_null(np.inf).alias(c)
        for c, f in zip(columns, finite, strict=True)
    )
    counts = frame.select(
        f.fill_null(False).sum().alias(c) for c, f in zip(columns, finite, strict=True)
    )
    return np.ascontiguousarray(values.to_numpy().T), np.asarray(counts.row(0), dtype=np.int64)


def null_counts(frame: pl.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Nulls (and NaNs, for floats) per column."""
    if not columns:
        return np.zeros(0, dtype=np.int64)
    exprs = []
    for c in columns:
        e = pl.col(c).is_null()
        if frame.schema[c].is_float():
            e = e | pl.col(c).is_nan()
        exprs.append(e.sum().alias(c))
    return np.asarray(frame.select(exprs).row(0), dtype=np.int64)


def category_codes(
    ref: pl.DataFrame, cur: pl.DataFrame, columns: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
    """Integer codes over the union of both sides' categories (-1 for null).

    Returns ``(ref_codes (C, n_ref), cur_codes (C, n_cur), categories per column)``;
    categories are sorted as strings so codes are reproducible.
    """
    ref_codes = np.full((len(columns), ref.height), -1, dtype=np.int32)
    cur_codes = np.full((len(columns), cur.height), -1, dtype=np.int32)
    cats: list[list[str]] = []
    for i, c in enumerate(columns):
        r = ref[c].cast(pl.Utf8)
        k = cur[c].cast(pl.Utf8)
        levels = sorted(
            set(r.drop_nulls().unique().to_list()) | set(k.drop_nulls().unique().to_list())
        )
        enum = pl.Enum(levels)
        ref_codes[i] = r.cast(enum).to_physical().fill_null(-1).to_numpy()
        cur_codes[i] = k.cast(enum).to_physical().fill_null(-1).to_numpy()
        cats.append(levels)
    return ref_codes, cur_codes, cats

"""The analyses :func:`aiops_lab.drift.compare` runs beside its per-column tests.

Each one is a function of its own (``mmd``, ``classifier_drift``,
``reconstruction_drift``, ``embedding_drift``, ``estimate_performance``); ``compare``
runs the ones asked for on the same data and keeps their results in
``DriftResult.extras`` under these names:

- ``"mmd"``, ``"classifier"``, ``"reconstruction"``: drift of the features taken
  together (``multivariate=``);
- ``"embedding:<column>"``: one per embedding column (``embeddings=``);
- ``"estimate"``: model quality estimated without labels (``estimate_quality=``).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from aiops_lab.errors import InputError, ParameterError
from aiops_lab.result import Result

__all__ = ["MULTIVARIATE", "embedding_columns", "resolve_multivariate", "run_deeper"]

MULTIVARIATE = ("mmd", "classifier", "reconstruction")


def resolve_multivariate(value: bool | str | Sequence[str] | None) -> list[str]:
    """``True`` -> all three; a name or list of names -> those; ``False``/``None`` -> none."""
    if value is None or value is False:
        return []
    if value is True:
        return list(MULTIVARIATE)
    names = [value] if isinstance(value, str) else list(value)
    bad = [n for n in names if n not in MULTIVARIATE]
    if bad:
        raise ParameterError(
            "multivariate",
            "True, False, or names from " + ", ".join(map(repr, MULTIVARIATE)),
            value,
        )
    return list(dict.fromkeys(names))


def embedding_columns(
    ref: pl.DataFrame, cur: pl.DataFrame, embeddings: str | Sequence[str] | None
) -> list[str]:
    """The embedding columns to test: ``"auto"`` finds every list/array column in both frames."""
    if embeddings is None:
        return []
    if embeddings == "auto":
        return [
            c
            for c, t in ref.schema.items()
            if isinstance(t, (pl.List, pl.Array))
            and c in cur.columns
            and isinstance(cur.schema[c], (pl.List, pl.Array))
        ]
    names = [embeddings] if isinstance(embeddings, str) else list(embeddings)
    for c in names:
        for side, frame in (("reference", ref), ("current", cur)):
            if c not in frame.columns:
                from aiops_lab.errors import ColumnNotFoundError

                raise ColumnNotFoundError(c, f"the {side} data (from `embeddings=`)", frame.columns)
            if not isinstance(frame.schema[c], (pl.List, pl.Array)):
                raise InputError(
                    f"Column {c!r} ({side}) has type {frame.schema[c]}; `embeddings=` names "
                    "list/array columns of numbers."
                )
    return names


def run_deeper(
    ref: pl.DataFrame,
    cur: pl.DataFrame,
    *,
    features: list[str],
    numeric: list[str],
    multivariate: list[str],
    embeddings: list[str],
    estimate_quality: bool,
    prediction_column: str | None,
    label_column: str | None,
    task: str | None,
    time_column: str | None,
    window: str | None,
    chunk_size: int | None,
    rows: int,
    alpha: float,
    correction: str,
    seed: int,
    backend: str | None,
    progress: bool | None,
) -> dict[str, Result]:
    """Run the requested analyses; return them by name (see the module docstring)."""
    out: dict[str, Result] = {}
    if multivariate and not features:
        raise InputError("multivariate= needs feature columns, and none is left to test.")
    if "mmd" in multivariate:
        from aiops_lab.drift.multivariate import mmd

        if not numeric:
            raise InputError(
                "The MMD test needs numeric feature columns; none was found. "
                "Use multivariate=['classifier'] for categorical data."
            )
        out["mmd"] = mmd(
            ref.select(numeric),
            cur.select(numeric),
            max_rows=rows,
            nan_policy="drop",
            seed=seed,
            alpha=alpha,
            backend=backend,
            progress=progress,
        )
    if "classifier" in multivariate:
        from aiops_lab.drift.classifier import classifier_drift

        out["classifier"] = classifier_drift(
            ref, cur, columns=features, max_rows=rows, folds=3, seed=seed, backend=backend
        )
    if "reconstruction" in multivariate:
        from aiops_lab.drift.reconstruction import reconstruction_drift

        keep = [*features, *([time_column] if time_column else [])]
        out["reconstruction"] = reconstruction_drift(
            ref.select([c for c in keep if c in ref.columns]),
            cur.select(keep),
            columns=features,
            time_column=time_column,
            window=window,
            chunk_size=chunk_size,
            backend=backend,
        )
    for col in embeddings:
        from aiops_lab.drift.multivariate import embedding_drift

        keep = [col, *([time_column] if time_column else [])]
        out[f"embedding:{col}"] = embedding_drift(
            ref.select(col),
            cur.select(keep),
            column=col,
            time_column=time_column if window or chunk_size else None,
            window=window,
            chunk_size=chunk_size,
            max_rows=min(rows, 1_000) if (window or chunk_size) else rows,
            alpha=alpha,
            correction=correction,
            seed=seed,
            backend=backend,
            progress=progress,
        )
    if estimate_quality:
        if task != "binary" or prediction_column is None or label_column is None:
            raise ParameterError(
                "estimate_quality",
                "a binary classifier's score in `prediction_column` and its `label_column`",
                estimate_quality,
            )
        from aiops_lab.drift.estimation import estimate_performance

        out["estimate"] = estimate_performance(
            ref,
            cur,
            score=prediction_column,
            label=label_column,
            time_column=time_column,
            window=window,
            chunk_size=chunk_size,
            metrics=("roc_auc", "accuracy"),
            backend=backend,
        )
    return out

"""The deeper analyses of a Dask comparison, on a seeded row sample drawn on the workers.

``multivariate``, ``embeddings`` and ``estimate_quality`` need rows, not summaries.
After the summary pass (which counts the rows per window) every partition draws a
seeded Bernoulli sample (seed from ``seed`` and the partition's index, so a rerun on
the same partitions draws the same rows); only the columns these analyses need come
back to the client, sorted by the time column when there is one, and go to
:func:`~aiops_lab.drift.deeper.run_deeper` with the parameters ``compare`` uses:

* MMD and the domain classifier test the whole current data: a uniform sample of
  about ``1.2 * sample_rows`` rows (they use ``sample_rows`` of them, as in memory);
* reconstruction, embedding drift and ``estimate_quality`` work per window: each
  window gets about ``1.2 * sample_rows`` rows (rate ``min(1, 1.2 * sample_rows /
  rows in the window)``; the whole current data when there are no windows). So on
  Dask the reconstruction error and the CBPE estimate see at most about that many
  rows per window, where in memory they see all rows: their per-window noise and
  bands are those of the sample (reference windows are thinned the same way for the
  reconstruction band). Windows smaller than that are brought back whole, and the
  results then equal the in-memory ones. With windows of very different sizes, the
  embedding test of the whole data weights the small windows more.

``params["dask"]["deeper_sample_rows"]`` is the number of rows brought back. These
analyses need ``window=`` (or no windows): a sample cannot keep ``chunk_size`` row
chunks, so reconstruction, embeddings and ``estimate_quality`` with ``chunk_size``
raise :class:`~aiops_lab.errors.ParameterError` (MMD and the classifier run).
Embedding columns must reach the workers as lists or arrays (Parquet, a pyarrow list
type, or object columns with ``dataframe.convert-string`` off), not as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from aiops_lab.drift.distributed_partition import _as_datetime, _to_polars, _window_labels
from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError

#: analyses of the whole current data (they get a uniform sample); the others go per window
_WHOLE = ("mmd", "classifier")


@dataclass
class _Sampling:
    """What every partition needs to draw its share of the row sample."""

    columns: list[str]
    time_column: str | None
    window: str | None
    seed: int
    uniform_rate: float  # every row with this probability (0: no uniform sample needed)
    window_keys: np.ndarray | None  # window starts, microseconds since the epoch, sorted
    window_rates: np.ndarray | None  # the rate of each of those windows


def _partition_sample(part: Any, s: _Sampling, index: int) -> pl.DataFrame:
    """A seeded Bernoulli sample of one partition, flagged by the sample(s) each row is in."""
    frame = _to_polars(part).select(s.columns)
    if s.time_column is not None:
        frame = frame.with_columns(_as_datetime(frame[s.time_column], s.time_column))
    u = np.random.default_rng([s.seed, 1, index]).random(frame.height)
    uniform = u < s.uniform_rate
    per_window = uniform
    if s.window_keys is not None and s.window_rates is not None and s.time_column is not None:
        key = frame[s.time_column].dt.truncate(s.window or "").dt.epoch("us")
        valid = key.is_not_null().to_numpy()
        k = key.fill_null(0).to_numpy()
        at = np.minimum(np.searchsorted(s.window_keys, k), s.window_keys.size - 1)
        hit = valid & (s.window_keys[at] == k)
        per_window = u < np.where(hit, s.window_rates[at], 0.0)
    keep = uniform | per_window
    return frame.filter(pl.Series(keep)).with_columns(
        pl.Series("__uniform__", uniform[keep]), pl.Series("__per_window__", per_window[keep])
    )


def _draw_sample(current: Any, s: _Sampling, client: Any) -> pl.DataFrame:
    import dask

    node = dask.delayed(s, pure=True, traverse=False)
    draw = dask.delayed(_partition_sample, pure=True)
    jobs = [draw(p, node, i) for i, p in enumerate(current[s.columns].to_delayed())]
    got = client.gather(client.compute(jobs)) if client is not None else dask.compute(*jobs)
    frames = [f for f in got if f.height] or list(got[:1])
    return pl.concat(frames, how="vertical_relaxed")


def _thin_windows(
    frame: pl.DataFrame, time_column: str, window: str, target: float, seed: int
) -> pl.DataFrame:
    """Each time window of ``frame`` thinned to about ``target`` rows (rows without a time kept)."""
    n = frame.select(pl.len().over(pl.col(time_column).dt.truncate(window))).to_series()
    rate = np.minimum(1.0, target / n.cast(pl.Float64).to_numpy())
    rate[frame[time_column].is_null().to_numpy()] = 1.0
    u = np.random.default_rng([seed, 0, 0]).random(frame.height)
    return frame.filter(pl.Series(u < rate))


@dataclass
class _Deeper:
    """``multivariate`` / ``embeddings`` / ``estimate_quality`` on Dask: checked, then sampled."""

    features: list[str]
    numeric: list[str]
    multivariate: list[str]
    embeddings: list[str]  # candidates before the sample; the tested columns after it
    requested_embeddings: Any
    estimate_quality: bool
    prediction_column: str | None
    label_column: str | None
    task: str | None
    time_column: str | None
    chunk_size: int | None

    @property
    def wanted(self) -> bool:
        return bool(self.multivariate or self.embeddings or self.estimate_quality)

    @classmethod
    def plan(
        cls, ref: pl.DataFrame, current: Any, *, plan: Any, roles: dict[str, str],
        multivariate: Any, embeddings: Any, estimate_quality: bool, prediction_column: str | None,
        label_column: str | None, task: str | None, time_column: str | None, chunk_size: int | None,
    ) -> _Deeper:  # fmt: skip
        """Check the request before any pass over the data (the checks of ``run_deeper``)."""
        from aiops_lab.drift.deeper import resolve_multivariate

        joint = resolve_multivariate(multivariate)
        features = [c for c in plan.columns if roles[c] == "feature"]
        numeric = [c for c in plan.numeric if c in features]
        if estimate_quality and (task != "binary" or not prediction_column or not label_column):
            raise ParameterError(
                "estimate_quality",
                "a binary classifier's score in `prediction_column` and its `label_column`",
                estimate_quality,
            )
        if joint and not features:
            raise InputError("multivariate= needs feature columns, and none is left to test.")
        if "mmd" in joint and not numeric:
            raise InputError(
                "The MMD test needs numeric feature columns; none was found. "
                "Use multivariate=['classifier'] for categorical data."
            )
        emb = _embedding_candidates(ref, current, embeddings)
        per_window = [*(["reconstruction"] if "reconstruction" in joint else []),
                      *(["embeddings"] if emb else []), *(["estimate_quality"] if estimate_quality else [])]  # fmt: skip
        if chunk_size is not None and per_window:
            raise ParameterError(
                "chunk_size", "window= with time_column= (or no windows) when "
                + ", ".join(per_window) + " run on Dask inputs", chunk_size,
                "They run on a row sample drawn on the workers, which cannot keep row chunks; "
                "use window=, or run them in memory on a sample.",
            )  # fmt: skip
        return cls(
            features, numeric, joint, emb, embeddings, estimate_quality, prediction_column,
            label_column, task, time_column, chunk_size,
        )  # fmt: skip

    def run(
        self, ref: pl.DataFrame, current: Any, merged: dict[str, Any], *, window: str | None,
        sample_rows: int, seed: int, alpha: float, correction: str, backend: str | None,
        progress: bool | None, client: Any,
    ) -> tuple[dict[str, Any], int]:  # fmt: skip
        """Draw the sample(s) on the workers and run ``run_deeper`` on them; ``(extras, rows)``."""
        from aiops_lab.drift.deeper import embedding_columns, run_deeper

        time_column = self.time_column
        target = 1.2 * sample_rows
        whole = [m for m in self.multivariate if m in _WHOLE]
        per_window = (
            "reconstruction" in self.multivariate or self.embeddings or self.estimate_quality
        )
        columns = [
            *(self.features if self.multivariate else []), *self.embeddings,
            *([self.prediction_column, self.label_column] if self.estimate_quality else []),
            *([time_column] if time_column else []),
        ]  # fmt: skip
        keys = rates = None
        if per_window and window is not None:
            labels = _window_labels(merged["windows"], window, None)
            keys = pl.Series([k for k, *_ in labels]).dt.epoch("us").to_numpy()
            rates = np.array([min(1.0, target / merged["windows"][k].rows) for k, *_ in labels])
        sampling = _Sampling(
            columns=list(dict.fromkeys(c for c in columns if c)), time_column=time_column,
            window=window, seed=seed,
            uniform_rate=min(1.0, target / merged["overall"].rows) if whole or (per_window and keys is None) else 0.0,
            window_keys=keys, window_rates=rates,
        )  # fmt: skip
        sample = _draw_sample(current, sampling, client)
        if time_column is not None:
            sample = sample.sort(time_column, maintain_order=True)
        flags = ["__uniform__", "__per_window__"]
        uniform = sample.filter(pl.col("__uniform__")).drop(flags)
        windowed = sample.filter(pl.col("__per_window__")).drop(flags)
        if self.embeddings:
            self.embeddings = embedding_columns(ref, windowed, self.requested_embeddings)

        def deeper(
            reference: pl.DataFrame, rows: pl.DataFrame, joint: list[str], emb: list[str], est: bool
        ) -> dict[str, Any]:
            return run_deeper(
                reference, rows, features=self.features, numeric=self.numeric, multivariate=joint,
                embeddings=emb, estimate_quality=est, prediction_column=self.prediction_column,
                label_column=self.label_column, task=self.task, time_column=time_column,
                window=window, chunk_size=self.chunk_size, rows=sample_rows, alpha=alpha,
                correction=correction, seed=seed, backend=backend, progress=progress,
            )  # fmt: skip

        out: dict[str, Any] = {}
        if whole:
            out.update(deeper(ref, uniform, whole, [], False))
        if "reconstruction" in self.multivariate:
            ref_r = ref
            if window is not None and time_column is not None and time_column in ref.columns:
                # reference windows thinned like the current ones, so the band matches their noise
                ref_r = _thin_windows(ref, time_column, window, target, seed)
            out.update(deeper(ref_r, windowed, ["reconstruction"], [], False))
        if self.embeddings or self.estimate_quality:
            out.update(deeper(ref, windowed, [], self.embeddings, self.estimate_quality))
        return out, int(sample.height)


def _embedding_candidates(ref: pl.DataFrame, current: Any, embeddings: Any) -> list[str]:
    """Embedding columns to bring back (the dtype check follows on the sample itself)."""
    from aiops_lab.drift.deeper import embedding_columns

    if embeddings is None:
        return []
    cur_columns = list(current.columns)
    if embeddings == "auto":
        names = [c for c, t in ref.schema.items() if isinstance(t, (pl.List, pl.Array)) and c in cur_columns]  # fmt: skip
    else:
        names = [embeddings] if isinstance(embeddings, str) else list(embeddings)
        embedding_columns(ref, ref, names)  # present in, and a list/array column of, the reference
    for c in names:
        if c not in cur_columns:
            raise ColumnNotFoundError(c, "the current data (from `embeddings=`)", cur_columns)
        dtype = str(current.dtypes[c])
        if dtype.startswith(("string", "large_string", "str")):
            msg = (
                f"Embedding column {c!r} of the Dask data has type {dtype}: Dask turned its "
                "vectors into text (dataframe.convert-string). Read the data from Parquet, give "
                "the column a pyarrow list type (pd.ArrowDtype(pa.list_(pa.float64()))), or build "
                'the frame inside dask.config.set({"dataframe.convert-string": False}).'
            )
            raise InputError(msg)
    return names

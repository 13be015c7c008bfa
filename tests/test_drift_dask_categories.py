"""Category names on Dask equal the in-memory ones, on a real two-process LocalCluster.

pandas turns an integer column with missing values into float64 (a boolean one into
object, which Dask makes strings), so the Dask path must not count a label's ``0``/``1``
as ``"0.0"``/``"1.0"`` while the in-memory reference has ``"0"``/``"1"``. Columns that
really are floats keep their float categories. Every expected value comes from
``compare`` run in memory on the same polars frames.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

import dask.dataframe as dd  # noqa: E402

from aiops_lab.drift import compare  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: categorical columns whose ints / booleans pandas cannot keep with missing values
INT_LIKE = ["label", "pred", "flag"]
#: categorical columns that are floats in the current data (and in memory)
FLOATS = ["code", "rating", "level"]
#: per-category statistics, from counts only
COUNTS = ["n_ref", "n_cur", "null_ref", "null_cur", "unseen_categories", "unseen", "reason"]
STATS = ["chi2", "chi2_p", "psi", "js", "hellinger", "linf", "null_p", "p_value"]


def _frame(seed: int, n: int, current: bool) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    shift = 0.1 if current else 0.0
    frame = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=10 * i) for i in range(n)],
            "x": rng.normal(shift, 1, n),
            "label": (rng.random(n) < 0.3 + shift).astype(np.int64),
            "pred": (rng.random(n) < 0.35).astype(np.int64),
            "flag": rng.random(n) < 0.4,
            "code": rng.integers(0, 4, n),
            "rating": rng.choice([1.0, 1.5, 2.0, 2.5, 3.0], n),
            "level": rng.choice([1.0, 2.0, 3.0], n),
        }
    )
    if not current:
        return frame
    missing = pl.Series(rng.random(n) < 0.15)  # labels not yet arrived, and the like
    code = frame["code"].cast(pl.Float64).to_numpy().copy()
    code[-1] = 2.5  # one non-integral value, in the last partition only
    return frame.with_columns(
        *(pl.when(missing).then(None).otherwise(pl.col(c)).alias(c) for c in INT_LIKE),
        pl.Series("code", code),
    )


@pytest.fixture(scope="module")
def results(client):
    ref, cur = _frame(1, 1500, False), _frame(2, 2000, True)
    pdf = cur.to_pandas()
    assert str(pdf["label"].dtype) == "float64"  # the case under test
    ddf = dd.from_pandas(pdf, npartitions=4)
    kwargs = {
        "categorical": ["code", "rating", "level"], "prediction_column": "pred",
        "label_column": "label", "time_column": "ts", "window": "1d",
    }  # fmt: skip
    mem = compare(ref, cur, backend="numpy", **kwargs)
    got = compare(ref, ddf, **kwargs)
    return mem, got


def _rows(table: pl.DataFrame, columns: list[str], keys: list[str]) -> pl.DataFrame:
    return table.filter(pl.col("column").is_in(columns)).sort(keys)


def _same(mem: pl.DataFrame, got: pl.DataFrame, keys: list[str]) -> None:
    assert got.select(keys).equals(mem.select(keys))
    for col in COUNTS:
        assert got[col].equals(mem[col]), col
    for col in STATS:
        a, b = mem[col].to_numpy(), got[col].to_numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b)), col
        assert np.allclose(b, a, rtol=1e-9, atol=1e-12, equal_nan=True), col


def test_int_and_bool_with_missing_values_match_memory(results):
    mem, got = results
    m, g = _rows(mem.table, INT_LIKE, ["column"]), _rows(got.table, INT_LIKE, ["column"])
    assert (m["kind"] == "categorical").all()  # the 0/1 prediction too, as in memory
    assert g["kind"].equals(m["kind"])
    _same(m, g, ["column"])
    assert (g["unseen_categories"] == 0).all()
    assert g.filter(pl.col("column") == "label")["n_cur"].item() > 0
    keys = ["window_start", "column"]
    _same(_rows(mem.windows, INT_LIKE, keys), _rows(got.windows, INT_LIKE, keys), keys)
    dist = ["column", "label", "ref_share", "cur_share"]
    assert (
        _rows(got.distributions, INT_LIKE, ["column", "label"])
        .select(dist)
        .equals(_rows(mem.distributions, INT_LIKE, ["column", "label"]).select(dist))
    )
    # realized quality reads the same labels
    q = ["metric", "value", "n_labeled", "n_rows"]
    assert (
        got.quality.sort("window_start", "metric")
        .select(q)
        .equals(mem.quality.sort("window_start", "metric").select(q))
    )


def test_float_categories_stay_floats(results):
    mem, got = results
    _same(_rows(mem.table, FLOATS, ["column"]), _rows(got.table, FLOATS, ["column"]), ["column"])
    keys = ["window_start", "column"]
    _same(_rows(mem.windows, FLOATS, keys), _rows(got.windows, FLOATS, keys), keys)
    labels = ["column", "label", "ref_share", "cur_share"]
    m = _rows(mem.distributions, FLOATS, ["column", "label"]).select(labels)
    assert _rows(got.distributions, FLOATS, ["column", "label"]).select(labels).equals(m)
    # "code" is an integer in the reference but holds 2.5 in the current data: in memory
    # its current values are floats, on every partition of the Dask data alike
    unseen = mem.table.filter(pl.col("column") == "code")["unseen_categories"].item()
    assert unseen > 0
    assert got.table.filter(pl.col("column") == "code")["unseen_categories"].item() == unseen

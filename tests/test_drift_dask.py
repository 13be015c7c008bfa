"""compare() on Dask DataFrames, on a real two-process LocalCluster.

Count-based statistics must equal the in-memory path exactly; KS and Wasserstein must
lie within the error bounds the Dask path reports, checked against SciPy on the raw
data. A worker process is killed mid-computation and the result must not change.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from scipy import stats

pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

import dask.dataframe as dd  # noqa: E402

from aiops_lab.drift import compare  # noqa: E402
from aiops_lab.drift.distributed import error_bounds  # noqa: E402

#: statistics computed from counts only: the Dask path must reproduce them bit for bit
EXACT = ["n_ref", "n_cur", "null_ref", "null_cur", "psi", "js", "hellinger", "linf", "chi2",
         "chi2_p", "null_p", "unseen_categories", "reason"]  # fmt: skip
NUMERIC = ["shifted", "stable", "ints", "heavy"]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _frame(seed: int, n: int, shift: float, start: datetime) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    x[rng.random(n) < 0.05] = np.nan
    cats = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    if shift:
        cats[cats == "d"] = "e"  # an unseen category
    return pl.DataFrame(
        {
            "ts": [start + timedelta(minutes=5 * i) for i in range(n)],
            "shifted": x,
            "stable": rng.normal(0, 1, n),
            "ints": rng.integers(0, 8, n),
            "heavy": rng.standard_t(3, n) * 10,
            "cat": cats,
            "flag": rng.random(n) < (0.3 + shift),
        }
    )


@pytest.fixture(scope="module")
def frames():
    ref = _frame(1, 6000, 0.0, T0)
    cur = _frame(2, 9000, 0.15, T0)
    return ref, cur


def _check(mem: pl.DataFrame, got: pl.DataFrame, bounds: pl.DataFrame, keys: list[str]) -> None:
    """Exact counts; KS and Wasserstein within the reported bounds."""
    assert got.columns == mem.columns
    mem, got = mem.sort(keys), got.sort(keys)
    assert got.select(keys).equals(mem.select(keys))
    for col in EXACT:
        assert got[col].equals(mem[col]), col
    j = mem.select(*keys, "ks", "wasserstein").join(
        got.select(*keys, "ks", "wasserstein", "ks_p"), on=keys, suffix="_d"
    ).join(bounds, on=keys)  # fmt: skip
    tested = j.filter(pl.col("ks").is_not_null())
    assert tested.height > 0
    dk = (tested["ks"] - tested["ks_d"]).to_numpy()
    assert np.all(dk >= -1e-12)  # the Dask KS is a lower bound
    assert np.all(dk <= tested["ks_error"].to_numpy() + 1e-12)
    dw = np.abs((tested["wasserstein"] - tested["wasserstein_d"]).to_numpy())
    assert np.all(dw <= tested["wasserstein_error"].to_numpy() * (1 + 1e-9) + 1e-9)


def test_overall_matches_memory_and_scipy(client, frames):
    ref, cur = frames
    ddf = dd.from_pandas(cur.to_pandas(), npartitions=6)
    mem = compare(ref, cur, backend="numpy")
    got = compare(ref, ddf)
    bounds = error_bounds(got)
    _check(mem.table, got.table, bounds, ["column"])
    assert got.distributions.equals(mem.distributions)
    assert got.params["dask"]["partitions"] == 6
    assert set(got.drifted_columns) == set(mem.drifted_columns)
    assert "shifted" in got.drifted_columns
    assert "cat" in got.drifted_columns
    t = got.table.join(bounds, on="column")
    for col in NUMERIC:  # independently: SciPy on the raw values
        a = ref[col].cast(pl.Float64).drop_nans().drop_nulls().to_numpy()
        b = cur[col].cast(pl.Float64).drop_nans().drop_nulls().to_numpy()
        row = t.filter(pl.col("column") == col).row(0, named=True)
        ks = stats.ks_2samp(a, b)
        assert row["ks"] - 1e-12 <= ks.statistic <= row["ks"] + row["ks_error"] + 1e-12
        assert row["ks_p_lower"] * (1 - 1e-9) <= ks.pvalue <= row["ks_p"] * (1 + 1e-9)
        w = stats.wasserstein_distance(a, b)
        assert abs(row["wasserstein"] - w) <= row["wasserstein_error"] * (1 + 1e-9) + 1e-9
        assert row["ks_error"] <= 1 / (4096 - 1) + 1e-12  # the a-priori KS bound
    ints = t.filter(pl.col("column") == "ints").row(0, named=True)
    assert ints["ks_error"] == 0.0  # few distinct values: exact
    assert ints["wasserstein_error"] == 0.0
    assert t.filter(pl.col("column") == "cat")["unseen"].item() == "e"


def test_coarse_grid_bounds_hold(client, frames):
    """A 16-point grid: bounds are wide, and must still contain the exact values."""
    ref, cur = frames
    ddf = dd.from_pandas(cur.to_pandas(), npartitions=4)
    mem = compare(ref, cur, backend="numpy")
    from aiops_lab.drift.distributed import compare_dask

    res = compare_dask(ref, ddf, grid=16, client=client)
    bounds = error_bounds(res)
    _check(mem.table, res.table, bounds, ["column"])
    shifted = bounds.filter(pl.col("column") == "shifted").row(0, named=True)
    assert 0 < shifted["ks_error"] <= 1 / 15 + 1e-12
    assert shifted["wasserstein_error"] > 0


def test_windows_match_memory(client, frames):
    ref, cur = frames
    ddf = dd.from_pandas(cur.to_pandas(), npartitions=5)
    mem = compare(ref, cur, backend="numpy", time_column="ts", window="6h", progress=False)
    got = compare(ref, ddf, time_column="ts", window="6h")
    assert got.windows.height == mem.windows.height > 10
    assert got.windows["window_end"].sort().equals(mem.windows["window_end"].sort())
    _check(mem.windows, got.windows, error_bounds(got, windows=True), ["window_start", "column"])
    _check(mem.table, got.table, error_bounds(got), ["column"])


def test_row_chunks_match_memory(client, frames):
    ref, cur = frames
    ddf = dd.from_pandas(cur.drop("ts").to_pandas(), npartitions=4)
    mem = compare(ref.drop("ts"), cur.drop("ts"), backend="numpy", chunk_size=2500, progress=False)  # fmt: skip
    got = compare(ref.drop("ts"), ddf, chunk_size=2500)
    assert got.windows["window_end"].unique().sort().to_list() == [2500, 5000, 7500, 9000]
    bounds = error_bounds(got, windows=True)
    _check(mem.windows, got.windows, bounds, ["window_start", "column"])


def test_dask_reference_is_computed(client, frames):
    ref, cur = frames
    mem = compare(ref, cur, backend="numpy")
    got = compare(dd.from_pandas(ref.to_pandas(), npartitions=2), cur)  # in memory after that
    assert got.table.sort("column").equals(mem.table.sort("column"))


def test_worker_killed_mid_computation(client, tmp_path):
    """One of the two worker processes is SIGKILLed while partitions are being reduced."""
    n_parts, rows = 16, 2000
    marks = tmp_path / "marks"
    marks.mkdir()

    def load(i: int, delay: float = 0.25):
        frame = _frame(100 + i, rows, 0.1, T0 + timedelta(days=i)).to_pandas()
        if delay:
            time.sleep(delay)
            (marks / f"{i}-{os.getpid()}").touch()
        return frame

    meta = load(0, delay=0).iloc[:0]
    ddf = dd.from_map(load, range(n_parts), meta=meta, enforce_metadata=False)
    cur = pl.concat([pl.from_pandas(load(i, delay=0)) for i in range(n_parts)])
    ref = _frame(7, 5000, 0.0, T0)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    state = {}

    def killer():
        while len(list(marks.iterdir())) < 4:
            time.sleep(0.02)
        state["done_before_kill"] = len(list(marks.iterdir()))
        os.kill(victim, signal.SIGKILL)
        state["killed"] = True

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    got = compare(ref, ddf, time_column="ts", window="1d")
    thread.join(timeout=30)
    assert state.get("killed")
    assert state["done_before_kill"] < n_parts
    client.wait_for_workers(2, timeout=60)  # the nanny has started a fresh process
    assert victim not in client.run(os.getpid).values()
    mem = compare(ref, cur, backend="numpy", time_column="ts", window="1d", progress=False)
    _check(mem.table, got.table, error_bounds(got), ["column"])
    _check(mem.windows, got.windows, error_bounds(got, windows=True), ["window_start", "column"])

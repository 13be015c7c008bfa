"""review() on Dask DataFrames, on a real two-process LocalCluster.

The Dask input is split so that partition boundaries cut through GPUs; the shuffled,
per-partition review must equal the in-memory review of the same rows (an independent
path: one accountant over the whole frame), and the hand-worked hours.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

import dask.dataframe as dd  # noqa: E402

from aiops_lab import errors  # noqa: E402
from aiops_lab.gpu._schema import JOBS_SCHEMA  # noqa: E402
from aiops_lab.gpu.analysis import review  # noqa: E402
from aiops_lab.gpu.distributed import review_dask  # noqa: E402
from tests.test_gpu_review import _jobs as _hand_jobs  # noqa: E402
from tests.test_gpu_review import _telemetry as _hand_telemetry  # noqa: E402
from tests.test_gpu_stream import PRICES, _assert_same, _fleet  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _owned_fleet() -> tuple[pl.DataFrame, pl.DataFrame]:
    """The streaming tests' fleet (gaps, MIG, pods, jobs), GPU n1/1's users only in Slurm."""
    frame = _fleet(11).with_columns(
        pl.when(pl.col("host") == "n1", pl.col("gpu") == 1)
        .then(None)
        .otherwise(pl.col("user"))
        .alias("user")
    )
    ids = ["j10", "j12", "j00", "j99"]
    users = ["kim", "kim", "u0", "u2"]
    jobs = pl.DataFrame(
        {
            "job_id": ids, "user": users, "job_name": "train", "partition": "gpu",
            "state": "COMPLETED", "submit": T0, "start": T0 + timedelta(minutes=5), "gpus": 1,
            "gpu_hours_alloc": [3.0, 3.0, 1.0, 2.0], "queue_wait_s": 300.0,
        }
    )  # fmt: skip
    jobs = jobs.with_columns(
        pl.lit(None, dtype=t).alias(c) for c, t in JOBS_SCHEMA.items() if c not in jobs.columns
    )
    return frame, jobs.select(pl.col(c).cast(t) for c, t in JOBS_SCHEMA.items())


def _splits_gpus(ddf) -> bool:
    """Whether some GPU's rows lie in more than one partition of ``ddf``."""
    parts = [p.compute() for p in ddf.to_delayed()]
    seen: dict[tuple, int] = {}
    for i, p in enumerate(parts):
        for key in set(zip(p["host"], p["gpu"], strict=True)):
            if key in seen:
                return True
            seen[key] = i
    return False


def test_shuffled_partitions_equal_the_in_memory_review(client):
    frame, jobs = _owned_fleet()
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=5, sort=False)
    assert ddf.npartitions == 5
    assert _splits_gpus(ddf)
    whole = review(frame, jobs, prices=PRICES, backend="numpy")
    got = review(ddf, jobs, prices=PRICES, backend="numpy")
    _assert_same(whole, got)
    assert got.params["dask"] == {"partitions": 5, "shuffled_partitions": 5}
    assert got.per_gpu.height == 6
    assert got.per_gpu["gpu_key"].to_list()[2:4] == ["n2/0/mig1", "n2/0/mig2"]
    # users only Slurm knew are attributed through the jobs table, as in memory
    assert "kim" in got.per_user["user"].to_list()
    assert got.per_job.filter(pl.col("job_id") == "j10")["user"].item() == "kim"
    assert got.per_job.filter(pl.col("job_id") == "j99")["gpu_hours"].item() is None
    # the charts' cells are those of a streamed in-memory review
    streamed = review(frame, jobs, prices=PRICES, backend="numpy", streaming=True, batch_rows=200)
    a, b = streamed.samples, got.samples
    assert a.drop("util_pct", "_w").equals(b.drop("util_pct", "_w"))
    for col in ("util_pct", "_w"):
        assert np.allclose(a[col].to_numpy(), b[col].to_numpy(), rtol=1e-12, equal_nan=True)


def test_period_few_output_partitions_and_small_worker_batches(client):
    frame = _fleet(4).sort("timestamp")  # time order: every partition holds every GPU
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=7, sort=False)
    start, end = "2026-03-01T00:20:00+00:00", T0 + timedelta(hours=1, minutes=10)
    whole = review(frame, prices=PRICES, start=start, end=end)
    got = review_dask(ddf, prices=PRICES, start=start, end=end, npartitions=2, batch_rows=60, client=client)  # fmt: skip
    _assert_same(whole, got)
    assert got.params["dask"]["shuffled_partitions"] == 2
    assert got.period == whole.period


def test_hand_case_split_mid_gpu_keeps_the_hand_computed_hours(client):
    frame = _hand_telemetry()  # GPU 0: 60 one-minute samples, half busy; GPU 1: 10 min missing
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=3, sort=False)
    assert _splits_gpus(ddf)
    r = review(ddf, _hand_jobs(), prices={"A100": 3.0}, idle_threshold=5.0)
    g = r.per_gpu.sort("gpu")
    assert g["gpu_hours"].to_list() == pytest.approx([1.0, 51 / 60])
    assert g["idle_gpu_hours"].to_list() == pytest.approx([0.5, 51 / 60])
    assert r.summary["idle_cost"] == pytest.approx(3.0 * (0.5 + 51 / 60))
    job7 = r.per_job.filter(pl.col("job_id") == "7").row(0, named=True)
    assert job7["active_gpu_hours"] == pytest.approx(0.5)
    assert job7["wasted_gpu_hours"] == pytest.approx(1.5)  # 2 GPU-hours held
    _assert_same(review(frame, _hand_jobs(), prices={"A100": 3.0}), r)


def test_repeated_timestamps_keep_the_input_order_across_partitions(client):
    # GPU 0 reads twice at 60 s: the first reading counts 0 s, the second 60 s
    times = [0, 60, 60, 120, 180]
    frame = pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(seconds=s) for s in times], "host": "h",
            "gpu": pl.Series([0] * 5, dtype=pl.Int32), "util_pct": [50.0, 0.0, 80.0, 0.0, 0.0],
            "mem_used_mib": 1.0, "mem_total_mib": 2.0,
        }
    )  # fmt: skip
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=3, sort=False)
    r = review(ddf, prices={"A100": 1.0})
    # 0-60 busy, 60-60 idle (0 s), 60-120 busy, 120-180 idle, 180 idle (median 60 s)
    assert r.per_gpu["idle_gpu_hours"].item() == pytest.approx(120 / 3600)
    _assert_same(review(frame, prices={"A100": 1.0}), r)
    # however the shuffle orders a partition's rows, the worker restores the input order
    from aiops_lab.gpu.analysis import load_prices
    from aiops_lab.gpu.distributed import _prepare, _Spec, _tag

    tagged = _tag(frame.to_pandas(), {"number": 0}).iloc[::-1]
    spec = _Spec(None, None, 5.0, None, load_prices({"A100": 1.0}), None, 100)
    assert _prepare(tagged, spec)["util_pct"].to_list() == frame["util_pct"].to_list()


def test_parquet_folder_read_by_dask(client, tmp_path):
    frame, jobs = _owned_fleet()
    folder = tmp_path / "telemetry"
    folder.mkdir()
    bounds = [0, 200, 390, 610, frame.height]
    for i in range(4):
        frame[bounds[i] : bounds[i + 1]].write_parquet(folder / f"part-{i}.parquet")
    ddf = dd.read_parquet(str(folder))
    assert ddf.npartitions == 4
    assert _splits_gpus(ddf)
    _assert_same(review(frame, jobs, prices=PRICES), review(ddf, jobs, prices=PRICES))


def test_errors_are_those_of_the_in_memory_review(client):
    frame = _hand_telemetry()
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=2, sort=False)
    with pytest.raises(errors.EmptyInputError, match="requested period"):
        review(ddf, start="2030-01-01")
    with pytest.raises(errors.ColumnNotFoundError, match="util_pct"):
        review(ddf.drop(columns=["util_pct"]))
    with pytest.raises(errors.ParameterError, match="start"):
        review(ddf, start="not a time")
    with pytest.raises(errors.ParameterError, match="npartitions"):
        review_dask(ddf, npartitions=0)


def test_telemetry_without_job_ids_is_put_down_to_whole_node_jobs_as_in_memory(client):
    from tests.test_gpu_attribution import _jobs as node_jobs
    from tests.test_gpu_attribution import _telemetry as unnamed

    frame = unnamed().with_columns(
        temp_c=pl.lit(50.0), mig_profile=pl.lit(None, dtype=pl.Utf8), mig_instance=pl.lit(None, dtype=pl.Utf8)
    )  # fmt: skip
    whole = review(frame, node_jobs(), prices={"A100": 1.0})
    ddf = dd.from_pandas(frame.to_pandas(), npartitions=3, sort=False)
    r = review_dask(ddf, node_jobs(), prices={"A100": 1.0}, client=client)
    cols = ["job_id", "gpu_hours", "wasted_gpu_hours", "user"]
    assert r.per_job.select(cols).sort("job_id").equals(whole.per_job.select(cols).sort("job_id"))
    assert r.per_job.filter(pl.col("job_id") == "A")["gpu_hours"][0] == pytest.approx(40 / 60)
    assert r.per_gpu["max_temp_c"].to_list() == [50.0] * 4  # the temperature reaches the workers


def test_a_categorical_host_counts_the_gpus_of_each_host_as_in_memory(client):
    from tests.test_gpu_attribution import _jobs as node_jobs
    from tests.test_gpu_attribution import _telemetry as unnamed

    # n2 keeps one GPU: C then held it whole
    frame = unnamed().filter(~((pl.col("host") == "n2") & (pl.col("gpu") == 1)))
    jobs = node_jobs().with_columns(
        pl.when(pl.col("job_id") == "C").then(1).otherwise(pl.col("gpus")).alias("gpus")
    )
    whole = review(frame, jobs, prices={"A100": 1.0})
    pdf = frame.to_pandas()
    pdf["host"] = pdf["host"].astype("category")
    r = review_dask(dd.from_pandas(pdf, npartitions=2, sort=False), jobs, prices={"A100": 1.0}, client=client)  # fmt: skip
    cols = ["job_id", "gpu_hours", "wasted_gpu_hours"]
    assert r.per_job.select(cols).sort("job_id").equals(whole.per_job.select(cols).sort("job_id"))
    assert r.per_job.filter(pl.col("job_id") == "C")["gpu_hours"][0] == pytest.approx(20 / 60)

"""GPUs idle while jobs queued, and the advice about long waits: by hand."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from aiops_lab.gpu import result as result_module
from aiops_lab.gpu import review
from aiops_lab.gpu.sources import JOBS_SCHEMA
from tests.test_gpu_review import _telemetry

MIN = timedelta(minutes=1)


def _jobs(rows: list[tuple[str, str | None, int, int, int]]) -> pl.DataFrame:
    """(job, GPU type, GPUs, submit, start), times in minutes after the telemetry starts."""
    t0 = _telemetry()["timestamp"].min()
    frame = pl.DataFrame(
        {
            "job_id": [r[0] for r in rows], "gpu_type": [r[1] for r in rows],
            "gpus": [r[2] for r in rows], "submit": [t0 + r[3] * MIN for r in rows],
            "start": [t0 + r[4] * MIN for r in rows], "end": [t0 + (r[4] + 5) * MIN for r in rows],
            "queue_wait_s": [(r[4] - r[3]) * 60.0 for r in rows], "user": ["ann"] * len(rows),
            "partition": ["gpu"] * len(rows), "state": ["COMPLETED"] * len(rows),
        },
        schema_overrides={"gpu_type": pl.Utf8},
    )  # fmt: skip
    for name, dtype in JOBS_SCHEMA.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(pl.col(n).cast(t) for n, t in JOBS_SCHEMA.items())


@pytest.mark.parametrize("streaming", [False, True])
def test_idle_gpus_while_queued_by_hand(streaming):
    # _telemetry: node1's A100s; GPU 0 busy for 30 minutes, then idle; GPU 1 idle, with no
    # samples from minute 20 to 30 (its minute-19 sample counts 2 minutes, the cap)
    jobs = _jobs([("1", "a100", 1, 0, 30), ("2", "h100", 1, 30, 60), ("3", None, 1, 10, 10)])
    frame = _telemetry()
    source = frame.lazy() if streaming else frame
    r = review(source, jobs, prices={"A100": 3.0}, streaming=streaming, batch_rows=40)
    got = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    # minutes 0-30: GPU 1 idle for 19 one-minute samples and a capped 2 minutes = 1,260 s
    assert got["1"]["idle_gpus_while_queued"] == pytest.approx(1260 / 1800)
    assert got["1"]["idle_same_type_gpus_while_queued"] == pytest.approx(1260 / 1800)
    # minutes 30-60: both idle throughout; none of them an H100
    assert got["2"]["idle_gpus_while_queued"] == pytest.approx(2.0)
    assert got["2"]["idle_same_type_gpus_while_queued"] == pytest.approx(0.0)
    assert got["3"]["idle_gpus_while_queued"] is None  # it never queued
    # a window inside a 10-minute cell counts the cell's share: minutes 40-45, 2 idle GPUs
    t0 = frame["timestamp"].min()
    assert r.idle_gpus(t0 + 40 * MIN, t0 + 45 * MIN) == pytest.approx(2.0)
    assert r.idle_gpus(t0 + 40 * MIN, t0 + 45 * MIN, "h100") == 0.0


def test_long_waits_advised_by_the_gpus_idle_meanwhile(monkeypatch):
    monkeypatch.setattr(result_module, "LONG_WAIT_S", 20 * 60)
    jobs = _jobs(
        [
            ("own", "a100", 2, 30, 60),  # two A100s idle all along: why did it wait?
            ("other", "h100", 1, 30, 60),  # only A100s idle: borrow across partitions
            ("few", "a100", 1, 0, 30),  # 0.7 GPUs idle on average: nothing to say
        ]
    )
    r = review(_telemetry(), jobs, prices={"A100": 3.0})
    queue = r.recommendations.filter(pl.col("kind") == "queue")
    assert queue.height == 2
    rows = {row["action"].split(":")[0]: row for row in queue.iter_rows(named=True)}
    own = rows["check what held them back"]
    assert own["target"] == "1 job"
    assert "2.0 GPUs of the type they asked for sat idle" in own["evidence"]
    other = rows["let partitions borrow idle GPUs (or merge them)"]
    assert "2.0 GPUs sat idle, though fewer of the type they asked for (0.0)" in other["evidence"]


def test_jobs_without_a_gpu_type_get_the_fleet_advice(monkeypatch):
    monkeypatch.setattr(result_module, "LONG_WAIT_S", 20 * 60)
    r = review(_telemetry(), _jobs([("untyped", None, 2, 30, 60)]), prices={"A100": 3.0})
    queue = r.recommendations.filter(pl.col("kind") == "queue")
    assert queue["evidence"].to_list() == [
        "waited more than 0 h (median 0.5 h) while on average 2.0 GPUs sat idle, "
        "as many as they asked for or more"
    ]


def test_idle_gpus_counts_only_the_time_the_telemetry_covers():
    r = review(_telemetry(), prices={"A100": 3.0})  # no jobs: the method works all the same
    t0 = _telemetry()["timestamp"].min()
    # 30 minutes before the log and its first 30: over the 30 covered, 1,260 idle seconds
    assert r.idle_gpus(t0 - 30 * MIN, t0 + 30 * MIN) == pytest.approx(1260 / 1800)
    assert r.idle_gpus(t0 - 60 * MIN, t0 - 30 * MIN) is None  # before the log: unknown
    # Slurm's auto-detected type names match the model's name too
    assert r.idle_gpus(t0 + 30 * MIN, t0 + 60 * MIN, "nvidia_a100-sxm4-80gb") == pytest.approx(2.0)


def test_idle_cells_are_in_utc_whatever_the_time_zone():
    frame = _telemetry()
    nepal = frame.with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Kathmandu"))
    t0 = frame["timestamp"].min()
    for source in (nepal, nepal.lazy()):
        r = review(source, prices={"A100": 3.0}, streaming=isinstance(source, pl.LazyFrame), batch_rows=40)  # fmt: skip
        assert r.idle_gpus(t0, t0 + 30 * MIN) == pytest.approx(1260 / 1800)

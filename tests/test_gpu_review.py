"""review() against hand-computed cases: hours, idle time, cost, flags, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from aiops_lab.gpu.analysis import review


def _telemetry() -> pl.DataFrame:
    t0 = datetime(2026, 10, 5, tzinfo=timezone.utc)
    rows = []
    for gpu in range(2):
        for i in range(60):
            if gpu == 1 and 20 <= i < 30:
                continue  # exporter down for ten minutes: not idle time
            busy = gpu == 0 and i < 30
            rows.append(
                {
                    "timestamp": t0 + timedelta(minutes=i), "host": "node1", "gpu": gpu,
                    "model": "NVIDIA A100-SXM4-80GB", "util_pct": 90.0 if busy else 1.0,
                    "sm_active": 0.05 if busy else 0.0, "mem_used_mib": 4000.0 if busy else 10.0,
                    "mem_total_mib": 81920.0, "power_w": 300.0 if busy else 60.0,
                    "job_id": "7" if busy else None, "user": "ann" if busy else None, "mig_instance": None,
                }
            )  # fmt: skip
    return pl.DataFrame(
        rows,
        schema_overrides={
            "job_id": pl.Utf8,
            "user": pl.Utf8,
            "mig_instance": pl.Utf8,
            "gpu": pl.Int32,
        },
    )


def test_review_accounts_hours_and_cost_by_hand():
    r = review(_telemetry(), prices={"A100": 3.0}, idle_threshold=5.0, backend="numpy")
    g = r.per_gpu.sort("gpu")
    # GPU 0: 60 samples a minute apart, the last counting its median: 60 minutes
    assert g["gpu_hours"][0] == pytest.approx(1.0)
    assert g["idle_gpu_hours"][0] == pytest.approx(0.5)
    # GPU 1: 19 + 29 one-minute intervals, the gap capped at 2 minutes, plus the last: 51 minutes
    assert g["gpu_hours"][1] == pytest.approx(51 / 60)
    assert g["idle_gpu_hours"][1] == pytest.approx(51 / 60)
    s = r.summary
    assert s["idle_cost"] == pytest.approx(3.0 * (0.5 + 51 / 60))
    assert s["total_cost"] == pytest.approx(3.0 * (1.0 + 51 / 60))
    assert s["idle_share"] == pytest.approx((0.5 + 51 / 60) / (1 + 51 / 60))
    assert g["efficiency_source"].to_list() == ["sm_active", "sm_active"]
    assert g["busy_but_idle"][0] is False  # half its time idle: mean util 45.5 %


def test_review_flags_busy_but_idle_jobs_and_oversized_memory():
    r = review(_telemetry(), prices={"A100": 3.0})
    job = r.per_job.filter(pl.col("job_id") == "7").row(0, named=True)
    assert job["busy_but_idle"] is True  # util 90 %, SM active 0.05
    assert job["fits_in"] == "MIG 1g.10gb"  # peak 4000 MiB * 1.2 fits 9728 MiB
    kinds = set(r.recommendations["kind"])
    assert {"idle GPU", "busy but idle"} <= kinds  # right-sizing needs more than an hour of use


def test_review_rejects_bad_input():
    from aiops_lab import errors

    with pytest.raises(errors.ColumnNotFoundError, match="util_pct"):
        review(_telemetry().drop("util_pct"))
    with pytest.raises(errors.ParameterError, match="idle_threshold"):
        review(_telemetry(), idle_threshold=150)
    with pytest.raises(errors.EmptyInputError, match="period"):
        review(_telemetry(), start="2027-01-01T00:00:00Z")


def test_kubernetes_pods_get_their_own_rollup():
    from pathlib import Path

    from aiops_lab.gpu import read_dcgm

    fixture = Path(__file__).parent / "fixtures" / "gpu" / "dcgm_dcp_k8s.prom"
    r = review(read_dcgm(fixture), prices={"A100": 3.0})
    pod = r.per_pod.row(0, named=True)
    assert (pod["namespace"], pod["pod"]) == ("ml-team", "llm-train-0")
    # two scrapes 30 s apart: the last counts the median interval, so 60 s in all
    assert pod["gpu_hours"] == pytest.approx(60 / 3600)
    # SM activity 0.4125 and 0.405 weigh equally: efficiency is their mean, in percent
    assert pod["efficiency_pct"] == pytest.approx(100 * (0.4125 + 0.405) / 2)


def _jobs() -> pl.DataFrame:
    from aiops_lab.gpu._schema import JOBS_SCHEMA

    t0 = datetime(2026, 10, 5, tzinfo=timezone.utc)
    h = timedelta(hours=1)
    rows = [  # job, user, partition, gpus, submit, start, elapsed hours
        ("7", "ann", "a100", 2, t0 - h / 6, t0, 1.0),  # 2 GPU-h held, 0.5 h busy on GPU 0
        ("8", "bob", "a100", 1, t0 - 2 * h, t0, 0.5),  # never seen in the telemetry
        ("9", "cy", "h100", 1, t0 - h, t0, 1.0),  # waited an hour, never seen
        ("10", "cy", "cpu", 0, t0, t0, 3.0),  # no GPU: not part of the GPU accounting
    ]
    frame = pl.DataFrame(
        {
            "job_id": [r[0] for r in rows], "user": [r[1] for r in rows],
            "partition": [r[2] for r in rows], "gpus": [r[3] for r in rows],
            "submit": [r[4] for r in rows], "start": [r[5] for r in rows],
            "end": [r[5] + r[6] * h for r in rows], "elapsed_s": [r[6] * 3600 for r in rows],
            "gpu_hours_alloc": [r[3] * r[6] for r in rows],
            "queue_wait_s": [(r[5] - r[4]).total_seconds() for r in rows],
            "job_name": ["train"] * 4, "state": ["COMPLETED"] * 4,
        }
    )  # fmt: skip
    for name, dtype in JOBS_SCHEMA.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(pl.col(n).cast(t) for n, t in JOBS_SCHEMA.items())


def test_allocation_waste_per_partition_and_user_by_hand():
    r = review(_telemetry(), _jobs(), prices={"A100": 3.0}, backend="numpy")
    part = {row["partition"]: row for row in r.per_partition.iter_rows(named=True)}
    assert set(part) == {"a100", "h100"}  # the CPU-only partition holds no GPU time
    a100 = part["a100"]
    assert a100["jobs"] == 2
    assert a100["gpu_hours_alloc"] == pytest.approx(2.0 + 0.5)
    assert a100["active_gpu_hours"] == pytest.approx(0.5)
    assert a100["wasted_gpu_hours"] == pytest.approx(2.0 - 0.5 + 0.5)
    assert a100["waste_share"] == pytest.approx(2.0 / 2.5)
    # queue waits 10 min and 2 h: the median of two is their mean
    assert a100["median_queue_wait_h"] == pytest.approx((1 / 6 + 2) / 2)
    assert part["h100"]["wasted_gpu_hours"] == pytest.approx(1.0)
    assert part["h100"]["median_queue_wait_h"] == pytest.approx(1.0)
    users = {row["user"]: row for row in r.waste_by_user.iter_rows(named=True)}
    assert users["ann"]["wasted_gpu_hours"] == pytest.approx(1.5)
    assert users["cy"]["jobs"] == 1
    assert "per_partition" in r.tables()
    assert review(_telemetry(), prices={"A100": 3.0}).per_partition is None


@pytest.mark.parametrize("streaming", [False, True])
def test_per_gpu_peak_temperature(streaming):
    temps = [40.0 + (i % 7) * 5.0 for i in range(60)]  # peaks at 70 °C
    frame = _telemetry()
    assert frame["gpu"].to_list() == [0] * 60 + [1] * 50
    frame = frame.with_columns(pl.Series("temp_c", temps + [None] * 50, dtype=pl.Float64))
    source = frame.lazy() if streaming else frame
    r = review(source, prices={"A100": 3.0}, streaming=streaming, batch_rows=40)
    g = r.per_gpu.sort("gpu")
    assert g["max_temp_c"].to_list() == [70.0, None]  # GPU 1 read no temperature


def test_efficiency_source_says_which_reading_each_row_used():
    frame = _telemetry()  # GPU 0: 60 samples with SM activity, GPU 1: 50
    sm = [0.5 if i < 30 else None for i in range(60)] + [None] * 50
    frame = frame.with_columns(pl.Series("sm_active", sm, dtype=pl.Float64))
    r = review(frame, prices={"A100": 3.0})
    g = r.per_gpu.sort("gpu")
    assert g["efficiency_source"].to_list() == ["mixed", "util_pct"]
    assert r.per_host["efficiency_source"].to_list() == ["mixed"]
    # GPU 0's efficiency: SM activity (50 %) for its busy half, utilization (1 %) after
    assert g["efficiency_pct"][0] == pytest.approx((30 * 50.0 + 30 * 1.0) / 60)
    job = r.per_job.filter(pl.col("job_id") == "7")
    assert job["efficiency_source"].to_list() == ["sm_active"]  # its samples all read SM


def test_a_busy_but_idle_pod_is_flagged_and_advised():
    frame = _telemetry().with_columns(
        pl.when(pl.col("job_id") == "7").then(pl.lit("spin-0")).otherwise(None).alias("pod"),
        pl.when(pl.col("job_id") == "7").then(pl.lit("serving")).otherwise(None).alias("namespace"),
    )
    r = review(frame, prices={"A100": 3.0})
    pod = r.per_pod.row(0, named=True)
    # 30 samples at 90 % utilization, SM active 0.05
    assert (pod["namespace"], pod["pod"], pod["busy_but_idle"]) == ("serving", "spin-0", True)
    advice = r.recommendations.filter(pl.col("target") == "pod serving/spin-0")
    assert advice["kind"].to_list() == ["busy but idle"]
    assert advice["saving_usd"][0] == pytest.approx(3.0 * 0.5)


@pytest.mark.parametrize("streaming", [False, True])
def test_busy_but_idle_hours_count_each_sample(streaming):
    # GPU 0's first 30 samples: 90 % utilization, SM active 0.05 -> half an hour busy but
    # idle; its mean over the hour (45.5 %) is under the flag's 50 %
    frame = _telemetry()
    source = frame.lazy() if streaming else frame
    r = review(source, prices={"A100": 3.0}, streaming=streaming, batch_rows=40)
    g = r.per_gpu.sort("gpu")
    assert g["busy_but_idle_gpu_hours"].to_list() == pytest.approx([0.5, 0.0])
    assert g["busy_but_idle"].to_list() == [False, False]
    assert r.summary["busy_but_idle_gpu_hours"] == pytest.approx(0.5)
    no_sm = review(frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("sm_active")))
    assert no_sm.summary["busy_but_idle_gpu_hours"] == 0.0  # no SM reading: not known

"""Jobs for telemetry without job ids, from Slurm node lists: by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from aiops_lab.datasets import resolve_path
from aiops_lab.errors import InputError
from aiops_lab.gpu import read_sacct, review
from aiops_lab.gpu.attribution import attribute_jobs, expand_hostlist
from aiops_lab.gpu.sources import JOBS_SCHEMA

T0 = datetime(2026, 10, 5, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "hosts"),
    [
        ("gpu-node-03", ["gpu-node-03"]),
        ("gpu-node-[01-03,07]", ["gpu-node-01", "gpu-node-02", "gpu-node-03", "gpu-node-07"]),
        ("n[8-10]", ["n8", "n9", "n10"]),
        ("a[1-2],login,b[3]", ["a1", "a2", "login", "b3"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
    ],
)
def test_expand_hostlist(text, hosts):
    assert expand_hostlist(text) == hosts


@pytest.mark.parametrize("text", ["n[1-", "n[a-b]", "n]1["])
def test_expand_hostlist_rejects_what_is_not_a_host_list(text):
    with pytest.raises(InputError, match="Slurm host list"):
        expand_hostlist(text)


def _telemetry(job_at: dict[tuple[str, int, int], str] | None = None) -> pl.DataFrame:
    """Hosts n1 and n2, two GPUs each, a busy sample a minute from 00:00 to 00:59."""
    job_at = job_at or {}
    rows = [
        {
            "timestamp": T0 + i * MIN, "host": host, "gpu": gpu, "model": "NVIDIA A100-SXM4-80GB",
            "util_pct": 50.0, "mem_used_mib": 1000.0, "mem_total_mib": 81920.0,
            "job_id": job_at.get((host, gpu, i)),
        }
        for host in ("n1", "n2") for gpu in (0, 1) for i in range(60)
    ]  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={"gpu": pl.Int32, "job_id": pl.Utf8})


def _jobs() -> pl.DataFrame:
    rows = [  # job, user, nodes, GPUs, start and end (minutes after 00:00)
        ("A", "ann", "n[1-2]", 4, 10, 20),  # both nodes whole: 2 GPUs on each
        ("B", "bob", "n1", 1, 30, 40),  # one GPU of n1: which one, Slurm does not say
        ("C", "cy", "n2", 2, 30, 50),  # n2 whole
    ]
    frame = pl.DataFrame(
        {
            "job_id": [r[0] for r in rows], "user": [r[1] for r in rows],
            "nodes": [r[2] for r in rows], "gpus": [r[3] for r in rows],
            "start": [T0 + r[4] * MIN for r in rows], "end": [T0 + r[5] * MIN for r in rows],
            "submit": [T0 + r[4] * MIN for r in rows], "partition": ["gpu"] * 3,
            "gpu_hours_alloc": [r[3] * (r[5] - r[4]) / 60 for r in rows],
            "queue_wait_s": [0.0] * 3, "state": ["COMPLETED"] * 3, "job_name": ["x"] * 3,
        }
    )  # fmt: skip
    return _fill(frame)


def test_samples_on_a_node_a_job_held_whole_take_its_id():
    out = attribute_jobs(_telemetry(), _jobs())
    assert out.height == 240
    minute = ((pl.col("timestamp") - T0).dt.total_seconds() // 60).alias("minute")
    counts = dict(out.filter(pl.col("job_id").is_not_null()).group_by("job_id").len().iter_rows())
    assert counts == {"A": 10 * 4, "C": 20 * 2}  # B held part of n1: none
    a = out.filter(pl.col("job_id") == "A").select(minute)["minute"]
    assert (a.min(), a.max()) == (10, 19)  # from its start, up to (not at) its end
    assert out.filter(pl.col("job_id") == "C")["host"].unique().to_list() == ["n2"]
    # the input order is kept
    assert out.drop("job_id").equals(_telemetry().drop("job_id"))


def test_a_sample_that_names_its_job_keeps_it():
    labelled = _telemetry({("n1", 0, 12): "Z"})
    out = attribute_jobs(labelled, _jobs())
    row = out.filter((pl.col("host") == "n1") & (pl.col("gpu") == 0))[12]
    assert row["job_id"][0] == "Z"


def test_review_accounts_attributed_jobs_and_leaves_the_rest_unknown():
    r = review(_telemetry(), _jobs(), prices={"A100": 1.0}, backend="numpy")
    jobs = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    # A: 40 one-minute samples; C: 40; all busy, so nothing of their allocation wasted
    assert jobs["A"]["gpu_hours"] == pytest.approx(40 / 60)
    assert jobs["C"]["gpu_hours"] == pytest.approx(40 / 60)
    assert jobs["A"]["wasted_gpu_hours"] == pytest.approx(0.0)
    assert jobs["A"]["user"] == "ann"  # the user comes from the job
    # B: unknown, not a whole wasted allocation
    assert jobs["B"]["gpu_hours"] is None
    assert jobs["B"]["wasted_gpu_hours"] is None
    part = r.per_partition.row(0, named=True)
    assert part["jobs_usage_unknown"] == 1
    assert part["waste_share"] == pytest.approx(0.0)  # over A and C, whose usage is known
    kinds = r.recommendations["kind"].to_list()
    assert "job usage unknown" in kinds


def test_telemetry_that_names_jobs_counts_an_unseen_job_as_waste():
    # both hosts' samples name jobs: B, never seen on n1, held its GPU for nothing
    named = {("n2", 0, i): "C" for i in range(30, 50)} | {("n1", 1, 0): "Z"}
    labelled = _telemetry(named)
    r = review(labelled, _jobs(), prices={"A100": 1.0}, backend="numpy")
    jobs = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    assert jobs["B"]["wasted_gpu_hours"] == pytest.approx(10 / 60)
    assert "job usage unknown" not in r.recommendations["kind"].to_list()


def test_the_bundled_nvidia_smi_logs_credit_whole_node_jobs():
    r = review("bundled:gpu/nvidia-smi/*.csv.gz", "bundled:gpu/sacct.txt", backend="numpy")
    seen = r.per_job.filter(pl.col("gpu_hours").is_not_null())
    assert (seen["gpus"] == 8).all()  # only jobs that held a whole 8-GPU node
    slurm = read_sacct(resolve_path("bundled:gpu/sacct.txt")).select("job_id", "nodes", "end")
    jobs = seen.join(slurm, on="job_id")
    # a whole-node job's telemetry hours match what it held, to a 2-minute sample per
    # GPU, unless the log misses part of it (datasets/README.md): the exporter outage on
    # gpu-node-02, Wed 10-07 10:00-12:00, and the end of the week, Mon 10-12 00:00
    outage = (datetime(2026, 10, 7, 10, tzinfo=timezone.utc), datetime(2026, 10, 7, 12, tzinfo=timezone.utc))  # fmt: skip
    missed = (pl.col("nodes") == "gpu-node-02") & (pl.col("start") < outage[1]) & (
        pl.col("end") > outage[0]
    ) | (pl.col("end") > datetime(2026, 10, 12, tzinfo=timezone.utc))
    whole = jobs.filter(~missed)
    assert whole.height >= 20
    assert ((whole["gpu_hours"] - whole["gpu_hours_alloc"]).abs() <= 8 * 2 / 60 + 1e-9).all()
    assert (jobs["gpu_hours"] <= jobs["gpu_hours_alloc"] + 8 * 2 / 60).all()


@pytest.mark.parametrize("streaming", [False, True])
def test_a_lazy_log_is_attributed_as_in_memory(tmp_path, streaming):
    path = tmp_path / "t.parquet"
    _telemetry().with_columns(source=pl.lit("nvidia-smi")).write_parquet(path)
    whole = review(_telemetry(), _jobs(), prices={"A100": 1.0}, backend="numpy")
    lazy = review(path, _jobs(), prices={"A100": 1.0}, streaming=streaming, batch_rows=80)
    cols = ["job_id", "gpu_hours", "active_gpu_hours", "wasted_gpu_hours", "user"]
    assert (
        lazy.per_job.select(cols).sort("job_id").equals(whole.per_job.select(cols).sort("job_id"))
    )
    assert lazy.per_job.filter(pl.col("job_id") == "A")["gpu_hours"][0] == pytest.approx(40 / 60)


def test_each_host_is_named_or_not_on_its_own():
    # n1's samples name a job, n2's none: n2 is put down to whole-node jobs, n1 is not
    r = review(_telemetry({("n1", 1, 0): "Z"}), _jobs(), prices={"A100": 1.0}, backend="numpy")
    jobs = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    assert jobs["C"]["gpu_hours"] == pytest.approx(40 / 60)  # n2 whole: attributed
    assert jobs["C"]["wasted_gpu_hours"] == pytest.approx(0.0)
    # A held both hosts whole: n2 attributed (20 samples), n1 names jobs and not A's
    assert jobs["A"]["gpu_hours"] == pytest.approx(20 / 60)
    assert jobs["A"]["wasted_gpu_hours"] == pytest.approx(40 / 60 - 20 / 60)
    assert jobs["B"]["wasted_gpu_hours"] == pytest.approx(10 / 60)  # n1 names jobs: unseen


def test_a_job_on_a_host_without_telemetry_has_unknown_usage():
    jobs = _jobs().with_columns(
        pl.when(pl.col("job_id") == "C").then(pl.lit("n[2-3]")).otherwise(pl.col("nodes")).alias("nodes"),
        pl.when(pl.col("job_id") == "C").then(4).otherwise(pl.col("gpus")).alias("gpus"),
    )  # fmt: skip
    r = review(_telemetry(), jobs, prices={"A100": 1.0}, backend="numpy")
    c = r.per_job.filter(pl.col("job_id") == "C").row(0, named=True)
    assert c["gpu_hours"] == pytest.approx(40 / 60)  # n2 whole: seen
    assert c["wasted_gpu_hours"] is None  # n3 has no telemetry: its share unknown


def test_overlapping_windows_and_mig_slices_are_not_guessed():
    # D and E both claim n1 whole at minutes 40-45: neither is put down there
    extra = pl.DataFrame(
        {"job_id": ["D", "E"], "nodes": ["n1", "n1"], "gpus": [2, 2],
         "start": [T0 + 40 * MIN, T0 + 42 * MIN], "end": [T0 + 45 * MIN, T0 + 50 * MIN]}
    )  # fmt: skip
    jobs = pl.concat([_jobs(), _jobs().head(0).vstack(_fill(extra))])
    out = attribute_jobs(_telemetry(), jobs)
    assert set(out["job_id"].drop_nulls()) == {"A", "C"}
    # slices of a MIG GPU keep no job: which slice a job had, Slurm does not say
    mig = _telemetry().with_columns(
        pl.when(pl.col("host") == "n2").then(pl.lit("1")).otherwise(None).alias("mig_instance")
    )
    out = attribute_jobs(mig, _jobs())
    assert out.filter(pl.col("host") == "n2")["job_id"].null_count() == 120
    assert out.filter(pl.col("host") == "n1")["job_id"].drop_nulls().unique().to_list() == ["A"]


def _fill(frame: pl.DataFrame) -> pl.DataFrame:
    for name, dtype in JOBS_SCHEMA.items():
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(pl.col(n).cast(t) for n, t in JOBS_SCHEMA.items())


def test_only_the_time_the_telemetry_ran_counts():
    # the telemetry runs 00:00 to 01:00 (60 one-minute samples); F held n2 whole from
    # 00:50 to 01:50: 2 GPUs x 10 minutes inside it, seen busy; G ran 02:00-03:00: no
    # telemetry then, so its usage is unknown, not a wasted allocation
    extra = pl.DataFrame(
        {"job_id": ["F", "G"], "nodes": ["n2", "n[1-2]"], "gpus": [2, 4],
         "start": [T0 + 50 * MIN, T0 + 120 * MIN], "end": [T0 + 110 * MIN, T0 + 180 * MIN],
         "gpu_hours_alloc": [2.0, 4.0]}
    )  # fmt: skip
    jobs = pl.concat([_jobs().filter(pl.col("job_id") == "A"), _fill(extra)])
    r = review(_telemetry(), jobs, prices={"A100": 1.0}, backend="numpy")
    got = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    assert got["F"]["gpu_hours"] == pytest.approx(20 / 60)
    assert got["F"]["wasted_gpu_hours"] == pytest.approx(0.0)  # not the 1.67 h after the log
    assert got["G"]["wasted_gpu_hours"] is None
    # a review period that leaves A out: A's usage is unknown too
    later = review(_telemetry(), jobs, prices={"A100": 1.0}, start=T0 + 45 * MIN)
    a = later.per_job.filter(pl.col("job_id") == "A").row(0, named=True)
    assert a["wasted_gpu_hours"] is None


def test_a_mig_host_is_not_guessed_and_its_jobs_are_unknown():
    # n2's GPU 0 is split: Slurm counts slices, the telemetry GPUs; no job is put down there
    frame = _telemetry().with_columns(
        pl.when((pl.col("host") == "n2") & (pl.col("gpu") == 0)).then(pl.lit("1")).otherwise(None).alias("mig_instance")
    )  # fmt: skip
    r = review(frame, _jobs(), prices={"A100": 1.0}, backend="numpy")
    got = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    assert got["C"]["gpu_hours"] is None
    assert got["C"]["wasted_gpu_hours"] is None
    # A held both hosts whole: n1's samples are its own, n2's half of it is unknown
    assert got["A"]["gpu_hours"] == pytest.approx(20 / 60)
    assert got["A"]["wasted_gpu_hours"] is None


def test_a_lazy_frame_is_filled_whatever_a_query_reads():
    lazy = attribute_jobs(_telemetry().lazy(), _jobs())
    counts = dict(lazy.group_by("job_id").len().collect().iter_rows())
    assert counts == {None: 160, "A": 40, "C": 40}


def test_odd_node_lists_and_host_tables():
    twice = _jobs().with_columns(
        pl.when(pl.col("job_id") == "C").then(pl.lit("n[2,2]")).otherwise(pl.col("nodes")).alias("nodes")
    )  # fmt: skip
    out = attribute_jobs(_telemetry(), twice)
    assert out.filter(pl.col("job_id") == "C").height == 40  # n2 named twice: still C's
    # a host table that lacks a host of the telemetry: that host gets no job, no error
    from aiops_lab.gpu.attribution import gpus_per_host

    hosts = gpus_per_host(_telemetry()).filter(pl.col("host") == "n2")
    out = attribute_jobs(_telemetry(), _jobs(), hosts)
    assert out.filter(pl.col("host") == "n1")["job_id"].null_count() == 120


def test_the_story_says_what_the_review_cannot_see():
    from aiops_lab.gpu import story

    n1_gpu1 = (pl.col("host") == "n1") & (pl.col("gpu") == 1)
    frame = _telemetry().with_columns(
        pl.when(pl.col("host") == "n2").then(pl.lit("NVIDIA H100 80GB HBM3")).otherwise(pl.col("model")).alias("model"),
        pl.when(n1_gpu1).then(0.0).otherwise(pl.col("util_pct")).alias("util_pct"),  # idle
    )  # fmt: skip
    r = review(frame, _jobs(), prices={"A100": 1.0}, backend="numpy")
    text = story.verdict(r)
    assert "2 GPU-hours are of models the price table lacks" in text  # n2: 2 GPUs x 1 h
    assert "no job is known to have held" in text  # B's GPU on n1 cannot be told apart
    steps = story.next_steps(r)
    assert steps[0].startswith("**price missing** (1): NVIDIA H100 80GB HBM3: add the model")
    assert any(s.startswith("**job usage unknown** (1): 1 job: label the samples") for s in steps)


def test_jobs_without_times_or_gpus_have_unknown_usage():
    # n1's samples name jobs, so its jobs are judged by what the samples say; but a job
    # without a start, an end or a GPU count has no allocation to set against them
    named = _telemetry({("n1", 1, 0): "Z"})
    jobs = _jobs().with_columns(
        pl.when(pl.col("job_id") == "B").then(None).otherwise(pl.col("start")).alias("start"),
        pl.when(pl.col("job_id") == "A").then(None).otherwise(pl.col("gpus")).alias("gpus"),
    )
    r = review(named, jobs, prices={"A100": 1.0}, backend="numpy")
    got = {row["job_id"]: row for row in r.per_job.iter_rows(named=True)}
    assert got["B"]["wasted_gpu_hours"] is None
    assert got["A"]["wasted_gpu_hours"] is None
    assert got["C"]["wasted_gpu_hours"] == pytest.approx(0.0)  # n2 whole, all seen busy

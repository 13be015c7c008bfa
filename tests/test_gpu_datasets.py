"""The synthetic GPU cluster in datasets/gpu/: reproducibility, formats and the injected patterns.

The job ids, users, GPUs and times asserted here are the ones documented in the
"GPU cluster" section of datasets/README.md.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "datasets" / "make_gpu_datasets.py"
GPU_DIR = ROOT / "datasets" / "gpu"
UTC = timezone.utc
HOSTS = ["gpu-node-01", "gpu-node-02", "gpu-node-03", "gpu-node-04"]
TRUTH_COLUMNS = ["timestamp", "host", "gpu", "uuid", "model", "util_pct", "sm_active",
                 "tensor_active", "mem_used_mib", "mem_total_mib", "power_w", "temp_c",
                 "job_id", "user"]  # fmt: skip
# Metric names and HELP texts as in dcgm-exporter's counter catalogue (etc/default-counters.csv)
DCGM_HELP = {
    "DCGM_FI_DEV_GPU_TEMP": "GPU temperature (in C).",
    "DCGM_FI_DEV_POWER_USAGE": "Power draw (in W).",
    "DCGM_FI_DEV_GPU_UTIL": "GPU utilization (in %).",
    "DCGM_FI_DEV_FB_FREE": "Framebuffer memory free (in MiB).",
    "DCGM_FI_DEV_FB_USED": "Framebuffer memory used (in MiB).",
    "DCGM_FI_PROF_SM_ACTIVE": "The ratio of cycles an SM has at least 1 warp assigned.",
    "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": "Ratio of cycles the tensor (HMMA) pipe is active.",
}

# The injected patterns (datasets/README.md, "Injected patterns")
BUSY_IDLE_JOB = 48232  # erin, infer_server, gpu-node-03 GPUs 1-4
OVERSIZED_JOB = 48302  # carol, bert_base_finetune, gpu-node-02 GPUs 0-7
DANA_JOBS = [48216, 48237, 48313, 48342]
LONG_WAIT_JOBS = [48257, 48260, 48262, 48264, 48266, 48267, 48269, 48270, 48271, 48272]
GAP = ("gpu-node-02", datetime(2026, 10, 7, 10, tzinfo=UTC), datetime(2026, 10, 7, 12, tzinfo=UTC))
WEEKEND = datetime(2026, 10, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_gpu_datasets", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(script: ModuleType) -> dict[str, object]:
    return script.generate()


@pytest.fixture(scope="module")
def rendered(script: ModuleType, data: dict[str, object]) -> dict[str, str]:
    return script.render(data)


@pytest.fixture(scope="module")
def truth(data: dict[str, object]) -> pl.DataFrame:
    frame = data["truth"]
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.fixture(scope="module")
def jobs(data: dict[str, object]) -> pl.DataFrame:
    frame = data["jobs"]
    assert isinstance(frame, pl.DataFrame)
    return frame


def committed_text(name: str) -> str:
    raw = (GPU_DIR / name).read_bytes()
    if name.endswith(".gz"):
        assert raw[4:8] == b"\x00\x00\x00\x00", f"{name}: gzip mtime must be 0"
        raw = gzip.decompress(raw)
    return raw.decode()


def job_samples(truth: pl.DataFrame, job_id: int) -> pl.DataFrame:
    return truth.filter(pl.col("job_id") == job_id)


# --- reproducibility and size -------------------------------------------------------------------


def test_regenerating_gives_the_committed_files(rendered: dict[str, str]) -> None:
    files = [p for p in GPU_DIR.rglob("*") if p.is_file()]
    assert sorted(p.relative_to(GPU_DIR).as_posix() for p in files) == sorted(rendered)
    for name, text in rendered.items():
        assert committed_text(name) == text, (
            f"{name} differs: run python datasets/make_gpu_datasets.py"
        )


def test_generate_is_deterministic(script: ModuleType, truth: pl.DataFrame) -> None:
    again = script.generate()["truth"]
    assert again.equals(truth)


def test_folder_is_under_8_mb() -> None:
    assert sum(p.stat().st_size for p in GPU_DIR.rglob("*") if p.is_file()) < 8_000_000


# --- the ground truth ---------------------------------------------------------------------------


def test_truth_schema_and_inventory(truth: pl.DataFrame) -> None:
    assert truth.columns == TRUTH_COLUMNS
    assert truth.height == 7 * 720 * 32 - 60 * 8  # 2-minute samples, minus the exporter gap
    assert truth.schema["timestamp"] == pl.Datetime("us", "UTC")
    gpus = truth.select("host", "gpu", "uuid", "model", "mem_total_mib").unique()
    assert gpus.height == 32
    assert gpus["uuid"].n_unique() == 32
    assert gpus["uuid"].str.contains(r"^GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$").all()
    models = dict(gpus.group_by("host").agg(pl.col("model").unique().first()).rows())
    assert models == {
        "gpu-node-01": "NVIDIA A100-SXM4-80GB",
        "gpu-node-02": "NVIDIA A100-SXM4-80GB",
        "gpu-node-03": "NVIDIA H100 80GB HBM3",
        "gpu-node-04": "NVIDIA H100 80GB HBM3",
    }
    total = {"NVIDIA A100-SXM4-80GB": 81920, "NVIDIA H100 80GB HBM3": 81559}
    assert all(total[m] == t for m, t in gpus.select("model", "mem_total_mib").rows())
    assert truth["timestamp"].min() == datetime(2026, 10, 5, tzinfo=UTC)
    assert truth["timestamp"].max() == datetime(2026, 10, 11, 23, 58, tzinfo=UTC)


def test_idle_gpus_look_idle(truth: pl.DataFrame) -> None:
    idle = truth.filter(pl.col("job_id").is_null())
    assert idle["user"].is_null().all()
    assert idle["util_pct"].max() <= 2
    assert idle["mem_used_mib"].max() < 500
    assert idle["power_w"].is_between(50, 100).all()


def test_jobs_table(jobs: pl.DataFrame, truth: pl.DataFrame) -> None:
    assert 150 <= jobs.height <= 300
    assert jobs["user"].n_unique() == 8
    assert set(jobs["n_gpus"]) == {1, 2, 4, 8}
    assert set(jobs["state"]) == {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"}
    assert (jobs["wait_s"] >= 0).all()
    # every GPU runs at most one job at a time: the truth agrees with the job intervals
    per_job = (
        truth.filter(pl.col("job_id").is_not_null())
        .group_by("job_id")
        .agg(pl.col("host").unique(), pl.col("gpu").unique().sort(), pl.col("timestamp").min())
    )
    checked = per_job.join(jobs, on="job_id", suffix="_job")
    assert checked.height == jobs.height
    assert (checked["host"].list.len() == 1).all()
    assert (checked["host"].list.first() == checked["host_job"]).all()
    assert (checked["gpu"] == checked["gpus"]).all()
    assert (checked["timestamp"] >= checked["start"]).all()


# --- the injected patterns ----------------------------------------------------------------------


def test_a_busy_but_idle_job(truth: pl.DataFrame, jobs: pl.DataFrame) -> None:
    job = jobs.filter(pl.col("job_id") == BUSY_IDLE_JOB).row(0, named=True)
    assert (job["user"], job["name"], job["host"], job["gpus"]) == (
        "erin", "infer_server", "gpu-node-03", [1, 2, 3, 4],
    )  # fmt: skip
    samples = job_samples(truth, BUSY_IDLE_JOB)
    assert samples.height == 4 * 311
    assert (samples["util_pct"] > 90).all()
    assert (samples["sm_active"] < 0.15).all()
    # no other job looks like that
    means = truth.group_by("job_id").agg(pl.col("util_pct").mean(), pl.col("sm_active").mean())
    lookalikes = means.filter((pl.col("util_pct") > 90) & (pl.col("sm_active") < 0.15))
    assert lookalikes["job_id"].to_list() == [BUSY_IDLE_JOB]


def test_b_memory_oversized_job(truth: pl.DataFrame, jobs: pl.DataFrame) -> None:
    job = jobs.filter(pl.col("job_id") == OVERSIZED_JOB).row(0, named=True)
    assert (job["user"], job["host"], job["n_gpus"]) == ("carol", "gpu-node-02", 8)
    samples = job_samples(truth, OVERSIZED_JOB)
    peak = samples.group_by("gpu").agg(pl.col("mem_used_mib").max())["mem_used_mib"]
    assert peak.len() == 8
    assert peak.max() < 10 * 1024  # fits a 1g.10gb MIG slice on every GPU
    assert (samples["mem_total_mib"] == 81920).all()
    # no other job stays under 10 GiB
    peaks = truth.group_by("job_id").agg(pl.col("mem_used_mib").max()).drop_nulls("job_id")
    assert peaks.filter(pl.col("mem_used_mib") < 10 * 1024)["job_id"].to_list() == [OVERSIZED_JOB]


def test_c_weekend_idle_gpus(truth: pl.DataFrame) -> None:
    weekend = truth.filter(pl.col("timestamp") >= WEEKEND)
    never_used = weekend.group_by("host", "gpu").agg(pl.col("job_id").is_not_null().sum())
    never_used = never_used.filter(pl.col("job_id") == 0).sort("gpu")
    assert never_used.select("host", "gpu").rows() == [("gpu-node-04", g) for g in (4, 5, 6, 7)]
    idle = weekend.filter((pl.col("host") == "gpu-node-04") & (pl.col("gpu") >= 4))
    assert idle.height == 4 * 2 * 720  # present the whole weekend, not missing
    assert idle["util_pct"].max() <= 2


def test_c_dana_holds_gpus_at_low_util(truth: pl.DataFrame, jobs: pl.DataFrame) -> None:
    dana = jobs.filter(pl.col("user") == "dana")
    assert dana["job_id"].to_list() == DANA_JOBS
    assert (dana["n_gpus"] == 4).all()
    assert (dana["name"] == "interactive").all()
    assert ((dana["end"] - dana["start"]).dt.total_hours() >= 5).all()
    samples = truth.filter(pl.col("user") == "dana")
    assert set(samples["job_id"]) == set(DANA_JOBS)
    assert samples["util_pct"].max() < 5


def test_d_exporter_gap_is_missing_not_idle(truth: pl.DataFrame, jobs: pl.DataFrame) -> None:
    host, start, end = GAP
    node = truth.filter(pl.col("host") == host)
    assert node.filter(pl.col("timestamp").is_between(start, end, closed="left")).height == 0
    stamps = set(node["timestamp"])
    assert datetime(2026, 10, 7, 9, 58, tzinfo=UTC) in stamps
    assert end in stamps
    others = truth.filter(pl.col("timestamp").is_between(start, end, closed="left"))
    assert others.height == 60 * 24  # the other three hosts keep reporting
    # jobs held all 8 GPUs of the node through the gap: it must not count as idle time
    running = jobs.filter(
        (pl.col("host") == host) & (pl.col("start") < end) & (pl.col("end") > start)
    )
    assert set(running["gpus"].explode()) == set(range(8))
    around = node.filter(pl.col("timestamp").is_in([datetime(2026, 10, 7, 9, 58, tzinfo=UTC), end]))
    assert around["job_id"].is_not_null().all()


def test_e_long_waits_while_the_other_partition_idles(
    truth: pl.DataFrame, jobs: pl.DataFrame
) -> None:
    long = jobs.filter(pl.col("wait_s") > 6 * 3600).sort("job_id")
    assert long["job_id"].to_list() == LONG_WAIT_JOBS
    assert (long["partition"] == "a100").all()
    h100_idle = (
        truth.filter(pl.col("host").is_in(HOSTS[2:]))
        .group_by("timestamp")
        .agg(pl.col("job_id").is_null().sum().alias("idle"))
    )
    for submit, start in long.select("submit", "start").rows():
        during = h100_idle.filter(pl.col("timestamp").is_between(submit, start, closed="left"))
        assert during.height > 150
        assert during["idle"].min() >= 4


# --- the files agree with the truth -------------------------------------------------------------


def test_nvidia_smi_files(rendered: dict[str, str], truth: pl.DataFrame) -> None:
    header = rendered["nvidia-smi/gpu-node-01.csv.gz"].split("\n", 1)[0]
    assert header == (
        "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], "
        "memory.total [MiB], power.draw [W], temperature.gpu"
    )
    for host in HOSTS:
        text = rendered[f"nvidia-smi/{host}.csv.gz"]
        lines = text.splitlines()
        assert lines.count(header) == (2 if host == GAP[0] else 1)  # the logger restarted
        body = "\n".join(line for line in lines if line != header)
        parsed = pl.read_csv(io.StringIO(body), has_header=False, new_columns=header.split(", "))
        expected = truth.filter(pl.col("host") == host).sort("timestamp", "gpu")
        assert parsed.height == expected.height
        util = parsed["utilization.gpu [%]"].str.strip_chars().str.strip_suffix(" %").cast(pl.Int64)
        mem = parsed["memory.used [MiB]"].str.strip_chars().str.strip_suffix(" MiB").cast(pl.Int64)
        watts = parsed["power.draw [W]"].str.strip_chars().str.strip_suffix(" W").cast(pl.Float64)
        assert (util == expected["util_pct"]).all()
        assert (mem == expected["mem_used_mib"]).all()
        assert np.allclose(watts.to_numpy(), expected["power_w"].to_numpy())
    first = rendered["nvidia-smi/gpu-node-01.csv.gz"].splitlines()[1]
    assert first.startswith("2026/10/05 00:00:00.000, 0, GPU-")
    assert ", NVIDIA A100-SXM4-80GB, " in first
    assert ", 81920 MiB, " in first


def test_dcgm_file(rendered: dict[str, str], truth: pl.DataFrame) -> None:
    lines = pl.Series("line", rendered["dcgm.prom.gz"].splitlines())
    frame = pl.DataFrame(lines).with_columns(
        ts=pl.col("line").str.extract(r"^# TIMESTAMP (.+)$").forward_fill()
    )
    assert frame["ts"].n_unique() == 7 * 24 * 6
    helps = frame.filter(pl.col("line").str.starts_with("# HELP "))
    assert helps.height == 7 * 24 * 6 * len(DCGM_HELP)  # HELP and TYPE once per scrape
    assert set(helps["line"]) == {f"# HELP {k} {v}" for k, v in DCGM_HELP.items()}
    samples = frame.filter(~pl.col("line").str.starts_with("#")).with_columns(
        pl.col("line").str.extract_groups(
            r'^(\w+)\{gpu="(\d)",UUID="(GPU-[0-9a-f-]+)",device="nvidia(\d)",modelName="([^"]+)",'
            r'Hostname="([\w-]+)",container="",namespace="",pod="",hpc_job="(\d*)"\} (\S+)$'
        )
    )
    parts = samples["line"].struct.unnest()
    assert parts.null_count().sum_horizontal().item() == 0
    assert set(parts["1"]) == set(DCGM_HELP)
    assert (parts["2"] == parts["4"]).all()
    util = samples.with_columns(parts).filter(pl.col("1") == "DCGM_FI_DEV_GPU_UTIL")
    util = util.select(
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC").alias("timestamp"),
        pl.col("6").alias("host"),
        pl.col("2").cast(pl.Int64).alias("gpu"),
        pl.col("7").alias("hpc_job"),
        pl.col("8").cast(pl.Int64).alias("value"),
    )
    joined = util.join(truth, on=["timestamp", "host", "gpu"], how="left")
    assert joined.height == 7 * 24 * 6 * 32 - 12 * 8  # the gap is missing here too
    assert (joined["value"] == joined["util_pct"]).all()
    assert (joined["hpc_job"] == joined["job_id"].cast(pl.String).fill_null("")).all()


def test_sacct_file(rendered: dict[str, str], jobs: pl.DataFrame, truth: pl.DataFrame) -> None:
    text = rendered["sacct.txt"]
    sacct = pl.read_csv(io.StringIO(text), separator="|", infer_schema=False)
    assert sacct.columns == [
        "JobID", "JobName", "User", "Partition", "State", "Submit", "Start", "End", "Elapsed",
        "AllocTRES", "TRESUsageInAve", "NodeList",
    ]  # fmt: skip
    top = sacct.filter(~pl.col("JobID").str.contains(r"\."))
    assert top["JobID"].cast(pl.Int64).to_list() == jobs["job_id"].to_list()
    assert top["Start"].str.contains(r"^2026-10-\d\dT\d\d:\d\d:\d\d$").all()
    assert top["Elapsed"].str.contains(r"^(\d+-)?\d\d:\d\d:\d\d$").all()
    assert top["State"].str.contains(r"^(COMPLETED|FAILED|TIMEOUT|CANCELLED by 10\d\d)$").all()
    steps = sacct.filter(pl.col("JobID").str.contains(r"\."))
    assert set(steps["JobID"].str.extract(r"\.(\w+)$")) == {"batch", "extern", "0"}
    assert steps.filter(pl.col("JobID").str.ends_with(".extern")).height == jobs.height
    line = top.filter(pl.col("JobID") == str(OVERSIZED_JOB)).row(0, named=True)
    assert line["AllocTRES"] == (
        "billing=128,cpu=128,gres/gpu:a100=8,gres/gpumem=640G,mem=960G,node=1"
    )
    # the usage step of the busy-but-idle job reports its mean utilization from the truth
    usage = steps.filter(pl.col("JobID") == f"{BUSY_IDLE_JOB}.0")["TRESUsageInAve"].item()
    mean = job_samples(truth, BUSY_IDLE_JOB)["util_pct"].mean()
    assert f"gres/gpuutil={round(mean)}," in usage


def test_prices_file(rendered: dict[str, str]) -> None:
    prices = pl.read_csv(io.StringIO(rendered["prices.csv"]))
    assert prices.columns == ["model", "price_per_gpu_hour_usd", "source", "as_of"]
    price = dict(prices.select("model", "price_per_gpu_hour_usd").rows())
    assert 3.0 <= price["NVIDIA A100-SXM4-80GB"] <= 4.1
    assert 5.0 <= price["NVIDIA H100 80GB HBM3"] <= 7.0
    assert prices["source"].str.contains("illustrative").all()

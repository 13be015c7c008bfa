"""The GPU readers: nvidia-smi logs, dcgm-exporter scrapes, sacct dumps, telemetry tables.

Fixtures in tests/fixtures/gpu are written by hand in each tool's real output format;
expected values are worked out by hand from those files.
"""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from aiops_lab import gpu
from aiops_lab.errors import AiopsLabWarning, EmptyInputError, InputError, ParameterError
from aiops_lab.gpu import (
    JOBS_SCHEMA,
    TELEMETRY_SCHEMA,
    read_dcgm,
    read_nvidia_smi,
    read_sacct,
    read_telemetry,
)

FIXTURES = Path(__file__).parent / "fixtures" / "gpu"
SMI_HEADER = (
    "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], "
    "memory.total [MiB], power.draw [W], temperature.gpu"
)
UUID0 = "GPU-8f1c2d3e-1111-2222-3333-444455556666"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def write(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def smi_row(ts: str, gpu: int, util: str, used: str, total: str = "81920 MiB") -> str:
    return f"2026/10/05 {ts}, {gpu}, {UUID0}, NVIDIA A100-SXM4-80GB, {util}, {used}, {total}, 65.32 W, 45"


def test_package_exports_readers_lazily():
    assert gpu.read_nvidia_smi is read_nvidia_smi
    assert set(gpu.__all__) >= {"read_dcgm", "read_sacct", "TELEMETRY_SCHEMA", "JOBS_SCHEMA"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gpu.nope


# ---------------------------------------------------------------------- nvidia-smi


def test_smi_units_and_placeholders():
    frame = read_nvidia_smi(FIXTURES / "smi_units.csv")
    assert frame.schema == pl.Schema(TELEMETRY_SCHEMA)
    assert frame.height == 4
    assert frame["timestamp"][0] == datetime(2026, 10, 5, 14, 3, 1, 123000, tzinfo=timezone.utc)
    assert frame["host"].unique().to_list() == ["smi_units"]  # the file name
    assert frame["gpu"].to_list() == [0, 1, 0, 1]
    assert frame["util_pct"].to_list() == [87.0, 0.0, 91.0, None]  # [Not Supported]
    assert frame["power_w"].to_list() == [65.32, None, 301.07, 58.10]  # [N/A]
    assert frame["mem_used_mib"].to_list() == [1129.0, 4.0, 40213.0, 4.0]
    assert frame["mem_total_mib"].unique().to_list() == [81920.0]
    assert frame["temp_c"].to_list() == [45.0, 31.0, 52.0, 31.0]
    assert frame["model"][0] == "NVIDIA A100-SXM4-80GB"
    assert frame["uuid"][0] == UUID0
    assert frame["source"].unique().to_list() == ["nvidia-smi"]
    assert frame.select("sm_active", "tensor_active", "mig_profile", "pod").null_count().row(0) == (
        4,
        4,
        4,
        4,
    )


def test_smi_noheader_nounits_takes_query_order_and_host_argument():
    path = FIXTURES / "smi_noheader_nounits.csv"
    frame = read_nvidia_smi(path)
    assert frame["host"].unique().to_list() == ["smi_noheader_nounits"]
    assert frame["util_pct"].to_list() == [12.0, 100.0, 14.0, 99.0]
    assert frame["mem_used_mib"].to_list() == [2048.0, 30100.0, 2048.0, 30102.0]  # bare = MiB
    assert frame["power_w"].to_list() == [55.20, 281.55, 56.01, 279.90]
    named = read_nvidia_smi(path, host="dgx-07")
    assert named["host"].unique().to_list() == ["dgx-07"]


def test_smi_repeated_header_in_another_order_sorted_and_deduplicated():
    # run 2 repeats 14:00:10 from run 1, lists 14:00:05 after it, and orders columns differently
    frame = read_nvidia_smi(FIXTURES / "smi_two_runs.csv")
    assert frame["timestamp"].to_list() == [
        utc(2026, 10, 5, 14, 0, 0),
        utc(2026, 10, 5, 14, 0, 5),
        utc(2026, 10, 5, 14, 0, 10),
        utc(2026, 10, 5, 14, 0, 20),
    ]
    assert frame["util_pct"].to_list() == [50.0, 55.0, 60.0, 70.0]
    assert frame["temp_c"].to_list() == [40.0, 40.0, 41.0, 42.0]
    assert frame["mem_used_mib"].to_list() == [1000.0, 1050.0, 1100.0, 1200.0]


def test_smi_two_hosts_from_host_column():
    frame = read_nvidia_smi(FIXTURES / "smi_hosts.csv", host="ignored")
    by_host = frame.group_by("host").agg(pl.col("util_pct").mean()).sort("host")
    assert by_host.rows() == [("gpu-node-01", 77.5), ("gpu-node-02", 6.0)]


def test_smi_pdsh_prefix_names_the_host():
    frame = read_nvidia_smi(FIXTURES / "smi_pdsh.txt")
    assert frame.select("host", "util_pct").rows() == [("gpu-node-03", 33.0), ("gpu-node-04", 66.0)]


def test_smi_gib_and_mib_in_one_column(tmp_path):
    path = write(
        tmp_path,
        "mixed.csv",
        SMI_HEADER,
        smi_row("14:00:00.000", 0, "10 %", "512 MiB"),
        smi_row("14:00:01.000", 0, "20 %", "1.5 GiB", "80 GiB"),
        smi_row("14:00:02.000", 0, "30 %", "2097152 KiB"),
    )
    frame = read_nvidia_smi(path)
    assert frame["mem_used_mib"].to_list() == [512.0, 1536.0, 2048.0]
    assert frame["mem_total_mib"].to_list() == [81920.0, 81920.0, 81920.0]


def test_smi_unknown_unit_names_file_line_and_column(tmp_path):
    path = write(
        tmp_path,
        "odd.csv",
        SMI_HEADER,
        smi_row("14:00:00.000", 0, "10 %", "512 MiB"),
        smi_row("14:00:01.000", 0, "10 %", "12 XB"),
        smi_row("14:00:02.000", 0, "10 %", "512 MiB"),
    )
    with pytest.raises(InputError) as info:
        read_nvidia_smi(path)
    message = str(info.value)
    for part in ("odd.csv", "line 3", "'memory.used [MiB]'", "unknown unit 'XB'", "GiB"):
        assert part in message


def test_smi_truncated_last_line_is_dropped_with_a_warning(tmp_path):
    text = (FIXTURES / "smi_units.csv").read_text()
    path = tmp_path / "cut.csv"
    path.write_text(text + "2026/10/05 14:03:21.140, 0, GPU-8f1c2d3e-1111-22")
    with pytest.warns(AiopsLabWarning, match=r"line 6: dropped an incomplete last line"):
        frame = read_nvidia_smi(path)
    assert frame.height == 4


def test_smi_run_killed_mid_line_before_a_repeated_header(tmp_path):
    path = write(
        tmp_path,
        "killed.csv",
        SMI_HEADER,
        smi_row("14:00:00.000", 0, "10 %", "512 MiB"),
        "2026/10/05 14:00:01.000, 0, GPU-8f1c",
        SMI_HEADER,
        smi_row("14:10:00.000", 0, "20 %", "512 MiB"),
    )
    with pytest.warns(AiopsLabWarning, match="line 3"):
        frame = read_nvidia_smi(path)
    assert frame["util_pct"].to_list() == [10.0, 20.0]


def test_smi_bad_line_in_the_middle_raises(tmp_path):
    path = write(
        tmp_path,
        "bad.csv",
        SMI_HEADER,
        smi_row("14:00:00.000", 0, "10 %", "512 MiB"),
        smi_row("14:00:01.000", 0, "lots", "512 MiB"),
        smi_row("14:00:02.000", 0, "10 %", "512 MiB"),
    )
    with pytest.raises(InputError, match=r"line 3: column 'utilization.gpu \[%\]': 'lots'"):
        read_nvidia_smi(path)


def test_smi_garbage_file_names_the_file_and_what_was_expected(tmp_path):
    path = write(tmp_path, "notes.csv", "what, is, this", "1, 2, 3")
    with pytest.raises(InputError) as info:
        read_nvidia_smi(path)
    message = str(info.value)
    assert "notes.csv" in message
    assert "utilization.gpu" in message
    assert "memory.used" in message


def test_smi_header_without_index_raises(tmp_path):
    path = write(
        tmp_path, "noindex.csv", "timestamp, utilization.gpu [%]", "2026/10/05 14:00:00, 5 %"
    )
    with pytest.raises(InputError, match="no index column"):
        read_nvidia_smi(path)


def test_smi_utilization_range(tmp_path):
    rows = [SMI_HEADER, smi_row("14:00:00.000", 0, "100.05 %", "1 MiB")]
    assert read_nvidia_smi(write(tmp_path, "round.csv", *rows))["util_pct"].to_list() == [100.0]
    rows.append(smi_row("14:00:01.000", 0, "250 %", "1 MiB"))
    rows.append(smi_row("14:00:02.000", 0, "50 %", "1 MiB"))
    with pytest.raises(InputError, match=r"line 3: column 'util_pct' is 250.0, outside 0-100"):
        read_nvidia_smi(write(tmp_path, "high.csv", *rows))


def test_smi_gzip_reads_like_plain(tmp_path):
    plain = FIXTURES / "smi_units.csv"
    packed = tmp_path / "smi_units.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert read_nvidia_smi(packed).equals(read_nvidia_smi(plain))


def test_smi_lazy_returns_a_lazyframe_equal_to_eager():
    path = FIXTURES / "smi_two_runs.csv"
    lazy = read_nvidia_smi(path, lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(read_nvidia_smi(path))


def test_smi_lazy_validates_at_the_call(tmp_path):
    path = write(tmp_path, "odd.csv", SMI_HEADER, smi_row("14:00:00.000", 0, "1 %", "9 XB"), "")
    path.write_text(path.read_text() + smi_row("14:00:01.000", 0, "1 %", "9 MiB") + "\n")
    with pytest.raises(InputError, match="line 2"):
        read_nvidia_smi(path, lazy=True)


def test_smi_timezone_converts_local_times_to_utc():
    frame = read_nvidia_smi(FIXTURES / "smi_units.csv", timezone="Europe/Berlin")  # CEST, +2 h
    assert frame["timestamp"][0] == datetime(2026, 10, 5, 12, 3, 1, 123000, tzinfo=timezone.utc)
    with pytest.raises(ParameterError, match="timezone"):
        read_nvidia_smi(FIXTURES / "smi_units.csv", timezone="Mars/Olympus")


def test_smi_empty_and_header_only(tmp_path):
    with pytest.raises(EmptyInputError, match="empty"):
        read_nvidia_smi(write(tmp_path, "empty.csv", ""))
    frame = read_nvidia_smi(write(tmp_path, "header.csv", SMI_HEADER))
    assert frame.height == 0
    assert frame.schema == pl.Schema(TELEMETRY_SCHEMA)


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(InputError, match=r"nope\.csv' does not exist"):
        read_nvidia_smi(tmp_path / "nope.csv")


# ---------------------------------------------------------------------- dcgm-exporter


def test_dcgm_default_counters_without_profiling(tmp_path):
    path = tmp_path / "scrape.prom"
    shutil.copy(FIXTURES / "dcgm_default.prom", path)
    saved = utc(2026, 10, 5, 14, 3, 0)
    os.utime(path, (saved.timestamp(), saved.timestamp()))  # one curl, no time stamps
    frame = read_dcgm(path)
    assert frame.schema == pl.Schema(TELEMETRY_SCHEMA)
    assert frame.select("gpu", "util_pct", "mem_used_mib", "power_w", "temp_c").rows() == [
        (0, 87.0, 40213.0, 301.07, 52.0),
        (1, 0.0, 4.0, 58.1, 31.0),
    ]
    assert frame["mem_total_mib"].to_list() == [81920.0, 81920.0]  # used + free + reserved
    assert frame["sm_active"].to_list() == [None, None]
    assert frame["tensor_active"].to_list() == [None, None]
    assert frame["timestamp"].to_list() == [saved, saved]
    assert frame["host"].unique().to_list() == ["gpu-node-01"]
    assert frame["model"].unique().to_list() == ["NVIDIA A100-SXM4-80GB"]
    assert frame["pod"].to_list() == [None, None]
    assert frame["source"].unique().to_list() == ["dcgm"]


def test_dcgm_profiling_metrics_two_scrapes_and_pod_labels():
    frame = read_dcgm(FIXTURES / "dcgm_dcp_k8s.prom")  # '# TIMESTAMP' then '# scrape' comments
    assert frame["timestamp"].unique().to_list() == [
        utc(2026, 10, 5, 14, 3, 0),
        utc(2026, 10, 5, 14, 3, 30),
    ]
    busy = frame.filter(pl.col("gpu") == 0)
    assert busy["util_pct"].to_list() == [98.0, 97.0]
    assert busy["sm_active"].to_list() == [0.4125, 0.405]
    assert busy["tensor_active"].to_list() == [0.25, 0.24]
    assert busy["mem_total_mib"].to_list() == [81037.0, 81037.0]  # no FB_RESERVED: used + free
    assert busy.select("pod", "namespace").unique().rows() == [("llm-train-0", "ml-team")]
    idle = frame.filter(pl.col("gpu") == 1)
    assert idle.select("pod", "namespace").unique().rows() == [(None, None)]  # pod=""


def test_dcgm_mig_instances_per_sample_timestamps_and_gr_engine_fallback():
    frame = read_dcgm(FIXTURES / "dcgm_mig.prom")
    assert frame.height == 4
    first = frame.filter(pl.col("timestamp") == utc(2026, 10, 5, 14, 3, 0))
    assert first.select("mig_profile", "mig_instance", "util_pct", "tensor_active").rows() == [
        ("3g.40gb", "1", 50.0, 0.125),  # no GPU_UTIL on MIG: 100 * GR_ENGINE_ACTIVE
        ("1g.10gb", "9", 0.0, 0.0),
    ]
    assert first["mem_total_mib"].to_list() == [39968.0, 9728.0]
    assert first["job_id"].to_list() == ["4100", None]  # hpc_job label
    assert first["gpu"].to_list() == [0, 0]
    assert first["host"].unique().to_list() == ["gpu-node-05"]


def _sample(metric: str, value: str, extra: str = "", stamp: str = "") -> str:
    labels = f'gpu="0",UUID="{UUID0}",modelName="NVIDIA A100-SXM4-80GB",Hostname="n1"{extra}'
    return f"{metric}{{{labels}}} {value}{stamp}"


def test_dcgm_several_scrapes_without_time_stamps_raise(tmp_path):
    path = write(
        tmp_path,
        "twice.prom",
        _sample("DCGM_FI_DEV_GPU_UTIL", "10"),
        _sample("DCGM_FI_DEV_GPU_UTIL", "20"),
    )
    with pytest.raises(InputError, match="# TIMESTAMP"):
        read_dcgm(path)


def test_dcgm_time_sliced_pods_and_slurm_job_label(tmp_path):
    path = write(
        tmp_path,
        "shared.prom",
        "# TIMESTAMP 1791208980",  # epoch seconds
        _sample("DCGM_FI_DEV_GPU_UTIL", "40", ',namespace="a",pod="p1",slurm_job_id="77"'),
        _sample("DCGM_FI_DEV_GPU_UTIL", "40", ',namespace="a",pod="p2",slurm_job_id="77"'),
    )
    frame = read_dcgm(path)
    assert frame.select("timestamp", "pod", "namespace", "job_id", "util_pct").rows() == [
        (utc(2026, 10, 5, 14, 3, 0), "p1,p2", "a", "77", 40.0)
    ]


def test_dcgm_sample_time_stamp_wins_over_the_comment(tmp_path):
    path = write(
        tmp_path,
        "stamps.prom",
        "# TIMESTAMP 2026-10-05T14:00:00Z",
        _sample("DCGM_FI_DEV_GPU_UTIL", "10", stamp=" 1791209010000"),
        _sample("DCGM_FI_DEV_GPU_TEMP", "50"),
    )
    frame = read_dcgm(path)
    assert frame.select("timestamp", "util_pct", "temp_c").rows() == [
        (utc(2026, 10, 5, 14, 0, 0), None, 50.0),
        (utc(2026, 10, 5, 14, 3, 30), 10.0, None),
    ]


def test_dcgm_time_stamp_comment_forms_and_gzip(tmp_path):
    path = write(
        tmp_path,
        "forms.prom",
        "# TIMESTAMP 2026-10-05 14:03:00",  # no zone: UTC
        _sample("DCGM_FI_DEV_GPU_UTIL", "10"),
        "# scrape 2026-10-05T16:03:30+02:00",
        _sample("DCGM_FI_DEV_GPU_UTIL", "NaN"),  # NaN -> null
    )
    packed = tmp_path / "forms.prom.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    frame = read_telemetry(packed)
    assert frame.select("timestamp", "util_pct").rows() == [
        (utc(2026, 10, 5, 14, 3, 0), 10.0),
        (utc(2026, 10, 5, 14, 3, 30), None),
    ]
    bad = write(tmp_path, "bad.prom", "# TIMESTAMP soon", _sample("DCGM_FI_DEV_GPU_UTIL", "1"))
    with pytest.raises(InputError, match="line 1: the time stamp 'soon'"):
        read_dcgm(bad)


def test_dcgm_bad_lines(tmp_path):
    good = _sample("DCGM_FI_DEV_GPU_UTIL", "10", stamp=" 1791209010000")
    with pytest.raises(InputError, match=r"broken.prom', line 2: 'this is not' is not"):
        read_dcgm(write(tmp_path, "broken.prom", good, "this is not", good))
    path = tmp_path / "cut.prom"
    path.write_text(good + "\n" + 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUI')
    with pytest.warns(AiopsLabWarning, match="line 2"):
        assert read_dcgm(path).height == 1


def test_dcgm_ratio_out_of_range_names_the_column(tmp_path):
    path = write(
        tmp_path,
        "ratio.prom",
        _sample("DCGM_FI_PROF_SM_ACTIVE", "1.5", stamp=" 1791209010000"),
        _sample("DCGM_FI_PROF_SM_ACTIVE", "0.5", stamp=" 1791209040000"),
    )
    with pytest.raises(InputError, match=r"ratio.prom', line 1: column 'sm_active' is 1.5"):
        read_dcgm(path)


def test_dcgm_lazy_equals_eager():
    path = FIXTURES / "dcgm_dcp_k8s.prom"
    lazy = read_dcgm(path, lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(read_dcgm(path))


# ---------------------------------------------------------------------- sacct


@pytest.fixture(scope="module")
def jobs() -> pl.DataFrame:
    return read_sacct(FIXTURES / "sacct_gpu.txt")


def job(jobs: pl.DataFrame, job_id: str) -> dict:
    rows = jobs.filter(pl.col("job_id") == job_id).to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_sacct_schema_and_one_row_per_job(jobs):
    assert jobs.schema == pl.Schema(JOBS_SCHEMA)  # ExitCode is ignored
    assert jobs["job_id"].to_list() == ["4100", "4101", "4102_1", "4102_2", "4103", "4104", "4105"]


def test_sacct_steps_fold_into_the_job(jobs):
    row = job(jobs, "4100")
    assert (row["job_name"], row["user"], row["partition"], row["state"]) == (
        "train_llm",
        "alice",
        "gpu",
        "COMPLETED",
    )
    assert row["gpus"] == 2
    assert row["gpu_type"] == "a100"
    assert row["elapsed_s"] == 5400.0  # 01:30:00
    assert row["gpu_hours_alloc"] == 3.0  # 2 GPUs x 1.5 h
    assert row["queue_wait_s"] == 600.0  # 08:10 - 08:00
    assert row["gpu_util_avg"] == 88.0  # max of steps: batch 71, step 0 88
    assert row["gpu_mem_avg_mib"] == 36000.0  # max of 30G = 30720 MiB and 36000M
    assert row["start"] == utc(2026, 10, 5, 8, 10)
    assert row["nodes"] == "gpu-node-01"


def test_sacct_gpumem_in_alloc_is_not_a_gpu_count(jobs):
    row = job(jobs, "4101")
    assert row["gpus"] == 1
    assert row["gpu_type"] is None
    assert row["state"] == "FAILED"
    assert row["elapsed_s"] == 2 * 86400 + 3 * 3600 + 4 * 60 + 5  # 2-03:04:05
    assert row["gpu_hours_alloc"] == pytest.approx(183845 / 3600)
    assert row["queue_wait_s"] == 30.0
    assert row["gpu_mem_avg_mib"] == 2048.0


def test_sacct_array_tasks_typed_gres_and_short_elapsed(jobs):
    done = job(jobs, "4102_1")
    assert (done["gpus"], done["gpu_type"]) == (4, "h100")
    assert done["elapsed_s"] == pytest.approx(754.567)  # 12:34.567
    assert done["gpu_hours_alloc"] == pytest.approx(4 * 754.567 / 3600)
    assert done["gpu_util_avg"] == 95.0
    assert done["gpu_mem_avg_mib"] is None
    waiting = job(jobs, "4102_2")
    assert waiting["state"] == "PENDING"
    assert (waiting["start"], waiting["end"], waiting["queue_wait_s"]) == (None, None, None)
    assert (waiting["gpus"], waiting["nodes"]) == (0, None)  # "None assigned"


def test_sacct_typed_only_gres_and_running_job(jobs):
    row = job(jobs, "4104")
    assert (row["gpus"], row["gpu_type"], row["state"]) == (2, "a100", "RUNNING")
    assert row["end"] is None
    assert row["gpu_hours_alloc"] == 1.0  # 2 GPUs x 30 min
    assert row["queue_wait_s"] == 2.0
    assert row["gpu_mem_avg_mib"] == 1536.0  # 1.5G


def test_sacct_cancelled_by_and_cpu_only(jobs):
    assert job(jobs, "4103")["state"] == "CANCELLED"
    assert job(jobs, "4103")["start"] is None
    cpu = job(jobs, "4105")
    assert (cpu["gpus"], cpu["gpu_hours_alloc"], cpu["gpu_type"]) == (0, 0.0, None)


def test_sacct_missing_field_is_named(tmp_path):
    text = (FIXTURES / "sacct_gpu.txt").read_text().splitlines()
    header = text[0].split("|")
    drop = header.index("TRESUsageInAve")
    rows = ["|".join(f for i, f in enumerate(line.split("|")) if i != drop) for line in text]
    with pytest.raises(InputError, match=r"lacks the field\(s\) TRESUsageInAve"):
        read_sacct(write(tmp_path, "short.txt", *rows))


def test_sacct_parsable_with_trailing_pipe_and_bad_elapsed(tmp_path):
    header = "JobID|JobName|User|Partition|State|Submit|Start|End|Elapsed|AllocTRES|TRESUsageInAve|"
    row = "7|x|u|p|COMPLETED|2026-10-05T08:00:00|2026-10-05T08:00:00|2026-10-05T08:15:00|{}|gres/gpu=4||"
    jobs = read_sacct(write(tmp_path, "p.txt", header, row.format("00:15:00")))
    assert jobs.select("gpus", "gpu_hours_alloc", "nodes").row(0) == (4, 1.0, None)
    with pytest.raises(InputError, match=r"line 2: Elapsed 'soon'"):
        read_sacct(write(tmp_path, "bad.txt", header, row.format("soon")))


# ---------------------------------------------------------------------- read_telemetry


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("smi_units.csv", read_nvidia_smi),
        ("smi_noheader_nounits.csv", read_nvidia_smi),
        ("smi_pdsh.txt", read_nvidia_smi),
        ("dcgm_dcp_k8s.prom", read_dcgm),
        ("dcgm_mig.prom", read_dcgm),
    ],
)
def test_telemetry_sniffs_the_kind(name, reader):
    assert read_telemetry(FIXTURES / name).equals(reader(FIXTURES / name))


def test_telemetry_tables_parquet_folder_and_csv(tmp_path):
    smi = read_nvidia_smi(FIXTURES / "smi_units.csv")
    dcgm = read_dcgm(FIXTURES / "dcgm_dcp_k8s.prom")
    folder = tmp_path / "telemetry"
    folder.mkdir()
    smi.write_parquet(folder / "a.parquet")
    dcgm.write_parquet(folder / "b.parquet")
    expected = pl.concat([smi, dcgm]).sort(["timestamp", "host", "gpu"], maintain_order=True)
    assert read_telemetry(folder).equals(expected)
    lazy = read_telemetry(folder, lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(expected)
    assert read_telemetry(folder / "a.parquet").equals(smi)
    smi.write_csv(tmp_path / "saved.csv")
    assert read_telemetry(tmp_path / "saved.csv").equals(smi)


def test_telemetry_table_fills_optional_columns_and_names_missing_ones(tmp_path):
    minimal = pl.DataFrame(
        {"timestamp": [utc(2026, 10, 5, 14, 0)], "host": ["n1"], "gpu": [0], "source": ["nvml"]}
    )
    minimal.write_parquet(tmp_path / "min.parquet")
    frame = read_telemetry(tmp_path / "min.parquet")
    assert frame.schema == pl.Schema(TELEMETRY_SCHEMA)
    assert frame["util_pct"].to_list() == [None]
    minimal.drop("source").write_parquet(tmp_path / "nosource.parquet")
    with pytest.raises(InputError, match="lacks the column"):
        read_telemetry(tmp_path / "nosource.parquet")
    minimal.with_columns(source=pl.lit("guess")).write_parquet(tmp_path / "guess.parquet")
    with pytest.raises(InputError, match="row 1: source 'guess'"):
        read_telemetry(tmp_path / "guess.parquet")


def test_telemetry_kind_and_unknown_formats(tmp_path):
    with pytest.raises(ParameterError, match="kind"):
        read_telemetry(FIXTURES / "smi_units.csv", kind="excel")
    with pytest.raises(InputError, match=r"notes\.txt") as info:
        read_telemetry(write(tmp_path, "notes.txt", "hello world, 1", "x"))
    assert "nvidia-smi" in str(info.value)
    forced = read_telemetry(FIXTURES / "smi_units.csv", kind="nvidia-smi")
    assert forced.equals(read_nvidia_smi(FIXTURES / "smi_units.csv"))

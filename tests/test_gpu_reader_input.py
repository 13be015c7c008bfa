"""The GPU readers on awkward input: cut or split sacct lines, joined nvidia-smi logs,
several files at once, and which line an out-of-range dcgm value is blamed on.

Fixtures are written by hand in each tool's real output format; expected values are
worked out by hand from them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from aiops_lab import gpu
from aiops_lab.errors import AiopsLabWarning, InputError
from aiops_lab.gpu import TELEMETRY_SCHEMA, read_dcgm, read_nvidia_smi, read_sacct, read_telemetry

ROOT = Path(__file__).resolve().parents[1]
SACCT_HEADER = (
    "JobID|JobName|User|Partition|State|Submit|Start|End|Elapsed|AllocTRES|TRESUsageInAve|NodeList"
)
SMI_HEADER = (
    "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], "
    "memory.total [MiB], power.draw [W], temperature.gpu"
)
UUID_A = "GPU-aaaaaaaa-0000-0000-0000-000000000001"
UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000002"
UUID_C = "GPU-cccccccc-0000-0000-0000-000000000003"
UUID_D = "GPU-dddddddd-0000-0000-0000-000000000004"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def write(path: Path, *lines: str, end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def job_line(job_id: str, name: str = "train", elapsed: str = "01:00:00", gpus: int = 2) -> str:
    return (
        f"{job_id}|{name}|alice|gpu|COMPLETED|2026-10-05T08:00:00|2026-10-05T08:10:00|"
        f"2026-10-05T09:10:00|{elapsed}|cpu=8,gres/gpu={gpus},mem=64G,node=1||gpu-node-01"
    )


def smi(ts: str, gpu: int, uuid: str, util: int, host: str | None = None) -> str:
    row = f"2026/10/05 {ts}, {gpu}, {uuid}, NVIDIA L40S, {util} %, 500 MiB, 46068 MiB, 80.00 W, 35"
    return row if host is None else f"{host}, {row}"


# ---------------------------------------------------------------------- sacct


def test_sacct_cut_off_last_line_is_dropped_with_a_warning(tmp_path):
    # the dump stopped while the second job's line was being written: 5 of 12 fields
    path = write(
        tmp_path / "cut.txt", SACCT_HEADER, job_line("9"), "10|trunc|u|p|COMPLETED", end=""
    )
    with pytest.warns(AiopsLabWarning) as caught:
        jobs = read_sacct(path)
    message = str(caught[0].message)
    for part in ("cut.txt", "line 3", "dropped an incomplete last line", "5 of the 12"):
        assert part in message
    assert jobs["job_id"].to_list() == ["9"]
    assert jobs["gpu_hours_alloc"].to_list() == [2.0]  # 2 GPUs x 1 h


def test_sacct_short_line_before_the_end_raises(tmp_path):
    path = write(tmp_path / "short.txt", SACCT_HEADER, "10|trunc|u|p|COMPLETED", job_line("11"))
    with pytest.raises(InputError) as info:
        read_sacct(path)
    message = str(info.value)
    for part in ("short.txt", "line 2", "found 5 '|'-separated fields, expected 12"):
        assert part in message


def test_sacct_pipe_in_a_job_name_names_the_line_and_the_cause(tmp_path):
    path = write(tmp_path / "pipe.txt", SACCT_HEADER, job_line("9"), job_line("10", "a|b"))
    with pytest.raises(InputError) as info:
        read_sacct(path)
    message = str(info.value)
    for part in ("pipe.txt", "line 3", "found 13 '|'-separated fields, expected 12", "JobName"):
        assert part in message
    assert "does not quote" in message


def test_sacct_line_numbers_count_blank_lines(tmp_path):
    path = write(
        tmp_path / "blank.txt", SACCT_HEADER, job_line("9"), "", job_line("10", "x", "soon")
    )
    with pytest.raises(InputError, match=r"line 4: Elapsed 'soon'"):
        read_sacct(path)


def test_sacct_unknown_extra_fields_are_ignored(tmp_path):
    header = SACCT_HEADER + "|ExitCode|Comment"
    path = write(tmp_path / "extra.txt", header, job_line("9", gpus=4) + "|0:0|nightly run")
    jobs = read_sacct(path)
    assert jobs.select("job_id", "job_name", "gpus", "gpu_hours_alloc", "nodes").rows() == [
        ("9", "train", 4, 4.0, "gpu-node-01")  # 4 GPUs x 1 h
    ]
    assert "ExitCode" not in jobs.columns


def test_sacct_without_job_name_field(tmp_path):
    header = SACCT_HEADER.replace("JobName|", "")
    line = job_line("9").replace("|train|", "|", 1)
    jobs = read_sacct(write(tmp_path / "noname.txt", header, line))
    assert jobs.select("job_id", "job_name", "user", "queue_wait_s").rows() == [
        ("9", None, "alice", 600.0)  # 08:10 - 08:00
    ]


# ---------------------------------------------------------------------- nvidia-smi slots


def test_smi_two_hosts_joined_without_host_column_raises(tmp_path):
    # node A's GPU 0 (UUID_A) and node B's GPU 0 (UUID_B), samples interleaved
    path = write(
        tmp_path / "cluster.csv",
        SMI_HEADER,
        smi("14:00:00.000", 0, UUID_A, 90),
        smi("14:00:01.000", 0, UUID_B, 10),
        smi("14:00:10.000", 0, UUID_A, 91),
        smi("14:00:11.000", 0, UUID_B, 11),
    )
    with pytest.raises(InputError) as info:
        read_nvidia_smi(path)
    message = str(info.value)
    for part in ("cluster.csv", "GPU index 0", UUID_A, UUID_B, "host column", "host="):
        assert part in message


def test_smi_joined_hosts_message_lists_at_most_three_uuids(tmp_path):
    uuids = [UUID_A, UUID_B, UUID_C, UUID_D]
    rows = [
        smi(f"14:00:{10 * r + i:02d}.000", 0, u, 50) for r in range(2) for i, u in enumerate(uuids)
    ]
    with pytest.raises(InputError) as info:
        read_nvidia_smi(write(tmp_path / "four.csv", SMI_HEADER, *rows))
    message = str(info.value)
    assert "4 different UUIDs" in message
    assert f"{UUID_A}, {UUID_B}, {UUID_C} and 1 more" in message
    assert UUID_D not in message


def test_smi_replaced_gpu_reads_fine(tmp_path):
    # GPU 0 swapped between 14:00:10 and 14:00:20: UUID_A's samples all precede UUID_B's
    path = write(
        tmp_path / "swap.csv",
        SMI_HEADER,
        smi("14:00:00.000", 0, UUID_A, 20),
        smi("14:00:10.000", 0, UUID_A, 30),
        smi("14:00:20.000", 0, UUID_B, 40),
        smi("14:00:30.000", 0, UUID_B, 50),
    )
    frame = read_nvidia_smi(path)
    assert frame.select("host", "gpu", "uuid", "util_pct").rows() == [
        ("swap", 0, UUID_A, 20.0),
        ("swap", 0, UUID_A, 30.0),
        ("swap", 0, UUID_B, 40.0),
        ("swap", 0, UUID_B, 50.0),
    ]


def test_smi_host_column_keeps_two_hosts_apart(tmp_path):
    path = write(
        tmp_path / "hosts.csv",
        "host, " + SMI_HEADER,
        smi("14:00:00.000", 0, UUID_A, 90, host="node-a"),
        smi("14:00:01.000", 0, UUID_B, 10, host="node-b"),
        smi("14:00:10.000", 0, UUID_A, 92, host="node-a"),
        smi("14:00:11.000", 0, UUID_B, 12, host="node-b"),
    )
    frame = read_nvidia_smi(path)
    by_host = frame.group_by("host", "uuid").agg(pl.col("util_pct").mean()).sort("host")
    assert by_host.rows() == [("node-a", UUID_A, 91.0), ("node-b", UUID_B, 11.0)]


# ---------------------------------------------------------------------- several files


@pytest.fixture
def two_logs(tmp_path: Path) -> list[Path]:
    a = write(
        tmp_path / "logs" / "node-a.csv",
        SMI_HEADER,
        smi("14:00:00.000", 0, UUID_A, 10),
        smi("14:00:10.000", 0, UUID_A, 20),
    )
    b = write(
        tmp_path / "logs" / "node-b.csv",
        SMI_HEADER,
        smi("14:00:05.000", 0, UUID_B, 30),
        smi("14:00:15.000", 0, UUID_B, 40),
        smi("14:00:25.000", 0, UUID_B, 50),
    )
    return [a, b]


def test_telemetry_glob_of_smi_logs_takes_hosts_from_file_names(two_logs):
    frame = read_telemetry(str(two_logs[0].parent / "node-*.csv"))
    assert frame.schema == pl.Schema(TELEMETRY_SCHEMA)
    assert frame.height == 5  # 2 + 3
    assert frame.select("timestamp", "host", "util_pct").rows() == [
        (utc(2026, 10, 5, 14, 0, 0), "node-a", 10.0),
        (utc(2026, 10, 5, 14, 0, 5), "node-b", 30.0),
        (utc(2026, 10, 5, 14, 0, 10), "node-a", 20.0),
        (utc(2026, 10, 5, 14, 0, 15), "node-b", 40.0),
        (utc(2026, 10, 5, 14, 0, 25), "node-b", 50.0),
    ]
    lazy = read_telemetry(str(two_logs[0].parent / "node-*.csv"), lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(frame)
    assert read_telemetry(two_logs).equals(frame)
    assert read_telemetry(tuple(two_logs), kind="nvidia-smi").equals(frame)


def test_review_reads_a_glob_of_smi_logs(two_logs):
    # node-a: samples 10 s apart, the last counts the median 10 s -> 20 s; node-b: 30 s
    result = gpu.review(str(two_logs[0].parent / "*.csv"))
    metrics = result.metrics()
    assert metrics["n_gpus"] == 2.0
    assert metrics["gpu_hours"] == pytest.approx(50 / 3600)


def test_telemetry_glob_mixing_smi_and_dcgm(tmp_path, two_logs):
    write(
        tmp_path / "logs" / "node-c.prom",
        "# TIMESTAMP 2026-10-05T14:00:00Z",
        f'DCGM_FI_DEV_GPU_UTIL{{gpu="0",UUID="{UUID_C}",Hostname="node-c"}} 70',
    )
    frame = read_telemetry(str(tmp_path / "logs" / "node-*"))
    assert frame.height == 6  # 2 + 3 + 1
    counts = frame.group_by("host", "source").len().sort("host").rows()
    assert counts == [
        ("node-a", "nvidia-smi", 2),
        ("node-b", "nvidia-smi", 3),
        ("node-c", "dcgm", 1),
    ]


def test_telemetry_glob_mixing_parquet_and_logs_raises(tmp_path, two_logs):
    read_nvidia_smi(two_logs[0]).write_parquet(tmp_path / "logs" / "node-z.parquet")
    with pytest.raises(InputError) as info:
        read_telemetry(str(tmp_path / "logs" / "node-*"))
    message = str(info.value)
    assert "mixes 1 Parquet file(s)" in message
    assert "2 text log(s)" in message


def test_telemetry_glob_matching_nothing_raises(tmp_path):
    with pytest.raises(InputError, match=r"nothing-\*\.csv' matches no files"):
        read_telemetry(str(tmp_path / "nothing-*.csv"))


def test_telemetry_files_with_one_name_in_two_folders_raise(tmp_path):
    # both logs take the host "node" from their file name, yet hold different GPUs 0
    write(
        tmp_path / "a" / "node.csv",
        SMI_HEADER,
        smi("14:00:00.000", 0, UUID_A, 1),
        smi("14:00:10.000", 0, UUID_A, 2),
    )
    write(
        tmp_path / "b" / "node.csv",
        SMI_HEADER,
        smi("14:00:05.000", 0, UUID_B, 3),
        smi("14:00:15.000", 0, UUID_B, 4),
    )
    with pytest.raises(InputError, match="share a host name") as info:
        read_telemetry(str(tmp_path / "*" / "node.csv"))
    assert UUID_A in str(info.value)
    # the review reads a glob of text logs whole, so it says the same, not ~0 GPU-hours
    with pytest.raises(InputError, match="share a host name"):
        gpu.review(str(tmp_path / "*" / "node.csv"))


def test_review_reads_a_bundled_glob():
    result = gpu.review("bundled:gpu/nvidia-smi/*.csv.gz", prices={"A100": 1.0})
    assert result.per_gpu.select("host").n_unique() == 4
    assert result.summary["n_gpus"] == 32  # 4 hosts x 8 GPUs


def test_telemetry_glob_of_the_bundled_smi_logs():
    paths = sorted((ROOT / "datasets" / "gpu").glob("nvidia-smi/*.csv.gz"))
    assert len(paths) == 4
    frame = read_telemetry(str(ROOT / "datasets" / "gpu" / "nvidia-smi" / "*.csv.gz"))
    assert frame["host"].n_unique() == 4
    assert frame.height == sum(read_nvidia_smi(p).height for p in paths)


# ---------------------------------------------------------------------- dcgm line numbers


def _dcgm(metric: str, value: str, gpu: int = 0) -> str:
    return f'{metric}{{gpu="{gpu}",UUID="{UUID_A}",Hostname="n1"}} {value}'


@pytest.mark.parametrize(
    ("metric", "value", "column", "shown"),
    [
        ("DCGM_FI_PROF_SM_ACTIVE", "12", "sm_active", "12.0, outside 0-1"),
        ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "-0.5", "tensor_active", "-0.5, outside 0-1"),
        ("DCGM_FI_DEV_GPU_UTIL", "250", "util_pct", "250.0, outside 0-100"),
    ],
)
def test_dcgm_out_of_range_value_names_its_own_line(tmp_path, metric, value, column, shown):
    path = write(
        tmp_path / "range.prom",
        "# TIMESTAMP 2026-10-05T14:03:00Z",
        _dcgm("DCGM_FI_DEV_GPU_TEMP", "40"),  # line 2: GPU 0's first metric
        _dcgm("DCGM_FI_DEV_POWER_USAGE", "80"),
        _dcgm("DCGM_FI_DEV_GPU_TEMP", "41", gpu=1),
        _dcgm(metric, value),  # line 5
    )
    with pytest.raises(InputError, match=rf"range.prom', line 5: column '{column}' is {shown}"):
        read_dcgm(path)


def test_dcgm_gr_engine_stand_in_names_its_line(tmp_path):
    # no GPU_UTIL (as on MIG): util_pct = 100 * GR_ENGINE_ACTIVE = 300
    path = write(
        tmp_path / "gr.prom",
        "# TIMESTAMP 2026-10-05T14:03:00Z",
        _dcgm("DCGM_FI_DEV_GPU_TEMP", "40"),
        _dcgm("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "3"),
    )
    with pytest.raises(InputError, match=r"gr.prom', line 3: column 'util_pct' is 300.0"):
        read_dcgm(path)

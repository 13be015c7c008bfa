"""Live GPU sampling (NVML through nvitop, mocked) and the GpuMonitor widget."""

from __future__ import annotations

import logging
import socket
import time
import warnings
from datetime import datetime, timedelta, timezone

import nvitop
import polars as pl
import pynvml
import pytest
from nvitop import NA

from aiops_lab.errors import AiopsLabWarning, ColumnNotFoundError, ParameterError
from aiops_lab.gpu import live
from aiops_lab.gpu.live import GpuStatus, Sampler, gpu_status, sample
from aiops_lab.gpu.widgets import GpuMonitor

MIB = 1024 * 1024


# ---------------------------------------------------------------------- fakes


class FakeHost:
    def __init__(self, env: dict[str, str] | None) -> None:
        self._env = env

    def environ(self) -> dict[str, str]:
        if self._env is None:  # another user's process: not readable
            raise PermissionError("access denied")
        return dict(self._env)


class FakeProcess:
    def __init__(self, pid, user, mem_mib, *, env=None, cmdline=()):
        self.pid, self._user, self._mem = pid, user, mem_mib
        self.host = FakeHost(env)
        self._cmdline = list(cmdline)

    def gpu_memory(self):
        return NA if self._mem is None else self._mem * MIB

    def username(self):
        return self._user

    def cmdline(self):
        return self._cmdline


class FakeDevice:
    def __init__(self, index, *, name, uuid, util, used_mib, total_mib, power_mw, temp, procs=(), migs=()):  # fmt: skip
        self.index = index
        self._name, self._uuid = name, uuid
        self._util, self._used, self._total = util, used_mib, total_mib
        self._power, self._temp = power_mw, temp
        self._procs = {p.pid: p for p in procs}
        self._migs = list(migs)

    def name(self):
        return self._name

    def uuid(self):
        return self._uuid

    def gpu_utilization(self):
        return self._util

    def memory_used(self):
        return NA if self._used is NA else self._used * MIB

    def memory_total(self):
        return NA if self._total is NA else self._total * MIB

    def power_usage(self):
        return self._power

    def temperature(self):
        return self._temp

    def processes(self):
        return dict(self._procs)

    def is_mig_mode_enabled(self):
        return bool(self._migs)

    def mig_devices(self):
        return list(self._migs)


class FakeMig(FakeDevice):
    def __init__(self, gi, **kw):
        super().__init__((0, gi), **kw)
        self._gi = gi

    def gpu_instance_id(self):
        return self._gi


def _devices():
    gpu0 = FakeDevice(
        0, name="NVIDIA A100-SXM4-80GB", uuid="GPU-00000000-0000-0000-0000-000000000000",
        util=37, used_mib=1024, total_mib=81920, power_mw=250_000, temp=55,
        procs=[
            FakeProcess(100, "alice", 512, env={"SLURM_JOB_ID": "4242"}),
            FakeProcess(101, "bob", 2048, env=None, cmdline=["srun", "--jobid=777", "python", "train.py"]),
        ],
    )  # fmt: skip
    gpu1 = FakeDevice(
        1, name="NVIDIA L4", uuid="GPU-11111111-1111-1111-1111-111111111111",
        util=NA, used_mib=NA, total_mib=40960, power_mw=NA, temp=40,
    )  # fmt: skip
    return [gpu0, gpu1]


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two fake GPUs behind NVML: pynvml init succeeds, nvitop lists the fakes."""
    devices = _devices()
    monkeypatch.setattr(pynvml, "nvmlInit", lambda: None)
    monkeypatch.setattr(pynvml, "nvmlShutdown", lambda: None)
    monkeypatch.setattr(nvitop.Device, "all", staticmethod(lambda: list(devices)))
    monkeypatch.setattr(nvitop.Device, "driver_version", staticmethod(lambda: "550.54.15"))
    return devices


@pytest.fixture
def no_gpu_here():
    if gpu_status().available:
        pytest.skip("this machine has a GPU: the no-GPU path cannot be exercised")


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def _row(frame: pl.DataFrame, gpu: int) -> dict:
    return frame.filter(pl.col("gpu") == gpu).row(0, named=True)


# ---------------------------------------------------------------------- with (fake) GPUs


def test_gpu_status_lists_fake_devices(fake_gpus):
    status = gpu_status()
    assert status.available
    assert status.driver == "550.54.15"
    assert status.reason == "2 NVIDIA GPUs visible (driver 550.54.15)"
    assert [d["index"] for d in status.devices] == [0, 1]
    assert status.devices[0]["name"] == "NVIDIA A100-SXM4-80GB"
    assert status.devices[1]["memory_total_mib"] == pytest.approx(40960.0)


def test_sample_returns_fake_values_in_schema(fake_gpus):
    frame = sample(duration=0.3, interval=0.1)
    assert isinstance(frame, pl.DataFrame)
    assert frame.schema == live._SCHEMA
    assert frame.height == 6  # 3 ticks x 2 GPUs
    assert frame["timestamp"].n_unique() == 3
    assert frame["source"].unique().to_list() == ["nvml"]
    assert frame["host"].unique().to_list() == [socket.gethostname()]
    g0 = _row(frame, 0)
    assert g0["util_pct"] == pytest.approx(37.0)
    assert g0["mem_used_mib"] == pytest.approx(1024.0)
    assert g0["mem_total_mib"] == pytest.approx(81920.0)
    assert g0["power_w"] == pytest.approx(250.0)  # 250 000 mW
    assert g0["temp_c"] == pytest.approx(55.0)
    assert g0["model"] == "NVIDIA A100-SXM4-80GB"
    assert g0["uuid"] == "GPU-00000000-0000-0000-0000-000000000000"
    assert g0["sm_active"] is None
    assert g0["tensor_active"] is None
    assert g0["mig_instance"] is None
    assert g0["timestamp"].tzinfo is not None


def test_na_readings_become_null(fake_gpus):
    frame = sample(duration=0.1, interval=0.1)
    g1 = _row(frame, 1)
    assert g1["util_pct"] is None
    assert g1["mem_used_mib"] is None
    assert g1["power_w"] is None
    assert g1["mem_total_mib"] == pytest.approx(40960.0)
    assert g1["temp_c"] == pytest.approx(40.0)
    assert g1["user"] is None  # no processes on it


def test_user_and_job_from_the_largest_process(fake_gpus):
    frame = sample(duration=0.1, interval=0.1)
    g0 = _row(frame, 0)
    assert g0["user"] == "bob"  # 2048 MiB beats alice's 512 MiB
    assert g0["job_id"] == "777"  # environment unreadable: taken from `srun --jobid=777`


def test_job_and_pod_from_the_process_environment(fake_gpus):
    env = {"SLURM_JOB_ID": "4242", "POD_NAME": "trainer-0", "POD_NAMESPACE": "ml"}
    fake_gpus[0]._procs = {7: FakeProcess(7, "carol", 4096, env=env)}
    g0 = _row(sample(duration=0.1, interval=0.1), 0)
    assert (g0["user"], g0["job_id"], g0["pod"], g0["namespace"]) == ("carol", "4242", "trainer-0", "ml")  # fmt: skip


def test_processes_false_skips_attribution(fake_gpus):
    g0 = _row(sample(duration=0.1, interval=0.1, processes=False), 0)
    assert g0["user"] is None
    assert g0["job_id"] is None


def test_devices_by_index_and_uuid(fake_gpus):
    assert sample(duration=0.1, interval=0.1, devices=[1])["gpu"].to_list() == [1]
    by_uuid = sample(duration=0.1, interval=0.1, devices="GPU-00000000-0000-0000-0000-000000000000")
    assert by_uuid["gpu"].to_list() == [0]
    with pytest.raises(ParameterError, match="devices"):
        sample(duration=0.1, interval=0.1, devices=5)


def test_mig_instances_get_their_own_rows(fake_gpus):
    migs = [
        FakeMig(gi, name="NVIDIA A100-SXM4-80GB MIG 1g.10gb", uuid=f"MIG-{gi}", util=NA,
                used_mib=100 * gi, total_mib=9728, power_mw=NA, temp=NA)
        for gi in (1, 2)
    ]  # fmt: skip
    fake_gpus[0]._migs = migs
    frame = sample(duration=0.1, interval=0.1, devices=[0], processes=False)
    assert frame["mig_instance"].to_list() == ["1", "2"]
    assert frame["mig_profile"].to_list() == ["1g.10gb", "1g.10gb"]
    assert frame["mem_used_mib"].to_list() == [100.0, 200.0]
    assert frame["power_w"].to_list() == [250.0, 250.0]  # the whole GPU's reading
    assert frame["model"].unique().to_list() == ["NVIDIA A100-SXM4-80GB"]


def test_on_sample_gets_each_tick(fake_gpus):
    ticks: list[pl.DataFrame] = []
    sample(duration=0.2, interval=0.1, on_sample=ticks.append)
    assert len(ticks) == 2
    assert all(t.height == 2 and t.schema == live._SCHEMA for t in ticks)


def test_parameters_are_checked():
    with pytest.raises(ParameterError, match="interval"):
        sample(duration=1, interval=0)
    with pytest.raises(ParameterError, match="duration"):
        sample(duration=None)
    with pytest.raises(ParameterError, match="duration"):
        sample(duration=-1.0)


# ---------------------------------------------------------------------- background sampler


def test_background_sampler_start_frame_stop(fake_gpus):
    seen: list[int] = []
    sampler = sample(duration=None, interval=0.02, background=True, on_sample=lambda f: seen.append(f.height))  # fmt: skip
    assert isinstance(sampler, Sampler)
    try:
        assert sampler.running
        assert sampler.status.available
        assert _wait_for(lambda: sampler.ticks >= 3)
        so_far = sampler.frame()
        assert so_far.schema == live._SCHEMA
        assert so_far.height >= 6
    finally:
        final = sampler.stop(timeout=5)
    assert not sampler.running
    assert final.height == 2 * sampler.ticks
    assert seen[:3] == [2, 2, 2]
    assert "stopped" in repr(sampler)


def test_background_sampler_with_duration_finishes(fake_gpus):
    with sample(duration=0.2, interval=0.05, background=True) as sampler:
        assert sampler.join(timeout=5)
    assert sampler.ticks == 4
    assert sampler.frame().height == 8


def test_background_sampler_pause_and_bounded_rows(fake_gpus):
    with sample(duration=None, interval=0.02, background=True, max_rows=4) as sampler:
        assert _wait_for(lambda: sampler.ticks >= 3)
        assert sampler.frame().height == 4  # only the newest rows are kept
        sampler.pause()
        time.sleep(0.05)
        paused_at = sampler.ticks
        time.sleep(0.1)
        assert sampler.ticks <= paused_at + 1
        sampler.resume()
        assert _wait_for(lambda: sampler.ticks >= paused_at + 2)
    assert not sampler.running


def test_callback_errors_do_not_stop_sampling(fake_gpus, caplog):
    def broken(_frame):
        raise RuntimeError("widget gone")

    caplog.set_level(logging.WARNING, logger="aiops_lab.gpu.live")
    with sample(duration=None, interval=0.02, background=True, on_sample=broken) as sampler:
        assert _wait_for(lambda: sampler.ticks >= 3)
    assert isinstance(sampler.error, RuntimeError)
    assert sum("on_sample callback failed" in r.getMessage() for r in caplog.records) == 1


# ---------------------------------------------------------------------- no GPU (this machine)


def _no_fatal(capfd, caplog) -> None:
    out, err = capfd.readouterr()
    assert "FATAL" not in err
    assert "FATAL" not in out
    assert not any("FATAL" in r.getMessage() for r in caplog.records)


def test_gpu_status_without_gpu_is_quiet(no_gpu_here, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    status = gpu_status()
    assert isinstance(status, GpuStatus)
    assert not status.available
    assert status.reason.startswith("no NVIDIA GPU visible (")
    assert status.devices == []
    assert str(status) == status.reason
    _no_fatal(capfd, caplog)
    assert not logging.getLogger("nvitop.api.libnvml").disabled  # restored


def test_sample_without_gpu_warns_and_returns_empty(no_gpu_here, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.warns(AiopsLabWarning, match="no NVIDIA GPU visible") as record:
        frame = sample(duration=0.3, interval=0.1)
    assert len(record) == 1
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 0
    assert frame.schema == live._SCHEMA
    _no_fatal(capfd, caplog)


def test_background_sampler_without_gpu(no_gpu_here, capfd, caplog):
    with pytest.warns(AiopsLabWarning, match="no NVIDIA GPU visible"):
        sampler = sample(duration=None, background=True)
    assert isinstance(sampler, Sampler)
    assert not sampler.running
    assert not sampler.status.available
    assert sampler.stop().height == 0
    assert sampler.frame().schema == live._SCHEMA
    _no_fatal(capfd, caplog)


def test_schema_matches_sources():
    sources = pytest.importorskip("aiops_lab.gpu.sources")
    schema = getattr(sources, "TELEMETRY_SCHEMA", None)
    if schema is None:
        pytest.skip("aiops_lab.gpu.sources has no TELEMETRY_SCHEMA yet")
    assert list(pl.Schema(schema).items()) == list(live._SCHEMA.items())


# ---------------------------------------------------------------------- GpuMonitor


def _telemetry(n_ticks: int = 5) -> pl.DataFrame:
    t0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
    rows = [
        {
            "timestamp": t0 + timedelta(seconds=i), "host": "node-1", "gpu": g,
            "model": "NVIDIA A100-SXM4-80GB", "util_pct": float(10 * i + g),
            "mem_used_mib": 1000.0 * (i + 1), "mem_total_mib": 81920.0,
            "power_w": 100.0 + i, "temp_c": 50.0, "user": "alice" if g == 0 else None,
            "job_id": "42" if g == 0 else None,
        }
        for i in range(n_ticks)
        for g in (0, 1)
    ]  # fmt: skip
    return pl.DataFrame(rows)


def test_monitor_without_gpu_shows_why(no_gpu_here, capfd, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        monitor = GpuMonitor()
    assert monitor.mode == "unavailable"
    assert "no NVIDIA GPU visible" in monitor.header.value
    assert "GpuMonitor.replay" in monitor.body.value
    assert monitor.sampler is None
    assert monitor.pause.disabled
    assert not monitor.running
    assert monitor.frame().height == 0
    monitor.close()
    _no_fatal(capfd, caplog)


def test_monitor_live_with_fake_gpus(fake_gpus):
    monitor = GpuMonitor(interval=0.02, window_minutes=1)
    try:
        assert monitor.mode == "live"
        assert "2 NVIDIA GPUs visible" in monitor.header.value
        assert _wait_for(lambda: monitor._n_ticks >= 3 and "gpu 1" in monitor.body.value)
        assert "gpu 0" in monitor.body.value
        assert "bob / 777" in monitor.body.value
        assert "250 W" in monitor.body.value
        monitor.interval.value = 0.05
        assert monitor.sampler is not None
        assert monitor.sampler.interval == pytest.approx(0.05)
        monitor.pause.value = True
        assert monitor.sampler.paused
        assert monitor.pause.description == "Resume"
        monitor.pause.value = False
        assert not monitor.sampler.paused
        assert monitor.frame().schema == live._SCHEMA
    finally:
        monitor.stop()
    assert monitor.sampler is not None
    assert not monitor.sampler.running
    assert not monitor.running
    assert monitor.pause.disabled
    monitor.close()


def test_monitor_replay_by_slider():
    frame = _telemetry()
    monitor = GpuMonitor(frame=frame, autostart=False, window_minutes=1)
    assert monitor.mode == "replay"
    assert not monitor.running
    assert monitor.time.max == 4
    assert monitor.time.value == 4  # not playing: shows the end
    assert "gpu 0" in monitor.body.value
    assert "gpu 1" in monitor.body.value
    assert "alice / 42" in monitor.body.value
    assert "41 %" in monitor.body.value  # util at the last tick for gpu 1
    assert monitor.view().height == 10
    monitor.time.value = 0
    assert "0 %" in monitor.body.value
    assert monitor.view().height == 2
    assert "09:00:00" in monitor.time_label.value
    assert monitor.chart().to_dict()["data"] is not None
    monitor.close()


def test_monitor_replay_plays_to_the_end():
    monitor = GpuMonitor.replay(_telemetry(), speed=1000.0)
    try:
        assert monitor.mode == "replay"
        assert monitor._player is not None
        monitor._player.join(5.0)
        assert monitor.time.value == monitor.time.max
        assert monitor.pause.value  # finished: the toggle offers Play again
        assert monitor.pause.description == "Play"
    finally:
        monitor.close()
    assert not monitor.running


def test_monitor_replay_pause_and_stop():
    monitor = GpuMonitor.replay(_telemetry(50), speed=1.0)  # 1 s per tick: still playing
    try:
        assert monitor.running
        monitor.pause.value = True
        assert not monitor.running
        monitor.pause.value = False
        assert monitor.running
    finally:
        monitor.stop()
    assert not monitor.running
    assert monitor.pause.disabled
    monitor.close()


def test_monitor_replay_accepts_naive_times_and_rejects_bad_input():
    naive = _telemetry(2).with_columns(pl.col("timestamp").dt.replace_time_zone(None))
    monitor = GpuMonitor(frame=naive.lazy(), autostart=False)
    assert monitor.frame().schema == live._SCHEMA
    monitor.close()
    with pytest.raises(ColumnNotFoundError, match="timestamp"):
        GpuMonitor(frame=pl.DataFrame({"gpu": [0]}))
    with pytest.raises(ParameterError, match="frame"):
        GpuMonitor(frame={"timestamp": []})  # type: ignore[arg-type]

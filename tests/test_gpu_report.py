"""The GPU review on the bundled cluster finds the injected patterns; its report runs headlessly."""

from __future__ import annotations

import json

import polars as pl
import pytest

from aiops_lab import cli
from aiops_lab.gpu import review


@pytest.fixture(scope="module")
def result():
    return review("bundled:gpu/dcgm.prom.gz", jobs="bundled:gpu/sacct.txt", backend="numpy")


def test_bundled_cluster_patterns_are_found(result):
    """The patterns documented in datasets/README.md (GPU cluster) show up where they were put."""
    jobs = result.per_job
    busy = jobs.filter(pl.col("busy_but_idle"))["job_id"].to_list()
    assert busy == ["48232"]
    oversized = jobs.filter(pl.col("job_id") == "48302").row(0, named=True)
    assert oversized["peak_mem_mib"] < 10 * 1024
    assert oversized["fits_in"] is not None
    dana = result.per_user.filter(pl.col("user") == "dana").row(0, named=True)
    assert dana["idle_share"] > 0.95
    # the exporter outage on gpu-node-02 (2 h) is not counted: 166 h, not 168 h
    node2 = result.per_gpu.filter(pl.col("host") == "gpu-node-02")["gpu_hours"]
    node1 = result.per_gpu.filter(pl.col("host") == "gpu-node-01")["gpu_hours"]
    assert node1.min() - node2.max() == pytest.approx(2.0 - 10 / 60, abs=0.2)
    weekend = result.per_gpu.filter((pl.col("host") == "gpu-node-04") & (pl.col("gpu") >= 4))
    assert (weekend["longest_idle_h"] >= 47).all()
    kinds = set(result.recommendations["kind"])
    assert {"idle GPU", "busy but idle", "right-size", "queue"} <= kinds


def test_totals_add_up(result):
    s = result.summary
    assert s["gpu_hours"] == pytest.approx(s["active_gpu_hours"] + s["idle_gpu_hours"])
    assert s["idle_cost"] == pytest.approx(result.per_user["idle_cost"].sum())
    assert s["gpu_hours"] == pytest.approx(result.per_host["gpu_hours"].sum())


@pytest.mark.slow
def test_gpu_report_alerts_on_idle_cost(tmp_path):
    code = cli.main(
        [
            "report",
            "gpu",
            "--fail-on-idle-cost",
            "5000",
            "--output",
            str(tmp_path),
            "--no-track",
            "--quiet",
        ]
    )
    assert code == 3
    data = json.loads((tmp_path / "gpu-latest.json").read_text())
    assert data["summary"]["idle_cost"] > 5000
    assert data["params"]["alert_idle_cost"] == 5000
    html = (tmp_path / "gpu-latest.html").read_text()
    assert "data:image/svg+xml" in html or "<svg" in html


def test_idle_cost_flag_is_for_the_gpu_report_only(tmp_path):
    assert (
        cli.main(
            ["report", "drift", "--fail-on-idle-cost", "1", "--output", str(tmp_path), "--no-track"]
        )
        == 1
    )

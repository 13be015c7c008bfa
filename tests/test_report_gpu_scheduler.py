"""`aiops-lab report gpu --scheduler`: the option, the notebook parameter, a local cluster run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aiops_lab import cli, datasets, reporting

#: the parameters both the report and the in-memory reference get (non-default threshold)
OPTIONS = {"jobs": "bundled:gpu/sacct.txt", "idle_threshold": 10.0, "backend": "numpy"}
#: summary numbers the report on Dask must give exactly as in memory
TOTALS = ("gpu_hours", "active_gpu_hours", "idle_gpu_hours", "idle_cost")


# -- the option (no notebook runs) -------------------------------------------------------
def test_gpu_notebook_declares_scheduler_in_memory_by_default() -> None:
    declared = reporting.report_parameters(reporting.notebook_path("gpu"))
    assert declared["scheduler"] == '""'


@pytest.mark.parametrize("address", ["local", "tcp://10.0.0.5:8786"])
def test_scheduler_option_becomes_the_gpu_parameter(captured, tmp_path: Path, address) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    argv = ["report", "gpu", "--scheduler", address, "--output", str(tmp_path), "--no-track"]
    assert cli.main([*argv, "--quiet"]) == 0
    assert captured == [("gpu", {"scheduler": address})]


def test_report_all_passes_the_scheduler_to_drift_and_gpu(captured, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    argv = ["report", "all", "--scheduler", "local", "-p", "idle_threshold", "10"]
    assert cli.main([*argv, "--output", str(tmp_path), "--no-track", "--quiet"]) == 0
    got = dict(captured)
    assert set(got) == set(reporting.REPORTS)
    assert got["drift"] == {"scheduler": "local"}
    assert got["gpu"] == {"scheduler": "local", "idle_threshold": 10}
    assert "scheduler" not in got["finops"]


@pytest.mark.parametrize("address", ["", " ", "\t"])
def test_blank_scheduler_is_refused_for_gpu(captured, tmp_path: Path, capsys, address) -> None:
    argv = ["report", "gpu", "--scheduler", address, "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--scheduler" in err
    assert "tcp://host:8786" in err  # what a valid value looks like
    assert captured == []
    assert list(tmp_path.iterdir()) == []  # refused before anything ran


def test_finops_refusal_names_the_reports_that_take_it(captured, tmp_path: Path, capsys) -> None:
    argv = ["report", "finops", "--scheduler", "local", "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--scheduler" in err
    assert "aiops-lab report drift" in err
    assert "aiops-lab report gpu" in err
    assert captured == []


def test_help_says_the_gpu_report_takes_it(capsys) -> None:
    assert cli.main(["report", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "drift and gpu reports: run on Dask" in text


# -- end to end on a local cluster -------------------------------------------------------
def _parquet_telemetry(folder: Path) -> pl.DataFrame:
    """Two hosts of the bundled cluster as two Parquet parts that cut through every GPU."""
    frame = datasets.load("gpu/dcgm.prom.gz").filter(
        pl.col("host").is_in(["gpu-node-01", "gpu-node-02"])  # node 02 has the outage gap
    )
    half = frame.height // 2  # rows are in time order: each GPU lies in both parts
    folder.mkdir()
    frame.slice(0, half).write_parquet(folder / "part-0.parquet")
    frame.slice(half).write_parquet(folder / "part-1.parquet")
    return pl.concat([pl.read_parquet(folder / f"part-{i}.parquet") for i in range(2)])


def _run_gpu_report(out: Path, *extra: str) -> dict[str, Any]:
    argv = ["report", "gpu", "--scheduler", "local", "--output", str(out), *extra]
    for name, value in OPTIONS.items():
        argv += ["-p", name, str(value)]
    code = cli.main([*argv, "--no-track", "--quiet"])
    assert code == 0
    (run_dir,) = (p for p in out.iterdir() if p.is_dir())
    data = json.loads((run_dir / "result.json").read_text())
    assert "dask" in data["params"]  # it ran on the Dask path
    assert "Dask scheduler" in (run_dir / "gpu.html").read_text()
    return data


@pytest.mark.slow
def test_gpu_report_on_a_local_cluster_matches_in_memory(tmp_path: Path) -> None:
    pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from aiops_lab.gpu import review

    folder = tmp_path / "telemetry"
    written = _parquet_telemetry(folder)
    data = _run_gpu_report(tmp_path / "out", "-p", "telemetry", str(folder))
    assert data["params"]["dask"]["partitions"] == 2
    assert data["params"]["idle_threshold"] == OPTIONS["idle_threshold"]

    # independent path: one accountant over the same rows, in this process, no Dask
    direct = review(written, **OPTIONS)
    summary = data["summary"]
    assert summary["idle_gpu_hours"] > 0  # the check below is not 0 == 0
    for name in TOTALS:
        assert summary[name] == pytest.approx(direct.summary[name], rel=1e-9, abs=0), name
    assert summary["alert"] == direct.summary["alert"]
    per_gpu = {row["gpu_key"]: row for row in data["table"]}  # result.table is per GPU
    assert len(per_gpu) == direct.per_gpu.height == 16
    for row in direct.per_gpu.iter_rows(named=True):
        for name in ("gpu_hours", "idle_gpu_hours"):
            assert per_gpu[row["gpu_key"]][name] == pytest.approx(row[name], rel=1e-9), name


@pytest.mark.slow
def test_gpu_report_reads_a_text_log_here_and_reviews_it_on_the_cluster(tmp_path: Path) -> None:
    """The default telemetry, a dcgm scrape, also works with --scheduler (report all needs it)."""
    pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from aiops_lab.gpu import review

    data = _run_gpu_report(tmp_path / "out")
    direct = review(datasets.load("gpu/dcgm.prom.gz"), **OPTIONS)
    for name in TOTALS:
        assert data["summary"][name] == pytest.approx(direct.summary[name], rel=1e-9, abs=0), name
    html = (next(p for p in (tmp_path / "out").iterdir() if p.is_dir()) / "gpu.html").read_text()
    assert "text log" in html  # the report says it was read here, not on the workers


def test_dask_telemetry_reads_parquet_on_the_workers_and_text_logs_here(tmp_path: Path) -> None:
    pytest.importorskip("dask.dataframe", reason="dask is not installed")
    from aiops_lab import datasets
    from aiops_lab.errors import InputError
    from aiops_lab.gpu import read_telemetry
    from aiops_lab.gpu.distributed import dask_telemetry

    text_log = datasets.resolve_path("bundled:gpu/dcgm.prom.gz")
    frame, on_workers = dask_telemetry(text_log)
    assert not on_workers
    assert frame.npartitions == 2
    assert len(frame) == read_telemetry(text_log).height
    path = tmp_path / "t.parquet"
    read_telemetry(text_log).write_parquet(path)
    lazy, on_workers = dask_telemetry(path)
    assert on_workers
    assert len(lazy) == len(frame)
    with pytest.raises(InputError, match=r"telemetry glob .* matches no files"):
        dask_telemetry(str(tmp_path / "none" / "*.parquet"))

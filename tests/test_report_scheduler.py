"""`aiops-lab report drift --scheduler`: the option, the notebook parameter, a local cluster run."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from aiops_lab import cli, reporting
from aiops_lab.errors import ParameterError

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


# -- the option (no notebook runs) -------------------------------------------------------
def test_drift_notebook_declares_scheduler_in_memory_by_default() -> None:
    declared = reporting.report_parameters(reporting.notebook_path("drift"))
    assert declared["scheduler"] == '""'
    assert "scheduler" not in reporting.report_parameters(reporting.notebook_path("finops"))


@pytest.mark.parametrize("address", ["local", "tcp://10.0.0.5:8786"])
def test_scheduler_option_becomes_the_drift_parameter(captured, tmp_path: Path, address) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    argv = ["report", "drift", "--scheduler", address, "--output", str(tmp_path), "--no-track"]
    assert cli.main([*argv, "--quiet"]) == 0
    assert captured == [("drift", {"scheduler": address})]


def test_report_all_passes_the_scheduler_to_drift_and_gpu(captured, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    argv = ["report", "all", "--scheduler", "local", "-p", "alpha", "0.01"]
    assert cli.main([*argv, "--output", str(tmp_path), "--no-track", "--quiet"]) == 0
    got = dict(captured)
    assert set(got) == set(reporting.REPORTS)
    assert got["drift"] == {"scheduler": "local", "alpha": 0.01}
    assert got["gpu"] == {"scheduler": "local"}
    assert "scheduler" not in got["finops"]


@pytest.mark.parametrize("kind", ["finops"])
def test_scheduler_is_not_for_the_finops_report(captured, tmp_path: Path, kind, capsys) -> None:
    argv = ["report", kind, "--scheduler", "local", "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--scheduler" in err
    assert "aiops-lab report drift" in err
    assert captured == []
    assert list(tmp_path.iterdir()) == []  # refused before anything ran


def test_local_is_not_taken_for_a_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "local").mkdir()  # a folder named like the option value
    (tmp_path / "cur.parquet").write_bytes(b"")
    fixed = reporting._absolute_paths({"scheduler": "local", "current": "cur.parquet"})
    assert fixed["scheduler"] == "local"
    assert fixed["current"] == str(tmp_path / "cur.parquet")


def test_blank_scheduler_is_refused(captured, tmp_path: Path, capsys) -> None:
    argv = ["report", "drift", "--scheduler", " ", "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    assert "--scheduler" in capsys.readouterr().err
    assert captured == []


# -- the library helpers the notebook calls ----------------------------------------------
def test_no_scheduler_means_no_client() -> None:
    with reporting.dask_scheduler("") as client:
        assert client is None
    with reporting.dask_scheduler(None) as client:
        assert client is None


def test_unreachable_scheduler_says_which_address() -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with (
        pytest.raises(ParameterError, match="scheduler") as info,
        reporting.dask_scheduler(address, timeout=1),
    ):
        pass
    assert address in str(info.value)


def test_dask_frame_reads_parquet_files_folders_globs_and_bundled(tmp_path: Path) -> None:
    pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    folder = tmp_path / "parts"
    folder.mkdir()
    for i in range(3):
        pl.DataFrame({"x": [i, i + 1]}).write_parquet(folder / f"part-{i}.parquet")
    assert len(reporting.dask_frame(folder)) == 6
    assert len(reporting.dask_frame(str(folder / "part-1.parquet"))) == 2
    assert len(reporting.dask_frame(str(folder / "part-*.parquet"))) == 6
    bundled = reporting.dask_frame("bundled:credit_reference")
    assert "score" in bundled.columns
    (tmp_path / "data.csv").write_text("x\n1\n")
    with pytest.raises(ParameterError, match="Parquet"):
        reporting.dask_frame(tmp_path / "data.csv")
    with pytest.raises(ParameterError):
        reporting.dask_frame(tmp_path / "missing.parquet")
    with pytest.raises(ParameterError):
        reporting.dask_frame(str(tmp_path / "nothing-*.parquet"))


# -- end to end on a local cluster -------------------------------------------------------
def _frame(seed: int, n: int, shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.random(n)
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=10 * i) for i in range(n)],
            "shifted": rng.normal(shift, 1, n),
            "stable": rng.normal(0, 1, n),
            "ints": rng.integers(0, 8, n),
            "cat": rng.choice(["a", "b", "c"], n, p=[0.5 - shift / 4, 0.3, 0.2 + shift / 4]),
            "score": score,
            "label": (rng.random(n) < score).astype(np.int64),
        }
    )


@pytest.mark.slow
def test_drift_report_on_a_local_cluster_matches_in_memory(tmp_path: Path, capsys) -> None:
    pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from aiops_lab.drift import compare

    reference = tmp_path / "reference.parquet"
    _frame(1, 2000, 0.0).write_parquet(reference)
    current = tmp_path / "current"  # a folder of Parquet parts: several Dask partitions
    current.mkdir()
    whole = _frame(2, 3000, 0.4)
    for i in range(3):
        whole.slice(1000 * i, 1000).write_parquet(current / f"part-{i}.parquet")
    options = {
        "time_column": "ts",
        "window": "1d",
        "prediction_column": "score",
        "label_column": "label",
    }
    argv = ["report", "drift", "--scheduler", "local", "--output", str(tmp_path / "out")]
    argv += ["-p", "reference", str(reference), "-p", "current", str(current)]
    for name, value in options.items():
        argv += ["-p", name, value]
    code = cli.main([*argv, "--no-track", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out

    data = json.loads((tmp_path / "out" / "drift-latest.json").read_text())
    (run_dir,) = (p for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert (run_dir / "result.json").is_file()
    assert "dask" in data["params"]  # it ran on the Dask path
    assert data["summary"]["n_cur"] == 3000

    direct = compare(str(reference), whole, **options)
    assert direct.drifted_columns  # the shifted columns drift...
    assert "stable" not in direct.drifted_columns  # ...and the stable one does not
    assert sorted(data["summary"]["drifted_columns"]) == sorted(direct.drifted_columns)
    by_column = {row["column"]: row["drifted"] for row in data["table"]}
    assert by_column == dict(direct.table.select("column", "drifted").iter_rows())
    html = (run_dir / "drift.html").read_text()
    assert "Dask scheduler" in html

"""Progress for Dask work on the local scheduler (no cluster): Dask's own text bar."""

from __future__ import annotations

import pytest

dask = pytest.importorskip("dask")


def test_local_scheduler_shows_dasks_bar_and_keeps_order(capsys, monkeypatch):
    from aiops_lab.progress import dask_compute

    monkeypatch.delenv("AIOPS_LAB_REPORT", raising=False)
    work = [dask.delayed(pow)(i, 2) for i in range(5)]
    assert dask_compute(work) == [0, 1, 4, 9, 16]
    assert "100%" in capsys.readouterr().out  # dask.diagnostics.ProgressBar's last line
    assert dask_compute(dask.delayed(sum)([1, 2, 3]), enabled=False) == 6
    assert "100%" not in capsys.readouterr().out
    monkeypatch.setenv("AIOPS_LAB_REPORT", "1")  # a headless report: no bar
    assert dask_compute(work) == [0, 1, 4, 9, 16]
    assert capsys.readouterr().out == ""

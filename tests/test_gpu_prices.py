"""Prices in review(): MIG instances at their profile's price, models without a price said."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from aiops_lab.gpu.analysis import review
from aiops_lab.gpu.rollups import mig_share

A100 = "NVIDIA A100-SXM4-80GB"


def _hour(host: str, gpu: int, model: str, mig: tuple[str, str] | None = None) -> list[dict]:
    """60 idle samples a minute apart: exactly one GPU-hour (the last counts its median)."""
    t0 = datetime(2026, 10, 5, tzinfo=timezone.utc)
    return [
        {
            "timestamp": t0 + timedelta(minutes=i), "host": host, "gpu": gpu, "model": model,
            "util_pct": 0.0, "mem_used_mib": 10.0, "mem_total_mib": 81920.0,
            "mig_instance": None if mig is None else mig[0],
            "mig_profile": None if mig is None else mig[1],
        }
        for i in range(60)
    ]  # fmt: skip


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema_overrides={"gpu": pl.Int32, "mig_instance": pl.Utf8, "mig_profile": pl.Utf8},
    )


def _mig_gpu() -> pl.DataFrame:
    """One A100 in MIG mode: a 1g.10gb and a 3g.40gb instance, idle for an hour each."""
    return _frame(
        _hour("node1", 0, A100, ("1", "1g.10gb")) + _hour("node1", 0, A100, ("2", "3g.40gb"))
    )


def test_mig_share_counts_compute_slices():
    assert mig_share("1g.10gb", A100) == pytest.approx(1 / 7)
    assert mig_share("3g.40gb", "NVIDIA H100 80GB HBM3") == pytest.approx(3 / 7)
    assert mig_share("1c.3g.40gb", A100) == pytest.approx(3 / 7)  # a compute instance
    assert mig_share("2g.12gb", "NVIDIA A30") == pytest.approx(2 / 4)  # A30: 4 slices
    assert mig_share("7g.80gb", A100) == pytest.approx(1.0)
    assert mig_share("full", A100) is None


@pytest.mark.parametrize("streaming", [False, True])
def test_mig_instances_cost_their_share_of_the_gpu(streaming):
    frame = _mig_gpu()
    source = frame.lazy() if streaming else frame
    r = review(source, prices={"A100": 3.5}, streaming=streaming, batch_rows=40, backend="numpy")
    g = r.per_gpu.sort("mig_instance")
    assert g["mig_profile"].to_list() == ["1g.10gb", "3g.40gb"]
    assert g["gpu_hours"].to_list() == pytest.approx([1.0, 1.0])
    # no MIG rows in the table: 1/7 and 3/7 of the A100's 3.50 an hour
    assert g["total_cost"].to_list() == pytest.approx([3.5 / 7, 3.5 * 3 / 7])
    s = r.summary
    assert s["total_cost"] == pytest.approx(3.5 * 4 / 7)
    assert (s["n_gpus"], s["n_mig_instances"]) == (1, 2)
    assert s["unpriced_gpu_hours"] == 0.0


def test_a_price_table_row_for_the_profile_wins():
    prices = {"A100": 3.5, "A100-SXM4-80GB MIG 1g.10gb": 0.9}
    r = review(_mig_gpu(), prices=prices, backend="numpy")
    g = r.per_gpu.sort("mig_instance")
    assert g["total_cost"].to_list() == pytest.approx([0.9, 3.5 * 3 / 7])


def test_the_bundled_price_table_prices_a_1g_slice_by_its_row():
    r = review(_frame(_hour("node1", 0, A100, ("5", "1g.10gb"))), backend="numpy")
    # datasets/gpu/prices.csv: "NVIDIA A100-SXM4-80GB MIG 1g.10gb" at 0.50 an hour
    assert r.summary["total_cost"] == pytest.approx(0.50)


def test_models_without_a_price_are_said_not_silently_free():
    frame = _frame(_hour("node1", 0, A100) + _hour("node2", 0, "NVIDIA H100 80GB HBM3"))
    r = review(frame, prices={"A100": 2.0}, backend="numpy")
    s = r.summary
    assert s["total_cost"] == pytest.approx(2.0)  # the H100 hour counts $0 ...
    assert s["unpriced_gpu_hours"] == pytest.approx(1.0)  # ... and the review says so
    assert r.unpriced.select("model", "n_gpus").rows() == [("NVIDIA H100 80GB HBM3", 1)]
    missing = r.recommendations.filter(pl.col("kind") == "price missing")
    assert missing["target"].to_list() == ["NVIDIA H100 80GB HBM3"]
    assert "1.0 GPU-hours" in missing["evidence"][0]


def test_a_priced_fleet_has_no_price_missing_advice():
    r = review(_frame(_hour("node1", 0, A100)), prices={"A100": 2.0}, backend="numpy")
    assert r.unpriced.height == 0
    assert "price missing" not in r.recommendations["kind"].to_list()


def test_a_short_profile_row_names_the_model_in_part():
    prices = {"A100": 3.5, "A100 MIG 1g.10gb": 0.6, "H100 MIG 3g.40gb": 9.0}
    r = review(_mig_gpu(), prices=prices, backend="numpy")
    g = r.per_gpu.sort("mig_instance")
    # 1g.10gb: its own row; 3g.40gb: the H100 row is not this GPU's, so 3/7 of 3.50
    assert g["total_cost"].to_list() == pytest.approx([0.6, 3.5 * 3 / 7])


def test_a_mig_instance_without_a_profile_is_unpriced_not_a_whole_gpu():
    frame = _frame(_hour("node1", 0, A100, ("1", "1g.10gb")) + _hour("node1", 0, A100, ("2", None)))  # fmt: skip
    r = review(frame, prices={"A100": 3.5}, backend="numpy")
    assert r.summary["total_cost"] == pytest.approx(3.5 / 7)
    assert r.summary["unpriced_gpu_hours"] == pytest.approx(1.0)
    missing = r.recommendations.filter(pl.col("kind") == "price missing")
    assert missing["target"].to_list() == [f"{A100} MIG (profile unknown)"]

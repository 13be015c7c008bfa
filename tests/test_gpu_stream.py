"""Streaming review: batches of whole GPUs, merged, equal the in-memory review."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from aiops_lab.gpu import kernels as K
from aiops_lab.gpu.analysis import review
from aiops_lab.gpu.sources import TELEMETRY_SCHEMA

PRICES = {"A100": 3.0, "H100": 5.0}


def _fleet(seed: int = 7) -> pl.DataFrame:
    """Six GPUs on three hosts (one split into MIG instances), shuffled, with gaps and pods."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    rows = []
    gpus = [("n1", 0, None), ("n1", 1, None), ("n2", 0, "1"), ("n2", 0, "2"), ("n3", 3, None), ("n3", 5, None)]  # fmt: skip
    for k, (host, gpu, mig) in enumerate(gpus):
        step = [10, 30, 60, 60, 15, 20][k]
        t = 0.0
        for i in range(120 + 7 * k):
            t += step * (20 if rng.random() < 0.03 else rng.uniform(0.9, 1.1))
            job = f"j{k}{i // 40}" if (i // 40) % 2 == 0 else None
            rows.append(
                {
                    "timestamp": t0 + timedelta(seconds=round(t, 3)), "host": host, "gpu": gpu,
                    "mig_instance": mig, "model": "NVIDIA H100 80GB HBM3" if host == "n3" else "NVIDIA A100-SXM4-80GB",
                    "util_pct": None if rng.random() < 0.02 else float(rng.integers(0, 101)) if job else 1.0,
                    "sm_active": None if host == "n1" else float(rng.uniform(0, 1)),
                    "mem_used_mib": float(rng.uniform(0, 80_000)), "mem_total_mib": 81_920.0,
                    "power_w": None if rng.random() < 0.1 else float(rng.uniform(60, 700)),
                    "job_id": job, "user": None if job is None else f"u{k % 3}",
                    "pod": f"p{k}" if host == "n2" else None, "namespace": "ml" if host == "n2" else None,
                }
            )  # fmt: skip
    frame = pl.DataFrame(rows, schema_overrides={c: TELEMETRY_SCHEMA[c] for c in rows[0]})
    return frame.sample(fraction=1.0, shuffle=True, seed=seed)  # no order to rely on


def _assert_same(a, b) -> None:
    for name in ("per_gpu", "per_host", "per_user", "per_job", "per_pod", "recommendations"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.columns == y.columns, name
        assert x.height == y.height, name
        for col in x.columns:
            if x.schema[col] == pl.Float64:
                assert np.allclose(
                    x[col].to_numpy(), y[col].to_numpy(), rtol=1e-12, atol=1e-9, equal_nan=True
                ), (name, col)
            else:
                assert x[col].to_list() == y[col].to_list(), (name, col)
    for key, value in a.summary.items():
        if key == "elapsed_s":
            continue
        other = b.summary[key]
        if isinstance(value, float):
            assert math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-9), key
        else:
            assert value == other, key


def test_batches_of_gpus_merge_to_the_in_memory_review():
    frame = _fleet()
    whole = review(frame, prices=PRICES, backend="numpy")
    # about one GPU per batch: six batches (the MIG instances of n2/0 stay together)
    streamed = review(frame, prices=PRICES, backend="numpy", streaming=True, batch_rows=150)
    _assert_same(whole, streamed)
    assert whole.per_gpu.height == 6
    assert set(whole.per_pod["pod"]) == {"p2", "p3"}
    assert whole.per_gpu["efficiency_source"].to_list()[:2] == ["util_pct", "util_pct"]


def test_lazy_input_streams_in_batches_and_matches(tmp_path):
    frame = _fleet(3)
    path = tmp_path / "fleet.parquet"
    frame.write_parquet(path)
    whole = review(frame, prices=PRICES)
    lazy = review(pl.scan_parquet(path), prices=PRICES, batch_rows=300)  # larger than a batch
    _assert_same(whole, lazy)
    # the heat map and the distribution read condensed cells, and come out the same
    for kind in ("heatmap", "distribution"):
        a = whole.chart(kind).data
        b = lazy.chart(kind).data
        cols = a.columns[:-1]
        a, b = a.sort(cols), b.sort(cols)
        assert a.select(cols).equals(b.select(cols))
        assert np.allclose(a[a.columns[-1]], b[b.columns[-1]], rtol=1e-9, equal_nan=True)
    assert lazy.samples.height < frame.height


def test_parquet_folder_and_glob_stream_like_the_validated_read(tmp_path):
    from aiops_lab.gpu import read_telemetry

    frame = _fleet(5).with_columns(
        pl.lit("dcgm").alias("source"), pl.lit(None, dtype=pl.Utf8).alias("uuid")
    )
    half = frame.height // 2
    folder = tmp_path / "logs"
    folder.mkdir()
    frame[:half].write_parquet(folder / "a.parquet")
    frame[half:].write_parquet(folder / "b.parquet")
    whole = review(read_telemetry(folder), prices=PRICES)
    _assert_same(whole, review(folder, prices=PRICES, batch_rows=200))
    _assert_same(whole, review(str(folder / "*.parquet"), prices=PRICES, batch_rows=200))
    _assert_same(whole, review(folder, prices=PRICES, streaming=False))


def test_streamed_hand_case_keeps_the_hand_computed_hours():
    from tests.test_gpu_review import _telemetry

    r = review(_telemetry().lazy(), prices={"A100": 3.0}, streaming=True, batch_rows=1)
    g = r.per_gpu.sort("gpu")
    assert g["gpu_hours"].to_list() == pytest.approx([1.0, 51 / 60])
    assert g["idle_gpu_hours"].to_list() == pytest.approx([0.5, 51 / 60])
    assert r.summary["idle_cost"] == pytest.approx(3.0 * (0.5 + 51 / 60))


def test_unordered_rows_and_label_changes_are_accounted_per_gpu():
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [  # GPU 0: 0, 60, 120, 180 s; the job changes after the second sample
        (t0 + timedelta(seconds=120), 0, 50.0, "b"),
        (t0, 0, 50.0, "a"),
        (t0 + timedelta(seconds=180), 0, 0.0, "b"),
        (t0 + timedelta(seconds=60), 0, 50.0, "a"),
    ]
    frame = pl.DataFrame(
        {
            "timestamp": [r[0] for r in rows], "host": "h", "gpu": pl.Series([r[1] for r in rows], dtype=pl.Int32),
            "util_pct": [r[2] for r in rows], "mem_used_mib": 1.0, "mem_total_mib": 2.0,
            "job_id": [r[3] for r in rows],
        }
    )  # fmt: skip
    jobs = review(frame, prices={"A100": 1.0}).per_job.sort("job_id")
    assert jobs["job_id"].to_list() == ["a", "b"]
    assert jobs["gpu_hours"].to_list() == pytest.approx([120 / 3600, 120 / 3600])
    assert jobs["idle_gpu_hours"].to_list() == pytest.approx([0.0, 60 / 3600])


def test_batch_rows_must_be_positive():
    from aiops_lab import errors

    with pytest.raises(errors.ParameterError, match="batch_rows"):
        review(_fleet(), batch_rows=0)


def test_grouped_quantiles_equal_the_segment_quantiles():
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(1)
    sizes = [5, 1, 0, 40, 3]
    group = np.repeat(np.arange(len(sizes)), sizes)
    values = rng.normal(size=group.size)
    values[[0, 5, 7, 30]] = np.nan  # the single-sample group (row 5) has no reading
    got = K.grouped_quantiles(xp, group, values, len(sizes), (0.5, 0.95))
    want = K.segment_quantiles(xp, group, values, len(sizes), (0.5, 0.95))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-15)
    # against NumPy on one group by hand
    assert got[1][3] == pytest.approx(np.nanquantile(values[6:46], 0.95))


def test_many_gpu_paths_of_the_kernels_agree_with_the_per_gpu_loops(monkeypatch):
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(2)
    sizes = [30, 1, 0, 12, 50]
    group = np.repeat(np.arange(len(sizes)), sizes)
    t = np.concatenate([np.cumsum(rng.integers(1, 90, n)) * 1_000_000 for n in sizes])
    values = rng.uniform(0, 100, group.size)
    loop_w, loop_m = K.sample_weights(xp, group, t, len(sizes))
    loop_q = K.grouped_quantiles(xp, group, values, len(sizes), (0.5, 0.95))
    monkeypatch.setattr(K, "_LOOP_GROUPS", 0)  # as with thousands of GPUs
    sort_w, sort_m = K.sample_weights(xp, group, t, len(sizes))
    sort_q = K.grouped_quantiles(xp, group, values, len(sizes), (0.5, 0.95))
    np.testing.assert_array_equal(loop_m, sort_m)
    np.testing.assert_array_equal(loop_w, sort_w)
    for a, b in zip(loop_q, sort_q, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    assert loop_m[0] == np.median(np.diff(t[:30])) / 1e6


def _chunked_only(monkeypatch):
    """Make the whole-GPU fallback fail, so a test knows the chunks did the work."""
    from aiops_lab.gpu import analysis

    def refuse(self, frame, *, condense):
        raise AssertionError("fell back to batches of whole GPUs")

    monkeypatch.setattr(analysis._Accountant, "add", refuse)


def test_a_log_in_time_order_streams_in_chunks_and_matches(monkeypatch):
    frame = _fleet(11).sort("timestamp")
    whole = review(frame, prices=PRICES)
    by_gpu = review(frame, prices=PRICES, streaming=True, batch_rows=100)
    _chunked_only(monkeypatch)
    # chunks of 9 samples: jobs, pods, idle stretches and gaps all cross chunk borders
    chunked = review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=36)
    _assert_same(whole, chunked)
    assert chunked.per_gpu["longest_idle_h"].to_list() == pytest.approx(
        whole.per_gpu["longest_idle_h"].to_list(), rel=1e-12
    )
    # the chart cells of chunks add up to those of whole GPUs
    keys = ["timestamp", "host", "gpu", "mig_instance", "util_pct"]
    a = by_gpu.samples.sort(keys, nulls_last=True)
    b = chunked.samples.sort(keys, nulls_last=True)
    assert a.select(keys[:-1]).equals(b.select(keys[:-1]))
    assert np.allclose(a["_w"], b["_w"], rtol=1e-12)
    assert np.allclose(a["util_pct"], b["util_pct"], rtol=1e-9, equal_nan=True)


def test_chunks_that_go_back_in_time_are_accounted_by_gpu_instead(monkeypatch):
    from aiops_lab.gpu import analysis

    frame = _fleet(12).sort("timestamp")
    half = frame.height // 2
    swapped = pl.concat([frame[half:], frame[:half]])  # files read in the wrong order
    whole = review(frame, prices=PRICES)
    calls = []
    original = analysis._Accountant.add

    def spy(self, piece, *, condense):
        calls.append(piece.height)
        return original(self, piece, condense=condense)

    monkeypatch.setattr(analysis._Accountant, "add", spy)
    again = review(swapped.lazy(), prices=PRICES, streaming=True, batch_rows=50)
    _assert_same(whole, again)
    assert sum(calls) == frame.height  # every sample, once, by whole GPUs


def test_gpu_keys_with_nulls_and_the_join_fallback(monkeypatch):
    from aiops_lab.gpu import analysis

    frame = _fleet(13).with_columns(
        pl.when(pl.col("host") == "n3").then(None).otherwise(pl.col("host")).alias("host"),
        pl.when((pl.col("host") == "n1") & (pl.col("gpu") == 1))
        .then(None)
        .otherwise(pl.col("gpu"))
        .alias("gpu"),
    )
    whole = review(frame, prices=PRICES)
    g = whole.per_gpu
    # sorted as polars sorts the keys, nulls last; n3's two GPUs keep their indices
    want = (
        frame.select("host", "gpu", "mig_instance")
        .unique()
        .sort("host", "gpu", "mig_instance", nulls_last=True)
    )
    assert g.select("host", "gpu", "mig_instance").equals(want)
    assert g.filter(pl.col("host").is_null())["gpu"].to_list() == [3, 5]
    chunked = review(frame.sort("timestamp").lazy(), prices=PRICES, streaming=True, batch_rows=40)
    _assert_same(whole, chunked)
    monkeypatch.setattr(analysis._KeyCoder, "MAX_SPACE", 1)  # as with a huge key space
    _assert_same(whole, review(frame, prices=PRICES))
    _assert_same(whole, review(frame.sort("timestamp").lazy(), prices=PRICES, streaming=True, batch_rows=40))  # fmt: skip


def test_chart_cells_counted_densely_equal_the_hashed_group_by():
    from aiops_lab.gpu.cells import _cell_sums

    rng = np.random.default_rng(4)
    n = 5_000
    group = np.sort(rng.integers(0, 7, n))
    t_us = rng.integers(0, 3 * 24 * 3600, n) * 1_000_000
    util = rng.uniform(0, 100, n)
    util[rng.random(n) < 0.05] = np.nan
    weight = rng.uniform(1, 60, n)
    idle_w = np.where(rng.random(n) < 0.3, weight, 0.0)
    dense = _cell_sums(group, t_us, util, weight, idle_w).sort("_gi", "_cell", "_band")
    # far-apart times make the dense table too big: the group-by path
    spread = t_us.copy()
    spread[0] += 10**17
    hashed = _cell_sums(group, spread, util, weight, idle_w).sort("_gi", "_cell", "_band")
    # by hand with polars on the same rows (the first row moved far away in `spread`)
    want = (
        pl.DataFrame({"g": group, "c": t_us // 600_000_000 * 600_000_000,
                      "b": np.clip(np.floor(np.nan_to_num(util) / 10) * 10, 0, 90),
                      "num": np.where(np.isnan(util), 0.0, util * weight), "w": weight,
                      "idle": idle_w})
        .group_by("g", "c", "b").agg(pl.col("num", "w", "idle").sum())
        .sort("g", "c", "b")
    )  # fmt: skip
    assert dense["_gi"].to_list() == want["g"].to_list()
    assert dense["_cell"].to_list() == want["c"].to_list()
    assert dense["_band"].to_list() == want["b"].to_list()
    np.testing.assert_allclose(dense["_num"], want["num"], rtol=1e-12)
    np.testing.assert_allclose(dense["_w"], want["w"], rtol=1e-12)
    np.testing.assert_allclose(dense["_w_idle"], want["idle"], rtol=1e-12)
    assert hashed["_w"].sum() == pytest.approx(weight.sum())
    assert hashed["_w_idle"].sum() == pytest.approx(idle_w.sum())
    assert hashed.height in (dense.height, dense.height + 1)


def test_cell_sums_of_pieces_merge_densely_as_by_a_group_by(monkeypatch):
    from aiops_lab.gpu import cells

    rng = np.random.default_rng(8)
    n = 4_000  # pieces overlapping in cells, in no order
    sums = pl.DataFrame(
        {
            "_gi": rng.integers(0, 5, n),
            "_cell": rng.integers(100, 400, n) * cells._CELL_US,
            "_band": rng.integers(0, 10, n) * 10.0,
            "_num": rng.uniform(0, 5000, n),
            "_w": rng.uniform(0, 60, n),
            "_w_idle": rng.uniform(0, 30, n),
        }
    )
    want = (
        sums.group_by("_gi", "_cell", "_band")
        .agg(pl.col("_num", "_w", "_w_idle").sum())
        .sort("_gi", "_cell", "_band")
    )
    dense = cells._merged(sums)
    for col in ("_gi", "_cell", "_band"):
        assert dense[col].to_list() == want[col].to_list()
    for col in ("_num", "_w", "_w_idle"):
        np.testing.assert_allclose(dense[col], want[col], rtol=1e-12)
    monkeypatch.setattr(cells, "_MERGE_SLOTS", 100)  # too many slots: the group-by
    assert cells._merged(sums).equals(want)


def test_a_parquet_path_with_slurm_jobs_attributes_users_as_in_memory(tmp_path):
    from aiops_lab.gpu import read_sacct
    from tests.test_gpu_review import _telemetry

    frame = _telemetry().with_columns(
        pl.lit(None, dtype=pl.Utf8).alias("user"), pl.lit("nvidia-smi").alias("source")
    )
    jobs_ids = frame["job_id"].drop_nulls().unique().sort().to_list()
    assert jobs_ids  # the hand case has jobs
    sacct = tmp_path / "sacct.txt"
    lines = ["JobID|JobName|User|Partition|State|Submit|Start|End|Elapsed|AllocTRES|TRESUsageInAve"]
    for k, job in enumerate(jobs_ids):
        lines.append(
            f"{job}|train|owner{k}|gpu|COMPLETED|2026-01-01T00:00:00|2026-01-01T00:00:00|"
            "2026-01-01T02:00:00|02:00:00|cpu=8,gres/gpu=1|"
        )
    sacct.write_text("\n".join(lines) + "\n")
    jobs = read_sacct(sacct)
    path = tmp_path / "t.parquet"
    frame.write_parquet(path)
    whole = review(frame, jobs=jobs, prices={"A100": 3.0})
    lazy = review(path, jobs=jobs, prices={"A100": 3.0})
    _assert_same(whole, lazy)
    assert set(lazy.per_user["user"]) >= {f"owner{k}" for k in range(len(jobs_ids))}


def test_chunks_by_slices_where_polars_has_no_batch_collection(monkeypatch):
    from aiops_lab.gpu import analysis

    frame = _fleet(14).sort("timestamp")
    whole = review(frame, prices=PRICES)
    seen = []

    def slices(lazy, rows):  # the fallback path alone, as on an older polars
        monkeypatch.delattr(pl.LazyFrame, "collect_batches", raising=False)
        for chunk in original(lazy, rows):
            seen.append(chunk.height)
            yield chunk

    original = analysis._chunks
    monkeypatch.setattr(analysis, "_chunks", slices)
    _chunked_only(monkeypatch)
    chunked = review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=60)
    _assert_same(whole, chunked)
    # one read, in slices of batch_rows // 4
    assert sum(seen) == frame.height
    assert set(seen) - {frame.height % 15} == {15}


def test_categorical_hosts_are_ordered_as_text():
    frame = _fleet(15)
    as_cat = frame.with_columns(
        pl.col("host").cast(pl.Categorical), pl.col("mig_instance").cast(pl.Categorical)
    )
    _assert_same(review(frame, prices=PRICES), review(as_cat, prices=PRICES))
    _assert_same(
        review(frame, prices=PRICES),
        review(as_cat.sort("timestamp").lazy(), prices=PRICES, streaming=True, batch_rows=40),
    )


def _spy_stats(monkeypatch):
    """Record whether the first pass counted (True) or read batches of whole GPUs (False)."""
    from aiops_lab.gpu import analysis

    used = []
    counted, batched = analysis._counted_stats, analysis._interval_stats

    def count(*args, **kwargs):
        out = counted(*args, **kwargs)
        used.append(out[0] is not None and out[0] is not analysis._OUT_OF_ORDER)
        return out

    def batch(*args, **kwargs):
        used.append(False)
        return batched(*args, **kwargs)

    monkeypatch.setattr(analysis, "_counted_stats", count)
    monkeypatch.setattr(analysis, "_interval_stats", batch)
    return used


def test_counted_statistics_equal_those_of_whole_gpus():
    """The first pass's counts give the very medians and quantiles of every GPU's rows."""
    from aiops_lab.backend import get_namespace
    from aiops_lab.gpu import analysis
    from aiops_lab.gpu.accounting import _KeyCoder

    xp, _ = get_namespace("numpy")
    # microsecond times, readings between whole percents, gaps past the dense span
    frame = (
        _fleet(21)
        .sort("timestamp")
        .with_columns(
            pl.col("timestamp") + pl.duration(microseconds=pl.int_range(pl.len()) % 997),
            pl.when(pl.int_range(pl.len()) % 7 == 0)
            .then(pl.col("util_pct") + 0.25)
            .otherwise(pl.col("util_pct"))
            .alias("util_pct"),
        )
    )
    lazy = analysis._source(frame.lazy(), None, None)
    sizes = lazy.group_by(*analysis._GPU_KEY).agg(pl.len().alias("n")).collect()
    coder = _KeyCoder.of_keys(sizes)
    by_value, seen = analysis._counted_stats(
        lazy, coder, 50, xp, progress=False, total=frame.height
    )
    by_gpu = analysis._interval_stats(lazy, coder, sizes, 10_000, xp)
    assert seen.all()
    for a, b in zip(by_value, by_gpu, strict=True):
        np.testing.assert_array_equal(a, b)
    assert by_value[0][0] == pytest.approx(np.median(np.diff(np.sort(
        frame.filter((pl.col("host") == "n1") & (pl.col("gpu") == 0))["timestamp"].dt.epoch("us").to_numpy()
    ))) / 1e6)  # fmt: skip


def test_too_many_distinct_intervals_read_whole_gpus_instead(monkeypatch):
    from aiops_lab.gpu import analysis

    frame = _fleet(22).sort("timestamp")
    whole = review(frame, prices=PRICES)
    used = _spy_stats(monkeypatch)
    monkeypatch.setattr(analysis, "COUNT_LIMIT", 20)  # far fewer than the log's intervals
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40))
    # the single read's count gave up, then batches of whole GPUs (no counting read)
    assert used == [False]
    monkeypatch.setattr(analysis, "COUNT_LIMIT", 1 << 22)
    used.clear()
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40))
    assert used == []  # one read counted every interval


def test_a_gpu_whose_samples_all_lack_a_time_is_left_out_as_in_memory():
    frame = _fleet(23).sort("timestamp", nulls_last=True)
    lost = (pl.col("host") == "n3") & (pl.col("gpu") == 5)
    frame = frame.with_columns(
        pl.when(lost).then(None).otherwise(pl.col("timestamp")).alias("timestamp")
    )
    whole = review(frame, prices=PRICES)
    assert whole.per_gpu.height == 5
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40))


def test_a_log_whose_times_all_lack_is_empty_when_streamed():
    from aiops_lab import errors

    frame = _fleet(24).with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("timestamp"))
    with pytest.raises(errors.EmptyInputError, match="no samples"):
        review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40)


def test_intervals_mostly_new_give_up_counting_a_few_chunks_in(monkeypatch):
    from aiops_lab.gpu import analysis

    # times to the microsecond: nearly every interval is a new value
    frame = (
        _fleet(25)
        .sort("timestamp")
        .with_columns(
            pl.col("timestamp") + pl.duration(microseconds=pl.int_range(pl.len()) * 7919 % 100_003)
        )
        .sort("timestamp")
    )
    whole = review(frame, prices=PRICES)
    chunks = []
    original = analysis._chunks

    def counted_chunks(lazy, rows):
        for chunk in original(lazy, rows):
            chunks.append(chunk.height)
            yield chunk

    monkeypatch.setattr(analysis, "_chunks", counted_chunks)
    used = _spy_stats(monkeypatch)
    monkeypatch.setattr(analysis, "COUNT_LIMIT", 300)  # the log holds more than twice that
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40))
    assert used == [False]
    # four chunks of ten, then statistics by batches of whole GPUs and a full read
    assert sum(chunks) == 4 * 10 + frame.height


def _cadence_log(steps: list[list[tuple[int, float]]], seed: int = 3) -> pl.DataFrame:
    """A merged log of GPUs sampled in phases of ``(samples, seconds apart)``."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
    parts = []
    for k, phases in enumerate(steps):
        dt = np.concatenate([np.full(n, s) for n, s in phases]) * rng.uniform(0.97, 1.03, sum(n for n, _ in phases))  # fmt: skip
        dt[rng.random(dt.size) < 0.01] *= 30  # gaps
        t_ms = np.round(np.cumsum(dt) * 1e3).astype(np.int64)
        util = np.where((np.arange(dt.size) // 25) % 3 == 0, 0.0, rng.integers(5, 101, dt.size))
        parts.append(
            pl.DataFrame(
                {
                    "timestamp": [t0 + timedelta(milliseconds=int(v)) for v in t_ms],
                    "host": "h",
                    "gpu": k,
                    "model": "NVIDIA A100-SXM4-80GB",
                    "util_pct": util.astype(float),
                    "mem_used_mib": 1000.0 * k,
                    "mem_total_mib": 81_920.0,
                    "user": [f"u{i // 60 % 2}" for i in range(dt.size)],
                }
            )
        )
    frame = pl.concat(parts).sort("timestamp")
    return frame.select(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in TELEMETRY_SCHEMA.items()
    )


def _spy_restarts(monkeypatch):
    from aiops_lab.gpu import accounting

    reasons = []
    original = accounting._Restart.__init__

    def record(self, reason):
        reasons.append(reason)
        original(self, reason)

    monkeypatch.setattr(accounting._Restart, "__init__", record)
    return reasons


def test_a_gpu_sampled_faster_later_is_read_again_with_its_final_median(monkeypatch):
    # GPU 0: every 60 s at first, then every 2 s for far longer: its final median is
    # about 2 s, so its first intervals (about 60 s) must be capped at about 4 s
    frame = _cadence_log([[(80, 60.0), (3000, 2.0)], [(1500, 5.0)]])
    whole = review(frame, prices=PRICES)
    reasons = _spy_restarts(monkeypatch)
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=400))
    assert reasons == ["median"]


def test_a_gpu_sampled_slower_later_sets_samples_aside_exactly(monkeypatch):
    from aiops_lab.gpu import accounting

    # GPU 0: every 2 s, then every 5 s for less long: its median stays 2 s and the 5 s
    # intervals (past 1.5 x 2 s) are weighed at the end, capped at 4 s
    frame = _cadence_log([[(3000, 2.0), (800, 5.0)], [(1500, 3.0)]])
    whole = review(frame, prices=PRICES)
    reasons = _spy_restarts(monkeypatch)
    _chunked_only(monkeypatch)
    streamed = review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=400)
    _assert_same(whole, streamed)
    assert reasons == []
    gpu0 = whole.per_gpu.row(0, named=True)
    assert gpu0["median_interval_s"] == pytest.approx(2.0, rel=0.03)
    # too many to keep: the log is read again, counting first
    monkeypatch.setattr(accounting._Accountant, "ASIDE_LIMIT", 100)
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=400))
    assert reasons == ["aside"]


def test_idle_stretches_with_samples_set_aside_equal_the_whole_gpus(rng):
    """Pieces of every GPU's rows, some weights known only at the end, give the longest stretches."""
    from aiops_lab.backend import get_namespace
    from aiops_lab.gpu.stretches import _IdleStretches

    xp, _ = get_namespace("numpy")
    sizes = [200, 1, 0, 350]
    group = np.repeat(np.arange(4), sizes)
    idle = rng.random(group.size) < 0.7
    idle[200] = True  # a GPU of one idle row
    w = rng.uniform(1, 10, group.size)
    aside = rng.random(group.size) < 0.1
    expected = K.idle_runs(xp, group, idle, w, 4)
    # the same rows in five pieces, each holding a stretch of every GPU's rows in order,
    # set-aside rows with 0 seconds
    piece_of = np.concatenate([np.sort(rng.integers(0, 5, n)) for n in sizes])
    stretches = _IdleStretches(4)
    numbers, seconds = [], []
    for k in range(5):
        rows = np.flatnonzero(piece_of == k)
        got = stretches.add(xp, group[rows], idle[rows], np.where(aside[rows], 0.0, w[rows]), aside[rows])  # fmt: skip
        numbers.append(got[got >= 0])
        seconds.append(w[rows][aside[rows]][got >= 0])
    longest = stretches.longest(np.concatenate(numbers), np.concatenate(seconds))
    np.testing.assert_allclose(longest, expected, rtol=1e-12)


def test_a_gpu_that_starts_late_takes_its_provisional_median_then(monkeypatch):
    frame = _cadence_log([[(2000, 2.0)], [(1500, 3.0)], [(40, 30.0)]])
    later = frame["timestamp"].sort()[frame.height // 2]
    # GPU 1 starts halfway; GPU 2 has too few intervals ever to take one (all set aside)
    frame = frame.filter((pl.col("gpu") != 1) | (pl.col("timestamp") >= later))
    whole = review(frame, prices=PRICES)
    reasons = _spy_restarts(monkeypatch)
    _chunked_only(monkeypatch)
    _assert_same(whole, review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=400))
    assert reasons == []


def test_an_error_on_the_summing_thread_surfaces_and_stops_it(monkeypatch):
    import threading

    from aiops_lab.gpu import accounting

    frame = _fleet(12).sort("timestamp")
    calls = []
    original = accounting._Accountant._run_table

    def failing(self, *args, **kwargs):
        calls.append(threading.current_thread().name)
        if len(calls) == 3:
            raise ValueError("broken sums")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(accounting._Accountant, "_run_table", failing)
    with pytest.raises(ValueError, match="broken sums"):
        review(frame.lazy(), prices=PRICES, streaming=True, batch_rows=40)
    assert any(name.startswith("aiops-lab-sums") for name in calls)  # summed off the main thread
    assert not [t for t in threading.enumerate() if t.name.startswith("aiops-lab-sums")]


def test_a_period_of_a_streamed_log_matches_the_same_period_in_memory():
    frame = _fleet(15).sort("timestamp")
    stamps = frame["timestamp"].sort()
    start, end = stamps[frame.height // 4], stamps[3 * frame.height // 4]
    whole = review(frame, prices=PRICES, start=start, end=end)
    streamed = review(frame.lazy(), prices=PRICES, start=start, end=end, streaming=True, batch_rows=40)  # fmt: skip
    _assert_same(whole, streamed)
    assert streamed.summary["gpu_hours"] < review(frame, prices=PRICES).summary["gpu_hours"]

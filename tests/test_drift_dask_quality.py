"""Realized model quality and the sampled deeper analyses of compare() on Dask.

On a real two-process LocalCluster. Quality from sums and counts must equal the
in-memory path; the AUC must lie within the bound the Dask path reports, checked
against scikit-learn on the raw data, and be exact when the scores take few values.
The multivariate, embedding and estimated-quality analyses run on a seeded row sample
drawn on the workers: about ``1.2 * sample_rows`` rows per window, all rows of a
window smaller than that (then the results equal the in-memory ones).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

pytest.importorskip("dask.dataframe", reason="dask[dataframe] is not installed")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402

from aiops_lab.drift import compare  # noqa: E402
from aiops_lab.drift.distributed import compare_dask, error_bounds  # noqa: E402
from aiops_lab.errors import InputError, ParameterError  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ROWS_PER_DAY = 288  # one row every 5 minutes
QUALITY_KEYS = ["window_start", "window_end", "metric", "n_labeled", "n_rows"]


def _frame(seed: int, n: int, shift: float = 0.0, *, few_scores: bool = False) -> pl.DataFrame:
    """Features, a calibrated score, a 0/1 decision, a regression target, late labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1, n)
    z = rng.normal(shift, 1, n)
    score = 1 / (1 + np.exp(-(x - shift)))
    if few_scores:
        score = np.round(score * 20) / 20  # 21 distinct values, many ties
    y = (rng.random(n) < 1 / (1 + np.exp(-x))).astype(np.float64)
    y[rng.random(n) < 0.2] = np.nan  # labels not arrived yet
    target = 2 * x + rng.normal(0, 1, n)
    estimate = 2 * x + z / 2
    estimate[rng.random(n) < 0.02] = np.nan
    return pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=5 * i) for i in range(n)],
            "x": x,
            "z": z,
            "score": score,
            "decision": (score >= 0.5).astype(np.int64),
            "label": y,
            "estimate": estimate,
            "target": np.where(np.isnan(y), np.nan, target),
        }
    ).with_columns(pl.col("label", "target", "estimate").fill_nan(None))


@pytest.fixture(scope="module")
def frames():
    return _frame(1, 3000), _frame(2, 4000, 0.3)


def _dask(frame: pl.DataFrame, parts: int = 4):
    return dd.from_pandas(frame.to_pandas(), npartitions=parts)


def _check_quality(mem: pl.DataFrame, got: pl.DataFrame, exact_auc: bool = True) -> None:
    """The same table, row for row; values equal up to float rounding."""
    assert got.schema == mem.schema
    assert got.select(QUALITY_KEYS).equals(mem.select(QUALITY_KEYS))
    for col in ("value", "reference_value"):
        a, b = mem[col], got[col]
        if not exact_auc:
            a, b = (s.filter(mem["metric"] != "auc") for s in (a, b))
        assert a.is_null().equals(b.is_null()), col
        np.testing.assert_allclose(b.drop_nulls().to_numpy(), a.drop_nulls().to_numpy(), rtol=1e-9)


def _sklearn_auc(frame: pl.DataFrame) -> float:
    sub = frame.drop_nulls(["label", "score"])
    return float(roc_auc_score(sub["label"].to_numpy(), sub["score"].to_numpy()))


# -- realized quality ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "windows", [{}, {"time_column": "ts", "window": "1d"}, {"chunk_size": 1500}]
)
def test_regression_quality_matches_memory(client, frames, windows):
    ref, cur = frames
    kw = dict(prediction_column="estimate", label_column="target", columns=["x", "z"], **windows)
    data = cur if "window" in windows else cur.drop("ts")
    mem = compare(ref, data, backend="numpy", progress=False, **kw)
    got = compare(ref, _dask(data), **kw)
    assert mem.params["task"] == got.params["task"] == "regression"
    _check_quality(mem.quality, got.quality)
    assert got.quality["metric"].unique().sort().to_list() == ["bias", "mae", "rmse"]
    assert got.params["dask"]["not_computed"] == []
    assert got.params["dask"]["quality_error_bounds"] is None  # nothing is approximate
    with pytest.raises(
        InputError, match=r"regression metrics, accuracy and positive rate are exact"
    ):
        error_bounds(got, quality=True)
    assert got.summary["quality_metric"] == mem.summary["quality_metric"]


@pytest.mark.parametrize("windows", [{}, {"time_column": "ts", "window": "1d"}])
def test_binary_quality_matches_memory(client, frames, windows):
    """Few labelled rows per partition and window: every AUC is exact (distinct scores kept)."""
    ref, cur = frames
    kw = dict(prediction_column="score", label_column="label", **windows)
    mem = compare(ref, cur, backend="numpy", progress=False, **kw)
    got = compare(ref, _dask(cur), **kw)
    assert got.params["task"] == "binary"
    _check_quality(mem.quality, got.quality)
    bounds = got.params["dask"]["quality_error_bounds"]
    assert bounds["auc_error"] == [0.0] * len(bounds["auc_error"])
    assert bounds["window_start"] == got.quality["window_start"].unique(maintain_order=True).to_list()  # fmt: skip
    assert "quality" not in got.params["dask"]["not_computed"]
    got.chart("quality")  # the story and its charts take the table as it is


def test_auc_within_bound_against_sklearn(client, frames):
    """Coarse grids: the AUC is approximate and within its stated bound of the exact value."""
    ref, cur = frames
    res = compare_dask(
        ref, _dask(cur), prediction_column="score", label_column="label", time_column="ts",
        window="2d", window_grid=8, client=client,
    )  # fmt: skip
    q = res.quality.filter(pl.col("metric") == "auc")
    bounds = res.params["dask"]["quality_error_bounds"]
    table = error_bounds(res, quality=True)
    assert table["auc_error"].to_list() == bounds["auc_error"]
    assert table["window_start"].to_list() == bounds["window_start"]
    day = cur.with_columns(pl.col("ts").dt.truncate("2d").alias("start"))
    assert q.height == len(bounds["auc_error"]) == day["start"].n_unique()
    for start, auc, err in zip(
        bounds["window_start"], q["value"], bounds["auc_error"], strict=True
    ):
        exact = _sklearn_auc(day.filter(pl.col("start") == start))
        assert 0 < err < 0.5
        assert abs(auc - exact) <= err + 1e-12
    # overall, on a 16-point grid, against the Mann-Whitney form by hand
    res = compare_dask(
        ref, _dask(cur), prediction_column="score", label_column="label", grid=16, client=client
    )
    err = res.params["dask"]["quality_error_bounds"]["auc_error"][0]
    auc = res.quality.filter(pl.col("metric") == "auc")["value"].item()
    sub = cur.drop_nulls("label")
    pos = sub.filter(pl.col("label") == 1)["score"].to_numpy()
    neg = sub.filter(pl.col("label") == 0)["score"].to_numpy()
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    exact = wins / (pos.size * neg.size)
    assert exact == pytest.approx(_sklearn_auc(cur), rel=1e-12)
    assert 0 < err < 0.5
    assert abs(auc - exact) <= err + 1e-12


def test_auc_exact_for_few_distinct_scores(client):
    """21 distinct scores, more labelled rows than the grid: exact, ties counted 1/2."""
    ref, cur = _frame(3, 3000, few_scores=True), _frame(4, 4000, 0.3, few_scores=True)
    for kw in ({}, {"time_column": "ts", "window": "2d"}):
        res = compare_dask(
            ref, _dask(cur), prediction_column="score", label_column="label", grid=32,
            window_grid=32, client=client, **kw,
        )  # fmt: skip
        bounds = res.params["dask"]["quality_error_bounds"]
        assert bounds["auc_error"] == [0.0] * len(bounds["auc_error"])
        aucs = res.quality.filter(pl.col("metric") == "auc")["value"].to_list()
        if not kw:
            assert aucs[0] == pytest.approx(_sklearn_auc(cur), rel=1e-12)
        else:
            day = cur.with_columns(pl.col("ts").dt.truncate("2d").alias("start"))
            for start, auc in zip(bounds["window_start"], aucs, strict=True):
                exact = _sklearn_auc(day.filter(pl.col("start") == start))
                assert auc == pytest.approx(exact, rel=1e-12)


def test_zero_one_predictions_get_no_auc(client, frames):
    """A 0/1 decision column: accuracy and positive rate as in memory, AUC null."""
    ref, cur = frames
    kw = dict(prediction_column="decision", label_column="label", time_column="ts", window="1d")
    mem = compare(ref, cur, backend="numpy", progress=False, **kw)
    got = compare(ref, _dask(cur), **kw)
    _check_quality(mem.quality, got.quality)
    n_windows = mem.windows["window_start"].n_unique()
    assert got.quality.filter(pl.col("metric") == "auc")["value"].null_count() == n_windows
    sub = cur.drop_nulls("label")
    first = got.quality.filter(pl.col("metric") == "accuracy")["value"][0]
    day = sub.filter(pl.col("ts") < T0 + timedelta(days=1))
    assert first == pytest.approx((day["decision"] == day["label"]).mean(), rel=1e-12)


# -- deeper analyses on a sample ------------------------------------------------------------
def test_mmd_small_p_on_drift_large_without(client):
    ref = _frame(5, 3000)
    same, moved = _frame(6, 6000), _frame(7, 6000, 0.5)
    kw = dict(columns=["x", "z"], multivariate=["mmd"], sample_rows=300, seed=3)
    p = {}
    for name, cur in (("same", same), ("moved", moved)):
        res = compare(ref, _dask(cur.drop("ts")), chunk_size=2000, **kw)  # row chunks: fine for MMD
        mmd = res.extras["mmd"]
        p[name] = mmd.p_value
        assert mmd.n_current == 300  # of about 1.2 * 300 rows brought back
        rows = res.params["dask"]["deeper_sample_rows"]
        assert abs(rows - 360) <= 5 * np.sqrt(360 * (1 - 360 / 6000))
        assert res.params["multivariate"] == ["mmd"]
        assert res.params["sample_rows"] == 300
        assert res.params["seed"] == 3
    assert p["moved"] <= 0.02  # the smallest p of 100 permutations is 1/101
    assert p["same"] >= 0.1
    again = compare(ref, _dask(moved.drop("ts")), **kw)
    assert again.params["dask"]["deeper_sample_rows"] == rows  # seeded: reproducible


def test_all_rows_kept_equals_memory(client, frames):
    """Windows smaller than 1.2 * sample_rows are brought back whole: results as in memory."""
    ref, cur = frames
    kw = dict(prediction_column="score", label_column="label", time_column="ts", window="1d",
              estimate_quality=True, multivariate=["reconstruction"], sample_rows=300)  # fmt: skip
    mem = compare(ref, cur, backend="numpy", progress=False, **kw)
    got = compare(ref, _dask(cur), **kw)
    assert got.params["dask"]["deeper_sample_rows"] == cur.height
    assert list(got.extras) == list(mem.extras) == ["reconstruction", "estimate"]
    est_m, est_d = mem.extras["estimate"].table, got.extras["estimate"].table
    assert est_d.select("window_start", "n", "n_labelled", "metric").equals(
        est_m.select("window_start", "n", "n_labelled", "metric")
    )
    np.testing.assert_allclose(est_d["estimated"], est_m["estimated"], rtol=1e-9)
    rec_m, rec_d = mem.extras["reconstruction"].table, got.extras["reconstruction"].table
    assert rec_d.select("period", "window_start", "n").equals(rec_m.select("period", "window_start", "n"))  # fmt: skip
    np.testing.assert_allclose(rec_d["error"], rec_m["error"], rtol=1e-9)
    for key in ("multivariate", "embeddings", "estimate_quality", "sample_rows", "seed"):
        assert got.params[key] == mem.params[key], key


def test_sample_is_about_sample_rows_per_window(client):
    """About 1.2 * sample_rows rows per window (a Bernoulli count), reference windows alike."""
    ref, cur = _frame(8, 2 * ROWS_PER_DAY * 3), _frame(9, 2 * ROWS_PER_DAY * 7 + 100)
    res = compare(
        ref, _dask(cur), prediction_column="score", label_column="label", time_column="ts",
        window="2d", estimate_quality=True, multivariate=["reconstruction"], sample_rows=60,
    )  # fmt: skip
    sizes = (
        cur.group_by(pl.col("ts").dt.truncate("2d").alias("window_start"))
        .agg(pl.len().alias("rows"))
        .sort("window_start")
    )
    est = (
        res.extras["estimate"]
        .table.filter(pl.col("metric") == "roc_auc")
        .join(sizes, on="window_start")
        .sort("window_start")
    )
    assert est.height == sizes.height == 8
    for n, rows in zip(est["n"], est["rows"], strict=True):
        rate = min(1.0, 72 / rows)
        assert abs(n - rows * rate) <= 5 * np.sqrt(rows * rate * (1 - rate)) + 1e-9
    assert est["rows"][-1] == 100
    assert est["n"][-1] < 100
    rec = res.extras["reconstruction"].table
    assert rec.filter(pl.col("period") == "current")["n"].to_list() == est["n"].to_list()
    ref_n = rec.filter(pl.col("period") == "reference")["n"].to_numpy()
    assert ref_n.size == 3
    assert np.all(np.abs(ref_n - 72) <= 5 * np.sqrt(72))
    assert res.params["dask"]["deeper_sample_rows"] == est["n"].sum()


def test_embedding_drift_on_dask(client, tmp_path):
    """A list column read from Parquet survives the partition -> polars conversion."""
    rng = np.random.default_rng(10)

    def with_emb(frame: pl.DataFrame, shift: float) -> pl.DataFrame:
        v = rng.normal(0, 1, (frame.height, 4))
        v[frame.height // 2 :, 0] += shift  # the second half moves
        return frame.with_columns(pl.Series("emb", v.tolist(), dtype=pl.List(pl.Float64)))

    ref = with_emb(_frame(11, 1500), 0.0)
    cur = with_emb(_frame(12, 2000), 3.0)
    cur.write_parquet(tmp_path / "cur.parquet", row_group_size=500)
    ddf = dd.read_parquet(tmp_path / "cur.parquet", split_row_groups=True)
    assert ddf.npartitions > 1
    kw = dict(columns=["x", "z"], embeddings="auto", time_column="ts", window="2d", sample_rows=100)
    mem = compare(ref, cur, backend="numpy", progress=False, **kw)
    got = compare(ref, ddf, **kw)
    emb_m, emb_d = mem.extras["embedding:emb"], got.extras["embedding:emb"]
    assert got.params["embeddings"] == mem.params["embeddings"] == ["emb"]
    assert "emb" not in got.skipped
    assert emb_d.windows["window_start"].equals(emb_m.windows["window_start"])
    assert emb_m.drift
    assert emb_d.drift
    early_m = emb_m.windows.filter(pl.col("window_start") < T0 + timedelta(days=2))["drift"]
    early_d = emb_d.windows.filter(pl.col("window_start") < T0 + timedelta(days=2))["drift"]
    assert early_d.to_list() == early_m.to_list() == [False]  # before the move
    assert emb_d.windows["drift"][-1]
    assert emb_m.windows["drift"][-1]


def test_embeddings_turned_into_text_get_a_clear_error(client):
    ref = _frame(13, 500).with_columns(pl.Series("emb", np.ones((500, 3)).tolist()))
    with dask.config.set({"dataframe.convert-string": True}):
        ddf = dd.from_pandas(ref.to_pandas(), npartitions=2)
    with pytest.raises(InputError, match="convert-string"):
        compare(ref, ddf, columns=["x"], embeddings=["emb"])


class _Boom(Exception):
    pass


def _explode(i: int):
    raise _Boom(f"partition {i} was read; the error should come before any pass")


def test_bad_inputs_fail_before_reading(client, frames):
    ref, cur = frames
    meta = cur.to_pandas().iloc[:0]
    never = dd.from_map(_explode, range(3), meta=meta, enforce_metadata=False)
    with pytest.raises(ParameterError, match="estimate_quality") as err:
        compare(ref, never, estimate_quality=True)  # no labels
    assert err.value.name == "estimate_quality"
    with pytest.raises(ParameterError) as err:
        compare(ref, never, columns=["x"], chunk_size=100, multivariate=["reconstruction"])
    assert err.value.name == "chunk_size"
    with pytest.raises(ParameterError) as err:
        compare(ref, never, multivariate=["mmd", "pca"])
    assert err.value.name == "multivariate"
    with pytest.raises(ParameterError) as err:
        compare(ref, never, multivariate=True, sample_rows=10)
    assert err.value.name == "sample_rows"
    with pytest.raises(InputError, match="emb"):
        compare(ref, never, embeddings=["emb"])  # no such column
    with pytest.raises(ParameterError) as err:  # a regression model: nothing to estimate
        compare(ref, _dask(cur), prediction_column="estimate", label_column="target",
                task="regression", estimate_quality=True)  # fmt: skip
    assert err.value.name == "estimate_quality"


def test_progress_counts_the_cluster_tasks(client, frames, capsys, monkeypatch):
    """On a cluster the bar is distributed's; in a headless report there is none."""
    import distributed

    from aiops_lab import progress

    ref, cur = frames
    shown = []
    monkeypatch.setattr(distributed, "progress", lambda futures: shown.append(len(futures)))
    got = compare(ref, _dask(cur.drop("ts")), columns=["x", "z"])
    assert shown == [1]  # one root future: the merged summaries
    monkeypatch.setenv("AIOPS_LAB_REPORT", "1")
    from aiops_lab.display import in_report

    assert in_report()
    again = compare(ref, _dask(cur.drop("ts")), columns=["x", "z"])
    assert shown == [1]
    assert again.table.equals(got.table)
    # a list comes back as a list, in order, with one bar over all of it
    import dask

    monkeypatch.delenv("AIOPS_LAB_REPORT")
    values = progress.dask_compute([dask.delayed(abs)(-i) for i in range(4)], client=client)
    assert values == [0, 1, 2, 3]
    assert shown == [1, 4]

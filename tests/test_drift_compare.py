"""compare() end to end: every statistic of the contract, checked against SciPy / NumPy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

import aiops_lab
from aiops_lab import errors
from aiops_lab.drift import compare

CONTRACT = [
    "column", "kind", "n_ref", "n_cur", "null_ref", "null_cur", "ks", "ks_p", "wasserstein",
    "wasserstein_norm", "psi", "js", "hellinger", "chi2", "chi2_p", "linf", "null_p", "p_value",
    "p_adjusted", "drifted",
]  # fmt: skip


def _frames(
    seed: int = 0, n_ref: int = 3000, n_cur: int = 2000
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def make(
        n: int, shift: float, cats: list[str], p: list[float], start: datetime
    ) -> pl.DataFrame:
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.05] = np.nan
        return pl.DataFrame(
            {
                "ts": [start + timedelta(minutes=10 * i) for i in range(n)],
                "shifted": x,
                "stable": rng.normal(0, 1, n),
                "ints": rng.integers(0, 8, n),
                "constant": np.full(n, 3.0),
                "city": rng.choice(cats, n, p=p),
                "flag": rng.random(n) < 0.3,
            }
        ).with_columns(
            pl.when(pl.int_range(pl.len()) % 17 == 0)
            .then(None)
            .otherwise(pl.col("stable"))
            .alias("stable")
        )

    ref = make(n_ref, 0.0, ["a", "b", "c"], [0.5, 0.3, 0.2], t0)
    cur = make(n_cur, 0.4, ["a", "b", "c", "d"], [0.4, 0.3, 0.2, 0.1], t0 + timedelta(days=60))
    return ref, cur


@pytest.fixture(scope="module")
def frames():
    return _frames()


@pytest.fixture(scope="module")
def result(frames):
    ref, cur = frames
    return compare(ref, cur, time_column="ts", backend="numpy")


def test_table_has_the_contract_columns(result):
    assert result.table.columns[: len(CONTRACT)] != []  # table exists
    for col in CONTRACT:
        assert col in result.table.columns
    assert set(result.table["column"]) == {"shifted", "stable", "ints", "constant", "city", "flag"}
    kinds = dict(result.table.select("column", "kind").iter_rows())
    assert kinds == {
        "shifted": "numeric",
        "stable": "numeric",
        "ints": "numeric",
        "constant": "numeric",
        "city": "categorical",
        "flag": "categorical",
    }


@pytest.mark.parametrize("column", ["shifted", "stable", "ints"])
def test_numeric_statistics_match_scipy(frames, result, column):
    ref, cur = frames
    row = result.table.filter(pl.col("column") == column).row(0, named=True)
    a = ref[column].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    b = cur[column].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    ks = stats.ks_2samp(a, b)
    assert row["n_ref"] == a.size
    assert row["n_cur"] == b.size
    assert row["ks"] == pytest.approx(ks.statistic, abs=1e-9)
    assert row["ks_p"] == pytest.approx(ks.pvalue, abs=1e-6)
    assert row["p_value"] == row["ks_p"]
    w = stats.wasserstein_distance(a, b)
    assert row["wasserstein"] == pytest.approx(w, rel=1e-9)
    assert row["wasserstein_norm"] == pytest.approx(w / max(np.std(a), 1e-3), rel=1e-9)
    edges = np.unique(np.quantile(a, np.linspace(0, 1, 11)[1:-1]))
    p = np.bincount(np.searchsorted(edges, a, side="right"), minlength=edges.size + 1) / a.size
    q = np.bincount(np.searchsorted(edges, b, side="right"), minlength=edges.size + 1) / b.size
    pf, qf = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert row["psi"] == pytest.approx(np.sum((qf - pf) * np.log(qf / pf)), rel=1e-9)
    assert row["js"] == pytest.approx(jensenshannon(p, q), rel=1e-7)
    assert row["hellinger"] == pytest.approx(np.sqrt(1 - np.sum(np.sqrt(p * q))), rel=1e-7)
    assert row["chi2"] is None
    assert row["chi2_p"] is None


@pytest.mark.parametrize("column", ["city", "flag"])
def test_categorical_statistics_match_scipy(frames, result, column):
    ref, cur = frames
    row = result.table.filter(pl.col("column") == column).row(0, named=True)
    r = ref[column].cast(pl.Utf8).value_counts()
    c = cur[column].cast(pl.Utf8).value_counts()
    levels = sorted(set(r[column]) | set(c[column]))
    rc = np.array([dict(r.iter_rows()).get(v, 0) for v in levels])
    cc = np.array([dict(c.iter_rows()).get(v, 0) for v in levels])
    res = stats.chi2_contingency([rc, cc], correction=False)
    assert row["chi2"] == pytest.approx(res.statistic, rel=1e-9)
    assert row["chi2_p"] == pytest.approx(res.pvalue, rel=1e-6, abs=1e-300)
    p, q = rc / rc.sum(), cc / cc.sum()
    assert row["linf"] == pytest.approx(np.max(np.abs(p - q)))
    assert row["js"] == pytest.approx(jensenshannon(p, q), rel=1e-7)
    assert row["ks"] is None
    if column == "city":
        assert row["unseen_categories"] == 1
        assert row["unseen"] == "d"


def test_null_rates_and_null_test(frames, result):
    ref, cur = frames
    row = result.table.filter(pl.col("column") == "shifted").row(0, named=True)
    nr = int(ref["shifted"].is_nan().sum())
    nc = int(cur["shifted"].is_nan().sum())
    assert row["null_ref"] == pytest.approx(nr / ref.height)
    assert row["null_cur"] == pytest.approx(nc / cur.height)
    table = [[nr, ref.height - nr], [nc, cur.height - nc]]
    assert row["null_p"] == pytest.approx(
        stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9
    )
    # no nulls on either side: no test
    assert result.table.filter(pl.col("column") == "ints")["null_p"][0] is None


def test_null_drift_needs_significance_and_size():
    rng = np.random.default_rng(3)
    n = 50_000
    ref = pl.DataFrame({"small": rng.normal(size=n), "big": rng.normal(size=n)})
    cur = pl.DataFrame({"small": rng.normal(size=n), "big": rng.normal(size=n)})
    ref = ref.with_columns(
        pl.when(pl.Series(rng.random(n) < 0.020))
        .then(None)
        .otherwise(pl.col("small"))
        .alias("small")
    )
    cur = cur.with_columns(
        pl.when(pl.Series(rng.random(n) < 0.026))
        .then(None)
        .otherwise(pl.col("small"))
        .alias("small"),
        pl.when(pl.Series(rng.random(n) < 0.10)).then(None).otherwise(pl.col("big")).alias("big"),
    )
    t = compare(ref, cur).table
    small = t.filter(pl.col("column") == "small").row(0, named=True)
    assert small["null_p"] < 0.05  # significant at this size ...
    assert small["null_drifted"] is False  # ... but under one percentage point
    assert t.filter(pl.col("column") == "big")["null_drifted"][0] is True
    assert (
        compare(ref, cur, null_tolerance=0.001).table.filter(pl.col("column") == "small")[
            "null_drifted"
        ][0]
        is True
    )


def test_constant_column_is_reported_not_tested(result):
    row = result.table.filter(pl.col("column") == "constant").row(0, named=True)
    assert row["reason"] is not None
    assert "constant" in row["reason"]
    assert row["p_value"] is None
    assert row["ks"] is None
    assert row["drifted"] is False


def test_correction_and_verdicts(result):
    t = result.table.filter(pl.col("p_value").is_not_null()).sort("column")
    expected = stats.false_discovery_control(t["p_value"].to_numpy(), method="bh")
    assert np.allclose(t["p_adjusted"].to_numpy(), expected, rtol=1e-12)
    assert t.filter(pl.col("drifted"))["column"].to_list() == [
        c for c, p in zip(t["column"], expected, strict=True) if p < 0.05
    ]
    assert "shifted" in result.drifted_columns
    assert "city" in result.drifted_columns
    assert "stable" not in result.drifted_columns
    s = result.summary
    assert s["n_drifted"] == len(result.drifted_columns)
    assert s["drift_share"] == pytest.approx(s["n_drifted"] / s["n_tested"])
    assert s["backend"] == "numpy"
    assert s["elapsed_s"] > 0


@pytest.mark.parametrize("method", ["holm", "bonferroni", "none"])
def test_other_corrections(frames, method):
    ref, cur = frames
    t = compare(ref, cur, correction=method, columns=["shifted", "stable", "ints"]).table.sort(
        "p_value"
    )
    p = t["p_value"].to_numpy()
    m = p.size
    if method == "none":
        expected = p
    elif method == "bonferroni":
        expected = np.minimum(p * m, 1)
    else:  # Holm by hand: running max of (m - i) p_(i)
        expected = np.minimum(np.maximum.accumulate(p * (m - np.arange(m))), 1)
    assert np.allclose(t["p_adjusted"].to_numpy(), expected)


def test_tiny_columns_follow_min_count(frames):
    ref, cur = frames
    small = cur.head(4)
    t = compare(ref, small, columns=["shifted", "stable"]).table
    assert t["reason"].str.contains("too few").all()
    t1 = compare(ref, small, columns=["ints"], min_count=1).table.row(0, named=True)
    expected = stats.ks_2samp(
        ref["ints"].to_numpy().astype(float), small["ints"].to_numpy().astype(float)
    )
    assert t1["ks_p"] == pytest.approx(expected.pvalue, abs=1e-6)


def test_windows_repeat_the_statistics_per_window(frames):
    ref, cur = frames
    r = compare(ref, cur, time_column="ts", window="1d", columns=["shifted", "city"])
    w = r.windows
    assert w is not None
    assert {"window_start", "window_end", "column", "p_adjusted", "drifted"} <= set(w.columns)
    first = w["window_start"].min()
    day = cur.filter((pl.col("ts") >= first) & (pl.col("ts") < first + timedelta(days=1)))
    row = w.filter((pl.col("window_start") == first) & (pl.col("column") == "shifted")).row(
        0, named=True
    )
    a = ref["shifted"].drop_nans().to_numpy()
    b = day["shifted"].drop_nans().to_numpy()
    assert row["ks"] == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-9)
    assert row["n_cur"] == b.size
    assert w["window_start"].n_unique() == cur["ts"].dt.truncate("1d").n_unique()
    assert r.first_drift is not None


def test_chunk_size_windows(frames):
    ref, cur = frames
    r = compare(ref, cur, chunk_size=500, columns=["shifted"])
    assert r.windows is not None
    assert r.windows.height == 4
    assert r.windows["n_cur"].sum() == r.table["n_cur"][0]


def test_distance_decisions(frames):
    ref, cur = frames
    r = compare(ref, cur, decide_by="psi", threshold=0.05, columns=["shifted", "stable"])
    t = r.table
    assert (
        t.filter(pl.col("drifted"))["column"].to_list()
        == t.filter(pl.col("psi") > 0.05)["column"].to_list()
    )


def test_inputs_from_paths_lazy_and_pandas(tmp_path, frames):
    ref, cur = frames
    ref.write_parquet(tmp_path / "ref.parquet")
    cur.write_csv(tmp_path / "cur.csv")
    a = compare(tmp_path / "ref.parquet", str(tmp_path / "cur.csv"), columns=["shifted", "city"])
    b = compare(ref.lazy(), cur.to_pandas(), columns=["shifted", "city"])
    assert a.table.select("column", "ks", "chi2").equals(b.table.select("column", "ks", "chi2"))


def test_engine_is_portable_to_array_api_strict(frames):
    xp = pytest.importorskip("array_api_strict")
    from aiops_lab.drift.engine import ReferenceProfile
    from aiops_lab.drift.sources import plan_columns

    ref, cur = frames
    plan = plan_columns(ref, cur, columns=["shifted", "ints", "city"], categorical=None)
    profile = ReferenceProfile(
        ref, plan, xp=xp, bins=10, min_count=5, cur_rows_hint=cur.height, cat_frame=cur
    )
    strict = profile.compare(cur)
    expected = compare(ref, cur, columns=["shifted", "ints", "city"]).table
    for i, col in enumerate(plan.columns):
        row = expected.filter(pl.col("column") == col).row(0, named=True)
        for stat in ("ks", "psi", "js", "chi2", "wasserstein"):
            if row[stat] is not None:
                assert strict[stat][i] == pytest.approx(row[stat], rel=1e-12)


def test_false_alarm_rate_is_near_alpha():
    """Random splits of one sample: the share of runs flagging any column stays near alpha."""
    rng = np.random.default_rng(7)
    n_runs, alarms = 200, 0
    pool = pl.DataFrame({f"x{j}": rng.normal(size=800) for j in range(10)}).with_columns(
        pl.Series("cat", rng.choice(list("abcd"), 800))
    )
    for _ in range(n_runs):
        idx = rng.permutation(800)
        r = compare(pool[idx[:400]], pool[idx[400:]], progress=False)
        alarms += r.summary["n_drifted"] > 0
    rate = alarms / n_runs
    # BH under the global null controls the family-wise rate at alpha = 0.05
    assert 0.01 <= rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_runs)


class TestBadInput:
    def test_missing_column(self, frames):
        ref, cur = frames
        with pytest.raises(errors.ColumnNotFoundError, match=r"'nope'.*reference"):
            compare(ref, cur, columns=["nope"])

    def test_schema_mismatch(self, frames):
        ref, cur = frames
        with pytest.raises(errors.SchemaMismatchError, match="only in current"):
            compare(ref, cur.with_columns(pl.lit(1).alias("extra")))
        with pytest.raises(errors.SchemaMismatchError, match="'city'"):
            compare(ref, cur.with_columns(pl.lit(1.5).alias("city")))

    def test_empty_frames(self, frames):
        ref, cur = frames
        with pytest.raises(errors.EmptyInputError, match="current"):
            compare(ref, cur.head(0))

    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"correction": "fdr"}, "correction"),
            ({"decide_by": "kl"}, "decide_by"),
            ({"alpha": 5}, "alpha"),
            ({"bins": 1}, "bins"),
            ({"window": "1d"}, "time_column"),
            ({"time_column": "ts", "window": "one day"}, "window"),
            ({"chunk_size": 0}, "chunk_size"),
            ({"backend": "tpu"}, "backend"),
        ],
    )
    def test_bad_parameters_name_the_parameter(self, frames, kwargs, name):
        ref, cur = frames
        with pytest.raises(errors.ParameterError, match=f"'{name}'"):
            compare(ref, cur, **kwargs)

    def test_unreadable_and_missing_files(self, tmp_path, frames):
        ref, _ = frames
        bad = tmp_path / "bad.parquet"
        bad.write_text("not parquet")
        with pytest.raises(errors.InputError, match=r"bad\.parquet"):
            compare(ref, bad)
        with pytest.raises(errors.InputError, match="does not exist"):
            compare(ref, tmp_path / "missing.csv")

    def test_window_without_rows(self, frames):
        ref, cur = frames
        with pytest.raises(errors.EmptyInputError, match="window"):
            compare(
                ref,
                cur.with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("ts")),
                time_column="ts",
                window="1d",
            )

    def test_cupy_without_gpu_is_a_clear_error(self, frames):
        ref, cur = frames
        if aiops_lab.backend_info("auto").name == "cupy":
            pytest.skip("a GPU is present")
        with pytest.raises(errors.BackendUnavailableError, match="cupy"):
            compare(ref, cur, backend="cupy")


def test_host_sort_matches_the_kernel_sort():
    """The NumPy backend sorts with polars; it must equal kernels.sort_sample exactly."""
    import array_api_compat.numpy as xp

    from aiops_lab.drift import kernels as K
    from aiops_lab.drift.sources import numeric_matrix, sorted_numeric

    frame = pl.DataFrame(
        {
            "f": [3.0, None, float("nan"), -1.0, float("inf"), 2.0, -float("inf"), 0.0],
            "i": [5, 1, None, 1, 9, 2, 2, 0],
            "z": [0.0, -0.0, 1.0, 1.0, 1.0, None, None, None],
        }
    )
    values, n_valid = sorted_numeric(frame, frame.columns)
    expected = K.sort_sample(xp, numeric_matrix(frame, frame.columns))
    assert np.array_equal(n_valid, expected.n_valid)
    assert np.array_equal(values, expected.values)

"""MMD and embedding drift: agreement with direct O(n^2) computations, calibration, power."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial.distance import pdist
from test_drift_mv_kernels import direct_mmd2 as _direct_mmd2

from aiops_lab import drift
from aiops_lab.errors import InputError, ParameterError


# -- the test ---------------------------------------------------------------------------------
def test_mmd_result_agrees_with_direct_computation(rng):
    x = rng.normal(size=(80, 3))
    y = rng.normal(0.3, 1.0, size=(70, 3))
    res = drift.mmd(x, y, permutations=50, seed=7)
    sigma = float(np.median(pdist(np.vstack([x, y]))))
    assert res.sigma == pytest.approx(sigma, rel=1e-6)
    assert res.statistic == pytest.approx(_direct_mmd2(x, y, sigma), rel=1e-6)
    expected_p = (1 + np.sum(res.null >= res.statistic)) / 51
    assert res.p_value == pytest.approx(expected_p)
    assert res.null.shape == (50,)
    again = drift.mmd(x, y, permutations=50, seed=7)
    assert again.p_value == res.p_value
    assert np.array_equal(again.null, res.null)


def test_fixed_bandwidth_is_sigma(rng):
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    res = drift.mmd(x, y, bandwidth=0.8, permutations=20)
    assert res.sigma == 0.8
    assert res.statistic == pytest.approx(_direct_mmd2(x, y, 0.8), rel=1e-9)


def test_pvalues_are_calibrated_without_drift():
    ps = []
    for seed in range(150):
        r = np.random.default_rng(seed)
        x, y = r.normal(size=(30, 3)), r.normal(size=(30, 3))
        ps.append(drift.mmd(x, y, permutations=39, seed=seed, progress=False).p_value)
    ps = np.asarray(ps)
    # 150 draws of a (discrete) uniform p-value: the share <= 0.1 is Binomial(150, 0.1)
    k = int(np.sum(ps <= 0.1))
    assert stats.binom.cdf(k, 150, 0.1) > 0.001
    assert stats.binom.sf(k - 1, 150, 0.1) > 0.001
    assert abs(ps.mean() - 0.5) < 0.08


def test_power_on_a_mean_shift(rng):
    x = rng.normal(size=(200, 5))
    y = rng.normal(size=(200, 5)) + 0.4
    res = drift.mmd(x, y, permutations=99)
    assert res.p_value == pytest.approx(0.01)
    assert res.drift
    assert res.alert


def test_joint_shift_found_where_univariate_tests_are_blind():
    r = np.random.default_rng(2024)
    cov_ref = [[1.0, 0.8], [0.8, 1.0]]
    cov_cur = [[1.0, -0.8], [-0.8, 1.0]]
    ref = r.multivariate_normal([0, 0], cov_ref, size=600)
    cur = r.multivariate_normal([0, 0], cov_cur, size=600)
    for j in range(2):
        assert stats.ks_2samp(ref[:, j], cur[:, j]).pvalue > 0.05
    frames = pl.DataFrame(ref, schema=["a", "b"]), pl.DataFrame(cur, schema=["a", "b"])
    per_column = drift.compare(*frames, progress=False)
    assert per_column.drifted_columns == []
    joint = drift.mmd(*frames, permutations=99)
    assert joint.p_value <= 0.01
    assert joint.kind == "columns"


def test_frames_are_standardized_on_the_reference(rng):
    ref = pl.DataFrame({"a": rng.normal(100, 20, 60), "b": rng.normal(0, 0.01, 60)})
    cur = pl.DataFrame({"a": rng.normal(110, 20, 50), "b": rng.normal(0, 0.01, 50)})
    res = drift.mmd(ref, cur, permutations=10)
    r, c = ref.to_numpy(), cur.to_numpy()
    mu, sd = r.mean(axis=0), r.std(axis=0)
    want = drift.mmd((r - mu) / sd, (c - mu) / sd, permutations=10)
    assert res.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert res.columns == ["a", "b"]


def test_embedding_columns_list_and_array_agree_with_arrays(rng):
    x = rng.normal(size=(40, 6))
    y = rng.normal(size=(45, 6))
    as_list = drift.mmd(
        pl.DataFrame({"e": x.tolist()}), pl.DataFrame({"e": y.tolist()}), columns="e",
        permutations=10,
    )  # fmt: skip
    as_array = drift.mmd(
        pl.DataFrame({"e": x}), pl.DataFrame({"e": y}), columns=["e"], permutations=10
    )
    plain = drift.mmd(x, y, permutations=10)
    assert as_list.kind == as_array.kind == "embedding"
    assert as_list.statistic == pytest.approx(plain.statistic, rel=1e-9)
    assert as_array.statistic == pytest.approx(plain.statistic, rel=1e-9)


def test_float32_is_close_to_float64(rng):
    x = rng.normal(size=(300, 20))
    y = rng.normal(0.05, 1.0, size=(300, 20))
    a = drift.mmd(x, y, dtype="float64", permutations=20)
    b = drift.mmd(x, y, dtype="float32", permutations=20)
    scale = np.abs(a.null).max()
    assert abs(a.statistic - b.statistic) < 1e-3 * scale
    assert np.allclose(a.null, b.null, atol=1e-3 * scale)


def test_result_renders(rng):
    res = drift.mmd(rng.normal(size=(30, 2)), rng.normal(size=(30, 2)), permutations=20)
    bundle = res._repr_mimebundle_()
    assert "MMD" in bundle["text/plain"] or "joint drift" in bundle["text/plain"]
    assert "<svg" in bundle["text/html"]
    assert res.to_dict()["summary"]["mmd_p_value"] == res.p_value


# -- bad input --------------------------------------------------------------------------------
def test_mismatched_dimensions():
    with pytest.raises(InputError, match="3 dimensions but the current data has 4"):
        drift.mmd(np.zeros((10, 3)), np.ones((10, 4)))


def test_nan_rows_are_named_or_dropped(rng):
    x = rng.normal(size=(30, 2))
    y = rng.normal(size=(30, 2))
    y[3, 1] = np.nan
    with pytest.raises(InputError, match="1 row\\(s\\) with NaN"):
        drift.mmd(x, y, permutations=10)
    assert drift.mmd(x, y, permutations=10, nan_policy="drop").n_current == 29
    ref = pl.DataFrame({"a": x[:, 0], "b": x[:, 1]})
    cur = pl.DataFrame({"a": y[:, 0], "b": [None, *y[1:, 1].tolist()]})
    with pytest.raises(InputError, match="'b'"):
        drift.mmd(ref, cur, permutations=10)


def test_too_few_samples_for_the_permutations():
    with pytest.raises(InputError, match="only 20 distinct splits"):
        drift.mmd(np.zeros((3, 2)), np.ones((3, 2)), permutations=100)
    with pytest.raises(InputError, match="at least 2 points per side"):
        drift.mmd(np.zeros((1, 2)), np.ones((5, 2)))


def test_embeddings_of_different_lengths():
    ref = pl.DataFrame({"e": [[0.1, 0.2], [0.3, 0.1, 0.5]]})
    with pytest.raises(InputError, match="different lengths \\(2 to 3\\)"):
        drift.mmd(ref, ref, columns="e")
    cur = pl.DataFrame({"e": [[0.1, 0.2, 0.3]] * 3})
    ok = pl.DataFrame({"e": [[0.1, 0.2]] * 3})
    with pytest.raises(InputError, match="length 2 in the reference but 3"):
        drift.mmd(ok, cur, columns="e")


def test_parameters_are_checked(rng):
    x = rng.normal(size=(20, 2))
    with pytest.raises(ParameterError, match="permutations"):
        drift.mmd(x, x, permutations=0)
    with pytest.raises(ParameterError, match="bandwidth"):
        drift.mmd(x, x, bandwidth="scott")
    with pytest.raises(ParameterError, match="bandwidth"):
        drift.mmd(x, x, bandwidth=-1.0)
    with pytest.raises(InputError, match=r"same number of columns|2-D"):
        drift.mmd(x[:, 0], x)


# -- embedding drift --------------------------------------------------------------------------
def _topics(r: np.random.Generator, n: int, centres: np.ndarray, new_share: float = 0.0):
    x = centres[r.integers(0, len(centres), n)] + 0.35 * r.normal(size=(n, centres.shape[1]))
    if new_share:
        hit = r.random(n) < new_share
        new = np.full(centres.shape[1], 1.0)
        x[hit] = new + 0.35 * r.normal(size=(int(hit.sum()), centres.shape[1]))
    return x


def test_embedding_far_share_is_near_its_nominal_rate_without_drift():
    r = np.random.default_rng(5)
    centres = r.normal(size=(4, 12))
    ref = _topics(r, 1500, centres)
    cur = _topics(r, 1500, centres)
    res = drift.embedding_drift(ref, cur, max_rows=None, permutations=50)
    # 1,500 current points, nominal 5 %: three binomial standard errors
    assert abs(res.overall["far_share"] - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 1500) + 0.01
    assert res.overall["mmd_p_value"] > 0.05
    assert not res.alert


def test_embedding_drift_per_window_finds_the_new_topic():
    r = np.random.default_rng(6)
    centres = r.normal(size=(4, 12))
    ref = _topics(r, 1200, centres)
    days = [_topics(r, 400, centres) for _ in range(3)]
    days += [_topics(r, 400, centres, new_share=0.25) for _ in range(2)]
    emb = np.vstack(days)
    day = np.repeat(np.arange(5), 400)
    cur = pl.DataFrame({"e": emb.astype(np.float32)}).with_columns(
        pl.Series("ts", [f"2026-10-0{1 + int(d)} 12:00:00" for d in day]).str.to_datetime()
    )
    res = drift.embedding_drift(
        pl.DataFrame({"e": ref}),
        cur,
        time_column="ts",
        window="1d",
        permutations=50,
        progress=False,
    )
    w = res.windows
    assert w["drift"].to_list() == [False, False, False, True, True]
    assert str(res.first_drift).startswith("2026-10-04")
    # the new topic is a quarter of those days: the far share follows it
    assert all(s > 0.2 for s in w["far_share"].to_list()[3:])
    assert all(s < 0.1 for s in w["far_share"].to_list()[:3])
    # overall centroid distance: 1 - cos between the means of the unit vectors
    u_ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cur32 = emb.astype(np.float32).astype(np.float64)
    u_cur = cur32 / np.linalg.norm(cur32, axis=1, keepdims=True)
    a, b = u_ref.mean(0), u_cur.mean(0)
    direct = 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert res.overall["centroid_distance"] == pytest.approx(direct, rel=1e-6)
    assert "<svg" in res._repr_mimebundle_()["text/html"]


def test_embedding_drift_errors():
    ref = pl.DataFrame({"e": [[1.0, 0.0]] * 40, "f": [[0.0, 1.0]] * 40})
    with pytest.raises(ParameterError, match="embedding"):
        drift.embedding_drift(ref, ref)
    zero = pl.DataFrame({"e": [[0.0, 0.0]] * 40})
    with pytest.raises(InputError, match="all-zero"):
        drift.embedding_drift(zero, zero, column="e")
    with pytest.raises(ParameterError, match="metric"):
        drift.embedding_drift(ref, ref, column="e", metric="manhattan")

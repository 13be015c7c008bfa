"""PCA reconstruction-error drift: kernels agree with scikit-learn, joint shifts raise the error."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from aiops_lab.drift.reconstruction import reconstruction_drift
from aiops_lab.errors import ColumnNotFoundError, InputError, ParameterError

# -- the analysis ---------------------------------------------------------------------------


def _gaussian(rho: float, n: int, seed: int) -> pl.DataFrame:
    """Five standard-normal columns; ``a`` and ``b`` correlated by ``rho``."""
    rng = np.random.default_rng(seed)
    cov = np.eye(5)
    cov[0, 1] = cov[1, 0] = rho
    x = rng.multivariate_normal(np.zeros(5), cov, size=n)
    return pl.DataFrame({name: x[:, i] for i, name in enumerate("abcde")})


def test_flipped_correlation_raises_the_error_while_marginals_stay_put():
    ref, cur = _gaussian(0.8, 4000, 1), _gaussian(-0.8, 1000, 2)
    for column in ref.columns:
        assert stats.ks_2samp(ref[column], cur[column]).pvalue > 0.05
    result = reconstruction_drift(ref, cur)
    current = result.current
    assert current.height == 1
    assert current["error"][0] > current["upper"][0]
    assert result.alert
    assert result.summary["n_alerts"] == 1
    assert result.summary["band"] == "reference windows"
    assert result.summary["n_reference_windows"] == 4


def test_same_distribution_stays_within_the_band():
    result = reconstruction_drift(_gaussian(0.8, 4000, 3), _gaussian(0.8, 1000, 4), chunk_size=250)
    current = result.current
    assert current.height == 4
    assert not current["alert"].any()
    assert not result.alert
    assert result.headline.startswith("no joint drift")


def test_window_error_and_band_from_an_independent_computation():
    ref, cur = _gaussian(0.8, 1200, 5), _gaussian(-0.8, 600, 6)
    result = reconstruction_drift(ref, cur, chunk_size=300, variance=0.5, sigmas=2.0)
    scaler = StandardScaler().fit(ref.to_numpy())
    pca = PCA(n_components=0.5, svd_solver="full").fit(scaler.transform(ref.to_numpy()))

    def errors(frame: pl.DataFrame) -> np.ndarray:
        z = scaler.transform(frame.to_numpy())
        return np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)

    ref_windows = errors(ref).reshape(4, 300).mean(axis=1)
    cur_windows = errors(cur).reshape(2, 300).mean(axis=1)
    table = result.table
    assert table["period"].to_list() == ["reference"] * 4 + ["current"] * 2
    np.testing.assert_allclose(table["error"].to_numpy(), np.r_[ref_windows, cur_windows])
    centre, spread = errors(ref).mean(), ref_windows.std(ddof=1)
    np.testing.assert_allclose(table["upper"][0], centre + 2.0 * spread)
    np.testing.assert_allclose(table["lower"][0], centre - 2.0 * spread)
    assert result.summary["n_components"] == pca.n_components_


def test_time_windows_and_categoricals():
    ref, cur = _gaussian(0.8, 2000, 7), _gaussian(0.8, 960, 8)
    rng = np.random.default_rng(9)
    ref = ref.with_columns(pl.Series("zone", rng.choice(["eu", "us"], ref.height)))
    start = datetime(2024, 3, 1)
    cur = cur.with_columns(
        pl.Series("zone", np.where(np.arange(cur.height) < 480, "eu", "apac")),
        pl.Series("ts", [start + timedelta(minutes=6 * i) for i in range(cur.height)]),
    )
    result = reconstruction_drift(ref, cur, time_column="ts", window="1d")
    current = result.current
    assert current["window_start"].to_list() == [start, start + timedelta(days=1), start + timedelta(days=2), start + timedelta(days=3)]  # fmt: skip
    assert current["n"].to_list() == [240] * 4
    # day 1: only "eu" (a seen level, odd mix); days 3-4: "apac", never seen in the reference
    assert current["alert"].to_list()[2:] == [True, True]
    assert "zone=(other)" in result.features
    assert result.summary["first_alert"] is not None
    assert "mark" in str(result.chart("errors").to_dict())


def test_single_reference_window_uses_the_standard_error():
    ref, cur = _gaussian(0.8, 500, 10), _gaussian(0.8, 500, 11)
    result = reconstruction_drift(ref, cur)
    assert result.summary["band"] == "standard error"
    row = result.table.row(0, named=True)
    scaler = StandardScaler().fit(ref.to_numpy())
    z = scaler.transform(ref.to_numpy())
    pca = PCA(n_components=0.65, svd_solver="full").fit(z)
    e = np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)
    assert row["upper"] == pytest.approx(e.mean() + 3.0 * e.std(ddof=1) / np.sqrt(500))


def test_result_serialises():
    result = reconstruction_drift(_gaussian(0.8, 600, 12), _gaussian(-0.8, 200, 13))
    data = result.to_dict()
    assert data["summary"]["alert"] is True
    assert set(result.tables()) == {"table", "components"}
    assert result.components["kept"].sum() == result.summary["n_components"]
    assert result.table.columns == [
        "period", "window_start", "window_end", "n", "error", "lower", "upper", "alert",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"variance": 1.0}, "variance"),
        ({"sigmas": 0}, "sigmas"),
        ({"window": "1d"}, "time_column"),
        ({"window": "1d", "chunk_size": 10, "time_column": "a"}, "window"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"time_column": "a", "window": "every day"}, "window"),
    ],
)
def test_bad_parameters_name_themselves(kwargs, name):
    ref = _gaussian(0.8, 50, 1)
    with pytest.raises(ParameterError, match=name):
        reconstruction_drift(ref, ref, **kwargs)


def test_bad_inputs_give_clear_errors():
    ref = _gaussian(0.8, 50, 1)
    with pytest.raises(ColumnNotFoundError, match="'zz'"):
        reconstruction_drift(ref, ref, columns=["a", "zz"])
    with pytest.raises(ColumnNotFoundError, match="'ts'"):
        reconstruction_drift(ref, ref, time_column="ts")
    with pytest.raises(InputError, match="at least 2 reference rows"):
        reconstruction_drift(ref.head(1), ref)

"""The bundled credit-risk datasets: API, reproducibility and the injected drifts."""

from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from aiops_lab import datasets
from aiops_lab.errors import InputError, ParameterError

SCRIPT = Path(__file__).resolve().parents[1] / "datasets" / "make_datasets.py"
UTC = timezone.utc
STATIONARY_NUMERIC = ["age", "credit_score", "loan_amount", "num_open_accounts", "employment_years"]
STATIONARY_CATEGORICAL = ["region", "home_ownership", "loan_purpose"]


def day(d: int) -> datetime:
    return datetime(2026, 10, d, tzinfo=UTC)


@pytest.fixture(scope="module")
def ref() -> pl.DataFrame:
    return datasets.load("credit_reference")


@pytest.fixture(scope="module")
def prod() -> pl.DataFrame:
    return datasets.load("credit_production")


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_datasets", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def between(frame: pl.DataFrame, start: datetime | None, end: datetime | None) -> pl.DataFrame:
    """Rows with start <= timestamp < end (open bounds when None)."""
    if start is not None:
        frame = frame.filter(pl.col("timestamp") >= start)
    if end is not None:
        frame = frame.filter(pl.col("timestamp") < end)
    return frame


def ks_p(a: pl.DataFrame, b: pl.DataFrame, column: str) -> float:
    return float(stats.ks_2samp(a[column].drop_nulls(), b[column].drop_nulls()).pvalue)


def chi2_p(a: pl.DataFrame, b: pl.DataFrame, column: str) -> float:
    levels = sorted(set(a[column].unique()) | set(b[column].unique()))
    table = [[(f[column] == level).sum() for level in levels] for f in (a, b)]
    return float(stats.chi2_contingency(table).pvalue)


def share(frame: pl.DataFrame, column: str, value: str) -> float:
    return float((frame[column] == value).mean())


def null_fraction(frame: pl.DataFrame, column: str) -> float:
    return frame[column].null_count() / frame.height


def auc(frame: pl.DataFrame) -> float:
    labelled = frame.filter(pl.col("label").is_not_null())
    y, s = labelled["label"].to_numpy(), labelled["score"].to_numpy()
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    return float(u / ((y == 1).sum() * (y == 0).sum()))


# --- API -----------------------------------------------------------------------------


def test_list_is_sorted_names() -> None:
    assert datasets.list() == ["credit_production", "credit_reference"]
    assert datasets.__all__ == ["list", "load", "path", "describe", "data_dir", "resolve_path"]


def test_path_points_at_parquet() -> None:
    for name in datasets.list():
        p = datasets.path(name)
        assert p.is_file()
        assert p.name == f"{name}.parquet"


def test_load_eager_and_lazy(ref: pl.DataFrame) -> None:
    lazy = datasets.load("credit_reference", lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    assert isinstance(ref, pl.DataFrame)
    assert_frame_equal(lazy.collect(), ref)


def test_describe() -> None:
    table = datasets.describe()
    assert table.columns == ["name", "rows", "columns", "description"]
    assert table["name"].to_list() == datasets.list()
    rows = dict(zip(table["name"], table["rows"], strict=True))
    assert rows["credit_reference"] == 20_000
    assert 55_000 < rows["credit_production"] < 65_000
    assert table["columns"].to_list() == [17, 17]


@pytest.mark.parametrize("call", [datasets.load, datasets.path])
def test_unknown_name(call) -> None:
    with pytest.raises(ParameterError, match="credit_reference") as info:
        call("credit")
    assert info.value.name == "name"
    assert info.value.got == "credit"
    assert "credit_production" in info.value.expected


def test_missing_file_says_how_to_regenerate(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(datasets, "_data_dir", lambda: tmp_path)
    with pytest.raises(InputError, match=r"python datasets/make_datasets\.py") as info:
        datasets.load("credit_production")
    assert str(tmp_path / "credit_production.parquet") in str(info.value)


# --- schema and reproducibility --------------------------------------------------------


def test_schema(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    assert ref.schema == prod.schema
    assert ref.schema["timestamp"] == pl.Datetime("us", "UTC")
    for column in ["age", "credit_score", "num_open_accounts", "prediction", "label"]:
        assert ref.schema[column] == pl.Int64
    for column in ["income", "loan_amount", "debt_to_income", "employment_years", "utilization"]:
        assert ref.schema[column] == pl.Float64
    assert ref["request_id"].n_unique() == ref.height
    assert prod["request_id"].n_unique() == prod.height
    assert ref["age"].min() >= 18
    assert ref["age"].max() <= 90
    assert ref["credit_score"].min() >= 300
    assert ref["credit_score"].max() <= 850
    assert 0 <= ref["utilization"].min() <= ref["utilization"].max() <= 1
    assert set(ref["channel"]) == {"web", "mobile", "branch"}
    assert ref["label"].null_count() == 0
    assert ref["timestamp"].is_sorted()
    assert prod["timestamp"].is_sorted()


def test_time_ranges(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    assert ref["timestamp"].min() >= datetime(2026, 9, 1, tzinfo=UTC)
    assert ref["timestamp"].max() < datetime(2026, 10, 1, tzinfo=UTC)
    per_day = prod.group_by(pl.col("timestamp").dt.date()).len().sort("timestamp")
    assert per_day.height == 30
    assert per_day["timestamp"][-1].isoformat() == "2026-10-30"
    weekend = per_day.filter(pl.col("timestamp").dt.weekday() >= 6)["len"]
    weekday = per_day.filter(pl.col("timestamp").dt.weekday() < 6)["len"]
    assert weekend.max() < weekday.min()


def test_regenerating_gives_the_committed_files(script: ModuleType) -> None:
    frames = script.generate()
    assert sorted(frames) == datasets.list()
    for name, frame in frames.items():
        assert_frame_equal(frame, datasets.load(name))


def test_score_is_a_function_of_the_features(script: ModuleType, prod: pl.DataFrame) -> None:
    features = {c: prod[c].to_numpy() for c in prod.columns[2:14]}  # nulls become NaN
    expected = 1 / (1 + np.exp(-script.model_logit(features)))
    np.testing.assert_allclose(prod["score"].to_numpy(), expected, atol=1e-6)
    assert (prod["prediction"] == (prod["score"] >= script.THRESHOLD).cast(pl.Int64)).all()


# --- injected drifts -------------------------------------------------------------------


def test_reference_is_calibrated(ref: pl.DataFrame) -> None:
    assert abs(ref["score"].mean() - ref["label"].mean()) < 0.01
    assert 0.05 < ref["prediction"].mean() < 0.35
    assert auc(ref) > 0.75


def test_stationary_columns_do_not_drift(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    for column in STATIONARY_NUMERIC:
        assert ks_p(ref, prod, column) > 0.001, column
    for column in STATIONARY_CATEGORICAL:
        assert chi2_p(ref, prod, column) > 0.001, column


def test_no_drift_in_the_first_week(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    week = between(prod, None, day(8))
    for column in ["income", "debt_to_income", "utilization", "score"]:
        assert ks_p(ref, week, column) > 0.001, column
    assert chi2_p(ref, week, "channel") > 0.001
    assert null_fraction(week, "utilization") == 0


def test_income_drift(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(8)), between(prod, day(11), None)
    assert ks_p(before, after, "income") < 1e-6
    assert ks_p(ref, between(prod, day(11), day(12)), "income") < 1e-6  # one day suffices
    ratio = after["income"].median() / pl.concat([ref, before])["income"].median()
    assert 0.80 < ratio < 0.90
    # an undrifted column over the same split
    assert ks_p(before, after, "age") > 0.001


def test_channel_drift_adds_partner(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(15)), between(prod, day(15), None)
    assert share(ref, "channel", "partner") == 0
    assert share(before, "channel", "partner") == 0
    assert 0.22 < share(after, "channel", "partner") < 0.28
    assert share(before, "channel", "web") - share(after, "channel", "web") > 0.1
    assert chi2_p(before, after, "region") > 0.001


def test_utilization_nulls(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(20)), between(prod, day(20), None)
    assert null_fraction(ref, "utilization") == 0
    assert null_fraction(before, "utilization") == 0
    assert 0.13 < null_fraction(after, "utilization") < 0.17
    # the values that arrive are unchanged
    assert ks_p(before, after, "utilization") > 0.001
    # the baseline nulls in employment_years stay at about 2 %
    for frame in (ref, before, after):
        assert 0.01 < null_fraction(frame, "employment_years") < 0.03


def test_concept_drift(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(22)), between(prod, day(22), None)
    assert ks_p(before, after, "debt_to_income") < 1e-6
    assert ks_p(ref, between(prod, day(22), day(23)), "debt_to_income") < 1e-6
    assert ks_p(between(prod, day(11), day(22)), after, "score") < 1e-6
    assert after["debt_to_income"].mean() - before["debt_to_income"].mean() > 0.08
    # outcomes: more defaults than the score predicts, and worse ranking and accuracy
    labelled = after.filter(pl.col("label").is_not_null())
    assert labelled["label"].mean() - labelled["score"].mean() > 0.08
    assert abs(before["label"].mean() - before["score"].mean()) < 0.02
    assert auc(before) - auc(labelled) > 0.04

    def accuracy(f: pl.DataFrame) -> float:
        return float((f["prediction"] == f["label"]).mean())

    assert accuracy(before) - accuracy(labelled) > 0.05
    assert ks_p(before, after, "credit_score") > 0.001


def test_labels_are_delayed_seven_days(prod: pl.DataFrame) -> None:
    cutoff = day(24)
    late = prod["timestamp"] >= cutoff
    assert (prod["label"].is_null() == late).all()
    assert between(prod, day(23), cutoff)["label"].null_count() == 0


def test_resolve_path_names_bundled_files():
    assert datasets.resolve_path("bundled:credit_reference.parquet") == datasets.path(
        "credit_reference"
    )
    assert datasets.resolve_path("some/file.csv").name == "file.csv"

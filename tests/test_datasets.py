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
CREDIT = ["credit_production", "credit_reference"]


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
    names = datasets.list()
    assert names == sorted(names)
    assert [n for n in names if "/" not in n] == CREDIT
    assert datasets.__all__ == ["list", "load", "path", "describe", "data_dir", "resolve_path"]


def test_path_points_at_parquet() -> None:
    for name in CREDIT:
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
    assert table.columns == ["name", "rows", "columns", "description", "reader"]
    assert table["name"].to_list() == datasets.list()
    rows = dict(zip(table["name"], table["rows"], strict=True))
    assert rows["credit_reference"] == 20_000
    assert 55_000 < rows["credit_production"] < 65_000
    credit = table.filter(pl.col("name").is_in(CREDIT))
    assert credit["columns"].to_list() == [18, 18]


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


# --- the GPU and FinOps files in the listing --------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "datasets"


def data_files(folder: str) -> set[str]:
    """The data files of a datasets/ subfolder, found on disk (no README, no generator)."""
    return {
        f"{folder}/{f.relative_to(DATA / folder).as_posix()}"
        for f in (DATA / folder).rglob("*")
        if f.is_file() and f.suffix not in (".md", ".py")
    }


def test_listing_names_every_gpu_and_finops_file() -> None:
    names = datasets.list()
    assert {n for n in names if n.startswith("gpu/")} == data_files("gpu")
    assert {n for n in names if n.startswith("finops/")} == data_files("finops")
    assert set(names) == set(CREDIT) | data_files("gpu") | data_files("finops")
    for name in names:
        if "/" in name:  # the name is what follows "bundled:"
            assert datasets.path(name) == datasets.resolve_path(f"bundled:{name}")
            assert datasets.path(name).is_file()


def test_every_dataset_has_a_description_and_a_reader() -> None:
    table = datasets.describe()
    assert table["description"].str.len_chars().min() > 20
    readers = dict(zip(table["name"], table["reader"], strict=True))
    assert readers["credit_reference"] == "polars.read_parquet"
    assert readers["gpu/sacct.txt"] == "aiops_lab.gpu.read_sacct"
    assert readers["finops/ai_spend_focus.csv.gz"] == "aiops_lab.finops.read_focus"
    assert readers["finops/genai_spans.jsonl.gz"] == "aiops_lab.finops.read_token_usage"
    # row counts come from Parquet metadata only; raw exports are not parsed to list them
    files = table.filter(pl.col("name").str.contains("/"))
    assert files["rows"].null_count() == files.height


def test_credit_production_description_names_the_multivariate_drifts() -> None:
    text = datasets.describe().filter(pl.col("name") == "credit_production")["description"][0]
    assert "employment_years" in text
    assert "10-17" in text
    assert "purpose_embedding" in text
    assert "10-26" in text


def test_load_parses_raw_files_with_their_reader() -> None:
    import csv
    import gzip
    import json

    sacct = (DATA / "gpu" / "sacct.txt").read_text().splitlines()
    job_lines = [line for line in sacct[1:] if line and "." not in line.split("|")[0]]
    jobs = datasets.load("gpu/sacct.txt")
    assert jobs.height == len(job_lines) == 220
    assert sorted(jobs["job_id"].to_list()) == sorted(line.split("|")[0] for line in job_lines)

    with gzip.open(DATA / "finops" / "ai_spend_focus.csv.gz", "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    bill = datasets.load("finops/ai_spend_focus.csv.gz")
    assert bill.height == len(rows)
    plain_sum = sum(float(r["EffectiveCost"]) for r in rows if r["EffectiveCost"] != "NULL")
    assert bill["EffectiveCost"].sum() == pytest.approx(plain_sum, rel=1e-12)

    with gzip.open(DATA / "finops" / "genai_spans.jsonl.gz", "rt") as fh:
        spans = [json.loads(line) for line in fh if line.strip()]
    calls = datasets.load("finops/genai_spans.jsonl.gz")
    assert calls.height == len(spans)
    assert set(calls["model"].drop_nulls()) >= {"gpt-4o-mini", "gemini-2.0-flash"}


def test_load_lazy_on_a_raw_file() -> None:
    lazy = datasets.load("gpu/prices.csv", lazy=True)
    assert isinstance(lazy, pl.LazyFrame)
    eager = datasets.load("gpu/prices.csv")
    assert_frame_equal(lazy.collect(), eager)
    lines = (DATA / "gpu" / "prices.csv").read_text().strip().splitlines()
    assert eager.height == len(lines) - 1


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("gpu/sacct.txt", r"python datasets/make_gpu_datasets\.py"),
        ("finops/genai_spans.jsonl.gz", r"python datasets/finops/make_finops_datasets\.py"),
        ("finops/focus1.0_sample_1000rows.csv", "FOCUS Sample Data"),
    ],
)
def test_missing_raw_file_says_where_it_comes_from(monkeypatch, tmp_path: Path, name, hint) -> None:
    monkeypatch.setattr(datasets, "_data_dir", lambda: tmp_path)
    with pytest.raises(InputError, match=hint) as info:
        datasets.load(name)
    assert str(tmp_path / name) in str(info.value)


# --- schema and reproducibility --------------------------------------------------------


def test_schema(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    assert ref.schema == prod.schema
    assert ref.schema["timestamp"] == pl.Datetime("us", "UTC")
    for column in ["age", "credit_score", "num_open_accounts", "prediction", "label"]:
        assert ref.schema[column] == pl.Int64
    for column in ["income", "loan_amount", "debt_to_income", "employment_years", "utilization"]:
        assert ref.schema[column] == pl.Float64
    assert ref.schema["purpose_embedding"] == pl.Array(pl.Float32, 16)
    assert ref.columns.index("purpose_embedding") == ref.columns.index("loan_purpose") + 1
    assert ref["purpose_embedding"].null_count() == 0
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
    assert sorted(frames) == CREDIT
    for name, frame in frames.items():
        assert_frame_equal(frame, datasets.load(name))


def test_score_is_a_function_of_the_features(script: ModuleType, prod: pl.DataFrame) -> None:
    features = {c: prod[c].to_numpy() for c in prod.columns[2:14]}  # nulls become NaN
    assert "purpose_embedding" not in features
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


# --- joint shift (e) and embedding drift (f) --------------------------------------------


def age_employment(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    known = frame.filter(pl.col("employment_years").is_not_null())
    return known["age"].to_numpy(), known["employment_years"].to_numpy()


def age_employment_corr(frame: pl.DataFrame) -> float:
    return float(np.corrcoef(*age_employment(frame))[0, 1])


def over_age_cap(frame: pl.DataFrame) -> float:
    """Share of rows with more years at the employer than years since turning 18."""
    age, employment = age_employment(frame)
    return float((employment > age - 18).sum() / frame.height)


def embeddings(frame: pl.DataFrame) -> np.ndarray:
    return frame["purpose_embedding"].to_numpy().astype(np.float64)


def nearest_reference_cosine(frame: pl.DataFrame, ref: pl.DataFrame) -> np.ndarray:
    """For each row of ``frame``, the cosine of its most similar reference embedding."""
    e, r = embeddings(frame), embeddings(ref).T
    return np.concatenate([(e[i : i + 4096] @ r).max(axis=1) for i in range(0, len(e), 4096)])


def test_joint_shift_breaks_age_and_employment(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(17)), between(prod, day(17), None)
    assert 0.15 < age_employment_corr(ref) < 0.25
    assert 0.15 < age_employment_corr(before) < 0.25
    assert abs(age_employment_corr(after)) < 0.05
    # employment_years <= age - 18 holds for every row until the bad join
    assert over_age_cap(ref) == over_age_cap(before) == 0
    assert 0.06 < over_age_cap(after) < 0.10
    for d in range(17, 31):  # one day of data shows it
        one_day = between(prod, day(d), day(d + 1) if d < 30 else None)
        assert age_employment_corr(one_day) < 0.08, d
        assert over_age_cap(one_day) > 0.05, d
    for d in (1, 8, 16):
        assert age_employment_corr(between(prod, day(d), day(d + 1))) > 0.12, d


def test_joint_shift_is_invisible_per_column(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    before, after = between(prod, None, day(17)), between(prod, day(17), None)
    for column in ["age", "employment_years"]:
        assert ks_p(ref, after, column) > 0.001, column
        assert ks_p(before, after, column) > 0.001, column
        for d in (17, 18, 24, 30):
            one_day = between(prod, day(d), day(d + 1) if d < 30 else None)
            assert ks_p(ref, one_day, column) > 0.001, (column, d)
    assert 0.01 < null_fraction(after, "employment_years") < 0.03


def test_joint_shift_keeps_each_days_values(script: ModuleType) -> None:
    """The bad join only re-pairs: each day holds the same employment_years as without it."""
    ts = np.sort(np.random.default_rng(0).integers(0, 3 * 86_400, 900)) * 1_000_000
    ts += script._us(script.JOINT_SHIFT) - 86_400_000_000  # the day before and two after
    values = np.round(np.random.default_rng(1).gamma(2.0, 3.0, ts.size), 1)
    values[::50] = np.nan
    joined = script._rejoin_within_day(np.random.default_rng(2), ts, values)
    first = ts < script._us(script.JOINT_SHIFT)
    np.testing.assert_array_equal(joined[first], values[first])
    for d in np.unique(ts // 86_400_000_000):
        same_day = ts // 86_400_000_000 == d
        np.testing.assert_array_equal(np.sort(joined[same_day]), np.sort(values[same_day]))
    moved = ~first & ~np.isnan(values)
    assert (joined[moved] != values[moved]).mean() > 0.9


def test_embeddings_are_unit_vectors_around_purpose_centres(
    script: ModuleType, ref: pl.DataFrame
) -> None:
    e = embeddings(ref)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, atol=5e-4)
    centres, template = script.topic_centres(np.random.default_rng([script.SEED, 1]))
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1, atol=1e-12)
    own = np.array([script.PURPOSES[0].index(p) for p in ref["loan_purpose"]])
    assert (np.argmax(e @ centres.T, axis=1) == own).mean() > 0.99
    # the purpose means recovered from the data alone are distinct topics
    means = np.array([e[own == k].mean(axis=0) for k in range(len(centres))])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    off_diagonal = (means @ means.T)[~np.eye(len(centres), dtype=bool)]
    assert off_diagonal.max() < 0.8
    assert np.abs(centres @ template).max() < 0.1


def test_embedding_drift_adds_a_far_cluster(
    script: ModuleType, ref: pl.DataFrame, prod: pl.DataFrame
) -> None:
    _, template = script.topic_centres(np.random.default_rng([script.SEED, 1]))
    before, after = between(prod, None, day(26)), between(prod, day(26), None)
    assert (embeddings(ref) @ template).max() < 0.7
    assert (embeddings(before) @ template).max() < 0.7
    near = embeddings(after) @ template > 0.8
    assert 0.20 < near.mean() < 0.28
    # the templated rows are the partner's applications
    assert (near == (after["channel"] == "partner").to_numpy()).all()
    # no reference row is near them, while every earlier row has a close reference neighbour
    nearest = nearest_reference_cosine(after, ref)
    assert nearest[near].max() < 0.8
    assert (nearest_reference_cosine(before, ref) < 0.8).mean() < 0.001


def test_embedding_drift_shows_on_one_day(ref: pl.DataFrame, prod: pl.DataFrame) -> None:
    centroid = embeddings(ref).mean(axis=0)
    centroid /= np.linalg.norm(centroid)

    def centroid_cosine(frame: pl.DataFrame) -> float:
        m = embeddings(frame).mean(axis=0)
        return float(m @ centroid / np.linalg.norm(m))

    for d in (1, 15, 25):
        assert centroid_cosine(between(prod, day(d), day(d + 1))) > 0.995, d
    for d in (26, 27, 30):
        one_day = between(prod, day(d), day(d + 1) if d < 30 else None)
        assert centroid_cosine(one_day) < 0.95, d
        assert (nearest_reference_cosine(one_day, ref) < 0.8).mean() > 0.15, d
    # the loan purposes themselves keep their mix
    assert chi2_p(ref, between(prod, day(26), None), "loan_purpose") > 0.001

"""Regenerate the bundled credit-risk monitoring datasets.

Run ``python datasets/make_datasets.py`` from the repository root. The output is
deterministic (NumPy ``default_rng(20261127)``) and is written next to this script
as zstd-compressed Parquet:

* ``credit_reference.parquet``: the model's validation period, September 2026.
* ``credit_production.parquet``: 30 days of production, October 2026, with six
  injected drifts and labels that arrive 7 days late.

The embedding column and drifts e and f draw only from a second generator,
``default_rng([20261127, 1])``, so the first one makes the same draws as before they
were added, and every other column keeps its values (apart from ``employment_years``,
``score`` and ``prediction`` from drift e's date on, which drift e changes on purpose).

See ``datasets/README.md`` for the scenario, the schema and the drift schedule.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20261127
OUT_DIR = Path(__file__).resolve().parent
UTC = timezone.utc

REFERENCE_START, REFERENCE_DAYS, REFERENCE_ROWS = datetime(2026, 9, 1, tzinfo=UTC), 30, 20_000
PRODUCTION_START, PRODUCTION_DAYS = datetime(2026, 10, 1, tzinfo=UTC), 30
ROWS_PER_WEEKDAY, ROWS_PER_WEEKEND_DAY = 2_150, 1_650

# Drift schedule (UTC). Every date is the first day the drift is in effect.
INCOME_DRIFT = datetime(2026, 10, 8, tzinfo=UTC)  # income x1.00 -> x0.85 over 3 days
INCOME_RAMP_DAYS, INCOME_FACTOR = 3, 0.85
CHANNEL_DRIFT = datetime(2026, 10, 15, tzinfo=UTC)  # new "partner" channel, 25 % share
UTILIZATION_NULLS = datetime(2026, 10, 20, tzinfo=UTC)  # 15 % of utilization is null
UTILIZATION_NULL_RATE = 0.15
CONCEPT_DRIFT = datetime(2026, 10, 22, tzinfo=UTC)  # riskier borrowers, debt_to_income up
DTI_SHIFT, CONCEPT_LOGIT_SHIFT, CONCEPT_LOGIT_NOISE = 0.10, 0.6, 1.5
LABEL_CUTOFF = datetime(2026, 10, 24, tzinfo=UTC)  # labels are null from here on (7-day delay)
JOINT_SHIFT = datetime(2026, 10, 17, tzinfo=UTC)  # employment_years re-paired within the day
EMBEDDING_DRIFT = datetime(2026, 10, 26, tzinfo=UTC)  # partner descriptions come from a template

THRESHOLD = 0.3  # prediction = score >= THRESHOLD
EMPLOYMENT_NULL_RATE = 0.02

REGIONS = (["north", "south", "east", "west", "central"], [0.22, 0.20, 0.18, 0.20, 0.20])
HOME = (["rent", "own", "mortgage"], [0.40, 0.20, 0.40])
PURPOSES = (
    ["debt_consolidation", "credit_card", "home_improvement", "auto", "medical", "small_business"],
    [0.35, 0.20, 0.15, 0.12, 0.08, 0.10],
)
CHANNELS = ["web", "mobile", "branch", "partner"]
CHANNEL_P_BEFORE = [0.50, 0.35, 0.15, 0.00]
CHANNEL_P_AFTER = [0.35, 0.28, 0.12, 0.25]

# The production model: a fixed logistic model of the features. Before the concept
# drift it is also the true default model, so the score is calibrated on the reference.
INTERCEPT = -2.2
LEVEL_EFFECTS = {
    "home_ownership": {"rent": 0.15, "own": -0.10, "mortgage": -0.05},
    "loan_purpose": {"debt_consolidation": 0.10, "credit_card": 0.05, "home_improvement": -0.10,
                     "auto": -0.15, "medical": 0.15, "small_business": 0.35},
    "channel": {"web": 0.0, "mobile": 0.05, "branch": -0.10},  # unseen levels count 0
}  # fmt: skip
EMPLOYMENT_IMPUTE = 5.5  # the model's fill-in for a null employment_years
UTILIZATION_IMPUTE = 0.35  # the model's fill-in for a null utilization

# The description embedding: unit vectors around one topic centre per loan purpose. Every
# centre is a shared direction (what all loan descriptions have in common) plus a direction
# of its own; the partner template's centre (drift f) is built orthogonal to all of them
# but for a small share of the shared direction, so no purpose's rows come near it.
EMBEDDING_DIM = 16
SHARED_WEIGHT, TEMPLATE_SHARED_WEIGHT = 0.6, 0.15
EMBEDDING_NOISE, TEMPLATE_NOISE = 0.15, 0.08  # per-coordinate sd before normalising


def _us(t: datetime) -> int:
    """Microseconds since the Unix epoch."""
    return int(t.timestamp()) * 1_000_000


def _rows_per_day(start: datetime, days: int) -> np.ndarray:
    """Expected requests per day: fewer on Saturdays and Sundays."""
    weekend = np.array([(start + timedelta(d)).weekday() >= 5 for d in range(days)])
    return np.where(weekend, ROWS_PER_WEEKEND_DAY, ROWS_PER_WEEKDAY)


def _timestamps(rng: np.random.Generator, start: datetime, per_day: np.ndarray) -> np.ndarray:
    """Sorted epoch-microsecond timestamps, ``per_day[i]`` of them uniform on day ``i``."""
    day = np.repeat(np.arange(per_day.size), per_day)
    seconds = rng.integers(0, 86_400, size=day.size)
    return np.sort(_us(start) + (day * 86_400 + seconds) * 1_000_000)


def _categorical(rng: np.random.Generator, n: int, levels: list[str], p: object) -> np.ndarray:
    """Draw ``n`` levels; ``p`` holds the shares, shape (n_levels,) or (n, n_levels)."""
    cum = np.cumsum(np.atleast_2d(np.asarray(p, dtype=float)), axis=1)
    cum /= cum[:, -1:]  # the last level ends at exactly 1.0, so a zero share is never drawn
    idx = (rng.random(n)[:, None] >= cum).sum(axis=1)
    return np.asarray(levels, dtype=object)[idx]


def model_logit(f: dict[str, np.ndarray]) -> np.ndarray:
    """Log-odds of default under the production model (nulls take fixed fill-ins)."""
    employment = np.where(np.isnan(f["employment_years"]), EMPLOYMENT_IMPUTE, f["employment_years"])
    utilization = np.where(np.isnan(f["utilization"]), UTILIZATION_IMPUTE, f["utilization"])
    z = (
        INTERCEPT
        - 0.90 * (f["credit_score"] - 690) / 70
        + 0.55 * (f["debt_to_income"] - 0.28) / 0.13
        + 0.50 * (utilization - 0.36) / 0.19
        - 0.35 * (np.log(f["income"]) - 10.9) / 0.5
        + 0.25 * (np.log(f["loan_amount"]) - 9.6) / 0.7
        - 0.15 * (employment - 6.0) / 4.5
        - 0.10 * (f["age"] - 42) / 13
        + 0.05 * (f["num_open_accounts"] - 5) / 2.2
    )
    for column, effects in LEVEL_EFFECTS.items():
        for level, effect in effects.items():
            z = z + effect * (f[column] == level)
    return z


def topic_centres(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unit centres, one row per loan purpose (in ``PURPOSES`` order), and the template's."""
    shared = rng.standard_normal(EMBEDDING_DIM)
    shared /= np.linalg.norm(shared)
    own = rng.standard_normal((len(PURPOSES[0]), EMBEDDING_DIM))
    own -= np.outer(own @ shared, shared)  # each purpose's own direction is orthogonal to shared
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    # the template's own direction: orthogonal to the shared one and to every purpose's
    q, _ = np.linalg.qr(np.column_stack([shared, own.T]), mode="complete")
    unit = np.vstack([SHARED_WEIGHT * shared + own, TEMPLATE_SHARED_WEIGHT * shared + q[:, -1]])
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    return unit[:-1], unit[-1]


def _embed(
    rng: np.random.Generator,
    purpose: np.ndarray,
    templated: np.ndarray,
    centres: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """One unit vector per row: its purpose's centre (or the template's) plus noise.

    The values are rounded to float16 precision (as vector stores often keep embeddings)
    and returned as float32; the norms are 1 to within 5e-4, and the files stay small.
    """
    purpose_centres, template = centres
    position = {level: i for i, level in enumerate(PURPOSES[0])}
    index = np.array([position[level] for level in purpose], dtype=np.int64)
    centre = np.where(templated[:, None], template, purpose_centres[index])
    sd = np.where(templated, TEMPLATE_NOISE, EMBEDDING_NOISE)[:, None]
    vectors = centre + sd * rng.standard_normal((purpose.size, EMBEDDING_DIM))
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit.astype(np.float16).astype(np.float32)


def _rejoin_within_day(rng: np.random.Generator, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Drift e: from ``JOINT_SHIFT`` on, each row gets another row's value of the same day.

    Within each UTC day the rows are put in a random cycle and each one takes the value of
    the next one, so every row's value comes from a different row and the day keeps exactly
    the same multiset of values (nulls included).
    """
    out = values.copy()
    day = ts // 86_400_000_000
    for d in np.unique(day[ts >= _us(JOINT_SHIFT)]):
        cycle = np.flatnonzero(day == d)[rng.permutation(int((day == d).sum()))]
        out[cycle] = values[np.roll(cycle, -1)]
    return out


def _simulate(
    rng: np.random.Generator,
    extra: np.random.Generator,
    ts: np.ndarray,
    centres: tuple[np.ndarray, np.ndarray],
) -> pl.DataFrame:
    """Applicants, model output and outcomes at timestamps ``ts``; drifts follow the dates.

    ``rng`` draws every column as it did before the embedding and drifts e and f were
    added; ``extra`` draws only what those need.
    """
    n = ts.size
    age = np.clip(np.rint(rng.normal(42, 13, n)), 18, 90).astype(np.int64)
    income = np.exp(10.9 + 0.006 * (age - 42) + rng.normal(0, 0.5, n))
    ramp = np.clip((ts - _us(INCOME_DRIFT)) / (INCOME_RAMP_DAYS * 86_400e6), 0, 1)
    income = np.rint(income * (1 - (1 - INCOME_FACTOR) * ramp))  # drift a
    loan_amount = np.clip(np.rint(np.exp(rng.normal(9.6, 0.7, n)) / 50) * 50, 1_000, 100_000)
    credit_score = np.clip(np.rint(rng.normal(690, 70, n)), 300, 850).astype(np.int64)
    concept = ts >= _us(CONCEPT_DRIFT)
    debt_to_income = np.round(rng.beta(2.5, 6.5, n) + DTI_SHIFT * concept, 4)  # drift d
    employment = np.round(np.minimum(rng.gamma(2.0, 3.0, n), age - 18), 1)
    employment[rng.random(n) < EMPLOYMENT_NULL_RATE] = np.nan
    num_open_accounts = rng.poisson(5, n).astype(np.int64)
    utilization = np.round(rng.beta(2.0, 3.5, n), 4)
    after = (ts >= _us(CHANNEL_DRIFT))[:, None]
    channel_p = np.where(after, CHANNEL_P_AFTER, CHANNEL_P_BEFORE)
    f = {
        "age": age,
        "income": income,
        "loan_amount": loan_amount,
        "credit_score": credit_score,
        "debt_to_income": debt_to_income,
        "employment_years": employment,
        "num_open_accounts": num_open_accounts,
        "utilization": utilization,
        "region": _categorical(rng, n, *REGIONS),
        "channel": _categorical(rng, n, CHANNELS, channel_p),  # drift b
        "home_ownership": _categorical(rng, n, *HOME),
        "loan_purpose": _categorical(rng, n, *PURPOSES),
    }
    # Truth: the model's log-odds on the true features, plus a shift and an unobserved
    # shock once the concept drift starts (the model cannot see either).
    true_logit = model_logit(f) + concept * (
        CONCEPT_LOGIT_SHIFT + rng.normal(0, CONCEPT_LOGIT_NOISE, n)
    )
    label = (rng.random(n) < 1 / (1 + np.exp(-true_logit))).astype(np.int64)
    # Drift c: a broken upstream pipeline drops utilization; the model sees the nulls.
    broken = (ts >= _us(UTILIZATION_NULLS)) & (rng.random(n) < UTILIZATION_NULL_RATE)
    f["utilization"] = np.where(broken, np.nan, utilization)
    # Below only ``extra`` draws. Drift f: the partner's form templates the description.
    templated = (ts >= _us(EMBEDDING_DRIFT)) & (f["channel"] == "partner")
    embedding = _embed(extra, f["loan_purpose"], templated, centres)
    # Drift e: a bad join; the file and the model get another applicant's employment_years,
    # while the outcome (drawn above) still follows the applicant's own.
    f["employment_years"] = _rejoin_within_day(extra, ts, employment)
    score = np.round(1 / (1 + np.exp(-model_logit(f))), 6)

    stamp = pl.from_epoch(pl.Series("timestamp", ts), time_unit="us").dt.replace_time_zone("UTC")
    frame = pl.DataFrame({"timestamp": stamp, **f, "score": score, "label": label}).with_columns(
        pl.Series("purpose_embedding", embedding, dtype=pl.Array(pl.Float32, EMBEDDING_DIM))
    )
    seq = pl.int_range(1, pl.len() + 1).over(pl.col("timestamp").dt.date())
    return frame.select(  # request_id: "<yyyymmdd>-<n-th request of the day>"
        pl.format(
            "{}-{}", pl.col("timestamp").dt.strftime("%Y%m%d"), seq.cast(pl.String).str.zfill(5)
        ).alias("request_id"),
        "timestamp",
        pl.col("age", "credit_score", "num_open_accounts").cast(pl.Int64),
        pl.col("income", "loan_amount", "debt_to_income").cast(pl.Float64),
        pl.col("employment_years", "utilization").fill_nan(None).cast(pl.Float64),
        pl.col("region", "channel", "home_ownership", "loan_purpose").cast(pl.String),
        "purpose_embedding",
        pl.col("score").cast(pl.Float64),
        (pl.col("score") >= THRESHOLD).cast(pl.Int64).alias("prediction"),
        pl.col("label").cast(pl.Int64),
    )


COLUMNS = ["request_id", "timestamp", "age", "income", "loan_amount", "credit_score",
           "debt_to_income", "employment_years", "num_open_accounts", "utilization", "region",
           "channel", "home_ownership", "loan_purpose", "purpose_embedding", "score", "prediction",
           "label"]  # fmt: skip


def generate(seed: int = SEED) -> dict[str, pl.DataFrame]:
    """Build both datasets in memory; the same seed always gives the same frames."""
    rng = np.random.default_rng(seed)
    extra = np.random.default_rng([seed, 1])  # never shares a draw with rng
    centres = topic_centres(extra)
    weights = _rows_per_day(REFERENCE_START, REFERENCE_DAYS)
    ref_per_day = rng.multinomial(REFERENCE_ROWS, weights / weights.sum())
    ref = _simulate(rng, extra, _timestamps(rng, REFERENCE_START, ref_per_day), centres)
    prod_per_day = rng.poisson(_rows_per_day(PRODUCTION_START, PRODUCTION_DAYS))
    prod = _simulate(rng, extra, _timestamps(rng, PRODUCTION_START, prod_per_day), centres)
    prod = prod.with_columns(  # delayed labels: not yet known at the end of the data
        pl.when(pl.col("timestamp") < LABEL_CUTOFF).then("label").alias("label")
    )
    return {"credit_reference": ref.select(COLUMNS), "credit_production": prod.select(COLUMNS)}


def main() -> None:
    """Write every dataset as ``<name>.parquet`` next to this script."""
    for name, frame in generate().items():
        target = OUT_DIR / f"{name}.parquet"
        frame.write_parquet(target, compression="zstd", statistics=True)
        print(f"wrote {target} ({frame.height:,} rows, {target.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

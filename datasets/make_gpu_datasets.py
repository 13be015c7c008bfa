"""Regenerate the synthetic GPU cluster datasets in ``datasets/gpu/``.

Run ``python datasets/make_gpu_datasets.py`` from the repository root. The output is
deterministic (NumPy ``default_rng(20261128)``, gzip with ``mtime=0``):

* ``nvidia-smi/<host>.csv.gz``: ``nvidia-smi --query-gpu=... --format=csv -l 120``, one file per host.
* ``dcgm.prom.gz``: dcgm-exporter Prometheus text scrapes of all hosts, every 10 minutes.
* ``sacct.txt``: ``sacct --parsable2`` accounting of the Slurm jobs, with their steps.
* ``prices.csv``: illustrative on-demand prices per GPU model.

Four hosts with eight GPUs each run a week of Slurm jobs (2026-10-05 .. 2026-10-11 UTC)
placed first-fit in submission order; a few jobs and windows are scripted so that known
waste patterns are present at documented times. See ``datasets/README.md``.

``generate()`` returns the ground truth in memory (one row per GPU sample, and the jobs) and
``render()`` the text of every file; ``tests/test_gpu_datasets.py`` checks one against the other.
"""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20261128
OUT_DIR = Path(__file__).resolve().parent / "gpu"
UTC = timezone.utc
START = datetime(2026, 10, 5, tzinfo=UTC)  # a Monday; the cluster comes back empty from maintenance
STEP_S, N_STEPS = 120, 7 * 720  # one nvidia-smi sample every 2 minutes for 7 days
DCGM_EVERY = 5  # one dcgm-exporter scrape every 5 samples (10 minutes)
HOSTS = ["gpu-node-01", "gpu-node-02", "gpu-node-03", "gpu-node-04"]
PARTITION = ["a100", "a100", "h100", "h100"]  # Slurm partition of each host
MODEL = {  # name, memory.total [MiB], power limit [W], idle power range [W]
    "a100": ("NVIDIA A100-SXM4-80GB", 81920, 400.0, (58.0, 72.0)),
    "h100": ("NVIDIA H100 80GB HBM3", 81559, 700.0, (70.0, 90.0)),
}
CPUS_PER_GPU, MEM_GB_PER_GPU = {"a100": 16, "h100": 24}, {"a100": 120, "h100": 240}
FIRST_JOB_ID = 48201
RATE_DAY, RATE_NIGHT, RATE_WEEKEND = 2.0, 0.6, 0.9  # submissions per hour; weekend factor
USERS = {"alice": 1001, "bob": 1002, "carol": 1003, "dana": 1004,
         "erin": 1005, "frank": 1006, "grace": 1007, "heidi": 1008}  # fmt: skip
# Background users: share of submissions, probability of the h100 partition, (train, eval) names
BACKGROUND = {
    "alice": (0.20, 0.5, ("train_llama_ft", "eval_llama")),
    "bob": (0.12, 0.0, ("pretrain_1b", "tokenize_shards")),
    "carol": (0.12, 0.3, ("bert_finetune", "ner_eval")),
    "erin": (0.14, 0.9, ("diffusion_train", "sample_images")),
    "frank": (0.14, 1.0, ("ppo_train", "rl_rollout")),
    "grace": (0.14, 0.5, ("md_sim_gpu", "protein_fold")),
    "heidi": (0.14, 0.8, ("asr_train", "asr_eval")),
}


def _s(day: int, hh: int, mm: int, ss: int = 0) -> int:
    """Seconds since START of 2026-10-<day> hh:mm:ss UTC."""
    return int((datetime(2026, 10, day, hh, mm, ss, tzinfo=UTC) - START).total_seconds())


GAP = (1, _s(7, 10, 0), _s(7, 12, 0))  # gpu-node-02 exporter down: no samples in [10:00, 12:00)
WEEKEND_IDLE = (3, [4, 5, 6, 7], _s(10, 0, 0), _s(12, 0, 0))  # gpu-node-04 GPUs 4-7, no jobs
# Scripted jobs: user, name, partition, GPUs, submit, runtime [s], time limit [h], state, pattern
SCRIPTED = [
    ("dana", "interactive", "a100", 4, _s(5, 13, 20, 41), 6 * 3600 + 1210, 8, "COMPLETED", "dana"),
    ("erin", "infer_server", "h100", 4, _s(6, 8, 31, 7), 10 * 3600 + 1333, 12, "COMPLETED", "busy"),
    ("dana", "interactive", "a100", 4, _s(6, 9, 47, 3), 7 * 3600 + 1802, 8, "CANCELLED", "dana"),
    ("bob", "pretrain_1b", "a100", 8, _s(6, 17, 55, 12), 13 * 3600 + 602, 16, "COMPLETED", "burst"),
    ("bob", "pretrain_1b", "a100", 8, _s(6, 17, 58, 40), 14 * 3600, 14, "TIMEOUT", "burst"),
    ("carol", "bert_base_finetune", "a100", 8, _s(8, 6, 52, 18), 13 * 3600 + 977, 16, "COMPLETED", "oversized"),
    ("dana", "interactive", "a100", 4, _s(8, 14, 2, 55), 5 * 3600 + 431, 8, "COMPLETED", "dana"),
    ("dana", "interactive", "a100", 4, _s(9, 10, 15, 20), 7 * 3600 + 2777, 8, "COMPLETED", "dana"),
]  # fmt: skip

GPU_COLS = ["host", "gpu", "uuid", "model", "mem_total_mib"]
NVSMI_HEADER = (
    "timestamp, index, uuid, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB], "
    "power.draw [W], temperature.gpu"
)
# dcgm-exporter metrics in the order of its counters file, HELP text from that catalogue
DCGM_METRICS = [
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", pl.col("temp_c")),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", pl.col("power_w")),
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", pl.col("util_pct")),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", pl.col("mem_total_mib") - pl.col("mem_used_mib")),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", pl.col("mem_used_mib")),
    ("DCGM_FI_PROF_SM_ACTIVE", "The ratio of cycles an SM has at least 1 warp assigned.", pl.col("sm_active")),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "Ratio of cycles the tensor (HMMA) pipe is active.", pl.col("tensor_active")),
]  # fmt: skip
SACCT_HEADER = (
    "JobID|JobName|User|Partition|State|Submit|Start|End|Elapsed|AllocTRES|TRESUsageInAve|NodeList"
)


def _prices() -> pl.DataFrame:
    note = "illustrative list price as of 2026-10 ({}); not a quote from any provider"
    rows = [
        ("NVIDIA A100-SXM4-80GB", 3.50, note.format("typical on-demand range 3.00-4.10 USD/h")),
        ("NVIDIA H100 80GB HBM3", 6.00, note.format("typical on-demand range 5.00-7.00 USD/h")),
        ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", 0.50, note.format("1/7 of the A100 80GB row")),
        ("NVIDIA A100-SXM4-80GB MIG 2g.20gb", 1.00, note.format("2/7 of the A100 80GB row")),
        ("NVIDIA L4", 0.80, note.format("24 GB GPU; typical on-demand range 0.60-1.00 USD/h")),
    ]
    frame = pl.DataFrame(rows, schema=["model", "price_per_gpu_hour_usd", "source"], orient="row")
    return frame.with_columns(as_of=pl.lit("2026-10-01"))


def _background(rng: np.random.Generator) -> list[dict]:
    """Poisson arrivals, busier on weekday daytime, with random size, runtime and fate."""
    hours = np.arange(7 * 24)
    day = (hours % 24 >= 8) & (hours % 24 < 20)
    rate = np.where(hours // 24 >= 5, RATE_WEEKEND, 1.0) * np.where(day, RATE_DAY, RATE_NIGHT)
    counts = rng.poisson(rate)
    submit = np.sort(np.repeat(hours * 3600, counts) + rng.integers(0, 3600, counts.sum()))
    n = submit.size
    names = list(BACKGROUND)
    share = np.array([BACKGROUND[u][0] for u in names])
    user = rng.choice(len(names), n, p=share / share.sum())
    h100 = rng.random(n) < np.array([BACKGROUND[names[u]][1] for u in user])
    n_gpus = rng.choice([1, 2, 4, 8], n, p=[0.4, 0.3, 0.2, 0.1])
    train = rng.random(n) < 0.65
    runtime = np.clip(rng.lognormal(np.log(2 * 3600), 0.9, n), 600, 24 * 3600)
    limit_h = np.clip(np.ceil(runtime / 3600 * rng.uniform(1.1, 2.5, n)), 1, 48)
    state = rng.choice(
        ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"], n, p=[0.8, 0.07, 0.06, 0.07]
    )
    cut = rng.uniform(0.02, 0.9, n)  # FAILED / CANCELLED jobs end early
    runtime = np.where(
        state == "TIMEOUT",
        limit_h * 3600,
        np.where(np.isin(state, ["FAILED", "CANCELLED"]), runtime * cut, runtime),
    )
    return [
        {"user": names[user[i]], "name": BACKGROUND[names[user[i]]][2][0 if train[i] else 1],
         "partition": "h100" if h100[i] else "a100", "n_gpus": int(n_gpus[i]), "submit": int(submit[i]),
         "runtime": int(runtime[i]), "limit": int(limit_h[i]), "state": str(state[i]),
         "pattern": "train" if train[i] else "eval"}
        for i in range(n)
    ]  # fmt: skip


def _schedule(jobs: list[dict], delay: np.ndarray) -> None:
    """First fit in submission order: each job gets the earliest time at which one node has
    enough GPUs free for its whole run (it may fill a gap before a job booked later)."""
    w_host, w_gpus, w_start, w_end = WEEKEND_IDLE
    booked = [(w_host * 8 + g, w_start, w_end) for g in w_gpus]  # nobody is placed there
    for job, d in zip(jobs, delay.tolist(), strict=True):
        gpu, b0, b1 = (np.array(x) for x in zip(*booked, strict=True))
        run, n = job["runtime"] + d, job["n_gpus"]
        hosts = [h for h, p in enumerate(PARTITION) if p == job["partition"]]
        for t in sorted({job["submit"], *b1[b1 > job["submit"]].tolist()}):
            taken = np.zeros(len(HOSTS) * 8, dtype=bool)
            taken[gpu[(b0 < t + run) & (b1 > t)]] = True
            free = [np.flatnonzero(~taken[h * 8 : h * 8 + 8]) for h in range(len(HOSTS))]
            fits = [(h, free[h][:n]) for h in hosts if free[h].size >= n]
            if fits:
                break
        host, idx = fits[0]
        job.update(start=t + d, end=t + run, host=host, gpus=idx.tolist())
        booked += [(host * 8 + g, t, t + run) for g in job["gpus"]]


def _profiles(rng: np.random.Generator, jobs: list[dict]) -> dict[str, np.ndarray]:
    """Per-job load profile; row 0 is the idle GPU."""
    n = len(jobs)
    pattern = np.array([j["pattern"] for j in jobs])
    h100 = np.array([j["partition"] == "h100" for j in jobs])
    train = pattern == "train"
    p = {
        "util_mu": np.where(train, rng.uniform(75, 97, n), rng.uniform(25, 65, n)),
        "util_sd": rng.uniform(2, 6, n),
        "util_lo": np.zeros(n),
        "util_hi": np.full(n, 100.0),
        "sm": np.where(train, rng.uniform(0.65, 0.92, n), rng.uniform(0.5, 0.85, n)),
        "sm_fixed": np.zeros(n, dtype=bool),
        "tensor": np.where(train, rng.uniform(0.25, 0.6, n), rng.uniform(0.05, 0.4, n)) + h100 / 10,
        "mem": np.where(train, rng.uniform(0.45, 0.95, n), rng.uniform(0.15, 0.6, n)) * 80000,
        # training jobs checkpoint every 40-90 minutes (a dip in util) and load for ~5 minutes
        "dip_every": np.where(train, rng.integers(20, 46, n), 0),
    }
    special = {  # pattern: util_mu, util_sd, util_lo, util_hi, sm, sm_fixed, tensor, mem MiB, dips
        "busy": (95.0, 1.5, 91, 99, 0.08, True, 0.01, 23500, 0),  # a spin loop polling a queue
        "oversized": (38.0, 6.0, 0, 100, 0.7, False, 0.3, 8200, 0),  # 8 x 80 GB for an 8 GB model
        "dana": (1.2, 1.0, 0, 4, 0.6, False, 0.0, 14000, 0),  # notebook kernels left open
        "burst": (93.0, 2.5, 0, 100, 0.86, False, 0.55, 76000, 30),
    }
    for name, values in special.items():
        rows = pattern == name
        for key, v in zip(p, values, strict=True):
            p[key][rows] = v
    return {k: np.concatenate([[0], v]).astype(v.dtype) for k, v in p.items()}


def _truth(rng: np.random.Generator, jobs: list[dict], p: dict, uuids: list[str]) -> pl.DataFrame:
    """Every 2-minute sample of every GPU, computed on (time, GPU) arrays."""
    t = np.arange(N_STEPS) * STEP_S
    slot = np.zeros((N_STEPS, 32), dtype=np.int64)  # 1 + job index, 0 = idle
    for j, job in enumerate(jobs):
        k0, k1 = -(-job["start"] // STEP_S), -(-job["end"] // STEP_S)
        slot[k0:k1, [job["host"] * 8 + g for g in job["gpus"]]] = j + 1
    start = np.array([0] + [j["start"] for j in jobs])[slot]
    since = t[:, None] - start
    busy = slot > 0
    pr = {k: v[slot] for k, v in p.items()}
    dip = busy & (pr["dip_every"] > 0) & ((since // STEP_S) % np.maximum(pr["dip_every"], 1) == 0)
    ramp = busy & (since < 300) & (pr["dip_every"] > 0)
    util = pr["util_mu"] + rng.normal(0, 1, slot.shape) * pr["util_sd"]
    util = np.where(dip | ramp, util * 0.15, util)
    idle_util = rng.choice([0, 1, 2], slot.shape, p=[0.85, 0.1, 0.05])
    util = np.rint(np.where(busy, np.clip(util, pr["util_lo"], pr["util_hi"]), idle_util))
    jitter = 1 + rng.normal(0, 0.03, slot.shape)
    sm = np.where(
        pr["sm_fixed"], pr["sm"] + rng.normal(0, 0.01, slot.shape), util / 100 * pr["sm"] * jitter
    )
    sm = np.round(np.clip(np.where(busy, sm, util / 200), 0, 1), 4)
    tensor = np.round(np.clip(sm * pr["tensor"] * jitter, 0, 1), 4)
    idle_mem = rng.integers(0, 500, 32)
    mem = pr["mem"] * (1 + rng.normal(0, 0.01, slot.shape)) * np.where(ramp, 0.4, 1.0)
    part = np.repeat(PARTITION, 8)
    total = np.array([MODEL[x][1] for x in part])
    mem = np.rint(np.where(busy, np.minimum(mem, total - 600), idle_mem)).astype(np.int64)
    cap = np.array([MODEL[x][2] for x in part])
    idle_w = np.array([rng.uniform(*MODEL[x][3]) for x in part])
    load = np.where(busy, 0.3 * util / 100 + 0.5 * sm + 0.4 * tensor, 0)
    power = np.minimum(
        idle_w + (cap - idle_w) * load + rng.normal(0, 1.5, slot.shape) * (1 + 2 * busy), cap
    )
    temp = np.rint(
        rng.uniform(29, 38, 32)
        + 42 * (power - idle_w) / (cap - idle_w)
        + rng.normal(0, 0.6, slot.shape)
    )
    names = np.array([""] + [j["user"] for j in jobs])
    ids = np.array([0] + [j["job_id"] for j in jobs])
    stamp = pl.datetime_range(
        START, START + timedelta(seconds=int(t[-1])), timedelta(seconds=STEP_S), eager=True
    )
    frame = pl.DataFrame({
        "timestamp": np.repeat(stamp.to_numpy(), 32),
        "host": np.tile(np.repeat(HOSTS, 8), N_STEPS),
        "gpu": np.tile(np.arange(8), 4 * N_STEPS),
        "uuid": np.tile(uuids, N_STEPS),
        "model": np.tile([MODEL[x][0] for x in part], N_STEPS),
        "util_pct": util.ravel().astype(np.int64),
        "sm_active": sm.ravel(),
        "tensor_active": tensor.ravel(),
        "mem_used_mib": mem.ravel(),
        "mem_total_mib": np.tile(total, N_STEPS),
        "power_w": np.round(power, 2).ravel(),
        "temp_c": temp.ravel().astype(np.int64),
        "job_id": ids[slot].ravel(),
        "user": names[slot].ravel(),
    })  # fmt: skip
    gap_host, g0, g1 = GAP
    in_gap = (pl.col("host") == HOSTS[gap_host]) & pl.col("timestamp").is_between(
        START + timedelta(seconds=g0), START + timedelta(seconds=g1), closed="left"
    )
    return frame.with_columns(
        pl.col("timestamp").dt.replace_time_zone("UTC"),
        pl.when(pl.col("job_id") > 0).then("job_id").alias("job_id"),
        pl.when(pl.col("user") != "").then("user").alias("user"),
    ).filter(~in_gap)


def generate(seed: int = SEED) -> dict[str, object]:
    """Build the cluster in memory.

    Returns ``truth`` (one row per GPU sample, polars), ``jobs`` (one row per Slurm job,
    polars), ``gpus`` (the inventory) and ``prices``; the same seed gives the same data.
    """
    rng = np.random.default_rng(seed)
    cut = [(0, 8), (8, 12), (12, 16), (16, 20), (20, 32)]
    uuids = [
        "GPU-" + "-".join(h[a:b] for a, b in cut) for h in (rng.bytes(16).hex() for _ in range(32))
    ]
    keys = ("user", "name", "partition", "n_gpus", "submit", "runtime", "limit", "state", "pattern")
    jobs = _background(rng) + [dict(zip(keys, s, strict=True)) for s in SCRIPTED]
    jobs.sort(key=lambda j: j["submit"])
    for i, job in enumerate(jobs):
        job.update(job_id=FIRST_JOB_ID + i, limit=job["limit"] * 3600)
    _schedule(jobs, rng.integers(1, 30, len(jobs)))
    p = _profiles(rng, jobs)
    truth = _truth(rng, jobs, p, uuids)
    n, interactive = len(jobs), np.array([j["pattern"] == "dana" for j in jobs])
    cols = ("job_id", "name", "user", "partition", "state", "n_gpus", "submit", "start", "end",
            "limit", "host", "gpus", "pattern")  # fmt: skip
    usage = truth.group_by("job_id").agg(  # integer sums: exact whatever the summation order
        mean_util=pl.col("util_pct").sum() / pl.len(),
        mean_mem=pl.col("mem_used_mib").sum() / pl.len(),
    )
    table = (
        pl.DataFrame([{c: j[c] for c in cols} for j in jobs])
        .with_columns(
            (pl.lit(START) + pl.duration(seconds=pl.col(c))).alias(c)
            for c in ("submit", "start", "end")
        )
        .with_columns(
            pl.col("host").replace_strict(dict(enumerate(HOSTS)), return_dtype=pl.String),
            pl.col("user").replace_strict(USERS, return_dtype=pl.Int64).alias("uid"),
            (pl.col("start") - pl.col("submit")).dt.total_seconds().alias("wait_s"),
            pl.Series("profile_util", p["util_mu"][1:]),
            pl.Series("profile_mem", p["mem"][1:]),
            pl.Series("cpu_eff", np.where(interactive, 0.02, rng.uniform(0.1, 0.9, n))),
            pl.Series("rss_frac", rng.uniform(0.05, 0.6, n)),
            pl.Series("srun_step", (rng.random(n) < 0.4) | interactive),
        )
        .join(usage, on="job_id", how="left")
    )
    return {"truth": truth, "jobs": table, "gpus": truth.select(GPU_COLS).unique(maintain_order=True),
            "prices": _prices()}  # fmt: skip


def _nvidia_smi(truth: pl.DataFrame, host: str) -> str:
    """The CSV one ``nvidia-smi -l 120`` logger wrote; restarted after a gap, it repeats the header."""
    rows = truth.filter(pl.col("host") == host).sort("timestamp", "gpu")
    cw = (pl.col("power_w") * 100).round().cast(pl.Int64)  # centiwatts, printed with 2 decimals
    line = pl.format(
        "{}, {}, {}, {}, {} %, {} MiB, {} MiB, {}.{} W, {}",
        pl.col("timestamp").dt.strftime("%Y/%m/%d %H:%M:%S.000"), "gpu", "uuid", "model", "util_pct",
        "mem_used_mib", "mem_total_mib", cw // 100, (cw % 100).cast(pl.String).str.zfill(2), "temp_c",
    )  # fmt: skip
    restart = pl.col("timestamp").diff().dt.total_seconds().fill_null(0) > STEP_S
    lines = rows.select(pl.when(restart).then(pl.lit(NVSMI_HEADER + "\n") + line).otherwise(line))
    return NVSMI_HEADER + "\n" + "\n".join(lines.to_series()) + "\n"


def _dcgm(truth: pl.DataFrame) -> str:
    """dcgm-exporter scrapes of every host every 10 minutes, in Prometheus text format."""
    since = (pl.col("timestamp") - START).dt.total_seconds()
    rows = truth.filter(since % (STEP_S * DCGM_EVERY) == 0).with_columns(
        k=since // (STEP_S * DCGM_EVERY),
        o=pl.col("host").replace_strict(HOSTS, list(range(4)), return_dtype=pl.Int64) * 8 + pl.col("gpu"),
        labels=pl.concat_str(
            pl.lit('{gpu="'), "gpu", pl.lit('",UUID="'), "uuid", pl.lit('",device="nvidia'), "gpu",
            pl.lit('",modelName="'), "model", pl.lit('",Hostname="'), "host",
            pl.lit('",container="",namespace="",pod="",hpc_job="'),
            pl.col("job_id").cast(pl.String).fill_null(""), pl.lit('"} '),
        ),
    )  # fmt: skip
    stamps = rows.select("k", "timestamp").unique("k").sort("k")
    parts = [stamps.select("k", m=pl.lit(-1), o=pl.lit(0), line=pl.format("# TIMESTAMP {}",
             pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")))]  # fmt: skip
    for m, (name, text, value) in enumerate(DCGM_METRICS):
        parts += [
            stamps.select("k", m=pl.lit(m), o=pl.lit(-2), line=pl.lit(f"# HELP {name} {text}")),
            stamps.select("k", m=pl.lit(m), o=pl.lit(-1), line=pl.lit(f"# TYPE {name} gauge")),
            rows.select(
                "k",
                m=pl.lit(m),
                o="o",
                line=pl.lit(name) + pl.col("labels") + value.cast(pl.String),
            ),
        ]
    lines = pl.concat(parts, how="vertical_relaxed").sort("k", "m", "o")["line"]
    return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    """Slurm's ``[D-]HH:MM:SS``."""
    d, rest = divmod(int(seconds), 86_400)
    return (f"{d}-" if d else "") + f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


def _sacct(jobs: pl.DataFrame) -> str:
    """``sacct --parsable2`` lines: the job, then its ``.batch``, ``.extern`` and ``.0`` steps."""
    lines = [SACCT_HEADER]
    for j in jobs.iter_rows(named=True):
        part, n, interactive = j["partition"], j["n_gpus"], j["pattern"] == "dana"
        cpus, mem_g = CPUS_PER_GPU[part] * n, MEM_GB_PER_GPU[part] * n
        tres = f"cpu={cpus},gres/gpu:{part}={n},gres/gpumem={80 * n}G,mem={mem_g}G,node=1"
        submit, start, end = (
            j[c].strftime("%Y-%m-%dT%H:%M:%S") for c in ("submit", "start", "end")
        )
        elapsed = (j["end"] - j["start"]).total_seconds()
        util = j["mean_util"] if j["mean_util"] is not None else j["profile_util"]
        mem = j["mean_mem"] if j["mean_mem"] is not None else j["profile_mem"]
        usage = (f"cpu={_clock(elapsed * cpus * j['cpu_eff'])},gres/gpumem={round(mem)}M,"
                 f"gres/gpuutil={round(util)},mem={max(1, round(mem_g * j['rss_frac']))}G")  # fmt: skip
        state = f"CANCELLED by {j['uid']}" if j["state"] == "CANCELLED" else j["state"]
        step_state = j["state"] if j["state"] in ("COMPLETED", "FAILED") else "CANCELLED"
        span = f"{start}|{end}|{_clock(elapsed)}"
        lines.append(f"{j['job_id']}|{j['name']}|{j['user']}|{part}|{state}|{submit}|{span}|"
                     f"billing={cpus},{tres}||{j['host']}")  # fmt: skip
        steps = (
            []
            if interactive
            else [("batch", step_state, tres, "cpu=00:00:01,mem=6M" if j["srun_step"] else usage)]
        )
        steps.append(("extern", "COMPLETED", f"billing={cpus},{tres}", "cpu=00:00:00,mem=0"))
        if j["srun_step"]:
            steps.append(("0", step_state, tres, usage))
        for sid, st, alloc, use in steps:
            name = {"0": "bash" if interactive else "python"}.get(sid, sid)
            lines.append(
                f"{j['job_id']}.{sid}|{name}|||{st}|{start}|{span}|{alloc}|{use}|{j['host']}"
            )
    return "\n".join(lines) + "\n"


def render(data: dict[str, object]) -> dict[str, str]:
    """The text of every file in ``datasets/gpu/``, by file name (``.gz`` ones before compression)."""
    frames = {name: v for name, v in data.items() if isinstance(v, pl.DataFrame)}
    out = {f"nvidia-smi/{host}.csv.gz": _nvidia_smi(frames["truth"], host) for host in HOSTS}
    out["dcgm.prom.gz"] = _dcgm(frames["truth"])
    out["sacct.txt"] = _sacct(frames["jobs"])
    out["prices.csv"] = frames["prices"].write_csv(float_precision=2)
    return out


def main() -> None:
    """Write every file into ``datasets/gpu/``."""
    OUT_DIR.mkdir(exist_ok=True)
    for name, text in render(generate()).items():
        target = OUT_DIR / name
        target.parent.mkdir(exist_ok=True)
        if name.endswith(".gz"):
            with gzip.GzipFile(target, "wb", mtime=0) as fh:  # mtime=0: the same bytes every run
                fh.write(text.encode())
        else:
            target.write_bytes(text.encode())
        print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

"""Benchmark ``aiops_lab.gpu.review`` against the same GPU-hour accounting in plain pandas.

    python benchmarks/gpu_bench.py [--rows 1000000 10000000] [--stream-rows 100000000]
                                   [--repeat 2] [--json out.json]

For each row count N, telemetry in ``TELEMETRY_SCHEMA`` is generated (fixed seed,
vectorised NumPy) and written once to a Parquet file in a temporary folder: 64 A100
GPUs on 8 hosts, each sampled every 1 to 60 seconds (per GPU) over the same period,
with +-5 % jitter (times in whole milliseconds) and gaps; utilization comes in stretches (idle, light,
busy; about two hours on average) with short dips, and busy stretches carry a user
and a job id.

Contenders, each timed from reading the Parquet file to the per-GPU table (best of
``--repeat`` runs, after one warm-up run on a small file):

* ``aiops_lab``: ``review(pl.scan_parquet(path), prices={"A100": 3.0},
  backend="numpy", streaming=False).per_gpu``: the columns the review reads, loaded
  whole, then accounted in memory;
* ``aiops_lab_stream``: ``review(pl.scan_parquet(path), ..., streaming=True).per_gpu``:
  a first read of three columns (GPU key, time, utilization) counting every GPU's
  intervals and readings (its median interval and utilization quantiles), then the
  log in chunks of about 1M samples in the order it is read;
* ``pandas``: ``pd.read_parquet`` of the columns it uses + ``sort_values`` by GPU and
  time, per-GPU ``shift`` for the intervals, per-GPU median, ``clip`` at twice the
  median, the last sample filled with the median, and ``groupby`` sums of total / idle
  hours and cost.

``--stream-rows N`` writes N rows as a folder of 10M-row Parquet files (consecutive
periods of the same fleet, so memory stays small while writing) and times
``aiops_lab_stream`` on it, and pandas too with ``--stream-pandas`` (pandas reads the
folder whole: about 12 GB at 100M rows).

Both must agree on every GPU's ``gpu_hours`` and ``idle_gpu_hours``; the largest
absolute difference is reported. Peak memory is measured per contender in a fresh
subprocess, as in ``drift_bench.py``: the peak resident set size during one run
(``VmHWM`` after resetting it through ``/proc/self/clear_refs``) minus the resident set
size just before the run (interpreter, imports and a warm-up run); the input is read
inside the run, so the loaded frame counts.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from drift_bench import _fmt, _machine, _maxrss_bytes, _reset_peak, _rss_bytes  # noqa: E402

from aiops_lab.gpu import TELEMETRY_SCHEMA  # noqa: E402

SEED = 20240611
N_HOSTS, GPUS_PER_HOST = 8, 8
MODEL = "NVIDIA A100-SXM4-80GB"
PRICES = {"A100": 3.0}
IDLE_THRESHOLD = 5.0
#: sampling intervals (seconds) the GPUs' exporters use, one drawn per GPU
INTERVALS = np.array([1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0])
#: mean length of an idle / light / busy stretch, seconds
STRETCH_S = 7200.0
#: a gap in the log (exporter down) follows a sample with this probability
GAP_P = 5e-4
N_USERS = 24
WARMUP_ROWS = 20_000
START = np.datetime64("2024-06-01T00:00:00", "us").astype(np.int64)


# -- data ------------------------------------------------------------------------------------
def make_telemetry(n: int, seed: int = SEED, fleet_seed: int | None = None) -> pl.DataFrame:
    """``n`` samples in ``TELEMETRY_SCHEMA`` over 64 GPUs, in time order (a merged log).

    ``fleet_seed`` draws the fleet (each GPU's sampling interval and UUID) apart from
    the samples, so that several periods can share one fleet.
    """
    rng = np.random.default_rng(seed)
    fleet = rng if fleet_seed is None else np.random.default_rng(fleet_seed)
    g_count = N_HOSTS * GPUS_PER_HOST
    interval = fleet.choice(INTERVALS, size=g_count)
    # every GPU covers about the same period, so the fast exporters give the most rows
    share = (1.0 / interval) / (1.0 / interval).sum()
    counts = np.floor(share * n).astype(np.int64)
    counts[np.argsort(-share)[: n - counts.sum()]] += 1
    counts = np.maximum(counts, 2)
    counts[np.argmax(counts)] -= counts.sum() - n
    g = np.repeat(np.arange(g_count), counts)
    first = np.zeros(n, dtype=bool)
    first[np.concatenate([[0], np.cumsum(counts)[:-1]])] = True

    # sampling times: jittered interval, occasional gaps of 5 to 500 intervals
    step = interval[g] * rng.uniform(0.95, 1.05, n)
    gap = rng.random(n) < GAP_P
    step[gap] *= rng.uniform(5.0, 500.0, int(gap.sum()))
    # times to the millisecond, as nvidia-smi and Prometheus scrapes write them
    step_us = np.round(step * 1e3).astype(np.int64) * 1000
    step_us[first] = np.round(rng.uniform(0.0, 60.0, g_count) * 1e3).astype(np.int64) * 1000
    cum = np.cumsum(step_us)
    offset = np.repeat(cum[first] - step_us[first], counts)
    t_us = START + cum - offset

    # utilization in stretches: idle (35 %), light (15 %), busy (50 %)
    boundary = first | (rng.random(n) < interval[g] / STRETCH_S)
    seg = np.cumsum(boundary) - 1
    n_seg = int(seg[-1]) + 1
    state = rng.choice(3, size=n_seg, p=[0.35, 0.15, 0.5])[seg]
    level = np.where(state == 2, rng.uniform(60, 98, n_seg)[seg], rng.uniform(8, 40, n_seg)[seg])
    util = np.clip(rng.normal(level, 8.0), 0, 100)
    dip = rng.random(n) < 0.03  # data loading, checkpoints
    util[dip] = rng.uniform(0, 5, int(dip.sum()))
    idle = state == 0
    util[idle] = np.where(
        rng.random(int(idle.sum())) < 0.8, 0.0, rng.uniform(0, 4, int(idle.sum()))
    )
    util = np.round(util)
    sm = np.where(idle, 0.0, util / 100.0 * rng.uniform(0.3, 0.9, n_seg)[seg])
    mem = np.where(idle, rng.choice([0.0, 512.0], n), rng.uniform(4e3, 78e3, n_seg)[seg])
    mem = np.clip(mem + rng.normal(0, 200, n) * ~idle, 0, 81_920.0)
    power = 60.0 + 3.4 * util + rng.normal(0, 5, n)
    temp = 30.0 + 0.4 * util + rng.normal(0, 1, n)

    # who: each light or busy stretch is one job of one user (a few heavy users)
    weights = 1.0 / np.arange(1, N_USERS + 1)
    user = np.where(idle, 0, rng.choice(N_USERS, size=n_seg, p=weights / weights.sum())[seg] + 1)
    job = np.where(idle, -1, seg + 1_000_000)

    hosts = [f"gpu-node-{h:02d}" for h in range(N_HOSTS)]
    uuids = [f"GPU-{fleet.integers(0, 2**32):08x}-{i:04d}-{fleet.integers(0, 2**16):04x}" for i in range(g_count)]  # fmt: skip
    order = np.argsort(t_us, kind="stable")
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(t_us[order]).cast(pl.Datetime("us", "UTC")),
            "host": pl.Series(hosts).gather(g[order] // GPUS_PER_HOST),
            "gpu": (g[order] % GPUS_PER_HOST).astype(np.int32),
            "uuid": pl.Series(uuids).gather(g[order]),
            "model": pl.repeat(MODEL, n, eager=True),
            "util_pct": util[order],
            "sm_active": sm[order],
            "tensor_active": sm[order] * 0.5,
            "mem_used_mib": mem[order],
            "mem_total_mib": np.full(n, 81_920.0),
            "power_w": power[order],
            "temp_c": temp[order],
            "user": pl.Series([None, *(f"user{u:02d}" for u in range(N_USERS))]).gather(
                user[order]
            ),
            "_job": job[order],
        }
    )
    frame = frame.with_columns(
        pl.when(pl.col("_job") >= 0).then(pl.col("_job").cast(pl.String)).alias("job_id"),
        pl.lit("dcgm").alias("source"),
    ).drop("_job")
    return frame.select(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in TELEMETRY_SCHEMA.items()
    )


def write_chunks(n: int, folder: Path, chunk_rows: int = 10_000_000) -> Path:
    """``n`` rows as consecutive periods of ``chunk_rows`` each, one Parquet file per period.

    Every period is sampled from the same fleet: each GPU keeps its UUID and sampling
    interval.
    """
    out = folder / f"telemetry_{n}_chunks"
    if out.exists():
        return out
    out.mkdir()
    offset, k = 0, 0
    while k * chunk_rows < n:
        rows = min(chunk_rows, n - k * chunk_rows)
        frame = make_telemetry(rows, seed=SEED + k, fleet_seed=SEED)
        frame = frame.with_columns(pl.col("timestamp") + pl.duration(microseconds=offset))
        stop = frame["timestamp"].max()
        offset = int(stop.timestamp() * 1e6) - int(START) + 60_000_000  # type: ignore[union-attr]
        frame.write_parquet(out / f"part-{k:03d}.parquet")
        del frame
        k += 1
    return out


def write_telemetry(n: int, folder: Path) -> Path:
    path = folder / f"telemetry_{n}.parquet"
    if not path.exists():
        make_telemetry(n).write_parquet(path)
    return path


# -- contenders ------------------------------------------------------------------------------
def run_aiops_lab(path: Path) -> pl.DataFrame:
    from aiops_lab.gpu import review

    result = review(
        pl.scan_parquet(path),
        prices=PRICES,
        idle_threshold=IDLE_THRESHOLD,
        backend="numpy",
        streaming=False,
    )
    return result.per_gpu


def run_aiops_lab_stream(path: Path) -> pl.DataFrame:
    from aiops_lab.gpu import review

    source = pl.scan_parquet(path / "*.parquet" if path.is_dir() else path)
    result = review(
        source, prices=PRICES, idle_threshold=IDLE_THRESHOLD, backend="numpy", streaming=True
    )
    return result.per_gpu


def _price(model: str) -> float:
    """Hourly price of the longest price-table name contained in ``model``, else 0."""
    hits = [(len(k), p) for k, p in PRICES.items() if k.lower() in model.lower()]
    return max(hits)[1] if hits else 0.0


def run_pandas(path: Path) -> pd.DataFrame:
    """The accounting as a pandas user would write it."""
    keys = ["host", "gpu"]
    df = pd.read_parquet(path, columns=["timestamp", *keys, "model", "util_pct"])
    df = df.sort_values([*keys, "timestamp"])
    nxt = df.groupby(keys, sort=False)["timestamp"].shift(-1)
    dt = (nxt - df["timestamp"]).dt.total_seconds()
    median = dt.groupby([df["host"], df["gpu"]], sort=False).transform("median")
    w = dt.clip(upper=2 * median).fillna(median).fillna(0.0)
    idle = df["util_pct"] < IDLE_THRESHOLD
    price = df["model"].map({m: _price(m) for m in df["model"].dropna().unique()}).fillna(0.0)
    cost = w * price / 3600
    parts = pd.DataFrame(
        {
            "host": df["host"],
            "gpu": df["gpu"],
            "gpu_hours": w / 3600,
            "idle_gpu_hours": w.where(idle, 0.0) / 3600,
            "total_cost": cost,
            "idle_cost": cost.where(idle, 0.0),
        }
    )
    out = parts.groupby(keys).sum()
    out["active_gpu_hours"] = out["gpu_hours"] - out["idle_gpu_hours"]
    return out.reset_index()


CONTENDERS: dict[str, Callable[[Path], Any]] = {
    "aiops_lab": run_aiops_lab,
    "aiops_lab_stream": run_aiops_lab_stream,
    "pandas": run_pandas,
}

# -- with Slurm jobs (--slurm) ----------------------------------------------------------------
_SLURM: dict[Path, pl.DataFrame] = {}


def _source(path: Path) -> pl.LazyFrame:
    return pl.scan_parquet(path / "*.parquet" if path.is_dir() else path)


def slurm_jobs(path: Path) -> pl.DataFrame:
    """One 8-hour job per host and day holding the whole host, 01:00-09:00 (kept per path)."""
    if path not in _SLURM:
        from aiops_lab.gpu.sources import JOBS_SCHEMA

        span = (
            _source(path)
            .group_by("host")
            .agg(pl.col("gpu").n_unique().alias("gpus"), pl.col("timestamp").min().alias("t0"),
                 pl.col("timestamp").max().alias("t1"))
            .collect()
        )  # fmt: skip
        rows = []
        for host, gpus, t0, t1 in span.sort("host").iter_rows():
            day = t0.replace(hour=0, minute=0, second=0, microsecond=0)
            while day < t1:
                start, end = day + pd.Timedelta(hours=1), day + pd.Timedelta(hours=9)
                rows.append((f"{host}-{day:%m%d}", host, gpus, start, end, gpus * 8.0))
                day += pd.Timedelta(days=1)
        jobs = pl.DataFrame(
            rows, orient="row",
            schema=["job_id", "nodes", "gpus", "start", "end", "gpu_hours_alloc"],
        ).with_columns(submit=pl.col("start"), user=pl.lit("bench"))  # fmt: skip
        _SLURM[path] = jobs.select(
            (pl.col(n) if n in jobs.columns else pl.lit(None)).cast(t).alias(n)
            for n, t in JOBS_SCHEMA.items()
        )
    return _SLURM[path]


def run_jobs_named(path: Path) -> pl.DataFrame:
    """The streamed review with Slurm jobs, the samples naming their jobs."""
    from aiops_lab.gpu import review

    return review(
        _source(path), slurm_jobs(path), prices=PRICES, idle_threshold=IDLE_THRESHOLD,
        backend="numpy", streaming=True,
    ).per_job  # fmt: skip


def run_jobs_unnamed(path: Path) -> pl.DataFrame:
    """The same with the job ids dropped: samples put down to whole-node jobs."""
    from aiops_lab.gpu import review

    return review(
        _source(path).with_columns(job_id=pl.lit(None, dtype=pl.Utf8)), slurm_jobs(path),
        prices=PRICES, idle_threshold=IDLE_THRESHOLD, backend="numpy", streaming=True,
    ).per_job  # fmt: skip


SLURM_CONTENDERS: dict[str, Callable[[Path], Any]] = {
    "jobs_named": run_jobs_named,
    "jobs_unnamed": run_jobs_unnamed,
}


def differences(ours: pl.DataFrame, theirs: pd.DataFrame) -> dict[str, float]:
    """Max absolute difference per column over the GPUs, after matching them by host and GPU."""
    cols = ["gpu_hours", "idle_gpu_hours", "active_gpu_hours", "total_cost", "idle_cost"]
    a = ours.select("host", "gpu", *cols)
    b = pl.from_pandas(theirs[["host", "gpu", *cols]]).with_columns(pl.col("gpu").cast(pl.Int32))
    joined = a.join(b, on=["host", "gpu"], how="full", suffix="_pd", coalesce=True)
    out: dict[str, float] = {"gpus_ours": float(a.height), "gpus_pandas": float(b.height)}
    for c in cols:
        d = (joined[c] - joined[f"{c}_pd"]).abs()
        out[c] = float("inf") if d.null_count() else float(d.max())
    out["total_gpu_hours"] = float(a["gpu_hours"].sum())
    return out


# -- measurement ------------------------------------------------------------------------------
def best_of(fn: Callable[[Path], Any], path: Path, repeat: int) -> dict[str, Any]:
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        out = None
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(path)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best = int(np.argmin(wall))
    return {"best_s": wall[best], "cpu_s": cpu[best], "all_s": wall, "result": out}


def time_reads(path: Path, repeat: int) -> dict[str, float]:
    """Seconds to read the file alone (best of ``repeat``), with each library."""
    out = {}
    for name, read in (("polars", pl.read_parquet), ("pandas", pd.read_parquet)):
        runs = []
        for _ in range(repeat):
            gc.collect()
            t0 = time.perf_counter()
            frame = read(path)
            runs.append(time.perf_counter() - t0)
            del frame
        out[name] = min(runs)
    return out


def child(name: str, path: Path) -> None:
    """Subprocess mode: warm up on a small file, run ``name`` on ``path``, print its memory."""
    fn = {**CONTENDERS, **SLURM_CONTENDERS}[name]
    with tempfile.TemporaryDirectory() as tmp:
        fn(write_telemetry(WARMUP_ROWS, Path(tmp)))
    if name in SLURM_CONTENDERS:
        slurm_jobs(path)  # the jobs frame is input, not work
    gc.collect()
    reset = _reset_peak()
    base = _rss_bytes()
    base_peak = _maxrss_bytes()
    t0 = time.perf_counter()
    fn(path)
    elapsed = time.perf_counter() - t0
    peak = _maxrss_bytes()
    print(
        json.dumps(
            {
                "rss_before_run": base,
                "peak_before_run": base_peak,
                "peak_after_run": peak,
                "peak_extra": peak - (base if reset else max(base, base_peak)),
                "peak_reset": reset,
                "seconds": elapsed,
            }
        )
    )


def measure_memory(
    name: str, path: Path, timeout: float, limit_bytes: int | None = None
) -> dict[str, Any]:
    """Run ``name`` on ``path`` in a fresh process: its seconds and peak memory.

    With ``limit_bytes`` the process is stopped once its resident memory passes that
    (checked every 0.1 s), so that a contender that cannot fit does not take the machine
    (and this benchmark) down with it.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--path", str(path)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        started, peak = time.perf_counter(), 0
        while proc.poll() is None:
            rss = _rss_of(proc.pid)
            peak = max(peak, rss)
            if limit_bytes is not None and rss > limit_bytes:
                proc.kill()
                proc.wait()
                return {"error": f"stopped at {rss / 2**30:.1f} GiB resident, over the "
                        f"{limit_bytes / 2**30:.1f} GiB limit (out of memory)"}  # fmt: skip
            if time.perf_counter() - started > timeout:
                proc.kill()
                proc.wait()
                return {"error": f"stopped after {timeout:.0f} s"}
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            lines = err.read().strip().splitlines()
            return {"error": lines[-1:] or [f"exit {proc.returncode}"]}
        return json.loads(out.read().strip().splitlines()[-1])


def _rss_of(pid: int) -> int:
    """Resident bytes of process ``pid`` (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


def profile_review(path: Path, top: int) -> str:
    """cProfile of one ``aiops_lab`` run: the ``top`` entries by own time and by cumulative time."""
    prof = cProfile.Profile()
    prof.enable()
    run_aiops_lab(path)
    prof.disable()
    buf = io.StringIO()
    stats = pstats.Stats(prof, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument(
        "--stream-rows", type=int, nargs="*", default=[], help="sizes reviewed only streaming"
    )
    parser.add_argument(
        "--stream-pandas",
        action="store_true",
        help="time pandas at the streaming sizes too (it loads the whole log: memory!)",
    )
    parser.add_argument(
        "--pandas-memory",
        type=float,
        default=0.8 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        help="GiB of resident memory at which pandas is stopped at the streaming sizes",
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess runs")
    parser.add_argument(
        "--pandas-limit",
        type=float,
        default=300.0,
        help="skip pandas at a size where one run is expected to take longer (seconds)",
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="TOP", help="cProfile review at the largest N"
    )
    parser.add_argument(
        "--slurm",
        action="store_true",
        help="also time the streamed review with Slurm jobs (job ids kept, then dropped)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.path)
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    machine = _machine(pandas=pd.__version__)
    rows_list = sorted(args.rows)
    stream_only = set(args.stream_rows)
    rows_list = sorted(set(rows_list) | stream_only)
    results: list[dict[str, Any]] = []
    profile = None
    with tempfile.TemporaryDirectory(prefix="gpu_bench_") as tmp:
        folder = Path(tmp)
        log(f"warm-up at {WARMUP_ROWS:,} rows")
        warm = write_telemetry(WARMUP_ROWS, folder)
        for fn in CONTENDERS.values():
            fn(warm)
        for rows in rows_list:
            t0 = time.perf_counter()
            chunked = rows in stream_only
            path = write_chunks(rows, folder) if chunked else write_telemetry(rows, folder)
            scan = pl.scan_parquet(path / "*.parquet" if chunked else path)
            meta = scan.select(pl.len()).collect().item()
            entry: dict[str, Any] = {
                "rows": rows,
                "file_bytes": sum(f.stat().st_size for f in path.glob("*.parquet"))
                if chunked
                else path.stat().st_size,
                "contenders": {},
            }
            if chunked:  # not read whole: estimate the frame from one file
                files = sorted(path.glob("*.parquet"))
                one = pl.read_parquet(files[0])
                entry["frame_bytes"] = int(one.estimated_size() * rows / one.height)
                del one
                entry["gpus"] = scan.select(pl.struct("host", "gpu").n_unique()).collect().item()
            else:
                with_frame = pl.read_parquet(path)
                entry["frame_bytes"] = int(with_frame.estimated_size())
                entry["gpus"] = with_frame.select(pl.struct("host", "gpu").n_unique()).item()
                del with_frame
            log(f"{meta:,} rows: Parquet written in {time.perf_counter() - t0:.1f} s "
                f"({entry['file_bytes'] / 2**20:.0f} MiB on disk, "
                f"{entry['frame_bytes'] / 2**20:.0f} MiB in polars)")  # fmt: skip
            entry["read_s"] = {} if chunked else time_reads(path, args.repeat)
            outputs = {}
            for name, fn in CONTENDERS.items():
                if chunked and (
                    name == "aiops_lab" or (name == "pandas" and not args.stream_pandas)
                ):
                    entry["contenders"][name] = {
                        "skipped": "streaming size: the whole log is not loaded"
                    }
                    continue
                if name == "pandas" and results:
                    prev = results[-1]["contenders"].get(name, {}).get("best_s")
                    guess = prev * rows / results[-1]["rows"] if prev else None
                    if guess is not None and guess > args.pandas_limit:
                        note = (f"skipped: about {guess:.0f} s expected (linear from "
                                f"{results[-1]['rows']:,} rows), over {args.pandas_limit:.0f} s")  # fmt: skip
                        entry["contenders"][name] = {"skipped": note}
                        log(f"  {name}: {note}")
                        continue
                if chunked and name == "pandas":  # it may not fit: run it apart, watched
                    limit = int(args.pandas_memory * 2**30)
                    log(f"  timing pandas once in a fresh process (stopped over {args.pandas_memory:.1f} GiB)")  # fmt: skip
                    run = measure_memory(name, path, 60 + 10 * args.pandas_limit, limit)
                    entry["contenders"][name] = (
                        {"best_s": run["seconds"], "all_s": [run["seconds"]], "memory": run}
                        if "seconds" in run
                        else {"skipped": run["error"]}
                    )
                    log(f"    {entry['contenders'][name]}")
                    continue
                log(f"  timing {name} (best of {args.repeat})")
                timing = best_of(fn, path, args.repeat)
                outputs[name] = timing.pop("result")
                entry["contenders"][name] = timing
                log(f"    {timing['best_s']:.2f} s (runs: "
                    + ", ".join(f"{t:.2f}" for t in timing["all_s"]) + ")")  # fmt: skip
                if name == "pandas" and timing["best_s"] > args.pandas_limit:
                    entry["contenders"][name]["note"] = "over the limit"
            if "aiops_lab_stream" in outputs and "aiops_lab" in outputs:
                entry["diff_stream"] = differences(
                    outputs["aiops_lab_stream"], outputs["aiops_lab"].to_pandas()
                )
                log(f"  streamed vs in memory, max abs diff: gpu_hours "
                    f"{entry['diff_stream']['gpu_hours']:.2e}")  # fmt: skip
            ours = outputs.get("aiops_lab", outputs.get("aiops_lab_stream"))
            if ours is not None and "pandas" in outputs:
                entry["diff"] = differences(ours, outputs["pandas"])
                log(f"  max abs diff: gpu_hours {entry['diff']['gpu_hours']:.2e}, "
                    f"idle_gpu_hours {entry['diff']['idle_gpu_hours']:.2e}")  # fmt: skip
            del outputs
            gc.collect()
            if not args.no_memory:
                for name in CONTENDERS:
                    c = entry["contenders"][name]
                    if "best_s" not in c or "memory" in c:
                        continue
                    log(f"  peak memory of {name} (fresh process)")
                    c["memory"] = measure_memory(name, path, 60 + 3 * c["best_s"])
            if args.slurm:
                slurm_jobs(path)
                entry["slurm"] = {"jobs": _SLURM[path].height}
                for name, fn in SLURM_CONTENDERS.items():
                    log(f"  timing {name} (best of {args.repeat})")
                    timing = best_of(fn, path, args.repeat)
                    timing.pop("result")
                    if not args.no_memory:
                        timing["memory"] = measure_memory(name, path, 60 + 3 * timing["best_s"])
                    entry["slurm"][name] = timing
                    log(f"    {timing['best_s']:.2f} s")
            if args.profile and rows == rows_list[-1]:
                log(f"  profiling aiops_lab at {rows:,} rows")
                profile = profile_review(path, args.profile)
            results.append(entry)

    _print_tables(results)
    _print_slurm(results)
    if profile:
        print()
        print(profile)
    if args.json:
        machine["load_average_end"] = os.getloadavg()
        payload = {"machine": machine, "results": results, "profile": profile}
        args.json.write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


def _times(speed: float | None) -> str:
    return "n/a" if speed is None else f"{speed:.1f}x"


def _print_slurm(results: list[dict[str, Any]]) -> None:
    rows = [r for r in results if "slurm" in r]
    if not rows:
        return
    print()
    print("| rows | whole-node jobs | streamed s | with jobs, ids kept s | peak MB | with jobs, ids dropped s | peak MB |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        plain = r["contenders"].get("aiops_lab_stream", {}).get("best_s")
        cells = [
            f"{r['rows']:,}",
            str(r["slurm"]["jobs"]),
            "n/a" if plain is None else f"{plain:.2f}",
        ]
        for name in SLURM_CONTENDERS:
            c = r["slurm"][name]
            peak = _peak_mb(c)
            cells += [f"{c['best_s']:.2f}", "n/a" if peak is None else f"{peak:.0f}"]
        print("| " + " | ".join(cells) + " |")


def _peak_mb(c: dict[str, Any]) -> float | None:
    mem = c.get("memory", {})
    return mem["peak_extra"] / 2**20 if "peak_extra" in mem else None


def _print_tables(results: list[dict[str, Any]]) -> None:
    print()
    print("| rows | aiops_lab s | streamed s | pandas s | speed-up in memory / streamed | aiops_lab peak MB "
          "| streamed peak MB | pandas peak MB | max abs diff hours |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for e in results:
        c = e["contenders"]
        a, st, p = c.get("aiops_lab", {}), c.get("aiops_lab_stream", {}), c.get("pandas", {})
        a_s, st_s, p_s = a.get("best_s"), st.get("best_s"), p.get("best_s")
        speed_a = p_s / a_s if a_s and p_s else None
        speed_st = p_s / st_s if st_s and p_s else None
        diffs = [e[k] for k in ("diff", "diff_stream") if k in e]
        diff = max((max(d["gpu_hours"], d["idle_gpu_hours"]) for d in diffs), default=None)
        if "skipped" in p:
            notes.append(f"{e['rows']:,} rows, pandas {p['skipped']}")
        print(f"| {e['rows']:,} | {_fmt(a_s, '.2f')} | {_fmt(st_s, '.2f')} | {_fmt(p_s, '.2f')} "
              f"| {_times(speed_a)} / {_times(speed_st)} | {_fmt(_peak_mb(a), '.0f')} | {_fmt(_peak_mb(st), '.0f')} "
              f"| {_fmt(_peak_mb(p), '.0f')} | {_fmt(diff, '.1e')} |")  # fmt: skip
    for n in notes:
        print(f"\n{n}")
    print()
    print("| rows | GPUs | Parquet MiB | polars frame MiB | read s polars | read s pandas "
          "| aiops_lab CPU s | streamed CPU s | pandas CPU s | max abs diff cost USD |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for e in results:
        c = e["contenders"]
        a, st, p = c.get("aiops_lab", {}), c.get("aiops_lab_stream", {}), c.get("pandas", {})
        d = e.get("diff")
        cost = max(d["total_cost"], d["idle_cost"]) if d else None
        print(f"| {e['rows']:,} | {e['gpus']} | {e['file_bytes'] / 2**20:.0f} "
              f"| {e['frame_bytes'] / 2**20:.0f} | {_fmt(e['read_s'].get('polars'), '.2f')} "
              f"| {_fmt(e['read_s'].get('pandas'), '.2f')} | {_fmt(a.get('cpu_s'), '.2f')} "
              f"| {_fmt(st.get('cpu_s'), '.2f')} | {_fmt(p.get('cpu_s'), '.2f')} | {_fmt(cost, '.1e')} |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())

"""Drift comparison on Dask as the data grows: time and peak memory per process.

Writes N rows x 20 columns (18 numeric, 2 categorical) as partitioned Parquet once
(fixed seed, one file per ``--part-rows`` rows, reused on later runs), then compares a
200k-row in-memory reference with it:

* on a ``LocalCluster`` of 1 and of 2 worker processes (1 thread each), reading the
  Parquet files lazily (``dask.dataframe.read_parquet``);
* in memory (``polars.read_parquet`` + ``compare``) in a child process, where the
  data fits (``--memory-max-rows``).

Peak memory is the largest resident set size seen per process (sampled every 50 ms
for the client and each worker; ``ru_maxrss`` for the in-memory child). At the end it
prints how time and memory grow from the smallest to the largest N.

    python benchmarks/scale_bench.py --rows 5000000 20000000 --data /tmp/aiops_scale
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl

N_NUMERIC, N_CAT = 18, 2
REF_ROWS = 200_000


def _block(seed: int, n: int, shift: float) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {}
    for j in range(N_NUMERIC):
        kind = j % 3
        if kind == 0:
            x = rng.normal(shift * (j % 2), 1 + j / 10, n)
        elif kind == 1:
            x = rng.lognormal(0, 0.5 + j / 40, n)
        else:
            x = rng.integers(0, 50, n).astype(np.float64)
        x[rng.random(n) < 0.01] = np.nan
        cols[f"x{j:02d}"] = x
    levels = np.array([f"level_{k}" for k in range(30)])
    for j in range(N_CAT):
        p = np.linspace(1.0, 2.0 + shift * j, levels.size)
        cols[f"c{j}"] = levels[rng.choice(levels.size, n, p=p / p.sum())]
    return pl.DataFrame(cols)


def write_data(root: Path, rows: int, part_rows: int) -> Path:
    """``root/nN/part-XXXXX.parquet`` (no "key=value" folder: Dask would read it as a column); skipped when complete."""
    out = root / f"n{rows}"
    done = out / "_complete"
    if done.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    for i, start in enumerate(range(0, rows, part_rows)):
        n = min(part_rows, rows - start)
        _block(10_000 + i, n, 0.05).write_parquet(out / f"part-{i:05d}.parquet")
    done.touch()
    return out


def _rss_sampler(pids: list[int], peaks: dict[int, int], stop: threading.Event) -> None:
    import psutil

    procs = {p: psutil.Process(p) for p in pids}
    while not stop.is_set():
        for pid, proc in procs.items():
            with contextlib.suppress(psutil.Error):
                peaks[pid] = max(peaks.get(pid, 0), proc.memory_info().rss)
        stop.wait(0.05)


def run_dask(path: Path, ref: pl.DataFrame, workers: int, memory_limit: str) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from aiops_lab.drift import compare

    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, memory_limit=memory_limit,
    ) as cluster, Client(cluster) as client:  # fmt: skip
        worker_pids = list(client.run(os.getpid).values())
        peaks: dict[int, int] = {}
        stop = threading.Event()
        sampler = threading.Thread(
            target=_rss_sampler, args=([os.getpid(), *worker_pids], peaks, stop), daemon=True
        )
        sampler.start()
        started = time.perf_counter()
        result = compare(ref, dd.read_parquet(str(path)))
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
    ks_errors = [v["ks_error"] for v in result.params["dask"]["error_bounds"].values()]
    return {
        "seconds": elapsed,
        "client_peak_mb": peaks.get(os.getpid(), 0) / 2**20,
        "worker_peak_mb": max(peaks.get(p, 0) for p in worker_pids) / 2**20,
        "partitions": result.params["dask"]["partitions"],
        "max_ks_error": float(np.nanmax(np.asarray(ks_errors, dtype=float))),
        "drifted": len(result.drifted_columns),
    }


def run_memory(path: Path, ref_path: Path) -> dict:
    """In a child process, so its peak RSS is its own."""
    code = (
        "import json, sys, time, polars as pl; from aiops_lab.drift import compare;"
        "t = time.perf_counter(); cur = pl.read_parquet(sys.argv[1] + '/*.parquet');"
        "r = compare(pl.read_parquet(sys.argv[2]), cur, backend='numpy');"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'drifted': len(r.drifted_columns)}))"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), str(ref_path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # ru_maxrss (KiB on Linux) is the largest over all children so far
    out["process_peak_mb"] = max(peak, before) / 1024
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[5_000_000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--part-rows", type=int, default=500_000)
    ap.add_argument("--data", type=Path, default=Path("/tmp/aiops_scale_bench"))
    ap.add_argument("--memory-max-rows", type=int, default=10_000_000,
                    help="run the in-memory path up to this many rows")  # fmt: skip
    ap.add_argument("--memory-limit", default="4GiB", help="per Dask worker")
    args = ap.parse_args()

    args.data.mkdir(parents=True, exist_ok=True)
    ref_path = args.data / "reference.parquet"
    if not ref_path.exists():
        _block(1, REF_ROWS, 0.0).write_parquet(ref_path)
    ref = pl.read_parquet(ref_path)
    rows_out = []
    for n in sorted(args.rows):
        t = time.perf_counter()
        path = write_data(args.data, n, args.part_rows)
        print(f"# {n:,} rows x 20 columns at {path} ({time.perf_counter() - t:.1f}s to prepare)")
        for w in args.workers:
            r = run_dask(path, ref, w, args.memory_limit)
            rows_out.append({"rows": n, "mode": f"dask {w} worker{'s' * (w > 1)}", **r})
            print("  ", rows_out[-1], flush=True)
        if n <= args.memory_max_rows:
            # largest first would hide the smaller peaks in ru_maxrss: run sizes ascending
            r = run_memory(path, ref_path)
            rows_out.append({"rows": n, "mode": "in memory", **r})
            print("  ", rows_out[-1], flush=True)
    table = pl.DataFrame(rows_out, strict=False)
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=200):
        print(table)
    sizes = sorted(set(args.rows))
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        print(f"\ngrowth from {lo:,} to {hi:,} rows (x{hi / lo:.0f} data):")
        for mode in table["mode"].unique(maintain_order=True):
            a = table.filter((pl.col("mode") == mode) & (pl.col("rows") == lo))
            b = table.filter((pl.col("mode") == mode) & (pl.col("rows") == hi))
            if a.height == 0 or b.height == 0 or "seconds" not in table.columns:
                continue
            mem = "worker_peak_mb" if mode.startswith("dask") else "process_peak_mb"
            print(
                f"  {mode:16s} time x{b['seconds'].item() / a['seconds'].item():.2f}, "
                f"peak memory x{b[mem].item() / a[mem].item():.2f}"
            )


if __name__ == "__main__":
    main()

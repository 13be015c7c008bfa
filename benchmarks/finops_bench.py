"""Benchmark the FinOps budget-breach simulation and ``forecast``.

    python benchmarks/finops_bench.py [--series 1000] [--paths 4000] [--days 31] [--repeat 2]
                                      [--skip-forecast] [--json out.json]

(a) Breach simulation of S series x P paths x H days (Gaussian paths whose daily spread
    widens like a random walk), fixed seed:

    * ``kernel``: :func:`aiops_lab.finops.kernels.simulate_breach` on NumPy, chunked under
      its default working-memory limit (256 MiB);
    * ``loop``: a plain per-series NumPy loop - per series, the same draws, a lower
      triangular Toeplitz matrix of shock weights built with ``scipy.linalg.toeplitz``,
      one matrix product, clip, cumulative sum, share over budget;
    * ``cupy`` (when a GPU works): the kernel on CuPy, draws on the host (identical
      results) and, separately, draws on the GPU.

    Both NumPy contenders must give the same ``p_breach`` (largest difference reported).
    Peak memory is the peak of ``tracemalloc`` (NumPy reports its buffers to it) during
    one run; on CuPy, the memory pool's size after one run from an empty pool.

(b) ``forecast`` on the bundled bill by service (AutoETS, AutoARIMA, seasonal naive,
    3 backtest windows): wall time and time per series. Needs polars and statsforecast.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiops_lab.finops import kernels as K  # noqa: E402

SEED = 20260701


def make_inputs(n_series: int, n_days: int, seed: int = SEED) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    level = rng.lognormal(5.0, 1.0, n_series)
    mean = level[:, None] * (1.0 + 0.002 * np.arange(n_days))[None, :]
    sigma = 0.05 * level[:, None] * np.sqrt(np.arange(1, n_days + 1))[None, :]
    spent = level * rng.uniform(0, 10, n_series)
    budget = spent + mean.sum(axis=1) * rng.uniform(0.9, 1.1, n_series)
    return mean, sigma, spent, budget


def loop_simulation(mean: np.ndarray, sigma: np.ndarray, spent: np.ndarray, budget: np.ndarray,
                    n_paths: int, seed: int) -> np.ndarray:  # fmt: skip
    """The plain way: one series at a time."""
    from scipy.linalg import toeplitz

    rng = np.random.default_rng(seed)
    n_series, n_days = mean.shape
    out = np.empty(n_series)
    for s in range(n_series):
        var = sigma[s] ** 2
        psi = np.sqrt(np.clip(var - np.concatenate([[0.0], var[:-1]]), 0.0, None))
        lower = np.tril(toeplitz(psi))
        z = rng.standard_normal((n_paths, n_days))
        daily = np.clip(mean[s] + z @ lower.T, 0.0, None)
        totals = spent[s] + daily.sum(axis=1)
        out[s] = np.mean(totals > budget[s])
    return out


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def _peak_host(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return int(peak)


def _cupy() -> Any:
    try:
        import cupy

        if not cupy.cuda.is_available():
            return None
        cupy.asarray([1.0]).sum().item()
        return cupy
    except Exception:
        return None


def bench_simulation(n_series: int, n_paths: int, n_days: int, repeat: int) -> dict[str, Any]:
    import array_api_compat.numpy as xnp

    mean, sigma, spent, budget = make_inputs(n_series, n_days)

    def kernel() -> np.ndarray:
        return K.simulate_breach(xnp, mean, sigma, spent, budget, n_paths=n_paths, seed=SEED)[0]

    def loop() -> np.ndarray:
        return loop_simulation(mean, sigma, spent, budget, n_paths, SEED)

    rows: dict[str, Any] = {}
    t_k, p_k = _timed(kernel, repeat)
    rows["kernel"] = {"seconds": t_k, "peak_bytes": _peak_host(kernel)}
    t_l, p_l = _timed(loop, repeat)
    rows["loop"] = {"seconds": t_l, "peak_bytes": _peak_host(loop)}
    out: dict[str, Any] = {
        "series": n_series, "paths": n_paths, "days": n_days, "contenders": rows,
        "loop_over_kernel": t_l / t_k, "max_abs_diff_p_breach": float(np.max(np.abs(p_k - p_l))),
        "chunk_series": K.chunk_rows(n_series, n_paths, n_days, K.DEFAULT_MAX_BYTES),
    }  # fmt: skip
    cp = _cupy()
    if cp is not None:
        import array_api_compat.cupy as xcp

        args = [cp.asarray(a) for a in (mean, sigma, spent, budget)]
        pool = cp.get_default_memory_pool()
        for name, device_draws in (("cupy_host_draws", False), ("cupy_device_draws", True)):

            def run(device_draws: bool = device_draws) -> Any:
                p = K.simulate_breach(
                    xcp, *args, n_paths=n_paths, seed=SEED, device_draws=device_draws
                )[0]
                cp.cuda.Stream.null.synchronize()
                return p

            run()
            pool.free_all_blocks()
            run()
            peak = int(pool.total_bytes())
            t, p = _timed(run, repeat)
            rows[name] = {
                "seconds": t,
                "peak_bytes": peak,
                "device": cp.cuda.runtime.getDeviceProperties(0)["name"].decode(),
            }
            if not device_draws:
                out["max_abs_diff_cupy_vs_numpy"] = float(np.max(np.abs(cp.asnumpy(p) - p_k)))
        out["loop_over_cupy_device"] = t_l / rows["cupy_device_draws"]["seconds"]
    return out


def bench_forecast(repeat: int) -> dict[str, Any]:
    from aiops_lab.finops import forecast, read_focus

    bill = read_focus(ROOT / "datasets" / "finops" / "ai_spend_focus.csv.gz")
    forecast(bill, by="service", horizon=30, budget=20_000)  # warm-up (imports, compilation)
    t, fc = _timed(lambda: forecast(bill, by="service", horizon=30, budget=20_000), repeat)
    n = fc.forecast["group"].n_unique()
    return {"series": n, "days": fc.history["date"].n_unique(), "seconds": t, "seconds_per_series": t / n,
            "chosen": dict(fc.backtest.filter(fc.backtest["chosen"]).select("group", "model").rows())}  # fmt: skip


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=4000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-forecast", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                                          "processor": platform.processor() or platform.machine()}}  # fmt: skip
    sim = bench_simulation(args.series, args.paths, args.days, args.repeat)
    result["simulation"] = sim
    print(f"(a) breach simulation, {sim['series']:,} series x {sim['paths']:,} paths x {sim['days']} days "
          f"(kernel chunks of {sim['chunk_series']} series)")  # fmt: skip
    print(f"    {'contender':<20}{'seconds':>10}{'peak memory':>14}")
    for name, row in sim["contenders"].items():
        print(f"    {name:<20}{row['seconds']:>10.2f}{_mib(row['peak_bytes']):>14}")
    print(f"    loop / kernel: {sim['loop_over_kernel']:.1f}x; max |p_breach difference|: "
          f"{sim['max_abs_diff_p_breach']:.2g}")  # fmt: skip
    if "loop_over_cupy_device" in sim:
        print(f"    loop / cupy (device draws): {sim['loop_over_cupy_device']:.1f}x; cupy (host draws) vs numpy "
              f"max |difference|: {sim['max_abs_diff_cupy_vs_numpy']:.2g}")  # fmt: skip
    if not args.skip_forecast:
        fc = bench_forecast(args.repeat)
        result["forecast"] = fc
        print(f"(b) forecast of the bundled bill by service: {fc['series']} series x {fc['days']} days, "
              f"{fc['seconds']:.2f} s ({fc['seconds_per_series']:.2f} s per series); chosen: {fc['chosen']}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

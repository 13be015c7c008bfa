"""Benchmark the FinOps budget-breach simulation and ``forecast``.

    python benchmarks/finops_bench.py [--series 1000] [--paths 4000] [--days 31] [--repeat 2]
                                      [--skip-forecast] [--skip-scale] [--scale-series 1000]
                                      [--scale-days 365] [--json out.json]

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

(b) ``forecast`` on the bundled bill by service (the default candidates for that many
    series, 3 backtest windows): wall time and time per series. Needs polars and statsforecast.

(c) Forecast at scale: ``--scale-series`` (1,000) synthetic daily spend series x
    ``--scale-days`` (365) days (fixed seed; per series a level, a weekly pattern, linear
    growth and multiplicative noise), in one run:

    * ``ours``: ``forecast(bill, by="service", horizon=30, budget={series: amount})`` end to
      end - daily series from the bill rows, rolling-origin backtest of the default
      candidates, per-series choice by MASE, the final fit, the breach simulation
      (4,000 paths of the next month per series) and the anomaly scan;
    * ``peer``: plain ``StatsForecast(models=[AutoETS(season_length=7)], freq="1d",
      n_jobs=...).forecast(df=..., h=30, level=[80, 95])`` on the same series, handed the
      long frame ready-made (no backtest, no simulation), with the same ``n_jobs`` as ours.

    Both see the first ``scale-days`` days; the 30 days after them were generated too,
    so the accuracy of each (MASE against the in-sample weekly naive error, and 80 % /
    95 % interval coverage) is reported beside the times. Wall time and CPU time (this
    process and its worker processes) are both printed: on a shared machine the CPU
    time is the steadier number. The issue's target is ``ours`` <= 60 s on 2 cores.
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


def make_series(n_series: int, n_days: int, seed: int = SEED) -> np.ndarray:
    """``(n_series, n_days)`` daily spend: level x weekly pattern x growth x noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_days)
    level = rng.lognormal(5.0, 1.0, n_series)
    week = 1.0 + rng.uniform(-0.35, 0.35, (n_series, 7))
    week[:, 5:] *= rng.uniform(0.4, 1.0, (n_series, 1))  # quieter weekends
    growth = 1.0 + rng.uniform(0.0, 0.003, n_series)[:, None] * t[None, :]
    noise = 1.0 + rng.uniform(0.02, 0.12, n_series)[:, None] * rng.standard_normal(
        (n_series, n_days)
    )
    return np.maximum(level[:, None] * week[:, t % 7] * growth * noise, 0.0)


def _cpu() -> float:
    import resource

    own, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _accuracy(actual: np.ndarray, history: np.ndarray, mean: np.ndarray, lo: dict[int, np.ndarray],
              hi: dict[int, np.ndarray]) -> dict[str, float]:  # fmt: skip
    scale = np.mean(np.abs(history[:, 7:] - history[:, :-7]), axis=1)
    mase = np.mean(np.abs(actual - mean), axis=1) / scale
    out = {"mase_mean": float(np.mean(mase)), "mase_median": float(np.median(mase))}
    for lv in (80, 95):
        out[f"coverage_{lv}"] = float(np.mean((actual >= lo[lv]) & (actual <= hi[lv])))
    return out


def bench_scale(n_series: int, n_days: int, n_jobs: int | None) -> dict[str, Any]:
    """(c): ours end to end against plain statsforecast AutoETS, same series, one run."""
    from datetime import date, timedelta

    import polars as pl
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS

    from aiops_lab.finops import forecast
    from aiops_lab.finops.forecast import PARALLEL_MIN_SERIES, default_models

    horizon = 30
    y_all = make_series(n_series, n_days + horizon)
    y, future = y_all[:, :n_days], y_all[:, n_days:]
    names = [f"svc-{i:04d}" for i in range(n_series)]
    start = date(2025, 1, 1)
    days = pl.datetime_range(
        start, start + timedelta(days=n_days - 1), "1d", eager=True, time_zone="UTC"
    )
    bill = pl.DataFrame({"ServiceName": np.repeat(names, n_days), "ChargePeriodStart": pl.concat([days] * n_series),
                         "EffectiveCost": y.ravel(), "BillingCurrency": "USD"})  # fmt: skip
    # budgets around the expected next month: some series at risk, most not
    rng = np.random.default_rng(SEED + 1)
    budget = {
        g: float(31 * y[i, -28:].mean() * rng.uniform(0.95, 1.25)) for i, g in enumerate(names)
    }
    jobs = n_jobs if n_jobs is not None else (1 if n_series < PARALLEL_MIN_SERIES else -1)

    cpu0, t0 = _cpu(), time.perf_counter()
    fc = forecast(bill, by="service", horizon=horizon, budget=budget, n_jobs=n_jobs)
    ours_s, ours_cpu = time.perf_counter() - t0, _cpu() - cpu0
    wide = fc.forecast.sort("group", "date")
    ours_acc = _accuracy(future, y, wide["mean"].to_numpy().reshape(n_series, horizon),
                         {lv: wide[f"lo_{lv}"].to_numpy().reshape(n_series, horizon) for lv in (80, 95)},
                         {lv: wide[f"hi_{lv}"].to_numpy().reshape(n_series, horizon) for lv in (80, 95)})  # fmt: skip

    long = pl.DataFrame({"unique_id": np.repeat(names, n_days), "ds": pl.concat([days.dt.date()] * n_series),
                         "y": y.ravel()})  # fmt: skip
    cpu0, t0 = _cpu(), time.perf_counter()
    peer = StatsForecast(models=[AutoETS(season_length=7)], freq="1d", n_jobs=jobs).forecast(
        df=long, h=horizon, level=[80, 95]
    )
    peer_s, peer_cpu = time.perf_counter() - t0, _cpu() - cpu0
    peer = peer.sort("unique_id", "ds")
    peer_acc = _accuracy(future, y, peer["AutoETS"].to_numpy().reshape(n_series, horizon),
                         {lv: peer[f"AutoETS-lo-{lv}"].to_numpy().reshape(n_series, horizon) for lv in (80, 95)},
                         {lv: peer[f"AutoETS-hi-{lv}"].to_numpy().reshape(n_series, horizon) for lv in (80, 95)})  # fmt: skip
    chosen = fc.backtest.filter(pl.col("chosen"))["model"].value_counts().sort("model").rows()
    return {"series": n_series, "days": n_days, "horizon": horizon, "n_jobs": jobs,
            "models": list(default_models(n_series)), "chosen": dict(chosen),
            "ours": {"seconds": ours_s, "cpu_seconds": ours_cpu, **ours_acc,
                     "backtest_mase": fc.summary["mase"], "backtest_coverage_80": fc.summary.get("coverage_80"),
                     "mean_p_breach": float(fc.breach["p_breach"].mean()), "anomalies": fc.anomalies.height},
            "peer": {"seconds": peer_s, "cpu_seconds": peer_cpu, **peer_acc},
            "peer_over_ours": peer_s / ours_s, "target_seconds": 60.0}  # fmt: skip


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--paths", type=int, default=4000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--skip-forecast", action="store_true")
    parser.add_argument("--skip-scale", action="store_true", help="skip (c), the 1,000-series run")
    parser.add_argument("--skip-simulation", action="store_true", help="skip (a)")
    parser.add_argument("--scale-series", type=int, default=1000)
    parser.add_argument("--scale-days", type=int, default=365)
    parser.add_argument(
        "--jobs", type=int, default=None, help="n_jobs for (c) (default: forecast's own)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)

    result: dict[str, Any] = {"machine": {"python": platform.python_version(), "numpy": np.__version__,
                                          "processor": platform.processor() or platform.machine()}}  # fmt: skip
    if not args.skip_simulation:
        _print_simulation(result, args)
    if not args.skip_forecast:
        fc = bench_forecast(args.repeat)
        result["forecast"] = fc
        print(f"(b) forecast of the bundled bill by service: {fc['series']} series x {fc['days']} days, "
              f"{fc['seconds']:.2f} s ({fc['seconds_per_series']:.2f} s per series); chosen: {fc['chosen']}")  # fmt: skip
    if not args.skip_scale:
        sc = bench_scale(args.scale_series, args.scale_days, args.jobs)
        result["scale"] = sc
        print(f"(c) {sc['series']:,} series x {sc['days']} days, horizon {sc['horizon']}, n_jobs {sc['n_jobs']}; "
              f"our candidates {sc['models']}, chosen {sc['chosen']}")  # fmt: skip
        print(
            f"    {'contender':<10}{'wall s':>9}{'cpu s':>9}{'MASE mean':>11}{'median':>8}{'cov80':>7}{'cov95':>7}"
        )
        for name in ("ours", "peer"):
            r = sc[name]
            print(f"    {name:<10}{r['seconds']:>9.1f}{r['cpu_seconds']:>9.1f}{r['mase_mean']:>11.3f}"
                  f"{r['mase_median']:>8.3f}{r['coverage_80']:>7.2f}{r['coverage_95']:>7.2f}")  # fmt: skip
        o = sc["ours"]
        print(f"    peer / ours: {sc['peer_over_ours']:.2f}x; ours {o['seconds']:.1f} s end to end "
              f"(target <= {sc['target_seconds']:.0f} s: {'met' if o['seconds'] <= sc['target_seconds'] else 'MISSED'}); "
              f"backtest MASE {o['backtest_mase']:.3f}, coverage_80 {o['backtest_coverage_80']:.2f}; "
              f"mean p_breach {o['mean_p_breach']:.2f}; {o['anomalies']} anomalous series-days")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


def _print_simulation(result: dict[str, Any], args: argparse.Namespace) -> None:
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


if __name__ == "__main__":
    raise SystemExit(main())

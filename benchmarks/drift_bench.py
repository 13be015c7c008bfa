"""Benchmark ``aiops_lab.drift.compare`` against a plain per-column SciPy implementation.

    python benchmarks/drift_bench.py [--rows 100000 300000 1000000] [--repeat 3] [--json out.json]

For each row count N a reference and a current polars frame of N rows are generated
(fixed seed): 50 float64 columns (normal, log-normal, integer-valued counts with
heavy ties, normal with NaN, rounded uniform with ties; 10 of them drifted) and 5
string columns (one with a category unseen in the reference, two drifted).

Contenders, each timed as the best of ``--repeat`` runs after one warm-up run at the
smallest N:

* ``compare``: ``aiops_lab.drift.compare(ref, cur, backend="numpy", progress=False)``;
* ``scipy loop``: the same statistics column by column with SciPy / NumPy, the way a
  user would write them (``ks_2samp``, ``wasserstein_distance``, ``np.quantile`` +
  ``searchsorted`` + ``bincount`` for PSI / Jensen-Shannon / Hellinger,
  ``chi2_contingency`` for categoricals and for the null-rate test);
* ``evidently`` and ``nannyml`` when they import (otherwise reported as not installed).

Peak memory is measured per contender in a fresh subprocess: the peak resident set
size during one run (``VmHWM``, i.e. ``ru_maxrss`` without the parent's peak that exec
carries over, after resetting it once the inputs exist) minus the resident set size
once the input frames are built.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats
from scipy.spatial.distance import jensenshannon

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 20240501
N_NUMERIC = 50
BINS = 10
PSI_EPS = 1e-4
#: numeric column kinds, cycled over the 50 columns
KINDS = ("normal", "lognormal", "count", "normal_nan", "rounded")
#: numeric columns that drift (two of each kind)
DRIFTED = (0, 6, 12, 18, 24, 30, 36, 42, 48, 49)
#: categorical columns: name -> (levels, drifted?, unseen level in current or None, null share)
CATEGORICAL: dict[str, tuple[list[str], bool, str | None, float]] = {
    "cat_channel": (["web", "app", "store", "phone"], False, None, 0.0),
    "cat_segment": ([f"seg_{i:02d}" for i in range(10)], True, None, 0.0),
    "cat_region": ([f"region_{i:02d}" for i in range(25)], False, "region_new", 0.0),
    "cat_tier": (["bronze", "silver", "gold"], True, None, 0.02),
    "cat_sku": ([f"sku_{i:03d}" for i in range(50)], False, None, 0.0),
}


# -- data ------------------------------------------------------------------------------------
def _numeric(rng: np.random.Generator, kind: str, n: int, drift: bool) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.05 if drift else 0.0, 1.0, n)
    if kind == "lognormal":
        return rng.lognormal(0.0, 1.05 if drift else 1.0, n)
    if kind == "count":  # integer-valued: heavy ties
        return rng.poisson(3.15 if drift else 3.0, n).astype(np.float64)
    if kind == "normal_nan":
        x = rng.normal(5.0, 2.0, n)
        x[rng.random(n) < (0.08 if drift else 0.05)] = np.nan
        return x
    if kind == "rounded":  # integer-valued, ~100 distinct values
        return np.round(rng.uniform(0.0, 102.0 if drift else 100.0, n))
    raise ValueError(kind)


def _categorical(rng: np.random.Generator, name: str, n: int, current: bool) -> pl.Series:
    levels, drift, unseen, null_share = CATEGORICAL[name]
    k = len(levels)
    weights = 1.0 / np.arange(1, k + 1)  # Zipf-like shares
    if current and drift:
        weights = weights[::-1] * 0.3 + weights * 0.7
    probs = weights / weights.sum()
    codes = rng.choice(k, size=n, p=probs)
    values = list(levels)
    if current and unseen is not None:
        values.append(unseen)
        codes[rng.random(n) < 0.005] = k
    s = pl.Series(name, values, dtype=pl.Utf8).gather(codes)
    if null_share:
        keep = pl.Series(rng.random(n) >= null_share)
        s = s.zip_with(keep, pl.repeat(None, n, dtype=pl.Utf8, eager=True)).alias(name)
    return s


def make_frames(n: int, seed: int = SEED) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reference and current frames for ``n`` rows (deterministic for a seed)."""
    frames = []
    for side in (0, 1):
        rng = np.random.default_rng([seed, n, side])
        cols: list[pl.Series] = []
        for i in range(N_NUMERIC):
            kind = KINDS[i % len(KINDS)]
            x = _numeric(rng, kind, n, drift=side == 1 and i in DRIFTED)
            cols.append(pl.Series(f"num_{i:02d}_{kind}", x))
        for name in CATEGORICAL:
            cols.append(_categorical(rng, name, n, current=side == 1))
        frames.append(pl.DataFrame(cols))
    return frames[0], frames[1]


def split_columns(frame: pl.DataFrame) -> tuple[list[str], list[str]]:
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    return numeric, [c for c in frame.columns if c not in numeric]


# -- contenders ------------------------------------------------------------------------------
def run_compare(ref: pl.DataFrame, cur: pl.DataFrame) -> dict[str, dict[str, float]]:
    from aiops_lab.drift import compare

    result = compare(ref, cur, backend="numpy", progress=False)
    table = result.table
    keys = ("ks", "ks_p", "wasserstein", "psi", "js", "hellinger", "chi2", "chi2_p", "linf",
            "null_p")  # fmt: skip
    rows = table.select("column", *keys).fill_null(float("nan")).iter_rows(named=True)
    return {r["column"]: {k: r[k] for k in keys} for r in rows}


def _null_test(n_null_ref: int, n_ref: int, n_null_cur: int, n_cur: int) -> float:
    table = np.array([[n_null_ref, n_ref - n_null_ref], [n_null_cur, n_cur - n_null_cur]])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        return float("nan")  # no nulls at all (or only nulls): nothing to test
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def _divergences(p: np.ndarray, q: np.ndarray) -> dict[str, float]:
    pf, qf = np.maximum(p, PSI_EPS), np.maximum(q, PSI_EPS)
    return {
        "psi": float(np.sum((qf - pf) * np.log(qf / pf))),
        "js": float(jensenshannon(p, q)),
        "hellinger": float(np.sqrt(max(1.0 - np.sum(np.sqrt(p * q)), 0.0))),
        "linf": float(np.max(np.abs(p - q))),
    }


def run_scipy_loop(ref: pl.DataFrame, cur: pl.DataFrame) -> dict[str, dict[str, float]]:
    """The plain implementation: one column at a time, SciPy and NumPy only."""
    numeric, categorical = split_columns(ref)
    probs = np.linspace(0.0, 1.0, BINS + 1)[1:-1]
    out: dict[str, dict[str, float]] = {}
    for c in numeric:
        a_all = ref[c].cast(pl.Float64).to_numpy()
        b_all = cur[c].cast(pl.Float64).to_numpy()
        a, b = a_all[np.isfinite(a_all)], b_all[np.isfinite(b_all)]
        ks = stats.ks_2samp(a, b)
        edges = np.quantile(a, probs)
        p = np.bincount(np.searchsorted(edges, a, side="right"), minlength=BINS) / a.size
        q = np.bincount(np.searchsorted(edges, b, side="right"), minlength=BINS) / b.size
        out[c] = {
            "ks": float(ks.statistic),
            "ks_p": float(ks.pvalue),
            "wasserstein": float(stats.wasserstein_distance(a, b)),
            **_divergences(p, q),
            "null_p": _null_test(
                int(np.isnan(a_all).sum()), a_all.size, int(np.isnan(b_all).sum()), b_all.size
            ),
        }
    for c in categorical:
        rc = dict(ref[c].drop_nulls().value_counts().iter_rows())
        cc = dict(cur[c].drop_nulls().value_counts().iter_rows())
        levels = sorted(set(rc) | set(cc))
        r = np.array([rc.get(v, 0) for v in levels], dtype=np.float64)
        k = np.array([cc.get(v, 0) for v in levels], dtype=np.float64)
        chi2 = stats.chi2_contingency(np.vstack([r, k]), correction=False)
        out[c] = {
            "chi2": float(chi2.statistic),
            "chi2_p": float(chi2.pvalue),
            **_divergences(r / r.sum(), k / k.sum()),
            "null_p": _null_test(ref[c].null_count(), ref.height, cur[c].null_count(), cur.height),
        }
    return out


def _evidently_runner() -> Callable[[pl.DataFrame, pl.DataFrame], Any]:
    try:  # evidently >= 0.7
        from evidently import Report
        from evidently.presets import DataDriftPreset

        def run(ref: pl.DataFrame, cur: pl.DataFrame) -> Any:
            return Report([DataDriftPreset()]).run(cur.to_pandas(), ref.to_pandas())

    except ImportError:  # evidently < 0.7
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report

        def run(ref: pl.DataFrame, cur: pl.DataFrame) -> Any:
            report = Report(metrics=[DataDriftPreset()])
            report.run(reference_data=ref.to_pandas(), current_data=cur.to_pandas())
            return report.as_dict()

    return run


def _nannyml_runner() -> Callable[[pl.DataFrame, pl.DataFrame], Any]:
    import nannyml

    def run(ref: pl.DataFrame, cur: pl.DataFrame) -> Any:
        calc = nannyml.UnivariateDriftCalculator(
            column_names=ref.columns,
            continuous_methods=["kolmogorov_smirnov", "wasserstein", "jensen_shannon", "hellinger"],
            categorical_methods=["chi2", "jensen_shannon", "l_infinity", "hellinger"],
            chunk_number=1,
        )
        return calc.fit(ref.to_pandas()).calculate(cur.to_pandas())

    return run


def contenders() -> tuple[dict[str, Callable[..., Any]], dict[str, str]]:
    """The runnable contenders, and why the optional ones are missing."""
    found: dict[str, Callable[..., Any]] = {"compare": run_compare, "scipy_loop": run_scipy_loop}
    missing: dict[str, str] = {}
    for name, factory in (("evidently", _evidently_runner), ("nannyml", _nannyml_runner)):
        try:
            found[name] = factory()
        except ImportError:
            missing[name] = "not installed"
        except Exception as exc:  # a broken install must not stop the benchmark
            missing[name] = f"failed to import ({type(exc).__name__}: {exc})"
    return found, missing


# -- measurement ------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    """Peak resident set size of this process.

    ``VmHWM`` from ``/proc/self/status`` where there is one: ``ru_maxrss`` also keeps the
    peak of the process that forked this one (exec carries it over), so a subprocess
    started by a large parent reports the parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0) so it excludes data generation."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def child(name: str, rows: int) -> None:
    """Subprocess mode: build the frames, run ``name`` once, print its memory as JSON."""
    runners, _ = contenders()
    runners[name](*make_frames(2_000))  # imports and first-use set-up are not part of the peak
    ref, cur = make_frames(rows)
    gc.collect()
    reset = _reset_peak()
    base = _rss_bytes()
    base_peak = _maxrss_bytes()
    t0 = time.perf_counter()
    runners[name](ref, cur)
    elapsed = time.perf_counter() - t0
    peak = _maxrss_bytes()
    print(
        json.dumps(
            {
                "rss_after_inputs": base,
                "peak_before_run": base_peak,
                "peak_after_run": peak,
                "ru_maxrss_after_run": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "peak_extra": peak - (base if reset else max(base, base_peak)),
                "peak_reset": reset,
                "seconds": elapsed,
            }
        )
    )


def measure_memory(name: str, rows: int) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--rows", str(rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def best_of(fn: Callable[..., Any], args: tuple[Any, ...], repeat: int) -> dict[str, Any]:
    wall, cpu, out = [], [], None
    for _ in range(repeat):
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn(*args)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    best = int(np.argmin(wall))
    return {"best_s": wall[best], "cpu_s": cpu[best], "all_s": wall, "result": out}


def differences(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Max absolute difference per statistic over the columns both report."""
    diffs: dict[str, float] = {}
    rel: dict[str, float] = {}
    for col, sa in a.items():
        for key, va in sa.items():
            vb = b.get(col, {}).get(key)
            if vb is None or (np.isnan(va) and np.isnan(vb)):
                continue
            d = abs(va - vb) if np.isfinite(va) and np.isfinite(vb) else float("inf")
            diffs[key] = max(diffs.get(key, 0.0), d)
            rel[key] = max(rel.get(key, 0.0), d / max(abs(vb), 1e-300) if d else 0.0)
    return {"max_abs": diffs, "max_rel": rel}


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, spec)


def _machine(**versions: str) -> dict[str, Any]:
    """The machine and library versions a run was measured on (``versions`` adds more)."""
    import scipy

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "polars": pl.__version__,
        **versions,
        "load_average": os.getloadavg(),
        "env": {
            k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "POLARS"))
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--no-memory", action="store_true", help="skip the subprocess runs")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.rows[0])
        return 0

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    machine = _machine()
    runners, missing = contenders()
    for name, why in missing.items():
        print(f"{name}: {why}")
    rows_list = sorted(args.rows)
    log(f"warm-up at {rows_list[0]:,} rows")
    ref, cur = make_frames(rows_list[0])
    for fn in runners.values():
        fn(ref, cur)
    results = []
    for rows in rows_list:
        t0 = time.perf_counter()
        ref, cur = make_frames(rows)
        input_bytes = int(ref.estimated_size() + cur.estimated_size())
        log(f"{rows:,} rows: frames built in {time.perf_counter() - t0:.1f} s "
            f"({input_bytes / 2**20:.0f} MiB)")  # fmt: skip
        entry: dict[str, Any] = {"rows": rows, "input_bytes": input_bytes, "contenders": {}}
        outputs = {}
        for name, fn in runners.items():
            log(f"  timing {name} (best of {args.repeat})")
            try:
                timing = best_of(fn, (ref, cur), args.repeat)
            except Exception as exc:
                entry["contenders"][name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            outputs[name] = timing.pop("result")
            entry["contenders"][name] = timing
            log(f"    {timing['best_s']:.2f} s (runs: "
                + ", ".join(f"{t:.2f}" for t in timing["all_s"]) + ")")  # fmt: skip
        del ref, cur
        gc.collect()
        if not args.no_memory:
            for name in runners:
                log(f"  peak memory of {name} (fresh process)")
                entry["contenders"].setdefault(name, {})["memory"] = measure_memory(name, rows)
        if "compare" in outputs and "scipy_loop" in outputs:
            entry["diff"] = differences(outputs["compare"], outputs["scipy_loop"])
        results.append(entry)

    _print_tables(results, runners)
    if args.json:
        machine["load_average_end"] = os.getloadavg()
        payload = {"machine": machine, "missing": missing, "results": results}
        args.json.write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


def _peak_mb(c: dict[str, Any]) -> float | None:
    mem = c.get("memory", {})
    return mem["peak_extra"] / 2**20 if "peak_extra" in mem else None


def _print_tables(results: list[dict[str, Any]], runners: dict[str, Any]) -> None:
    print()
    print(
        "| rows | compare s | scipy loop s | speed-up | compare peak extra MB | input MB | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for e in results:
        c, s = e["contenders"].get("compare", {}), e["contenders"].get("scipy_loop", {})
        cs, ss = c.get("best_s"), s.get("best_s")
        speed = ss / cs if cs and ss else None
        peak = _peak_mb(c)
        in_mb = e["input_bytes"] / 2**20
        ratio = peak / in_mb if peak is not None else None
        print(f"| {e['rows']:,} | {_fmt(cs, '.2f')} | {_fmt(ss, '.2f')} | {_fmt(speed, '.1f')}x "
              f"| {_fmt(peak, '.0f')} | {in_mb:.0f} | {_fmt(ratio, '.2f')} |")  # fmt: skip
    print()
    print("| rows | compare CPU s | scipy loop CPU s | scipy loop peak extra MB (ratio) "
          "| max abs diff KS | max abs diff KS p | max rel diff other stats |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for e in results:
        c, s = e["contenders"].get("compare", {}), e["contenders"].get("scipy_loop", {})
        sp = _peak_mb(s)
        in_mb = e["input_bytes"] / 2**20
        d = e.get("diff", {"max_abs": {}, "max_rel": {}})
        others = {k: v for k, v in d["max_rel"].items() if k not in ("ks", "ks_p")}
        worst = max(others.items(), key=lambda kv: kv[1]) if others else None
        worst_s = f"{worst[1]:.1e} ({worst[0]})" if worst else "n/a"
        sp_s = f"{sp:.0f} ({sp / in_mb:.2f})" if sp is not None else "n/a"
        print(f"| {e['rows']:,} | {_fmt(c.get('cpu_s'), '.2f')} | {_fmt(s.get('cpu_s'), '.2f')} "
              f"| {sp_s} | {_fmt(d['max_abs'].get('ks'), '.1e')} "
              f"| {_fmt(d['max_abs'].get('ks_p'), '.1e')} | {worst_s} |")  # fmt: skip
    extra = [n for n in runners if n not in ("compare", "scipy_loop")]
    if extra:
        print()
        print("| rows | " + " | ".join(f"{n} s | {n} peak extra MB" for n in extra) + " |")
        print("|---:|" + "---:|---:|" * len(extra))
        for e in results:
            cells = []
            for n in extra:
                c = e["contenders"].get(n, {})
                cells += [c.get("error") or _fmt(c.get("best_s"), ".2f"), _fmt(_peak_mb(c), ".0f")]
            print(f"| {e['rows']:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())

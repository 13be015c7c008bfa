"""One command for a machine with an NVIDIA GPU: are the drift kernels right, and fast, on CuPy?

    python benchmarks/gpu_check.py [--rows 100000 1000000 5000000] [--cols 50] [--repeat 3]

Needs NumPy, SciPy, pytest and CuPy; not polars, altair or mlflow. When
``array_api_compat`` is missing it is installed offline from ``benchmarks/wheels``
(see ``benchmarks/fetch_wheels.sh``), together with ``array_api_strict`` if possible.

1. Runs ``pytest tests/test_drift_kernels.py tests/test_gpu_kernels.py -q -k "not import_without"`` (the kernel
   tests, parametrized over numpy / array_api_strict / cupy) and reports the outcome
   per namespace.
2. Times the drift kernels alone on the same data, NumPy vs CuPy: ``sort_sample``,
   ``quantile_edges``, ``bin_counts``, ``std``, ``ks_wasserstein`` and ``divergences``
   for a reference and a current sample of N rows x ``--cols`` columns, then the KS
   p-values on the host; checks that CuPy's results equal NumPy's.
3. Times the GPU review's accounting kernels (``sample_weights``, ``idle_run_parts``,
   ``grouped_quantiles``) on ``--review-rows`` samples of 64 GPUs, NumPy vs CuPy, and
   checks that the results agree.

Without CuPy or a working GPU it says so and exits 0 (after running the tests on the
CPU namespaces). Exit status 1 means a test failed or CuPy disagreed with NumPy.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / "benchmarks" / "wheels"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: directories added to the import path for offline installs (also passed to pytest)
EXTRA_PATHS: list[str] = []
#: measured live (C, n_ref + n_cur) float64-sized arrays at the peak of ks_wasserstein
WORKSPACE_ARRAYS = 14
BINS = 10
KINDS = ("normal", "lognormal", "count", "normal_nan", "rounded")


def say(msg: str = "") -> None:
    print(msg, flush=True)


# -- environment ------------------------------------------------------------------------------
def _pip_install(package: str, target: str | None) -> tuple[bool, str]:
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(WHEELS)]
    cmd += ["--target", target] if target else []
    proc = subprocess.run([*cmd, package], capture_output=True, text=True, check=False)
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
    return proc.returncode == 0, tail[0]


def ensure_array_api() -> bool:
    """Make array_api_compat importable (offline install from benchmarks/wheels if needed).

    array_api_strict is optional: the tests skip it when it is missing.
    """
    for module, package, required in (
        ("array_api_compat", "array-api-compat", True),
        ("array_api_strict", "array-api-strict", False),
    ):
        if importlib.util.find_spec(module) is not None:
            continue
        if not WHEELS.is_dir():
            say(f"{module}: missing, and there is no {WHEELS.relative_to(ROOT)}/ to install from")
            if required:
                return False
            continue
        ok, why = _pip_install(package, None)
        if not ok:  # e.g. a read-only or externally managed environment: a private folder
            target = tempfile.mkdtemp(prefix="aiops_lab_wheels_")
            ok, why = _pip_install(package, target)
            if ok:
                sys.path.insert(0, target)
                EXTRA_PATHS.append(target)
        importlib.invalidate_caches()
        if ok and importlib.util.find_spec(module) is not None:
            say(f"{module}: installed from {WHEELS.relative_to(ROOT)}/")
        else:
            say(f"{module}: missing and could not be installed offline ({why})")
            if required:
                return False
    return True


def probe_gpu() -> tuple[Any, str]:
    """(cupy module or None, the GPU's name or why there is none)."""
    if importlib.util.find_spec("cupy") is None:
        return None, "CuPy is not installed"
    try:
        import cupy
    except Exception as exc:
        return None, f"CuPy failed to import ({type(exc).__name__}: {exc})"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None, "CuPy found no CUDA device"
        if float(cupy.asarray([1.0, 2.0]).sum().get()) != 3.0:
            return None, "the CUDA smoke test gave a wrong answer"
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return None, f"no usable CUDA device ({type(exc).__name__}: {exc})"
    return cupy, name


# -- tests --------------------------------------------------------------------------------------
def run_tests(expect_cupy: bool) -> bool:
    """Run the kernel tests in a subprocess; report the outcome per array namespace.

    With ``expect_cupy`` (a working GPU), no passing CuPy test counts as a failure.
    """
    import xml.etree.ElementTree as ET

    junit = Path(tempfile.mkdtemp(prefix="aiops_lab_tests_")) / "junit.xml"
    args = [
        "tests/test_drift_kernels.py",
        "tests/test_gpu_kernels.py",
        "tests/test_drift_mv_kernels.py",
        "tests/test_drift_pca_kernels.py",
        "tests/test_drift_estimation_kernels.py",
        "tests/test_finops_kernels.py",
        "-q",
        "-k",
        "not import_without",
    ]
    # the project's addopts may name plugins this machine lacks (nbval): replace them
    cmd = [sys.executable, "-m", "pytest", *args, "-o", "addopts=-ra --strict-markers"]
    cmd += ["-p", "no:cacheprovider", f"--junitxml={junit}"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *EXTRA_PATHS, *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    say("$ pytest " + " ".join(f'"{a}"' if " " in a else a for a in args))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).strip()
    outcomes: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    if junit.exists():
        for case in ET.parse(junit).getroot().iter("testcase"):
            params = re.search(r"\[([^\]]*)\]", case.get("name", ""))
            parts = params.group(1).split("-") if params else []
            ns = next((p for p in parts if p in ("numpy", "array_api_strict", "cupy")), "other")
            status = "passed"
            for child in case:
                if child.tag in ("skipped", "failure", "error"):
                    status = {"skipped": "skipped", "failure": "failed", "error": "errors"}[
                        child.tag
                    ]
                    if child.tag == "skipped":
                        why = child.get("message", "")
                        reasons[why] = reasons.get(why, 0) + 1
            outcomes.setdefault(ns, {}).setdefault(status, 0)
            outcomes[ns][status] += 1
    for ns, counts in sorted(outcomes.items()):
        say(f"  {ns:>16}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    for why, count in reasons.items():
        say(f"  skipped x{count}: {why}")
    summary = [ln for ln in out.splitlines() if re.search(r"\d+ (passed|failed|error|skipped)", ln)]
    say(f"  pytest: {summary[-1].strip('= ') if summary else 'no summary'} "
        f"(exit {proc.returncode}, {time.perf_counter() - t0:.1f} s)")  # fmt: skip
    cupy_passed = outcomes.get("cupy", {}).get("passed", 0)
    if expect_cupy and not cupy_passed:
        say("  the GPU works, but no CuPy-parametrized test passed (see the skip reasons)")
    if proc.returncode != 0:
        say("---- pytest output (tail) ----")
        say("\n".join(out.splitlines()[-60:]))
        say("------------------------------")
    return proc.returncode == 0 and (cupy_passed > 0 or not expect_cupy)


# -- data and pipeline ------------------------------------------------------------------------
def make_data(n: int, cols: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(cols, n) reference and current samples: every other column of each kind drifts
    clearly (KS ~0.1 or more), so host p-values stay cheap; NaNs in the "normal_nan" kind."""
    out = []
    for side in (0, 1):
        rng = np.random.default_rng([seed, n, side])
        x = np.empty((cols, n))
        for i in range(cols):
            kind, drift = KINDS[i % len(KINDS)], side == 1 and (i // len(KINDS)) % 2 == 0
            if kind == "normal":
                x[i] = rng.normal(0.3 if drift else 0.0, 1.0, n)
            elif kind == "lognormal":
                x[i] = rng.lognormal(0.3 if drift else 0.0, 1.0, n)
            elif kind == "count":
                x[i] = rng.poisson(3.6 if drift else 3.0, n)
            elif kind == "normal_nan":
                x[i] = rng.normal(5.6 if drift else 5.0, 2.0, n)
                x[i, rng.random(n) < (0.08 if drift else 0.05)] = np.nan
            else:
                x[i] = np.round(rng.uniform(10.0 if drift else 0.0, 110.0 if drift else 100.0, n))
        out.append(x)
    return out[0], out[1]


def pipeline(xp: Any, K: Any, ref: Any, cur: Any, probs: Any, sync: Callable[[], None] | None = None,
             stages: dict[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """What the engine does per block of columns, minus polars: prepare the reference,
    compare the current sample. With ``stages``, times each stage (``sync`` between)."""
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        if stages is not None:
            if sync is not None:
                sync()
            now = time.perf_counter()
            stages[name] = stages.get(name, 0.0) + now - clock[0]
            clock[0] = now

    rs, cs = K.sort_sample(xp, ref), K.sort_sample(xp, cur)
    lap("sort")
    edges = K.quantile_edges(xp, rs, probs)
    ref_bins, cur_bins = K.bin_counts(xp, rs, edges), K.bin_counts(xp, cs, edges)
    lap("edges+bins")
    sd = K.std(xp, rs)
    lap("std")
    ks, w = K.ks_wasserstein(xp, rs, cs)
    lap("ks_wasserstein")
    div = K.divergences(xp, ref_bins, cur_bins)
    lap("divergences")
    return {"ks": ks, "wasserstein": w, "edges": edges, "ref_bins": ref_bins,
            "cur_bins": cur_bins, "std": sd, "n_ref": rs.n_valid, "n_cur": cs.n_valid,
            **div}  # fmt: skip


def run_blocks(xp: Any, K: Any, ref: Any, cur: Any, probs: Any, block: int, workers: int,
               to_host: Callable[[Any], np.ndarray], **kw: Any) -> dict[str, np.ndarray]:  # fmt: skip
    spans = [(i, min(i + block, ref.shape[0])) for i in range(0, ref.shape[0], block)]

    def one(span: tuple[int, int]) -> dict[str, Any]:
        a, b = span
        return pipeline(xp, K, ref[a:b, ...], cur[a:b, ...], probs, **kw)

    if workers > 1 and len(spans) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(spans))) as pool:
            parts = list(pool.map(one, spans))
    else:
        parts = [one(s) for s in spans]
    return {k: np.concatenate([to_host(p[k]) for p in parts]) for k in parts[0]}


def engine_block(n_ref: int, n_cur: int, cols: int, workers: int) -> int:
    """The block size aiops_lab.drift.engine picks on NumPy (capped by the thread count)."""
    import array_api_compat.numpy as npx

    from aiops_lab.drift import kernels as K

    size = K.block_columns(npx, n_ref + n_cur, cols)
    return max(1, min(size, math.ceil(cols / workers))) if workers > 1 else size


def best(fn: Callable[[], Any], repeat: int, sync: Callable[[], None]) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times), out


def max_diffs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for k in a:
        x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.where(both_nan, 0.0, np.abs(x - y))
        out[k] = float(np.nanmax(np.where(np.isnan(d), np.inf, d))) if d.size else 0.0
    return out


# -- benchmark ----------------------------------------------------------------------------------
class Bench:
    """NumPy vs CuPy on the same data, one row count at a time."""

    def __init__(self, cupy: Any, gpu: str, cols: int, repeat: int, cpu_repeat: int) -> None:
        import array_api_compat.cupy as cxp
        import array_api_compat.numpy as nxp

        from aiops_lab.drift import kernels
        from aiops_lab.pvalues import ks_pvalue

        self.cupy, self.gpu, self.cols = cupy, gpu, cols
        self.repeat, self.cpu_repeat = repeat, cpu_repeat
        self.cxp, self.nxp, self.K, self.ks_pvalue = cxp, nxp, kernels, ks_pvalue
        self.workers = min(os.cpu_count() or 1, 8)
        self.sync = cupy.cuda.Device().synchronize
        self.pool = cupy.get_default_memory_pool()
        self.probs_np = np.linspace(0.0, 1.0, BINS + 1)[1:-1]
        self.probs_gpu = cxp.asarray(self.probs_np)

    def numpy_run(self, ref: np.ndarray, cur: np.ndarray, block: int) -> dict[str, np.ndarray]:
        return run_blocks(
            self.nxp, self.K, ref, cur, self.probs_np, block, self.workers, np.asarray
        )

    def gpu_run(self, ref: Any, cur: Any, block: int, **kw: Any) -> dict[str, np.ndarray]:
        return run_blocks(
            self.cxp, self.K, ref, cur, self.probs_gpu, block, 1, self.cupy.asnumpy, **kw
        )

    def warm_up(self) -> None:
        """Compile every CuPy kernel once and fault in NumPy's code paths."""
        ref, cur = make_data(20_000, 5)
        self.gpu_run(self.cxp.asarray(ref), self.cxp.asarray(cur), 5)
        run_blocks(self.nxp, self.K, ref, cur, self.probs_np, 5, 1, np.asarray)
        self.sync()

    def size(self, n: int) -> tuple[Any, ...]:
        cols, cupy, sync = self.cols, self.cupy, self.sync
        t0 = time.perf_counter()
        ref, cur = make_data(n, cols)
        say(f"\n{n:,} rows x {cols} columns: data made in {time.perf_counter() - t0:.1f} s "
            f"({(ref.nbytes + cur.nbytes) / 2**30:.2f} GiB on each side of the bus)")  # fmt: skip
        nb = engine_block(n, n, cols, self.workers)
        t_np, res_np = best(partial(self.numpy_run, ref, cur, nb), self.cpu_repeat, lambda: None)
        say(f"  numpy ({nb} columns/block, {self.workers} threads): {t_np:.3f} s")
        t_h2d, g_ref = best(partial(self.cxp.asarray, ref), 1, sync)
        t_h2d_cur, g_cur = best(partial(self.cxp.asarray, cur), 1, sync)
        t_h2d += t_h2d_cur
        free = cupy.cuda.runtime.memGetInfo()[0]
        big = max(1, min(cols, int(min(free / 4, 16 * 2**30)) // (8 * WORKSPACE_ARRAYS * 2 * n)))
        eng = self.K.block_columns(self.cxp, 2 * n, cols)  # what the engine picks on CuPy
        self.pool.free_all_blocks()
        t_big, res_gpu = best(partial(self.gpu_run, g_ref, g_cur, big), self.repeat, sync)
        say(f"  cupy ({big} columns/block): {t_big:.4f} s "
            f"(memory pool {self.pool.total_bytes() / 2**30:.1f} GiB)")  # fmt: skip
        t_eng = None
        if eng != big:
            t_eng, _ = best(partial(self.gpu_run, g_ref, g_cur, eng), self.repeat, sync)
            say(f"  cupy ({eng} columns/block, as the engine picks on CuPy): {t_eng:.4f} s")
        stages: dict[str, float] = {}
        self.gpu_run(g_ref, g_cur, big, sync=sync, stages=stages)
        say("  cupy stages: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in stages.items()))
        t_p = time.perf_counter()
        p_np = self.ks_pvalue(res_np["ks"], res_np["n_ref"], res_np["n_cur"])
        t_p = time.perf_counter() - t_p
        same = all(np.array_equal(res_np[k], res_gpu[k]) for k in ("ks", "n_ref", "n_cur"))
        p_gpu = p_np if same else self.ks_pvalue(res_gpu["ks"], res_gpu["n_ref"], res_gpu["n_cur"])
        diffs = max_diffs(res_np, res_gpu)
        diffs["ks_p"] = max_diffs({"p": p_np}, {"p": p_gpu})["p"]
        w_np, w_gpu = res_np["wasserstein"], res_gpu["wasserstein"]
        rel_w = float(np.max(np.abs(w_np - w_gpu) / np.maximum(np.abs(w_np), 1e-300)))
        exact = ("ks", "ref_bins", "cur_bins", "n_ref", "n_cur", "ks_p")
        close = ("edges", "std", "psi", "js", "hellinger", "linf")
        good = all(diffs[k] == 0.0 for k in exact) and rel_w < 1e-9
        good &= all(diffs[k] < 1e-9 for k in close)
        say("  max |numpy - cupy|: " + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items())
            + f"; wasserstein rel {rel_w:.1e} -> {'OK' if good else 'MISMATCH'}")  # fmt: skip
        del g_ref, g_cur
        self.pool.free_all_blocks()
        return n, t_np, t_big, t_eng, t_h2d, t_p, diffs["ks"], diffs["ks_p"], good


def benchmark(cupy: Any, gpu: str, rows_list: list[int], cols: int, repeat: int,
              cpu_repeat: int) -> bool:  # fmt: skip
    bench = Bench(cupy, gpu, cols, repeat, cpu_repeat)
    rt = cupy.cuda.runtime.runtimeGetVersion()
    say(f"GPU: {gpu} (CuPy {cupy.__version__}, CUDA runtime {rt // 1000}.{rt % 1000 // 10}); "
        f"CPU: {os.cpu_count()} cores, NumPy {np.__version__} on {bench.workers} threads "
        "in the engine's NumPy blocks")  # fmt: skip
    bench.warm_up()
    rows = [bench.size(n) for n in rows_list]
    say(f"\nDrift kernels, {cols} columns, reference and current of N rows each; GPU: {gpu}")
    say("| rows | NumPy s | CuPy s | speed-up | CuPy s, engine blocks | H2D copy s "
        "| host KS p-values s | max abs diff KS / p | equal |")  # fmt: skip
    say("|---:|---:|---:|---:|---:|---:|---:|---:|:---:|")
    for n, t_np, t_big, t_eng, t_h2d, t_p, dks, dp, good in rows:
        eng_s = f"{t_eng:.4f}" if t_eng is not None else "same"
        say(f"| {n:,} | {t_np:.3f} | {t_big:.4f} | {t_np / t_big:.0f}x | {eng_s} | {t_h2d:.3f} "
            f"| {t_p:.3f} | {dks:.1e} / {dp:.1e} | {'yes' if good else 'NO'} |")  # fmt: skip
    return all(r[-1] for r in rows)


def review_kernels(cupy: Any, n: int, repeat: int) -> bool:
    """The GPU review's accounting kernels on ``n`` samples of 64 GPUs: NumPy vs CuPy."""
    import array_api_compat.cupy as cxp
    import array_api_compat.numpy as nxp

    from aiops_lab.gpu import kernels as G

    rng = np.random.default_rng(5)
    n_gpus = 64
    interval = rng.choice([1.0, 2.0, 5.0, 10.0, 30.0], n_gpus)
    share = (1 / interval) / (1 / interval).sum()
    sizes = np.maximum(np.floor(share * n).astype(np.int64), 2)
    group = np.repeat(np.arange(n_gpus), sizes)
    step = interval[group] * rng.uniform(0.95, 1.05, group.size)
    step[rng.random(group.size) < 5e-4] *= 50.0  # gaps
    t_us = np.round(np.cumsum(step) * 1e6).astype(np.int64)
    util = np.round(rng.uniform(0, 100, group.size))
    idle = util < 5.0

    def run(xp: Any, g: Any, t: Any, u: Any, i: Any) -> list[Any]:
        w, median = G.sample_weights(xp, g, t, n_gpus)
        parts = G.idle_run_parts(xp, g, i, w, n_gpus)
        q50, q95 = G.grouped_quantiles(xp, g, u, n_gpus, (0.5, 0.95))
        return [w, median, *parts, q50, q95]

    sync = cupy.cuda.Device().synchronize
    t_np, res_np = best(partial(run, nxp, group, t_us, util, idle), 1, lambda: None)
    dev = [cxp.asarray(a) for a in (group, t_us, util, idle)]
    run(cxp, *dev)  # compile
    t_gpu, res_gpu = best(partial(run, cxp, *dev), repeat, sync)
    res_gpu = [cupy.asnumpy(a) for a in res_gpu]
    good = all(
        np.allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=1e-12, equal_nan=True)
        for a, b in zip(res_np, res_gpu, strict=True)
    )  # fmt: skip
    say(f"\nGPU review kernels, {group.size:,} samples of {n_gpus} GPUs "
        "(weights + idle runs + p50/p95 per GPU):")  # fmt: skip
    say(f"  numpy {t_np:.3f} s, cupy {t_gpu:.4f} s ({t_np / t_gpu:.1f}x); "
        f"results agree: {'yes' if good else 'NO'}")  # fmt: skip
    return good


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    parser.add_argument("--cols", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="CuPy runs per size (best is kept)")
    parser.add_argument("--cpu-repeat", type=int, default=2, help="NumPy runs per size")
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--review-rows", type=int, default=10_000_000)
    args = parser.parse_args(argv)

    say(f"python {platform.python_version()} on {platform.platform()}; numpy {np.__version__}")
    have_compat = ensure_array_api()
    cupy, gpu = probe_gpu()
    say(f"GPU: {gpu if cupy is not None else 'none -- ' + gpu}")
    tests_ok = True
    if not args.skip_tests:
        if have_compat:
            tests_ok = run_tests(expect_cupy=cupy is not None)
        else:
            tests_ok = False
            say("kernel tests not run: array_api_compat is missing (run benchmarks/fetch_wheels.sh "
                "on a machine with network and carry benchmarks/wheels/)")  # fmt: skip
    if cupy is None:
        say(f"\nNo GPU check: {gpu}. Nothing to benchmark here; run this on a machine with an "
            "NVIDIA GPU and CuPy (pip install 'aiops_lab[gpu]' or cupy-cuda12x).")  # fmt: skip
        return 0
    if not have_compat:
        say("No benchmark: array_api_compat is missing.")
        return 1
    bench_ok = benchmark(cupy, gpu, sorted(args.rows), args.cols, args.repeat, args.cpu_repeat)
    if args.review_rows:
        bench_ok &= review_kernels(cupy, args.review_rows, args.repeat)
    say(f"\nkernel tests: {'passed' if tests_ok else 'FAILED'}; "
        f"CuPy equals NumPy: {'yes' if bench_ok else 'NO'}")  # fmt: skip
    return 0 if tests_ok and bench_ok else 1


if __name__ == "__main__":
    sys.exit(main())

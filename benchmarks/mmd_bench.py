"""Time ``aiops_lab.drift.mmd`` next to alibi-detect's ``MMDDrift``, and on a GPU.

    python benchmarks/mmd_bench.py                                   # CPU: 2,000 and 5,000 x 50
    python benchmarks/mmd_bench.py --alibi-python /tmp/peer-alibi/bin/python
    python benchmarks/mmd_bench.py --gpu                             # CuPy: up to 100,000 x 768

Needs NumPy and SciPy only (no polars): it also runs on a GPU machine.

**Data.** For each size ``N x d`` two samples of ``N`` rows are drawn from a fixed seed:
the reference from a standard normal, the current from the same normal with the first
column shifted by 0.1 (a drift a test should find with a few thousand rows).

**CPU contenders** (each the best of ``--repeat`` runs after one warm-up run):

* ``aiops_lab``: ``mmd(ref, cur, permutations=100, backend="numpy")`` -- float64, the
  median-heuristic bandwidth over the pooled sample, 100 permutations;
* ``alibi-detect``: ``MMDDrift(ref, backend="pytorch", n_permutations=100,
  device="cpu").predict(cur)`` timed together (alibi-detect also sets its kernel
  bandwidth from the data by the median heuristic). alibi-detect pins its own
  versions, so it may live in another virtual environment: ``--alibi-python``
  names that environment's interpreter; it runs there in a subprocess (this script
  in ``--child`` mode) on the same arrays, saved to a temporary ``.npz``.

**GPU** (``--gpu``): ``mmd`` on CuPy arrays already on the device (float32 work, float64
sums; 100 permutations), best of ``--repeat`` runs after a warm-up, with the device
synchronised before the clock stops. At the smallest size the result is checked
against the NumPy float64 run (statistic and p-value).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def say(msg: str = "") -> None:
    print(msg, flush=True)


def make_data(
    n: int, d: int, seed: int = 11, dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.standard_normal((n, d), dtype=np.float32 if dtype == np.float32 else np.float64)
    cur = rng.standard_normal((n, d), dtype=np.float32 if dtype == np.float32 else np.float64)
    cur[:, 0] += 0.1
    return ref, cur


def best_of(fn: Any, repeat: int, sync: Any = None) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        times.append(time.perf_counter() - t0)
    return min(times), out


# -- the peer, in its own interpreter -------------------------------------------------------
def child(npz: str, permutations: int, repeat: int) -> None:
    import alibi_detect
    import torch
    from alibi_detect.cd import MMDDrift

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = np.load(npz)
    ref, cur = data["ref"].astype(np.float32), data["cur"].astype(np.float32)

    def run() -> dict[str, Any]:
        cd = MMDDrift(ref, backend="pytorch", p_val=0.05, n_permutations=permutations, device="cpu")
        return cd.predict(cur)["data"]

    run_small = MMDDrift(ref[:200], backend="pytorch", n_permutations=10, device="cpu")
    run_small.predict(cur[:200])  # warm-up: imports, first-use set-up
    seconds, pred = best_of(run, repeat)
    out = {
        "seconds": seconds,
        "p_value": float(pred["p_val"]),
        "distance": float(pred["distance"]),
        "version": alibi_detect.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    print("RESULT " + json.dumps(out))


def run_peer(
    python: str, ref: np.ndarray, cur: np.ndarray, permutations: int, repeat: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aiops_lab_mmd_") as tmp:
        npz = str(Path(tmp) / "data.npz")
        np.savez(npz, ref=ref, cur=cur)
        cmd = [
            python,
            __file__,
            "--child",
            npz,
            "--permutations",
            str(permutations),
            "--repeat",
            str(repeat),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " | ".join(tail) or f"exit {proc.returncode}"}


def peer_python(arg: str | None) -> str | None:
    if arg:
        return arg
    try:
        import alibi_detect  # noqa: F401
    except ImportError:
        return None
    return sys.executable


# -- CPU ------------------------------------------------------------------------------------
def cpu(args: argparse.Namespace) -> list[dict[str, Any]]:
    from aiops_lab.drift import mmd

    sizes = [(n, args.dim) for n in args.rows]
    peer = peer_python(args.alibi_python)
    mmd(*make_data(300, args.dim), permutations=10, backend="numpy", progress=False)  # warm-up
    rows = []
    for n, d in sizes:
        ref, cur = make_data(n, d)
        seconds, res = best_of(
            lambda ref=ref, cur=cur: mmd(
                ref, cur, permutations=args.permutations, backend="numpy", progress=False
            ),
            args.repeat,
        )
        row: dict[str, Any] = {
            "n": n,
            "d": d,
            "ours_s": seconds,
            "ours_p": res.p_value,
            "mmd2": res.statistic,
        }
        say(
            f"aiops_lab  {n:>7,} x {d}: {seconds:7.2f} s  MMD^2 {res.statistic:.3e}  p {res.p_value:.3f}"
        )
        if peer:
            got = run_peer(peer, ref, cur, args.permutations, args.peer_repeat)
            row["alibi"] = got
            if "error" in got:
                say(f"alibi-detect {n:>7,} x {d}: failed: {got['error']}")
            else:
                say(
                    f"alibi-detect {n:>7,} x {d}: {got['seconds']:7.2f} s  MMD^2 {got['distance']:.3e}  "
                    f"p {got['p_value']:.3f}  (alibi-detect {got['version']}, torch {got['torch']}, "
                    f"{got['threads']} threads) -> ours is {got['seconds'] / seconds:.1f}x faster"
                )
        else:
            row["alibi"] = None
            say(f"alibi-detect {n:>7,} x {d}: not installed (pass --alibi-python)")
        rows.append(row)
    return rows


# -- GPU ------------------------------------------------------------------------------------
def gpu(args: argparse.Namespace) -> list[dict[str, Any]]:
    from gpu_check import ensure_array_api

    if not ensure_array_api():
        say("No GPU run: array_api_compat is missing (see benchmarks/fetch_wheels.sh).")
        return []
    try:
        import cupy
    except ImportError:
        say("No GPU run: cupy is not installed.")
        return []
    from aiops_lab.backend import backend_info
    from aiops_lab.drift import mmd

    try:
        info = backend_info("cupy")
    except Exception as exc:
        say(f"No GPU run: {exc}")
        return []
    say(f"GPU: {info.device}; cupy {cupy.__version__}")
    sync = cupy.cuda.Device().synchronize
    sizes = [(2_000, 50), (5_000, 50), (20_000, 768), (100_000, 768)]
    if args.gpu_sizes:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.gpu_sizes]
    warm = [cupy.asarray(a) for a in make_data(500, 16, dtype=np.float32)]
    mmd(*warm, permutations=10, progress=False)
    sync()
    rows = []
    for i, (n, d) in enumerate(sizes):
        ref_h, cur_h = make_data(n, d, dtype=np.float32)
        ref, cur = cupy.asarray(ref_h), cupy.asarray(cur_h)
        seconds, res = best_of(
            lambda ref=ref, cur=cur: mmd(ref, cur, permutations=args.permutations, progress=False),
            args.repeat,
            sync,
        )
        row = {
            "n": n,
            "d": d,
            "gpu_s": seconds,
            "p": res.p_value,
            "mmd2": res.statistic,
            "sigma": res.sigma,
        }
        line = f"cupy  {n:>7,} x {d:>3} per side: {seconds:7.3f} s  MMD^2 {res.statistic:.3e}  p {res.p_value:.3f}"
        if i == 0:
            host = mmd(ref_h.astype(np.float64), cur_h.astype(np.float64), permutations=args.permutations,
                       backend="numpy", progress=False)  # fmt: skip
            row["numpy_mmd2"] = host.statistic
            row["numpy_p"] = host.p_value
            line += f"   (NumPy float64: MMD^2 {host.statistic:.3e}, p {host.p_value:.3f})"
        say(line)
        rows.append(row)
        del ref, cur
        cupy.get_default_memory_pool().free_all_blocks()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000, 5_000])
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--permutations", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-repeat", type=int, default=1)
    parser.add_argument("--alibi-python", default=None)
    parser.add_argument(
        "--gpu", action="store_true", help="time CuPy instead of the CPU contenders"
    )
    parser.add_argument("--gpu-sizes", nargs="+", default=None, help="e.g. 5000x50 100000x768")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.permutations, args.repeat)
        return 0
    say(f"python {platform.python_version()} on {platform.platform()}; numpy {np.__version__}")
    rows = gpu(args) if args.gpu else cpu(args)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

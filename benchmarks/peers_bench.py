"""Time ``aiops_lab.drift.compare`` next to Evidently and NannyML on the same data.

    python benchmarks/peers_bench.py --rows 100000 1000000 \\
        --evidently-python /tmp/peer-evidently/bin/python \\
        --nannyml-python /tmp/peer-nannyml/bin/python

The peers pin their own versions of pandas / NumPy, so each may live in its own virtual
environment: ``--evidently-python`` / ``--nannyml-python`` name that environment's
interpreter. Without the option the current interpreter is used if the peer imports
there; otherwise the peer is reported as ``not installed``.

For each row count N the reference and current frames of ``drift_bench.make_frames``
(50 numeric + 5 string columns, fixed seed) are written once to Parquet in a temporary
folder. Each contender then runs in a fresh subprocess (this script in ``--child``
mode, under the contender's interpreter), which

1. imports its library and runs it once on the first 2,000 rows (imports and first-use
   set-up are not timed),
2. loads the two Parquet files (polars for ``aiops_lab``, pandas for the peers; the load
   time is reported, not timed),
3. times the drift computation, best of ``--repeat`` (2) runs:

   * ``aiops_lab``: ``compare(ref, cur, backend="numpy", progress=False)`` on the polars
     frames;
   * ``evidently``: ``Dataset.from_pandas`` of both frames (numeric and categorical
     columns declared) + ``Report([DataDriftPreset()]).run(cur, ref)``: per-column drift
     of all 55 columns with the preset's default tests (at these sizes the normed
     Wasserstein distance for numeric, the Jensen-Shannon distance for categorical
     columns);
   * ``nannyml``: ``UnivariateDriftCalculator(continuous_methods=["kolmogorov_smirnov",
     "jensen_shannon", "wasserstein"], categorical_methods=["chi2", "jensen_shannon"],
     chunk_number=1)``, ``.fit(ref)`` then ``.calculate(cur)``: one comparison of the
     whole current frame against the reference, as ``compare`` does.

4. reads the per-column values out of the result (not timed) for the agreement check.

Agreement is checked where the definitions match: the normed Wasserstein distance and
the categorical Jensen-Shannon distance (natural log) of Evidently, and the KS
statistic, Wasserstein distance, chi-square statistic and categorical Jensen-Shannon
distance (base 2) of NannyML, against ``compare``'s. NannyML estimates KS and Wasserstein
on 10,000 equal-width bins once the reference has 10,000 rows or more, so at the
smallest N (``--check-rows``) it runs once more, untimed, with
``calculation_method="exact"`` (see ``NML_EXACT``), and Evidently runs once more,
untimed, with ``num_method="ks"`` to compare the KS p-values.

A child that runs past ``--timeout`` seconds is stopped; the runs it finished are kept,
and if there are none its time is estimated from the previous N (linear in N).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONTENDERS = ("aiops_lab", "evidently", "nannyml")
WARMUP_ROWS = 2_000
NML_CONTINUOUS = ["kolmogorov_smirnov", "jensen_shannon", "wasserstein"]
NML_CATEGORICAL = ["chi2", "jensen_shannon"]
#: NannyML 0.13 reads ``calculation_method`` only if the method's own name is a key as well
NML_EXACT = {"kolmogorov_smirnov": {}, "wasserstein": {}, "calculation_method": "exact"}
#: peer statistic -> (our statistic, factor applied to ours, "abs" or "rel" difference)
EVIDENTLY_MAP = {
    "num:Wasserstein distance (normed)": ("wasserstein_norm", 1.0, "rel"),
    "cat:Jensen-Shannon distance": ("js", 1.0, "abs"),
    "num:ks": ("ks_p", 1.0, "abs"),  # with num_method="ks" the value is the p-value
}
NANNYML_MAP = {
    "num:kolmogorov_smirnov": ("ks", 1.0, "abs"),
    "num:wasserstein": ("wasserstein", 1.0, "rel"),
    "cat:chi2": ("chi2", 1.0, "rel"),
    # NannyML's Jensen-Shannon distance is in base 2, ours in natural log
    "cat:jensen_shannon": ("js", 1.0 / math.sqrt(math.log(2.0)), "abs"),
}


# -- child side: runs under the contender's interpreter, so only the stdlib at module level --
def _write(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, default=float))
    tmp.replace(path)


def _versions(*modules: str) -> dict[str, str]:
    from importlib import metadata

    out = {"python": sys.version.split()[0]}
    for m in modules:
        try:
            out[m] = metadata.version(m)
        except metadata.PackageNotFoundError:
            out[m] = "?"
    return out


class _AiopsLab:
    versions = ("aiops-lab", "polars", "numpy", "scipy")

    def load(self, path: str) -> Any:
        import polars as pl

        return pl.read_parquet(path)

    def head(self, frame: Any, n: int) -> Any:
        return frame.head(n)

    def run(self, ref: Any, cur: Any) -> tuple[Any, dict[str, float]]:
        from aiops_lab.drift import compare

        return compare(ref, cur, backend="numpy", progress=False), {}

    def stats(self, result: Any) -> dict[str, dict[str, float]]:
        keys = ("kind", "ks", "ks_p", "wasserstein", "wasserstein_norm", "js", "chi2", "chi2_p")
        table = result.table.select("column", *keys)
        out = {}
        for r in table.iter_rows(named=True):
            kind = "num" if r.pop("kind") == "numeric" else "cat"
            out[r.pop("column")] = {f"{kind}:{k}": v for k, v in r.items() if v is not None}
        return out


class _Pandas:
    def load(self, path: str) -> Any:
        import pandas as pd

        return pd.read_parquet(path)

    def head(self, frame: Any, n: int) -> Any:
        return frame.head(n)


class _Evidently(_Pandas):
    versions = ("evidently", "pandas", "numpy", "scipy")

    def __init__(self, **preset: Any) -> None:
        self.preset = preset

    def run(self, ref: Any, cur: Any) -> tuple[Any, dict[str, float]]:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        t0 = time.perf_counter()
        numeric = [c for c in ref.columns if ref[c].dtype.kind in "fiu"]
        categorical = [c for c in ref.columns if c not in numeric]
        definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
        ref_ds = Dataset.from_pandas(ref, data_definition=definition)
        cur_ds = Dataset.from_pandas(cur, data_definition=definition)
        t1 = time.perf_counter()
        snapshot = Report([DataDriftPreset(**self.preset)]).run(cur_ds, ref_ds)
        t2 = time.perf_counter()
        self.numeric = set(numeric)
        return snapshot, {"dataset_s": t1 - t0, "report_s": t2 - t1}

    def stats(self, snapshot: Any) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for m in snapshot.dict()["metrics"]:
            cfg = m.get("config", {})
            if not cfg.get("type", "").endswith("ValueDrift"):
                continue
            col = cfg["column"]
            kind = "num" if col in self.numeric else "cat"
            out.setdefault(col, {})[f"{kind}:{cfg['method']}"] = float(m["value"])
        return out


class _NannyML(_Pandas):
    versions = ("nannyml", "pandas", "numpy", "scipy")

    def __init__(self, **params: Any) -> None:
        self.params = params

    def run(self, ref: Any, cur: Any) -> tuple[Any, dict[str, float]]:
        import warnings

        import nannyml

        with warnings.catch_warnings():  # "the resulting number of chunks is too low"
            warnings.simplefilter("ignore", UserWarning)
            t0 = time.perf_counter()
            calc = nannyml.UnivariateDriftCalculator(
                column_names=list(ref.columns),
                continuous_methods=NML_CONTINUOUS,
                categorical_methods=NML_CATEGORICAL,
                chunk_number=1,
                **self.params,
            )
            calc.fit(ref)
            t1 = time.perf_counter()
            result = calc.calculate(cur)
            t2 = time.perf_counter()
        self.continuous = set(calc.continuous_column_names)
        return result, {"fit_s": t1 - t0, "calculate_s": t2 - t1}

    def stats(self, result: Any) -> dict[str, dict[str, float]]:
        df = result.filter(period="analysis").to_df()
        row = df.iloc[-1]
        out: dict[str, dict[str, float]] = {}
        for col, method, field in df.columns:
            if col == "chunk" or field != "value":
                continue
            kind = "num" if col in self.continuous else "cat"
            out.setdefault(col, {})[f"{kind}:{method}"] = float(row[(col, method, field)])
        return out


def _runner(name: str, **kwargs: Any) -> Any:
    return {"aiops_lab": _AiopsLab, "evidently": _Evidently, "nannyml": _NannyML}[name](**kwargs)


def child(args: argparse.Namespace) -> None:
    """Subprocess mode: warm up, load, time ``args.child``, write the JSON to ``args.out``."""
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no telemetry calls
    os.environ.setdefault("DO_NOT_TRACK", "1")
    out_path = Path(args.out)
    runner = _runner(args.child)
    payload: dict[str, Any] = {"versions": _versions(*runner.versions), "runs": [], "parts": []}
    t0 = time.perf_counter()
    ref, cur = runner.load(args.ref), runner.load(args.cur)
    payload["load_s"] = time.perf_counter() - t0
    runner.run(runner.head(ref, WARMUP_ROWS), runner.head(cur, WARMUP_ROWS))
    _write(out_path, payload)
    result = None
    for _ in range(args.repeat):
        result = None
        gc.collect()
        t0 = time.perf_counter()
        result, parts = runner.run(ref, cur)
        payload["runs"].append(time.perf_counter() - t0)
        payload["parts"].append(parts)
        _write(out_path, payload)
    t0 = time.perf_counter()
    payload["stats"] = runner.stats(result)
    payload["extract_s"] = time.perf_counter() - t0
    _write(out_path, payload)
    if args.check:  # untimed extra run where the timed one estimates or lacks a statistic
        del result
        gc.collect()
        extra = {
            "nannyml": lambda: _NannyML(computation_params=NML_EXACT),
            "evidently": lambda: _Evidently(num_method="ks"),
        }.get(args.child)
        if extra is not None:
            checker = extra()
            result, _ = checker.run(ref, cur)
            payload["check_stats"] = checker.stats(result)
            _write(out_path, payload)


# -- parent side ---------------------------------------------------------------------------------
def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _interpreters(args: argparse.Namespace) -> dict[str, str | None]:
    found: dict[str, str | None] = {"aiops_lab": sys.executable}
    for name in ("evidently", "nannyml"):
        given = getattr(args, f"{name}_python")
        if given:
            found[name] = given if Path(given).exists() else None
            continue
        probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True)
        found[name] = sys.executable if probe.returncode == 0 else None
    return found


def _run_child(
    name: str, python: str, ref: Path, cur: Path, out: Path, args: argparse.Namespace, check: bool
) -> dict[str, Any]:
    cmd = [python, str(Path(__file__).resolve()), "--child", name, "--ref", str(ref),
           "--cur", str(cur), "--out", str(out), "--repeat", str(args.repeat)]  # fmt: skip
    if check:
        cmd.append("--check")
    env = dict(os.environ, NML_DISABLE_USAGE_LOGGING="1", DO_NOT_TRACK="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, start_new_session=True)  # fmt: skip
    timed_out = False
    try:
        _, err = proc.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate()
        timed_out = True
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    res["wall_s"] = time.perf_counter() - t0
    res["timed_out"] = timed_out
    if proc.returncode != 0 and not timed_out:
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        res["error"] = lines[-1] if lines else f"exit {proc.returncode}"
    return res


def _diff(ours: dict[str, dict[str, float]], peer: dict[str, dict[str, float]],
          mapping: dict[str, tuple[str, float, str]]) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Per peer statistic: the largest difference to ours and the number of columns."""
    out: dict[str, dict[str, Any]] = {}
    for col, stats in peer.items():
        for key, value in stats.items():
            if key not in mapping:
                continue
            ours_key, factor, how = mapping[key]
            kind = key.split(":")[0]
            mine = ours.get(col, {}).get(f"{kind}:{ours_key}")
            if mine is None or not (math.isfinite(value) and math.isfinite(mine)):
                continue
            d = abs(value - mine * factor)
            if how == "rel":
                d /= max(abs(mine * factor), 1e-300)
            label = f"{key} vs {ours_key}" + (f" x {factor:.4g}" if factor != 1.0 else "")
            entry = out.setdefault(label, {"how": how, "max": 0.0, "column": None, "n": 0})
            entry["n"] += 1
            if d >= entry["max"]:
                entry["max"], entry["column"] = d, col
    return out


def _fmt_time(c: dict[str, Any] | None) -> str:
    if c is None:
        return "not installed"
    if c.get("runs"):
        s = f"{min(c['runs']):.2f}"
        return s + (" (1 run, stopped)" if c.get("timed_out") else "")
    if c.get("timed_out"):
        est = c.get("estimate_s")
        return f"> {c['limit_s']:.0f} (stopped" + (f"; est. ~{est:.0f})" if est else ")")
    return f"failed: {c.get('error', '?')}"


def _best(c: dict[str, Any] | None) -> tuple[float | None, bool]:
    """The best time, or the estimate; and whether it is an estimate."""
    if not c:
        return None, False
    if c.get("runs"):
        return min(c["runs"]), False
    return c.get("estimate_s"), c.get("estimate_s") is not None


def _print_report(results: list[dict[str, Any]], versions: dict[str, dict[str, str]],
                  interpreters: dict[str, str | None]) -> None:  # fmt: skip
    print()
    print("| rows | aiops_lab s | evidently s | nannyml s | ratio evidently/aiops_lab "
          "| ratio nannyml/aiops_lab |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for e in results:
        c = e["contenders"]
        base, _ = _best(c.get("aiops_lab"))
        ratios = []
        for name in ("evidently", "nannyml"):
            t, est = _best(c.get(name))
            if t is None or not base:
                ratios.append("not installed" if interpreters.get(name) is None else "n/a")
            else:
                ratios.append(("~" if est else "") + f"{t / base:.1f}x")
        cells = [_fmt_time(c.get(n)) for n in CONTENDERS]
        print(f"| {e['rows']:,} | " + " | ".join(cells + ratios) + " |")

    print()
    print("Best of the timed runs (all runs), load time of the Parquet files (not timed) "
          "and the parts of the best run:")  # fmt: skip
    print()
    print("| rows | contender | runs s | load s | parts of the best run s |")
    print("|---:|---|---|---:|---|")
    for e in results:
        for name in CONTENDERS:
            c = e["contenders"].get(name)
            if not c:
                continue
            runs = ", ".join(f"{t:.2f}" for t in c.get("runs", [])) or "-"
            parts = ""
            if c.get("runs"):
                best = min(range(len(c["runs"])), key=c["runs"].__getitem__)
                parts = ", ".join(f"{k} {v:.2f}" for k, v in c["parts"][best].items())
            load = f"{c['load_s']:.2f}" if "load_s" in c else "-"
            print(f"| {e['rows']:,} | {name} | {runs} | {load} | {parts or '-'} |")

    print()
    print("Versions:")
    for name in CONTENDERS:
        v = versions.get(name)
        where = interpreters.get(name)
        if v is None:
            print(f"* {name}: " + ("not installed" if where is None else f"? ({where})"))
        else:
            print(f"* {name}: " + ", ".join(f"{k} {x}" for k, x in v.items()) + f" ({where})")

    print()
    print("Agreement with aiops_lab (largest difference over the columns; abs = absolute, "
          "rel = relative):")  # fmt: skip
    print()
    print("| rows | peer | peer statistic vs ours | columns | max diff | worst column |")
    print("|---:|---|---|---:|---:|---|")
    for e in results:
        for label, diffs in e.get("agreement", {}).items():
            for key, d in diffs.items():
                print(f"| {e['rows']:,} | {label} | {key} | {d['n']} "
                      f"| {d['max']:.1e} ({d['how']}) | {d['column']} |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per contender")
    parser.add_argument("--evidently-python", default=None, help="interpreter with evidently")
    parser.add_argument("--nannyml-python", default=None, help="interpreter with nannyml")
    parser.add_argument("--timeout", type=float, default=360.0,
                        help="seconds before a contender's subprocess is stopped")  # fmt: skip
    parser.add_argument("--check-rows", type=int, default=None,
                        help="N for the untimed exact-mode checks (default: the smallest N)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=None, help="write all results here")
    parser.add_argument("--child", choices=CONTENDERS, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--ref", help=argparse.SUPPRESS)
    parser.add_argument("--cur", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args)
        return 0

    sys.path.insert(0, str(HERE))
    from drift_bench import make_frames

    interpreters = _interpreters(args)
    rows_list = sorted(set(args.rows))
    check_rows = args.check_rows or rows_list[0]
    results: list[dict[str, Any]] = []
    versions: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="peers_bench_") as tmp:
        for rows in rows_list:
            t0 = time.perf_counter()
            ref, cur = make_frames(rows)
            ref_path, cur_path = Path(tmp, f"ref_{rows}.parquet"), Path(tmp, f"cur_{rows}.parquet")
            ref.write_parquet(ref_path)
            cur.write_parquet(cur_path)
            shape = f"{ref.height:,} x {ref.width}"
            del ref, cur
            gc.collect()
            _log(
                f"{rows:,} rows: frames ({shape} each) written in {time.perf_counter() - t0:.1f} s"
            )
            entry: dict[str, Any] = {"rows": rows, "contenders": {}, "agreement": {}}
            for name in CONTENDERS:
                python = interpreters[name]
                if python is None:
                    _log(f"  {name}: not installed")
                    continue
                _log(f"  {name}: best of {args.repeat} ({python})")
                out = Path(tmp, f"{name}_{rows}.json")
                res = _run_child(name, python, ref_path, cur_path, out, args, rows == check_rows)
                res["limit_s"] = args.timeout
                if res.get("timed_out") and not res.get("runs"):
                    prev = [r for r in results if r["contenders"].get(name, {}).get("runs")]
                    if prev:
                        p = prev[-1]
                        res["estimate_s"] = min(p["contenders"][name]["runs"]) * rows / p["rows"]
                if "versions" in res:
                    versions[name] = res["versions"]
                entry["contenders"][name] = res
                _log(f"    {_fmt_time(res)} s (wall {res['wall_s']:.0f} s incl. start and load)")
            c = entry["contenders"]
            ours = c.get("aiops_lab", {}).get("stats", {})
            for name, mapping in (("evidently", EVIDENTLY_MAP), ("nannyml", NANNYML_MAP)):
                peer = c.get(name, {})
                if ours and peer.get("stats"):
                    entry["agreement"][name] = _diff(ours, peer["stats"], mapping)
                if ours and peer.get("check_stats"):
                    label = "nannyml exact" if name == "nannyml" else "evidently (ks)"
                    entry["agreement"][label] = _diff(ours, peer["check_stats"], mapping)
            results.append(entry)
            Path(ref_path).unlink()
            Path(cur_path).unlink()

    _print_report(results, versions, interpreters)
    if args.json:
        for e in results:
            for c in e["contenders"].values():
                c.pop("stats", None)
                c.pop("check_stats", None)
        payload = {"results": results, "versions": versions, "interpreters": interpreters,
                   "cpu_count": os.cpu_count(), "load_average": os.getloadavg()}  # fmt: skip
        args.json.write_text(json.dumps(payload, indent=2, default=float))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

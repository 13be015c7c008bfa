"""The Binder setup: binder/postBuild in a clean virtual environment, then every notebook there.

Binder (repo2docker) installs ``binder/requirements.txt``, runs ``binder/postBuild`` once at
build time and ``binder/start <server command>`` at every launch. The slow test repeats those
steps in a fresh venv and executes each template notebook through ``binder/start``, on CPU only,
measuring the kernel's peak resident memory (Binder gives a session about 2 GB in all).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
BINDER = REPO / "binder"
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
#: the kernel's peak RSS must leave room for the Jupyter server inside Binder's 2 GB
KERNEL_PEAK_LIMIT_MIB = 1536
#: per-cell limit; the slowest cell (drift's compare) takes about 15 s on two cores
CELL_TIMEOUT_S = 180

#: appended to each notebook copy: what the kernel saw, read at the end of the run
_PROBE = """\
import json as _json, os as _os, sys as _sys
import aiops_lab as _al
with open("/proc/self/status") as _f:
    _peak = [int(line.split()[1]) for line in _f if line.startswith("VmHWM:")][0]
print("AIOPS_LAB_PROBE " + _json.dumps({
    "prefix": _sys.prefix,
    "aiops_lab": _al.__file__,
    "backend": _al.backend_info().name,
    "tracking_uri": _os.environ.get("MLFLOW_TRACKING_URI"),
    "cuda_visible_devices": _os.environ.get("CUDA_VISIBLE_DEVICES"),
    "peak_rss_kib": _peak,
}))
"""


def _clean_env(home: Path, extra_path: Path | None = None) -> dict[str, str]:
    """This process's environment without anything that would leak the outer Python in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "PYTHON", "MLFLOW_", "CUDA_", "AIOPS_LAB_", "CONDA"))
        and k not in ("VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX")
    }
    env["HOME"] = str(home)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # keep pip's download cache (CI fills it installing the test extra): HOME moved away
    cache = subprocess.run(
        [sys.executable, "-m", "pip", "cache", "dir"], capture_output=True, text=True, check=False
    )
    if cache.returncode == 0 and cache.stdout.strip():
        env["PIP_CACHE_DIR"] = cache.stdout.strip()
    if extra_path is not None:
        env["PATH"] = f"{extra_path}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(extra_path.parent)
    return env


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> str:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited with {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


def test_binder_folder_is_complete():
    """What repo2docker looks for, with the exec bits it needs."""
    assert (BINDER / "requirements.txt").is_file()
    for script in ("postBuild", "start"):
        path = BINDER / script
        assert path.is_file(), script
        assert os.access(path, os.X_OK), f"binder/{script} must be executable"
        text = path.read_text(encoding="utf-8")
        assert text.startswith("#!/usr/bin/env bash\n"), script
        assert "set -e" in text, f"binder/{script} must stop at the first failing step"
    assert 'exec "$@"' in (BINDER / "start").read_text(encoding="utf-8")


_SHOW_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


@pytest.mark.skipif(not shutil.which("bash"), reason="binder/start is a bash script")
def test_start_sets_demo_defaults_and_runs_its_arguments(tmp_path):
    env = _clean_env(tmp_path)
    env["CUDA_VISIBLE_DEVICES"] = "0"  # a GPU would be visible: start hides it
    start = [str(BINDER / "start"), sys.executable, "-c"]
    seen = json.loads(_run([*start, _SHOW_ENV], env=env, cwd=REPO, timeout=60))
    assert seen["CUDA_VISIBLE_DEVICES"] == ""
    assert seen["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path}/reports/mlflow.db"
    assert (tmp_path / "reports").is_dir()

    env["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:5000"  # a store the user chose is kept
    seen = json.loads(_run([*start, _SHOW_ENV], env=env, cwd=REPO, timeout=60))
    assert seen["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5000"

    # start becomes its command: the exit status comes through
    proc = subprocess.run([*start, "raise SystemExit(7)"], env=env, cwd=REPO, check=False)
    assert proc.returncode == 7


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for peak memory")
def test_postbuild_in_a_clean_venv_runs_every_notebook(tmp_path, record_property):
    assert NOTEBOOKS, "no notebooks to run"
    home = tmp_path / "home"
    home.mkdir()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    bindir = venv / "bin"
    python = bindir / "python"
    env = _clean_env(home, bindir)

    # repo2docker's order: the requirements file, then postBuild from the repository root
    _run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(BINDER / "requirements.txt")],
        env=env, cwd=REPO, timeout=1200,
    )  # fmt: skip
    _run([str(BINDER / "postBuild")], env=env, cwd=REPO, timeout=1200)

    # a real install from the wheel, not the source checkout; no GPU stack pulled in
    where = _run(
        [str(python), "-c", "import aiops_lab, importlib.util as u; "
         "print(aiops_lab.__file__); print(u.find_spec('cupy') is None)"],
        env=env, cwd=home, timeout=120,
    ).split()  # fmt: skip
    assert Path(where[0]).is_relative_to(venv), where
    assert where[1] == "True", "the Binder image must not install CuPy"
    listing = _run(
        [str(bindir / "jupyter"), "labextension", "list"], env=env, cwd=home, timeout=120
    )
    listing += subprocess.run(
        [str(bindir / "jupyter"), "labextension", "list"],
        env=env, cwd=home, capture_output=True, text=True, check=False, timeout=120,
    ).stderr  # fmt: skip
    line = next((ln for ln in listing.splitlines() if "aiops-lab-jupyterlab" in ln), "")
    assert "enabled" in line, listing
    assert "OK" in line, listing
    assert str(venv) in listing  # found in the venv's share/jupyter, where the wheel put it

    work = home / "notebooks"
    work.mkdir()
    peaks = {}
    for source in NOTEBOOKS:
        nb = nbformat.read(source, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
        copy = work / source.name
        nbformat.write(nb, copy)
        executed = work / f"{source.stem}.executed.ipynb"
        cmd = [
            str(BINDER / "start"),
            str(python), "-m", "papermill", str(copy), str(executed),
            "--kernel", "python3", "--cwd", str(work), "--no-progress-bar",
            "--execution-timeout", str(CELL_TIMEOUT_S), "-p", "tracking", "True",
        ]  # fmt: skip
        for attempt in (1, 2, 3):
            proc = subprocess.run(
                cmd, env=env, cwd=home, capture_output=True, text=True, timeout=1200, check=False
            )
            # nbclient can wait forever for a reply after a cell that opens widgets
            # (jupyter/nbclient#312): retried for that hang only, never for a real error
            if proc.returncode == 0 or attempt == 3 or "timed out" not in proc.stderr:
                break
            print(f"{source.name}: a cell hit the {CELL_TIMEOUT_S} s limit; running it again")
        assert proc.returncode == 0, f"{source.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        result = nbformat.read(executed, as_version=4)
        texts = [o.get("text", "") for o in result.cells[-1].get("outputs", [])]
        probe = next(
            json.loads(t.split("AIOPS_LAB_PROBE ", 1)[1]) for t in texts if "AIOPS_LAB_PROBE " in t
        )
        assert Path(probe["prefix"]) == venv, probe  # the kernel ran in the venv
        assert Path(probe["aiops_lab"]).is_relative_to(venv), probe
        assert probe["backend"] == "numpy", probe
        assert probe["cuda_visible_devices"] == "", probe
        assert probe["tracking_uri"] == f"sqlite:///{home}/reports/mlflow.db", probe
        errors = [
            o
            for c in result.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.get("output_type") == "error"
        ]
        assert not errors, errors
        peaks[source.stem] = probe["peak_rss_kib"] / 1024
    record_property("kernel_peak_rss_mib", {k: round(v) for k, v in peaks.items()})
    print("kernel peak RSS (MiB):", {k: round(v) for k, v in peaks.items()})
    # tracking = True logged every run into the local store binder/start chose
    assert (home / "reports" / "mlflow.db").is_file()
    too_big = {k: round(v) for k, v in peaks.items() if v >= KERNEL_PEAK_LIMIT_MIB}
    assert not too_big, f"kernel peak RSS over {KERNEL_PEAK_LIMIT_MIB} MiB: {too_big}"

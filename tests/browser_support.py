"""Helpers for the real-browser tests: Debian's Chromium, a JupyterLab subprocess, screenshots.

Chromium is launched by executable path (``AIOPS_LAB_CHROMIUM`` or ``/usr/bin/chromium``), never
downloaded. JupyterLab runs on a free loopback port with a fixed token, its config, data and
runtime folders in a temporary home, and the lab extension taken from this checkout's prebuilt
``aiops_lab/lab/labextension``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTENSION_NAME = "aiops-lab-jupyterlab"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

#: user settings: no news prompt, no kernel picker, every notebook cell in the DOM
_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none",
        "autoStartDefaultKernel": True,
    },
}


def chromium_path() -> str | None:
    """Debian's Chromium (or ``$AIOPS_LAB_CHROMIUM``) when it exists, else None."""
    candidates = [os.environ.get("AIOPS_LAB_CHROMIUM"), "/usr/bin/chromium"]
    candidates += [shutil.which("chromium"), shutil.which("chromium-browser")]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def screenshot_dir() -> Path:
    """Where screenshots are kept after the run: ``$AIOPS_LAB_SCREENSHOTS`` or reports/."""
    folder = Path(
        os.environ.get("AIOPS_LAB_SCREENSHOTS") or REPO / "reports" / "browser-screenshots"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, token: str | None = None, timeout: float = 20) -> tuple[int, bytes]:
    """GET ``url`` (with ``Authorization: token ...`` when given): status and body."""
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@dataclass
class Lab:
    """A running JupyterLab: its base URL (ending in /), token, root folder and log file."""

    url: str
    token: str
    root: Path
    log: Path

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:]


def _prepare_home(home: Path) -> dict[str, str]:
    config, data, runtime = home / "config", home / "data", home / "runtime"
    for name, value in _LAB_SETTINGS.items():
        target = config / "lab" / "user-settings" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(value), encoding="utf-8")
    # the checkout's prebuilt extension, found first on JUPYTER_PATH
    import aiops_lab.lab

    built = Path(aiops_lab.lab.__file__).parent / "labextension"
    if not (built / "package.json").is_file():
        raise FileNotFoundError(f"no prebuilt lab extension in {built}")
    ext = home / "jupyter-path" / "labextensions" / EXTENSION_NAME
    shutil.copytree(built, ext)
    install = REPO / "extensions" / EXTENSION_NAME / "install.json"
    if install.is_file():
        shutil.copy2(install, ext / "install.json")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MLFLOW_", "CUDA_"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(data),
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_PATH=str(home / "jupyter-path"),
        JUPYTER_PLATFORM_DIRS="1",
        CUDA_VISIBLE_DEVICES="",  # CPU only, as on Binder
    )
    return env


@contextlib.contextmanager
def run_lab(root: Path, home: Path, token: str, *, timeout: float = 120) -> Iterator[Lab]:
    """Start ``python -m jupyterlab`` on ``root`` and stop it on exit."""
    env = _prepare_home(home)
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--ServerApp.jpserver_extensions={'aiops_lab.lab': True}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = home / "jupyterlab.log"
    url = f"http://127.0.0.1:{port}/"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        lab = Lab(url=url, token=token, root=root, log=log_path)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"JupyterLab exited early:\n{lab.log_tail()}")
                with contextlib.suppress(OSError):
                    if http_get(url + "api/status", token, timeout=5)[0] == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer:\n{lab.log_tail()}")
                time.sleep(0.25)
            yield lab
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

"""The aiops-lab server routes, in a real ``jupyter server`` subprocess on a loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "jupyter_server", reason="jupyter_server is not installed (pip install jupyterlab)"
)

TOKEN = "aiops-lab-test-token-5f1c"
BASE_URL = "/lab-base/"  # a non-root base_url: the routes must live under it


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _request(
    url: str, *, method: str = "GET", body: Any = None, token: str | None = TOKEN
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        req.add_header("Authorization", f"token {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("lab-root")
    (root / "work").mkdir()
    home = tmp_path_factory.mktemp("lab-home")
    port = _free_port()
    env = {
        **os.environ,
        # keep the user's Jupyter config and runtime files out of the way
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [
        sys.executable, "-m", "jupyter_server",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={root}", f"--ServerApp.base_url={BASE_URL}",
        f"--IdentityProvider.token={TOKEN}",
        "--ServerApp.jpserver_extensions={'aiops_lab.lab': True}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (home / "server.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}{BASE_URL}aiops-lab/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter server exited: {(home / 'server.log').read_text()[-3000:]}")
            try:
                status, _ = _request(f"http://127.0.0.1:{port}{BASE_URL}api/status")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter server did not answer: {(home / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield {"url": url, "root": root, "log": home / "server.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _template(kind: str) -> Path:
    from aiops_lab.reporting import notebook_path

    return notebook_path(kind)


def _cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_status_reports_backend_gpus_and_tracking(server):
    from aiops_lab._version import __version__
    from aiops_lab.backend import backend_info
    from aiops_lab.gpu.live import gpu_status

    status, body = _request(server["url"] + "status")
    assert status == 200, body
    expected_backend = backend_info()
    assert body["backend"]["name"] == expected_backend.name
    assert body["backend"]["reason"] == expected_backend.reason
    assert body["version"] == __version__
    gpu = gpu_status()
    assert body["gpu_available"] is gpu.available
    assert body["gpus"] == gpu.devices
    if not gpu.available:  # this machine: no NVIDIA GPU
        assert body["gpus"] == []
        assert body["gpu_reason"].startswith("no NVIDIA GPU visible")
    expected_db = (Path(server["root"]).resolve() / "reports" / "mlflow.db").as_posix()
    assert body["tracking_uri"] == "sqlite:///" + expected_db
    assert body["templates"]["drift"] == _template("drift").name


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("GET", "status", None),
        ("GET", "gpu/samples?seconds=60", None),
        ("GET", "templates", None),
        ("POST", "templates/drift", {"path": "work"}),
        ("POST", "reports/drift", {"path": "work/x.ipynb"}),
        ("GET", "reports/jobs/0123abcd", None),
    ],
)
def test_every_route_needs_the_token(server, method, route, body):
    status, _ = _request(server["url"] + route, method=method, body=body, token=None)
    assert status == 403
    status, _ = _request(server["url"] + route, method=method, body=body, token="wrong-token")
    assert status == 403
    assert not list((Path(server["root"]) / "work").glob("*.ipynb"))  # nothing was created


def test_gpu_samples_without_a_gpu(server):
    from aiops_lab.gpu.live import gpu_status

    gpu = gpu_status()
    status, body = _request(server["url"] + "gpu/samples?seconds=120")
    assert status == 200, body
    assert body["available"] is gpu.available
    assert body["seconds"] == 120
    if not gpu.available:
        assert body["samples"] == []
        assert body["reason"] == gpu.reason
    status, body = _request(server["url"] + "gpu/samples?seconds=-3")
    assert status == 400
    status, body = _request(server["url"] + "gpu/samples?seconds=abc")
    assert status == 400


def test_template_copy_never_overwrites(server):
    root = Path(server["root"])
    source = _template("drift")
    status, body = _request(server["url"] + "templates/drift", method="POST", body={"path": "work"})
    assert status == 201, body
    first = root / body["path"]
    assert body["path"] == f"work/{source.name}"
    assert first.is_file()
    assert _cells(first) == _cells(source)
    assert json.loads(first.read_text(encoding="utf-8")) == json.loads(
        source.read_text(encoding="utf-8")
    )

    first.write_text(
        first.read_text(encoding="utf-8").replace("Drift", "My drift", 1), encoding="utf-8"
    )
    edited = first.read_text(encoding="utf-8")
    status, body = _request(
        server["url"] + "templates/drift", method="POST", body={"path": "/work/"}
    )
    assert status == 201, body
    second = root / body["path"]
    assert second.name == f"{source.stem}-1{source.suffix}"
    assert first.read_text(encoding="utf-8") == edited  # the edited copy is untouched
    assert _cells(second) == _cells(source)

    status, body = _request(server["url"] + "templates/drift", method="POST", body={"path": ""})
    assert status == 201, body
    assert body["path"] == source.name  # the server root itself
    assert (root / source.name).is_file()


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("drift", {"path": "../"}, 403),
        ("drift", {"path": "work/../.."}, 403),
        ("drift", {"path": "missing-folder"}, 404),
        ("drift", {"path": 3}, 400),
        ("no-such-kind", {"path": "work"}, 404),
    ],
)
def test_template_copy_refuses_bad_requests(server, kind, body, expected):
    before = sorted(p.name for p in Path(server["root"]).parent.iterdir())
    status, reply = _request(server["url"] + f"templates/{kind}", method="POST", body=body)
    assert status == expected, reply
    assert isinstance(reply, dict)
    assert reply.get("message")
    assert sorted(p.name for p in Path(server["root"]).parent.iterdir()) == before


def test_report_route_checks_its_input(server):
    status, _ = _request(
        server["url"] + "reports/drift", method="POST", body={"path": "nope.ipynb"}
    )
    assert status == 404
    status, _ = _request(server["url"] + "reports/drift", method="POST", body={})
    assert status == 400
    status, _ = _request(server["url"] + "reports/unknown", method="POST", body={"path": "x.ipynb"})
    assert status == 404
    status, _ = _request(server["url"] + "reports/jobs/feedbeef")
    assert status == 404


@pytest.mark.slow
def test_report_route_runs_the_pipeline(server):
    root = Path(server["root"])
    status, body = _request(server["url"] + "templates/drift", method="POST", body={"path": "work"})
    assert status == 201, body
    notebook = body["path"]
    status, job = _request(
        server["url"] + "reports/drift", method="POST", body={"path": notebook, "track": False}
    )
    assert status == 202, job
    assert job["state"] == "running"
    assert job["notebook"] == notebook
    deadline = time.monotonic() + 300
    while job["state"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
        status, job = _request(server["url"] + f"reports/jobs/{job['job']}")
        assert status == 200, job
    assert job["state"] == "done", job.get("error")
    html = root / job["html"]
    assert html.is_file()
    assert html.resolve().is_relative_to((root / "reports").resolve())
    assert "<html" in html.read_text(encoding="utf-8").lower()
    executed = json.loads((root / job["executed_notebook"]).read_text(encoding="utf-8"))
    assert any(c.get("outputs") for c in executed["cells"] if c["cell_type"] == "code")
    assert isinstance(job["alert"], bool)
    assert job["headline"]
    assert job["tracking_run_id"] is None  # track=False


class _FakeSampler:
    """Stands in for aiops_lab.gpu.live.Sampler: a fixed frame, a running flag."""

    def __init__(self, frame):
        self._frame = frame
        self.running = True
        self.error = None
        self.stopped = False

    def frame(self):
        return self._frame

    def stop(self, timeout=None):
        self.running = False
        self.stopped = True
        return self._frame


def test_samples_window_with_a_fake_gpu(monkeypatch, tmp_path):
    """The samples route's data: rows of the last N seconds, JSON-ready, sampler started once."""
    from datetime import datetime, timedelta, timezone

    import polars as pl

    from aiops_lab.gpu import live
    from aiops_lab.gpu._schema import TELEMETRY_SCHEMA
    from aiops_lab.lab import state as lab_state

    now = datetime.now(timezone.utc).replace(microsecond=0)
    ages = [100, 50, 25, 10, 3, 0]  # seconds before now; two GPUs per tick
    rows = [
        {
            "timestamp": now - timedelta(seconds=age),
            "host": "h",
            "gpu": gpu,
            "uuid": f"GPU-{gpu}",
            "model": "Fake H100",
            "util_pct": float(age + gpu),
            "mem_used_mib": 1024.0 * (gpu + 1),
            "mem_total_mib": 81559.0,
            "power_w": None,
            "temp_c": 40.0,
            "source": "nvml",
        }
        for age in ages
        for gpu in (0, 1)
    ]
    frame = pl.DataFrame(rows, schema_overrides=TELEMETRY_SCHEMA).select(
        [
            pl.col(c) if c in rows[0] else pl.lit(None, t).alias(c)
            for c, t in TELEMETRY_SCHEMA.items()
        ]
    )
    devices = [
        {
            "index": i,
            "name": "Fake H100",
            "uuid": f"GPU-{i}",
            "memory_total_mib": 81559.0,
            "mig": False,
        }
        for i in (0, 1)
    ]
    status = live.GpuStatus(True, "2 NVIDIA GPUs visible (driver 1.0)", devices, "1.0")
    started = []

    def fake_sample(**kwargs):
        started.append(kwargs)
        return _FakeSampler(frame)

    monkeypatch.setattr(live, "gpu_status", lambda: status)
    monkeypatch.setattr(live, "sample", fake_sample)
    state = lab_state.LabState(tmp_path)

    out = state.samples(30.0)
    assert out["available"] is True
    assert out["gpus"] == devices
    expected = [
        (r["gpu"], r["util_pct"]) for r in rows if (now - r["timestamp"]).total_seconds() <= 30
    ]
    got = [(r["gpu"], r["util_pct"]) for r in out["samples"]]
    assert sorted(got) == sorted(expected)
    assert len(got) == 8  # ages 25, 10, 3, 0 for both GPUs
    first = out["samples"][0]
    assert set(first) == {*lab_state.SAMPLE_COLUMNS, "t_ms"}
    assert first["t_ms"] == int(
        datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00")).timestamp() * 1000
    )
    json.dumps(out)  # plain JSON: no datetimes left

    assert len(state.samples(900.0)["samples"]) == len(rows)
    assert len(started) == 1  # one sampler, started lazily and reused
    assert started[0]["background"] is True
    assert started[0]["duration"] is None

    monkeypatch.setattr(lab_state, "SAMPLER_IDLE_S", -1.0)
    sampler = state._sampler
    assert state.stop_idle_sampler() is True
    assert sampler.stopped
    state.samples(10.0)
    assert len(started) == 2  # restarted on demand
    state.close()

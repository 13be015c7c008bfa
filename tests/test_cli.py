"""The aiops-lab command: exit codes, parameter parsing, and the thin subcommands."""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aiops_lab import cli, reporting
from aiops_lab._version import __version__
from aiops_lab.errors import ParameterError

FIXTURE = Path(__file__).parent / "fixtures" / "report_ok.ipynb"


@pytest.fixture
def fixture_report(monkeypatch: pytest.MonkeyPatch) -> None:
    """`aiops-lab report drift` runs the tiny fixture notebook instead."""
    monkeypatch.setattr(reporting, "REPORTS", {"drift": str(FIXTURE)})
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def hook() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- end to end: exit codes 0, 1, 3, 4 ---------------------------------------------------
@pytest.mark.slow
def test_report_ok_exits_0(fixture_report, tmp_path: Path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("rows: 4\nalert: true\n")
    code = cli.main(
        ["report", "drift", "-f", str(params), "-p", "alert", "false", "--output", str(tmp_path / "out"), "--no-track"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith("drift report: OK: 0 of 4 columns drifted")
    assert "exit code 0" in out
    assert "running the drift report" in err
    [run_dir] = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert (run_dir / "drift.html").is_file()
    assert not (tmp_path / "out" / "mlflow.db").exists()  # --no-track


@pytest.mark.slow
def test_report_error_exits_1_with_one_line(fixture_report, tmp_path: Path, capsys) -> None:
    code = cli.main(
        ["report", "drift", "-p", "emit_result", "False", "--output", str(tmp_path), "--no-track", "--quiet"]
    )  # fmt: skip
    _out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("aiops-lab: error: ")
    assert "reporting.emit(result)" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.glob("drift-*/drift.failed.ipynb"))
    assert not list(tmp_path.rglob("*.html"))


@pytest.mark.slow
def test_alert_with_fail_on_drift_exits_3_and_notifies(
    fixture_report, tmp_path: Path, hook, capsys
) -> None:
    url, received = hook
    code = cli.main(
        ["report", "drift", "-p", "alert", "true", "--fail-on-drift", "--notify", url, "--output", str(tmp_path), "--no-track", "--quiet"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 3, err
    assert out.startswith("drift: ALERT: 1 of 3 columns drifted -> ")
    assert err == ""  # --quiet: no progress, no chatter
    [body] = received
    assert "1 of 3 columns drifted" in json.loads(body)["text"]


@pytest.mark.slow
def test_tracking_and_notify_failures_exit_4(fixture_report, tmp_path: Path, capsys) -> None:
    dead = "http://127.0.0.1:9/hook"  # the discard port: nothing listens
    code = cli.main(
        ["report", "drift", "-p", "alert", "true", "--tracking-uri", "nosuchscheme://nowhere", "--notify", dead, "--output", str(tmp_path), "--quiet"]
    )  # fmt: skip
    _out, err = capsys.readouterr()
    assert code == 4
    assert "aiops-lab: tracking failed:" in err
    assert "nosuchscheme" in err
    assert "aiops-lab: notify failed:" in err
    assert list(tmp_path.glob("drift-*/drift.html"))  # the report itself is kept


# -- usage and parsing -------------------------------------------------------------------
def test_version(capsys) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aiops-lab {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["report"],
        ["report", "nope"],
        ["report", "drift", "-p", "only_a_name"],
        ["report", "drift", "--model", "m", "--model-version", "1", "--model-alias", "champion"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys) -> None:
    assert cli.main(argv) == 2


def test_unknown_parameter_exits_1_and_debug_shows_the_error(
    fixture_report, tmp_path: Path, capsys
) -> None:
    argv = ["report", "drift", "-p", "threshhold", "0.2", "--output", str(tmp_path)]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "Parameter 'threshhold'" in err
    assert "Traceback" not in err
    with pytest.raises(ParameterError):
        cli.main(["--debug", *argv])
    with pytest.raises(ParameterError):
        cli.main([*argv, "--debug"])


def test_parameters_file_must_be_a_mapping(fixture_report, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("- 1\n- 2\n")
    assert cli.main(["report", "drift", "-f", str(bad), "--output", str(tmp_path)]) == 1
    assert "'-f'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.25", 0.25),
        ("1e-3", 0.001),
        ("True", True),
        ("false", False),
        ("None", None),
        ("null", None),
        ("[a, b]", ["a", "b"]),
        ("data/ref.parquet", "data/ref.parquet"),
        ("2026-01-01", "2026-01-01"),
        ("a: b: c", "a: b: c"),
        ("", ""),
    ],
)
def test_parse_value_like_papermill(text: str, value: Any) -> None:
    assert cli.parse_value(text) == value


# -- datasets, info, lab -----------------------------------------------------------------
@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    module = types.ModuleType("aiops_lab.datasets")
    module.describe = lambda: pl.DataFrame({"name": ["credit_reference"], "rows": [20000]})  # type: ignore[attr-defined]

    def path(name: str) -> Path:
        if name != "credit_reference":
            raise ParameterError("name", "a bundled dataset", name)
        return Path("/data/credit_reference.parquet")

    module.path = path  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "aiops_lab.datasets", module)


def test_datasets_table_and_path(fake_datasets, capsys) -> None:
    assert cli.main(["datasets"]) == 0
    assert "credit_reference" in capsys.readouterr().out
    assert cli.main(["datasets", "path", "credit_reference"]) == 0
    assert capsys.readouterr().out.strip() == "/data/credit_reference.parquet"
    assert cli.main(["datasets", "path", "nope"]) == 1
    assert cli.main(["datasets", "path"]) == 1


def test_datasets_lists_gpu_and_finops_files(capsys) -> None:
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in (
        "credit_reference",
        "gpu/sacct.txt",
        "gpu/dcgm.prom.gz",
        "finops/ai_spend_focus.csv.gz",
    ):
        assert name in out
    assert "20,000 rows x 18 columns" in out
    assert "read with aiops_lab.gpu.read_sacct" in out
    assert "Slurm accounting" in out  # descriptions are shown, wrapped, not cut off
    assert cli.main(["datasets", "path", "finops/genai_spans.jsonl.gz"]) == 0
    assert capsys.readouterr().out.strip().endswith("genai_spans.jsonl.gz")


def test_info(capsys) -> None:
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"aiops_lab  {__version__}" in out
    assert str(reporting.notebooks_dir()) in out
    assert "backend" in out
    assert "tracking" in out


def test_lab_without_jupyterlab_gives_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util, "find_spec", lambda n, *a: None if n == "jupyterlab" else real(n, *a)
    )
    assert cli.main(["lab"]) == 1
    assert 'pip install "aiops_lab[lab]"' in capsys.readouterr().err


def test_lab_copies_templates_and_starts_jupyterlab(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "drift_investigation.ipynb").write_text("{}")
    (templates / "tour.ipynb").write_text("{}")
    work = tmp_path / "work"
    work.mkdir()
    (work / "tour.ipynb").write_text("my edits")
    monkeypatch.setattr(reporting, "notebooks_dir", lambda: templates)
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda n, *a: object())
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    started: list[list[str]] = []

    class FakeProcess:
        def __init__(self, cmd: list[str]) -> None:
            started.append(cmd)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", FakeProcess)
    code = cli.main(["lab", "--dir", str(work), "--port", "8899", "--no-browser", "--token", "t0k"])
    assert code == 0
    assert (work / "drift_investigation.ipynb").read_text() == "{}"
    assert (work / "tour.ipynb").read_text() == "my edits"  # never overwritten
    [cmd] = started
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={work}" in cmd
    assert {"--port=8899", "--no-browser", "--allow-root", "--IdentityProvider.token=t0k"} <= set(
        cmd
    )

"""Headless reports: papermill run, code-free offline HTML, atomic files, failures kept."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from aiops_lab import reporting
from aiops_lab.errors import ParameterError, ReportError
from aiops_lab.reporting import ReportOutcome, emit, format_summary, run_report

FIXTURE = Path(__file__).parent / "fixtures" / "report_ok.ipynb"
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", re.IGNORECASE)


@pytest.fixture(scope="module")
def ok_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportOutcome, Path, Path]:
    """One successful run, tracked into the default store of its output folder."""
    home = tmp_path_factory.mktemp("user_cwd")
    (home / "data.csv").write_text("a\n1\n")
    out = home / "reports"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(home)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        outcome = run_report(
            "fixture",
            notebook=FIXTURE,
            parameters={"rows": 12, "data_path": "data.csv"},
            output_dir="reports",
            progress=False,
        )
    return outcome, out, home


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportError, Path]:
    """One failing run, started without a ``python3`` kernelspec (the fallback kernel)."""
    from jupyter_client.kernelspec import KernelSpecManager

    def no_spec(self, name):
        raise AssertionError(f"kernelspec {name!r} looked up")

    out = tmp_path_factory.mktemp("failed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(KernelSpecManager, "find_kernel_specs", lambda self: {})
        mp.setattr(KernelSpecManager, "get_kernel_spec", no_spec)
        with pytest.raises(ReportError) as info:
            run_report(
                "fixture",
                notebook=FIXTURE,
                parameters={"fail": True},
                output_dir=out,
                progress=False,
                track=False,
            )
    return info.value, out


# -- a successful run --------------------------------------------------------------------
@pytest.mark.slow
def test_run_writes_notebook_html_and_json(ok_run) -> None:
    outcome, out, _ = ok_run
    run_dir = outcome.run_dir
    assert run_dir is not None
    assert run_dir.parent == out
    assert re.fullmatch(r"fixture-\d{8}T\d{6}Z", run_dir.name)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "fixture.html",
        "fixture.ipynb",
        "result.json",
    ]  # no temporary or partial files left behind
    assert outcome.html_path == run_dir / "fixture.html"
    assert (out / "fixture-latest.html").read_bytes() == outcome.html_path.read_bytes()
    assert json.loads((out / "fixture-latest.json").read_text()) == outcome.result
    assert outcome.exit_code == 0
    assert outcome.alert is False


@pytest.mark.slow
def test_html_is_code_free_and_offline(ok_run) -> None:
    html = ok_run[0].html_path.read_text(encoding="utf-8")
    assert "0 of 12 columns drifted" in html
    assert "<svg" in html  # the chart is inlined, not fetched
    assert "this-source-line-must-not-appear-in-html" not in html
    assert "class FixtureResult" not in html
    assert not REMOTE_SCRIPT.search(html)
    assert not re.search(r"In&nbsp;\[\d|Out\[\d", html)  # no prompts


@pytest.mark.slow
def test_result_json_matches_and_records_the_run(ok_run) -> None:
    outcome, _, home = ok_run
    data = json.loads(outcome.result_path.read_text())
    assert data == outcome.result
    assert data["analysis"] == "fixture"
    assert data["summary"]["headline"] == outcome.summary["headline"]
    assert data["summary"]["not_finite"] is None
    params = data["params"]
    assert params["in_report"] is True  # AIOPS_LAB_REPORT=1 reached the kernel
    assert Path(params["cwd"]) == outcome.run_dir  # the kernel ran in the run folder
    assert params["data_path"] == str((home / "data.csv").resolve())
    assert "AIOPS_LAB_REPORT" not in os.environ  # ... but not this process


@pytest.mark.slow
def test_executed_notebook_has_outputs(ok_run) -> None:
    nb = nbformat.read(ok_run[0].notebook_path, as_version=4)
    assert "papermill" in nb.metadata
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_run_is_tracked_in_the_output_folder(ok_run) -> None:
    from mlflow.tracking import MlflowClient

    outcome, out, _ = ok_run
    assert outcome.tracking_error is None, outcome.tracking_error
    assert outcome.tracking_uri == "sqlite:///" + (out / "mlflow.db").as_posix()
    client = MlflowClient(tracking_uri=outcome.tracking_uri)
    run = client.get_run(outcome.tracking_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["aiops_lab.report"] == "fixture"
    names = {f.path for f in client.list_artifacts(run.info.run_id, "report")}
    assert names == {"report/fixture.html", "report/fixture.ipynb", "report/result.json"}
    assert run.info.artifact_uri.startswith((out / "mlartifacts").as_uri())


@pytest.mark.slow
def test_format_summary_shows_headline_rows_and_paths(ok_run) -> None:
    outcome = ok_run[0]
    text = format_summary(outcome)
    assert text.splitlines()[0] == "fixture report: OK: 0 of 12 columns drifted"
    assert "Top 10 of 12 rows" in text
    assert str(outcome.html_path) in text
    assert outcome.tracking_run_id in text
    assert "exit code 0" in text


# -- a failing run -----------------------------------------------------------------------
@pytest.mark.slow
def test_failure_keeps_the_executed_notebook(failed_run) -> None:
    error, _out = failed_run
    kept = Path(error.executed_notebook)
    assert kept.name == "fixture.failed.ipynb"
    assert kept.is_file()
    assert str(kept) in str(error)
    # the cell's own error: the kernel from this interpreter started without a kernelspec
    assert "RuntimeError: fixture asked to fail" in str(error)
    assert "cell" in str(error)
    nb = nbformat.read(kept, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_failure_writes_no_html_nor_latest(failed_run) -> None:
    _, out = failed_run
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert len(files) == 1, files
    assert files[0].endswith("/fixture.failed.ipynb")


# -- no kernel needed --------------------------------------------------------------------
def test_unknown_kind_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="'kind'"):
        run_report("nope")


def test_unknown_parameter_is_rejected_before_running(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="threshhold") as info:
        run_report("fixture", notebook=FIXTURE, parameters={"threshhold": 1}, output_dir=tmp_path)
    assert "alert" in str(info.value)  # lists what the notebook declares
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("model", "version", "alias"),
    [(None, "1", None), ("m", None, None), ("m", "1", "champion")],
)
def test_model_arguments_must_be_consistent(tmp_path: Path, model, version, alias) -> None:
    with pytest.raises(ParameterError):
        run_report(
            "fixture",
            notebook=FIXTURE,
            output_dir=tmp_path,
            model=model,
            model_version=version,
            model_alias=alias,
        )


def test_declared_parameters_survive_comments_with_quotes(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    source = 'window = "1d"  # "6h", "1d" ("" = none)\nalpha: float = 0.05\nimport os\n'
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})]
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    assert reporting.report_parameters(path) == {"window": '"1d"', "alpha": "0.05"}
    nb.cells[0].metadata = {}
    nbformat.write(nb, path)
    assert reporting.report_parameters(path) == {}


def test_bad_webhook_url_is_rejected_before_running(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="notify"):
        run_report("fixture", notebook=FIXTURE, output_dir=tmp_path, notify="ftp://x/hook")
    assert list(tmp_path.iterdir()) == []


def test_registered_notebooks_resolve() -> None:
    assert reporting.REPORTS["drift"] == "drift_investigation.ipynb"
    folder = reporting.notebooks_dir()
    assert folder.name in ("_notebooks", "notebooks")
    if not (folder / "drift_investigation.ipynb").exists():
        pytest.skip("drift notebook not present yet")
    assert reporting.notebook_path("drift") == folder / "drift_investigation.ipynb"


def test_absolute_registry_entries_are_used_as_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(reporting.REPORTS, "fixture", str(FIXTURE))
    assert reporting.notebook_path("fixture") == FIXTURE
    monkeypatch.setitem(reporting.REPORTS, "gone", str(FIXTURE.with_name("gone.ipynb")))
    with pytest.raises(ReportError, match=r"gone\.ipynb"):
        reporting.notebook_path("gone")


def test_emit_does_nothing_outside_a_report(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(reporting.RESULT_PATH_ENV, raising=False)
    assert emit({"summary": {"alert": False, "headline": "x"}}) is None


def test_emit_writes_json_atomically(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    monkeypatch.setenv(reporting.RESULT_PATH_ENV, str(target))
    data = {"analysis": "x", "summary": {"alert": True, "headline": "h"}}
    assert emit(data) == target
    assert json.loads(target.read_text()) == data
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_atomic_write_keeps_the_old_file_on_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(reporting.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        reporting._write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_html_export_strips_remote_scripts() -> None:
    nb = nbformat.v4.new_notebook()
    html_out = "<p>chart</p><script src='https://cdn.example.com/vega.js'></script>"
    nb.cells = [
        nbformat.v4.new_code_cell(
            "secret_code()",
            outputs=[nbformat.v4.new_output("display_data", data={"text/html": html_out})],
        )
    ]
    html = reporting._export_html(nb, "t")
    assert "<p>chart</p>" in html
    assert not REMOTE_SCRIPT.search(html)
    assert "secret_code" not in html


def _outcome(**changes) -> ReportOutcome:
    base = {
        "kind": "drift",
        "html_path": Path("r/d.html"),
        "notebook_path": Path("r/d.ipynb"),
        "result_path": Path("r/result.json"),
        "summary": {"alert": True, "headline": "2 of 5 columns drifted", "n_drifted": 2},
        "alert": True,
    }
    return ReportOutcome(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"alert": False}, 0),
        ({}, 0),  # an alert alone does not fail the run
        ({"fail_on_alert": True}, 3),
        ({"tracking_error": "store down"}, 4),
        ({"notify_error": "HTTP 500"}, 4),
        ({"fail_on_alert": True, "tracking_error": "store down"}, 3),  # 3 wins
        ({"alert": False, "fail_on_alert": True}, 0),
    ],
)
def test_exit_codes(changes, code) -> None:
    assert _outcome(**changes).exit_code == code


def test_format_summary_puts_alerting_rows_first() -> None:
    table = [{"column": f"c{i}", "score": i / 3, "drifted": i in (7, 11)} for i in range(12)]
    text = format_summary(
        _outcome(fail_on_alert=True, tracking_error="store down", result={"table": table})
    )
    rows = [line.split()[0] for line in text.splitlines() if re.match(r"  c\d", line)]
    assert rows[:2] == ["c7", "c11"]
    assert len(rows) == 10
    assert "ALERT: 2 of 5 columns drifted" in text
    assert "n_drifted" in text
    assert "tracking  FAILED: store down" in text
    assert "exit code 3" in text


def test_run_all_continues_after_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporting, "REPORTS", {"a": str(FIXTURE), "b": str(FIXTURE)})
    calls = []

    def fake_run(kind: str, **kwargs):
        calls.append((kind, kwargs["parameters"]))
        if kind == "a":
            raise ReportError("a broke")
        return _outcome(kind=kind)

    monkeypatch.setattr(reporting, "run_report", fake_run)
    outcomes, errors = reporting.run_all(parameters={"rows": 4}, track=False)
    assert [k for k, _ in calls] == ["a", "b"]
    assert list(outcomes) == ["b"]
    assert str(errors["a"]) == "a broke"
    assert calls[1][1] == {"rows": 4}
    with pytest.raises(ParameterError, match="nope"):
        reporting.run_all(parameters={"nope": 1})


def test_run_all_includes_finops_and_routes_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    assert reporting.REPORTS["finops"] == "finops_forecast.ipynb"
    calls = {}

    def fake_run(kind: str, **kwargs):
        calls[kind] = kwargs["parameters"]
        return _outcome(kind=kind)

    monkeypatch.setattr(reporting, "run_report", fake_run)
    outcomes, errors = reporting.run_all(parameters={"budget": 60000, "alpha": 0.01}, track=False)
    assert errors == {}
    assert list(outcomes) == list(reporting.REPORTS)
    assert set(calls) == set(reporting.REPORTS) >= {"drift", "gpu", "finops"}
    assert calls["finops"] == {"budget": 60000}  # the drift notebook has no budget
    assert calls["drift"] == {"alpha": 0.01}
    assert calls["gpu"] == {}

"""The FinOps report: the notebook on the bundled bill, `aiops-lab report finops`, --fail-on-breach."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from aiops_lab import cli, finops, reporting
from aiops_lab.datasets import resolve_path

NOTEBOOK = reporting.notebook_path("finops")


@pytest.fixture(scope="module")
def defaults() -> dict:
    """The notebook's parameter defaults, as Python values."""
    return {k: ast.literal_eval(v) for k, v in reporting.report_parameters(NOTEBOOK).items()}


@pytest.fixture(scope="module")
def direct_breach(defaults) -> float:
    """p_breach of the period's total, from the library called directly on the bundled bill.

    The bundled bill already carries the LLM API invoices that the bundled call log
    prices, so the report must add nothing from the log: the bill alone is the input.
    """
    bill = finops.read_focus(resolve_path(defaults["bill"]))
    fc = finops.forecast(
        bill,
        horizon=defaults["horizon"],
        budget=defaults["budget"],
        period=defaults["period"],
        backend=defaults["backend"],
    )
    assert fc.breach is not None
    return float(fc.breach.filter(fc.breach["group"] == "total")["p_breach"][0])


def test_registered_and_declares_its_parameters(defaults) -> None:
    assert reporting.REPORTS["finops"] == "finops_forecast.ipynb"
    assert NOTEBOOK.name == "finops_forecast.ipynb"
    expected = {
        "bill", "token_usage", "group_by", "budget", "horizon", "period", "alert_p_breach",
        "backend", "tracking", "tracking_uri", "fail_on_breach",
    }  # fmt: skip
    assert expected <= set(defaults)
    assert defaults["bill"] == "bundled:finops/ai_spend_focus.csv.gz"
    assert defaults["token_usage"] == "bundled:finops/genai_spans.jsonl.gz"
    assert isinstance(defaults["budget"], (int, float))
    assert defaults["budget"] > 0


def test_notebook_is_committed_without_outputs() -> None:
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "aiops_lab.reporting.emit(result)" in code[-1].source


def test_default_budget_gives_a_meaningful_risk(direct_breach) -> None:
    """Neither certain nor impossible on the bundled data (July forecast ~69,800)."""
    assert 0.05 < direct_breach < 0.95


@pytest.mark.slow
def test_report_writes_files_and_fails_on_breach(
    tmp_path: Path, direct_breach, monkeypatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    below, above = round(direct_breach - 0.05, 4), round(direct_breach + 0.05, 4)
    out = tmp_path / "reports"
    args = ["report", "finops", "--output", str(out), "--quiet"]

    # a threshold below the risk: exit 3, no tracking
    assert cli.main([*args, "--no-track", "--fail-on-breach", str(below)]) == 3
    (run,) = out.glob("finops-*T*Z")
    assert (run / "finops.ipynb").is_file()
    assert (run / "finops.html").is_file()
    data = json.loads((run / "result.json").read_text())
    assert data["analysis"] == "finops"
    assert data["summary"]["p_breach"] == pytest.approx(direct_breach, abs=1e-12)
    assert data["summary"]["alert"] is True
    assert data["params"]["alert_p_breach"] == pytest.approx(below)
    assert data["breach"][0]["group"] == "total"
    assert json.loads((out / "finops-latest.json").read_text()) == data
    html = (run / "finops.html").read_text()
    assert "data:image/svg+xml" in html or "<svg" in html
    assert "Traceback" not in html
    executed = nbformat.read(str(run / "finops.ipynb"), as_version=4)
    assert executed.cells[-1].outputs  # the summary, after emit()

    # a threshold above it: exit 0, and the result lands in MLflow (exit 4 if tracking failed)
    assert cli.main([*args, "--fail-on-breach", str(above)]) == 0
    latest = json.loads((out / "finops-latest.json").read_text())
    assert latest["summary"]["alert"] is False
    assert latest["summary"]["p_breach"] == pytest.approx(direct_breach, abs=1e-12)

    import mlflow

    client = mlflow.MlflowClient(tracking_uri="sqlite:///" + (out / "mlflow.db").as_posix())
    (logged,) = client.search_runs([client.get_experiment_by_name("aiops_lab").experiment_id])
    assert logged.data.tags["aiops_lab.report"] == "finops"
    assert logged.data.metrics["p_breach"] == pytest.approx(direct_breach, abs=1e-12)


@pytest.mark.parametrize("kind", ["drift", "gpu", "all"])
def test_fail_on_breach_is_for_the_finops_report_only(tmp_path: Path, kind, capsys) -> None:
    argv = ["report", kind, "--fail-on-breach", "0.3", "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--fail-on-breach" in err
    assert "aiops-lab report finops" in err
    assert list(tmp_path.iterdir()) == []  # refused before anything ran


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--fail-on-breach", "0"], "probability"),
        (["--fail-on-breach", "1.5"], "probability"),
        (["--fail-on-breach", "0.3", "-p", "budget", "0"], "budget"),
    ],
)
def test_fail_on_breach_needs_a_probability_and_a_budget(
    tmp_path: Path, extra, message, capsys
) -> None:
    argv = ["report", "finops", *extra, "--output", str(tmp_path), "--no-track"]
    assert cli.main(argv) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fail_on_breach_must_be_a_number(capsys) -> None:
    assert cli.main(["report", "finops", "--fail-on-breach", "often"]) == 2
    assert "--fail-on-breach" in capsys.readouterr().err

"""MLflow tracking: what log_result writes is really in the store when read back."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from aiops_lab.errors import MissingDependencyError, ParameterError, TrackingError
from aiops_lab.result import Result
from aiops_lab.tracking import log_result

mlflow_tracking = pytest.importorskip("mlflow.tracking")
# MLflow's own sqlalchemy store, touched directly by these tests, warns about sqlalchemy 2.1
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy")
MlflowClient = mlflow_tracking.MlflowClient


class FakeResult(Result):
    """A two-table result with a non-finite metric and a long parameter."""

    analysis = "fake"

    def __init__(self, alert: bool = True) -> None:
        self._alert = alert

    @property
    def table(self) -> pl.DataFrame:
        return pl.DataFrame({"column": ["a", "b"], "psi": [0.31, 0.02], "drifted": [True, False]})

    def tables(self) -> dict[str, pl.DataFrame]:
        return {"table": self.table, "windows": pl.DataFrame({"window": [1, 2], "n": [10, 12]})}

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "alert": self._alert,
            "headline": "1 of 2 columns drifted",
            "n_drifted": 1,
            "share": 0.5,
        }

    @property
    def params(self) -> dict[str, Any]:
        return {"threshold": 0.2, "columns": ["a", "b"], "note": "x" * 7000}

    def metrics(self) -> dict[str, float]:
        return {**super().metrics(), "psi/a": 0.31, "psi/b": math.inf}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module (each fresh store migrates its schema)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = "sqlite:///" + (root / "mlflow.db").as_posix()
    client = MlflowClient(tracking_uri=uri)
    client.create_experiment("aiops_lab", artifact_location=(root / "artifacts").as_uri())
    return uri


@pytest.fixture(scope="module")
def model_version(store: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    client = MlflowClient(tracking_uri=store)
    client.create_registered_model("churn")
    source = tmp_path_factory.mktemp("model")
    version = client.create_model_version("churn", source=str(source))
    client.set_registered_model_alias("churn", "champion", version.version)
    return "churn", str(version.version)


def _runs(uri: str) -> list[Any]:
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("aiops_lab")
    return client.search_runs([experiment.experiment_id])


def test_params_metrics_tags_and_tables_are_logged(store: str, tmp_path: Path) -> None:
    report = tmp_path / "drift.html"
    report.write_text("<html>report</html>")
    run_id = log_result(
        FakeResult(),
        tracking_uri=store,
        run_name="t-logged",
        artifacts=[report],
        params={"kind": "drift"},
        tags={"team": "risk"},
    )
    client = MlflowClient(tracking_uri=store)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "t-logged"
    params = run.data.params
    assert params["threshold"] == "0.2"
    assert json.loads(params["columns"]) == ["a", "b"]
    assert params["kind"] == "drift"
    assert len(params["note"]) == 6000  # cut to MLflow's limit
    metrics = run.data.metrics
    assert metrics == {"alert": 1.0, "n_drifted": 1.0, "share": 0.5, "psi/a": 0.31}  # inf skipped
    tags = run.data.tags
    assert tags["aiops_lab.analysis"] == "fake"
    assert tags["aiops_lab.alert"] == "true"
    assert tags["aiops_lab.headline"] == "1 of 2 columns drifted"
    assert tags["team"] == "risk"

    local = Path(client.download_artifacts(run_id, "", str(tmp_path / "back")))
    assert json.loads((local / "summary.json").read_text())["n_drifted"] == 1
    assert json.loads((local / "tables" / "table.json").read_text())["rows"][0]["psi"] == 0.31
    assert (local / "tables" / "windows.csv").read_text().splitlines() == [
        "window,n",
        "1,10",
        "2,12",
    ]
    assert (local / "report" / "drift.html").read_text() == "<html>report</html>"


def test_accepts_a_result_dict(store: str) -> None:
    data = FakeResult(alert=False).to_dict()
    run_id = log_result(data, tracking_uri=store)
    run = MlflowClient(tracking_uri=store).get_run(run_id)
    assert run.data.tags["aiops_lab.alert"] == "false"
    assert run.info.run_name.startswith("fake-")


def test_failure_mid_logging_marks_the_run_failed(
    store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = tmp_path / "r.html"
    report.write_text("x")

    real = MlflowClient.log_artifact

    def broken(self, run_id, local_path, artifact_path=None):
        if artifact_path == "report":  # the report files come last
            raise OSError("artifact store full")
        return real(self, run_id, local_path, artifact_path)

    monkeypatch.setattr(MlflowClient, "log_artifact", broken)
    with pytest.raises(TrackingError) as info:
        log_result(FakeResult(), tracking_uri=store, run_name="t-broken", artifacts=[report])
    message = str(info.value)
    assert "artifact store full" in message
    assert "Logged: run, params, metrics, tags, summary.json, tables;" in message
    assert "not logged: report files" in message
    [run] = [r for r in _runs(store) if r.info.run_name == "t-broken"]
    assert run.info.status == "FAILED"
    assert run.info.run_id in message


@pytest.mark.parametrize("how", ["version", "alias"])
def test_model_version_is_tagged(store: str, model_version: tuple[str, str], how: str) -> None:
    name, version = model_version
    pick = {"model_version": version} if how == "version" else {"model_alias": "champion"}
    run_id = log_result(FakeResult(), tracking_uri=store, model=name, **pick)
    tags = MlflowClient(tracking_uri=store).get_model_version(name, version).tags
    assert tags["aiops_lab.fake.alert"] == "true"
    assert tags["aiops_lab.fake.headline"] == "1 of 2 columns drifted"
    assert tags["aiops_lab.fake.run_id"] == run_id
    assert tags["aiops_lab.fake.checked_at"].endswith("+00:00")


def test_unknown_model_version_logs_nothing(store: str, model_version: tuple[str, str]) -> None:
    before = len(_runs(store))
    with pytest.raises(TrackingError, match=r"'churn' version 99"):
        log_result(FakeResult(), tracking_uri=store, model="churn", model_version=99)
    with pytest.raises(TrackingError, match=r"'nosuch' alias 'champion'"):
        log_result(FakeResult(), tracking_uri=store, model="nosuch", model_alias="champion")
    assert len(_runs(store)) == before


def test_unusable_store_is_a_tracking_error() -> None:
    with pytest.raises(TrackingError, match="nosuchscheme"):
        log_result(FakeResult(), tracking_uri="nosuchscheme://nowhere")


def test_tracking_uri_defaults_to_the_environment(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    run_id = log_result(FakeResult(), run_name="t-env")
    assert MlflowClient(tracking_uri=store).get_run(run_id).info.run_name == "t-env"


def test_bad_arguments_are_rejected_before_logging(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="artifacts"):
        log_result(FakeResult(), tracking_uri="sqlite://", artifacts=[tmp_path / "missing.html"])
    with pytest.raises(ParameterError):
        log_result(FakeResult(), tracking_uri="sqlite://", model="m")
    with pytest.raises(ParameterError):
        log_result(FakeResult(), tracking_uri="sqlite://", model_alias="champion")
    with pytest.raises(ParameterError, match="result"):
        log_result(42, tracking_uri="sqlite://")


def test_missing_mlflow_gives_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("mlflow", "mlflow.entities", "mlflow.tracking"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match="pip install"):
        log_result(FakeResult(), tracking_uri="sqlite://")

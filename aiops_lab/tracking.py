"""Log any analysis result to MLflow: parameters, metrics, tables and report files.

One call, one MLflow run. Everything goes through an explicit ``MlflowClient`` (no
global "active run"), so logging from a notebook or a report never disturbs the
user's own MLflow session. A failure part-way ends the run as ``FAILED`` and raises
:class:`~aiops_lab.errors.TrackingError` saying what was logged and what was not.

>>> from aiops_lab.tracking import log_result
>>> run_id = log_result(result, tracking_uri="sqlite:///mlflow.db")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiops_lab.errors import MissingDependencyError, ParameterError, TrackingError

__all__ = ["check_model_args", "log_result"]

_META_KEYS = ("analysis", "summary", "params", "metrics")
# MLflow's limits (mlflow.utils.validation); kept here so importing this module stays cheap
_MAX_PARAM_VALUE = 6000
_MAX_TAG_VALUE = 5000
_MAX_KEY = 250
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_BAD_KEY_CHARS = re.compile(r"[^A-Za-z0-9_\-. /]")


def log_result(
    result: Any,
    *,
    experiment: str = "aiops_lab",
    run_name: str | None = None,
    tracking_uri: str | None = None,
    artifacts: Sequence[str | Path] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    model: str | None = None,
    model_version: str | int | None = None,
    model_alias: str | None = None,
    artifact_location: str | None = None,
) -> str:
    """Log a result as one MLflow run and return the run id.

    Parameters
    ----------
    result : Result or dict
        An analysis result, or its ``to_dict()``.
    experiment : str
        MLflow experiment name; created when missing.
    run_name : str, optional
        Default ``"<analysis>-<UTC timestamp>"``.
    tracking_uri : str, optional
        The MLflow store; default ``$MLFLOW_TRACKING_URI``, else MLflow's own default
        (``sqlite:///mlflow.db`` in the current directory for MLflow 3).
    artifacts : sequence of path
        Files to attach under ``report/`` (HTML, executed notebook, JSON...).
    params : mapping, optional
        Extra parameters, added to the result's own ``params``. Values are stringified
        and cut to MLflow's 6000-character limit.
    tags : mapping, optional
        Extra run tags. ``aiops_lab.analysis``, ``aiops_lab.alert`` and
        ``aiops_lab.headline`` are always set.
    model : str, optional
        A registered model whose version gets tagged with this check:
        ``aiops_lab.<analysis>.alert``, ``.headline``, ``.run_id`` and ``.checked_at``.
    model_version, model_alias : optional
        Which version of ``model`` (exactly one of them with ``model``).
    artifact_location : str, optional
        Artifact root used only when the experiment is created here.

    Returns
    -------
    str
        The MLflow run id.

    Raises
    ------
    TrackingError
        The store is unreachable, the model version is unknown, or logging failed
        part-way (the run is then marked FAILED).
    MissingDependencyError
        mlflow is not installed.

    Examples
    --------
    >>> from aiops_lab.tracking import log_result
    >>> log_result(result, tracking_uri="sqlite:///mlflow.db", model="churn", model_alias="champion")  # doctest: +SKIP
    '3f2c...'
    """
    data = _as_dict(result)
    check_model_args(model, model_version, model_alias)
    files = [Path(a) for a in artifacts]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ParameterError("artifacts", "existing files", missing)

    analysis = str(data.get("analysis") or "result")
    summary = dict(data.get("summary") or {})
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None

    client, entities = _client(uri)
    with _quiet_mlflow():
        where = uri or client.tracking_uri
        try:
            version = _resolve_version(client, model, model_version, model_alias)
            experiment_id = _experiment_id(client, experiment, artifact_location)
        except TrackingError:
            raise
        except Exception as exc:
            msg = f"MLflow store {where!r} could not be used ({type(exc).__name__}: {exc}); nothing was logged."
            raise TrackingError(msg) from exc

        done: list[str] = []
        steps = ["run", "params", "metrics", "tags", "summary.json", "tables", "report files"]
        if model:
            steps.append(f"tags on model {model!r} version {version}")
        run_id: str | None = None
        try:
            stamp = datetime.now(timezone.utc)
            run = client.create_run(
                experiment_id,
                run_name=run_name or f"{analysis}-{stamp:%Y%m%dT%H%M%SZ}",
            )
            run_id = run.info.run_id
            done.append("run")
            _log_params(client, entities, run_id, {**(data.get("params") or {}), **(params or {})})
            done.append("params")
            _log_metrics(client, entities, run_id, data.get("metrics") or {})
            done.append("metrics")
            all_tags = {
                "aiops_lab.analysis": analysis,
                "aiops_lab.alert": _flag(summary.get("alert")),
                "aiops_lab.headline": str(summary.get("headline", "")),
                "mlflow.note.content": str(summary.get("headline", "")),
                **{str(k): v for k, v in (tags or {}).items()},
            }
            client.log_batch(
                run_id,
                tags=[
                    entities.RunTag(_key(k), _cut(v, _MAX_TAG_VALUE)) for k, v in all_tags.items()
                ],
                synchronous=True,
            )
            done.append("tags")
            client.log_dict(run_id, summary, "summary.json")
            done.append("summary.json")
            for name, rows in _tables(data).items():
                client.log_dict(run_id, {"rows": rows}, f"tables/{name}.json")
                client.log_text(run_id, _csv(rows), f"tables/{name}.csv")
            done.append("tables")
            for path in files:
                client.log_artifact(run_id, str(path), artifact_path="report")
            done.append("report files")
            if model:
                _tag_version(client, model, version, analysis, summary, run_id, stamp)
                done.append(steps[-1])
            client.set_terminated(run_id, "FINISHED")
            done.append("finished")
        except Exception as exc:
            if run_id is not None:
                with contextlib.suppress(Exception):
                    client.set_terminated(run_id, "FAILED")
            logged = ", ".join(done) or "nothing"
            not_logged = ", ".join(s for s in steps if s not in done)
            state = f"run {run_id} was marked FAILED" if run_id else "no run was created"
            msg = (
                f"Logging the {analysis} result to MLflow store {where!r} failed "
                f"({type(exc).__name__}: {exc}). Logged: {logged}; not logged: {not_logged}; "
                f"{state}."
            )
            raise TrackingError(msg) from exc
    return str(run_id)


# -- helpers -----------------------------------------------------------------------------
def check_model_args(model: str | None, version: object, alias: str | None) -> None:
    """Raise ParameterError unless ``model`` comes with exactly one of version or alias."""
    if model is None and (version is not None or alias is not None):
        raise ParameterError(
            "model", "a registered model name when model_version or model_alias is given", None
        )
    if model is not None and (version is None) == (alias is None):
        raise ParameterError(
            "model_version/model_alias",
            f"exactly one of them with model={model!r}",
            {"model_version": version, "model_alias": alias},
        )


def _as_dict(result: Any) -> dict[str, Any]:
    if isinstance(result, Mapping):
        return dict(result)
    if hasattr(result, "to_dict"):
        return dict(result.to_dict())
    raise ParameterError("result", "an aiops_lab Result or its to_dict()", type(result).__name__)


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """Hide MLflow's INFO chatter (database migrations) and warnings during one call."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _client(uri: str | None) -> tuple[Any, Any]:
    try:
        import mlflow.entities as entities
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise MissingDependencyError("mlflow", "tracking", "Experiment tracking") from exc
    try:
        with _quiet_mlflow():
            return MlflowClient(tracking_uri=uri), entities
    except Exception as exc:
        msg = (
            f"MLflow tracking URI {uri!r} cannot be used ({type(exc).__name__}: {exc}); "
            "nothing was logged. Pass e.g. sqlite:///mlflow.db or http://host:5000."
        )
        raise TrackingError(msg) from exc


def _resolve_version(client: Any, model: str | None, version: Any, alias: str | None) -> str | None:
    if model is None:
        return None
    what = f"version {version}" if alias is None else f"alias {alias!r}"
    try:
        if alias is not None:
            found = client.get_model_version_by_alias(model, alias)
        else:
            found = client.get_model_version(model, str(version))
    except Exception as exc:
        msg = (
            f"Registered model {model!r} {what} was not found in the model registry "
            f"({type(exc).__name__}: {exc}); nothing was logged. Check the name and version "
            "in the MLflow UI, or leave out --model."
        )
        raise TrackingError(msg) from exc
    return str(found.version)


def _experiment_id(client: Any, name: str, artifact_location: str | None) -> str:
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def _key(name: Any) -> str:
    return _BAD_KEY_CHARS.sub("_", str(name))[:_MAX_KEY]


def _cut(value: Any, limit: int) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = _flag(value)
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _flag(value: Any) -> str:
    return "true" if bool(value) else "false"


def _log_params(client: Any, entities: Any, run_id: str, params: Mapping[str, Any]) -> None:
    items = [entities.Param(_key(k), _cut(v, _MAX_PARAM_VALUE)) for k, v in params.items()]
    for i in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[i : i + _PARAMS_PER_BATCH], synchronous=True)


def _log_metrics(client: Any, entities: Any, run_id: str, metrics: Mapping[str, Any]) -> None:
    now = int(time.time() * 1000)
    items = []
    for key, value in metrics.items():
        if isinstance(value, bool):
            value = float(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            items.append(entities.Metric(_key(key), float(value), now, 0))
    for i in range(0, len(items), _METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=items[i : i + _METRICS_PER_BATCH], synchronous=True)


def _tables(data: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        str(name): value
        for name, value in data.items()
        if name not in _META_KEYS
        and isinstance(value, list)
        and all(isinstance(r, dict) for r in value)
    }


def _csv(rows: list[dict[str, Any]]) -> str:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _tag_version(
    client: Any,
    model: str,
    version: str | None,
    analysis: str,
    summary: Mapping[str, Any],
    run_id: str,
    stamp: datetime,
) -> None:
    values = {
        "alert": _flag(summary.get("alert")),
        "headline": _cut(summary.get("headline", ""), _MAX_TAG_VALUE),
        "run_id": run_id,
        "checked_at": stamp.isoformat(timespec="seconds"),
    }
    for name, value in values.items():
        client.set_model_version_tag(model, version, f"aiops_lab.{analysis}.{name}", value)

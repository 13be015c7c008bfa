"""Headless reports: run a report notebook, keep it, and publish a code-free HTML page.

A report is a notebook in ``notebooks/`` with one cell tagged ``parameters`` and a last
cell that calls :func:`emit` with its result. :func:`run_report` executes it with
papermill in a fresh kernel and writes, for each run::

    <output_dir>/<kind>-<UTC timestamp>/<kind>.ipynb    the executed notebook
    <output_dir>/<kind>-<UTC timestamp>/<kind>.html     code-free, offline HTML report
    <output_dir>/<kind>-<UTC timestamp>/result.json     the result's ``to_dict()``
    <output_dir>/<kind>-latest.html, <kind>-latest.json copies of the newest good run

Every file is written to a temporary name in its folder and then renamed, so a reader
never sees half a file. A notebook that fails keeps its executed copy, with the error
marked, as ``<kind>.failed.ipynb`` in its run folder; no HTML is written and
:class:`~aiops_lab.errors.ReportError` says which cell failed and where the notebook is.

The kernel runs with its working directory set to the run folder, so anything the
notebook saves lands beside the report. Parameter values that name existing relative
paths are made absolute first, so they still resolve against the caller's directory.
Running the notebook lives in :mod:`aiops_lab._execution`, writing files in
:mod:`aiops_lab._publish`.

>>> from aiops_lab.reporting import run_report, format_summary
>>> outcome = run_report("drift", parameters={"threshold": 0.2})  # doctest: +SKIP
>>> print(format_summary(outcome))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiops_lab._execution import run_notebook
from aiops_lab._publish import export_html as _export_html
from aiops_lab._publish import new_run_dir, publish_run
from aiops_lab._publish import write_atomic as _write_atomic
from aiops_lab.alerts import check_url
from aiops_lab.errors import (
    MissingDependencyError,
    NotifyError,
    ParameterError,
    ReportError,
    TrackingError,
)
from aiops_lab.tracking import check_model_args

__all__ = [
    "EXIT_ALERT",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "LOCAL_SCHEDULER",
    "REPORTS",
    "RESULT_PATH_ENV",
    "ReportOutcome",
    "check_dask",
    "dask_frame",
    "dask_scheduler",
    "emit",
    "format_summary",
    "notebook_path",
    "notebooks_dir",
    "report_parameters",
    "run_all",
    "run_report",
]

#: report kind -> notebook file name (looked up in :func:`notebooks_dir`) or absolute path
REPORTS: dict[str, str] = {
    "drift": "drift_investigation.ipynb",
    "gpu": "gpu_utilization_review.ipynb",
    "finops": "finops_forecast.ipynb",
}

#: where :func:`emit` writes the result inside a report run
RESULT_PATH_ENV = "AIOPS_LAB_RESULT_PATH"

EXIT_OK = 0  #: report written, no alert (or alerts not failing the run)
EXIT_ERROR = 1  #: the report could not be produced
EXIT_ALERT = 3  #: report written and it found an alert, with ``fail_on_alert``
EXIT_PARTIAL = 4  #: report written, but tracking or the notification failed

_EXIT_MEANING = {
    EXIT_OK: "report written",
    EXIT_ALERT: "report written; it found an alert and fail-on-alert is set",
    EXIT_PARTIAL: "report written; tracking or notification failed (see above)",
}

# columns worth a glance in the plain-text summary, when the result table has them
_PREFERRED_COLUMNS = (
    "kind", "test", "statistic", "p_adjusted", "psi", "severity", "drifted", "alert",
    "gpu_hours", "idle_share", "idle_cost", "mean_util_pct", "efficiency_pct", "busy_but_idle",
)  # fmt: skip


# -- notebooks ---------------------------------------------------------------------------
def _notebook_dirs() -> list[Path]:
    package = Path(__file__).resolve().parent
    # the wheel ships the repository's notebooks/ as aiops_lab/_notebooks
    return [package / "_notebooks", package.parent / "notebooks"]


def notebooks_dir() -> Path:
    """Return the folder holding the report notebook templates.

    Returns
    -------
    pathlib.Path
        ``aiops_lab/_notebooks`` in an installed wheel, else the repository's
        ``notebooks/`` folder beside the package.
    """
    dirs = _notebook_dirs()
    for folder in dirs:
        if folder.is_dir():
            return folder
    return dirs[-1]


def notebook_path(kind: str) -> Path:
    """Return the notebook behind report ``kind``.

    Parameters
    ----------
    kind : str
        A key of :data:`REPORTS`, e.g. ``"drift"``.

    Returns
    -------
    pathlib.Path
        The notebook file (looked up in ``_notebooks`` first, then ``notebooks/``).

    Examples
    --------
    >>> notebook_path("drift").name
    'drift_investigation.ipynb'
    """
    if kind not in REPORTS:
        raise ParameterError("kind", "one of " + ", ".join(map(repr, REPORTS)), kind)
    name = Path(REPORTS[kind])
    candidates = [name] if name.is_absolute() else [d / name for d in _notebook_dirs()]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = " or ".join(str(c) for c in candidates)
    msg = (
        f"The notebook of the {kind!r} report was not found at {where}. "
        "Reinstall the package (pip install --force-reinstall aiops_lab) or run from a checkout."
    )
    raise ReportError(msg)


def report_parameters(notebook: str | Path) -> dict[str, str]:
    """Return the parameters a notebook declares: name -> default, as source text.

    Read with Python's own parser: papermill's line parser skips assignments whose
    comment holds quotes or brackets (``window = "1d"  # "6h" ("" = none)``).

    Examples
    --------
    >>> report_parameters(notebook_path("drift"))["alpha"]  # doctest: +SKIP
    '0.05'
    """
    import ast

    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cell = next(
        (
            c
            for c in nb.cells
            if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])
        ),
        None,
    )
    if cell is None:
        return {}
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:  # IPython magics: let papermill try
        import papermill

        found = papermill.inspect_notebook(str(notebook))
        return {name: str(info.get("default")) for name, info in found.items()}
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                out[target.id] = ast.get_source_segment(cell.source, value) or ""
    return out


# -- inside the notebook -----------------------------------------------------------------
def emit(result: Any) -> Path | None:
    """Hand a notebook's result to the report run; call it in the notebook's last cell.

    Parameters
    ----------
    result : Result or dict
        The analysis result (its ``to_dict()`` is saved) or such a dict.

    Returns
    -------
    pathlib.Path or None
        Where the JSON was written; None (and nothing written) outside a report run,
        so the same notebook works interactively.

    Examples
    --------
    >>> from aiops_lab.reporting import emit
    >>> emit({"analysis": "demo", "summary": {"alert": False, "headline": "ok"}}) is None
    True
    """
    target = os.environ.get(RESULT_PATH_ENV, "")
    if not target:
        return None
    data = result if isinstance(result, Mapping) else result.to_dict()
    text = json.dumps(data, indent=1, default=str)
    path = Path(target)
    _write_atomic(path, text)
    return path


#: ``scheduler`` value that starts a local Dask cluster for the run
LOCAL_SCHEDULER = "local"


def check_dask(purpose: str = "A Dask scheduler") -> None:
    """Raise :class:`~aiops_lab.errors.MissingDependencyError` unless Dask can run.

    Both ``dask.dataframe`` and ``distributed`` are needed; they come with the ``dask``
    extra (``pip install "aiops_lab[dask]"``).
    """
    for module, package in (("dask", "dask"), ("distributed", "distributed")):
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(package, "dask", purpose)


@contextlib.contextmanager
def dask_scheduler(scheduler: str | None, *, timeout: float = 30) -> Iterator[Any]:
    """Connect to the Dask scheduler a report asks for; close it on leaving the block.

    Parameters
    ----------
    scheduler : str or None
        ``""`` or None: no Dask, the data stays in memory (yields None).
        ``"local"``: start a :class:`distributed.LocalCluster` of 2 worker processes
        (one thread each) on the loopback interface, for this block only.
        Anything else: the address of a running scheduler, e.g. ``"tcp://host:8786"``.
    timeout : float
        Seconds to wait for the scheduler to answer.

    Yields
    ------
    distributed.Client or None
        The client, also made the default one, so Dask work in the block runs on it.

    Raises
    ------
    MissingDependencyError
        Dask or distributed is not installed.
    ParameterError
        The scheduler cannot be reached.

    Examples
    --------
    >>> with dask_scheduler("") as client:
    ...     print(client)
    None
    """
    text = (scheduler or "").strip()
    if not text:
        yield None
        return
    check_dask("A report on a Dask scheduler")
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if text == LOCAL_SCHEDULER:
            # this cluster's scheduler runs in the calling process (a notebook kernel), where
            # its routine per-shuffle warnings would land in the report's output
            logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
            cluster = LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster, timeout=timeout)
        else:
            client = Client(text, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        if cluster is not None:
            cluster.close()
        raise ParameterError(
            "scheduler",
            f"{LOCAL_SCHEDULER!r} or the address of a running Dask scheduler",
            text,
            f"It could not be reached ({type(exc).__name__}: {exc}). "
            "Check the address (e.g. tcp://host:8786) or use 'local'.",
        ) from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dask_frame(source: str | Path, *, name: str = "current") -> Any:
    """Read Parquet data as a lazy Dask DataFrame, for :func:`aiops_lab.drift.compare`.

    Parameters
    ----------
    source : str or Path
        A Parquet file, a folder of Parquet files, a glob (``"data/*.parquet"``), or
        ``"bundled:<name>"`` for a bundled dataset.
    name : str
        The report parameter ``source`` came from, named in errors.

    Returns
    -------
    dask.dataframe.DataFrame
        Nothing is read until the comparison runs on the workers.

    Raises
    ------
    MissingDependencyError
        ``dask[dataframe]`` is not installed.
    ParameterError
        ``source`` is not Parquet, or names nothing.
    """
    check_dask("Reading data as a Dask DataFrame")
    import glob

    import dask.dataframe as dd

    from aiops_lab import datasets

    text = str(source)
    if text.startswith("bundled:"):
        name = text[len("bundled:") :]
        path = datasets.path(name) if name in datasets.list() else datasets.resolve_path(text)
    else:
        path = Path(text).expanduser()
    target = str(path)
    is_glob = glob.has_magic(target)
    if not is_glob and not path.exists():
        raise ParameterError(name, "an existing Parquet file, folder or glob", text)
    if path.is_file() and path.suffix.lower() not in (".parquet", ".pq"):
        raise ParameterError(
            name,
            "Parquet data (a .parquet file, a folder of them or a glob) with a scheduler",
            text,
            'Convert it to Parquet, or run in memory with scheduler="".',
        )
    if is_glob and not glob.glob(target):
        raise ParameterError(name, "a glob matching Parquet files", text)
    return dd.read_parquet(target)


# -- the outcome -------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportOutcome:
    """What one report run produced.

    Attributes
    ----------
    kind : str
        The report kind (``"drift"``...).
    html_path, notebook_path, result_path : pathlib.Path
        The code-free HTML, the executed notebook and the result JSON.
    summary : dict
        The result's summary (always has ``alert`` and ``headline``).
    alert : bool
        Whether the result calls for attention.
    tracking_run_id : str or None
        The MLflow run, when tracking succeeded.
    tracking_error, notify_error : str or None
        Why tracking or the notification failed (the report itself is kept).
    elapsed_s : float
        Wall time of the whole run, in seconds.
    fail_on_alert : bool
        Whether an alert makes :attr:`exit_code` 3.
    run_dir : pathlib.Path or None
        The run folder; ``latest_html`` is the ``<kind>-latest.html`` copy.
    tracking_uri : str or None
        The MLflow store used, when tracking was on.
    result : dict
        The full ``to_dict()`` of the result (tables included).
    """

    kind: str
    html_path: Path
    notebook_path: Path
    result_path: Path
    summary: dict[str, Any]
    alert: bool
    tracking_run_id: str | None = None
    tracking_error: str | None = None
    notify_error: str | None = None
    elapsed_s: float = 0.0
    fail_on_alert: bool = False
    run_dir: Path | None = None
    latest_html: Path | None = None
    tracking_uri: str | None = None
    result: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def headline(self) -> str:
        """The result's one-line finding."""
        return str(self.summary.get("headline", ""))

    @property
    def exit_code(self) -> int:
        """0 ok; 3 alert with ``fail_on_alert`` (wins over 4); 4 tracking/notify failed."""
        if self.alert and self.fail_on_alert:
            return EXIT_ALERT
        if self.tracking_error or self.notify_error:
            return EXIT_PARTIAL
        return EXIT_OK


# -- running -----------------------------------------------------------------------------
def run_report(
    kind: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path = "reports",
    kernel_name: str | None = None,
    timeout: float = 600,
    start_timeout: float = 60,
    progress: bool = True,
    fail_on_alert: bool = False,
    track: bool = True,
    tracking_uri: str | None = None,
    model: str | None = None,
    model_version: str | int | None = None,
    model_alias: str | None = None,
    notify: str | None = None,
    notebook: str | Path | None = None,
) -> ReportOutcome:
    """Run a report notebook headlessly and publish its executed notebook, HTML and JSON.

    Parameters
    ----------
    kind : str
        A key of :data:`REPORTS` (``"drift"``); names the output files.
    parameters : mapping, optional
        Values injected into the notebook's ``parameters`` cell; every name must be
        declared there. Strings naming existing relative paths are made absolute.
    output_dir : str or Path
        Folder receiving ``<kind>-<UTC timestamp>/`` and ``<kind>-latest.html``.
    kernel_name : str, optional
        Jupyter kernel; default ``python3`` (this interpreter if no such kernelspec).
    timeout : float
        Seconds one cell may run before the report fails.
    start_timeout : float
        Seconds to wait for the kernel to start.
    progress : bool
        Show papermill's progress bar on stderr.
    fail_on_alert : bool
        Make :attr:`ReportOutcome.exit_code` 3 when the result alerts.
    track : bool
        Log the result and the report files to MLflow (errors are recorded, not raised).
    tracking_uri : str, optional
        MLflow store; default ``$MLFLOW_TRACKING_URI``, else ``sqlite:///<output_dir>/mlflow.db``
        with artifacts in ``<output_dir>/mlartifacts``.
    model, model_version, model_alias : optional
        Registered model version to tag with the outcome (see :func:`aiops_lab.tracking.log_result`).
    notify : str, optional
        Webhook URL (Slack/Teams) posted to when the result alerts.
    notebook : str or Path, optional
        Run this notebook instead of the registered one (tests, custom reports).

    Returns
    -------
    ReportOutcome

    Raises
    ------
    ReportError
        The notebook failed (its executed copy is kept as ``<kind>.failed.ipynb``),
        timed out, or did not call :func:`emit`.
    ParameterError
        Unknown kind or parameter, or inconsistent model arguments.
    """
    started = time.monotonic()
    nb_file = Path(notebook).resolve() if notebook is not None else notebook_path(kind)
    if not nb_file.is_file():
        msg = f"Report notebook {str(nb_file)!r} does not exist; pass an existing .ipynb file."
        raise ReportError(msg)
    check_model_args(model, model_version, model_alias)
    if notify is not None:
        check_url(notify)
    if not timeout or timeout <= 0:
        raise ParameterError("timeout", "a positive number of seconds", timeout)
    params = _absolute_paths(dict(parameters or {}))
    _check_parameters(nb_file, params)
    out_root = Path(output_dir).expanduser().resolve()
    out_root.mkdir(parents=True, exist_ok=True)
    run_dir = new_run_dir(out_root, kind)

    partial, html_text, result = run_notebook(
        kind,
        nb_file,
        run_dir,
        params,
        kernel_name=kernel_name,
        timeout=timeout,
        start_timeout=start_timeout,
        progress=progress,
        result_env=RESULT_PATH_ENV,
        render=_export_html,
    )
    summary = dict(result.get("summary") or {})
    alert = bool(summary.get("alert", False))
    files = publish_run(kind, run_dir, out_root, partial, html_text, result)

    outcome = ReportOutcome(
        kind=kind,
        html_path=files.html,
        notebook_path=files.notebook,
        result_path=files.result,
        summary=summary,
        alert=alert,
        fail_on_alert=fail_on_alert,
        run_dir=run_dir,
        latest_html=files.latest_html,
        result=result,
    )
    if track:
        outcome = _track(outcome, out_root, tracking_uri, model, model_version, model_alias)
    if notify and alert:
        outcome = _notify(outcome, notify)
    return replace(outcome, elapsed_s=round(time.monotonic() - started, 2))


def run_all(
    *, parameters: Mapping[str, Any] | None = None, **kwargs: Any
) -> tuple[dict[str, ReportOutcome], dict[str, Exception]]:
    """Run every registered report, carrying on after a failure.

    Parameters
    ----------
    parameters : mapping, optional
        Each report receives the parameters its notebook declares; a name that no
        report declares is an error (raised before anything runs).
    **kwargs
        Passed to :func:`run_report` (``output_dir``, ``track``...).

    Returns
    -------
    (outcomes, errors) : tuple of dict
        Outcomes of the reports that were written and the errors of those that were
        not, each keyed by report kind.
    """
    parameters = dict(parameters or {})
    declared: dict[str, set[str]] = {}
    errors: dict[str, Exception] = {}
    for kind in REPORTS:
        try:
            declared[kind] = set(report_parameters(notebook_path(kind)))
        except Exception as exc:
            errors[kind] = exc
    unused = set(parameters) - set().union(*declared.values())
    if unused and declared:
        known = sorted(set().union(*declared.values()))
        raise ParameterError(
            "parameters",
            "names declared by at least one report: " + ", ".join(known),
            sorted(unused),
        )
    outcomes: dict[str, ReportOutcome] = {}
    for kind, names in declared.items():
        mine = {k: v for k, v in parameters.items() if k in names}
        try:
            outcomes[kind] = run_report(kind, parameters=mine, **kwargs)
        except Exception as exc:
            errors[kind] = exc
    return outcomes, errors


# -- formatting --------------------------------------------------------------------------
def format_summary(outcome: ReportOutcome, *, rows: int = 10) -> str:
    """Return a one-screen plain-text summary of a report run.

    Parameters
    ----------
    outcome : ReportOutcome
    rows : int
        How many rows of the result table to show (alerting rows first).
    """
    state = "ALERT" if outcome.alert else "OK"
    lines = [f"{outcome.kind} report: {state}: {outcome.headline}"]
    numbers = [
        (k, v)
        for k, v in outcome.summary.items()
        if k not in ("headline", "alert") and isinstance(v, (int, float, str, bool))
    ]
    width = max((len(k) for k, _ in numbers), default=0)
    lines += [f"  {k:<{width}}  {_short(v, 60)}" for k, v in numbers[:12]]
    table = outcome.result.get("table")
    if isinstance(table, list) and table and isinstance(table[0], dict):
        lines += ["", *_table_lines(table, rows)]
    lines += [
        "",
        f"  html      {outcome.html_path}",
        f"  notebook  {outcome.notebook_path}",
        f"  result    {outcome.result_path}",
    ]
    if outcome.latest_html is not None:
        lines.append(f"  latest    {outcome.latest_html}")
    if outcome.tracking_run_id:
        lines.append(f"  tracking  run {outcome.tracking_run_id} in {outcome.tracking_uri}")
    if outcome.tracking_error:
        lines.append(f"  tracking  FAILED: {outcome.tracking_error}")
    if outcome.notify_error:
        lines.append(f"  notify    FAILED: {outcome.notify_error}")
    code = outcome.exit_code
    lines += ["", f"exit code {code}: {_EXIT_MEANING[code]} ({outcome.elapsed_s:.1f} s)"]
    return "\n".join(lines)


def _table_lines(table: list[dict[str, Any]], rows: int) -> list[str]:
    first = table[0]
    flag = next((c for c in ("drifted", "alert") if isinstance(first.get(c), bool)), None)

    def rank(row: dict[str, Any]) -> tuple[bool, float]:
        severity = row.get("severity")
        number = severity if isinstance(severity, (int, float)) else 0.0
        return (not row.get(flag) if flag else False, -float(number))

    ordered = sorted(table, key=rank)  # stable: keeps the table's order among equals
    shown = ordered[:rows]
    names = list(first)
    columns = [names[0], *(c for c in _PREFERRED_COLUMNS if c in first and c != names[0])]
    if len(columns) < 3:
        columns = names[:7]
    cells = [[_short(r.get(c), 22) for c in columns] for r in shown]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    order = ", ".join(x for x in (f"{flag} first" if flag else "", "by severity") if x)
    title = f"Top {len(shown)} of {len(table)} rows"
    title += f" ({order}):" if "severity" in first or flag else ":"
    out = [title, "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += ["  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return out


def _short(value: Any, limit: int) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- internals ---------------------------------------------------------------------------
#: suffixes that mark a parameter value as a file path even before the file exists
_PATH_SUFFIXES = {
    ".parquet", ".pq", ".csv", ".tsv", ".ipc", ".arrow", ".feather",
    ".ndjson", ".jsonl", ".json", ".yaml", ".yml",
}  # fmt: skip


def _absolute_paths(params: dict[str, Any]) -> dict[str, Any]:
    """Resolve relative paths against the caller's directory (the kernel runs elsewhere).

    A value counts as a path when it exists or ends in a data-file suffix, so that a
    mistyped file name is reported with the path the user meant. ``scheduler`` is an
    address or ``"local"``, never a path, even where a file of that name exists.
    """

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(value) and ":" not in value:
            with contextlib.suppress(OSError, ValueError):
                if Path(value).exists() or Path(value).suffix.lower() in _PATH_SUFFIXES:
                    return str(Path(value).resolve())
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    return {name: value if name == "scheduler" else fix(value) for name, value in params.items()}


def _check_parameters(nb_file: Path, params: Mapping[str, Any]) -> None:
    if not params:
        return
    declared = report_parameters(nb_file)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        known = ", ".join(declared) or "none (the notebook has no cell tagged 'parameters')"
        raise ParameterError(
            unknown[0],
            f"a parameter declared by {nb_file.name}: {known}",
            params[unknown[0]],
            "Check the spelling against the notebook's cell tagged 'parameters'.",
        )


def _track(
    outcome: ReportOutcome,
    out_root: Path,
    tracking_uri: str | None,
    model: str | None,
    model_version: Any,
    model_alias: str | None,
) -> ReportOutcome:
    from aiops_lab import tracking

    artifact_location = None
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    if uri is None:
        uri = "sqlite:///" + (out_root / "mlflow.db").as_posix()
        artifact_location = (out_root / "mlartifacts").as_uri()
    try:
        run_id = tracking.log_result(
            outcome.result,
            run_name=outcome.run_dir.name if outcome.run_dir else None,
            tracking_uri=uri,
            artifact_location=artifact_location,
            artifacts=(outcome.html_path, outcome.notebook_path, outcome.result_path),
            tags={"aiops_lab.report": outcome.kind, "aiops_lab.report_dir": str(outcome.run_dir)},
            model=model,
            model_version=model_version,
            model_alias=model_alias,
        )
    except (TrackingError, MissingDependencyError) as exc:
        return replace(outcome, tracking_error=str(exc), tracking_uri=uri)
    return replace(outcome, tracking_run_id=run_id, tracking_uri=uri)


def _notify(outcome: ReportOutcome, url: str) -> ReportOutcome:
    from aiops_lab import alerts

    try:
        alerts.notify(url, outcome)
    except NotifyError as exc:
        return replace(outcome, notify_error=str(exc))
    return outcome

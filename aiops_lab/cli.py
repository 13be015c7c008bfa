"""The ``aiops-lab`` command: a thin shell over the library.

Each subcommand parses its arguments and makes one library call::

    aiops-lab report drift -p threshold 0.2 --fail-on-drift     # cron / CI
    aiops-lab report finops -p budget 60000 --fail-on-breach 0.3
    aiops-lab datasets                                          # bundled samples
    aiops-lab info                                              # versions, backend, paths
    aiops-lab lab                                               # JupyterLab on the notebooks

Exit codes: 0 ok, 1 error, 2 usage, 3 alert with ``--fail-on-drift``/``--fail-on-alert``
(or ``--fail-on-idle-cost`` / ``--fail-on-breach``), 4 report written but tracking or the
notification failed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiops_lab._version import __version__
from aiops_lab.errors import AiopsLabError, MissingDependencyError, ParameterError

__all__ = ["main", "parse_value"]

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_LAB_DIR = "aiops_lab_notebooks"
#: the reports whose notebooks take a ``scheduler`` parameter (``--scheduler``)
_SCHEDULER_REPORTS = ("drift", "gpu")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``aiops-lab`` command line and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 ok, 1 error, 2 usage error, 3 alert (with ``--fail-on-alert``), 4 report written
        but tracking or notification failed.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except AiopsLabError as exc:
        if args.debug:
            raise
        print(f"aiops-lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aiops-lab: interrupted", file=sys.stderr)
        return 130


def parse_value(text: str) -> Any:
    """Parse a ``-p NAME VALUE`` value the way papermill does.

    ``"3"`` -> 3, ``"0.2"`` -> 0.2, ``"true"``/``"True"`` -> True, ``"None"``/``"null"`` ->
    None, ``"[a, b]"`` -> ["a", "b"]; anything else stays a string.
    """
    import yaml

    if text.strip() in ("None", "none"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if re.fullmatch(r"[+-]?\d+", value.strip()) else number
    if value is None and text.strip() not in ("~", "null", "Null", "NULL"):
        return text
    if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
        return text  # dates and other YAML types: keep the literal text
    return value


# -- report ------------------------------------------------------------------------------
def _cmd_report(args: argparse.Namespace) -> int:
    from aiops_lab import reporting

    parameters = _load_parameters(args.file, args.parameters)
    if args.fail_on_idle_cost is not None:
        if args.kind != "gpu":
            raise ParameterError(
                "--fail-on-idle-cost",
                "the gpu report",
                args.kind,
                "Use it with: aiops-lab report gpu",
            )
        parameters["alert_idle_cost"] = args.fail_on_idle_cost
        args.fail_on_alert = True
    if args.fail_on_breach is not None:
        _breach_option(args, parameters)
    if args.scheduler is not None:
        _scheduler_option(args, parameters)
    options: dict[str, Any] = {
        "output_dir": args.output,
        "kernel_name": args.kernel,
        "timeout": args.timeout,
        "progress": not args.quiet,
        "fail_on_alert": args.fail_on_alert,
        "track": not args.no_track,
        "tracking_uri": args.tracking_uri,
        "model": args.model,
        "model_version": args.model_version,
        "model_alias": args.model_alias,
        "notify": args.notify,
    }
    if args.kind == "all":
        if not args.quiet:
            print(f"aiops-lab: running {', '.join(reporting.REPORTS)} ...", file=sys.stderr)
        outcomes, errors = reporting.run_all(parameters=parameters, **options)
        for outcome in outcomes.values():
            _show(outcome, args.quiet)
        for kind, error in errors.items():
            print(f"aiops-lab: error: {kind} report: {error}", file=sys.stderr)
        codes = {o.exit_code for o in outcomes.values()}
        if errors:
            return 1
        return 3 if 3 in codes else 4 if 4 in codes else 0
    if not args.quiet:
        print(f"aiops-lab: running the {args.kind} report ...", file=sys.stderr)
    outcome = reporting.run_report(args.kind, parameters=parameters, **options)
    _show(outcome, args.quiet)
    return outcome.exit_code


def _breach_option(args: argparse.Namespace, parameters: dict[str, Any]) -> None:
    """``--fail-on-breach P``: the finops report alerts (exit 3) at a breach chance of P."""
    p = args.fail_on_breach
    if args.kind != "finops":
        raise ParameterError(
            "--fail-on-breach",
            "the finops report",
            args.kind,
            "Use it with: aiops-lab report finops",
        )
    if not 0.0 < p <= 1.0:
        raise ParameterError(
            "--fail-on-breach",
            "a probability above 0 and at most 1",
            p,
            "e.g. --fail-on-breach 0.3 fails when the budget is breached in 30 % of simulations",
        )
    if "budget" in parameters and not parameters["budget"]:
        raise ParameterError(
            "--fail-on-breach",
            "a budget to breach",
            f"budget={parameters['budget']!r}",
            "Pass one: -p budget 60000 (in the bill's currency, for the period).",
        )
    parameters["alert_p_breach"] = p
    args.fail_on_alert = True


def _scheduler_option(args: argparse.Namespace, parameters: dict[str, Any]) -> None:
    """``--scheduler ADDRESS|local``: the drift and gpu reports run on Dask."""
    from aiops_lab.reporting import LOCAL_SCHEDULER, check_dask

    if args.kind not in (*_SCHEDULER_REPORTS, "all"):
        raise ParameterError(
            "--scheduler",
            "the drift or gpu report",
            args.kind,
            "Use it with: aiops-lab report drift, aiops-lab report gpu or aiops-lab report all "
            "(which passes it to those two)",
        )
    address = args.scheduler.strip()
    if not address:
        raise ParameterError(
            "--scheduler",
            f"{LOCAL_SCHEDULER!r} or a scheduler address such as tcp://host:8786",
            args.scheduler,
            "Leave the option out to run in memory.",
        )
    check_dask("--scheduler")
    parameters["scheduler"] = address


def _show(outcome: Any, quiet: bool) -> None:
    from aiops_lab.reporting import format_summary

    if quiet:
        state = "ALERT" if outcome.alert else "OK"
        print(f"{outcome.kind}: {state}: {outcome.headline} -> {outcome.html_path}")
    else:
        print(format_summary(outcome))
    for what, error in (("tracking", outcome.tracking_error), ("notify", outcome.notify_error)):
        if error:
            print(f"aiops-lab: {what} failed: {error}", file=sys.stderr)


def _load_parameters(file: str | None, pairs: list[list[str]]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if file:
        import yaml

        try:
            loaded = yaml.safe_load(Path(file).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ParameterError(
                "-f", "a readable YAML file of parameter names and values", file, str(exc)
            ) from None
        if not isinstance(loaded, dict):
            raise ParameterError(
                "-f", "a YAML mapping such as 'threshold: 0.2'", type(loaded).__name__
            )
        parameters.update({str(k): v for k, v in loaded.items()})
    for name, value in pairs:
        parameters[name] = parse_value(value)
    return parameters


# -- datasets, info, lab -----------------------------------------------------------------
def _cmd_datasets(args: argparse.Namespace) -> int:
    datasets = importlib.import_module("aiops_lab.datasets")
    if args.action == "path":
        if not args.name:
            raise ParameterError("NAME", "a dataset name: aiops-lab datasets path NAME", None)
        print(datasets.path(args.name))
        return 0
    table = datasets.describe()
    print(_datasets_text(table.to_dicts()))
    return 0


def _datasets_text(rows: list[dict[str, Any]]) -> str:
    """One entry per dataset: name, size (Parquet) or reader, then the wrapped description."""
    import textwrap

    width = max((len(str(r.get("name", ""))) for r in rows), default=0)
    out = []
    for r in rows:
        if r.get("rows") is not None:
            size = f"{r['rows']:,} rows"
            if r.get("columns") is not None:
                size += f" x {r['columns']} columns"
        else:
            size = f"read with {r['reader']}" if r.get("reader") else ""
        out.append(f"{r.get('name', '')!s:<{width}}  {size}".rstrip())
        if r.get("description"):
            out += textwrap.wrap(
                str(r["description"]), width=96, initial_indent="    ", subsequent_indent="    "
            )
    out.append("")
    out.append("Load one with aiops_lab.datasets.load(NAME); pass 'bundled:NAME' as a path.")
    return "\n".join(out)


def _cmd_info(args: argparse.Namespace) -> int:
    from aiops_lab import reporting
    from aiops_lab.backend import backend_info

    try:
        backend = str(backend_info())
    except AiopsLabError as exc:
        backend = f"unavailable: {exc}"
    tracking = os.environ.get("MLFLOW_TRACKING_URI") or (
        "sqlite:///<report output dir>/mlflow.db (set MLFLOW_TRACKING_URI or --tracking-uri)"
    )
    rows = [
        ("aiops_lab", __version__),
        ("python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("backend", backend),
        ("tracking", tracking),
        ("notebooks", str(reporting.notebooks_dir())),
        ("reports", ", ".join(f"{k} ({v})" for k, v in reporting.REPORTS.items())),
    ]
    for key, value in rows:
        print(f"{key:<10} {value}")
    return 0


def _cmd_lab(args: argparse.Namespace) -> int:
    from aiops_lab.reporting import notebooks_dir

    if importlib.util.find_spec("jupyterlab") is None:
        raise MissingDependencyError("jupyterlab", "lab", "`aiops-lab lab`")
    target = Path(args.dir).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    source = notebooks_dir()
    for notebook in sorted(source.glob("*.ipynb")) if source.is_dir() else []:
        if not (target / notebook.name).exists():  # never overwrite the user's edits
            shutil.copy2(notebook, target / notebook.name)
            print(f"aiops-lab: copied {notebook.name} into {target}", file=sys.stderr)
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={target}"]
    # the server routes of the lab extension, also from a source checkout without the config file
    cmd.append("--ServerApp.jpserver_extensions={'aiops_lab.lab': True}")
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # JupyterLab refuses to start as root without it
    if args.token is not None:
        cmd.append(f"--IdentityProvider.token={args.token}")
    process = subprocess.Popen(cmd)
    try:
        return process.wait()
    except KeyboardInterrupt:  # JupyterLab handles Ctrl-C itself; wait for it to stop
        return process.wait()


# -- parser ------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from aiops_lab.reporting import REPORTS

    # --debug works before or after the subcommand; the subcommands' copy must not
    # reset a value given before them, hence SUPPRESS (parents would share one action)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    parser = argparse.ArgumentParser(
        prog="aiops-lab", description="Jupyter-native toolkit for AI-Ops engineers."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"aiops-lab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    report = sub.add_parser(
        "report",
        parents=[common],
        help="run a report notebook headlessly (HTML + notebook + JSON)",
        description="Run a report notebook headlessly and write an offline HTML report.",
        epilog="exit codes: 0 ok, 1 error, 2 usage, 3 alert with --fail-on-drift "
        "(--fail-on-idle-cost, --fail-on-breach), 4 report written but tracking or notify failed",
    )
    report.add_argument("kind", choices=[*REPORTS, "all"], help="which report")
    report.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], dest="parameters",
        metavar=("NAME", "VALUE"), help="notebook parameter (repeatable; VALUE parsed as YAML)",
    )  # fmt: skip
    report.add_argument("-f", "--parameters-file", dest="file", help="YAML file of parameters")
    report.add_argument("--output", default="reports", help="output folder (default: reports)")
    report.add_argument(
        "--fail-on-drift", "--fail-on-alert", dest="fail_on_alert", action="store_true",
        help="exit with code 3 when the report finds an alert",
    )  # fmt: skip
    report.add_argument(
        "--fail-on-idle-cost", type=float, metavar="USD",
        help="gpu report: exit with code 3 when the idle GPU cost exceeds USD",
    )  # fmt: skip
    report.add_argument(
        "--fail-on-breach", type=float, metavar="P",
        help="finops report: exit with code 3 when the chance that the period's total spend "
        "passes the budget reaches P (0-1)",
    )  # fmt: skip
    report.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="drift and gpu reports: run on Dask, at a scheduler address (tcp://host:8786) "
        "or 'local' (a 2-worker cluster on this machine, for the run); Parquet data is read "
        "on the workers",
    )  # fmt: skip
    report.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    report.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite in the output folder)",
    )
    report.add_argument("--model", help="registered model whose version gets tagged")
    version = report.add_mutually_exclusive_group()
    version.add_argument("--model-version", help="model version to tag (with --model)")
    version.add_argument("--model-alias", help="model alias to tag, e.g. champion (with --model)")
    report.add_argument("--notify", metavar="URL", help="Slack/Teams webhook posted on alert")
    report.add_argument("--kernel", help="Jupyter kernel name (default: python3)")
    report.add_argument(
        "--timeout", type=float, default=600, help="seconds per cell (default: 600)"
    )
    report.add_argument("--quiet", action="store_true", help="no progress bar; one line per report")
    report.set_defaults(func=_cmd_report)

    datasets = sub.add_parser("datasets", parents=[common], help="list the bundled datasets")
    datasets.add_argument("action", nargs="?", choices=["list", "path"], default="list")
    datasets.add_argument("name", nargs="?", help="dataset name (with 'path')")
    datasets.set_defaults(func=_cmd_datasets)

    info = sub.add_parser("info", parents=[common], help="versions, backend and paths")
    info.set_defaults(func=_cmd_info)

    lab = sub.add_parser("lab", parents=[common], help="start JupyterLab on the notebooks")
    lab.add_argument("--port", type=int, help="port (default: JupyterLab's, 8888)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--token", help="access token (default: JupyterLab generates one)")
    lab.add_argument(
        "--dir", default=_LAB_DIR, help=f"working folder for the notebooks (default: {_LAB_DIR})"
    )
    lab.set_defaults(func=_cmd_lab)
    return parser

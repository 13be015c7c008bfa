"""Producing a report's files: offline HTML, atomic writes and the "latest" copies.

Every file is written to a temporary name in its folder, given the mode that
:func:`open` would give it, and renamed into place, so a reader never sees half a
file. The HTML export drops the blocks of nbconvert's "lab" template that load
scripts from CDNs, so a report opens offline.

Notes
-----
Private helpers of :mod:`aiops_lab.reporting`; this module does not import it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

from aiops_lab.errors import ReportError

__all__ = ["PublishedRun", "export_html", "file_mode", "new_run_dir", "publish_run", "write_atomic"]

# The stock "lab" template loads require.js, MathJax, Mermaid and the widget manager
# from CDNs. Reports must open offline (charts are inline SVG), so drop those blocks.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_REMOTE_SCRIPT = re.compile(
    r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>.*?</script\s*>",
    re.IGNORECASE | re.DOTALL,
)


class PublishedRun(NamedTuple):
    """Where :func:`publish_run` put a run's files."""

    notebook: Path
    html: Path
    result: Path
    latest_html: Path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes 0600 files; use what open() would
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@functools.lru_cache(maxsize=1)
def file_mode() -> int:
    """Return the mode :func:`open` gives a new file under this process's umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def new_run_dir(root: Path, kind: str) -> Path:
    """Create and return ``<root>/<kind>-<UTC timestamp>[-n]``, a folder no run used yet."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        candidate = root / (f"{kind}-{stamp}" if n == 1 else f"{kind}-{stamp}-{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    msg = f"Could not create a fresh run folder for {kind!r} in {root}."
    raise ReportError(msg)


def publish_run(
    kind: str,
    run_dir: Path,
    out_root: Path,
    executed: Path,
    html_text: str,
    result: dict[str, Any],
) -> PublishedRun:
    """Put a good run's files in place and refresh the ``<kind>-latest`` copies.

    Parameters
    ----------
    kind : str
        The report kind; names the files.
    run_dir, out_root : pathlib.Path
        The run folder and the output folder holding it.
    executed : pathlib.Path
        The executed notebook's temporary path in ``run_dir``; it is renamed.
    html_text : str
        The code-free HTML report.
    result : dict
        The result's ``to_dict()``.

    Returns
    -------
    PublishedRun
    """
    nb_out = run_dir / f"{kind}.ipynb"
    html_out = run_dir / f"{kind}.html"
    json_out = run_dir / "result.json"
    latest = out_root / f"{kind}-latest.html"
    result_text = json.dumps(result, indent=1, default=str)
    os.replace(executed, nb_out)
    write_atomic(html_out, html_text)
    write_atomic(json_out, result_text)
    write_atomic(latest, html_text)
    write_atomic(out_root / f"{kind}-latest.json", result_text)
    return PublishedRun(nb_out, html_out, json_out, latest)


def export_html(nb: Any, title: str) -> str:
    """Code-free, prompt-free HTML that loads nothing from the network."""
    import copy

    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = copy.deepcopy(nb)
    nb.metadata["title"] = title
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({"aiops_lab_report.html.j2": _OFFLINE_TEMPLATE})],
        template_file="aiops_lab_report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(
            remove_cell_tags={"remove-cell", "remove_cell"},
            remove_all_outputs_tags={"remove-output", "remove_output"},
            enabled=True,
        ),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    # belt and braces: a future template or an output could still pull a remote script
    return _REMOTE_SCRIPT.sub("", body)

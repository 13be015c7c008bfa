"""The real drift notebook, run headlessly through the CLI on the bundled data."""

from __future__ import annotations

import json
import re

import pytest

from aiops_lab import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    code = cli.main(
        ["report", "drift", "--output", str(out), "--fail-on-drift", "--no-track", "--quiet"]
    )
    return code, out


def test_drift_found_exits_3_and_writes_the_report(report):
    code, out = report
    assert code == 3  # the bundled data has drift injected
    html = (out / "drift-latest.html").read_text()
    assert "<svg" in html or "data:image/svg+xml" in html  # charts inlined: works offline
    assert "application/vnd.jupyter.widget-state" not in html  # no widget debris
    assert not re.search(r"<script[^>]+src=[\"']https?://", html)
    assert "compare(" not in html  # code-free
    assert "partner" in html  # the unseen category is named


def test_result_json_matches_the_injected_scenario(report):
    _, out = report
    result = json.loads((out / "drift-latest.json").read_text())
    summary = result["summary"]
    assert summary["alert"] is True
    assert {"income", "channel", "debt_to_income"} <= set(summary["drifted_columns"])
    assert summary["first_drift"].startswith("2026-10-08")


def test_parameters_override_the_defaults(tmp_path):
    code = cli.main(
        [
            "report",
            "drift",
            "-p",
            "window",
            "1w",
            "-p",
            "correction",
            "holm",
            "--output",
            str(tmp_path),
            "--no-track",
            "--quiet",
        ]
    )
    assert code == 0
    result = json.loads((tmp_path / "drift-latest.json").read_text())
    assert result["params"]["window"] == "1w"
    assert result["params"]["correction"] == "holm"
    assert result["summary"]["n_windows"] == 5

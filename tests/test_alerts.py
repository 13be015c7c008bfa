"""Webhook notifications against a local HTTP server that records what it receives."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aiops_lab.alerts import notify, redact_url, webhook_payload
from aiops_lab.errors import NotifyError, ParameterError
from aiops_lab.reporting import ReportOutcome

SUMMARY = {"alert": True, "headline": "3 of 12 columns drifted", "n_drifted": 3, "share": 0.25}


class _Hook(BaseHTTPRequestHandler):
    """/ok answers 200, /fail 500, /slow answers after 2 s; every body is recorded."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.server.received.append(  # type: ignore[attr-defined]
            {"path": self.path, "type": self.headers.get("Content-Type"), "body": body}
        )
        if self.path.startswith("/slow"):
            time.sleep(2)
        status = 500 if self.path.startswith("/fail") else 200
        try:
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status == 200 else b"internal trouble")
        except (BrokenPipeError, ConnectionResetError):  # /slow: the client gave up
            pass

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="module")
def hook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.daemon_threads = True
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_posts_slack_and_teams_compatible_json(hook) -> None:
    base, received = hook
    notify(f"{base}/ok/summary", SUMMARY)
    [request] = [r for r in received if r["path"] == "/ok/summary"]
    assert request["type"].startswith("application/json")
    body = json.loads(request["body"])
    assert body["text"].startswith("ALERT | aiops_lab result: 3 of 12 columns drifted")
    assert "n_drifted: 3" in body["text"]
    assert "share: 0.25" in body["text"]
    assert body["aiops_lab"]["summary"] == SUMMARY
    assert body["aiops_lab"]["alert"] is True


def test_posts_an_outcome_with_its_report_path(hook) -> None:
    base, received = hook
    outcome = ReportOutcome(
        kind="drift",
        html_path=Path("/srv/reports/drift-20260101T000000Z/drift.html"),
        notebook_path=Path("n.ipynb"),
        result_path=Path("r.json"),
        summary=SUMMARY,
        alert=True,
        result={"analysis": "drift"},
    )
    notify(f"{base}/ok/outcome", outcome)
    [request] = [r for r in received if r["path"] == "/ok/outcome"]
    body = json.loads(request["body"])
    assert "aiops_lab drift:" in body["text"]
    assert "Report: /srv/reports/drift-20260101T000000Z/drift.html" in body["text"]
    assert body["aiops_lab"]["report"].endswith("drift.html")


def test_payload_from_a_result_dict() -> None:
    payload = webhook_payload({"analysis": "drift", "summary": {**SUMMARY, "alert": False}})
    assert payload["text"].startswith("OK | aiops_lab drift:")


def test_server_error_is_a_notify_error_without_secrets(hook) -> None:
    base, _ = hook
    with pytest.raises(NotifyError) as info:
        notify(f"{base}/fail/T000/B000/secrettoken?sig=secretsig", SUMMARY)
    message = str(info.value)
    assert "500" in message
    assert f"{base}/fail/…" in message
    assert "secret" not in message


def test_unreachable_webhook_is_a_notify_error() -> None:
    url = f"http://127.0.0.1:{_free_port()}/hook"
    with pytest.raises(NotifyError, match="could not be reached"):
        notify(url, SUMMARY, timeout=2)


def test_slow_webhook_times_out(hook) -> None:
    base, _ = hook
    started = time.monotonic()
    with pytest.raises(NotifyError, match="could not be reached"):
        notify(f"{base}/slow", SUMMARY, timeout=0.3)
    assert time.monotonic() - started < 1.5


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ParameterError, match="notify"):
        notify("file:///etc/passwd", SUMMARY)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T0/B0/XXXX", "https://hooks.slack.com/services/…"),
        ("https://user:pw@example.com/hook?token=abc#x", "https://example.com/hook"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown

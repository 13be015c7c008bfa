"""Post a report's finding to a chat webhook (Slack or Microsoft Teams incoming webhook).

The body is JSON with a ``text`` field, which both services show as the message, plus an
``aiops_lab`` field with the machine-readable summary for other receivers. Only the
standard library is used.

>>> from aiops_lab.alerts import notify
>>> notify("https://hooks.slack.com/services/T000/B000/XXXX", outcome)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiops_lab.errors import NotifyError, ParameterError

__all__ = ["check_url", "notify", "redact_url", "webhook_payload"]

_MAX_NUMBERS = 8


def webhook_payload(outcome_or_summary: Any) -> dict[str, Any]:
    """Build the JSON body :func:`notify` posts.

    Parameters
    ----------
    outcome_or_summary : ReportOutcome, Result or dict
        A report outcome, an analysis result, its ``to_dict()``, or a bare summary dict
        (with ``alert`` and ``headline``).

    Returns
    -------
    dict
        ``{"text": ..., "aiops_lab": {"analysis", "alert", "headline", "summary", "report"}}``.
    """
    analysis, summary, report = _unpack(outcome_or_summary)
    alert = bool(summary.get("alert", False))
    headline = str(summary.get("headline", ""))
    numbers = [
        f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}"
        for k, v in summary.items()
        if k not in ("alert", "headline")
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(v)
    ]
    lines = [f"{'ALERT' if alert else 'OK'} | aiops_lab {analysis}: {headline}"]
    if numbers:
        lines.append(", ".join(numbers[:_MAX_NUMBERS]))
    if report:
        lines.append(f"Report: {report}")
    return {
        "text": "\n".join(lines),
        "aiops_lab": {
            "analysis": analysis,
            "alert": alert,
            "headline": headline,
            "summary": _plain(summary),
            "report": report,
        },
    }


def notify(url: str, outcome_or_summary: Any, *, timeout: float = 10.0) -> None:
    """POST a finding to a Slack or Teams incoming webhook.

    Parameters
    ----------
    url : str
        The webhook URL (``http://`` or ``https://``).
    outcome_or_summary : ReportOutcome, Result or dict
        What to report; see :func:`webhook_payload`.
    timeout : float
        Seconds to wait for the answer.

    Raises
    ------
    NotifyError
        The server answered with a non-2xx status, did not answer in time, or could not
        be reached. The message names the URL without its secret part.

    Examples
    --------
    >>> notify("https://example.invalid/hook", {"alert": True, "headline": "3 columns drifted"})  # doctest: +SKIP
    """
    check_url(url)
    body = json.dumps(webhook_payload(outcome_or_summary), default=str).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "aiops-lab"},
    )
    shown = redact_url(url)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read(200).decode("utf-8", "replace").strip()
        msg = f"Webhook {shown} answered HTTP {exc.code} {exc.reason}" + (
            f": {detail}" if detail else "."
        )
        raise NotifyError(msg) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        msg = (
            f"Webhook {shown} could not be reached ({type(reason).__name__}: {reason}); "
            f"check the URL and the network (timeout {timeout:g} s)."
        )
        raise NotifyError(msg) from None
    if not 200 <= status < 300:
        msg = f"Webhook {shown} answered HTTP {status}; expected a 2xx status."
        raise NotifyError(msg)


def check_url(url: str) -> None:
    """Raise ParameterError unless ``url`` is an http(s) URL (checked before a report runs)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ParameterError("notify", "an http:// or https:// webhook URL", redact_url(url))


def redact_url(url: str) -> str:
    """Return ``url`` without credentials, query, fragment or secret path.

    Slack and Teams put the secret in the path (``/services/T…/B…/<token>``), so only the
    first path segment is kept.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    segments = [s for s in parts.path.split("/") if s]
    path = ""
    if segments:
        path = "/" + segments[0] + ("/…" if len(segments) > 1 else "")
    return f"{parts.scheme}://{host}{path}" if parts.scheme else "<invalid URL>"


def _unpack(obj: Any) -> tuple[str, dict[str, Any], str | None]:
    """Return (analysis, summary, report path) from any of the accepted inputs."""
    if hasattr(obj, "summary") and hasattr(obj, "kind"):  # ReportOutcome
        report = getattr(obj, "html_path", None)
        analysis = (getattr(obj, "result", None) or {}).get("analysis") or obj.kind
        return str(analysis), dict(obj.summary), str(report) if report else None
    if hasattr(obj, "summary") and hasattr(obj, "analysis"):  # Result
        return str(obj.analysis), dict(obj.summary), None
    if isinstance(obj, Mapping):
        if isinstance(obj.get("summary"), Mapping):  # Result.to_dict()
            return str(obj.get("analysis", "result")), dict(obj["summary"]), None
        return "result", dict(obj), None
    raise ParameterError(
        "outcome_or_summary", "a ReportOutcome, a Result or a summary dict", type(obj).__name__
    )


def _plain(value: Any) -> Any:
    from aiops_lab.result import jsonable

    return jsonable(value)

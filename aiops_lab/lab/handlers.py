"""HTTP routes of the aiops-lab server extension (see :mod:`aiops_lab.lab` for the list)."""

from __future__ import annotations

import math
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop, PeriodicCallback

from aiops_lab.lab.state import MAX_WINDOW_S, LabState, PathRefused

__all__ = ["setup_handlers"]

#: the resource name authorizers see for every aiops-lab route
AUTH_RESOURCE = "aiops-lab"
NAMESPACE = "aiops-lab"


class _Base(APIHandler):
    """JSON API handler: token or login required (403 otherwise), authorizer consulted."""

    auth_resource = AUTH_RESOURCE

    def initialize(self, state: LabState) -> None:
        self.state = state

    def _body(self) -> dict[str, Any]:
        body = self.get_json_body() if self.request.body else None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return body

    def _refuse(self, exc: PathRefused) -> None:
        raise web.HTTPError(exc.status, str(exc)) from None


class StatusHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        status = await IOLoop.current().run_in_executor(None, self.state.status)
        self.finish(status)


class GpuSamplesHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        raw = self.get_query_argument("seconds", "300")
        try:
            seconds = float(raw)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds <= 0:
            raise web.HTTPError(400, f"seconds must be a positive number, not {raw!r}")
        seconds = min(seconds, float(MAX_WINDOW_S))
        reaper = self.settings.get("aiops_lab_reaper")
        if reaper is None:  # stops the sampler after idle minutes; started on the running loop
            reaper = PeriodicCallback(self.state.reap_sampler, 60_000)
            reaper.start()
            self.settings["aiops_lab_reaper"] = reaper
        out = await IOLoop.current().run_in_executor(None, self.state.samples, seconds)
        self.finish(out)


class TemplatesHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.finish({"templates": self.state.templates()})


class TemplateHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, kind: str) -> None:
        body = self._body()
        try:
            created = self.state.copy_template(kind, body.get("path", ""))
        except PathRefused as exc:
            self._refuse(exc)
        self.set_status(201)
        self.finish({"kind": kind, "path": self.state.relative(created), "name": created.name})


class ReportHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, kind: str) -> None:
        body = self._body()
        try:
            job = self.state.start_report(
                kind,
                body.get("path"),
                parameters=body.get("parameters"),
                track=body.get("track", True),
            )
        except PathRefused as exc:
            self._refuse(exc)
        self.set_status(202)
        base = self.settings.get("base_url", "/")
        self.set_header("Location", url_path_join(base, NAMESPACE, "reports/jobs", job.id))
        self.finish(job.to_dict())


class ReportJobHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, job_id: str) -> None:
        job = self.state.job(job_id)
        if job is None:
            raise web.HTTPError(404, f"no report job {job_id!r}")
        self.finish(job.to_dict())


def setup_handlers(serverapp: Any) -> LabState:
    """Register the routes on ``serverapp`` (whether or not a GPU is visible)."""
    web_app = serverapp.web_app
    base_url = web_app.settings.get("base_url", "/")
    contents = getattr(serverapp, "contents_manager", None)
    root = str(getattr(serverapp, "root_dir", None) or getattr(contents, "root_dir", None) or ".")
    state = LabState(root, allow_hidden=bool(getattr(contents, "allow_hidden", False)))
    web_app.settings["aiops_lab_state"] = state

    def route(pattern: str) -> str:
        return url_path_join(base_url, NAMESPACE, pattern)

    kwargs = {"state": state}
    handlers = [
        (route("status"), StatusHandler, kwargs),
        (route("gpu/samples"), GpuSamplesHandler, kwargs),
        (route("templates"), TemplatesHandler, kwargs),
        (route("templates/([A-Za-z0-9_-]+)"), TemplateHandler, kwargs),
        (route("reports/jobs/([0-9a-f]+)"), ReportJobHandler, kwargs),
        (route("reports/([A-Za-z0-9_-]+)"), ReportHandler, kwargs),
    ]
    web_app.add_handlers(".*$", handlers)

    serverapp.log.info("aiops_lab: routes under %s (server root %s)", route(""), state.root)
    return state

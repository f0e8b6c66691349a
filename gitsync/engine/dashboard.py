"""The web dashboard: server-rendered pages on the engine's own port (``/`` and ``/ui/...``).

Pages: the workflow tree, a workflow (its DAG coloured by its latest run, its runs), a run
(its tasks, updating while it runs), a task's log; POST forms trigger a workflow and cancel a
run. Jinja2 autoescapes everything: names are untrusted. A page that is live carries a
``#live`` part that a few lines of inline script re-fetch (``?part=live``) until it is done.

With gateway authentication on, the dashboard is read-only: it cannot check a browser's
gateway credentials, so it shows no buttons and refuses its POSTs (403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from gitsync import __version__, protocol
from gitsync.engine.answers import ServiceError
from gitsync.engine.dashboard_data import LIVE, Pages, css, parameters, run_item
from gitsync.engine.dashboard_svg import dag_svg
from gitsync.engine.runs import Runs
from gitsync.engine.store import Store
from gitsync.printable import printable_lines
from gitsync.statuses import Status

if TYPE_CHECKING:
    from jinja2 import Environment

READ_ONLY = "This engine requires gateway authentication: the dashboard is read-only."


def _environment() -> Environment:
    """Built at the first page: commands that start an engine and show no page never
    import Jinja2."""
    from jinja2 import Environment, PackageLoader

    env = Environment(
        loader=PackageLoader("gitsync.engine", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css"] = css
    return env


class Dashboard:
    """The dashboard's routes over the engine's store and runs."""

    def __init__(
        self,
        store: Store,
        runs: Runs,
        read_only: bool = False,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.pages = Pages(store, runs.runner)
        self.runs = runs
        self.read_only = read_only
        self.clock = clock
        self._env: Environment | None = None

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.tree, methods=["GET"]),
            Route("/ui", self.tree, methods=["GET"]),
            Route("/ui/", self.tree, methods=["GET"]),
            Route("/ui/flows/{flow_id:int}", self.flow, methods=["GET"]),
            Route("/ui/flows/{flow_id:int}/trigger", self.trigger, methods=["POST"]),
            Route("/ui/flows/{flow_id:int}/trigger", self.post_only, methods=["GET"]),
            Route("/ui/runs/{instance_id}", self.run, methods=["GET"]),
            Route("/ui/runs/{instance_id}/cancel", self.cancel, methods=["POST"]),
            Route("/ui/runs/{instance_id}/cancel", self.post_only, methods=["GET"]),
            Route("/ui/tasks/{task_id}/log", self.log, methods=["GET"]),
            Route("/ui/{rest:path}", self.missing, methods=["GET", "POST"]),
        ]

    # -- rendering ---------------------------------------------------------------------------

    def _html(self, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        if self._env is None:
            self._env = _environment()
        text = self._env.get_template(name).render(read_only=self.read_only, **values)
        return HTMLResponse(text, status_code=code, headers=_HEADERS)

    def _page(self, request: Request, page: str, part: str, **values: Any) -> HTMLResponse:
        """The whole page, or only its live part when the page's script asks for it."""
        live_only = request.query_params.get("part") == "live"
        return self._html(part if live_only else page, **values)

    def _error(self, status: int, message: str) -> HTMLResponse:
        return self._html("error.html", code=status, message=message)

    def post_only(self, request: Request) -> Response:
        """A button's address opened as a page: it exists, but only its form can use it."""
        return self._html(
            "error.html", code=405, message=f"{request.url.path} takes the page's form (POST)"
        )

    def missing(self, request: Request) -> Response:
        return self._error(404, f"No such page: {request.url.path}")

    # -- pages -------------------------------------------------------------------------------

    def tree(self, request: Request) -> Response:
        orgs = [(org, self.pages.tree(org)) for org in self.pages.orgs()]
        return self._html("tree.html", orgs=[(o, t) for o, t in orgs if t is not None])

    def flow(self, request: Request) -> Response:
        row = self.pages.flow(request.path_params["flow_id"])
        if row is None:
            return self._error(404, f"No workflow with id {request.path_params['flow_id']}")
        now = self.clock()
        runs = self.pages.runs_of(row, now)
        states = self.pages.task_states(runs[0].id) if runs else {}
        workflow = self.runs.access.model(row)
        svg = dag_svg(workflow, {name: css(state) for name, state in states.items()})
        return self._page(
            request,
            "flow.html",
            "flow_live.html",
            flow=row,
            workflow=workflow,
            svg=svg,
            runs=runs,
            latest=runs[0] if runs else None,
            live=any(r.live for r in runs),
        )

    def run(self, request: Request) -> Response:
        row = self.pages.instance(request.path_params["instance_id"])
        if row is None:
            return self._error(404, f"No run {request.path_params['instance_id']}")
        now = self.clock()
        run = run_item(row, now)
        return self._page(
            request,
            "run.html",
            "run_live.html",
            run=run,
            tasks=self.pages.tasks_of(run.id, now),
            parameters=parameters(row),
            live=run.live,
        )

    def log(self, request: Request) -> Response:
        task = self.pages.task(request.path_params["task_id"])
        run = task and self.pages.instance(task["flow_instance_id"])
        if task is None or run is None:
            return self._error(404, f"No task run {request.path_params['task_id']}")
        text, cut = self.pages.log(run["id"], task["id"])
        live = task["status"] in LIVE
        return self._page(
            request,
            "log.html",
            "log_live.html",
            task=task,
            status=Status.named(task["status"]),
            run=run_item(run, self.clock()),
            text=printable_lines(text),  # as the CLI shows it: no raw control bytes
            cut=cut,
            live=live,
        )

    # -- actions -----------------------------------------------------------------------------

    def _refused(self, request: Request) -> Response | None:
        """Why a POST is refused: a read-only dashboard, or a form sent from another site
        (a page elsewhere must not trigger or cancel runs on this engine)."""
        if self.read_only:
            return self._error(403, READ_ONLY)
        if not _same_origin(request):
            return self._error(403, "Refused: the form was not sent from this dashboard.")
        return None

    async def trigger(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        row = await run_in_threadpool(self.pages.flow, request.path_params["flow_id"])
        if row is None:
            return self._error(404, f"No workflow with id {request.path_params['flow_id']}")
        millis = int(self.clock().timestamp() * 1000)
        try:
            instance_id = await run_in_threadpool(self.runs.create, row, millis)
        except ServiceError as e:
            return self._error(409, f"{row.name} cannot be triggered: {e.msg}")
        return RedirectResponse(f"/ui/runs/{instance_id}", status_code=303)

    async def cancel(self, request: Request) -> Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        instance_id = request.path_params["instance_id"]
        row = await run_in_threadpool(self.pages.instance, instance_id)
        if row is None:
            return self._error(404, f"No run {instance_id}")
        if row["status"] in LIVE:
            await run_in_threadpool(self._cancel, row["id"])
        return RedirectResponse(f"/ui/runs/{row['id']}", status_code=303)

    def _cancel(self, instance_id: str) -> None:
        """As Cancel Flow Instance: the runner's, or marked when no runner holds it."""
        if not self.runs.runner.cancel(instance_id):
            self.runs.runner.mark_cancelled(instance_id)


# pages are never cached (they show live state) and never framed by another site
_HEADERS = {
    protocol.ENGINE_HEADER: __version__,  # how `gitsync ui` knows an engine's dashboard
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
    "script-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
}


def _same_origin(request: Request) -> bool:
    """A browser names where a form came from (``Origin``, ``Sec-Fetch-Site``): it must be
    this dashboard. A client that sends neither (curl) is not a browser tricked by a page."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")

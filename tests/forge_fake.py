"""A local stand-in for the GitHub issue-comments and GitLab notes APIs: a starlette app on
127.0.0.1 and a free port that keeps comments in memory and records every request."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "tok-s3cr3t-value"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeForge:
    """Comments per pull request; ``fault`` (status, raw body) answers the next request."""

    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)
    fault: tuple[int, bytes] | None = None
    foreign: set[int] = field(default_factory=set)  # comments the token may not edit
    next_id: int = 1000
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by commit
    runs: list[dict[str, Any]] = field(default_factory=list)  # GitHub workflow runs
    artifacts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # by run id
    blobs: dict[int, bytes] = field(default_factory=dict)  # artifact zips, by artifact id
    job_files: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (ref, job): plan

    def pull_request_run(self, base_url: str, head_sha: str, name: str, plan: bytes) -> None:
        """What a pull request's run leaves behind: a successful run with a plan artifact."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("plan.json", plan)
        run_id, artifact_id = self.next_id + 1, self.next_id + 2
        self.next_id += 2
        self.runs.insert(0, {"id": run_id, "head_sha": head_sha, "event": "pull_request"})
        url = f"{base_url}/repos/acme/flows/actions/artifacts/{artifact_id}/zip"
        entry = {"id": artifact_id, "name": name, "expired": False, "archive_download_url": url}
        self.artifacts[run_id] = [entry]
        self.blobs[artifact_id] = buffer.getvalue()

    def thread(self, where: str) -> list[dict[str, Any]]:
        return self.comments.setdefault(where, [])

    def add(self, where: str, body: str, foreign: bool = False) -> int:
        self.next_id += 1
        self.thread(where).append({"id": self.next_id, "body": body})
        if foreign:
            self.foreign.add(self.next_id)
        return self.next_id

    def writes(self) -> list[Seen]:
        return [r for r in self.requests if r.method != "GET"]

    def app(self) -> Starlette:
        github, gitlab = "/repos/{o}/{r}/issues", "/api/v4/projects/{p}/merge_requests/{n}/notes"
        return Starlette(
            routes=[
                Route(github + "/{n}/comments", self.listing, methods=["GET", "POST"]),
                Route(github + "/comments/{id}", self.update, methods=["PATCH"]),
                Route(gitlab, self.listing, methods=["GET", "POST"]),
                Route(gitlab + "/{id}", self.update, methods=["PUT"]),
                Route("/repos/{o}/{r}/commits/{sha}/pulls", self.by_commit),
                Route(
                    "/api/v4/projects/{p}/repository/commits/{sha}/merge_requests", self.by_commit
                ),
                Route("/repos/{o}/{r}/actions/runs", self.list_runs),
                Route("/repos/{o}/{r}/actions/runs/{id}/artifacts", self.list_artifacts),
                Route("/repos/{o}/{r}/actions/artifacts/{id}/zip", self.redirect),
                Route("/blobs/{id}", self.blob),
                Route(
                    "/api/v4/projects/{p}/jobs/artifacts/{ref:path}/raw/plan.json", self.job_file
                ),
            ]
        )

    async def _record(self, request: Request) -> Response | None:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(Seen(request.method, request.url.path, dict(request.headers), body))
        if self.fault is not None:
            status, content = self.fault
            self.fault = None
            return Response(content, status, media_type="application/json")
        token = request.headers.get("authorization") or request.headers.get("private-token")
        if token not in (f"Bearer {TOKEN}", TOKEN):
            return JSONResponse({"message": "Bad credentials"}, 401)
        return None

    async def listing(self, request: Request) -> Response:
        refused = await self._record(request)
        if refused is not None:
            return refused
        where = request.url.path
        if request.method == "POST":
            new = self.add(where, self.requests[-1].body["body"])
            return JSONResponse({"id": new, "html_url": f"http://x/c/{new}", "body": "..."}, 201)
        per_page, page = int(request.query_params["per_page"]), int(request.query_params["page"])
        items = self.thread(where)[(page - 1) * per_page : page * per_page]
        return JSONResponse(items)

    async def update(self, request: Request) -> Response:
        refused = await self._record(request)
        if refused is not None:
            return refused
        wanted = int(request.path_params["id"])
        if wanted in self.foreign:
            return JSONResponse({"message": "Must have admin rights to Repository."}, 403)
        for thread in self.comments.values():
            for item in thread:
                if item["id"] == wanted:
                    item["body"] = self.requests[-1].body["body"]
                    return JSONResponse({**item, "html_url": f"http://x/c/{wanted}"})
        return JSONResponse({"message": "Not Found"}, 404)

    async def by_commit(self, request: Request) -> Response:
        return await self._record(request) or JSONResponse(
            self.pulls.get(request.path_params["sha"], [])
        )

    async def list_runs(self, request: Request) -> Response:
        query = request.query_params
        runs = [
            r
            for r in self.runs
            if r["head_sha"] == query["head_sha"] and query["status"] == "success"
        ]
        return await self._record(request) or JSONResponse({"workflow_runs": runs})

    async def list_artifacts(self, request: Request) -> Response:
        found = self.artifacts.get(int(request.path_params["id"]), [])
        named = [a for a in found if a["name"] == request.query_params["name"]]
        return await self._record(request) or JSONResponse({"artifacts": named})

    async def redirect(self, request: Request) -> Response:
        location = f"/blobs/{request.path_params['id']}"
        return await self._record(request) or Response(
            status_code=302, headers={"location": location}
        )

    async def blob(self, request: Request) -> Response:
        refused = await self._record(request)
        content = self.blobs.get(int(request.path_params["id"]))
        if refused is None and content is None:
            return JSONResponse({"message": "Not Found"}, 404)
        return refused or Response(content, media_type="application/zip")

    async def job_file(self, request: Request) -> Response:
        wanted = (request.path_params["ref"], request.query_params["job"])
        content = self.job_files.get(wanted)
        refused = await self._record(request)
        if refused is None and content is None:
            return JSONResponse({"message": "404 Not found"}, 404)
        return refused or Response(content, media_type="application/octet-stream")


class RunningFake:
    """The fake served by uvicorn in a thread on a pre-bound free loopback port."""

    def __init__(self, fake: FakeForge) -> None:
        app = fake.app()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> RunningFake:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "fake did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

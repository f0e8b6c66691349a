"""A fault-injecting proxy in front of the engine, for tests and benchmarks.

Each request is, at the configured rates: answered with an HTML 500 without reaching the
engine; delayed (longer than a client's timeout) and then forwarded, so it may still happen
after the client gave up; or forwarded and its answer lost (a 500 after the engine did the
work). ``on_request`` sees every request first; a test uses it to kill a client after k.
``rewrite`` may replace any JSON answer (missing, null or wrongly typed fields).
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gitsync.engine.server import _bind, _server


@dataclass
class Faults:
    error_rate: float = 0.0  # 500 before the engine sees the request
    delay_rate: float = 0.0  # forwarded only after ``delay`` seconds
    delay: float = 2.0
    lose_rate: float = 0.0  # forwarded, then the answer is replaced by a 500
    seed: int = 0
    on_request: Callable[[int, Request], None] | None = None
    # ("<path>?action=<action>", decoded JSON answer) -> the answer to send instead
    rewrite: Callable[[str, Any], Any] | None = None
    counts: dict[str, int] = field(default_factory=dict)


def create_proxy(upstream: str, faults: Faults, client: httpx.Client) -> Starlette:
    rng = random.Random(faults.seed)
    lock = threading.Lock()
    number = 0

    def count(kind: str) -> None:
        faults.counts[kind] = faults.counts.get(kind, 0) + 1

    async def forward(request: Request) -> Response:
        nonlocal number
        with lock:
            number += 1
            n = number
            draw = rng.random()
        if faults.on_request is not None:
            faults.on_request(n, request)
        body = await request.body()
        if draw < faults.error_rate:
            count("error")
            return Response("<html>502 Bad Gateway</html>", status_code=502, media_type="text/html")
        draw -= faults.error_rate
        if draw < faults.delay_rate:
            count("delay")
            await asyncio.sleep(faults.delay)
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = await run_in_threadpool(
            client.request,
            request.method,
            request.url.path,
            params=list(request.query_params.multi_items()),
            content=body,
            headers=headers,
        )
        if faults.delay_rate <= draw < faults.delay_rate + faults.lose_rate:
            count("lost")
            return Response("Internal Server Error", status_code=500, media_type="text/plain")
        count("ok")
        content = answer.content
        if faults.rewrite is not None and answer.headers.get("content-type", "").startswith(
            "application/json"
        ):
            key = f"{request.url.path}?action={request.query_params.get('action', '')}"
            content = json.dumps(faults.rewrite(key, answer.json())).encode()
        return Response(
            content,
            status_code=answer.status_code,
            media_type=answer.headers.get("content-type"),
            headers={k: v for k, v in answer.headers.items() if k.lower().startswith("x-gitsync")},
        )

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST"])])


class RunningProxy:
    """The proxy on 127.0.0.1 in a thread, like RunningEngine."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        self.faults = faults
        self._sock = _bind("127.0.0.1", 0)
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._client = httpx.Client(base_url=upstream, timeout=60)
        self._server = _server(create_proxy(upstream, faults, self._client))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            daemon=True,
            name="gitsync-fault-proxy",
        )

    def __enter__(self) -> RunningProxy:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the proxy did not start")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
        self._client.close()

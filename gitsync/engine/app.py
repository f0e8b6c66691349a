"""HTTP routes built from ``protocol.OPERATIONS``: the same paths, envelope and codes.

Every answer is the JSON envelope, whatever happens: unknown routes, bad JSON, oversized
bodies and internal faults included. Business errors use HTTP 200, as the service does.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gitsync import __version__, protocol
from gitsync.engine.answers import ServiceError, bad
from gitsync.engine.gateway import Gateway, GatewayError
from gitsync.engine.operations import Operations
from gitsync.protocol import Code

log = logging.getLogger("gitsync.engine")


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return Response(
        body,
        status_code=status,
        media_type="application/json;charset=UTF-8",
        headers={protocol.ENGINE_HEADER: __version__},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise bad(f"Invalid request body: larger than {limit // (1024 * 1024)} MiB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise bad(f"Invalid request body: larger than {limit // (1024 * 1024)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _params(op: protocol.Operation, request: Request, raw: bytes) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for param in op.query:
        value = request.query_params.get(param.name)
        if value is None or (not param.empty_ok and protocol.blank(value)):
            if param.required:
                raise bad(f"param: {param.name} cannot be empty")
            continue
        params[param.name] = protocol.coerce(param, value)
    if op.method == "POST":
        try:
            body = json.loads(raw) if raw.strip() else {}
        except (ValueError, UnicodeDecodeError):
            raise bad("Invalid request body: not valid JSON") from None
        if not isinstance(body, dict):
            raise bad("Invalid request body: expected a JSON object")
        for param in op.body:
            value = body.get(param.name)
            if value is None or (
                not param.empty_ok and param.type == "str" and protocol.blank(value)
            ):
                if param.required:
                    raise bad(f"param: {param.name} cannot be empty")
                continue
            params[param.name] = protocol.coerce(param, value)
    return params


class RequestLog(Protocol):
    """Sees every API request (server.py writes them to the request log)."""

    def arrived(self) -> int:
        """Called as a request arrives; returns how many requests had been answered."""

    def answered(self, entry: dict[str, Any]) -> None:
        """Called with what the request was, just before its answer is sent."""


_ABOUT = ("flowName", "dirName", "parentId", "dirId", "flowId", "id", "name")


def _operation_of(request: Request) -> protocol.Operation:
    """The operation a request names by its method, resource and ``action``."""
    resource = request.url.path.rsplit("/", 1)[-1]
    action = request.query_params.get("action", "")
    if not action:
        raise bad("param: action cannot be empty")
    op = protocol.BY_ROUTE.get((request.method, resource, action))
    if op is None:
        raise bad(
            f"Invalid parameter: action '{action}' is not a {request.method} "
            f"operation of /{resource}"
        )
    return op


def _ids_of(request: Request) -> tuple[str, str]:
    """The caller's ``userId`` and ``orgId``, both required."""
    user_id = request.query_params.get("userId", "")
    org_id = request.query_params.get("orgId", "")
    for name, value in (("userId", user_id), ("orgId", org_id)):
        if protocol.blank(value):
            raise bad(f"param: {name} cannot be empty")
    return user_id, org_id


def _log_entry(request: Request, about: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": request.method,
        "resource": request.url.path.rsplit("/", 1)[-1],
        "action": request.query_params.get("action", ""),
        **about,
        "code": payload.get("code", payload.get("status")),
    }


def _token_error(code: int, msg: str) -> Response:
    return _json({"status": code, "msg": msg, "business": "apim-token-service", "data": None})


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return _json(
        protocol.error(
            Code.BAD_PARAMETER, f"No such resource: {request.method} {request.url.path}"
        ),
        status=status,
    )


class _Endpoints:
    """The app's handlers, sharing what ``create_app`` was given."""

    def __init__(
        self,
        operations: Operations,
        gateway: Gateway | None,
        max_body: int,
        record: RequestLog | None,
    ) -> None:
        self.operations = operations
        self.gateway = gateway
        self.max_body = max_body
        self.record = record

    async def operation(self, request: Request) -> Response:
        seen = self.record.arrived() if self.record is not None else 0
        about: dict[str, Any] = {}
        payload, status = await self.answer(request, about)
        if self.record is not None:
            self.record.answered({**_log_entry(request, about, payload), "seen": seen})
        return _json(payload, status)

    async def answer(self, request: Request, about: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """The envelope and HTTP status, whatever happens."""
        try:
            return protocol.ok(await self.call(request, about)), 200
        except GatewayError as e:
            return protocol.gateway_error(e.code, e.msg), 401
        except ServiceError as e:
            return protocol.error(e.code, e.msg), 200
        except protocol.ParamError as e:
            return protocol.error(Code.BAD_PARAMETER, str(e)), 200
        except Exception as e:  # one line for the serving terminal, no traceback
            log.error(
                "internal error in %s %s: %s: %s",
                request.method,
                request.url.path,
                type(e).__name__,
                str(e).replace("\n", " ")[:500],
            )
            return protocol.error(Code.INTERNAL, "Internal server exception"), 200

    async def call(self, request: Request, about: dict[str, Any]) -> Any:
        """Check and run the request's operation; ``about`` gets the names and ids the
        request was about, and the ids it made, for the request log."""
        raw = await _read_body(request, self.max_body)
        if self.gateway is not None:
            self.gateway.verify(request.headers, list(request.query_params.multi_items()), raw)
        op = _operation_of(request)
        params = _params(op, request, raw)
        about.update((k, params[k]) for k in _ABOUT if k in params)
        caller = self.operations.access.caller(*_ids_of(request)) if op.needs_user else None
        data = await run_in_threadpool(self.operations.call, op.name, caller, params)
        if isinstance(data, dict):
            made = {k: data[k] for k in ("dirId", "flowId") if k in data}
            if made:
                about["made"] = made
        return data

    async def token(self, request: Request) -> Response:
        assert self.gateway is not None
        try:
            body = json.loads(await _read_body(request, self.max_body))
            if not isinstance(body, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, ServiceError):
            return _token_error(int(protocol.GatewayCode.BAD_PARAMETER), "invalid parameter")
        try:
            if request.url.path == protocol.TOKEN_REFRESH_PATH:
                return _json(self.gateway.refresh(body))
            return _json(self.gateway.issue(body))
        except GatewayError as e:
            return _token_error(e.code, e.msg)

    def routes(self) -> list[Route]:
        """The route table: every resource, and the token paths when a gateway guards it."""
        routes = [
            Route(f"{protocol.PREFIX}/{r}", self.operation, methods=["GET", "POST"])
            for r in protocol.RESOURCES
        ]
        if self.gateway is not None:
            routes += [
                Route(protocol.TOKEN_PATH, self.token, methods=["POST"]),
                Route(protocol.TOKEN_REFRESH_PATH, self.token, methods=["POST"]),
            ]
        return routes


def create_app(
    operations: Operations,
    gateway: Gateway | None = None,
    max_body: int = protocol.MAX_BODY_BYTES,
    record: RequestLog | None = None,
    pages: Sequence[BaseRoute] = (),
) -> Starlette:
    """The ASGI app. ``record`` sees every API request (the request log); ``pages`` are
    more routes beside the API's (the dashboard), on paths the API does not use."""
    endpoints = _Endpoints(operations, gateway, max_body, record)
    return Starlette(
        routes=[*endpoints.routes(), *pages],
        exception_handlers={404: _not_found, 405: _not_found},
    )

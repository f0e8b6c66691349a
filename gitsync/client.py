"""httpx client for the service: one method per operation, built on ``protocol``.

Retries: reads are retried on connection errors, timeouts, 429 and 5xx with exponential
backoff and jitter. A write is retried blindly only when it surely never reached the server
(the connection was refused); when its outcome is unknown, the caller's ``verify`` reads
first and the write is repeated only if it did not happen, so an Import never makes a copy.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx

from gitsync import answers, protocol
from gitsync.envelope import Retryable, unwrap, wrap_transport
from gitsync.errors import RemoteError, TransportError
from gitsync.gateway_auth import AuthError, Credentials, GatewayAuth
from gitsync.protocol import Operation

__all__ = ["AuthError", "Client", "Credentials", "GatewayAuth"]

T = TypeVar("T")
log = logging.getLogger("gitsync.client")


class Client:
    """The service's API. ``transport`` is the seam for tests that inject faults."""

    def __init__(
        self,
        base_url: str,
        org_id: str,
        user_id: str,
        credentials: Credentials | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.2,
        max_concurrency: int = 8,
        sleep: Callable[[float], None] = time.sleep,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.org_id, self.user_id = org_id, user_id
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        self.max_concurrency = max_concurrency
        self.requests = 0
        self.is_engine = False  # set once the bundled engine answers (protocol.ENGINE_HEADER)
        if auth is None and credentials is not None:
            auth = GatewayAuth(credentials, base_url.rstrip("/") + protocol.TOKEN_PATH)
        limits = httpx.Limits(
            max_connections=max_concurrency * 2, max_keepalive_connections=max_concurrency * 2
        )
        self._http = httpx.Client(
            base_url=base_url,
            auth=auth,
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=limits,
            verify=_tls_context(base_url),
        )
        # every request's URL is written out whole (see _url)
        self._base = str(self._http.base_url)
        self._base += "" if self._base.endswith("/") else "/"  # no path: shown without its /
        self._count_lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the core --------------------------------------------------------------------------------

    def _send(self, op: Operation, query: Mapping[str, Any], body: Any) -> Any:
        params: dict[str, str] = {"action": op.action}
        if op.needs_user:
            params.update(userId=self.user_id, orgId=self.org_id)
        params.update({k: str(v) for k, v in query.items() if v is not None})
        with self._count_lock:
            self.requests += 1
        started = time.perf_counter()
        try:
            if op.method == "GET":
                response = self._http.get(self._url(op, params))
            else:
                content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
                response = self._http.post(
                    self._url(op, params),
                    content=content,
                    headers={"Content-Type": "application/json;charset=UTF-8"},
                )
        except httpx.HTTPError as e:
            raise wrap_transport(e, op, self._http.base_url) from None
        if protocol.ENGINE_HEADER in response.headers:
            self.is_engine = True
        if log.isEnabledFor(logging.DEBUG):  # the operation and outcome; never headers, bodies
            log.debug(
                "%s (%s %s action=%s) -> HTTP %s in %.0f ms",
                op.title,
                op.method,
                op.path,
                op.action,
                response.status_code,
                (time.perf_counter() - started) * 1000,
            )
        return unwrap(op, response)

    def _url(self, op: Operation, params: dict[str, str]) -> str:
        """The whole URL as one string, encoded as httpx would: given a path and ``params``,
        httpx parses the URL three times per request (60 us of the 0.9 ms a read costs)."""
        return f"{self._base}{op.path.lstrip('/')}?{urlencode(params)}"

    def call(
        self,
        name: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        verify: Callable[[], T | None] | None = None,
    ) -> Any:
        """Send one operation with the retry policy above; returns the envelope's data."""
        op = protocol.BY_NAME[name]
        attempt = 0
        while True:
            try:
                return self._send(op, query or {}, body)
            except RemoteError as e:
                # a repeated write refused (say, 'already exists'): the first one may have
                # landed after all, so read before calling it a failure
                if attempt and op.writes and verify is not None:
                    done = self._verified(verify)
                    if done is not None:
                        return done
                raise e from None
            except Retryable as e:
                attempt += 1
                log.debug("%s: %s (attempt %d of %d)", op.title, e.error, attempt, self.retries + 1)
                if attempt > self.retries:
                    raise e.error from None
                if op.writes and not e.unsent:
                    if verify is None:
                        raise e.error from None
                    self._pause(attempt)
                    done = self._verified(verify)
                    if done is not None:
                        return done
                    continue
                self._pause(attempt)

    def _verified(self, verify: Callable[[], T | None]) -> T | None:
        for attempt in range(1, self.retries + 1):
            try:
                return verify()
            except TransportError:
                self._pause(attempt)
        return verify()

    def _pause(self, attempt: int) -> None:
        delay = self.backoff * (2 ** (attempt - 1))
        self.sleep(delay * (0.5 + random.random()))

    # -- one method per operation ------------------------------------------------------------------

    def cancel_flow_instance(self, flow_inst_id: str) -> Any:
        return self.call("cancel_flow_instance", body={"flowInstId": flow_inst_id})

    def create_directory(self, parent_id: str, name: str) -> str:
        def existing() -> str | None:
            return self.find_directory(parent_id, name)

        data = self.call(
            "create_directory", body={"parentId": parent_id, "dirName": name}, verify=existing
        )
        if isinstance(data, str):
            return data
        return answers.text(
            answers.mapping(data, "Create Directory").get("dirId"), "Create Directory: dirId"
        )

    def delete_flow(self, flow_id: int) -> None:
        def gone() -> str | None:
            return "" if self.find_flow_id_by_id(flow_id) is None else None

        self.call("delete_flow", {"flowId": flow_id}, verify=gone)

    def disable_flow(self, flow_id: int) -> None:
        self.call("disable_flow", body={"flowId": flow_id}, verify=lambda: None)

    def enable_flow(self, flow_id: int) -> None:
        self.call("enable_flow", body={"flowId": flow_id}, verify=lambda: None)

    def export_flow(self, flow_id: int) -> dict[str, Any]:
        return answers.mapping(self.call("export_flow", {"flowId": flow_id}), "Export Flow")

    def get_current_time(self) -> int:
        return answers.integer(self.call("get_current_time"), "Get Current Time")

    def get_flow(self, flow_id: int) -> dict[str, Any]:
        return answers.mapping(self.call("get_flow", {"flowId": flow_id}), "Get Flow")

    def get_flow_instance(self, flow_inst_id: str) -> dict[str, Any]:
        data = self.call("get_flow_instance", {"flowInstId": flow_inst_id})
        return answers.mapping(data, "Get Flow Instance")

    def get_my_flow(self, expression: str | None = None) -> list[dict[str, Any]]:
        return answers.objects(self.call("get_my_flow", {"expression": expression}), "Get My Flow")

    def get_task_instance(self, task_inst_id: str) -> dict[str, Any]:
        data = self.call("get_task_instance", {"taskInstId": task_inst_id})
        return answers.mapping(data, "Get Task Instance")

    def get_task_instance_log(self, task_inst_id: str, max_length: int | None = None) -> str:
        data = self.call(
            "get_task_instance_log", {"taskInstId": task_inst_id, "maxLength": max_length}
        )
        if isinstance(data, dict):
            data = data.get("log", "")
        return answers.text(data if data is not None else "", "Get Task Instance Log")

    def get_time_zone(self) -> str:
        data = answers.mapping(self.call("get_time_zone"), "Get Time Zone")
        return answers.text(data.get("timezone"), "Get Time Zone: timezone")

    def import_flow(self, name: str, dir_id: str, flow_json: dict[str, Any]) -> int:
        """Import once: if the outcome is unknown, a flow of that name is looked for first."""
        body = {
            "flowName": name,
            "dirId": dir_id,
            "desc": flow_json.get("desc", ""),
            "flowJson": flow_json,
        }
        data = self.call("import_flow", body=body, verify=lambda: self.find_flow_id(name))
        if not isinstance(data, dict):
            return answers.integer(data, "Import Flow")
        return answers.integer(data.get("flowId"), "Import Flow: flowId")

    def list_flow_instances(self, body: dict[str, Any]) -> dict[str, Any]:
        return answers.mapping(self.call("list_flow_instances", body=body), "List Flow Instances")

    def list_workflow_directories(self) -> list[dict[str, Any]]:
        data = self.call("list_workflow_directories")
        return answers.objects(data, "List Workflow Directories")

    def load_flow_for_edit(self, flow_id: int) -> dict[str, Any]:
        data = self.call("load_flow_for_edit", {"flowId": flow_id})
        return answers.mapping(data, "Load Flow For Edit")

    def save_flow(self, body: dict[str, Any]) -> int:
        data = self.call("save_flow", body=body, verify=lambda: None)
        if isinstance(data, dict) and data.get("flowId") is not None:
            return answers.integer(data["flowId"], "Save Flow: flowId")
        return int(body["id"])

    def search_flow(
        self, expression: str = "", page_no: int = 1, page_size: int = 50
    ) -> list[dict[str, Any]]:
        body = {"expression": expression, "pagination": {"pageNo": page_no, "pageSize": page_size}}
        return answers.objects(self.call("search_flow", body=body), "Search Flow")

    def trigger_flow(self, flow_id: int, trigger_time: int) -> str:
        data = self.call("trigger_flow", body={"flowId": flow_id, "triggerTime": trigger_time})
        return _instance_id(data, "Trigger Flow")

    def trigger_flow_from_task(self, flow_id: int, task_id: int, trigger_time: int) -> str:
        data = self.call(
            "trigger_flow_from_task",
            body={"flowId": flow_id, "taskId": task_id, "triggerTime": trigger_time},
        )
        return _instance_id(data, "Trigger Flow From Task")

    def update_and_trigger_flow(
        self, flow_id: int, trigger_time: int, parameters: list[dict[str, str]]
    ) -> str:
        data = self.call(
            "update_and_trigger_flow",
            body={"flowId": flow_id, "triggerTime": trigger_time, "parameters": parameters},
        )
        return _instance_id(data, "Update And Trigger Flow")

    # -- look-ups used to verify writes --------------------------------------------------

    def _all_flows(self) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            batch = self.search_flow(page_no=page, page_size=50)
            found.extend(batch)
            if len(batch) < 50:
                return found
            page += 1

    def search_flow_all(self, expression: str = "") -> list[dict[str, Any]]:
        """Every page of Search Flow for ``expression`` (a fuzzy match on names and ids)."""
        found, page = [], 1
        while True:
            batch = self.search_flow(expression, page_no=page, page_size=50)
            found.extend(batch)
            if len(batch) < 50:
                return found
            page += 1

    def find_flow_id(self, name: str) -> int | None:
        for item in self._all_flows():
            if item.get("flowName") == name:
                return answers.integer(item.get("flowId"), "Search Flow: flowId")
        return None

    def find_flow_id_by_id(self, flow_id: int) -> int | None:
        ids = {answers.integer(i.get("flowId"), "Search Flow: flowId") for i in self._all_flows()}
        return flow_id if flow_id in ids else None

    def find_directory(self, parent_id: str, name: str) -> str | None:
        what = "List Workflow Directories: children"
        stack = list(self.list_workflow_directories())
        while stack:
            node = stack.pop()
            children = answers.objects(node.get("children") or [], what)
            if node.get("key") == parent_id:
                for child in children:
                    if child.get("isDirectory") and child.get("title") == name:
                        return answers.text(child.get("key"), f"{what}: key")
                return None
            stack.extend(c for c in children if c.get("isDirectory"))
        return None


def _tls_context(base_url: str) -> ssl.SSLContext | bool:
    """httpx's default (certificates verified) for https. A plain-http service never
    negotiates TLS, so it gets a context with no certificates loaded (loading them took 30 ms
    per client), which would refuse any TLS peer if it were ever used."""
    if base_url.lower().startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


def _instance_id(data: Any, what: str) -> str:
    if isinstance(data, dict):
        data = data.get("flowInstanceId")
    return answers.text(data, f"{what}: flowInstanceId")

"""The client writes each request's URL out whole (client.Client._url): what the service
receives must be what httpx would have built from a path and query parameters."""

from __future__ import annotations

import ssl

import httpx
import pytest

from gitsync.client import Client, _tls_context
from gitsync.errors import RemoteError

ODD = "a b&c=d/é?#%20+"


def recording(seen: list[httpx.URL]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json={"code": 0, "data": {"x": 1}})

    return httpx.MockTransport(answer)


@pytest.mark.parametrize(
    "base",
    ["http://svc.example:8080", "http://svc.example:8080/", "https://svc.example/gw/enos/"],
)
def test_the_url_keeps_the_base_path_and_every_value(base: str) -> None:
    seen: list[httpx.URL] = []
    with Client(base, ODD, "u&1", transport=recording(seen)) as client:
        client.export_flow(7)
        client.call("search_flow", body={"expression": ""})
    prefix = "/gw/enos" if "gw" in base else ""
    assert [u.path for u in seen] == [
        f"{prefix}/batch-processing-service/v2.1/flows",
        f"{prefix}/batch-processing-service/v2.1/flows",
    ]
    assert dict(seen[0].params) == {
        "action": "export",
        "userId": "u&1",
        "orgId": ODD,
        "flowId": "7",
    }
    assert seen[1].params["action"] == "search"
    assert seen[0].host == "svc.example"


def test_a_query_value_that_is_none_is_left_out() -> None:
    seen: list[httpx.URL] = []
    with Client("http://svc.example", "o", "u", transport=recording(seen)) as client:
        client.get_task_instance_log("t1")
    assert "maxLength" not in seen[0].params
    assert seen[0].params["taskInstId"] == "t1"


def test_plain_http_gets_a_context_that_trusts_no_certificate() -> None:
    context = _tls_context("HTTP://svc.example")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0  # any TLS peer would be refused
    assert _tls_context("https://svc.example") is True  # httpx's default: verified


def test_a_refusal_still_names_the_operation() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": 62102, "msg": "bad"})

    with (
        Client("http://svc.example", "o", "u", transport=httpx.MockTransport(refuse)) as client,
        pytest.raises(RemoteError, match="Export Flow failed"),
    ):
        client.export_flow(1)

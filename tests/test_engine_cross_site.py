"""A web page in the user's browser must not drive the local engine: what a browser would
send cross-site (a foreign Origin or Sec-Fetch-Site, a text/plain POST, a rebound Host) is
refused on the API and the dashboard alike, over real HTTP; local clients still get in."""

from __future__ import annotations

import json

import httpx
import pytest

from gitsync import protocol
from gitsync.engine.server import RunningEngine
from tests.conftest import SPEC_ORG, SPEC_USER, Api, simple_flow

IDS = {"userId": SPEC_USER, "orgId": SPEC_ORG}
EVIL = "http://evil.example"


def _flow(api: Api, name: str = "target") -> int:
    return api.import_flow(name, simple_flow("a"))


def _exists(api: Api, flow_id: int) -> bool:
    return api.call("GET", "flows", "get", flowId=flow_id)["code"] == 0


def _delete(engine: RunningEngine, flow_id: int, **headers: str) -> httpx.Response:
    query = {"action": "delete", "flowId": str(flow_id), **IDS}
    return httpx.get(f"{engine.url}{protocol.PREFIX}/flows", params=query, headers=headers)


def _trigger_plain(engine: RunningEngine, flow_id: int, **headers: str) -> httpx.Response:
    """What ``fetch(url, {method: 'POST', mode: 'no-cors', body})`` sends: text/plain."""
    body = json.dumps({"flowId": flow_id, "parameters": [{"key": "p", "value": "$(id)"}]})
    return httpx.post(
        f"{engine.url}{protocol.PREFIX}/flows",
        params={"action": "updateAndTrigger", **IDS},
        content=body.encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8", **headers},
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Host": "evil.example", "Origin": EVIL},  # DNS rebinding: evil.example -> 127.0.0.1
        {"Host": "evil.example"},
    ],
)
def test_a_cross_site_get_that_deletes_is_refused(
    engine: RunningEngine, api: Api, headers: dict[str, str]
) -> None:
    flow_id = _flow(api)
    answer = _delete(engine, flow_id, **headers)
    assert answer.status_code in (403, 421), answer.text
    assert answer.json()["code"] == protocol.Code.BAD_PARAMETER
    assert _exists(api, flow_id)


def test_a_text_plain_post_never_triggers_a_run(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api)
    for headers in ({}, {"Origin": EVIL}, {"Sec-Fetch-Site": "cross-site"}):
        answer = _trigger_plain(engine, flow_id, **headers)
        assert answer.status_code in (403, 415), answer.text
    assert engine.engine.store.instances(SPEC_ORG) == []


def test_a_post_without_a_content_type_is_refused(engine: RunningEngine, api: Api) -> None:
    answer = httpx.post(
        f"{engine.url}{protocol.PREFIX}/directories",
        params={"action": "create", **IDS},
        content=json.dumps({"dirName": "x", "parentId": api.root()}).encode(),
    )
    assert answer.status_code == 415 and "application/json" in answer.json()["msg"]


def test_the_dashboard_refuses_a_foreign_host(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api)
    assert httpx.get(engine.url + "/", headers={"Host": "evil.example"}).status_code == 421
    rebound = {"Host": "evil.example", "Origin": EVIL}
    trigger = httpx.post(f"{engine.url}/ui/flows/{flow_id}/trigger", headers=rebound)
    assert trigger.status_code == 421
    assert engine.engine.store.instances(SPEC_ORG) == []


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_local_names_of_the_engine_are_served(engine: RunningEngine, api: Api, name: str) -> None:
    flow_id = _flow(api)
    own = f"{name}:{engine.port}"
    answer = _delete(engine, flow_id, Host=own, Origin=f"http://{own}")
    assert answer.status_code == 200 and answer.json()["code"] == 0
    assert not _exists(api, flow_id)


def test_a_same_origin_browser_request_is_served(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api)
    page = httpx.get(engine.url + "/", headers={"Sec-Fetch-Site": "same-origin"})
    assert page.status_code == 200
    answer = _delete(engine, flow_id, **{"Sec-Fetch-Site": "none", "Origin": engine.url})
    assert answer.json()["code"] == 0


def test_another_port_on_loopback_is_a_foreign_origin(engine: RunningEngine, api: Api) -> None:
    flow_id = _flow(api)
    other = f"http://127.0.0.1:{engine.port + 1}"
    assert _delete(engine, flow_id, Origin=other).status_code == 403
    assert _exists(api, flow_id)


def test_httpx_sends_no_origin_and_no_fetch_site(engine: RunningEngine) -> None:
    request = httpx.Client().build_request("GET", engine.url)
    assert "origin" not in request.headers and "sec-fetch-site" not in request.headers

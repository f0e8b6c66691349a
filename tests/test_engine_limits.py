"""Numbers and fields out of the service's types are refused with 62102 naming the field:
never an internal error (an integer SQLite cannot hold), never stored, never silently
replaced by what was there before."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, simple_flow
from tests.test_engine_links import _save_body

HUGE = 10**30


def _refused(answer: dict[str, Any], *words: str) -> None:
    assert answer["code"] == 62102, answer
    for word in words:
        assert word in answer["msg"], answer


def _body(api: Api, name: str, flow: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"flowName": name, "dirId": api.root(), "flowJson": flow, **more}


@pytest.mark.parametrize("flow_id", [HUGE, -HUGE, "9" * 40, 2**63])
def test_an_import_flow_id_out_of_range_is_refused(api: Api, flow_id: object) -> None:
    body = _body(api, "big", simple_flow("a"), flowId=flow_id)
    _refused(api.call("POST", "flows", "import", body), "flowId", "in range")
    _refused(api.call("GET", "flows", "get", flowId=str(HUGE)), "flowId", "in range")


@pytest.mark.parametrize("field", ["timeout", "retryLimit", "retryInterval", "priorityLevel"])
@pytest.mark.parametrize("value", [HUGE, 2**31, -(2**31) - 1])
def test_an_import_task_number_out_of_range_is_refused(api: Api, field: str, value: int) -> None:
    flow = simple_flow("a")
    flow["tasks"][0][field] = value
    _refused(api.call("POST", "flows", "import", _body(api, "f", flow)), f"tasks[0].{field}")
    assert api.data("POST", "flows", "search", {"expression": ""}) == []


def test_an_import_task_with_a_null_name_says_which(api: Api) -> None:
    flow = simple_flow("a", "b")
    flow["tasks"][1]["name"] = None
    _refused(api.call("POST", "flows", "import", _body(api, "f", flow)), "tasks[1].name")


def test_a_save_id_out_of_range_is_refused(api: Api) -> None:
    flow_id = api.import_flow("f", simple_flow("a"))
    body = _save_body(api, flow_id, id="9" * 40)
    _refused(api.call("POST", "flows", "save", body), "id", "in range")
    body = _save_body(api, flow_id)
    body["tasks"][0]["taskId"] = "9" * 40
    _refused(api.call("POST", "flows", "save", body), "tasks[0].taskId", "in range")


@pytest.mark.parametrize("value", ["abc", float("nan"), None, True, float("inf")])
def test_a_save_task_position_that_is_no_number_is_refused(api: Api, value: object) -> None:
    flow_id = api.import_flow("f", simple_flow("a"))
    body = _save_body(api, flow_id)
    body["tasks"][0]["x"] = value
    raw = json.dumps(body).encode()  # NaN and Infinity as Python's json writes them
    _refused(api.call("POST", "flows", "save", raw=raw), "tasks[0].x", "number")


def test_a_save_task_position_that_is_a_number_is_kept(api: Api) -> None:
    flow_id = api.import_flow("f", simple_flow("a"))
    body = _save_body(api, flow_id)
    body["tasks"][0]["x"] = 123.5
    assert api.data("POST", "flows", "save", body) == {"flowId": flow_id}
    graph = json.loads(api.data("GET", "flows", "loadForEdit", flowId=flow_id)["graph"])  # type: ignore[index]
    assert graph["tasks"][0]["x"] == 123.5

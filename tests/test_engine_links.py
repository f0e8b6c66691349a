"""References between flows follow ids in the engine, as in the service (SPEC §2.3): Save
renames a flow and its tasks in place, referrers keep pointing at the same flow and task,
and a Save of a referrer re-points its reference nodes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, simple_flow


def _save_body(api: Api, flow_id: int, **changes: Any) -> dict[str, Any]:
    """Save's body that keeps the flow as it is (from Load For Edit), with ``changes``."""
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=flow_id)
    graph = json.loads(detail["graph"])
    flows = [{**f, "flowName": f.pop("flow_name", f.get("flowName"))} for f in graph["flows"]]
    return {
        "id": str(flow_id),
        "type": detail["type"],
        "name": detail["flowName"],
        "freq": detail["freq"],
        "cycle": detail["cycle"],
        "alertMode": detail["alertMode"],
        "doAs": detail["doAs"],
        "owners": detail["owner"],
        "visitors": detail["visitor"],
        "active": detail["active"],
        "desc": detail["desc"],
        "parameters": detail["parameters"],
        "tasks": graph["tasks"],
        "flows": flows,
        "relations": graph["relations"],
        **changes,
    }


def _referrer(api: Api, up: str, task: str = "") -> int:
    link: dict[str, str] = {"linkId": "0", "sourceFlowName": up}
    kind = "flowLinks"
    if task:
        link["sourceTaskName"] = task
        kind = "taskLinks"
    return api.import_flow(
        "down",
        simple_flow(
            "b",
            **{kind: [link]},
            linkRelations=[{"linkId": "0", "targetTaskName": "b", "rerun": False}],
        ),
    )


def _graph(api: Api, flow_id: int, action: str = "get") -> dict[str, Any]:
    detail: Any = api.data("GET", "flows", action, flowId=flow_id)
    graph: dict[str, Any] = json.loads(detail["graph"])
    return graph


@pytest.mark.parametrize("task", ["", "a"])
def test_renaming_a_referenced_flow_keeps_its_referrers_on_it(api: Api, task: str) -> None:
    up = api.import_flow("up", simple_flow("a"))
    down = _referrer(api, "up", task)
    tasks = _graph(api, up, "loadForEdit")["tasks"]
    tasks[0]["taskName"] = "a2"
    assert api.data("POST", "flows", "save", _save_body(api, up, name="up2", tasks=tasks)) == {
        "flowId": up
    }
    exported: Any = api.data("GET", "flows", "export", flowId=down)
    links = exported["taskLinks"] if task else exported["flowLinks"]
    assert links == (
        [{"linkId": "0", "sourceFlowName": "up2", "sourceTaskName": "a2"}]
        if task
        else [{"linkId": "0", "sourceFlowName": "up2"}]
    )
    node = _graph(api, down)["flows"][0]
    if task:
        assert node["flowName"] == f"{tasks[0]['taskId']}(a2)" and node["isVirtual"]
    else:
        assert node["flowId"] == str(up) and node["flowName"] == "up2"
    assert _graph(api, down, "loadForEdit")["flows"][0]["flow_name"] == node["flowName"]
    # a flow that takes the old name is not what ``down`` references
    api.import_flow("up", simple_flow("a"))
    assert api.call("GET", "flows", "delete", flowId=up)["code"] == 62104


def test_save_of_a_referrer_repoints_its_reference_nodes(api: Api) -> None:
    old = api.import_flow("up", simple_flow("a"))
    down = _referrer(api, "up")
    new = api.import_flow("up_new", simple_flow("a"))
    body = _save_body(api, down)
    body["flows"] = [
        {"flowId": str(new), "flowName": "up_new", "isVirtual": False, "nodeId": f"f_{new}"}
    ]
    body["relations"] = [
        {"source": f"f_{new}", "target": r["target"], "rerun": False, "cycleGap": "D0"}
        for r in body["relations"]
    ]
    api.data("POST", "flows", "save", body)
    assert _graph(api, down)["flows"][0]["flowId"] == str(new)
    assert api.data("GET", "flows", "delete", flowId=old) == ""  # nothing references it now
    assert api.call("GET", "flows", "delete", flowId=new)["code"] == 62104


def test_save_repoints_a_task_reference_to_another_flows_task(api: Api) -> None:
    api.import_flow("up", simple_flow("a"))
    down = _referrer(api, "up", "a")
    new = api.import_flow("up_new", simple_flow("a"))
    new_task = _graph(api, new)["tasks"][0]["taskId"]
    body = _save_body(api, down)
    virtual = 1_000_000_000 + int(new_task)
    body["flows"] = [
        {
            "flowId": str(virtual),
            "flowName": f"{new_task}(a)",
            "isVirtual": True,
            "nodeId": f"f_{virtual}",
        }
    ]
    body["relations"] = [
        {"source": f"f_{virtual}", "target": r["target"], "rerun": False, "cycleGap": "D0"}
        for r in body["relations"]
    ]
    api.data("POST", "flows", "save", body)
    exported: Any = api.data("GET", "flows", "export", flowId=down)
    assert exported["taskLinks"] == [
        {"linkId": "0", "sourceFlowName": "up_new", "sourceTaskName": "a"}
    ]
    assert api.call("GET", "flows", "delete", flowId=new)["code"] == 62104


def test_save_refuses_a_name_another_flow_has(api: Api) -> None:
    api.import_flow("taken", simple_flow("a"))
    flow = api.import_flow("mine", simple_flow("a"))
    answer = api.call("POST", "flows", "save", _save_body(api, flow, name="taken"))
    assert answer["code"] == 62102
    assert api.data("GET", "flows", "export", flowId=flow)["name"] == "mine"  # type: ignore[index]


def test_a_save_without_a_graph_keeps_references_by_id(api: Api) -> None:
    up = api.import_flow("up", simple_flow("a"))
    down = _referrer(api, "up")
    api.data("POST", "flows", "save", _save_body(api, up, name="up_renamed"))
    body = _save_body(api, down, desc="changed")
    del body["tasks"], body["flows"], body["relations"]
    api.data("POST", "flows", "save", body)
    assert _graph(api, down)["flows"][0]["flowId"] == str(up)
    assert api.call("GET", "flows", "delete", flowId=up)["code"] == 62104

"""The engine's HTTP API against SPEC.md: every request sample, shapes, and error paths."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import SPEC_SAMPLES, Api, simple_flow

OPS = json.loads((SPEC_SAMPLES / "operations.json").read_text())
JSON_STRINGS = {"graph", "parameters", "runMode"}


def same_shape(actual: Any, sample: Any, where: str = "data") -> None:
    """``actual`` has every key of ``sample``, with values of the same JSON type, recursively;
    JSON documents inside strings are compared the same way."""
    if isinstance(sample, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        missing = set(sample) - set(actual)
        assert not missing, f"{where}: missing keys {sorted(missing)}"
        for key, value in sample.items():
            if key in ("status", "task_inst_id"):  # copied from an instance graph (SPEC §2.3)
                continue
            if key in JSON_STRINGS and isinstance(value, str):
                assert isinstance(actual[key], str), f"{where}.{key}: expected a JSON string"
                same_shape(json.loads(actual[key]), json.loads(value), f"{where}.{key}")
            else:
                same_shape(actual[key], value, f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(actual, list), f"{where}: expected a list"
        if sample and actual:
            same_shape(actual[0], sample[0], f"{where}[0]")
    elif isinstance(sample, bool):
        assert isinstance(actual, bool), f"{where}: expected a boolean, got {actual!r}"
    elif isinstance(sample, (int, float)):
        assert isinstance(actual, (int, float)) and not isinstance(actual, bool), where
        if isinstance(sample, int) and not isinstance(sample, bool):
            assert isinstance(actual, int), f"{where}: expected an integer, got {actual!r}"
    elif isinstance(sample, str):
        assert isinstance(actual, str), f"{where}: expected a string, got {actual!r}"


def request_of(section: str) -> tuple[str, str, dict[str, str], Any]:
    """Method, resource, query and body of the SPEC request sample of one section."""
    http = OPS[section]["http"][0]
    first, _, rest = http.partition("\n")
    method, url = first.split()[:2]
    path, _, query = url.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    body = json.loads(rest) if rest.strip() else None
    if body is None and method == "POST" and len(OPS[section]["json"]) > 1:
        body = OPS[section]["json"][0]
    return method, path.rsplit("/", 1)[-1], params, body


def send(api: Api, section: str, body: Any = None, **override: str) -> dict[str, Any]:
    method, resource, params, sample_body = request_of(section)
    params.update(override)
    action = params.pop("action")
    return api.call(
        method,
        resource,
        action,
        body if body is not None else sample_body,
        user=params.pop("userId", None),
        org=params.pop("orgId", None),
        **params,
    )


def response_sample(section: str) -> Any:
    return OPS[section]["json"][-1]


def test_every_spec_request_sample_answers_in_the_documented_shape(api: Api) -> None:
    root = api.root()
    same_shape(api.call("GET", "directories", "listWorkFlowDirs"), response_sample("3.2"))

    _method, _, _, body = request_of("3.1")
    created = send(api, "3.1", dict(body, parentId=root))
    same_shape(created, response_sample("3.1"))
    assert re.fullmatch(r"[0-9a-f]{32}", created["data"]["dirId"])

    _, _, _, import_body = request_of("3.3")
    imported = send(api, "3.3", dict(import_body, dirId=created["data"]["dirId"]))
    same_shape(imported, response_sample("3.3"))

    # the flows the other samples name, created with their documented ids
    jin = api.import_flow("jin", simple_flow("j1"), flow_id=2788)
    up = api.import_flow("upstream", simple_flow("tass"), flow_id=2819)
    api.import_flow(
        "test0722-1",
        simple_flow("MDM-Sync", "MDMHive", relations=[("MDM-Sync", "MDMHive")]),
        flow_id=2479,
    )
    fpostm = simple_flow("tass", "gg", "dff", relations=[("tass", "gg")])
    fpostm["flowLinks"] = [{"linkId": "0", "sourceFlowName": "jin"}]
    fpostm["taskLinks"] = [{"linkId": "1", "sourceFlowName": "upstream", "sourceTaskName": "tass"}]
    fpostm["linkRelations"] = [
        {"linkId": "0", "targetTaskName": "tass", "rerun": False},
        {"linkId": "1", "targetTaskName": "gg", "rerun": False},
    ]
    assert api.import_flow("fpostm", fpostm, flow_id=2515) == 2515
    api.import_flow("to_delete", simple_flow("x"), flow_id=13770)
    api.import_flow("switch", simple_flow("x"), flow_id=3377)
    assert (jin, up) == (2788, 2819)

    same_shape(send(api, "3.5"), response_sample("3.5"))
    loaded = send(api, "3.6")
    same_shape(loaded, response_sample("3.6"))

    # Save: the sample body, with the task and reference ids this engine gave them
    graph = json.loads(loaded["data"]["graph"])
    task_ids = {t["taskName"]: t["taskId"] for t in graph["tasks"]}
    virtual = next(f for f in graph["flows"] if f["isVirtual"])
    _, _, _, save_body = request_of("3.7")
    text = json.dumps(save_body)
    for name, old in (("tass", "104575"), ("gg", "104590"), ("dff", "104901")):
        text = text.replace(old, task_ids[name])
    text = text.replace('"2819"', f'"{virtual["flowId"]}"').replace("f_2819", virtual["nodeId"])
    text = text.replace("104891(tass)", virtual["flow_name"])
    saved = send(api, "3.7", json.loads(text))
    same_shape(saved, response_sample("3.7"))
    assert saved["data"]["flowId"] == 2515

    assert send(api, "3.8") == {"code": 0, "msg": "OK", "data": ""}
    assert send(api, "3.9") == {"code": 0, "msg": "OK", "data": ""}
    assert send(api, "3.10") == {"code": 0, "msg": "OK", "data": ""}
    same_shape(send(api, "3.11"), response_sample("3.11"))
    same_shape(send(api, "3.12"), response_sample("3.12"))
    same_shape(send(api, "3.21"), response_sample("3.21"))
    assert send(api, "3.22") == {"code": 0, "msg": "OK", "data": {"timezone": "GMT+0"}}
    # Export gives the portable Flow Struct of SPEC §2.2
    sample = json.loads((SPEC_SAMPLES / "flow_struct_2_2.json").read_text())
    same_shape(api.call("GET", "flows", "export", flowId=2515)["data"], sample)


def test_save_changes_metadata_graph_and_removes_omitted_tasks(api: Api) -> None:
    flow = api.import_flow("f", simple_flow("a", "b", "c", relations=[("a", "b")]))
    graph = json.loads(api.data("GET", "flows", "loadForEdit", flowId=flow)["graph"])
    ids = {t["taskName"]: t for t in graph["tasks"]}
    body = {
        "id": str(flow),
        "type": 1,
        "name": "f_renamed",
        "freq": "0 0 5 * * ? *",
        "cycle": "D",
        "alertMode": 3,
        "doAs": "x",
        "owners": ";alice;",
        "visitors": "bob",
        "active": 1,
        "desc": "new",
        "parameters": '[{"key":"K","value":"v"}]',
        "tasks": [ids["c"], ids["a"]],
        "flows": [],
        "relations": [
            {
                "source": ids["c"]["nodeId"],
                "target": ids["a"]["nodeId"],
                "rerun": False,
                "cycleGap": "D0",
            }
        ],
    }
    assert api.data("POST", "flows", "save", body) == {"flowId": flow}
    exported = api.data("GET", "flows", "export", flowId=flow)
    assert exported["name"] == "f_renamed" and exported["cron"] == "0 0 5 * * ? *"
    assert [t["name"] for t in exported["tasks"]] == ["c", "a"]
    assert exported["tasks"][0]["cmd"] == "echo c"  # bodies are kept
    assert exported["relations"] == [{"sourceTaskName": "c", "targetTaskName": "a", "rerun": False}]
    assert exported["desc"] == "new" and "active" not in exported  # strict: SPEC's fields only
    assert api.data("GET", "flows", "get", flowId=flow)["active"] == 1


def _snapshot(api: Api) -> Any:
    tree = api.data("GET", "directories", "listWorkFlowDirs")
    flows = api.data("POST", "flows", "search", {"expression": ""})
    exports = {f["flowId"]: api.data("GET", "flows", "export", flowId=f["flowId"]) for f in flows}  # type: ignore[union-attr]
    details = {
        k: {x: y for x, y in api.data("GET", "flows", "get", flowId=k).items() if x != "hasEditPri"}
        for k in exports
    }
    return tree, exports, details


BAD_FLOWS = {
    "no tasks key": ({"cycle": "D"}, "flowJson.tasks is missing"),
    "bad cron": (simple_flow("a", cron="0 0 25 * * ? *"), "hours field: 25"),
    "cron vs cycle": (simple_flow("a", cron="0 */5 * * * ? *"), "does not match the cycle"),
    "dangling relation": (
        simple_flow("a", relations=[("a", "ghost")]),
        "flow.relations[0].targetTaskName: unknown task 'ghost'",
    ),
    "dangling source": (
        simple_flow("a", relations=[("ghost", "a")]),
        "task 'a' depends on unknown task 'ghost'",
    ),
    "cycle": (
        simple_flow("a", "b", relations=[("a", "b"), ("b", "a")]),
        "dependency cycle: a -> b -> a",
    ),
    "duplicate task": (simple_flow("a", "a"), "duplicate task name 'a'"),
    "unknown upstream flow": (
        dict(
            simple_flow("a"),
            flowLinks=[{"linkId": "0", "sourceFlowName": "nope"}],
            linkRelations=[{"linkId": "0", "targetTaskName": "a"}],
        ),
        "workflow 'nope', which does not exist",
    ),
    "wrong type": (
        dict(simple_flow("a"), tasks=[{"name": "a", "timeout": "soon"}]),
        "flow.tasks[0].timeout",
    ),
    "tasks not a list": (dict(simple_flow("a"), tasks={"a": 1}), "flow.tasks: expected a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLOWS))
def test_server_side_validation_refuses_and_stores_nothing(api: Api, case: str) -> None:
    flow_json, reason = BAD_FLOWS[case]
    before = _snapshot(api)
    answer = api.call(
        "POST", "flows", "import", {"flowName": "bad", "dirId": api.root(), "flowJson": flow_json}
    )
    assert answer["code"] == 62102 and answer["data"] is None
    assert answer["msg"].startswith("Workflow validation failed: ")
    assert reason in answer["msg"]
    assert _snapshot(api) == before


@pytest.mark.parametrize(
    "body, message",
    [
        ({"dirId": "x", "flowJson": {}}, "param: flowName cannot be empty"),
        ({"flowName": "  ", "dirId": "x", "flowJson": {}}, "param: flowName cannot be empty"),
        (
            {"flowName": "a/b", "dirId": "ROOT", "flowJson": {"tasks": []}},
            "Invalid parameter: flowName",
        ),
        ({"flowName": "a", "flowJson": {}}, "param: dirId cannot be empty"),
        (
            {"flowName": "a", "dirId": "0" * 32, "flowJson": {"tasks": []}},
            "Directory does not exist",
        ),
        ({"flowName": "a", "dirId": "ROOT", "flowJson": "nope"}, "flowJson must be an object"),
        (
            {"flowName": "a", "dirId": "ROOT", "flowJson": {"tasks": []}, "flowId": "abc"},
            "flowId must be an integer",
        ),
    ],
)
def test_import_parameter_errors(api: Api, body: dict[str, Any], message: str) -> None:
    body = {k: api.root() if v == "ROOT" else v for k, v in body.items()}
    answer = api.call("POST", "flows", "import", body)
    assert answer["code"] == 62102 and message in answer["msg"], answer


def test_duplicate_flow_name_and_wished_id(api: Api) -> None:
    first = api.import_flow("same", simple_flow("a"), flow_id=5000)
    assert first == 5000
    again = api.call(
        "POST",
        "flows",
        "import",
        {"flowName": "same", "dirId": api.root(), "flowJson": simple_flow("a")},
    )
    assert again["code"] == 62102 and "already exists" in again["msg"]
    other = api.import_flow("other", simple_flow("a"), flow_id=5000)
    assert other != 5000  # never overwrites: allocates another id


def test_directory_errors(api: Api) -> None:
    root = api.root()
    api.mkdir("sales")
    cases = [
        ({"parentId": root}, "param: dirName cannot be empty"),
        ({"dirName": "x"}, "param: parentId cannot be empty"),
        ({"dirName": "x", "parentId": "f" * 32}, "parentId not found"),
        ({"dirName": "sales", "parentId": root}, "A directory of the same name already exists"),
        ({"dirName": "a\\b", "parentId": root}, "Invalid parameter: dirName"),
    ]
    for body, message in cases:
        answer = api.call("POST", "directories", "create", body)
        assert answer == {"code": 62102, "msg": answer["msg"], "data": None}
        assert message in answer["msg"]


def test_identity_and_access(api: Api) -> None:
    flow = api.import_flow("mine", simple_flow("a", owners="alice"))
    bad_user = api.call("GET", "flows", "getMyFlow", user="u_nobody")
    assert bad_user["code"] == 62101
    assert api.call("GET", "flows", "getMyFlow", org="o_other")["code"] == 62101
    # bob is in the org but not an owner: reads work, changes do not
    assert api.call("GET", "flows", "export", user="u_bob", flowId=flow)["code"] == 0
    for method, action, kwargs in (
        ("GET", "delete", {"flowId": flow}),
        ("POST", "enable", {}),
        ("POST", "disable", {}),
    ):
        body = {"flowId": flow} if method == "POST" else None
        answer = api.call(method, "flows", action, body, user="u_bob", **kwargs)
        assert answer == {"code": 62103, "msg": "User has no privilege.", "data": None}
    detail = api.data("GET", "flows", "loadForEdit", flowId=flow)
    save = {
        "id": flow,
        "type": 1,
        "name": "mine",
        "freq": detail["freq"],
        "cycle": "D",
        "alertMode": 1,
        "owners": "bob",
        "visitors": "",
        "active": 0,
    }
    assert api.call("POST", "flows", "save", save, user="u_bob")["code"] == 62103
    # a locked owner may not save (62105)
    locked = api.import_flow("lenny_flow", simple_flow("a", owners="lenny"))
    save_locked = dict(save, id=locked, name="lenny_flow", owners="lenny")
    answer = api.call("POST", "flows", "save", save_locked, user="u_locked")
    assert answer["code"] == 62105 and answer["msg"] == "Your account has been locked"


def test_orgs_never_see_each_other(api: Api) -> None:
    api.mkdir("alice_dir")
    flow = api.import_flow("alice_flow", simple_flow("a"))
    other = Api(str(api.http.base_url), user="u_mallory", org="o_other")
    with other.http:
        tree = other.data("GET", "directories", "listWorkFlowDirs")
        assert len(tree) == 1 and tree[0]["children"] == []  # type: ignore[index]
        assert other.data("POST", "flows", "search", {}) == []
        assert other.call("GET", "flows", "export", flowId=flow)["code"] == 62102
        assert other.call("GET", "flows", "delete", flowId=flow)["code"] == 62102
    assert api.data("GET", "flows", "export", flowId=flow)["name"] == "alice_flow"


@pytest.mark.parametrize("name", ["up", "über_ÿ 名前", 'q"uo%te_'])
def test_delete_refused_while_referenced(api: Api, name: str) -> None:
    """Whatever characters the name holds (the engine looks for it in the stored JSON)."""
    up = api.import_flow(name, simple_flow("a"))
    api.import_flow(name + "x", simple_flow("a"))  # a longer name holding it: not a reference
    down = simple_flow(
        "b",
        flowLinks=[{"linkId": "0", "sourceFlowName": name}],
        linkRelations=[{"linkId": "0", "targetTaskName": "b", "rerun": False}],
    )
    down_id = api.import_flow("down", down)
    other = api.import_flow("other", simple_flow("a"))
    assert api.data("GET", "flows", "delete", flowId=other) == ""  # nothing links to it
    answer = api.call("GET", "flows", "delete", flowId=up)
    assert answer == {
        "code": 62104,
        "msg": "This workflow is relied on by other workflows and cannot be deleted.",
        "data": None,
    }
    assert api.data("GET", "flows", "delete", flowId=down_id) == ""
    assert api.data("GET", "flows", "delete", flowId=up) == ""
    assert api.call("GET", "flows", "export", flowId=up)["code"] == 62102


@pytest.mark.parametrize(
    "request_kind",
    [
        "malformed",
        "array",
        "wrong type",
        "no action",
        "unknown action",
        "wrong method",
        "huge",
        "unknown id",
        "not a number",
        "unknown resource",
    ],
)
def test_bad_requests_get_an_envelope_and_change_nothing(api: Api, request_kind: str) -> None:
    flow = api.import_flow("keep", simple_flow("a"))
    before = _snapshot(api)
    base = str(api.http.base_url) + "/batch-processing-service/v2.1"
    q = {"userId": api.user, "orgId": api.org}
    http = api.http
    if request_kind == "malformed":
        r = http.post(f"{base}/flows", params={**q, "action": "import"}, content=b"{nope")
    elif request_kind == "array":
        r = http.post(f"{base}/flows", params={**q, "action": "enable"}, content=b"[1]")
    elif request_kind == "wrong type":
        r = http.post(
            f"{base}/flows",
            params={**q, "action": "enable"},
            content=json.dumps({"flowId": {"a": 1}}).encode(),
        )
    elif request_kind == "no action":
        r = http.get(f"{base}/flows", params=q)
    elif request_kind == "unknown action":
        r = http.get(f"{base}/flows", params={**q, "action": "drop"})
    elif request_kind == "wrong method":
        r = http.get(f"{base}/flows", params={**q, "action": "import"})
    elif request_kind == "huge":
        r = http.post(
            f"{base}/flows",
            params={**q, "action": "import"},
            content=b'{"flowName": "' + b"x" * (11 * 1024 * 1024) + b'"}',
        )
    elif request_kind == "unknown id":
        r = http.get(f"{base}/flows", params={**q, "action": "delete", "flowId": "999999"})
    elif request_kind == "not a number":
        r = http.get(f"{base}/flows", params={**q, "action": "delete", "flowId": "12abc"})
    else:
        r = http.post(f"{base}/nothing", params={**q, "action": "x"}, content=b"{}")
    answer = r.json()
    assert set(answer) == {"code", "msg", "data"}
    assert answer["code"] == 62102 and answer["data"] is None and answer["msg"]
    assert "Traceback" not in r.text
    assert _snapshot(api) == before
    assert flow


def test_search_and_my_flow_filters_and_paging(api: Api) -> None:
    for i in range(7):
        api.import_flow(f"job_{i}", simple_flow("a", owners="alice" if i % 2 else "bob"))
    page = {"pageNo": 2, "pageSize": 3, "sorters": [{"field": "createTime", "order": "DESC"}]}
    found = api.data("POST", "flows", "search", {"expression": "job_", "pagination": page})
    assert [f["flowName"] for f in found] == ["job_3", "job_2", "job_1"]  # type: ignore[index]
    first = api.data("POST", "flows", "search", {"pagination": dict(page, pageNo=0)})
    assert len(first) == 3  # type: ignore[arg-type]
    bad = api.call(
        "POST",
        "flows",
        "search",
        {"pagination": {"pageNo": 1, "pageSize": 1, "sorters": [{"field": "name"}]}},
    )
    assert bad == {"code": 62102, "msg": "The sorters field parameter is invalid", "data": None}
    mine = api.data("GET", "flows", "getMyFlow", expression="job_")
    # alice created them all, so all are related to her; bob owns the even ones
    assert len(mine) == 7  # type: ignore[arg-type]
    bobs = api.call("GET", "flows", "getMyFlow", user="u_bob")["data"]
    assert sorted(f["flowName"] for f in bobs) == ["job_0", "job_2", "job_4", "job_6"]


def test_every_operation_is_served_by_exactly_one_method(engine) -> None:  # type: ignore[no-untyped-def]
    from gitsync.engine.operations import table
    from gitsync.protocol import BY_NAME

    handlers = table(engine.engine.service, engine.engine.runs)
    assert set(handlers) == set(BY_NAME)
    without_runs = table(engine.engine.service, None)
    assert "trigger_flow" not in without_runs and "import_flow" in without_runs

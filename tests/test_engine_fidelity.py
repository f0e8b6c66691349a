"""Every field SPEC documents survives the engine's round trips, field by field: SPEC's own
samples imported and read back by Export, Get Flow and Load For Edit, and Save's sample read
back by Get Flow and Load For Edit (with a ``cycleGap`` of ``D1`` and its reference nodes
where it placed them). And the engine answers no field SPEC does not document, unless its
extensions are switched on."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import (
    SPEC_ORG,
    SPEC_SAMPLES,
    Api,
    simple_flow,
)

OPS = json.loads((SPEC_SAMPLES / "operations.json").read_text())
FLOW_STRUCT = json.loads((SPEC_SAMPLES / "flow_struct_2_2.json").read_text())
IMPORT = json.loads((SPEC_SAMPLES / "import_3_3_request.json").read_text())
SAVE = OPS["3.7"]["json"][0]
JSON_TEXT = {"parameters", "runMode", "graph"}  # JSON documents inside strings (SPEC §1.3)

# the fields SPEC documents (§2.2, §2.3), V2.0-only ones aside
FLOW_STRUCT_FIELDS = {
    *("name", "cycle", "cron", "parameters", "alertMode", "submitter", "owners", "visitors"),
    *("type", "syncType", "desc", "startTime", "tasks", "flowLinks", "taskLinks", "relations"),
    "linkRelations",
}
TASK_FIELDS = {
    *("name", "resource", "type", "runMode", "syncType", "cmd", "submitter", "filePackage"),
    *("cron", "priorityLevel", "timeout", "retryLimit", "retryInterval", "successCode"),
    *("asLink", "waitCode"),
}
DETAIL_FIELDS = {
    *("flowId", "flowName", "active", "creator", "createTime", "updateUser", "updateTime"),
    *("freq", "cycle", "parameters", "owner", "visitor", "doAs", "alertMode", "graph", "entry"),
    *("type", "syncType", "desc", "startTime", "virtual", "locked", "hasEditPri", "hasReadPri"),
    *("isUserLocked", "queue"),
}
GRAPH_FIELDS = {
    *("name", "creator", "freq", "cycle", "type", "alertMode", "active", "owners", "visitors"),
    *("startTime", "doAs", "syncType", "parameters", "queue", "desc", "tasks", "flows"),
    "relations",
}
EXTENSIONS = {"active", "hasEditPri", "locked", "isUserLocked"}


def differences(sent: Any, got: Any, where: str = "") -> list[str]:
    """Every path at which ``got`` differs from ``sent``: a missing key, another value, or
    another JSON type (``1`` is not ``true``). Keys ``got`` has beyond ``sent`` are not
    differences. JSON documents inside strings are compared as documents."""
    if isinstance(sent, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected an object, got {got!r}"]
        out = []
        for key, value in sent.items():
            path = f"{where}.{key}" if where else key
            if key not in got:
                out.append(f"{path}: missing (sent {value!r})")
            elif key in JSON_TEXT and isinstance(value, str) and isinstance(got[key], str):
                out += differences(json.loads(value), json.loads(got[key]), path)
            else:
                out += differences(value, got[key], path)
        return out
    if isinstance(sent, list):
        if not isinstance(got, list) or len(got) != len(sent):
            return [f"{where}: expected {len(sent)} items, got {got!r}"]
        return [
            d
            for i, (a, b) in enumerate(zip(sent, got, strict=True))
            for d in differences(a, b, f"{where}[{i}]")
        ]
    if type(sent) is not type(got) or sent != got:
        return [f"{where}: sent {sent!r}, got {got!r}"]
    return []


def test_differences_names_each_differing_path() -> None:
    sent = {"a": 1, "b": {"c": [1, 2], "d": True}, "runMode": '{"cpu":0.5}', "e": "x"}
    got = {"a": 1.0, "b": {"c": [1], "d": 1}, "runMode": '{"cpu": 0.6}', "f": 0}
    assert differences(sent, got) == [
        "a: sent 1, got 1.0",
        "b.c: expected 2 items, got [1]",
        "b.d: sent True, got 1",
        "runMode.cpu: sent 0.5, got 0.6",
        "e: missing (sent 'x')",
    ]
    assert differences(sent, dict(sent, more=1)) == []


def export(api: Api, flow_id: int) -> dict[str, Any]:
    return api.data("GET", "flows", "export", flowId=flow_id)  # type: ignore[return-value]


def _strict(struct: dict[str, Any]) -> None:
    """Only the fields SPEC documents for the Flow Struct and its tasks."""
    assert set(struct) <= FLOW_STRUCT_FIELDS, set(struct) - FLOW_STRUCT_FIELDS
    for task in struct["tasks"]:
        assert set(task) <= TASK_FIELDS, set(task) - TASK_FIELDS
    for kind in ("flowLinks", "taskLinks", "relations", "linkRelations"):
        for item in struct[kind]:
            assert not {"x", "y", "cycleGap", "sourceFlowId", "sourceTaskId"} & set(item), item


def test_the_import_sample_exports_every_field_as_sent(api: Api) -> None:
    """SPEC §3.3's sample: the task's submitter and its empty waitCode come back too."""
    flow = api.import_flow(IMPORT["flowName"], IMPORT["flowJson"])
    exported = export(api, flow)
    assert differences(IMPORT["flowJson"], exported) == []
    assert exported["name"] == "outuser"
    assert exported["tasks"][0]["submitter"] == "db_demomanager"
    assert exported["tasks"][0]["waitCode"] == ""
    _strict(exported)


def test_the_flow_struct_sample_survives_export_get_flow_and_load_for_edit(api: Api) -> None:
    jin = api.import_flow("jin", simple_flow("j"))
    flow = api.import_flow("nFlow", FLOW_STRUCT)
    exported = export(api, flow)
    assert differences(FLOW_STRUCT, exported) == []
    assert "waitCode" not in exported["tasks"][0]  # not sent, not invented
    _strict(exported)
    for action in ("get", "loadForEdit"):
        detail: Any = api.data("GET", "flows", action, flowId=flow)
        assert set(detail) <= DETAIL_FIELDS, set(detail) - DETAIL_FIELDS
        graph = json.loads(detail["graph"])
        assert set(graph) <= GRAPH_FIELDS, set(graph) - GRAPH_FIELDS
        nodes = {t["taskName"]: t["nodeId"] for t in graph["tasks"]}
        expected = _detail_of(FLOW_STRUCT)
        expected["graph"] = json.dumps(
            {
                **_graph_of(FLOW_STRUCT),
                "tasks": [{"taskName": "tass"}, {"taskName": "rf"}],
                "flows": [{"flowId": str(jin), _flow_name(action): "jin", "isVirtual": False}],
                "relations": [
                    {
                        "source": nodes["tass"],
                        "target": nodes["rf"],
                        "cycleGap": "D0",
                        "rerun": True,
                    },
                    {
                        "source": f"f_{jin}",
                        "target": nodes["tass"],
                        "cycleGap": "D0",
                        "rerun": False,
                    },
                ],
            }
        )
        assert differences(expected, detail) == [], action


def _detail_of(struct: dict[str, Any]) -> dict[str, Any]:
    """What Get Flow should say of a flow imported from ``struct`` (SPEC §2.3)."""
    return {
        "flowName": struct["name"],
        "freq": struct["cron"],
        "owner": struct["owners"],
        "visitor": struct["visitors"],
        "doAs": struct["submitter"],
        **{k: struct[k] for k in ("cycle", "parameters", "alertMode", "type", "syncType")},
        **{k: struct[k] for k in ("desc", "startTime")},
        "active": 0,
        "entry": 1,
        "virtual": False,
    }


def _graph_of(struct: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": struct["name"],
        "freq": struct["cron"],
        "doAs": struct["submitter"],
        **{k: struct[k] for k in ("cycle", "type", "alertMode", "owners", "visitors")},
        **{k: struct[k] for k in ("startTime", "parameters", "desc", "syncType")},
        "active": 0,
    }


def _flow_name(action: str) -> str:
    return "flow_name" if action == "loadForEdit" else "flowName"  # SPEC §2.3's samples


def _fpostm(api: Api) -> dict[str, Any]:
    """The flows SPEC's Save sample names, with its ids, and the sample's body with the ids
    this engine gave the tasks and the task reference; its first relation's gap is D1."""
    api.import_flow("jin", simple_flow("j1"), flow_id=2788)
    api.import_flow("upstream", simple_flow("tass"), flow_id=2819)
    fpostm = simple_flow("tass", "gg", "dff", relations=[("tass", "gg")])
    fpostm["flowLinks"] = [{"linkId": "0", "sourceFlowName": "jin"}]
    fpostm["taskLinks"] = [{"linkId": "1", "sourceFlowName": "upstream", "sourceTaskName": "tass"}]
    fpostm["linkRelations"] = [
        {"linkId": "0", "targetTaskName": "tass", "rerun": False},
        {"linkId": "1", "targetTaskName": "gg", "rerun": False},
    ]
    assert api.import_flow("fpostm", fpostm, flow_id=2515) == 2515
    graph = json.loads(api.data("GET", "flows", "loadForEdit", flowId=2515)["graph"])  # type: ignore[index]
    text = json.dumps(SAVE)
    for task in graph["tasks"]:
        old = {"tass": "104575", "gg": "104590", "dff": "104901"}[task["taskName"]]
        text = text.replace(old, task["taskId"])
    virtual = next(f for f in graph["flows"] if f["isVirtual"])
    text = text.replace('"2819"', f'"{virtual["flowId"]}"').replace("f_2819", virtual["nodeId"])
    body: dict[str, Any] = json.loads(text.replace("104891(tass)", virtual["flow_name"]))
    body["relations"][0]["cycleGap"] = "D1"
    return body


def _expected_after_save(body: dict[str, Any], action: str) -> dict[str, Any]:
    """Get Flow / Load For Edit after Save of ``body``: every field of the edit view."""
    flows = [
        {_flow_name(action) if k == "flowName" else k: v for k, v in node.items()}
        for node in body["flows"]
    ]
    same = ("type", "freq", "cycle", "alertMode", "doAs", "startTime", "active", "parameters")
    expected = {
        "flowId": int(body["id"]),
        "flowName": body["name"],
        "owner": body["owners"],
        "visitor": body["visitors"],
        "desc": body["desc"],
        **{k: body[k] for k in same},
        "graph": json.dumps(
            {
                **{k: body[k] for k in (*same[:-2], "owners", "visitors", "desc", "name")},
                **{k: body[k] for k in ("active", "parameters", "queue")},
                "tasks": body["tasks"],
                "flows": flows,
                "relations": body["relations"],
            }
        ),
    }
    if action == "loadForEdit":
        expected["queue"] = body["queue"]
    return expected


def test_the_save_sample_reads_back_with_its_cycle_gap_and_reference_positions(api: Api) -> None:
    body = _fpostm(api)
    assert body["flows"][1]["x"] == 0.0125  # where the sample moves the task reference to
    assert api.data("POST", "flows", "save", body) == {"flowId": 2515}
    for action in ("get", "loadForEdit"):
        detail = api.data("GET", "flows", action, flowId=2515)
        assert differences(_expected_after_save(body, action), detail) == [], action
    exported = export(api, 2515)
    _strict(exported)
    # the task reference's node stays although no relation uses it (as in the sample)
    assert exported["taskLinks"] == [
        {"linkId": "1", "sourceFlowName": "upstream", "sourceTaskName": "tass"}
    ]


def test_load_for_edit_saved_as_it_is_changes_nothing(api: Api) -> None:
    """Load For Edit -> Save -> Load For Edit: the edit view a console would send back."""
    body = _fpostm(api)
    api.data("POST", "flows", "save", body)
    before: Any = api.data("GET", "flows", "loadForEdit", flowId=2515)
    graph = json.loads(before["graph"])
    for node in graph["flows"]:
        node["flowName"] = node.pop("flow_name")
    again = {
        "id": before["flowId"],
        "name": before["flowName"],
        "owners": before["owner"],
        "visitors": before["visitor"],
        **{k: before[k] for k in ("type", "freq", "cycle", "alertMode", "doAs", "startTime")},
        **{k: before[k] for k in ("active", "parameters", "desc", "queue")},
        **{k: graph[k] for k in ("tasks", "flows", "relations")},
    }
    api.data("POST", "flows", "save", again)
    after: Any = api.data("GET", "flows", "loadForEdit", flowId=2515)
    ignore = ("updateTime", "graph")
    assert {k: v for k, v in after.items() if k not in ignore} == {
        k: v for k, v in before.items() if k not in ignore
    }
    assert json.loads(after["graph"]) == json.loads(before["graph"])


def test_a_save_without_tasks_keeps_gaps_positions_and_submitters(api: Api) -> None:
    body = _fpostm(api)
    api.data("POST", "flows", "save", body)
    api.data(
        "POST",
        "flows",
        "save",
        {k: v for k, v in body.items() if k not in ("tasks", "flows", "relations")}
        | {"desc": "only this"},
    )
    detail: Any = api.data("GET", "flows", "get", flowId=2515)
    graph = json.loads(detail["graph"])
    assert detail["desc"] == "only this" and detail["doAs"] == "db_demomanager"
    assert [r["cycleGap"] for r in graph["relations"]] == ["D1", "D0"]
    assert [(f["x"], f["y"]) for f in graph["flows"]] == [(n["x"], n["y"]) for n in body["flows"]]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("cycleGap", "D-1", "relations[0].cycleGap must be a cycle and an offset"),
        ("cycleGap", "X1", "relations[0].cycleGap must be a cycle and an offset"),
        ("cycleGap", 1, "relations[0].cycleGap must be a cycle and an offset"),
        ("cycleGap", ["D1"], "relations[0].cycleGap must be a cycle and an offset"),
        ("x", "left", "flows[0].x must be a number"),
        ("x", "nan", "flows[0].x must be a number"),
        ("y", True, "flows[0].y must be a number"),
        ("y", {"v": 1}, "flows[0].y must be a number"),
    ],
)
def test_save_refuses_a_gap_or_a_position_it_cannot_keep(
    api: Api, field: str, value: Any, message: str
) -> None:
    body = _fpostm(api)
    target = body["relations"][0] if field == "cycleGap" else body["flows"][0]
    target[field] = value
    answer = api.call("POST", "flows", "save", body)
    assert answer["code"] == 62102 and message in answer["msg"], answer
    graph = json.loads(api.data("GET", "flows", "get", flowId=2515)["graph"])  # type: ignore[index]
    assert [r["cycleGap"] for r in graph["relations"]] == ["D0", "D0", "D0"]  # nothing saved


def test_a_task_node_at_no_number_is_refused_and_stays_where_it_stood(api: Api) -> None:
    body = _fpostm(api)
    before = json.loads(api.data("GET", "flows", "get", flowId=2515)["graph"])["tasks"][0]  # type: ignore[index]
    body["tasks"][0].update(x="NaN", y=None)
    answer = api.call("POST", "flows", "save", body)
    assert answer["code"] == 62102 and "tasks[0].x must be a number" in answer["msg"]
    after = json.loads(api.data("GET", "flows", "get", flowId=2515)["graph"])["tasks"][0]  # type: ignore[index]
    assert (after["x"], after["y"]) == (before["x"], before["y"])


def test_a_flow_without_a_submitter_runs_as_the_organization(api: Api) -> None:
    flow = api.import_flow("plain", simple_flow("a"))
    exported = export(api, flow)
    assert exported["submitter"] == f"data_{SPEC_ORG}"
    assert exported["tasks"][0]["submitter"] == ""
    assert api.data("GET", "flows", "get", flowId=flow)["doAs"] == f"data_{SPEC_ORG}"  # type: ignore[index]


def test_nulls_and_odd_types_in_the_kept_fields_read_as_not_given(api: Api) -> None:
    struct = simple_flow("a", submitter=None, owners=None, visitors=7)
    struct["tasks"][0].update(submitter=None, waitCode=None)
    flow = api.import_flow("odd", struct)
    exported = export(api, flow)
    assert (exported["submitter"], exported["owners"], exported["visitors"]) == (
        f"data_{SPEC_ORG}",
        "",
        "7",
    )
    assert exported["tasks"][0]["submitter"] == "" and "waitCode" not in exported["tasks"][0]
    body = _fpostm(api)
    body["relations"][0]["cycleGap"] = None
    body["flows"][0].update(x=None, y=None)
    api.data("POST", "flows", "save", dict(body, doAs=None))
    graph = json.loads(api.data("GET", "flows", "get", flowId=2515)["graph"])  # type: ignore[index]
    assert graph["relations"][0]["cycleGap"] == "D0" and graph["doAs"] == f"data_{SPEC_ORG}"
    assert (graph["flows"][0]["x"], graph["flows"][0]["y"]) == (0.0005, 0.002)  # its own place


def test_a_run_submits_as_the_flows_submitter(api: Api) -> None:
    """The instance, its graph and the task log name the account Get Flow states (doAs)."""
    from tests.test_runs import log_of, trigger, wait_done

    flow = api.import_flow("sub", simple_flow("a", submitter="db_team"))
    done = wait_done(api, trigger(api, flow))
    assert done["doAs"] == json.loads(done["graph"])["doAs"] == "db_team"
    assert "submitter:\tdb_team\n" in log_of(api, done, "a")


def test_save_keeps_the_queue_it_is_given_even_an_empty_one(api: Api) -> None:
    body = _fpostm(api)
    api.data("POST", "flows", "save", dict(body, queue="q1"))
    assert api.data("GET", "flows", "loadForEdit", flowId=2515)["queue"] == "q1"  # type: ignore[index]
    api.data("POST", "flows", "save", dict(body, queue=""))
    assert api.data("GET", "flows", "loadForEdit", flowId=2515)["queue"] == ""  # type: ignore[index]
    api.data("POST", "flows", "save", {k: v for k, v in body.items() if k != "queue"})
    assert api.data("GET", "flows", "loadForEdit", flowId=2515)["queue"] == ""  # type: ignore[index]


SPEC_MD = Path(__file__).resolve().parents[2] / "shared" / "enos-api" / "SPEC.md"


def _spec_json_blocks(section: str) -> list[Any]:
    """The ```json blocks of one section of SPEC.md (``### 3.7 ...``)."""
    text = SPEC_MD.read_text("utf-8")
    start = text.index(f"### {section} ")
    end = text.find("\n### ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return [json.loads(block.split("```", 1)[0]) for block in body.split("```json\n")[1:]]


@pytest.mark.skipif(not SPEC_MD.exists(), reason=f"SPEC.md is not at {SPEC_MD}")
def test_the_samples_used_here_are_spec_md_s() -> None:
    """The copies in tests/data/spec are what SPEC.md says today."""
    assert _spec_json_blocks("2.2")[0] == FLOW_STRUCT
    assert _spec_json_blocks("3.3")[0] == IMPORT
    for section in ("3.5", "3.6", "3.7"):
        assert _spec_json_blocks(section) == OPS[section]["json"], section


_counter = itertools.count()
_names = st.lists(st.sampled_from(["alice", "bob", "dylan.yeo", "陈"]), max_size=3)


@settings(max_examples=25)
@given(
    owners=st.tuples(st.sampled_from(["", ";"]), _names, st.sampled_from(["", ";"])),
    submitter=st.text(max_size=30),
    task_submitter=st.text(max_size=30),
    wait_code=st.none() | st.text(max_size=10),
)
def test_any_text_in_the_kept_fields_comes_back_as_sent(
    api: Api,
    owners: tuple[str, list[str], str],
    submitter: str,
    task_submitter: str,
    wait_code: str | None,
) -> None:
    text = owners[0] + ";".join(owners[1]) + owners[2]
    struct = simple_flow("a", owners=text, visitors=text[::-1], submitter=submitter)
    struct["tasks"][0]["submitter"] = task_submitter
    if wait_code is not None:
        struct["tasks"][0]["waitCode"] = wait_code
    flow = api.import_flow(f"any{next(_counter)}", struct)
    exported = export(api, flow)
    sent = {k: v for k, v in struct.items() if not (k == "submitter" and not v)}
    assert differences(sent, exported) == []
    assert ("waitCode" in exported["tasks"][0]) is (wait_code is not None)

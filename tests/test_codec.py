"""Round trips through the one codec: files <-> model <-> Flow Struct."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitsync.codec import document, flow_struct
from gitsync.errors import CodecError
from gitsync.files import dump_document, find_workflow_files, parse_yaml, read_document
from gitsync.model import Dependency, RunMode, Schedule, Task, Workflow
from gitsync.validate import Validator
from tests.conftest import CASES, EXAMPLES, SPEC_SAMPLES

SERVICE_SET = {"submitter"}  # set by the service, no place in the files


def independent_normalize(struct: dict[str, Any]) -> dict[str, Any]:
    """Written apart from the codec on purpose: the service's own reading of a Flow Struct."""

    def runmode(text: str) -> dict[str, Any]:
        rm = json.loads(text)
        return {k: float(v) if k in ("cpu", "memory") else v for k, v in rm.items()}

    links = {
        link["linkId"]: (link["sourceFlowName"], link.get("sourceTaskName", ""))
        for link in struct.get("flowLinks", []) + struct.get("taskLinks", [])
    }
    tasks = []
    for t in struct["tasks"]:
        t = {k: v for k, v in t.items() if k not in SERVICE_SET}
        if t.get("waitCode") == "":
            del t["waitCode"]
        t["runMode"] = runmode(t["runMode"])
        tasks.append(t)
    return {
        **{
            k: v
            for k, v in struct.items()
            if k
            not in SERVICE_SET
            | {
                "tasks",
                "flowLinks",
                "taskLinks",
                "relations",
                "linkRelations",
                "owners",
                "visitors",
                "parameters",
                "name",
            }
        },
        "owners": sorted(u for u in struct["owners"].split(";") if u),
        "visitors": sorted(u for u in struct["visitors"].split(";") if u),
        "parameters": json.loads(struct["parameters"]),
        "tasks": tasks,
        "relations": sorted(
            (r["sourceTaskName"], r["targetTaskName"], r["rerun"]) for r in struct["relations"]
        ),
        "links": sorted(
            (*links[r["linkId"]], r["targetTaskName"], r["rerun"]) for r in struct["linkRelations"]
        ),
    }


SAMPLES = sorted(SPEC_SAMPLES.glob("*flow*.json"))


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_spec_flow_struct_samples_round_trip(sample: Path) -> None:
    struct = json.loads(sample.read_text())
    wf = flow_struct.workflow_from_flow_struct(struct, name="sample")
    again = flow_struct.flow_struct_from_workflow(wf)
    assert independent_normalize(again) == independent_normalize(struct)
    # and the model survives the trip through a file
    doc = document.document_from_workflow(wf)
    assert document.workflow_from_document(doc, "sample") == wf


def test_spec_sample_reads_as_expected() -> None:
    struct = json.loads((SPEC_SAMPLES / "flow_struct_2_2.json").read_text())
    wf = flow_struct.workflow_from_flow_struct(struct)
    assert wf.name == "nFlow"
    assert wf.schedule.cycle == "day" and wf.schedule.type == "periodic"
    assert wf.visitors == ("alice", "bob")
    assert wf.parameters == (("REPLACE", "lili1"),)
    rf = wf.task("rf")
    assert rf is not None and rf.depends_on == (Dependency(task="tass", rerun=True),)
    tass = wf.task("tass")
    assert tass is not None and tass.depends_on == (Dependency(flow="jin", rerun=False),)


@pytest.mark.parametrize(
    "path",
    find_workflow_files(EXAMPLES) + find_workflow_files(CASES / "valid"),
    ids=lambda p: p.name,
)
def test_files_round_trip_through_the_service_shape(path: Path) -> None:
    doc, problems = read_document(path)
    assert not problems
    wf = document.workflow_from_document(doc.data, path.stem)
    struct = json.loads(json.dumps(flow_struct.flow_struct_from_workflow(wf)))  # really JSON
    back = flow_struct.workflow_from_flow_struct(struct, active=wf.schedule.enabled)
    # ``local`` is git-only: it is not sent, so it cannot come back
    assert back == _without_local(wf)
    # and the pulled document reads back to the same model
    text = dump_document(document.document_from_workflow(wf))
    assert document.workflow_from_document(parse_yaml(text)[0].data, path.stem) == wf


def _without_local(wf: Workflow) -> Workflow:
    from dataclasses import replace

    return replace(wf, tasks=tuple(replace(t, local=None) for t in wf.tasks))


def test_service_quirks_are_read_leniently() -> None:
    struct = {
        "cycle": "H",
        "cron": "0 0 * * * ? *",
        "parameters": [{"key": "A", "value": 1}],
        "alert_mode": "2",
        "owners": ";alice;",
        "visitors": "bob;",
        "type": "1",
        "sync_type": 1,
        "start_time": "2020-01-01",
        "tasks": [
            {
                "task_name": "x",
                "type": "COMMAND",
                "cmd": "echo",
                "timeout": "30",
                "retryLimit": 1.0,
                "asLink": "true",
                "runMode": {"taskMode": 2, "cpu": "1", "memory": 2},
            }
        ],
        "relations": [],
        "flow_links": [],
        "task_links": [],
        "link_relations": [],
    }
    wf = flow_struct.workflow_from_flow_struct(struct, name="q")
    assert wf.alert == "sms" and wf.owners == ("alice",) and wf.visitors == ("bob",)
    assert wf.schedule.start == "2020-01-01" and wf.parameters == (("A", "1"),)
    task = wf.tasks[0]
    assert (task.name, task.timeout, task.retries, task.allow_reference) == ("x", 30, 1, True)
    assert task.run_mode.mode == "multiple" and task.run_mode.cpu == 1.0


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"tasks": "nope"}, "flow.tasks"),
        ({"tasks": [{"name": "a", "timeout": "soon"}]}, "flow.tasks[0].timeout"),
        ({"alertMode": 9, "tasks": []}, "flow.alertMode"),
        ({"parameters": "{not json", "tasks": []}, "flow.parameters"),
        (
            {"linkRelations": [{"linkId": "7", "targetTaskName": "a"}], "tasks": []},
            "flow.linkRelations[0].linkId",
        ),
        ({}, "flow.tasks: missing"),
        ({"tasks": None, "name": "x"}, "flow.tasks: missing"),
    ],
)
def test_unreadable_struct_names_the_field(bad: dict[str, Any], field: str) -> None:
    with pytest.raises(CodecError) as e:
        flow_struct.workflow_from_flow_struct(bad, name="x")
    assert str(e.value).startswith(field)


# -- property tests ---------------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30)
CRONS = {
    "minute": "0 0/5 * * * ? *",
    "hour": "0 15 * * * ? *",
    "day": "0 0 2 * * ? *",
    "week": "0 0 3 ? * MON *",
    "month": "0 0 6 1 * ? *",
}


@st.composite
def workflows(draw: st.DrawFn) -> Workflow:
    task_names = draw(st.lists(names, min_size=0, max_size=8, unique=True))
    tasks = []
    for i, name in enumerate(task_names):
        ups = draw(st.lists(st.sampled_from(task_names[:i]), unique=True)) if i else []
        deps = [Dependency(task=u, rerun=draw(st.booleans())) for u in ups]
        if draw(st.booleans()):
            deps.append(
                Dependency(
                    flow=draw(names),
                    task=draw(st.sampled_from(["", "t1"])),
                    rerun=draw(st.booleans()),
                )
            )
        tasks.append(
            Task(
                name=name,
                type=draw(st.sampled_from(["COMMAND", "DATA_INTEGRATION", "PYTHON"])),
                command=draw(text.filter(str.strip)),  # a blank command is a validate error
                depends_on=document.canonical_dependencies(list(dict.fromkeys(deps))),
                timeout=draw(st.integers(1, 10_000)),
                retries=draw(st.integers(0, 100)),
                retry_interval=draw(st.integers(0, 600)),
                success_code=str(draw(st.integers(-5, 255))),
                allow_reference=draw(st.booleans()),
                run_mode=RunMode(
                    mode=draw(st.sampled_from(["single", "multiple"])),
                    cpu=draw(st.sampled_from([0.1, 0.5, 1.0, 2.0])),
                    memory=draw(st.sampled_from([0.3, 1.0, 4.0])),
                    key_type=draw(st.sampled_from(["none", "file", "custom"])),
                    content=draw(text),
                ),
            )
        )
    stype = draw(st.sampled_from(["periodic", "manual"]))
    cycle = draw(st.sampled_from(sorted(CRONS)))
    schedule = Schedule(
        type=stype,
        cycle=cycle,
        cron=CRONS[cycle] if stype == "periodic" else draw(st.sampled_from(["", CRONS[cycle]])),
        start=draw(st.sampled_from(["1970-01-01", "2024-02-29"])),
        enabled=draw(st.booleans()),
    )
    params = draw(
        st.dictionaries(
            st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), text, max_size=4
        )
    )
    return Workflow(
        name=draw(names),
        description=draw(text),
        owners=tuple(sorted(draw(st.sets(names, max_size=3)))),
        visitors=tuple(sorted(draw(st.sets(names, max_size=3)))),
        alert=draw(st.sampled_from(["none", "email", "sms", "email_and_sms"])),
        parameters=tuple(params.items()),
        sync_type=draw(st.sampled_from(["file", "data"])),
        schedule=schedule,
        tasks=tuple(tasks),
    )


@settings(max_examples=150, deadline=None)
@given(workflows())
def test_generated_workflows_round_trip_and_validate(wf: Workflow) -> None:
    doc = document.document_from_workflow(wf)
    # the pulled file is valid, and reads back to the same model
    parsed, problems = parse_yaml(dump_document(doc))
    assert not problems
    back, file_problems = Validator().validate_document(parsed, "x.yaml", wf.name, ())
    own_flow = any(d.flow == wf.name for t in wf.tasks for d in t.depends_on)
    if not own_flow:
        assert file_problems == []
        assert back == wf
    struct = json.loads(json.dumps(flow_struct.flow_struct_from_workflow(wf)))
    assert flow_struct.workflow_from_flow_struct(struct, active=wf.schedule.enabled) == wf
    assert flow_struct.normalize_flow_struct(struct) == struct

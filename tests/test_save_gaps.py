"""What gitsync's Save keeps that the files do not describe: an edge's cycle gap as the
service has it (the model has none), unless the edge is new or the cycle changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, run_cli, write_target


def test_gitsync_keeps_a_cycle_gap_set_in_the_console_when_it_saves(
    api: Api, engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model has no cycle gap: a Save of another change keeps the service's (as EnOS's
    console set it), and an edge that is new gets the cycle's own."""
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    write_target(repo, engine.url, "gitsync")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    flow_file = repo / "flows" / "gaps.yaml"
    tasks = "tasks:\n  - {name: a, command: echo}\n  - {name: b, command: echo, depends_on: [a]}\n"
    flow_file.write_text("description: one\n" + tasks)
    assert run_cli("apply", "--auto-approve").exit_code == 0
    flow_id = int(api.data("GET", "flows", "getMyFlow", expression="gaps")[0]["flowId"])  # type: ignore[index]
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=flow_id)
    graph = json.loads(detail["graph"])
    graph["relations"][0]["cycleGap"] = "D1"  # as the console would
    body = {
        "id": flow_id,
        "name": "gaps",
        "owners": detail["owner"],
        "visitors": detail["visitor"],
        **{k: detail[k] for k in ("type", "freq", "cycle", "alertMode", "doAs", "startTime")},
        **{k: detail[k] for k in ("active", "parameters", "desc", "queue")},
        **{k: graph[k] for k in ("tasks", "flows", "relations")},
    }
    api.data("POST", "flows", "save", body)
    flow_file.write_text("description: two\n" + tasks)
    assert run_cli("apply", "--auto-approve").exit_code == 0
    after: Any = api.data("GET", "flows", "get", flowId=flow_id)
    assert after["desc"].startswith("two")
    assert [r["cycleGap"] for r in json.loads(after["graph"])["relations"]] == ["D1"]


@pytest.mark.parametrize(
    ("cycle", "gap", "sent"),
    [
        ("day", "D1", "D1"),
        ("day", "D12", "D12"),
        ("hour", "D1", "H0"),  # the cycle changed: the old gap no longer fits
        ("minute", "mi3", "mi3"),
        ("month", "mi3", "M0"),
        ("day", "Dx", "D0"),
        ("day", "", "D0"),
        ("day", None, "D0"),  # an edge the service does not have
    ],
)
def test_save_body_keeps_the_services_gap_when_it_fits_the_cycle(
    cycle: str, gap: str | None, sent: str
) -> None:
    from gitsync.codec import edit_view
    from gitsync.model import Dependency, Schedule, Task, Workflow

    node = {"x": 0.1, "y": 0.2}
    graph = edit_view.Graph(
        flow_id=7,
        active=0,
        do_as="",
        queue="",
        tasks={
            "a": {"taskId": "1", "nodeId": "t_1", **node},
            "b": {"taskId": "2", "nodeId": "t_2", **node},
        },
        flow_refs={},
        task_refs={},
        gaps={} if gap is None else {("t_1", "t_2"): gap},
    )
    wf = Workflow(
        name="w",
        schedule=Schedule(cycle=cycle),
        tasks=(Task(name="a"), Task(name="b", depends_on=(Dependency(task="a"),))),
    )
    assert edit_view.save_body(wf, graph, {})["relations"][0]["cycleGap"] == sent

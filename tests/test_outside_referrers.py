"""Referrers outside the owned root (issue #14, point 3): never changed, named in the plan,
and the retired copy they point at is kept until they move. Through the CLI against the real
engine, its request log saying what was read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from tests.conftest import SPEC_ORG, SPEC_USER, Api, run_cli, simple_flow, write_target

UP = "tasks:\n  - {name: t, command: 'echo up-one', allow_reference: true}\n"
DOWN = "tasks:\n  - {name: d, command: echo, depends_on: [{flow: up}]}\n"
NOTHING_KEPT = "    retention: {versions: 0, days: 0}\n"  # every retired copy is past it at once


@dataclass
class Org:
    repo: Path
    url: str
    log: Path
    api: Api

    def write(self, name: str, text: str) -> Path:
        path = self.repo / "flows" / "team" / f"{name}.yaml"
        path.write_text(text)
        return path

    def ids(self) -> dict[str, int]:
        found: Any = self.api.data("POST", "flows", "search", {})
        return {f["flowName"]: int(f["flowId"]) for f in found}

    def outside(self, name: str, *upstreams: str, task: str = "") -> int:
        """A workflow in other_team (outside the owned root) referencing ``upstreams``, whole
        workflows or, with ``task``, that task of each."""
        kind, source = ("taskLinks", {"sourceTaskName": task}) if task else ("flowLinks", {})
        links = [
            {"linkId": str(i), "sourceFlowName": up, **source} for i, up in enumerate(upstreams)
        ]
        relations = [
            {"linkId": str(i), "targetTaskName": "o", "rerun": False} for i in range(len(links))
        ]
        struct = {**simple_flow("o"), kind: links, "linkRelations": relations}
        directory = next(
            (str(c["key"]) for c in self.tree()["children"] if c["title"] == "other_team"), None
        )
        return self.api.import_flow(name, struct, directory or self.api.mkdir("other_team"))

    def tree(self) -> dict[str, Any]:
        found: Any = self.api.data("GET", "directories", "listWorkFlowDirs")
        return found[0]  # type: ignore[no-any-return]

    def graph(self, flow_id: int) -> dict[str, Any]:
        detail: Any = self.api.data("GET", "flows", "get", flowId=flow_id)
        return json.loads(detail["graph"])  # type: ignore[no-any-return]

    def drop_references(self, flow_id: int) -> None:
        """The outside team's own Save (as the console makes it): no reference nodes left."""
        detail: Any = self.api.data("GET", "flows", "loadForEdit", flowId=flow_id)
        found = json.loads(detail["graph"])
        references = {f["nodeId"] for f in found["flows"]}
        body = {
            "id": str(flow_id),
            **{k: detail[k] for k in ("type", "freq", "cycle", "alertMode", "doAs", "active")},
            **{k: detail[k] for k in ("desc", "parameters")},
            "name": detail["flowName"],
            "owners": detail["owner"],
            "visitors": detail["visitor"],
            "tasks": found["tasks"],
            "flows": [],
            "relations": [r for r in found["relations"] if r["source"] not in references],
        }
        self.api.data("POST", "flows", "save", body)

    def exports(self) -> list[int]:
        """The flow ids exported since the log was last cleared."""
        if not self.log.exists():
            return []
        rows = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [int(r["flowId"]) for r in rows if r["action"] == "export"]

    def forget(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    log = tmp_path / "requests.jsonl"
    repo = tmp_path / "repo"
    (repo / "flows" / "team").mkdir(parents=True)
    users = [User(SPEC_USER, SPEC_ORG, "alice")]
    with RunningEngine(EngineOptions(tmp_path / "engine", users=users, request_log=log)) as engine:
        write_target(repo, engine.url, "gitsync")
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "test")
        api = Api(engine.url)
        yield Org(repo, engine.url, log, api)
        api.http.close()


def apply_ok(*args: str) -> str:
    result = run_cli("apply", "--auto-approve", *args)
    assert result.exit_code == 0, result.output
    return result.output


def retain_nothing(org: Org) -> None:
    config = org.repo / "gitsync.yaml"
    config.write_text(config.read_text() + NOTHING_KEPT)


def unnamed(export: Any) -> Any:
    """An Export without the names its links carry (the service names them as they are now)."""
    links = {
        kind: [{k: v for k, v in link.items() if k != "sourceFlowName"} for link in export[kind]]
        for kind in ("flowLinks", "taskLinks")
    }
    return {**export, **links}


def named(where: str, old: str, copy: str) -> str:
    return (
        f"{where} (outside the owned root) references {old}: it is not changed and keeps "
        f"pointing at the retired copy {copy}, which is kept until it no longer does"
    )


def kept(copy: str, where: str) -> str:
    return (
        f"team/{copy}: retired copy past its retention, kept: {where} (outside the owned root) "
        "still references it"
    )


# -- named in the plan, never changed, the copy kept until they move ------------------------


@pytest.mark.parametrize("task", ["", "t"])
def test_a_replaced_workflow_referenced_from_outside_keeps_its_copy_until_they_move(
    org: Org, task: str
) -> None:
    retain_nothing(org)
    path = org.write("up", UP)
    apply_ok()
    old = org.ids()["up"]
    theirs = org.outside("theirs", "up", task=task)
    before = org.api.data("GET", "flows", "export", flowId=theirs)
    node = org.graph(theirs)["flows"][0]["flowId"]  # the old flow's id, or its task's
    assert node == str(old) or task
    path.write_text(UP.replace("up-one", "up-two"))
    copy = f"up__retired_{old}"
    note = named("Workflow/other_team/theirs", "up", copy)

    plan = run_cli("plan")
    assert "± replace  team/up" in plan.output and note in plan.output, plan.output
    assert note in json.loads(run_cli("plan", "-o", "json").output)["notes"]
    assert note in run_cli("plan", "-o", "markdown").output
    apply_ok()
    # never changed: the same definition, still pointing at the retired copy by id
    after: Any = org.api.data("GET", "flows", "export", flowId=theirs)
    assert unnamed(after) == unnamed(before)
    assert [link["sourceFlowName"] for link in after["flowLinks"] + after["taskLinks"]] == [copy]
    assert org.graph(theirs)["flows"][0]["flowId"] == node

    # past its retention, still referenced: kept, and a note says by whom
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert "delete" not in plan.output and kept(copy, "Workflow/other_team/theirs") in plan.output
    apply_ok()
    assert org.ids()[copy] == old

    # they move: the next apply deletes it
    org.drop_references(theirs)
    plan = run_cli("plan")
    assert f"- delete   team/{copy}" in plan.output, plan.output
    apply_ok()
    assert copy not in org.ids()
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0


def test_a_pruned_workflow_referenced_from_outside_is_named(org: Org) -> None:
    org.write("up", UP)
    org.write("other", "tasks: [{name: a, command: echo}]\n")
    org.write("third", "tasks: [{name: a, command: echo}]\n")
    apply_ok()
    old = org.ids()["up"]
    org.outside("theirs", "up")
    org.outside("again", "up")
    (org.repo / "flows" / "team" / "up.yaml").unlink()
    plan = run_cli("plan", "--prune", "--allow-mass-delete")
    assert "- retire   team/up" in plan.output, plan.output
    for where in ("Workflow/other_team/again", "Workflow/other_team/theirs"):
        assert named(where, "up", f"up__retired_{old}") in plan.output, plan.output
    apply_ok("--prune", "--allow-mass-delete")
    assert org.ids()[f"up__retired_{old}"] == old


def test_outside_referrers_of_other_workflows_are_not_named(org: Org) -> None:
    path = org.write("up", UP)
    org.write("else", "tasks: [{name: a, command: echo, allow_reference: true}]\n")
    apply_ok()
    org.outside("theirs", "else")
    path.write_text(UP.replace("up-one", "up-two"))
    plan = run_cli("plan")
    assert "± replace  team/up" in plan.output and "theirs" not in plan.output, plan.output


# -- the 62104 fallback: held, then deleted once they move -----------------------------------


def test_a_held_copy_is_deleted_by_a_later_apply_once_nothing_outside_references_it(
    org: Org,
) -> None:
    """The outside referrer could not be read (a note says so), so the delete is planned and
    refused (62104): the copy is held. Once readable, it is named; once it moves, deleted."""
    retain_nothing(org)
    path = org.write("up", UP)
    apply_ok()
    old = org.ids()["up"]
    copy = f"up__retired_{old}"
    theirs = org.outside("theirs", "up")
    path.write_text(UP.replace("up-one", "up-two"))
    apply_ok()

    def unreadable(key: str, answer: Any) -> Any:
        data = answer.get("data")
        if key.endswith("action=export") and isinstance(data, dict) and data["name"] == "theirs":
            return {**answer, "data": {**data, "flowLinks": [{"linkId": "0"}]}}
        return answer

    with RunningProxy(org.url, Faults(rewrite=unreadable)) as proxy:
        write_target(org.repo, proxy.url, "gitsync")
        retain_nothing(org)
        plan = run_cli("plan")
        assert f"- delete   team/{copy}" in plan.output, plan.output
        assert (
            "Workflow/other_team/theirs (outside the owned root) cannot be read "
            "(flow.flowLinks[0].sourceFlowName: missing)"
        ) in plan.output
        output = apply_ok()
    assert "kept: workflows outside the owned root still reference it (62104); held" in output
    write_target(org.repo, org.url, "gitsync")
    retain_nothing(org)
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert kept(copy, "Workflow/other_team/theirs") in plan.output
    assert org.ids()[copy] == old

    org.drop_references(theirs)
    plan = run_cli("plan")
    assert f"- delete   team/{copy}" in plan.output, plan.output
    apply_ok()
    assert copy not in org.ids()


def _data(change: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda answer: {**answer, "data": change(answer["data"])}


ODD: list[tuple[Callable[[Any], Any], str]] = [  # Export's answer -> what the note says
    (_data(lambda data: None), "Export Flow"),
    (_data(lambda data: [data]), "Export Flow"),
    (_data(lambda data: {**data, "flowLinks": [None]}), "flow.flowLinks[0]: expected an object"),
    (_data(lambda data: {**data, "taskLinks": {"a": 1}}), "flow.taskLinks: expected a list"),
    (
        _data(lambda data: {**data, "flowLinks": [{"linkId": None, "sourceFlowName": None}]}),
        "flow.flowLinks[0].sourceFlowName: missing",
    ),
    (_data(lambda data: {**data, "flowLinks": "not json ["}), "flow.flowLinks"),
    # gone between the listing and the Export, or not for this user to read
    (lambda answer: {"code": 62101, "msg": "flow not found", "data": None}, "flow not found"),
    # no envelope at all for this one flow while the others answer: a note, not the end
    (lambda answer: ["no envelope"], "malformed envelope"),
]


def test_odd_export_answers_of_outside_flows_are_notes_not_crashes(org: Org) -> None:
    path = org.write("up", UP)
    apply_ok()
    org.outside("theirs", "up")
    org.outside("fine", "up")
    path.write_text(UP.replace("up-one", "up-two"))
    odd: list[Callable[[Any], Any]] = []

    def rewrite(key: str, answer: Any) -> Any:
        data = answer.get("data")
        if key.endswith("action=export") and isinstance(data, dict) and data["name"] == "theirs":
            return odd[0](answer)
        return answer

    with RunningProxy(org.url, Faults(rewrite=rewrite)) as proxy:
        write_target(org.repo, proxy.url, "gitsync")
        for change, said in ODD:
            odd[:] = [change]
            plan = run_cli("plan", "-o", "json")
            assert plan.exit_code == 0, plan.output
            notes = json.loads(plan.output)["notes"]
            unread = [n for n in notes if "cannot be read" in n]
            assert len(unread) == 1 and said in unread[0], notes
            assert unread[0].startswith("Workflow/other_team/theirs (outside the owned root)")
            assert any(n.startswith("Workflow/other_team/fine (outside") for n in notes), notes


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_plan_stopped_while_it_reads_outside_ends_without_a_traceback(
    org: Org, sig: signal.Signals, code: int
) -> None:
    path = org.write("up", UP)
    apply_ok()
    theirs = {org.outside(f"theirs{i}", "up") for i in range(4)}
    path.write_text(UP.replace("up-one", "up-two"))
    arrived, release = threading.Event(), threading.Event()

    def hold(number: int, request: Any) -> None:  # the proxy waits, until the signal is sent
        query = request.query_params
        if query.get("action") == "export" and int(query.get("flowId", 0)) in theirs:
            arrived.set()
            release.wait(30)

    with RunningProxy(org.url, Faults(on_request=hold)) as proxy:
        write_target(org.repo, proxy.url, "gitsync")
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitsync", "plan"],
            cwd=org.repo,
            env={**os.environ, "GITSYNC_TARGET": "test"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert arrived.wait(60), "the plan never read a flow outside the root"
            proc.send_signal(sig)
        finally:
            release.set()
            out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, (proc.returncode, out, err)
    assert "Traceback" not in out + err and err.rstrip().endswith(f"({sig.name})."), err


# -- reads: only a plan that retires or deletes reads outside the root -------------------------


def test_only_a_plan_that_retires_or_deletes_reads_the_flows_outside(org: Org) -> None:
    path = org.write("up", UP)
    org.write("down", DOWN)
    apply_ok()
    outside = {org.outside(f"theirs{i}", "up") for i in range(3)}
    org.api.import_flow("unrelated", simple_flow("x"), org.api.mkdir("elsewhere"))
    outside.add(org.ids()["unrelated"])
    inside = {org.ids()["up"], org.ids()["down"]}

    org.forget()
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0  # no change
    assert sorted(org.exports()) == sorted(inside)
    path.write_text("description: new\n" + UP)  # an update: a Save
    org.forget()
    assert "~ update   team/up" in run_cli("plan").output
    assert sorted(org.exports()) == sorted(inside)

    path.write_text(UP.replace("up-one", "up-two"))  # a replace: each outside flow once
    org.forget()
    plan = run_cli("plan")
    assert "± replace  team/up" in plan.output
    assert sorted(org.exports()) == sorted(inside | outside)


def test_a_service_that_stops_answering_while_outside_flows_are_read_is_an_error(
    org: Org,
) -> None:
    """No usable answer at all (a malformed envelope, after the client's retries) is no note:
    the plan cannot be trusted, so it stops with the error, as the reads of the root do."""
    path = org.write("up", UP)
    apply_ok()
    org.outside("theirs", "up")
    path.write_text(UP.replace("up-one", "up-two"))

    def broken(key: str, answer: Any) -> Any:
        data = answer.get("data")
        if key.endswith("action=export") and isinstance(data, dict) and data["name"] == "theirs":
            return ["no envelope"]
        return answer

    with RunningProxy(org.url, Faults(rewrite=broken)) as proxy:
        write_target(org.repo, proxy.url, "gitsync")
        plan = run_cli("plan")
    assert plan.exit_code == 1, plan.output
    assert plan.output.startswith("error: ") and "Traceback" not in plan.output, plan.output
    assert "export" in plan.output.lower(), plan.output
    assert "Workflow/other_team/theirs (outside the owned root)" in plan.output, plan.output

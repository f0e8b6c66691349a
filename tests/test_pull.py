"""pull: the owned subtree as files, with no loss: pull then plan shows no changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitsync import codec
from gitsync.engine.server import RunningEngine
from gitsync.files import find_workflow_files, read_document
from tests.conftest import EXAMPLES, SPEC_SAMPLES, Api, run_cli, write_target


@pytest.fixture
def repo(tmp_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    write_target(path, engine.url, "team/flows")
    monkeypatch.chdir(path)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    return path


def _dirs(api: Api, *path: str) -> str:
    """Create Workflow/<path> with plain API calls; returns the last directory's id."""
    parent = api.root()
    for name in path:
        answer = api.call("POST", "directories", "create", {"dirName": name, "parentId": parent})
        if answer["code"] == 0:
            parent = answer["data"]["dirId"]
        else:
            tree = api.data("GET", "directories", "listWorkFlowDirs")[0]
            node = tree
            for part in path[: path.index(name) + 1]:
                node = next(c for c in node["children"] if c.get("title") == part)
            parent = node["key"]
    return parent


def test_pull_then_plan_shows_no_changes_for_every_example(repo: Path, api: Api) -> None:
    for path in find_workflow_files(EXAMPLES):
        doc, _ = read_document(path)
        wf = codec.workflow_from_document(doc.data, path.stem)
        directory = path.parent.relative_to(EXAMPLES).parts
        flow_id = api.import_flow(
            path.stem, codec.flow_struct_from_workflow(wf), _dirs(api, "team", "flows", *directory)
        )
        if wf.schedule.enabled:
            api.data("POST", "flows", "enable", {"flowId": flow_id})
    result = run_cli("pull")
    assert result.exit_code == 0, result.output
    assert "Pulled 6 written, 0 unchanged, 0 kept" in result.output
    pulled = sorted(p.relative_to(repo / "flows") for p in (repo / "flows").rglob("*.yaml"))
    assert pulled == sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.yaml"))
    assert run_cli("validate").exit_code == 0
    plan = run_cli("plan", "--prune", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    # every pulled file says the same as the example it came from
    for path in EXAMPLES.rglob("*.yaml"):
        mine = read_document(path)[0].data
        theirs = read_document(repo / "flows" / path.relative_to(EXAMPLES))[0].data
        assert codec.workflow_from_document(theirs, path.stem) == codec.workflow_from_document(
            mine, path.stem
        )


def test_pull_then_plan_shows_no_changes_for_the_spec_samples(repo: Path, api: Api) -> None:
    root = _dirs(api, "team", "flows")
    upstream = {
        "cycle": "D",
        "cron": "0 0 0 * * ? *",
        "type": 1,
        "tasks": [{"name": "j", "type": "COMMAND", "cmd": "echo j", "runMode": "{}"}],
    }
    api.import_flow("jin", upstream, root)
    sample = json.loads((SPEC_SAMPLES / "flow_struct_2_2.json").read_text())
    api.import_flow("nFlow", sample, _dirs(api, "team", "flows", "spec"))
    request = json.loads((SPEC_SAMPLES / "import_3_3_request.json").read_text())
    api.import_flow(request["flowName"], request["flowJson"], root)
    result = run_cli("pull")
    assert result.exit_code == 0, result.output
    text = (repo / "flows/spec/nFlow.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=")
    for fragment in (
        "visitors:\n- alice\n- bob",
        "REPLACE: lili1",
        "alert: email_and_sms",
        "- flow: jin",
        "depends_on:\n  - tass",
    ):
        assert fragment in text, fragment
    assert "submitter" not in text and "flowId" not in text
    outuser = (repo / "flows/outuser.yaml").read_text()
    assert "type: DATA_INTEGRATION" in outuser and "allow_reference: true" in outuser
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output


def test_pull_never_overwrites_a_local_edit_without_force(repo: Path, api: Api) -> None:
    root = _dirs(api, "team", "flows")
    api.import_flow(
        "one",
        {
            "cycle": "D",
            "type": 0,
            "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a", "runMode": "{}"}],
        },
        root,
    )
    assert run_cli("pull").exit_code == 0
    target = repo / "flows/one.yaml"
    # the same meaning in another layout is left alone
    target.write_text("# my comment\ntasks: [{name: a, command: echo a}]\n")
    again = run_cli("pull")
    assert again.exit_code == 0 and "1 unchanged" in again.output
    assert target.read_text().startswith("# my comment")
    target.write_text("tasks: [{name: a, command: echo changed}]\n")
    refused = run_cli("pull")
    assert refused.exit_code == 1
    assert "differs   flows/one.yaml (kept; --force overwrites it)" in refused.output
    assert "echo changed" in target.read_text()
    forced = run_cli("pull", "--force")
    assert forced.exit_code == 0 and "command: echo a" in target.read_text()

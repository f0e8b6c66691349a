"""pull: the owned subtree as files, with no loss: pull then plan shows no changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitsync.codec import document, flow_struct
from gitsync.engine.server import RunningEngine
from gitsync.files import find_workflow_files, read_document
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_SAMPLES, Api, run_cli, write_target


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
        wf = document.workflow_from_document(doc.data, path.stem)
        directory = path.parent.relative_to(EXAMPLES).parts
        flow_id = api.import_flow(
            path.stem,
            flow_struct.flow_struct_from_workflow(wf),
            _dirs(api, "team", "flows", *directory),
        )
        if wf.schedule.enabled:
            api.data("POST", "flows", "enable", {"flowId": flow_id})
    result = run_cli("pull")
    assert result.exit_code == 0, result.output
    assert "Pulled 6 written, 0 unchanged, 0 kept" in result.output
    pulled = sorted(p.relative_to(repo / "flows") for p in (repo / "flows").rglob("*.yaml"))
    assert pulled == sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*.yaml"))
    assert run_cli("validate").exit_code == 0
    _adopt_then_no_changes(6)
    # every pulled file says the same as the example it came from
    for path in EXAMPLES.rglob("*.yaml"):
        mine = read_document(path)[0].data
        theirs = read_document(repo / "flows" / path.relative_to(EXAMPLES))[0].data
        assert document.workflow_from_document(
            theirs, path.stem
        ) == document.workflow_from_document(mine, path.stem)


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
    _adopt_then_no_changes(3)


def _adopt_then_no_changes(count: int) -> None:
    """Pulled workflows made outside gitsync are the same as their files: the plan adopts
    them (a change, though nothing else differs); after that apply it is empty."""
    plan = run_cli("plan", "--prune", "--detailed-exitcode")
    assert plan.exit_code == 2, plan.output
    assert plan.output.splitlines()[0].endswith(f": {count} to adopt."), plan.output
    assert run_cli("apply", "--auto-approve").exit_code == 0
    again = run_cli("plan", "--prune", "--detailed-exitcode")
    assert again.exit_code == 0, again.output


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


# -- names from the service are untrusted ----------------------------------------------------

ONE_TASK = {"cycle": "D", "type": 0, "tasks": [{"name": "a", "type": "COMMAND", "cmd": "echo a"}]}


def _plant_directory(engine: RunningEngine, parent: str, name: str) -> str:
    """A directory the engine's API refuses, written straight into its store: the real
    service may hold names the engine does not accept."""
    dir_id = engine.engine.store.create_directory(SPEC_ORG, parent, name)
    assert dir_id is not None
    return dir_id


def _outside(tmp_path: Path, repo: Path) -> list[Path]:
    """Every YAML file under tmp_path that is not inside the repository's flows folder."""
    flows = (repo / "flows").resolve()
    found = [p for p in tmp_path.rglob("*.yaml") if not p.resolve().is_relative_to(flows)]
    return [p for p in found if p != repo / "gitsync.yaml"]


@pytest.mark.parametrize("evil", ["..", ".", ".hidden"])
def test_pull_skips_a_directory_the_files_cannot_hold(
    evil: str, tmp_path: Path, repo: Path, api: Api, engine: RunningEngine
) -> None:
    root = _dirs(api, "team", "flows")
    deep = _plant_directory(engine, _plant_directory(engine, root, evil), "..")
    api.import_flow("zz_escape", ONE_TASK, deep)
    api.import_flow("fine", ONE_TASK, root)
    result = run_cli("pull")
    assert result.exit_code == 1, result.output
    assert f"skipped   {evil}/../zz_escape: its directory name '{evil}'" in result.output
    assert "Pulled 1 written, 0 unchanged, 0 kept, 1 skipped" in result.output
    assert (repo / "flows" / "fine.yaml").is_file()
    assert _outside(tmp_path, repo) == []
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "a\\b", "x\x1b[2J", "/abs", "ok\x00"])
def test_pull_skips_a_workflow_name_the_files_cannot_hold(
    name: str, tmp_path: Path, repo: Path, api: Api, engine: RunningEngine
) -> None:
    root = _dirs(api, "team", "flows")
    answer = api.call(
        "POST", "flows", "import", {"flowName": name, "dirId": root, "flowJson": ONE_TASK}
    )
    assert answer["code"] == 62102, answer  # the engine refuses the name through the API
    flow_id = api.import_flow("placeholder", ONE_TASK, root)
    with engine.engine.store.transaction() as db:  # the real service might hold it anyway
        db.execute("UPDATE flows SET name = ? WHERE id = ?", (name, flow_id))
    result = run_cli("pull")
    assert result.exit_code == 1, result.output
    assert "skipped   " in result.output and "its workflow name" in result.output
    assert "\x1b" not in result.output and "\x00" not in result.output
    assert _outside(tmp_path, repo) == [] and not list((repo / "flows").rglob("*.yaml"))


def test_pull_skips_names_that_differ_only_in_case(repo: Path, api: Api) -> None:
    root = _dirs(api, "team", "flows")
    api.import_flow("one", ONE_TASK, _dirs(api, "team", "flows", "Sales"))
    api.import_flow("two", ONE_TASK, _dirs(api, "team", "flows", "sales"))
    api.import_flow("Report", ONE_TASK, root)
    api.import_flow("report", ONE_TASK, _dirs(api, "team", "flows", "x"))  # no clash: other folder
    api.import_flow("three", ONE_TASK, _dirs(api, "team", "flows", "three.yaml"))
    api.import_flow("three.yaml", ONE_TASK, root)
    result = run_cli("pull")
    assert result.exit_code == 1, result.output
    assert "skipped   Sales/one: the folders Sales and sales differ only in case" in result.output
    assert "skipped   sales/two: the folders Sales and sales differ only in case" in result.output
    assert "skipped   three.yaml/three" not in result.output
    written = sorted(str(p.relative_to(repo / "flows")) for p in (repo / "flows").rglob("*.yaml"))
    assert "Report.yaml" in written and "x/report.yaml" in written


def test_pull_never_writes_through_a_link_out_of_the_flows_folder(
    tmp_path: Path, repo: Path, api: Api
) -> None:
    api.import_flow("one", ONE_TASK, _dirs(api, "team", "flows", "linked"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "flows").mkdir()
    (repo / "flows" / "linked").symlink_to(elsewhere)
    result = run_cli("pull", "--force")
    assert result.exit_code == 1, result.output
    assert "skipped   linked/one.yaml: a link in its folder leads outside" in result.output
    assert list(elsewhere.iterdir()) == []


def test_pull_writes_multi_line_text_as_blocks(repo: Path, api: Api) -> None:
    command = "set -e\nfor f in a b; do\n  echo $f\ndone\n"
    wf = document.workflow_from_document(
        {"description": "two\nlines", "tasks": [{"name": "t", "command": command}]}, "multi"
    )
    api.import_flow("multi", flow_struct.flow_struct_from_workflow(wf), _dirs(api, "team", "flows"))
    assert run_cli("pull").exit_code == 0
    text = (repo / "flows" / "multi.yaml").read_text()
    assert "description: |-\n  two\n  lines\n" in text, text
    assert "  command: |\n    set -e\n    for f in a b; do\n      echo $f\n    done\n" in text
    assert read_document(repo / "flows" / "multi.yaml")[0].data["tasks"][0]["command"] == command


def test_the_engine_refuses_names_the_files_cannot_hold(api: Api) -> None:
    for name in ("..", ".", ".x", "a/b"):
        answer = api.call(
            "POST", "directories", "create", {"dirName": name, "parentId": api.root()}
        )
        assert answer["code"] == 62102, (name, answer)
        answer = api.call(
            "POST", "flows", "import", {"flowName": name, "dirId": api.root(), "flowJson": ONE_TASK}
        )
        assert answer["code"] == 62102, (name, answer)


def test_plan_shows_names_from_the_service_escaped(
    repo: Path, api: Api, engine: RunningEngine
) -> None:
    root = _dirs(api, "team", "flows")
    flow_id = api.import_flow("placeholder", ONE_TASK, root)
    with engine.engine.store.transaction() as db:
        db.execute("UPDATE flows SET name = ? WHERE id = ?", ("x\x1b]0;T\x07\nforged", flow_id))
    (repo / "flows").mkdir()
    for output in ("text", "markdown"):
        result = run_cli("plan", "-o", output)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\x07" not in result.output
        assert "\nforged" not in result.output and "\\nforged" in result.output

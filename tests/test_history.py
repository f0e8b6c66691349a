"""Changes that keep history, as a user makes them on the engine over HTTP: renames in place,
replaces that retire the old flow (runs and logs stay), references that follow a replace,
workflows without a file, adoption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gitsync.engine.server import RunningEngine
from tests.conftest import Api, run_cli, simple_flow, write_target

UP = "tasks:\n  - {name: t, command: 'echo up-one', allow_reference: true}\n"
DAILY = "schedule: {cycle: day, cron: '0 0 2 * * ? *'}\n"


@pytest.fixture
def repo(tmp_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch) -> Path:
    repo = tmp_path / "repo"
    (repo / "flows" / "team").mkdir(parents=True)
    write_target(repo, engine.url, "gitsync")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GITSYNC_TARGET", "test")
    return repo


def write(repo: Path, name: str, text: str) -> Path:
    path = repo / "flows" / "team" / f"{name}.yaml"
    path.write_text(text)
    return path


def apply_ok() -> str:
    result = run_cli("apply", "--auto-approve")
    assert result.exit_code == 0, result.output
    return result.output


def assert_no_changes() -> None:
    result = run_cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output


def ids(api: Api) -> dict[str, int]:
    return {f["flowName"]: int(f["flowId"]) for f in api.data("POST", "flows", "search", {})}  # type: ignore[union-attr]


def run(name: str) -> str:
    result = run_cli("run", f"flows/team/{name}.yaml")
    assert result.exit_code == 0, result.output
    return result.output.splitlines()[-1].split("(")[1].rstrip(")")


def graph(api: Api, flow_id: int) -> dict[str, Any]:
    detail: Any = api.data("GET", "flows", "get", flowId=flow_id)
    found: dict[str, Any] = json.loads(detail["graph"])
    return found


def test_a_renamed_file_is_one_rename_that_keeps_the_flow_and_its_runs(
    repo: Path, api: Api
) -> None:
    write(repo, "old", DAILY + "tasks:\n  - {name: a, command: 'echo hello'}\n")
    apply_ok()
    before = ids(api)["old"]
    instance = run("old")
    (repo / "flows/team/old.yaml").rename(repo / "flows/team/new.yaml")
    plan = run_cli("plan", "--detailed-exitcode")  # no --prune
    assert plan.exit_code == 2, plan.output
    lines = plan.output.splitlines()
    assert lines[0].endswith(": 1 to rename."), plan.output
    assert lines[2] == "~ rename   team/new"
    assert "renamed from old (same task bodies)" in plan.output
    apply_ok()
    now = ids(api)
    assert now["new"] == before and "old" not in now  # the old name is not left enabled
    assert api.data("GET", "flows", "get", flowId=before)["active"] == 1  # type: ignore[index]
    assert_no_changes()
    listed = run_cli("instances", "new")
    assert instance in listed.output and "current" in listed.output, listed.output
    logs = run_cli("logs", instance)
    assert logs.exit_code == 0 and "hello" in logs.output


def test_a_task_rename_is_saved_in_place(repo: Path, api: Api) -> None:
    two = (
        "tasks:\n  - {name: a, command: 'echo a'}\n"
        "  - {name: b, command: 'echo b', depends_on: [a]}\n"
    )
    write(repo, "f", two)
    apply_ok()
    tasks = {t["taskName"]: t["taskId"] for t in graph(api, ids(api)["f"])["tasks"]}
    write(repo, "f", two.replace("name: a,", "name: first,").replace("[a]", "[first]"))
    plan = run_cli("plan")
    assert "~ update   team/f" in plan.output and "task renamed: a -> first" in plan.output
    apply_ok()
    assert_no_changes()
    after = {t["taskName"]: t["taskId"] for t in graph(api, ids(api)["f"])["tasks"]}
    assert after == {"first": tasks["a"], "b": tasks["b"]}


def test_a_rename_with_a_task_rename_and_other_saveable_changes_is_one_save(
    repo: Path, api: Api
) -> None:
    write(repo, "old", "tasks:\n  - {name: a, command: 'echo a'}\n")
    apply_ok()
    before = ids(api)["old"]
    (repo / "flows/team/old.yaml").unlink()
    write(repo, "new", "description: moved on\ntasks:\n  - {name: z, command: 'echo a'}\n")
    plan = run_cli("plan")
    assert "~ rename   team/new" in plan.output and "task renamed: a -> z" in plan.output
    apply_ok()
    assert ids(api)["new"] == before
    assert_no_changes()


def test_an_ambiguous_rename_is_not_guessed_and_renamed_from_decides(repo: Path, api: Api) -> None:
    body = "tasks:\n  - {name: a, command: 'echo same'}\n"
    write(repo, "one", body)
    write(repo, "two", body)
    apply_ok()
    before = ids(api)
    for name in ("one", "two"):
        (repo / f"flows/team/{name}.yaml").unlink()
    write(repo, "uno", body)
    write(repo, "dos", body)
    plan = run_cli("plan")
    assert "2 to create" in plan.output and "rename" not in plan.output.splitlines()[0]
    assert "gitsync does not guess: add `renamed_from: <old name>`" in plan.output
    write(repo, "uno", "renamed_from: one\n" + body)
    write(repo, "dos", "renamed_from: two\n" + body)
    plan = run_cli("plan")
    assert plan.output.splitlines()[0].endswith(": 2 to rename."), plan.output
    apply_ok()
    after = ids(api)
    assert after["uno"] == before["one"] and after["dos"] == before["two"]
    assert_no_changes()


def test_a_replace_retires_the_old_flow_with_its_runs_and_logs(repo: Path, api: Api) -> None:
    path = write(
        repo, "etl", DAILY + "description: mine\ntasks:\n  - {name: a, command: 'echo one'}\n"
    )
    apply_ok()
    old = ids(api)["etl"]
    instance = run("etl")
    path.write_text(path.read_text().replace("echo one", "echo two"))
    plan = run_cli("plan")
    assert "± replace  team/etl" in plan.output
    assert f"The old one becomes 'etl__retired_{old}'" in plan.output
    apply_ok()
    assert_no_changes()
    now = ids(api)
    assert now["etl"] != old and now[f"etl__retired_{old}"] == old
    retired: Any = api.data("GET", "flows", "get", flowId=old)
    assert retired["active"] == 0
    assert retired["desc"].startswith("mine\n\n[managed by gitsync; retired ")
    assert retired["desc"].endswith("; successor: etl]")
    new_run = run("etl")
    listed = run_cli("instances", "etl")
    rows = [line for line in listed.output.splitlines() if "-" in line.split(" ")[0]]
    assert [r.split()[0] for r in rows] == [new_run, instance]  # newest first
    assert rows[0].endswith("current") and f"(flow {old})" in rows[1], listed.output
    logs = run_cli("logs", instance)
    assert logs.exit_code == 0 and "one" in logs.output
    pulled = run_cli("pull", "--force")
    assert pulled.exit_code == 0 and "retired" not in pulled.output  # no file for a retired copy
    assert sorted(p.name for p in (repo / "flows/team").iterdir()) == ["etl.yaml"]


@pytest.mark.parametrize("ref", ["{flow: up}", "{flow: up, task: t}"])
def test_replacing_a_referenced_workflow_converges_in_one_apply(
    repo: Path, api: Api, ref: str
) -> None:
    path = write(repo, "up", UP)
    write(repo, "down", f"tasks:\n  - {{name: d, command: 'echo d', depends_on: [{ref}]}}\n")
    apply_ok()
    path.write_text(UP.replace("up-one", "up-two"))
    plan = run_cli("plan")
    assert "± replace  team/up" in plan.output and "~ repoint  team/down" in plan.output
    apply_ok()
    assert_no_changes()
    now = ids(api)
    node = graph(api, now["down"])["flows"][0]
    if "task" in ref:
        new_task = graph(api, now["up"])["tasks"][0]["taskId"]
        assert node["flowName"] == f"{new_task}(t)"
    else:
        assert node["flowId"] == str(now["up"])


def test_removing_a_reference_and_changing_the_referenced_workflow_is_one_apply(
    repo: Path, api: Api
) -> None:
    path = write(repo, "up", UP)
    write(
        repo,
        "down",
        "tasks:\n  - {name: d, command: 'echo d', depends_on: [{flow: up, task: t}]}\n",
    )
    apply_ok()
    path.write_text(UP.replace("up-one", "up-two"))
    write(repo, "down", "tasks:\n  - {name: d, command: 'echo d'}\n")
    apply_ok()
    assert_no_changes()


def test_a_workflow_without_a_file_is_always_listed(repo: Path, api: Api) -> None:
    write(repo, "keep", "tasks:\n  - {name: a, command: 'echo keep'}\n")
    write(repo, "gone", DAILY + "tasks:\n  - {name: a, command: 'echo gone'}\n")
    apply_ok()
    (repo / "flows/team/gone.yaml").unlink()
    plan = run_cli("plan", "-o", "json", "--detailed-exitcode")
    assert plan.exit_code == 2
    listed = json.loads(plan.output)
    assert listed["has_changes"] and listed["summary"]["no_file"] == 1
    (change,) = listed["changes"]
    assert change["action"] == "no_file" and "keeps firing" in change["note"]


def test_an_unmarked_workflow_that_matches_its_file_is_adopted(repo: Path, api: Api) -> None:
    write(repo, "made", "tasks:\n  - {name: a, command: 'echo a'}\n")
    apply_ok()
    flow_id = ids(api)["made"]
    body: Any = api.data("GET", "flows", "export", flowId=flow_id)
    api.import_flow("console", {**body, "desc": ""}, dir_id=_dir_of(api, flow_id))
    write(repo, "console", "tasks:\n  - {name: a, command: 'echo a'}\n")
    plan = run_cli("plan", "-o", "json")
    listed = json.loads(plan.output)["changes"]
    actions = {"/".join([*c["directory"], c["workflow"]]): c["action"] for c in listed}
    assert actions == {"team/console": "adopt"}
    apply_ok()
    assert_no_changes()


def _dir_of(api: Api, flow_id: int) -> str:
    stack: list[Any] = list(api.data("GET", "directories", "listWorkFlowDirs"))  # type: ignore[arg-type]
    while stack:
        node = stack.pop()
        for child in node.get("children") or []:
            if child["isDirectory"]:
                stack.append(child)
            elif child["key"] == flow_id:
                return str(node["key"])
    raise AssertionError(flow_id)


def test_outside_references_are_not_needed_to_replace(repo: Path, api: Api) -> None:
    """A workflow outside the owned root that references an owned one keeps the retired copy;
    the replace goes through (no Delete is refused)."""
    path = write(repo, "up", UP)
    apply_ok()
    old = ids(api)["up"]
    outside = {
        **simple_flow("o"),
        "flowLinks": [{"linkId": "0", "sourceFlowName": "up"}],
        "linkRelations": [{"linkId": "0", "targetTaskName": "o", "rerun": False}],
    }
    other = api.import_flow("theirs", outside, api.mkdir("other_team"))
    path.write_text(UP.replace("up-one", "up-two"))
    apply_ok()
    assert_no_changes()
    assert graph(api, other)["flows"][0]["flowId"] == str(old)


@pytest.mark.parametrize("edited", [False, True])
def test_a_replace_interrupted_after_the_retire_is_finished(
    repo: Path, api: Api, edited: bool
) -> None:
    """The copy is imported and the old flow retired, then the apply dies: the next one
    renames the copy (or, when the file changed since, cleans it up and imports anew)."""
    import datetime as dt

    from gitsync.codec import edit_view, flow_struct, marker
    from gitsync.model import Task, Workflow

    path = write(repo, "etl", "tasks:\n  - {name: a, command: 'echo one'}\n")
    apply_ok()
    old = ids(api)["etl"]
    copy = Workflow("etl__gitsync_replace", tasks=(Task("a", command="echo two"),))
    api.import_flow(copy.name, flow_struct.managed_flow_struct(copy), _dir_of(api, old))
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=old)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    body = edit_view.retire_body(
        detail, marker.retired_name("etl", old), marker.retired_description("", when, "etl")
    )
    api.data("POST", "flows", "save", body)
    path.write_text(path.read_text().replace("one", "three" if edited else "two"))
    plan = run_cli("plan")
    expected = "+ create   team/etl" if edited else "~ rename   team/etl"
    assert expected in plan.output, plan.output
    apply_ok()
    assert_no_changes()
    names = ids(api)
    assert "etl__gitsync_replace" not in names and names[f"etl__retired_{old}"] == old


def test_a_retired_copy_referenced_from_outside_is_kept_not_deleted(repo: Path, api: Api) -> None:
    """Retention ends for a retired copy that a workflow outside the owned root references:
    the plan reads the outside flows, names the referrer and plans no delete; the outside
    workflow still points at it (the 62104 fallback: tests/test_outside_referrers.py)."""
    config = repo / "gitsync.yaml"
    config.write_text(config.read_text() + "    retention: {versions: 0, days: 0}\n")
    path = write(repo, "up", UP)
    apply_ok()
    old = ids(api)["up"]
    outside = {
        **simple_flow("o"),
        "flowLinks": [{"linkId": "0", "sourceFlowName": "up"}],
        "linkRelations": [{"linkId": "0", "targetTaskName": "o", "rerun": False}],
    }
    other = api.import_flow("theirs", outside, api.mkdir("other_team"))
    path.write_text(UP.replace("up-one", "up-two"))
    apply_ok()  # the replace; the retired copy is past a retention of nothing at once
    plan = run_cli("plan")
    assert "delete" not in plan.output, plan.output
    assert "kept: Workflow/other_team/theirs (outside the owned root) still" in plan.output
    apply_ok()
    assert_no_changes()
    assert ids(api)[f"up__retired_{old}"] == old
    assert graph(api, other)["flows"][0]["flowId"] == str(old)


def _save(api: Api, flow_id: int, **changes: Any) -> None:
    """A Save as the console makes it: the flow as it is, with ``changes``."""
    detail: Any = api.data("GET", "flows", "loadForEdit", flowId=flow_id)
    found = json.loads(detail["graph"])
    flows = [{**f, "flowName": f.pop("flow_name", f.get("flowName"))} for f in found["flows"]]
    body = {
        "id": str(flow_id),
        **{k: detail[k] for k in ("type", "freq", "cycle", "alertMode", "doAs", "active")},
        **{k: detail[k] for k in ("desc", "parameters")},
        "name": detail["flowName"],
        "owners": detail["owner"],
        "visitors": detail["visitor"],
        "tasks": found["tasks"],
        "flows": flows,
        "relations": found["relations"],
        **changes,
    }
    api.data("POST", "flows", "save", body)


@pytest.mark.parametrize("retention", ["", "    retention: {versions: 0, days: 0}\n"])
def test_a_retired_copy_renamed_back_by_hand_is_the_live_flow_and_keeps_its_runs(
    repo: Path, api: Api, retention: str
) -> None:
    config = repo / "gitsync.yaml"
    config.write_text(config.read_text() + retention)
    path = write(repo, "a", UP)
    apply_ok()
    old = ids(api)["a"]
    instance = run("a")
    path.write_text(UP.replace("up-one", "up-two"))
    apply_ok()  # the replace: the old flow is a__retired_<old>
    api.data("GET", "flows", "delete", flowId=ids(api)["a"])
    _save(api, old, name="a")  # renamed back by hand, its retired marker still there
    path.write_text(UP)  # and the file back to that version
    plan = run_cli("plan")
    assert "~ update   team/a" in plan.output and "delete" not in plan.output, plan.output
    apply_ok()
    assert_no_changes()
    assert ids(api)["a"] == old
    desc: Any = api.data("GET", "flows", "get", flowId=old)
    assert "retired" not in desc["desc"]
    assert instance in run_cli("instances", "a").output


def test_a_retired_copy_renamed_to_another_name_is_not_deleted_by_retention(
    repo: Path, api: Api
) -> None:
    config = repo / "gitsync.yaml"
    config.write_text(config.read_text() + "    retention: {versions: 0, days: 0}\n")
    path = write(repo, "a", UP)
    apply_ok()
    old = ids(api)["a"]
    path.write_text(UP.replace("up-one", "up-two"))
    apply_ok()
    _save(api, old, name="a_old")
    plan = run_cli("plan")
    assert "delete" not in plan.output and "a_old" in plan.output, plan.output
    apply_ok()
    assert ids(api)["a_old"] == old


def test_swapping_two_task_names_is_one_save_that_keeps_both_tasks(
    repo: Path, api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    two = (
        "tasks:\n  - {name: x, command: 'echo 1'}\n"
        "  - {name: y, command: 'echo 2', depends_on: [x]}\n"
    )
    write(repo, "f", two)
    apply_ok()
    tasks = {t["taskName"]: t["taskId"] for t in graph(api, ids(api)["f"])["tasks"]}
    swapped = (
        "tasks:\n  - {name: y, command: 'echo 1'}\n"
        "  - {name: x, command: 'echo 2', depends_on: [y]}\n"
    )
    write(repo, "f", swapped)
    plan = run_cli("plan")
    assert "~ update   team/f" in plan.output, plan.output
    apply_ok()
    assert_no_changes()
    after = {t["taskName"]: t["taskId"] for t in graph(api, ids(api)["f"])["tasks"]}
    assert after == {"y": tasks["x"], "x": tasks["y"]}
    assert "Traceback" not in capfd.readouterr().err


T1 = "tasks:\n  - {name: t1, command: 'echo a', allow_reference: true}\n"


def _referrers(repo: Path) -> None:
    write(repo, "a", T1)
    write(repo, "ref", "tasks:\n  - {name: r, command: 'echo r', depends_on: [{flow: a}]}\n")
    write(
        repo,
        "ref2",
        "tasks:\n  - {name: r, command: 'echo r', depends_on: [{flow: a, task: t1}]}\n",
    )
    apply_ok()


def test_a_referrer_following_a_task_rename_needs_no_change(repo: Path, api: Api) -> None:
    _referrers(repo)
    before = ids(api)
    write(repo, "a", T1.replace("t1", "t9"))
    ref2 = repo / "flows/team/ref2.yaml"
    ref2.write_text(ref2.read_text().replace("task: t1", "task: t9"))
    plan = run_cli("plan", "--detailed-exitcode")
    assert "~ update   team/a" in plan.output and "ref2" not in plan.output, plan.output
    apply_ok()
    assert_no_changes()
    assert ids(api) == before


def test_a_referrer_following_a_flow_rename_is_not_replaced(repo: Path, api: Api) -> None:
    _referrers(repo)
    before = ids(api)
    (repo / "flows/team/a.yaml").rename(repo / "flows/team/a9.yaml")
    for name in ("ref", "ref2"):
        path = repo / f"flows/team/{name}.yaml"
        path.write_text(
            path.read_text().replace("flow: a}", "flow: a9}").replace("flow: a,", "flow: a9,")
        )
    plan = run_cli("plan")
    assert "~ rename   team/a9" in plan.output and "replace" not in plan.output, plan.output
    assert "ref" not in plan.output.replace("references", ""), plan.output
    apply_ok()
    assert_no_changes()
    assert ids(api)["ref2"] == before["ref2"] and ids(api)["a9"] == before["a"]


def test_a_replaced_referrer_of_a_task_rename_waits_for_it(repo: Path, api: Api) -> None:
    _referrers(repo)
    write(repo, "a", T1.replace("t1", "t9"))
    ref2 = repo / "flows/team/ref2.yaml"
    ref2.write_text(ref2.read_text().replace("task: t1", "task: t9").replace("echo r", "echo s"))
    plan = run_cli("plan")
    assert "± replace  team/ref2" in plan.output and "~ update   team/a" in plan.output
    apply_ok()  # the first apply: ref2's import waits for a's task rename
    assert_no_changes()


def test_a_chain_of_renamed_from_is_refused_and_nothing_is_sent(repo: Path, api: Api) -> None:
    write(repo, "a", "tasks:\n  - {name: t, command: 'echo a'}\n")
    write(repo, "b", "tasks:\n  - {name: t, command: 'echo b'}\n")
    apply_ok()
    before = ids(api)
    (repo / "flows/team/a.yaml").unlink()
    write(repo, "x", "renamed_from: a\ntasks:\n  - {name: t, command: 'echo a'}\n")
    (repo / "flows/team/b.yaml").unlink()
    write(repo, "a", "renamed_from: b\ntasks:\n  - {name: t, command: 'echo b'}\n")
    result = run_cli("apply", "--auto-approve")
    assert result.exit_code == 1, result.output
    assert "team/x: renamed_from 'a', but team/a still has that name" in result.output
    assert ids(api) == before

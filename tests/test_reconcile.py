"""plan / apply through the CLI against the real engine over HTTP."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitsync.engine.server import RunningEngine
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, Api, run_cli, simple_flow

EXAMPLE_NAMES = sorted(p.stem for p in EXAMPLES.rglob("*.yaml"))


@pytest.fixture
def project(example_repo: Path) -> Path:
    return example_repo


def remote_names(api: Api) -> dict[str, str]:
    """Every flow of the org: name -> its directory path."""
    out: dict[str, str] = {}
    stack = [(node, "") for node in api.data("GET", "directories", "listWorkFlowDirs")]
    while stack:
        node, path = stack.pop()
        for child in node.get("children") or []:
            if child["isDirectory"]:
                stack.append((child, f"{path}/{child['title']}".lstrip("/")))
            else:
                out[child["title"]] = path
    return out


def apply_ok(*args: str) -> str:
    result = run_cli("apply", "--auto-approve", *args)
    assert result.exit_code == 0, result.output
    return result.output


def assert_no_changes() -> None:
    result = run_cli("plan", "--detailed-exitcode")
    assert result.exit_code == 0, result.output
    assert "no changes" in result.output


def test_apply_examples_then_plan_is_empty(project: Path, api: Api) -> None:
    first = run_cli("plan", "--detailed-exitcode")
    assert first.exit_code == 2
    assert f"{len(EXAMPLE_NAMES)} to create" in first.output
    out = apply_ok()
    # 8 directories (the lock already made the root), the workflows, 5 enables
    assert f"Applied {8 + len(EXAMPLE_NAMES) + 5} of" in out
    assert_no_changes()
    names = remote_names(api)
    assert {n: names[n] for n in EXAMPLE_NAMES} == {
        p.stem: "gitsync/" + str(p.parent.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.yaml")
    }
    etl_id = api.data("GET", "flows", "getMyFlow", expression="sales_etl")[0]["flowId"]
    etl = api.data("GET", "flows", "export", flowId=etl_id)
    assert etl["desc"].endswith("[managed by gitsync]")
    assert api.data("GET", "flows", "get", flowId=etl_id)["active"] == 1
    assert not any(n.startswith("__gitsync_lock__") for n in remote_names(api))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_edit_one_task_shows_exactly_that_change(project: Path, api: Api) -> None:
    apply_ok()
    _edit(project / "flows/sales/daily/sales_etl.yaml", "    timeout: 300\n", "    timeout: 900\n")
    result = run_cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].endswith("1 to replace, 1 to enable.")
    assert lines[2] == "± replace  sales/daily/sales_etl"
    assert lines[3] == "      tasks[join].timeout: 300 -> 900"
    assert "Save Flow cannot change a task's command or settings" in lines[4]
    assert lines[5] == "> enable   sales/daily/sales_etl"
    before = remote_names(api)
    old_id = _ids(api, "sales_etl")["sales_etl"]
    apply_ok()
    assert_no_changes()
    # replaced: same names, same directories, and the old flow kept, retired, beside it
    assert remote_names(api) == {**before, f"sales_etl__retired_{old_id}": "gitsync/sales/daily"}
    # a schedule change is a plain Save: same flow id
    flow_id = api.data("GET", "flows", "getMyFlow", expression="health_check")[0]["flowId"]
    _edit(project / "flows/ops/hourly/health_check.yaml", '"0 5 * * * ? *"', '"0 10 * * * ? *"')
    plan = run_cli("plan").output.splitlines()
    assert plan[2:4] == [
        "~ update   ops/hourly/health_check",
        '      schedule.cron: "0 5 * * * ? *" -> "0 10 * * * ? *"',
    ]
    apply_ok()
    assert_no_changes()
    assert api.data("GET", "flows", "getMyFlow", expression="health_check")[0]["flowId"] == flow_id


def test_graph_edits_and_task_removal_are_saved_in_place(project: Path, api: Api) -> None:
    apply_ok()
    path = project / "flows/sales/daily/sales_etl.yaml"
    _edit(
        path,
        "    depends_on: [clean_orders, clean_customers]\n",
        "    depends_on: [clean_orders]\n",
    )
    text = path.read_text()
    start = text.index("  - name: report")
    path.write_text(text[:start])  # the last task removed
    plan = run_cli("plan").output
    assert "~ update   sales/daily/sales_etl" in plan
    assert "dependency removed: clean_customers -> join" in plan
    assert "task removed: report" in plan
    flow_id = api.data("GET", "flows", "getMyFlow", expression="sales_etl")[0]["flowId"]
    apply_ok()
    assert_no_changes()
    assert api.data("GET", "flows", "getMyFlow", expression="sales_etl")[0]["flowId"] == flow_id


def test_disable_and_enable(project: Path, api: Api) -> None:
    apply_ok()
    _edit(
        project / "flows/ops/weekly/cleanup.yaml",
        '  start: "2024-01-07"\n',
        '  start: "2024-01-07"\n  enabled: false\n',
    )
    assert run_cli("plan").output.splitlines()[2] == "‖ disable  ops/weekly/cleanup"
    apply_ok()
    assert_no_changes()
    flow_id = api.data("GET", "flows", "getMyFlow", expression="cleanup")[0]["flowId"]
    assert api.data("GET", "flows", "get", flowId=flow_id)["active"] == 0


def test_removed_file_is_listed_and_retired_only_with_prune(project: Path, api: Api) -> None:
    apply_ok()
    (project / "flows/ops/weekly/cleanup.yaml").unlink()
    plan = run_cli("plan", "--detailed-exitcode")
    assert plan.exit_code == 2  # never "the remote matches the files" while it exists
    assert plan.output.splitlines()[2] == "? no file  ops/weekly/cleanup"
    assert "no file for it; enabled: it keeps firing on its schedule" in plan.output
    assert "The remote matches" not in plan.output
    apply_ok()
    assert "cleanup" in remote_names(api)  # listed, never applied without --prune
    flow_id = _ids(api, "cleanup")["cleanup"]
    pruned = run_cli("plan", "--prune")
    assert pruned.output.splitlines()[2] == "- retire   ops/weekly/cleanup"
    assert "is empty" not in pruned.output  # the retired copy stays in it
    apply_ok("--prune")
    names = remote_names(api)
    assert "cleanup" not in names and names[f"cleanup__retired_{flow_id}"] == "gitsync/ops/weekly"
    detail = api.data("GET", "flows", "get", flowId=flow_id)
    assert detail["active"] == 0  # type: ignore[index]
    assert "[managed by gitsync; retired " in detail["desc"]  # type: ignore[index]
    assert run_cli("plan", "--prune", "--detailed-exitcode").exit_code == 0


def test_flows_made_elsewhere_are_never_deleted(project: Path, api: Api) -> None:
    apply_ok()
    tree = api.data("GET", "directories", "listWorkFlowDirs")[0]
    owned = next(c for c in tree["children"] if c["title"] == "gitsync")
    api.import_flow("console_made", simple_flow("a"), owned["key"])  # inside the root
    outside = api.mkdir("team_b")
    api.import_flow("other_team", simple_flow("a"), outside)  # outside the root
    before = {
        n: api.data("GET", "flows", "export", flowId=i)
        for n, i in _ids(api, "console_made", "other_team").items()
    }
    plan = run_cli("plan", "--prune", "--detailed-exitcode")
    assert plan.exit_code == 0
    assert "gitsync/console_made" not in plan.output.split("Notes:")[0]
    assert "console_made: not managed by gitsync (no ownership marker); left alone" in plan.output
    assert "other_team" not in plan.output
    apply_ok("--prune", "--allow-mass-delete")
    after = {
        n: api.data("GET", "flows", "export", flowId=i)
        for n, i in _ids(api, "console_made", "other_team").items()
    }
    assert after == before


def _ids(api: Api, *names: str) -> dict[str, int]:
    found = {f["flowName"]: int(f["flowId"]) for f in api.data("POST", "flows", "search", {})}
    return {n: found[n] for n in names}


def test_name_taken_outside_the_root_is_a_conflict(project: Path, api: Api) -> None:
    api.import_flow("backfill", simple_flow("a"), api.mkdir("elsewhere"))
    result = run_cli("plan", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "! conflict finance/adhoc/backfill" in result.output
    applied = run_cli("apply", "--auto-approve")
    assert applied.exit_code == 1
    assert (
        "FAILED conflict finance/adhoc/backfill: a workflow named 'backfill' already exists "
        "outside the owned root, at Workflow/elsewhere" in applied.output
    )
    assert remote_names(api)["backfill"] == "elsewhere"
    assert "sales_etl" in remote_names(api)  # the rest was applied


def test_mass_delete_guard(project: Path) -> None:
    apply_ok()
    for path in list((project / "flows").rglob("*.yaml"))[:3]:
        path.unlink()
    result = run_cli("plan", "--prune")
    assert result.exit_code == 1
    assert "the plan would delete 3 of the 6 workflows gitsync owns" in result.output
    assert "--allow-mass-delete" in result.output
    assert run_cli("plan", "--prune", "--allow-mass-delete").exit_code == 0
    shutil.rmtree(project / "flows")
    (project / "flows").mkdir()
    everything = run_cli("plan", "--prune")
    assert everything.exit_code == 1 and "delete 6 of the 6" in everything.output


def test_invalid_files_change_nothing(project: Path, engine: RunningEngine) -> None:
    (project / "flows/bad.yaml").write_text("tasks: [{name: a}]\n")
    store = engine.engine.store.path
    before = store.read_bytes() if store.exists() else b""
    for command, outcome in (
        (["plan"], "no plan was made"),
        (["apply", "--auto-approve"], "nothing was sent"),
    ):
        result = run_cli(*command)
        assert result.exit_code == 1
        assert result.output.splitlines() == [
            "flows/bad.yaml:1:9: tasks[0]: missing required key 'command'",
            f"error: 1 problem in the workflow files; {outcome}",
        ]
    assert store.read_bytes() == before


def test_a_missing_flows_folder_is_named(project: Path, engine: RunningEngine) -> None:
    shutil.rmtree(project / "flows")
    store = engine.engine.store.path
    before = store.read_bytes() if store.exists() else b""
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = run_cli(*command)
        assert result.exit_code == 1
        assert result.output == (
            f"error: no flows folder at {Path('flows')} (set 'flows' in gitsync.yaml, "
            "or run `gitsync init`)\n"
        )
    assert store.read_bytes() == before


def test_apply_without_a_terminal_needs_auto_approve(project: Path, api: Api) -> None:
    result = run_cli("apply")
    assert result.exit_code == 1
    assert "no terminal to confirm on" in result.output
    assert "sales_etl" not in remote_names(api)


def test_the_lock_is_exclusive_and_can_be_forced(project: Path, api: Api) -> None:
    import datetime as dt

    from gitsync import remote
    from gitsync.client import Client

    with Client(str(api.http.base_url), SPEC_ORG, SPEC_USER) as client:
        remote.acquire_lock(
            client,
            ("gitsync",),
            "ci@runner-7 (pid 42)",
            dt.datetime.now(dt.UTC) - dt.timedelta(minutes=12),
        )
    result = run_cli("apply", "--auto-approve")
    assert result.exit_code == 1
    assert (
        "another apply holds the lock of this target: ci@runner-7 (pid 42) since" in result.output
    )
    assert "(12 minutes ago)" in result.output and "--force-unlock" in result.output
    assert "sales_etl" not in remote_names(api)
    forced = run_cli("apply", "--auto-approve", "--force-unlock")
    assert forced.exit_code == 0, forced.output
    assert not any(n.startswith("__gitsync_lock__") for n in remote_names(api))


class HolderLeaves(httpx.BaseTransport):
    """The engine, but another apply holds the lock when the first lock Import arrives, and
    releases it (it ends) just after that Import is refused, or just before its holder is
    read (two applies racing, the first about to end)."""

    def __init__(self, api: Api, when: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.api, self.when = api, when
        self.held: int | None = None
        self.released = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read() or b"{}")
        if self.held is None and str(body.get("flowName", "")).startswith("__gitsync_lock__"):
            self.held = self.api.import_flow(body["flowName"], body["flowJson"], body["dirId"])
            refused = self.inner.handle_request(request)
            refused.read()
            if self.when == "refused":
                self.release()
            return refused
        if request.url.params.get("action") == "export" and self.held is not None:
            self.release()
        return self.inner.handle_request(request)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.api.data("GET", "flows", "delete", flowId=self.held)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("when", ["refused", "read"])
def test_a_lock_released_while_its_holder_is_read_is_taken(api: Api, when: str) -> None:
    """Refused because another apply held it, gone by the time its holder is read: the lock
    is free, so it is taken (it was an error naming the refused Import, or the Export)."""
    import datetime as dt

    from gitsync import remote
    from gitsync.client import Client

    transport = HolderLeaves(api, when)
    url = str(api.http.base_url)
    with Client(url, SPEC_ORG, SPEC_USER, transport=transport) as client:
        lock_id = remote.acquire_lock(client, ("gitsync",), "me", dt.datetime.now(dt.UTC))
    assert transport.released
    assert "__gitsync_lock__gitsync" in remote_names(api)
    assert api.call("GET", "flows", "export", flowId=lock_id)["code"] == 0  # this one holds it


def test_plan_outputs(project: Path) -> None:
    as_json = json.loads(run_cli("plan", "-o", "json").output)
    assert as_json["format_version"] == 2 and as_json["has_changes"] is True
    assert as_json["summary"]["create_flow"] == len(EXAMPLE_NAMES)
    assert {c["action"] for c in as_json["changes"]} == {"create_dir", "create_flow", "enable"}
    markdown = run_cli("plan", "-o", "markdown").output
    assert markdown.startswith("### gitsync plan for target 'test'")
    assert "**9 directories to create, 6 to create, 5 to enable**" in markdown


def test_markdown_is_capped() -> None:
    from gitsync import report
    from gitsync.changes import Kind
    from gitsync.model import Task, Workflow
    from gitsync.plan import Change, Plan

    lines = tuple(f'tasks[t{i}].command: "{"x" * 80}" -> "{"y" * 80}"' for i in range(40))
    changes = tuple(
        Change(
            Kind.UPDATE_FLOW,
            ("dir", f"flow{i}"),
            lines,
            desired=Workflow(f"flow{i}", tasks=(Task("t"),)),
        )
        for i in range(200)
    )
    text = report.plan_markdown(Plan(changes), "t")
    assert len(text) <= report.MARKDOWN_LIMIT
    assert "more changes are not shown" in text
    assert text.index("**200 to update**") < text.index("<details>")


def test_embedded_default_target_on_a_fresh_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITSYNC_TARGET", raising=False)
    shutil.copytree(EXAMPLES, tmp_path / "flows")
    assert run_cli("plan", "--detailed-exitcode").exit_code == 2
    apply_ok()
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0
    assert (tmp_path / ".gitsync/engine/engine.sqlite3").exists()


def test_init_writes_a_starter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("init")
    assert result.exit_code == 0
    text = (tmp_path / "gitsync.yaml").read_text()
    assert "url: embedded" in text and "ENOS_SECRET_KEY" in text
    assert (tmp_path / "flows").is_dir() and (tmp_path / "schemas/workflow.schema.json").exists()
    assert run_cli("init").exit_code == 1
    assert run_cli("plan", "--target", "nope").output.startswith("error: gitsync.yaml: no target")


def test_a_remote_flow_that_cannot_be_read_stops_the_reading(
    project: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first flow's Export is broken (a fault): plan names it, and the Exports not yet
    started are not sent."""
    import threading

    from gitsync import remote
    from gitsync.client import Client
    from gitsync.errors import GitsyncError

    apply_ok()
    release = threading.Event()
    exported: list[int] = []
    real_export = Client.export_flow

    def export(self: Client, flow_id: int) -> dict[str, Any]:
        exported.append(flow_id)
        if len(exported) == 1:
            return {"tasks": 5, "name": "broken"}
        release.wait(2)  # the others are slow: the broken one is decoded meanwhile
        return real_export(self, flow_id)

    monkeypatch.setattr(Client, "export_flow", export)
    with (
        Client(engine.url, SPEC_ORG, SPEC_USER, max_concurrency=2) as client,
        pytest.raises(GitsyncError, match=r"cannot be read: flow\.tasks: expected a list"),
    ):
        remote.read_state(client, ("gitsync",))
    release.set()
    assert len(EXAMPLE_NAMES) > 4
    assert len(exported) <= 3  # the first, the one running beside it, perhaps its successor

"""Saved plans: `plan --out FILE` then `apply FILE` on the real engine, and every refusal."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hypothesis import given
from hypothesis import strategies as st

from gitsync import protocol
from gitsync.engine.server import EngineOptions, RunningEngine, User
from tests.conftest import SPEC_ORG, SPEC_USER, Api, run_cli, simple_flow

ETL = "flows/sales/daily/sales_etl.yaml"


@pytest.fixture
def request_log(tmp_path: Path) -> Path:
    return tmp_path / "requests.jsonl"


@pytest.fixture
def engine(tmp_path: Path, request_log: Path) -> Iterator[RunningEngine]:
    """The conftest engine, logging every request it answers (example_repo and api use it)."""
    options = EngineOptions(
        tmp_path / "engine", request_log=request_log, users=[User(SPEC_USER, SPEC_ORG, "alice")]
    )
    with RunningEngine(options) as running:
        yield running


def requests_during(log: Path, action: Callable[[], Result]) -> tuple[Result, list[dict[str, Any]]]:
    """What ``action`` returned and every request the engine answered meanwhile."""
    before = len(log.read_text().splitlines()) if log.exists() else 0
    result = action()
    lines = log.read_text().splitlines() if log.exists() else []
    return result, [json.loads(line) for line in lines[before:]]


def writes(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in sent if protocol.BY_ROUTE[r["method"], r["resource"], r["action"]].writes]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def plan_out(name: str = "plan.json", *args: str) -> dict[str, Any]:
    result = run_cli("plan", "--out", name, *args)
    assert result.exit_code == 0, result.output
    loaded: dict[str, Any] = json.loads(Path(name).read_text())
    return loaded


def refused(log: Path, *args: str) -> str:
    """Run apply; assert it exits 1 having written nothing; its output."""
    result, sent = requests_during(log, lambda: run_cli("apply", *args))
    assert result.exit_code == 1, result.output
    assert writes(sent) == []
    assert "Traceback" not in result.output
    return result.output


def flow_id(api: Api, name: str) -> int:
    found = api.data("GET", "flows", "getMyFlow", expression=name)
    return int(found[0]["flowId"])  # type: ignore[index]


def dir_id(api: Api, *path: str) -> str:
    node = api.data("GET", "directories", "listWorkFlowDirs")[0]  # type: ignore[index]
    for name in path:
        node = next(c for c in node["children"] if c["isDirectory"] and c["title"] == name)
    return str(node["key"])


# -- applying a saved plan ---------------------------------------------------------------------


def test_plan_out_then_apply_file_applies_it_and_the_next_plan_is_empty(
    example_repo: Path, request_log: Path
) -> None:
    printed = run_cli("plan", "--out", "plan.json")
    assert printed.exit_code == 0
    assert printed.stdout == run_cli("plan").stdout  # the plan is printed as without --out
    assert "Saved the plan to plan.json" in printed.stderr
    saved = json.loads((example_repo / "plan.json").read_text())
    assert saved["format_version"] == 1 and saved["target"] == "test"
    assert saved["options"] == {
        "prune": False,
        "allow_mass_delete": False,
        "on_active_runs": "stop",
    }
    assert set(saved["files"]) == {"gitsync.yaml"} | {
        p.relative_to(example_repo).as_posix() for p in (example_repo / "flows").rglob("*.yaml")
    }
    assert saved["plan"]["summary"]["create_flow"] == 6 and saved["has_changes"] is True
    result, sent = requests_during(request_log, lambda: run_cli("apply", "plan.json"))
    assert result.exit_code == 0, result.output  # no terminal, no --auto-approve: not asked
    assert "Applied 19 of 19 changes." in result.output
    assert sum(1 for r in writes(sent) if r["action"] == "import") == 6 + 1  # and the lock
    again = run_cli("plan", "--detailed-exitcode")
    assert again.exit_code == 0 and "no changes" in again.output


def test_a_saved_update_applies_with_its_options(example_repo: Path, api: Api) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    (example_repo / "flows/ops/weekly/cleanup.yaml").unlink()
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    saved = plan_out("plan.json", "--prune")
    assert saved["options"]["prune"] is True
    assert saved["plan"]["summary"] == {**saved["plan"]["summary"], "retire": 1}
    result = run_cli("apply", "plan.json")
    assert result.exit_code == 0, result.output
    assert "retire" in result.output and "cleanup" in result.output
    assert run_cli("plan", "--prune", "--detailed-exitcode").exit_code == 0


def test_json_output_stays_one_document_beside_out(example_repo: Path) -> None:
    result = run_cli("plan", "-o", "json", "--out", "plan.json")
    assert json.loads(result.stdout)["has_changes"] is True
    assert json.loads((example_repo / "plan.json").read_text())["plan"] == json.loads(result.stdout)


def test_a_saved_plan_without_changes_applies_nothing(
    example_repo: Path, request_log: Path
) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    assert plan_out()["has_changes"] is False
    result, sent = requests_during(request_log, lambda: run_cli("apply", "plan.json"))
    assert result.exit_code == 0, result.output
    assert "no changes: nothing to apply" in result.output
    assert sent == []


# -- refusals: the files, the target, gitsync ------------------------------------------------


def test_a_file_changed_added_or_removed_since_is_named_and_nothing_is_sent(
    example_repo: Path, request_log: Path
) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    plan_out()
    edit(example_repo / ETL, "    timeout: 900\n", "    timeout: 901\n")
    out = refused(request_log, "plan.json")
    assert f"the files changed since the plan was saved (changed: {ETL})" in out
    assert "nothing was sent" in out
    edit(example_repo / ETL, "    timeout: 901\n", "    timeout: 900\n")  # as planned again
    (example_repo / "flows/ops/weekly/cleanup.yaml").unlink()
    (example_repo / "flows/sales/new.yaml").write_text("tasks:\n  - {name: a, command: 'true'}\n")
    out = refused(request_log, "plan.json")
    assert "added: flows/sales/new.yaml; removed: flows/ops/weekly/cleanup.yaml" in out
    assert "changed:" not in out


def test_a_changed_gitsync_yaml_refuses(example_repo: Path, request_log: Path) -> None:
    plan_out()
    with (example_repo / "gitsync.yaml").open("a") as f:
        f.write("    concurrency: 2\n")
    assert "(changed: gitsync.yaml)" in refused(request_log, "plan.json")


@pytest.mark.parametrize(
    ("behind_our_back", "named"),
    [
        (
            lambda api: api.data("POST", "flows", "disable", {"flowId": flow_id(api, "sales_etl")}),
            "workflows changed: sales/daily/sales_etl",
        ),
        (
            lambda api: api.import_flow(
                "intruder", simple_flow("a"), dir_id(api, "gitsync", "ops")
            ),
            "workflows added: ops/intruder",
        ),
        (
            lambda api: api.data("GET", "flows", "delete", flowId=flow_id(api, "cleanup")),
            "workflows removed: ops/weekly/cleanup",
        ),
        (lambda api: api.mkdir("extra", dir_id(api, "gitsync")), "directories added: extra"),
    ],
    ids=["changed", "appeared", "disappeared", "directory"],
)
def test_a_remote_change_since_is_named_and_nothing_is_written(
    example_repo: Path,
    api: Api,
    request_log: Path,
    behind_our_back: Callable[[Api], object],
    named: str,
) -> None:
    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    plan_out()
    behind_our_back(api)
    out = refused(request_log, "plan.json")
    assert f"the target changed since the plan was saved ({named})" in out
    assert "nothing was sent" in out


def test_a_plan_that_differs_though_nothing_it_read_did_refuses(
    example_repo: Path, api: Api, request_log: Path
) -> None:
    """A workflow of the new file's name appears outside the owned root: the files and the
    flows in the root are as they were, but the create became a conflict."""
    assert run_cli("apply", "--auto-approve").exit_code == 0
    (example_repo / "flows/sales/newone.yaml").write_text(
        "tasks:\n  - {name: a, command: 'true'}\n"
    )
    assert plan_out()["plan"]["summary"]["create_flow"] == 1
    api.import_flow("newone", simple_flow("a"))
    out = refused(request_log, "plan.json")
    assert "the plan made now differs from the saved one, though the files and the target" in out


def test_a_plan_that_cannot_be_saved_is_an_error(example_repo: Path) -> None:
    result = run_cli("plan", "--out", "no/such/folder/plan.json")
    assert result.exit_code == 1
    assert "error: no/such/folder/plan.json: the saved plan cannot be written: No such file" in (
        result.stderr
    )
    assert "Traceback" not in result.output


def test_another_target_or_gitsync_version_refuses(
    example_repo: Path, engine: RunningEngine, request_log: Path
) -> None:
    with (example_repo / "gitsync.yaml").open("a") as f:
        f.write(f"  other:\n    url: {engine.url}\n    org_id: {SPEC_ORG}\n")
        f.write(f"    user_id: {SPEC_USER}\n    root: elsewhere\n")
    plan_out()
    out = refused(request_log, "plan.json", "--target", "other")
    assert "the plan was saved for target 'test', not 'other'" in out
    saved = json.loads((example_repo / "plan.json").read_text())
    (example_repo / "plan.json").write_text(json.dumps({**saved, "gitsync_version": "0.0.1"}))
    assert "the plan was saved by gitsync 0.0.1, this is " in refused(request_log, "plan.json")


def test_plan_options_cannot_be_given_with_a_saved_plan(example_repo: Path) -> None:
    plan_out()
    for option in ("--prune", "--allow-mass-delete", "--on-active-runs=stop"):
        result = run_cli("apply", option, "plan.json")
        assert result.exit_code == 1
        assert "cannot be given with a saved plan" in result.output


# -- odd files: one line naming the file, exit 1, before anything else ------------------------


def _valid() -> dict[str, Any]:
    return {
        "format_version": 1,
        "kind": "gitsync saved plan",
        "gitsync_version": "0.1.0",
        "target": "local",
        "target_description": "",
        "options": {"prune": False, "allow_mass_delete": False, "on_active_runs": "stop"},
        "files": {},
        "flows": {"a/b": {"id": 1, "sha256": "00"}},
        "directories": {},
        "plan_digest": "00",
        "has_changes": True,
        "plan": {},
    }


def _without(key: str) -> bytes:
    return json.dumps({k: v for k, v in _valid().items() if k != key}).encode()


def _with(**fields: object) -> bytes:
    return json.dumps({**_valid(), **fields}).encode()


ODD_FILES = {
    "empty": (b"", "not a JSON document"),
    "truncated": (json.dumps(_valid()).encode()[:100], "not a JSON document"),
    "binary": (b"\xff\xfe\x00garbage", "not a JSON document"),
    "deeply nested": (b"[" * 100_000, "not a JSON document"),
    "null": (b"null", 'it is not a gitsync saved plan (no "kind"'),
    "a list": (b"[1, 2]", "it is not a gitsync saved plan"),
    "another kind": (_with(kind="terraform plan"), "it is not a gitsync saved plan"),
    "format 2": (_with(format_version=2), "format_version is 2; this gitsync reads 1"),
    "format as text": (_with(format_version="1"), 'format_version is "1"; this gitsync reads 1'),
    "format true": (_with(format_version=True), "format_version is true"),
    "no format": (_without("format_version"), "format_version is missing"),
    "null format": (_with(format_version=None), "format_version is null"),
    "no digest": (_without("plan_digest"), "plan_digest is missing"),
    "null digest": (_with(plan_digest=None), "plan_digest is null, not a string"),
    "null options": (_with(options=None), "options is null, not an object"),
    "option of text": (
        _with(options={**_valid()["options"], "prune": "yes"}),
        'options.prune is "yes", not true or false',
    ),
    "a flow id of 1.0": (
        _with(flows={"a/b": {"id": 1.0, "sha256": "00"}}),
        'flows["a/b"].id is 1.0, not an integer',
    ),
    "a huge format_version": (
        b'{"kind": "gitsync saved plan", "format_version": 1' + b"0" * 400 + b"}",
        "format_version is a number of 401 digits; this gitsync reads 1",
    ),
    "an unknown on_active_runs": (
        _with(options={**_valid()["options"], "on_active_runs": "bogus"}),
        'options.on_active_runs is "bogus", not one of stop, wait, cancel',
    ),
    "null files": (_with(files=None), "files is null, not an object"),
    "a file's null hash": (_with(files={"a.yaml": None}), 'files["a.yaml"] is null'),
    "a flow's null id": (
        _with(flows={"a/b": {"id": None, "sha256": "00"}}),
        'flows["a/b"].id is null, not an integer',
    ),
    "a flow as a list": (_with(flows={"a/b": [1]}), 'flows["a/b"] is [1], not an object'),
    "a flow's id of text": (
        _with(flows={"a/b": {"id": "1", "sha256": "00"}}),
        'flows["a/b"].id is "1", not an integer',
    ),
    "has_changes null": (_with(has_changes=None), "has_changes is null, not true or false"),
}


@pytest.mark.parametrize(("content", "says"), ODD_FILES.values(), ids=ODD_FILES.keys())
def test_an_odd_saved_plan_is_one_line_naming_the_file(
    in_tmp: Path, content: bytes, says: str
) -> None:
    (in_tmp / "p.json").write_bytes(content)
    result = run_cli("apply", "p.json")
    assert result.exit_code == 1
    assert result.output.splitlines() == [result.output.strip()]
    assert result.output.startswith("error: p.json: not a usable saved plan: ")
    assert says in result.output
    assert not (in_tmp / ".gitsync").exists()  # no engine was even started


def test_a_missing_saved_plan_or_a_folder_is_one_line(in_tmp: Path) -> None:
    result = run_cli("apply", "nowhere.json")
    assert result.exit_code == 1
    assert result.output == (
        "error: nowhere.json: not a usable saved plan: the file cannot be read: No such file "
        "or directory; run `gitsync plan --out` again\n"
    )
    (in_tmp / "folder").mkdir()
    assert run_cli("apply", "folder").exit_code == 1


# -- a change that lands after the first check, while apply takes the lock -----------------


def test_a_change_made_while_the_lock_is_taken_refuses_and_releases_it(
    example_repo: Path, engine: RunningEngine, api: Api, request_log: Path
) -> None:
    """The first check passed; a Save-like change lands right after the lock: the check
    under the lock refuses it, and the lock (the only write) is released."""
    from gitsync.engine.faults import Faults, RunningProxy
    from tests.conftest import write_target

    assert run_cli("apply", "--auto-approve").exit_code == 0
    edit(example_repo / ETL, "    timeout: 300\n", "    timeout: 900\n")
    locked = []

    def meanwhile(number: int, request: Any) -> None:
        if len(locked) == 1:  # the first request after the lock's import
            locked.append(True)
            api.data("POST", "flows", "disable", {"flowId": flow_id(api, "health_check")})
        if request.query_params.get("action") == "import" and not locked:
            locked.append(True)

    with RunningProxy(engine.url, Faults(on_request=meanwhile)) as proxy:
        write_target(example_repo, proxy.url, "gitsync")
        plan_out()
        result, sent = requests_during(request_log, lambda: run_cli("apply", "plan.json"))
    assert result.exit_code == 1, result.output
    assert "(workflows changed: ops/hourly/health_check)" in result.output
    assert [r["action"] for r in writes(sent)] == ["import", "disable", "delete"]  # lock, us
    assert "__gitsync_lock__" not in json.dumps(api.data("GET", "directories", "listWorkFlowDirs"))


# -- secrets ----------------------------------------------------------------------------------

PASSWORD = "hunter2-c4n4ry-pw"


def test_no_secret_reaches_the_saved_plan_nor_a_hash_of_it(
    example_repo: Path, monkeypatch: pytest.MonkeyPatch, request_log: Path
) -> None:
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    (example_repo / "flows/sales/daily/load.yaml").write_text(
        "tasks:\n  - name: load\n    command: 'mysql -u etl -p${env:DB_PASSWORD} -e \"select 1\"'\n"
    )
    assert run_cli("apply", "--auto-approve").exit_code == 0  # the remote holds it too
    edit(example_repo / "flows/sales/daily/load.yaml", "select 1", "select 2")
    plan_out()
    text = (example_repo / "plan.json").read_text()
    assert "tasks[load].command: (sensitive value changed)" in text
    assert PASSWORD not in text
    import hashlib

    assert hashlib.sha256(PASSWORD.encode()).hexdigest() not in text
    monkeypatch.setenv("DB_PASSWORD", "rotated-" + PASSWORD)  # not what the plan was made with
    out = refused(request_log, "plan.json")
    assert "(workflows changed: sales/daily/load); sales/daily/load hold secrets from" in out
    assert PASSWORD not in out
    monkeypatch.setenv("DB_PASSWORD", PASSWORD)
    result = run_cli("apply", "plan.json")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0


def test_hashes_are_taken_with_every_secret_hidden_however_short() -> None:
    from gitsync.model import Task, Workflow
    from gitsync.saved_plan import digest, hider
    from gitsync.substitution import Secrets

    def flow(command: str) -> Workflow:
        return Workflow(name="w", tasks=(Task("t", command=command),))

    hide = hider(Secrets(values={"pw1": "${env:A}", PASSWORD: "${env:B}"}))
    same = digest(flow(f"x {PASSWORD} pw1"), hide)
    assert same == digest(flow("x *** ***"), lambda text: text)  # what was hashed
    assert same != digest(flow("x other pw1"), hide)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(key=st.sampled_from(sorted(_valid())), value=JSON)
def test_any_value_in_any_field_is_read_or_refused_in_one_line(
    tmp_path_factory: pytest.TempPathFactory, key: str, value: object
) -> None:
    """An attacker's or a careless hand's edit: read() returns a plan or says what is wrong."""
    from gitsync.errors import PlanRefused
    from gitsync.saved_plan import SavedPlan, read

    path = tmp_path_factory.mktemp("odd") / "p.json"
    path.write_text(json.dumps({**_valid(), key: value}))
    try:
        assert isinstance(read(path), SavedPlan)
    except PlanRefused as e:
        assert str(e).startswith(f"{path}: not a usable saved plan: ") and "\n" not in str(e)


def test_a_digest_does_not_depend_on_the_order_of_a_mapping_or_a_set() -> None:
    from gitsync.saved_plan import digest

    def same(text: str) -> str:
        return text

    assert digest({"b": 1, 2: "a", (3,): None}, same) == digest({(3,): None, 2: "a", "b": 1}, same)
    assert digest(frozenset({"x", 1, ("y",)}), same) == digest(frozenset({("y",), 1, "x"}), same)
    assert digest({"b": 1}, same) != digest({"b": 2}, same)

"""Trustworthy under faults: injected errors and delays, lost answers, a killed apply, bad input.

Each test checks the three promises: the run converges (plan empty afterwards), no workflow is
ever duplicated or lost, and nothing outside the owned root changes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitsync import plan as planner
from gitsync import protocol, remote
from gitsync.client import Client
from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.errors import GitsyncError
from gitsync.model import Tree
from gitsync.validate import validate_paths
from tests.conftest import (
    CASES,
    EXAMPLES,
    SPEC_ORG,
    SPEC_USER,
    Api,
    refusing_port,
    run_cli,
    simple_flow,
)

ROOT = ("gitsync",)


def all_flows(api: Api) -> list[dict[str, Any]]:
    return api.data("POST", "flows", "search", {})  # type: ignore[return-value]


def outside_snapshot(api: Api) -> Any:
    """Everything outside the owned root: its exports, to prove nothing there changed."""
    out = {}
    for item in all_flows(api):
        exported = api.data("GET", "flows", "export", flowId=item["flowId"])
        if item["flowName"].startswith(("keep_", "console_")):
            out[item["flowName"]] = exported
    return out


def converge(client: Client, tree: Tree, attempts: int = 8) -> int:
    """Apply (with prune: a workflow without a file is a change until it is retired) until a
    plan is empty; returns how many applies it took."""
    target_root = ROOT
    for attempt in range(1, attempts + 1):
        try:
            state = remote.read_state(client, target_root)
            plan = planner.compute(tree, state, prune=True)
            if not plan.has_changes:
                return attempt
            remote.apply(client, plan, state)
        except GitsyncError:
            continue  # a read failed even after retries: try the whole loop again
    raise AssertionError(f"no convergence after {attempts} applies")


def check_exact(api: Api, tree: Tree) -> None:
    names = [f["flowName"] for f in all_flows(api)]
    assert len(names) == len(set(names))
    assert not [n for n in names if n.endswith(planner.REPLACE_SUFFIX)]
    wanted = {w.name for w in tree.workflows}
    assert wanted <= set(names)


def examples_tree() -> Tree:
    result = validate_paths([EXAMPLES], base=EXAMPLES)
    assert result.ok
    return result.tree()


def generated_tree(tmp_path: Path, count: int) -> Tree:
    root = tmp_path / "big"
    for i in range(count):
        folder = root / f"team{i % 5}" / f"area{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"flow_{i:03d}.yaml").write_text(
            f"schedule: {{cycle: day, cron: '0 {i % 60} 1 * * ? *'}}\n"
            f"tasks:\n  - {{name: a, command: echo {i}}}\n"
            f"  - {{name: b, command: echo b, depends_on: [a]}}\n"
        )
    result = validate_paths([root], base=root)
    assert result.ok
    return result.tree()


@pytest.fixture
def faulty_setup(engine: RunningEngine, api: Api):  # type: ignore[no-untyped-def]
    api.import_flow("keep_outside", simple_flow("a"), api.mkdir("other_team"))
    faults = Faults(error_rate=0.10, delay_rate=0.04, delay=0.3, lose_rate=0.06, seed=7)
    with (
        RunningProxy(engine.url, faults) as proxy,
        Client(proxy.url, SPEC_ORG, SPEC_USER, timeout=0.4, retries=4, backoff=0.01) as client,
    ):
        yield client, faults


@pytest.mark.parametrize("which", ["examples", "200 flows"])
def test_apply_converges_under_20_percent_faults(
    faulty_setup,
    api: Api,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    which: str,
) -> None:
    client, faults = faulty_setup
    before = outside_snapshot(api)
    tree = examples_tree() if which == "examples" else generated_tree(tmp_path, 200)
    converge(client, tree)
    check_exact(api, tree)
    assert outside_snapshot(api) == before
    assert faults.counts.get("error", 0) and faults.counts.get("lost", 0)
    assert faults.counts.get("delay", 0)
    # and once more through a clean connection: nothing left to do
    with Client(str(api.http.base_url), SPEC_ORG, SPEC_USER) as clean:
        assert not planner.compute(tree, remote.read_state(clean, ROOT)).has_changes


def test_edits_converge_under_faults(faulty_setup, api: Api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    client, _ = faulty_setup
    flows = tmp_path / "flows"
    shutil.copytree(EXAMPLES, flows)
    converge(client, validate_paths([flows], base=flows).tree())
    etl = flows / "sales/daily/sales_etl.yaml"
    etl.write_text(etl.read_text().replace("timeout: 300", "timeout: 301"))  # a replace
    (flows / "ops/weekly/cleanup.yaml").unlink()
    hourly = flows / "ops/hourly/health_check.yaml"
    hourly.write_text(hourly.read_text().replace('"0 5 * * * ? *"', '"0 6 * * * ? *"'))
    tree = validate_paths([flows], base=flows).tree()
    converge(client, tree)
    check_exact(api, tree)


# -- a killed apply, rerun -------------------------------------------------------------------


def _write_config(repo: Path, proxy_url: str, engine_url: str) -> None:
    lines = ["flows: flows", "targets:"]
    for name, url in (("proxied", proxy_url), ("direct", engine_url)):
        lines += [
            f"  {name}:",
            f"    url: {url}",
            f"    org_id: {SPEC_ORG}",
            f"    user_id: {SPEC_USER}",
            "    root: gitsync",
        ]
    (repo / "gitsync.yaml").write_text("\n".join(lines) + "\n")


def _apply_through_proxy(repo: Path) -> subprocess.Popen[str]:
    """`gitsync apply --auto-approve` as its own process, on the 'proxied' target."""
    return subprocess.Popen(
        [sys.executable, "-m", "gitsync", "apply", "--auto-approve"],
        cwd=repo,
        env={**os.environ, "GITSYNC_TARGET": "proxied"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


KILL_AFTER = [1, 2, 3, 4, 5, 7, 9, 11, 14, 17, 20, 24]


@pytest.mark.parametrize("k", KILL_AFTER)
def test_apply_killed_after_k_requests_then_rerun_converges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    options = EngineOptions(tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    victim: dict[str, subprocess.Popen[str]] = {}

    def kill_at_k(n: int, request: Any) -> None:
        if n == k and "proc" in victim:
            victim["proc"].send_signal(signal.SIGKILL)

    with (
        RunningEngine(options) as engine,
        RunningProxy(engine.url, Faults(on_request=kill_at_k)) as proxy,
    ):
        api = Api(engine.url)
        api.import_flow("keep_outside", simple_flow("a"), api.mkdir("other_team"))
        before = outside_snapshot(api)
        _write_config(repo, proxy.url, engine.url)
        proc = _apply_through_proxy(repo)
        victim["proc"] = proc
        proc.communicate(timeout=120)
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "direct")
        rerun = run_cli("apply", "--auto-approve")
        if rerun.exit_code != 0:  # killed while holding the lock: the way out is named
            assert "another apply holds the lock of this target" in rerun.output
            assert "gitsync apply --force-unlock" in rerun.output
            rerun = run_cli("apply", "--auto-approve", "--force-unlock")
        assert rerun.exit_code == 0, rerun.output
        assert run_cli("plan", "--detailed-exitcode").exit_code == 0
        check_exact(api, examples_tree())
        assert outside_snapshot(api) == before
        assert not [f for f in all_flows(api) if f["flowName"].startswith("__gitsync_lock__")]
        api.http.close()


def test_two_applies_at_once_never_interleave(
    tmp_path: Path, engine: RunningEngine, api: Api
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    slow = Faults(delay_rate=1.0, delay=0.05)  # every request a little slow: they overlap
    with RunningProxy(engine.url, slow) as proxy:
        _write_config(repo, proxy.url, engine.url)
        procs = [_apply_through_proxy(repo) for _ in range(2)]
        results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    codes = sorted(r[2] for r in results)
    if codes == [0, 1]:
        loser = next(r for r in results if r[2] == 1)
        assert "another apply holds the lock of this target" in loser[1]
    else:  # they did not overlap after all: the second found nothing to do
        assert codes == [0, 0]
        assert any("no changes" in r[0] for r in results)
    check_exact(api, examples_tree())
    names = [f["flowName"] for f in all_flows(api)]
    assert sorted(names) == sorted(p.stem for p in EXAMPLES.rglob("*.yaml"))


# -- bad input never reaches the service --------------------------------------------------------


BAD = sorted(p for p in (CASES / "invalid").iterdir() if p.suffix != ".expected")


WRITES = {(op.resource, op.action) for op in protocol.OPERATIONS if op.writes}


def logged(log: Path) -> list[tuple[str, str]]:
    """The (resource, action) of every request in an engine's request log, in order."""
    if not log.exists():
        return []
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    return [(e["resource"], e["action"]) for e in entries]


def bad_repo(tmp_path: Path, case: Path | None, engine_url: str) -> Path:
    """The examples, with one malformed case added (when given), and a target 't'."""
    repo = tmp_path / (case.name if case else "good")
    shutil.copytree(EXAMPLES, repo / "flows")
    if case is not None and case.is_dir():
        shutil.copytree(case, repo / "flows" / case.name)
    elif case is not None:
        shutil.copy(case, repo / "flows" / case.name)
    (repo / "gitsync.yaml").write_text(
        f"targets:\n  t:\n    url: {engine_url}\n    org_id: o_local\n    user_id: u_local\n"
    )
    return repo


def test_bad_input_sends_no_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply validates before it connects: not even a read. Plan only ever reads."""
    log = tmp_path / "requests.jsonl"
    with RunningEngine(EngineOptions(tmp_path / "engine", request_log=log)) as engine:
        for case in BAD:
            monkeypatch.chdir(bad_repo(tmp_path, case, engine.url))
            applied = run_cli("apply", "--target", "t", "--auto-approve")
            assert applied.exit_code == 1, (case.name, applied.output)
            assert "Traceback" not in applied.output
            assert "nothing was sent" in applied.output
            assert logged(log) == [], case.name
            planned = run_cli("plan", "--target", "t")
            assert planned.exit_code == 1, (case.name, planned.output)
            assert "no plan was made" in planned.output
            # the same problems, every one of them
            assert planned.output.splitlines()[:-1] == applied.output.splitlines()[:-1]
    assert not set(logged(log)) & WRITES


# one of each kind: YAML syntax, a bomb, an encoding, the schema, the DAG, across files
FORKED_CASES = ["yaml_syntax.yaml", "alias_bomb.yaml", "latin1.yaml", "unknown_key.yaml"]
FORKED_CASES += ["cycle.yaml", "dupe"]


def gitsync(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gitsync --debug ARGS` as a user runs it: its own process, single-threaded, so plan
    checks the files in a forked child (the in-process CLI runs beside engine threads)."""
    return subprocess.run(
        [sys.executable, "-m", "gitsync", "--debug", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plan_reads_while_a_forked_child_checks_the_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "requests.jsonl"
    with RunningEngine(EngineOptions(tmp_path / "engine", request_log=log)) as engine:
        repo = bad_repo(tmp_path, None, engine.url)
        planned = gitsync(repo, "plan", "--target", "t", "--detailed-exitcode")
        assert planned.returncode == 2, planned.stderr  # the examples are not there yet
        assert "files checked in a forked child" in planned.stderr
        assert "+ create" in planned.stdout and "sales_etl" in planned.stdout
        assert ("directories", "listWorkFlowDirs") in logged(log)

        for name in FORKED_CASES:
            repo = bad_repo(tmp_path, CASES / "invalid" / name, engine.url)
            planned = gitsync(repo, "plan", "--target", "t")
            assert planned.returncode == 1, (name, planned.stdout, planned.stderr)
            assert "files checked in a forked child" in planned.stderr
            assert "Traceback" not in planned.stdout + planned.stderr
            assert planned.stderr.splitlines()[-1].endswith("no plan was made"), name
            monkeypatch.chdir(repo)
            validated = run_cli("validate", "flows")
            assert planned.stdout.splitlines() == validated.output.splitlines()[:-1], name
    assert not set(logged(log)) & WRITES


def test_the_files_problems_come_before_a_service_that_cannot_be_reached(
    tmp_path: Path,
) -> None:
    with refusing_port() as port:
        closed = f"http://127.0.0.1:{port}"
        repo = bad_repo(tmp_path, CASES / "invalid" / "cycle.yaml", closed)
        planned = gitsync(repo, "plan", "--target", "t")
        assert planned.returncode == 1
        assert planned.stdout == "flows/cycle.yaml:4:17: dependency cycle: a -> b -> c -> a\n"
        assert planned.stderr.splitlines()[-1] == (
            "error: 1 problem in the workflow files; no plan was made"
        )

        (repo / "flows" / "cycle.yaml").unlink()  # valid files: now the service is the problem
        planned = gitsync(repo, "plan", "--target", "t")
        assert planned.returncode == 1
        assert planned.stdout == ""
        assert "Traceback" not in planned.stderr
        last = planned.stderr.splitlines()[-1]
        assert last.startswith(f"error: List Workflow Directories: the request to {closed} failed:")
        assert "ConnectError" in last and "refused" in last


def test_the_request_log_records_requests(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"
    with RunningEngine(EngineOptions(tmp_path / "engine", request_log=log)) as engine:
        api = Api(engine.url, user="u_local", org="o_local")
        root = api.root()
        made = api.mkdir("x", root)
        refused = api.call("POST", "directories", "create", {"dirName": "x", "parentId": root})
        api.http.close()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert entries == [
        {
            "method": "GET",
            "resource": "directories",
            "action": "listWorkFlowDirs",
            "code": 0,
            "seen": 0,
            "answered": 1,
        },
        {
            "method": "POST",
            "resource": "directories",
            "action": "create",
            "dirName": "x",
            "parentId": root,
            "made": {"dirId": made},
            "code": 0,
            "seen": 1,
            "answered": 2,
        },
        {
            "method": "POST",
            "resource": "directories",
            "action": "create",
            "dirName": "x",
            "parentId": root,
            "code": refused["code"],
            "seen": 2,
            "answered": 3,
        },
    ]
    assert refused["code"] != 0

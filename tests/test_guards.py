"""Runs are not disturbed by surprise, and problems are found before apply (issue #14, points
4 and 6): through the CLI against the real engine, its request log saying what was sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from gitsync import remote
from gitsync.changes import Kind
from gitsync.client import Client
from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.errors import GitsyncError
from gitsync.guards import OnActiveRuns
from gitsync.inspection import RunGuard, RunPolicy
from gitsync.plan import Change
from gitsync.statuses import Status
from tests.conftest import (
    SPEC_ORG,
    SPEC_USER,
    Api,
    eventually,
    run_cli,
    simple_flow,
    write_target,
)

READS = {
    "listWorkFlowDirs",
    "export",
    "get",
    "loadForEdit",
    "getMyFlow",
    "search",
    "getTimeZone",
    "getCurrentTime",
    "getLog",
}

MANUAL = "schedule: {type: manual}\n"
MANUAL_A = MANUAL + "tasks: [{name: a, command: echo}]\n"


@dataclass
class Target:
    repo: Path
    url: str
    log: Path
    api: Api
    extensions: bool = False  # the engine's; strict (as EnOS) by default

    @property
    def flows(self) -> Path:
        return self.repo / "flows"

    def requests(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["action"] not in READS]

    def forget(self) -> None:
        self.log.unlink(missing_ok=True)

    def flow_id(self, name: str) -> int:
        with Client(self.url, SPEC_ORG, SPEC_USER) as client:
            found = client.find_flow_id(name)
        assert found is not None, name
        return found

    def trigger(self, name: str) -> str:
        body = {"flowId": self.flow_id(name), "triggerTime": 1_700_000_000_000}
        return self.api.data("POST", "flows", "trigger", body)["flowInstanceId"]  # type: ignore[index,no-any-return]

    def status(self, instance_id: str) -> Status:
        data = self.api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        return Status(data["status"])  # type: ignore[index]


@pytest.fixture
def target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Target]:
    """An engine that logs every request, users alice (the target's) and bob, and a repo.
    The engine is strict, as EnOS is, unless a test asks for its extensions (``param``)."""
    log = tmp_path / "requests.jsonl"
    users = [User(SPEC_USER, SPEC_ORG, "alice"), User("u_bob", SPEC_ORG, "bob")]
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    extensions = bool(getattr(request, "param", False))
    options = EngineOptions(
        tmp_path / "engine", users=users, request_log=log, extensions=extensions
    )
    with RunningEngine(options) as engine:
        write_target(repo, engine.url, "gitsync")
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "test")
        api = Api(engine.url)
        yield Target(repo, engine.url, log, api, extensions)
        api.http.close()


def apply(*args: str) -> Result:
    return run_cli("apply", "--auto-approve", *args)


def held_until(release: Path) -> str:
    """A command that runs until ``release`` exists: a run the test ends when it chooses."""
    return f"while [ ! -f {release} ]; do sleep 0.02; done"


def write_long(target: Target, command: str, extra: str = "") -> None:
    (target.flows / "long.yaml").write_text(
        f"schedule: {{type: manual}}\ntasks:\n  - name: t\n    command: '{command}'\n{extra}"
    )


# -- point 4: runs -------------------------------------------------------------------------


def test_a_replace_waits_for_a_run_in_progress(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "release"
    write_long(target, held_until(release))
    assert apply().exit_code == 0
    instance = target.trigger("long")
    eventually(lambda: target.status(instance) == Status.RUNNING, "the run started")
    write_long(target, held_until(release) + "; echo changed")  # a task body: a replace

    plan = run_cli("plan")
    assert plan.exit_code == 0, plan.output
    assert f"running now: {instance} (RUNNING), started " in plan.output
    assert "✗ blocked:" in plan.output

    target.forget()
    held = apply()
    assert held.exit_code == 1, held.output
    assert f"HELD   replace  long: blocked: running now: {instance} (RUNNING)" in held.output
    assert "Applied 0 of 1 changes; 1 blocked." in held.output
    assert [w["action"] for w in target.writes()] == ["import", "delete"]  # the lock only
    assert target.status(instance) == Status.RUNNING

    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")
    done = apply("--on-active-runs", "wait")
    assert done.exit_code == 0, done.output
    assert "replaced: flow" in done.output
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0


def test_apply_waits_for_a_run_with_on_active_runs_wait(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "release"
    write_long(target, held_until(release))
    assert apply().exit_code == 0
    instance = target.trigger("long")
    eventually(lambda: target.status(instance) == Status.RUNNING, "the run started")
    write_long(target, held_until(release) + "; echo changed")
    target.forget()
    outcome: list[Result] = []
    applying = threading.Thread(target=lambda: outcome.append(apply("--on-active-runs", "wait")))
    applying.start()

    def looked_twice() -> bool:  # once for the plan, once just before the replace
        return sum(r["action"] == "search" for r in target.requests()) >= 2

    eventually(looked_twice, "apply looked at the runs before replacing")
    assert target.status(instance) == Status.RUNNING
    assert not any(w["action"] == "delete" and w.get("flowId") for w in target.writes())
    release.touch()
    applying.join(timeout=60)
    assert outcome and outcome[0].exit_code == 0, outcome and outcome[0].output
    assert "apply will wait first" in outcome[0].output
    # the run ended by itself (the replace then deleted the old flow with its runs: point 2
    # of the issue keeps them): nothing was cancelled, and the delete came after the run
    assert "cancel" not in {w["action"] for w in target.writes()}
    assert "replaced: flow" in outcome[0].output


def test_apply_cancels_runs_with_on_active_runs_cancel(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "never"
    write_long(target, held_until(release))
    assert apply().exit_code == 0
    instance = target.trigger("long")
    eventually(lambda: target.status(instance) == Status.RUNNING, "the run started")
    write_long(target, held_until(release) + "; echo changed")
    old = target.flow_id("long")
    done = apply("--on-active-runs", "cancel")
    assert done.exit_code == 0, done.output
    writes = target.writes()
    (cancel,) = [w for w in writes if w["action"] == "cancel"]
    assert cancel["code"] == 0
    retire = next(w for w in writes if w["action"] == "save" and str(w.get("id")) == str(old))
    assert retire["seen"] >= cancel["answered"]  # the old flow was retired only after its run


def test_a_disable_is_held_back_and_what_needs_nothing_of_it_is_made(
    target: Target, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    (target.flows / "long.yaml").write_text(
        "schedule: {cycle: day, cron: '0 0 3 * * ? *', start: '2024-01-01'}\n"
        f"tasks:\n  - name: t\n    command: '{held_until(release)}'\n"
    )
    (target.flows / "other.yaml").write_text(MANUAL_A)
    setup = apply()
    assert setup.exit_code == 0, setup.output
    instance = target.trigger("long")
    eventually(lambda: target.status(instance) == Status.RUNNING, "the run started")
    text = (target.flows / "long.yaml").read_text()
    (target.flows / "long.yaml").write_text(text.replace("start: '2024-01-01'}", "enabled: false}"))
    (target.flows / "other.yaml").write_text(
        "description: changed\nschedule: {type: manual}\ntasks: [{name: a, command: echo}]\n"
    )
    result = apply()
    assert result.exit_code == 1, result.output
    assert "HELD   disable  long: blocked: running now:" in result.output
    assert "ok     update   other: saved" in result.output
    assert "fires before (GMT+0): " in result.output
    assert "fires after  (GMT+0): never (scheduling paused)" in result.output
    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")


# -- point 6: problems before apply -------------------------------------------------------------


def test_a_dangling_reference_is_a_plan_error_with_its_place(target: Target) -> None:
    (target.flows / "up.yaml").write_text(MANUAL_A)
    assert apply().exit_code == 0
    (target.flows / "down.yaml").write_text(
        "schedule: {type: manual}\n"
        "tasks:\n"
        "  - name: b\n"
        "    command: echo\n"
        "    depends_on:\n"
        "      - {flow: up, task: a}\n"
        "      - {flow: nowhere}\n"
    )
    target.forget()
    plan = run_cli("plan")
    assert plan.exit_code == 1
    path = "flows/down.yaml"
    assert (
        f"{path}:7:9: task 'b' depends on workflow 'nowhere', which is neither in the "
        "files nor on the target"
    ) in plan.output
    assert target.requests() and target.writes() == []

    applied = apply()
    assert applied.exit_code == 1
    assert f"{path}:7:9:" in applied.output
    assert "down" not in {w.get("flowName") for w in target.writes()}


def test_a_task_reference_checks_the_target_and_the_files(target: Target) -> None:
    (target.flows / "up.yaml").write_text(MANUAL_A)
    assert apply().exit_code == 0
    (target.flows / "up.yaml").unlink()  # on the target only now
    down = MANUAL + "tasks:\n  - {name: b, command: echo, depends_on: [{flow: up, task: z}]}\n"
    (target.flows / "down.yaml").write_text(down)
    plan = run_cli("plan")
    assert plan.exit_code == 1
    assert (
        "flows/down.yaml:3:43: task 'b' depends on task 'z' of workflow 'up', "
        "which has no such task"
    ) in plan.output
    (target.flows / "down.yaml").write_text(down.replace("task: z", "task: a"))
    assert run_cli("plan").exit_code == 0


def test_validate_finds_a_missing_task_of_a_workflow_in_the_files(target: Target) -> None:
    (target.flows / "up.yaml").write_text("tasks: [{name: extract, command: echo}]\n")
    (target.flows / "down.yaml").write_text(
        "tasks:\n  - name: b\n    command: echo\n    depends_on:\n"
        "      - {flow: up, task: extrakt}\n"
        "      - {flow: elsewhere, task: x}\n"  # not in the files: the target decides
    )
    result = run_cli("validate")
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == (
        "flows/down.yaml:5:9: task 'b' depends on task 'extrakt' of workflow 'up', which has "
        "no such task (did you mean 'extract'?)"
    )
    assert "1 problem in 1 of 2 files" in result.output


def test_a_change_the_user_may_not_make_is_blocked_and_not_sent(target: Target) -> None:
    assert apply().exit_code == 0  # the owned root exists
    root = next(
        c["key"]
        for c in target.api.data("GET", "directories", "listWorkFlowDirs")[0]["children"]  # type: ignore[index]
        if c["title"] == "gitsync"
    )
    body = {
        "flowName": "bobs",
        "dirId": root,
        "flowJson": simple_flow("a", owners="bob"),
    }
    target.api.call("POST", "flows", "import", body, user="u_bob")
    (target.flows / "bobs.yaml").write_text(
        "description: mine now\nowners: [bob]\n"
        "schedule: {cycle: day, cron: '0 0 0 * * ? *', start: '2024-01-01', enabled: false}\n"
        "tasks: [{name: a, command: echo a, allow_reference: true}]\n"
    )
    plan = run_cli("plan", "-o", "json")
    assert plan.exit_code == 0, plan.output
    (change,) = json.loads(plan.output)["changes"]
    assert change["action"] == "update_flow", change
    assert "not one of its owners" in change["blocked"]
    target.forget()
    result = apply()
    assert result.exit_code == 1
    assert "HELD   update   bobs: blocked: you may not change this workflow" in result.output
    assert {w["action"] for w in target.writes()} == {"import", "delete"}  # the lock only
    assert not any(r["action"] == "loadForEdit" for r in target.requests())


def test_a_delete_that_referrers_block_names_them(target: Target) -> None:
    (target.flows / "up.yaml").write_text(MANUAL_A)
    (target.flows / "down.yaml").write_text(
        "schedule: {type: manual}\ntasks: [{name: b, command: echo, depends_on: [{flow: up}]}]\n"
    )
    (target.flows / "third.yaml").write_text(MANUAL + "tasks: [{name: c, command: echo}]\n")
    assert apply().exit_code == 0
    (target.flows / "up.yaml").unlink()
    plan = run_cli("plan", "--prune", "--allow-mass-delete")
    assert "✗ blocked: still referenced by down" in plan.output, plan.output
    target.forget()
    result = apply("--prune", "--allow-mass-delete")
    assert result.exit_code == 1
    assert not any(w["action"] == "delete" and w.get("flowId") for w in target.writes()[1:-1])
    # the referrer drops its reference in the same commit: one apply does both
    (target.flows / "down.yaml").write_text(MANUAL + "tasks: [{name: b, command: echo}]\n")
    result = apply("--prune", "--allow-mass-delete")
    assert result.exit_code == 0, result.output
    assert run_cli("plan", "--prune", "--detailed-exitcode").exit_code == 0


# -- reads only for the flows that change --------------------------------------------------------


@pytest.mark.parametrize("target", [False, True], ids=["strict", "extensions"], indirect=True)
def test_a_plan_reads_more_only_for_the_flows_that_change(target: Target) -> None:
    """Strict (as EnOS): an Export and a Get Flow per flow, the Get Flow for the scheduling
    state, whose rights the guards then use. With the engine's extensions, Export alone."""
    per_flow = ["export"] if target.extensions else ["export", "get"]
    for i in range(6):
        (target.flows / f"f{i}.yaml").write_text(
            f"schedule: {{cycle: day, cron: '0 0 {i} * * ? *'}}\n"
            "tasks: [{name: a, command: echo}]\n"
        )
    assert apply().exit_code == 0
    target.forget()
    assert run_cli("plan", "--detailed-exitcode").exit_code == 0
    actions = sorted(r["action"] for r in target.requests())
    assert actions == [*sorted(per_flow * 6), "listWorkFlowDirs"]  # as before the guards

    (target.flows / "f1.yaml").write_text(
        "schedule: {cycle: day, cron: '0 30 1 * * ? *'}\ntasks: [{name: a, command: echo}]\n"
    )
    f2 = target.flows / "f2.yaml"
    f2.write_text("description: new\n" + f2.read_text())
    target.forget()
    plan = run_cli("plan")
    extra = sorted(r["action"] for r in target.requests() if r["action"] not in per_flow)
    # the rights of f1 and f2 come with the reads above (strict, as on EnOS: the Get Flow
    # that supplies the scheduling state; with the extensions: Export): no request of their own
    assert extra == ["getTimeZone", "listWorkFlowDirs"]
    assert sorted(r["action"] for r in target.requests() if r["action"] in per_flow) == sorted(
        per_flow * 6
    )
    lines = plan.output.splitlines()
    before = next(line for line in lines if "fires before" in line)
    after = next(line for line in lines if "fires after" in line)
    assert before.count(" 01:00:00") == 3 and after.count(" 01:30:00") == 3, plan.output


# -- apply's look just before a disturbing change, with a clock passed in ----------------------


def guard_for(
    client: Client, policy: RunPolicy, clock: list[float]
) -> tuple[RunGuard, list[float]]:
    """A RunGuard on a clock that only its sleeps move; the pauses it took."""
    state = remote.read_state(client, ("gitsync",))
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        slept.append(seconds)

    return RunGuard(client, state, policy, clock=lambda: clock[0], sleep=sleep), slept


def started_long_run(target: Target, release: Path) -> tuple[int, str]:
    write_long(target, held_until(release))
    assert apply().exit_code == 0
    instance = target.trigger("long")
    eventually(lambda: target.status(instance) == Status.RUNNING, "the run started")
    return target.flow_id("long"), instance


def test_waiting_for_runs_ends_at_the_deadline(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "release"
    flow_id, instance = started_long_run(target, release)
    change = Change(Kind.REPLACE_FLOW, ("long",), flow_id=flow_id)
    clock = [100.0]
    with Client(target.url, SPEC_ORG, SPEC_USER) as client:
        guard, slept = guard_for(client, RunPolicy(OnActiveRuns.WAIT, timeout=5), clock)
        with pytest.raises(GitsyncError, match=f"not made: still running now: {instance}"):
            guard.before(change)
        assert slept == [0.5, 1.0, 2.0, 1.5]
        assert target.status(instance) == Status.RUNNING
        # the default: refuse at once (a run that started after the plan was read)
        stop, slept = guard_for(client, RunPolicy(), clock)
        with pytest.raises(GitsyncError, match=f"held back: running now: {instance}"):
            stop.before(change)
        assert slept == []
        # a change that does not disturb runs is not looked at
        stop.before(Change(Kind.UPDATE_FLOW, ("long",), flow_id=flow_id))
    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")


def test_waiting_for_runs_returns_once_they_end(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "release"
    flow_id, instance = started_long_run(target, release)
    clock = [0.0]
    with Client(target.url, SPEC_ORG, SPEC_USER) as client:
        guard, slept = guard_for(client, RunPolicy(OnActiveRuns.WAIT, timeout=60), clock)
        ended = guard.sleep

        def sleep(seconds: float) -> None:  # the run ends while apply waits
            ended(seconds)
            release.touch()
            eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended")

        guard.sleep = sleep
        guard.before(Change(Kind.DISABLE, ("long",), flow_id=flow_id))
        assert slept == [0.5]
    assert "cancel" not in {w["action"] for w in target.writes()}


# -- odd answers: the service's word is untrusted input ---------------------------------------


def test_odd_answers_to_the_guards_reads(target: Target, tmp_path: Path) -> None:
    release = tmp_path / "release"
    flow_id, instance = started_long_run(target, release)
    answers: dict[str, Any] = {}

    def rewrite(key: str, answer: Any) -> Any:
        action = key.rpartition("action=")[2]
        return answers[action](answer) if action in answers and answer["code"] == 0 else answer

    def rows(answer: Any) -> Any:
        real = answer["data"]["flowInsts"][0]
        odd = [
            {**real, "flowId": str(flow_id), "statusDesc": None, "startTime": None},
            {**real, "instanceId": "elsewhere-1", "flowId": flow_id + 1000},  # another flow
            {**real, "instanceId": "by-name-1", "flowId": None},
        ]
        return {**answer, "data": {"flowInsts": odd, "count": 3}}

    with RunningProxy(target.url, Faults(rewrite=rewrite)) as proxy:
        write_target(target.repo, proxy.url, "gitsync")
        write_long(target, held_until(release) + "; echo changed")
        answers["search"] = rows
        plan = run_cli("plan")
        assert plan.exit_code == 0, plan.output
        assert f"running now: {instance} (), not started, due " in plan.output
        assert "running now: by-name-1 (RUNNING)" in plan.output
        assert "elsewhere-1" not in plan.output

        answers["search"] = lambda a: {**a, "data": {"flowInsts": [{"flowId": flow_id}]}}
        broken = run_cli("plan")
        assert broken.exit_code == 1
        assert broken.output.splitlines() == [
            "error: List Flow Instances: instanceId: the service answered null where the API "
            "documents a string"
        ], broken.output

        del answers["search"]
        extension = ("active", "hasEditPri", "locked", "isUserLocked")
        for flag, held in ((False, True), ("false", True), (None, False), ("yes", False)):
            # the engine's Export extension states the rights (and the scheduling state, of
            # the manual flow: 0); real EnOS's does not, and Get Flow does
            answers["export"] = lambda a, flag=flag: {
                **a,
                "data": {**a["data"], "active": 0, "hasEditPri": flag},
            }
            blocked = json.loads(run_cli("plan", "-o", "json").output)["changes"][0]["blocked"]
            assert ("not one of its owners" in blocked) is held, (flag, blocked)
            answers["export"] = lambda a: {
                **a,
                "data": {k: v for k, v in a["data"].items() if k not in extension},
            }
            answers["get"] = lambda a, flag=flag: {**a, "data": {**a["data"], "hasEditPri": flag}}
            blocked = json.loads(run_cli("plan", "-o", "json").output)["changes"][0]["blocked"]
            assert ("not one of its owners" in blocked) is held, (flag, blocked)
            del answers["get"]
    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")


def test_a_time_zone_not_understood_is_said(target: Target) -> None:
    daily = "schedule: {cycle: day, cron: '0 0 5 * * ? *'}\ntasks: [{name: a, command: echo}]\n"
    (target.flows / "a.yaml").write_text(daily)
    setup = apply()
    assert setup.exit_code == 0, setup.output
    (target.flows / "a.yaml").write_text(daily.replace(" 5 ", " 6 "))

    def rewrite(key: str, answer: Any) -> Any:
        if key.endswith("getTimeZone"):
            return {**answer, "data": {"timezone": "Mars/Olympus"}}
        return answer

    with RunningProxy(target.url, Faults(rewrite=rewrite)) as proxy:
        write_target(target.repo, proxy.url, "gitsync")
        plan = run_cli("plan")
    assert "fires after  (UTC; the target's zone 'Mars/Olympus' is not understood): " in plan.output
    assert plan.output.count(" 06:00:00") == 3, plan.output


def test_gitsync_run_does_not_replace_a_workflow_under_a_run(
    target: Target, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    _, instance = started_long_run(target, release)
    write_long(target, held_until(release) + "; echo changed")
    result = run_cli("run", "flows/long.yaml")
    assert result.exit_code == 1
    assert f"FAILED replace  long: held back: running now: {instance} (RUNNING)" in result.output
    assert target.status(instance) == Status.RUNNING
    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")


def test_ctrl_c_ends_the_wait_for_runs_and_releases_the_lock(
    target: Target, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    _, instance = started_long_run(target, release)
    write_long(target, held_until(release) + "; echo changed")
    target.forget()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "apply", "--auto-approve", "--on-active-runs", "wait"],
        cwd=target.repo,
        env={**os.environ, "GITSYNC_TARGET": "test"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(
            lambda: sum(r["action"] == "search" for r in target.requests()) >= 2,
            "apply waits for the run",
            limit=60,
        )
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)  # not the 30 minutes of --wait-timeout
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, (out, err)
    assert "not made: apply was stopped while it waited for runs" in out
    assert "the lock was released" in err
    assert target.status(instance) == Status.RUNNING
    assert [w["action"] for w in target.writes()] == ["import", "delete"]  # the lock only
    release.touch()
    eventually(lambda: target.status(instance) == Status.SUCCESS, "the run ended SUCCESS")
    assert apply().exit_code == 0  # no --force-unlock needed

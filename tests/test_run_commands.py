"""`gitsync run`, `instances`, `logs`, `cancel` say what they mean (issue 17, point 5): an
unknown workflow is an error with a did-you-mean; runs show their trigger time and duration;
a stopped `gitsync run` says what becomes of its run and how to follow or cancel it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitsync.engine.server import EngineOptions, RunningEngine, User
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
from tests.test_guards import held_until
from tests.test_runs import trigger

# -- unknown workflows ---------------------------------------------------------------------


@pytest.fixture
def repo(example_repo: Path) -> Path:
    return example_repo


@pytest.mark.parametrize("command", ["instances", "logs", "cancel", "run"])
def test_a_misspelt_workflow_is_an_error_with_a_did_you_mean(repo: Path, command: str) -> None:
    result = run_cli(command, "sales_etll")
    assert result.exit_code == 1, result.output
    assert "error: no workflow 'sales_etll' in " in result.output
    assert "; did you mean 'sales_etl'" in result.output


@pytest.mark.parametrize("command", ["instances", "logs", "cancel", "run"])
@pytest.mark.parametrize(
    "text", ["flows/nope.yaml", "README.md", "gitsync.yaml", "flows", "../outside.yaml"]
)
def test_a_path_that_is_not_a_workflow_file_is_an_error(
    repo: Path, command: str, text: str
) -> None:
    (repo / "README.md").write_text("# not a workflow\n")
    (repo.parent / "outside.yaml").write_text("tasks: [{name: a, command: 'true'}]\n")
    result = run_cli(command, text)
    assert result.exit_code == 1, result.output
    assert f"error: {text} is not a workflow file (those are the .yaml and .yml" in result.output


def test_instances_no_such_flow_exits_1(repo: Path) -> None:
    result = run_cli("instances", "no_such_flow")
    assert result.exit_code == 1
    assert "error: no workflow 'no_such_flow' in" in result.output
    assert "; did you mean one of '" in result.output and "(the nearest of 6)" in result.output
    assert "no instances" not in result.output


def test_a_workflow_by_its_file_or_only_on_the_target_is_known(repo: Path) -> None:
    assert run_cli("instances", "flows/sales/daily/sales_etl.yaml").output.startswith(
        "no instances of sales_etl"
    )
    (repo / "flows" / "hand.yaml").write_text("tasks:\n  - {name: t, command: echo hand}\n")
    assert run_cli("apply", "--auto-approve", "-q").exit_code == 0
    (repo / "flows" / "hand.yaml").unlink()  # on the target only now
    listed = run_cli("instances", "hand")
    assert listed.exit_code == 0 and listed.output == "no instances of hand\n"
    ran = run_cli("run", "hand")
    assert ran.exit_code == 0, ran.output
    assert "hand: no workflow file here; running it as it is on the target" in ran.output


def test_instances_shows_trigger_time_and_duration_and_logs_takes_a_workflow(
    repo: Path,
) -> None:
    (repo / "flows" / "two.yaml").write_text(
        "tasks:\n  - {name: a, command: echo first-a}\n"
        "  - {name: b, command: echo first-b, depends_on: [a]}\n"
    )
    assert run_cli("run", "two").exit_code == 0
    listed = run_cli("instances", "two").output.splitlines()
    assert listed[0].split() == [
        "INSTANCE", "STATUS", "TRIGGER", "DURATION", "START", "END", "VERSION"
    ]  # fmt: skip
    row = listed[1].split()
    assert row[1] == "SUCCESS" and re.fullmatch(r"\d+s", row[4]), listed
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", row[2]) and re.fullmatch(r"\d\d:\d\d:\d\d", row[3])
    logs = run_cli("logs", "two")
    assert logs.exit_code == 0
    assert logs.output.startswith(f"latest run of two: {row[0]}\n")
    assert "---- a (SUCCESS) ----\n" in logs.output and "\nfirst-a\n" in logs.output
    never = run_cli("logs", "sales_etl")
    assert never.exit_code == 1 and "sales_etl has not run yet" in never.output


def test_cancel_takes_a_workflow_and_cancels_its_unfinished_runs(
    repo: Path, api: Api, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    (repo / "flows" / "long.yaml").write_text(
        f"tasks:\n  - name: t\n    command: '{held_until(release)}'\n"
    )
    assert run_cli("apply", "--auto-approve", "-q").exit_code == 0
    nothing = run_cli("cancel", "long")
    assert nothing.exit_code == 1 and "long has no waiting or running run" in nothing.output
    flow_id = api.data("GET", "flows", "getMyFlow", expression="long")[0]["flowId"]
    instance = trigger(api, int(flow_id))
    result = run_cli("cancel", "long")
    assert result.exit_code == 0 and result.output == f"cancelled {instance}\n"
    eventually(lambda: _status(api, instance) == "CANCEL", "the run is cancelled")


# -- a stopped `gitsync run` ---------------------------------------------------------------


def _long_repo(tmp_path: Path, url: str | None) -> tuple[Path, Path, Path]:
    """A repository with one long workflow; on the engine at ``url`` (target 'served'), or
    on the embedded one. Its task says it started, then waits for the release file."""
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    if url:
        write_target(repo, url, "gitsync", name="served")
    else:
        (repo / "gitsync.yaml").write_text("flows: flows\n")
    started, release = tmp_path / "started", tmp_path / "release"
    command = f"touch {started}; {held_until(release)}"
    (repo / "flows" / "long.yaml").write_text(f"tasks:\n  - name: t\n    command: '{command}'\n")
    return repo, started, release


def _run(repo: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITSYNC_TARGET"}
    return subprocess.Popen(
        [sys.executable, "-m", "gitsync", "run", "long", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _instance(err: str) -> str:
    found = re.search(r"(\d+-\d+)", err)
    assert found, err
    return found.group(1)


STOPS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


@pytest.mark.parametrize(("sig", "code"), STOPS, ids=[s.name for s, _ in STOPS])
def test_a_stopped_run_on_a_served_engine_goes_on_and_says_how_to_follow_it(
    tmp_path: Path, sig: signal.Signals, code: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = EngineOptions(tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        repo, started, _ = _long_repo(tmp_path, engine.url)
        proc = _run(repo, "--target", "served")
        eventually(started.exists, "the task started", limit=60)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code, (out, err)
        assert "Traceback" not in err
        instance = _instance(err)
        assert f"The run goes on: {instance} on target 'served' ({engine.url}" in err
        assert f"  follow it:  gitsync logs {instance} --target served\n" in err
        assert "              gitsync instances long --target served\n" in err
        assert f"  cancel it:  gitsync cancel {instance} --target served\n" in err
        api = Api(engine.url)
        assert _status(api, instance) == "RUNNING"
        monkeypatch.chdir(repo)  # the printed commands work as printed
        followed = run_cli("logs", instance, "--target", "served")
        assert followed.exit_code == 0 and "---- t (RUNNING) ----" in followed.output
        assert run_cli("cancel", instance, "--target", "served").exit_code == 0
        eventually(lambda: _status(api, instance) == "CANCEL", "cancelled as printed")
        api.http.close()


def test_a_stopped_run_with_cancel_on_interrupt_is_cancelled(tmp_path: Path) -> None:
    options = EngineOptions(tmp_path / "engine", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        repo, started, _ = _long_repo(tmp_path, engine.url)
        proc = _run(repo, "--target", "served", "--cancel-on-interrupt")
        eventually(started.exists, "the task started", limit=60)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, (out, err)
        instance = _instance(err)
        assert f"cancelled {instance}" in err and "goes on" not in err
        api = Api(engine.url)
        assert _status(api, instance) in ("CANCEL", "RUNNING")  # cancelled; its process ends soon
        eventually(lambda: _status(api, instance) == "CANCEL", "the run ends cancelled")
        api.http.close()


def test_a_stopped_run_on_its_own_embedded_engine_says_it_is_cancelled(tmp_path: Path) -> None:
    repo, started, _ = _long_repo(tmp_path, None)
    proc = _run(repo)
    eventually(started.exists, "the task started", limit=60)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    instance = _instance(err)
    assert f"{instance} is cancelled when the engine embedded in this command stops" in err
    assert "stopped at once instead, its unfinished tasks fail as after a crash" in err
    assert "gitsync serve" in err
    with RunningEngine(EngineOptions(repo / ".gitsync" / "engine")) as engine:
        api = Api(engine.url, user="u_local", org="o_local")
        assert _status(api, instance) == Status.CANCEL.name
        api.http.close()


def test_a_stopped_run_on_a_found_engine_goes_on(tmp_path: Path) -> None:
    """The embedded target, but the folder's engine was already live: the run outlives the
    command that started it, and the hints carry no --target."""
    repo, started, release = _long_repo(tmp_path, None)
    with RunningEngine(EngineOptions(repo / ".gitsync" / "engine")) as engine:
        proc = _run(repo)
        eventually(started.exists, "the task started", limit=60)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err)
        instance = _instance(err)
        assert f"The run goes on: {instance} on {engine.url} (" in err
        assert f"  cancel it:  gitsync cancel {instance}\n" in err
        api = Api(engine.url, user="u_local", org="o_local")
        assert _status(api, instance) == "RUNNING"
        release.touch()
        eventually(lambda: _status(api, instance) == "SUCCESS", "the run ends SUCCESS")
        api.http.close()


# -- two runs at once on one target --------------------------------------------------------


def test_run_waits_a_while_for_another_applys_lock(repo: Path, engine: RunningEngine) -> None:
    """Two `gitsync run` started together both apply first: the second waits for the
    first's lock (briefly held) instead of failing; a lock that stays fails as apply does."""
    import datetime as dt

    from gitsync import config, remote
    from gitsync.cli.following import LOCK_WAIT, apply_waiting
    from gitsync.client import Client
    from gitsync.errors import LockError
    from gitsync.validate import validate_paths

    settings = config.load()
    target = settings.target()
    path = repo / "flows" / "sales" / "daily" / "sales_etl.yaml"
    (workflow,) = validate_paths([path], settings.flows).workflows
    with Client(engine.url, SPEC_ORG, SPEC_USER) as client:
        now = dt.datetime.now(dt.UTC)
        held = remote.acquire_lock(client, target.root, "other@host", now)
        slept: list[float] = []

        def other_apply_ends(seconds: float) -> None:
            slept.append(seconds)
            remote.release_lock(client, held)

        applied = apply_waiting(client, target, workflow, False, sleep=other_apply_ends)
        assert not applied.failed and len(slept) == 1
        assert client.find_flow_id("sales_etl") is not None
        remote.acquire_lock(client, target.root, "other@host", now)  # and it stays
        moments = iter(float(n) for n in range(1000))
        with pytest.raises(LockError, match="another apply holds the lock"):
            apply_waiting(client, target, workflow, False, clock=lambda: next(moments) * 0.25,
                          sleep=lambda s: None)  # fmt: skip
        assert next(moments) * 0.25 > LOCK_WAIT


def test_logs_of_a_run_whose_tasks_have_not_started_says_so(in_tmp: Path, tmp_path: Path) -> None:
    options = EngineOptions(tmp_path / "one", users=[User(SPEC_USER, SPEC_ORG)], parallelism=1)
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        write_target(in_tmp, engine.url, api.root())
        slow = simple_flow("a")
        slow["tasks"][0]["cmd"] = "sleep 60"
        busy = trigger(api, api.import_flow("busy", slow))
        eventually(lambda: _started(api, busy), "the busy run's task started")
        queued = trigger(api, api.import_flow("queued", simple_flow("b")))
        try:
            result = run_cli("logs", queued, "--target", "test")
        finally:
            for one in (queued, busy):
                api.call("POST", "flowInstances", "cancel", {"flowInstId": one})
            api.http.close()
    assert result.exit_code == 0, result.output
    assert result.output == f"no task of {queued} has started yet: no logs\n"


def _started(api: Api, instance_id: str) -> bool:
    answer: Any = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
    return all(t.get("taskInstId") for t in json.loads(answer["graph"])["tasks"])


@pytest.mark.parametrize("command", ["instances", "logs", "cancel", "run"])
def test_an_empty_name_is_called_so(repo: Path, command: str) -> None:
    result = run_cli(command, "")
    assert result.exit_code == 1
    assert "error: an empty name is no workflow" in result.output


def _status(api: Api, instance: str) -> str:
    """The run's status as Get Flow Instance states it."""
    return str(api.data("GET", "flowInstances", "get", flowInstId=instance)["statusDesc"])

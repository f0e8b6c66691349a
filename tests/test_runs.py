"""The engine really runs workflows: DAG order, failures, timeouts, retries, cancel,
crash recovery, and `gitsync run` / `instances` / `logs` / `cancel`."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.statuses import Status
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, Api, eventually, run_cli, simple_flow
from tests.test_engine_api import request_of, response_sample, same_shape, send


def NOW_MS() -> int:
    return int(time.time() * 1000)


def flow(*tasks: tuple[str, str], relations: list[tuple[str, str]] = (), **task_extra: Any) -> dict:
    body = simple_flow(*[t for t, _ in tasks], relations=relations)
    for task, (_, cmd) in zip(body["tasks"], tasks, strict=True):
        task.update(cmd=cmd, retryLimit=0, timeout=30, **task_extra)
    return body


def wait_done(api: Api, instance_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        if not Status(inst["status"]).live:
            return inst  # type: ignore[return-value]
        time.sleep(0.05)
    raise AssertionError(f"{instance_id} did not finish")


def task_status(inst: dict[str, Any]) -> dict[str, str]:
    return {t["taskName"]: t.get("status", "") for t in json.loads(inst["graph"])["tasks"]}


def trigger(api: Api, flow_id: int, **extra: Any) -> str:
    body = {"flowId": flow_id, "triggerTime": NOW_MS(), **extra}
    return api.data("POST", "flows", "trigger", body)["flowInstanceId"]  # type: ignore[index]


def log_of(api: Api, inst: dict[str, Any], task: str) -> str:
    node = next(t for t in json.loads(inst["graph"])["tasks"] if t["taskName"] == task)
    return api.data("GET", "taskInstances", "getLog", taskInstId=node["taskInstId"])["log"]  # type: ignore[index]


def test_spec_run_samples_answer_in_the_documented_shape(api: Api, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    body = flow(
        ("tass", f"echo ${{REPLACE}} >> {marker}"),
        ("after", "sleep 0.2"),
        relations=[("tass", "after")],
    )
    body["parameters"] = '[{"key":"REPLACE","value":"lili1"}]'
    api.import_flow("sample_flow", body, flow_id=3377)
    triggered = send(api, "3.13")
    same_shape(triggered, response_sample("3.13"))
    first = wait_done(api, triggered["data"]["flowInstanceId"])
    assert first["status"] == 1 and marker.read_text() == "lili1\n"
    assert triggered["data"]["flowInstanceId"].startswith("3377-2019112201")  # trigger minute

    updated = send(api, "3.15")
    same_shape(updated, response_sample("3.15"))
    wait_done(api, updated["data"]["flowInstanceId"])
    assert marker.read_text().splitlines()[-1] == "ddee"  # parameters for that run only

    graph = json.loads(api.data("GET", "flows", "get", flowId=3377)["graph"])
    after = next(t["taskId"] for t in graph["tasks"] if t["taskName"] == "after")
    from_task = send(
        api, "3.14", {"flowId": 3377, "taskId": int(after), "triggerTime": 1594016819108}
    )
    same_shape(from_task, response_sample("3.14"))
    inst = wait_done(api, from_task["data"]["flowInstanceId"])
    assert task_status(inst) == {"tass": "SKIP", "after": "SUCCESS"}
    again = send(api, "3.14", {"flowId": 3377, "taskId": int(after), "triggerTime": NOW_MS()})
    assert again["code"] == 62102 and "repeatedly in 1 minute" in again["msg"]

    listed = send(
        api,
        "3.16",
        {
            **request_of("3.16")[3],
            "fromTriggerTime": 0,
            "toTriggerTime": NOW_MS(),
            "status": "-1,0,1,2,5,6,8,10",
        },
    )
    same_shape(listed, response_sample("3.16"))
    assert listed["data"]["count"] == 3

    got = send(api, "3.17", flowInstId=triggered["data"]["flowInstanceId"])
    same_shape(got, response_sample("3.17"))
    node = json.loads(got["data"]["graph"])["tasks"][0]
    task = send(api, "3.19", taskInstId=node["taskInstId"])
    same_shape(task, response_sample("3.19"))
    assert task["data"]["stsDesc"] == "SUCCESS" and task["data"]["cmd"] == f"echo lili1 >> {marker}"
    log = send(api, "3.20", taskInstId=node["taskInstId"], maxLength="")
    same_shape(log, response_sample("3.20"))
    assert "run  num:\t1\ninstance:\t" in log["data"]["log"]
    assert log["data"]["log"].startswith("=" * 73)
    short = api.data("GET", "taskInstances", "getLog", taskInstId=node["taskInstId"], maxLength=5)
    assert short == {"log": log["data"]["log"][-5:]}

    slow = api.import_flow("slow", flow(("sleep", "sleep 30")))
    running = trigger(api, slow)
    cancelled = send(api, "3.18", {"flowInstId": running})
    assert cancelled == {"code": 0, "msg": "OK", "data": ""}
    assert wait_done(api, running)["statusDesc"] == "CANCEL"


def test_dag_order_failure_and_skip(api: Api, tmp_path: Path) -> None:
    out = tmp_path / "order"
    body = flow(
        ("a", f"echo a >> {out}"),
        ("b", f"echo b >> {out}; exit 3"),
        ("c", f"echo c >> {out}"),
        ("d", f"echo d >> {out}"),
        ("e", f"echo e >> {out}"),
        relations=[("a", "b"), ("a", "c"), ("b", "d"), ("c", "e"), ("d", "e")],
    )
    inst = wait_done(api, trigger(api, api.import_flow("dag", body)))
    assert inst["statusDesc"] == "FAIL"
    assert task_status(inst) == {
        "a": "SUCCESS",
        "b": "FAIL",
        "c": "SUCCESS",
        "d": "SKIP",
        "e": "SKIP",
    }
    lines = out.read_text().split()
    assert lines[0] == "a" and sorted(lines) == ["a", "b", "c"]
    assert "[gitsync] exit code 3; success code is 0" in log_of(api, inst, "b")


def test_success_code_retries_and_intervals(api: Api, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    body = flow(
        ("flaky", f"echo x >> {counter}; test $(wc -l < {counter}) -ge 3"), ("three", "exit 3")
    )
    body["tasks"][0].update(retryLimit=3, retryInterval=1)
    body["tasks"][1]["successCode"] = "3"
    started = time.monotonic()
    inst = wait_done(api, trigger(api, api.import_flow("retry", body)))
    assert inst["statusDesc"] == "SUCCESS"
    assert time.monotonic() - started >= 2  # two intervals of 1 s
    assert counter.read_text().count("x") == 3
    node = json.loads(inst["graph"])["tasks"][0]
    detail = api.data("GET", "taskInstances", "get", taskInstId=node["taskInstId"])
    assert (detail["runNum"], detail["recallNum"], detail["recallLimit"]) == (3, 2, 3)
    assert log_of(api, inst, "flaky").count("run  num:") == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie no one has reaped yet is gone for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().split()) >= 2:
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the task did not start")


def test_timeout_kills_the_whole_process_group(api: Api, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = flow(("slow", f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"))
    body["tasks"][0].update(timeout=1, retryLimit=1)
    inst = wait_done(api, trigger(api, api.import_flow("timeout", body)))
    assert inst["statusDesc"] == "FAIL"
    assert task_status(inst) == {"slow": "TIMEOUT"}
    assert len(pids.read_text().split()) == 4  # two attempts, each a shell and a sleep
    assert not any(_alive(int(p)) for p in pids.read_text().split())
    assert "[gitsync] timed out after 1 s; process group killed" in log_of(api, inst, "slow")


def test_cancel_kills_every_process_and_marks_everything(api: Api, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cmd = f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    body = flow(
        ("one", cmd),
        ("two", cmd),
        ("after", "echo never"),
        relations=[("one", "after"), ("two", "after")],
    )
    instance_id = trigger(api, api.import_flow("cancel_me", body))
    eventually(lambda: len(_pids(pids)) >= 4, "both tasks wrote their pids")
    found = _pids(pids)
    assert api.data("POST", "flowInstances", "cancel", {"flowInstId": instance_id}) == ""
    inst = wait_done(api, instance_id)
    assert inst["statusDesc"] == "CANCEL"
    assert task_status(inst) == {"one": "CANCEL", "two": "CANCEL", "after": "CANCEL"}
    eventually(lambda: not any(_alive(p) for p in found), "every process of the run is gone")
    again = api.call("POST", "flowInstances", "cancel", {"flowInstId": instance_id})
    assert again["code"] == 62102 and "cannot be cancelled" in again["msg"]


def test_parallelism_is_bounded(tmp_path: Path) -> None:
    log = tmp_path / "spans"
    options = EngineOptions(
        tmp_path / "d", parallelism=2, users=[User(SPEC_USER, SPEC_ORG, "alice")]
    )
    cmd = f"echo start $(date +%s.%N) >> {log}; sleep 0.4; echo end $(date +%s.%N) >> {log}"
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        inst = wait_done(
            api, trigger(api, api.import_flow("wide", flow(*[(f"t{i}", cmd) for i in range(6)])))
        )
        api.http.close()
    assert inst["statusDesc"] == "SUCCESS"
    events = sorted(
        (float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines())
    )
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak == 2


@pytest.mark.parametrize("launch", ["posix_spawn", "Popen"])
def test_how_a_task_process_starts(
    launch: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of starting a task give it the same process: the run's working
    directory, its own session, stdin empty, SIGPIPE back to default, and no descriptor
    the engine inherited (a pipe's write end held open would keep a reader waiting)."""
    from gitsync.engine import spawn

    if launch == "Popen":
        monkeypatch.setattr(spawn, "libc_spawn_available", lambda: False)
    elif not spawn.libc_spawn_available():
        pytest.skip("libc's posix_spawn is used on glibc 2.34 or later only")
    assert spawn.Launcher().spawns == (launch == "posix_spawn")
    out, fds = tmp_path / "seen", tmp_path / "fds"
    cmd = (
        f"pwd > {out}; ps -o sid= -p $$ >> {out}; echo $$ >> {out}; cat | wc -c >> {out}; "
        f"yes | head -n 1; touch here; ls -l /proc/$$/fd > {fds}"
    )
    reader, inherited = os.pipe()
    os.set_inheritable(inherited, True)
    options = EngineOptions(tmp_path / "d", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        body = flow(("look", cmd), ("fails", "exit 3"), ("after", "true"), ("nul", "touch a\0b"))
        body["relations"] = [{"sourceTaskName": "fails", "targetTaskName": "after", "rerun": True}]
        body["tasks"][1].update(retryLimit=1, retryInterval=0)
        instance_id = trigger(api, api.import_flow("launch", body))
        inst = wait_done(api, instance_id)
        look, fails = log_of(api, inst, "look"), log_of(api, inst, "fails")
        nul = log_of(api, inst, "nul")
        api.http.close()
    pipe = f"pipe:[{os.fstat(inherited).st_ino}]"
    os.close(inherited)
    os.close(reader)
    assert task_status(inst) == {"look": "SUCCESS", "fails": "FAIL", "after": "SKIP", "nul": "FAIL"}
    assert "cannot start the command: the command contains a NUL character" in nul
    assert not (tmp_path / "d" / "work" / instance_id / "a").exists()
    work = tmp_path / "d" / "work" / instance_id
    cwd, sid, pid, stdin_bytes = out.read_text().split()
    assert Path(cwd) == work and (work / "here").exists()
    assert sid == pid  # a session (and process group) of its own
    assert stdin_bytes == "0"
    assert "Broken pipe" not in look  # `yes` was killed by SIGPIPE, as in a shell
    assert fails.count("run  num:") == 2 and "[gitsync] retry 1 of 1" in fails
    if sys.platform.startswith("linux"):
        assert "/dev/null" in fds.read_text() and pipe not in fds.read_text()


def test_a_bug_in_the_runner_ends_that_instance_not_the_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fault inside the runner loop (here: recording how one task ended) marks that instance
    INTERNAL_ERROR, kills what it still runs, and the loop goes on running other instances."""
    from gitsync.engine.slots import Slots

    real = Slots._settled
    pids = tmp_path / "pids"

    def broken(self: Slots, attempt: Any, *rest: Any) -> None:
        if attempt.name == "boom":
            raise RuntimeError("injected fault")
        real(self, attempt, *rest)

    monkeypatch.setattr(Slots, "_settled", broken)
    options = EngineOptions(tmp_path / "d", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        body = flow(
            # boom ends only once slow has started (at most 30 s), so slow is running then
            ("boom", f"for i in $(seq 3000); do [ -s {pids} ] && break; sleep 0.01; done"),
            ("slow", f"sleep 60 & echo $! >> {pids}; echo $$ >> {pids}; wait"),
            ("after", "true"),
            relations=[("boom", "after")],
        )
        instance_id = trigger(api, api.import_flow("buggy", body))
        inst = wait_done(api, instance_id)
        other = wait_done(api, trigger(api, api.import_flow("fine", flow(("ok", "true")))))
        found = [int(p) for p in pids.read_text().split()] if pids.exists() else []
        api.http.close()
    assert inst["statusDesc"] == "INTERNAL_ERROR"
    assert task_status(inst) == {"boom": "INTERNAL_ERROR", "slow": "CANCEL", "after": "SKIP"}
    assert other["statusDesc"] == "SUCCESS"
    eventually(lambda: not any(_alive(p) for p in found), "the buggy run's processes are gone")
    engine_log = tmp_path / "d" / "logs" / instance_id / "engine.log"
    assert "[gitsync] internal error: RuntimeError('injected fault')" in engine_log.read_text()


def _processes_running(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
                if marker in command and (entry / "stat").read_text().split()[2] != "Z":
                    found.append(int(entry.name))
    return found


def test_a_bug_right_after_a_start_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot fails to record a process it has just started: the process is killed and
    reaped, and the instance ends INTERNAL_ERROR."""
    from gitsync.engine.journal import Journal

    real = Journal.task

    def failing(self: Journal, task_instance_id: str, **values: Any) -> None:
        if values.get("status") == 2 and "pid" in values:
            raise RuntimeError("injected fault")
        real(self, task_instance_id, **values)

    monkeypatch.setattr(Journal, "task", failing)
    marker = "61.4242"
    options = EngineOptions(tmp_path / "d", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        api = Api(engine.url)
        inst = wait_done(api, trigger(api, api.import_flow("lost", flow(("t", f"sleep {marker}")))))
        api.http.close()
    assert inst["statusDesc"] == "INTERNAL_ERROR"
    assert _processes_running(marker) == []


def test_parameters_and_system_variables(api: Api, tmp_path: Path) -> None:
    out = tmp_path / "vars"
    body = flow(
        (
            "show",
            f"echo ${{P}} ${{cal_dt}} ${{cal_dt8-1}} ${{this_hour}} '${{UNKNOWN}}' "
            f"${{instance_id}} > {out}",
        )
    )
    body["parameters"] = '[{"key":"P","value":"from-flow"}]'
    flow_id = api.import_flow("vars", body)
    trigger_time = dt.datetime(2024, 3, 1, 9, 30, tzinfo=dt.UTC)
    instance_id = api.data(
        "POST",
        "flows",
        "trigger",
        {"flowId": flow_id, "triggerTime": int(trigger_time.timestamp() * 1000)},
    )["flowInstanceId"]
    wait_done(api, instance_id)
    words = out.read_text().split()
    assert words[:6] == [
        "from-flow",
        "2024-02-29",
        "20240228",
        "2024-03-01",
        "09:00:00",
        "${UNKNOWN}",
    ]
    assert words[6].endswith(instance_id.split("-", 1)[1])


def test_task_types_that_need_enos(api: Api, tmp_path: Path) -> None:
    body = flow(("sync", "ignored"), ("after", "echo after"), relations=[("sync", "after")])
    body["tasks"][0]["type"] = "DATA_INTEGRATION"
    inst = wait_done(api, trigger(api, api.import_flow("needs_enos", body)))
    assert task_status(inst) == {"sync": "FAIL", "after": "SKIP"}
    assert "task type DATA_INTEGRATION needs EnOS" in log_of(api, inst, "sync")
    assert "`local:` command" in log_of(api, inst, "sync")
    body["tasks"][0]["localCmd"] = f"touch {tmp_path / 'stand-in'}"
    ok = wait_done(api, trigger(api, api.import_flow("has_local", body)))
    assert ok["statusDesc"] == "SUCCESS" and (tmp_path / "stand-in").exists()


def test_one_instance_per_workflow_and_future_triggers_wait(api: Api) -> None:
    flow_id = api.import_flow("serial", flow(("t", "sleep 0.5")))
    first, second = trigger(api, flow_id), trigger(api, flow_id)
    assert first != second
    assert api.data("GET", "flowInstances", "get", flowInstId=second)["statusDesc"] == "WAIT"
    a, b = wait_done(api, first), wait_done(api, second)
    assert b["startTime"] >= a["endTime"]
    later = trigger(api, flow_id, triggerTime=NOW_MS() + 1500)
    assert api.data("GET", "flowInstances", "get", flowInstId=later)["statusDesc"] == "WAIT"
    assert wait_done(api, later)["statusDesc"] == "SUCCESS"
    empty = api.import_flow("empty", dict(simple_flow(), tasks=[]))
    answer = api.call("POST", "flows", "trigger", {"flowId": empty, "triggerTime": NOW_MS()})
    assert answer == {
        "code": 62104,
        "data": None,
        "msg": "This workflow has no task. You cannot trigger it.",
    }


def test_list_flow_instances_filters_and_pages(api: Api) -> None:
    ids = {
        name: api.import_flow(name, flow(("t", "true" if name != "bad" else "false")))
        for name in ("good", "bad")
    }
    done = [
        wait_done(api, trigger(api, ids[n], triggerTime=NOW_MS() - i * 60_000))
        for i, n in enumerate(["good", "good", "bad"])
    ]
    assert [d["statusDesc"] for d in done] == ["SUCCESS", "SUCCESS", "FAIL"]
    base = {"type": 1, "fromTriggerTime": 0, "toTriggerTime": NOW_MS(), "owner": ""}
    everything = api.data("POST", "flowInstances", "search", dict(base, status="-1,1"))
    assert everything["count"] == 3
    failed = api.data("POST", "flowInstances", "search", dict(base, status="-1"))
    assert [i["flowName"] for i in failed["flowInsts"]] == ["bad"]
    paged = api.data(
        "POST",
        "flowInstances",
        "search",
        dict(
            base,
            status="1,-1",
            pagination={
                "pageNo": 1,
                "pageSize": 2,
                "sorters": [{"field": "triggerTime", "order": "DESC"}],
            },
        ),
    )
    assert paged["count"] == 3 and len(paged["flowInsts"]) == 2
    assert (
        api.data("POST", "flowInstances", "search", dict(base, status="1", expression="go"))[
            "count"
        ]
        == 2
    )
    assert api.data("POST", "flowInstances", "search", dict(base, status="1", type=0))["count"] == 0
    bad = api.call(
        "POST",
        "flowInstances",
        "search",
        dict(
            base,
            status="1",
            pagination={"pageNo": 1, "pageSize": 5, "sorters": [{"field": "flow_name"}]},
        ),
    )
    assert bad["code"] == 62102 and bad["msg"] == "The sorters field parameter is invalid"


def test_a_save_does_not_change_a_running_instance(api: Api, tmp_path: Path) -> None:
    out = tmp_path / "out"
    body = flow(("t", f"sleep 0.5; echo ${{P}} > {out}"))
    body["parameters"] = '[{"key":"P","value":"v1"}]'
    flow_id = api.import_flow("snap", body)
    instance_id = trigger(api, flow_id)
    detail = api.data("GET", "flows", "loadForEdit", flowId=flow_id)
    api.data(
        "POST",
        "flows",
        "save",
        {
            "id": flow_id,
            "type": 1,
            "name": "snap",
            "freq": detail["freq"],
            "cycle": "D",
            "alertMode": 1,
            "owners": "alice",
            "visitors": "",
            "active": 0,
            "parameters": '[{"key":"P","value":"v2"}]',
        },
    )
    wait_done(api, instance_id)
    assert out.read_text() == "v1\n"
    wait_done(api, trigger(api, flow_id))
    assert out.read_text() == "v2\n"


def test_delete_removes_the_instances(api: Api) -> None:
    flow_id = api.import_flow("gone", flow(("t", "true")))
    instance_id = trigger(api, flow_id)
    wait_done(api, instance_id)
    api.data("GET", "flows", "delete", flowId=flow_id)
    answer = api.call("GET", "flowInstances", "get", flowInstId=instance_id)
    assert answer["code"] == 62102 and answer["msg"] == "Instance not found"


# -- crash safety --------------------------------------------------------------------------------


def test_a_killed_engine_leaves_no_instance_running(tmp_path: Path) -> None:
    data = tmp_path / "d"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitsync", "serve", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        api = Api(url, user="u_local", org="o_local")
        body = simple_flow("long", owners="local")
        body["tasks"][0]["cmd"] = "echo before the crash; sleep 60"
        instance_id = trigger(api, api.import_flow("long", body))
        deadline = time.monotonic() + 10
        while (
            task_status(api.data("GET", "flowInstances", "get", flowInstId=instance_id)).get("long")
            != "RUNNING"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        running = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        eventually(lambda: "before the crash" in log_of(api, running, "long"), "the echo is logged")
        api.http.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    with RunningEngine(EngineOptions(data)) as engine:
        api = Api(engine.url, user="u_local", org="o_local")
        inst = api.data("GET", "flowInstances", "get", flowInstId=instance_id)
        assert inst["statusDesc"] == "FAIL" and inst["endTime"]
        log = log_of(api, inst, "long")
        assert "before the crash" in log
        assert "the engine stopped while this task ran (crash or kill); marked failed" in log
        assert "leftover process" in log  # its sleep, killed (tests/test_leftovers.py)
        api.http.close()


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def repo(example_repo: Path) -> Path:
    return example_repo


@pytest.mark.parametrize("example", sorted(EXAMPLES.rglob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_runs_to_success(repo: Path, example: Path) -> None:
    result = run_cli("run", str(Path("flows") / example.relative_to(EXAMPLES)))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith(f"{example.stem}: SUCCESS (")


def test_a_failing_run_exits_1_with_its_log_and_skips(repo: Path, api: Api) -> None:
    path = repo / "flows" / "broken.yaml"
    path.write_text(
        "tasks:\n  - {name: first, command: 'echo starting; exit 4', retries: 0}\n"
        "  - {name: second, command: echo never, depends_on: [first]}\n"
        "  - {name: third, command: echo never, depends_on: [second]}\n"
    )
    result = run_cli("run", "flows/broken.yaml")
    assert result.exit_code == 1
    out = result.output
    assert "  FAIL first" in out and "  skip second" in out and "  skip third" in out
    assert "---- log of failed task first ----" in out
    assert "starting\n\n[gitsync] exit code 4; success code is 0" in out
    assert out.splitlines()[-1].startswith("broken: FAIL (")
    instance = out.splitlines()[-1].split("(")[1].rstrip(")")
    listed = run_cli("instances", "broken")
    assert instance in listed.output and "FAIL" in listed.output
    logs = run_cli("logs", instance, "--task", "first")
    assert logs.exit_code == 0 and "exit code 4" in logs.output
    assert run_cli("logs", instance, "--task", "nope").exit_code == 1


def test_run_with_params_and_from_task(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.txt"
    (repo / "flows" / "p.yaml").write_text(
        "parameters: {WHO: world}\ntasks:\n"
        f"  - {{name: a, command: 'echo a-${{WHO}} >> {out}'}}\n"
        f"  - {{name: b, command: 'echo b-${{WHO}} >> {out}', depends_on: [a]}}\n"
    )
    assert run_cli("run", "flows/p.yaml", "--param", "WHO=you").exit_code == 0
    assert out.read_text() == "a-you\nb-you\n"
    result = run_cli("run", "flows/p.yaml", "--from-task", "b")
    assert result.exit_code == 0 and "  skip a" in result.output
    assert out.read_text().splitlines()[-1] == "b-world"
    assert run_cli("run", "flows/p.yaml", "--param", "novalue").exit_code == 1
    assert run_cli("run", "flows/p.yaml", "--from-task", "zzz").exit_code == 1


def test_cancel_command(repo: Path, api: Api) -> None:
    (repo / "flows" / "long.yaml").write_text("tasks:\n  - {name: t, command: sleep 30}\n")
    assert run_cli("apply", "--auto-approve").exit_code == 0
    flow_id = api.data("GET", "flows", "getMyFlow", expression="long")[0]["flowId"]
    instance_id = trigger(api, int(flow_id))
    result = run_cli("cancel", instance_id)
    assert result.exit_code == 0 and result.output == f"cancelled {instance_id}\n"
    assert wait_done(api, instance_id)["statusDesc"] == "CANCEL"


def test_run_refuses_an_invalid_file(repo: Path) -> None:
    (repo / "flows" / "bad.yaml").write_text("tasks: [{name: a}]\n")
    result = run_cli("run", "flows/bad.yaml")
    assert result.exit_code == 1
    assert "flows/bad.yaml:1:9: tasks[0]: missing required key 'command'" in result.output


_COLUMNS = ["pid", "run_num", "status"]  # instance rows take status only


@given(
    updates=st.lists(
        st.tuples(
            st.sampled_from(["task", "instance"]),
            st.sampled_from(["a", "b", "c"]),
            st.dictionaries(st.sampled_from(_COLUMNS), st.integers(0, 9), min_size=1),
        ),
        max_size=30,
    )
)
@settings(max_examples=60, deadline=None)
def test_a_batch_of_status_writes_ends_as_the_writes_one_by_one(
    tmp_path_factory: pytest.TempPathFactory, updates: list[tuple[str, str, dict[str, int]]]
) -> None:
    """The journal merges updates of the same row within a batch; what is stored must be what
    applying every update in order would store."""
    from gitsync.engine.store import Store

    updates = [
        (kind, key, {k: v for k, v in values.items() if kind == "task" or k == "status"})
        for kind, key, values in updates
    ]
    updates = [u for u in updates if u[2]]
    stores = []
    for _ in range(2):
        store = Store(tmp_path_factory.mktemp("store") / "engine.db")
        for key in "abc":
            store.insert_instance(
                {
                    "id": key, "flow_id": 1, "org_id": "o", "flow_name": "f", "snapshot": "{}",
                    "parameters": "[]", "status": 0, "trigger_ms": 0, "trigger_time": "",
                    "timestamp": "", "cal_dt": "", "owner": "", "do_as": "", "type": 0,
                    "if_pre": 1, "graph": "{}",
                },
                [{"id": key, "flow_instance_id": key, "task_id": 1, "task_name": key,
                  "position": 0, "status": 0}],
            )  # fmt: skip
        stores.append(store)
    batched, single = stores
    batched.write_batch(updates)
    for update in updates:
        single.write_batch([update])
    for key in "abc":
        assert batched.task_instance(key) == single.task_instance(key)
        assert batched.instance("o", key) == single.instance("o", key)
    for store in stores:
        store.close()


def test_waiting_in_process_for_an_instance_returns_once_its_end_is_stored(
    tmp_path: Path,
) -> None:
    """Runner.wait (what the engine benchmark uses instead of polling): it returns True once
    the instance's final status is stored, False when it times out, and a cancelled future
    instance ends the wait."""
    options = EngineOptions(tmp_path / "d", users=[User(SPEC_USER, SPEC_ORG, "alice")])
    with RunningEngine(options) as engine:
        api, runner, store = Api(engine.url), engine.engine.runner, engine.engine.store
        body = flow(("first", "sleep 0.3"), ("second", "true"), relations=[("first", "second")])
        flow_id = api.import_flow("waited", body)
        instance_id = trigger(api, flow_id)
        assert runner.wait(instance_id, timeout=0.05) is False  # still running
        assert runner.wait(instance_id, timeout=30) is True
        row = store.instance(SPEC_ORG, instance_id)
        assert row is not None and row["status"] == 1  # SUCCESS, with no poll in between
        assert set(store.task_statuses(instance_id).values()) == {1}
        later = trigger(api, flow_id, triggerTime=NOW_MS() + 3_600_000)
        assert runner.wait(later, timeout=0.05) is False  # waits for its trigger time
        api.data("POST", "flowInstances", "cancel", body={"flowInstId": later})
        assert runner.wait(later, timeout=5) is True
        api.http.close()

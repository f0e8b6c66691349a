"""Concurrent apply against the real engine over HTTP: the same end state as one write at a
time, every write after what it needs (read from the engine's request log), a failed import
that leaves the rest applied, and the target's concurrency honoured."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from gitsync import plan as planner
from gitsync import remote, sync
from gitsync.applying import ApplyResult
from gitsync.client import Client
from gitsync.config import load
from gitsync.engine.faults import Faults, RunningProxy
from gitsync.engine.server import EngineOptions, RunningEngine, User
from gitsync.model import Dependency, Schedule, Task, Tree, Workflow
from gitsync.protocol import Code
from gitsync.validate import validate_paths
from tests.conftest import EXAMPLES, SPEC_ORG, SPEC_USER, Api, run_cli, write_target
from tests.test_faults import _apply_through_proxy as apply_through_proxy
from tests.test_faults import _write_config as write_config

ROOT = ("gitsync",)
DAILY = Schedule("periodic", "day", "0 0 2 * * ? *", "2024-01-01", True)
DEADLINE = 30.0


def flow(name: str, *directory: str, ups: tuple[Dependency, ...] = (), **extra: Any) -> Workflow:
    return Workflow(
        name,
        directory=directory,
        schedule=DAILY,
        tasks=(Task("t", command=f"echo {name}", allow_reference=True, depends_on=ups),),
        **extra,
    )


def apply(client: Client, tree: Tree, prune: bool = False) -> ApplyResult:
    state = remote.read_state(client, ROOT)
    return remote.apply(client, planner.compute(tree, state, prune, True), state)


def end_state(client: Client) -> dict[str, Any]:
    """Flows by name, and retired copies by what they were retired for (their names hold
    their flow ids and their descriptions the time, which differ from run to run)."""
    state = remote.read_state(client, ROOT)
    live = {f.workflow.name: (f.workflow, f.managed) for f in state.flows if not f.retired}
    retired = sorted(
        (
            f.workflow.name.rpartition("__retired_")[0],
            f.retired.successor,
            re.sub(r"__retired_\d+", "__retired_N", repr(f.workflow.tasks)),
        )
        for f in state.flows
        if f.retired
    )
    return {
        "flows": live,
        "retired": retired,
        "dirs": sorted(p for p in state.dirs if p[:1] == ROOT),
    }


def summary(result: ApplyResult) -> list[tuple[str, str, bool]]:
    return [(o.change.kind, o.change.name, o.ok) for o in result.outcomes]


# -- the same end state as one write at a time ----------------------------------------------


def scenario() -> list[Tree]:
    """The examples and a chain of references, then edits of every kind, then a prune."""
    examples = validate_paths([EXAMPLES], base=EXAMPLES).tree().workflows
    a = flow("chain_a", "x")
    b = flow("chain_b", "x", "y", ups=(Dependency(flow="chain_a", task="t"),))
    c = flow("chain_c", "x", "y", "z", ups=(Dependency(flow="chain_b"),))
    first = [*examples, a, b, c]
    edited = []
    for wf in first:
        if wf.name == "sales_etl":  # a task body: replace
            wf = replace(wf, tasks=(replace(wf.tasks[0], timeout=901), *wf.tasks[1:]))
        elif wf.name == "health_check":  # the cron: update
            wf = replace(wf, schedule=replace(wf.schedule, cron="0 10 * * * ? *"))
        elif wf.name == "cleanup":  # scheduling: disable
            wf = replace(wf, schedule=replace(wf.schedule, enabled=False))
        elif wf.name == "backfill":  # another directory: move, into new directories
            wf = replace(wf, directory=("finance", "archive", "old"))
        elif wf.name == "chain_b":  # the description: update, downstream of a replace
            wf = replace(wf, description="edited")
        elif wf.name == "chain_a":  # a new task: replace of a referenced workflow (refused)
            wf = replace(wf, tasks=(*wf.tasks, Task("u", command="true")))
        edited.append(wf)
    d = flow("chain_d", "x", "new", ups=(Dependency(flow="chain_c"),))
    pruned = [w for w in edited if w.name not in ("cleanup", "chain_c")]  # and chain_d
    return [Tree.of(first), Tree.of([*edited, d]), Tree.of(pruned)]


def test_concurrent_apply_ends_as_one_write_at_a_time_does(tmp_path: Path) -> None:
    """With one worker the writes go in the order apply always used (the steps' order);
    with eight they overlap. Every outcome and the end state after each apply are the same."""
    with (
        RunningEngine(EngineOptions(tmp_path / "serial")) as one,
        RunningEngine(EngineOptions(tmp_path / "concurrent")) as many,
        Client(one.url, "o_local", "u_local", max_concurrency=1) as serial,
        Client(many.url, "o_local", "u_local", max_concurrency=8) as concurrent,
    ):
        kinds = set()
        for i, tree in enumerate(scenario()):
            prune = i == 2
            expected = apply(serial, tree, prune)
            got = apply(concurrent, tree, prune)
            assert summary(got) == summary(expected)
            assert end_state(concurrent) == end_state(serial)
            kinds |= {kind for kind, _, _ in summary(got)}
            # chain_b references chain_a: replacing chain_a retires its old copy
            assert not got.failed
    assert kinds == {
        "create_dir",
        "create_flow",
        "enable",
        "replace_flow",
        "move_flow",
        "update_flow",
        "disable",
        "retire",
    }


# -- every write after what it needs, from the engine's request log --------------------------


def requests(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_every_write_is_sent_after_the_writes_it_needs_were_answered(tmp_path: Path) -> None:
    """A chain (c references b references a, all in one directory: ready at the same time)
    in nested new directories, among others; the outcomes come in the plan's order."""
    log = tmp_path / "requests.jsonl"
    chain = [
        flow("c", "x", "y", "z", ups=(Dependency(flow="b"),)),
        flow("b", "x", "y", "z", ups=(Dependency(flow="a", task="t"),)),
        flow("a", "x", "y", "z"),
    ]
    others = [
        flow(f"f{i:02d}", "x", *(("y", "z", f"w{i % 3}") if i % 2 else ())) for i in range(12)
    ]
    with (
        RunningEngine(EngineOptions(tmp_path / "engine", request_log=log)) as engine,
        Client(engine.url, "o_local", "u_local", max_concurrency=8) as client,
    ):
        log.unlink(missing_ok=True)
        state = remote.read_state(client, ROOT)
        plan = planner.compute(Tree.of([*chain, *others]), state)
        result = remote.apply(client, plan, state)
    assert result.failed == []
    assert [o.change for o in result.outcomes] == plan.listed()
    sent = requests(log)
    writes = [r for r in sent if r["method"] == "POST" or r["action"] == "delete"]
    assert all(r["code"] == 0 for r in sent)
    dir_made = {r["made"]["dirId"]: r for r in writes if r["action"] == "create"}
    imported = {r["flowName"]: r for r in writes if r["action"] == "import"}
    flow_made = {r["made"]["flowId"]: r for r in imported.values()}
    assert len(dir_made) == 7  # gitsync, x, y, z, w0..w2
    assert sorted(imported) == sorted(w.name for w in [*chain, *others])

    def after(later: dict[str, Any], earlier: dict[str, Any]) -> bool:
        return bool(later["seen"] >= earlier["answered"])

    for r in dir_made.values():
        if r["parentId"] in dir_made:
            assert after(r, dir_made[r["parentId"]]), r["dirName"]
    for r in imported.values():
        assert after(r, dir_made[r["dirId"]]), r["flowName"]
    assert after(imported["b"], imported["a"]) and after(imported["c"], imported["b"])
    enables = [r for r in writes if r["action"] == "enable"]
    assert sorted(flow_made[r["flowId"]]["flowName"] for r in enables) == sorted(imported)
    for r in enables:
        assert after(r, flow_made[r["flowId"]])


# -- a failed import: the rest still lands, its enable is skipped -----------------------------


class FailingImport(httpx.BaseTransport):
    """The engine, except that the Import of one workflow fails; remembers what was sent."""

    def __init__(self, name: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.name = name
        self.lock = threading.Lock()
        self.imports: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.params.get("action") == "import":
            name = json.loads(request.read())["flowName"]
            with self.lock:
                self.imports.append(name)
            if name == self.name:
                body = {"code": int(Code.BAD_PARAMETER), "msg": "injected failure", "data": None}
                return httpx.Response(200, json=body)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("workers", [1, 8])
def test_a_failed_import_skips_its_enable_and_the_others_still_land(
    engine: RunningEngine, api: Api, workers: int
) -> None:
    names = [f"f{i:02d}" for i in range(16)]
    downstream = flow("needs_f07", "team", ups=(Dependency(flow="f07"),))
    tree = Tree.of([*(flow(n, "team") for n in names), downstream])
    transport = FailingImport("f07")
    told: list[tuple[str, int, int]] = []
    with Client(
        engine.url, SPEC_ORG, SPEC_USER, transport=transport, max_concurrency=workers
    ) as client:
        state = remote.read_state(client, ROOT)
        plan = planner.compute(tree, state)
        result = remote.apply(client, plan, state, lambda *args: told.append(args))
    total = len(plan.changes)
    assert told == [("applying", done, total) for done in range(1, total + 1)]
    assert [o.change for o in result.outcomes] == plan.listed()
    failed = {(o.change.kind, o.change.name): o.message for o in result.failed}
    assert failed.keys() == {
        ("create_flow", "team/f07"),
        ("enable", "team/f07"),
        ("create_flow", "team/needs_f07"),
        ("enable", "team/needs_f07"),
    }
    assert "injected failure" in failed[("create_flow", "team/f07")]
    assert "f07" in failed[("create_flow", "team/needs_f07")]  # the engine refused it
    assert failed[("enable", "team/f07")] == "skipped: creating or replacing it failed"
    assert failed[("enable", "team/needs_f07")] == "skipped: creating or replacing it failed"
    with Client(engine.url, SPEC_ORG, SPEC_USER) as clean:
        landed = {f.workflow.name: f.workflow for f in remote.read_state(clean, ROOT).flows}
        assert sorted(landed) == [n for n in names if n != "f07"]
        assert all(w.schedule.enabled for w in landed.values())
        if workers == 1:  # one at a time: f07 failed mid-way, and the rest went on
            assert transport.imports == [*names, "needs_f07"]
        rerun = apply(clean, tree)
    assert rerun.failed == [] and len(rerun.outcomes) == 4


# -- the target's concurrency is honoured ------------------------------------------------------


class Gate(httpx.BaseTransport):
    """Counts the requests in flight. Until ``limit`` of them are in flight at once, each one
    waits at the gate (so the limit is surely reached); after that they go straight on."""

    def __init__(self, limit: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.limit = limit
        self.cond = threading.Condition()
        self.in_flight = 0
        self.peak = 0
        self.sent = 0
        self.open = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.cond:
            self.in_flight += 1
            self.sent += 1
            self.peak = max(self.peak, self.in_flight)
            if self.in_flight >= self.limit:
                self.open = True
                self.cond.notify_all()
            opened = self.cond.wait_for(lambda: self.open, DEADLINE)
        try:
            assert opened, f"{self.limit} requests were never in flight at once"
            return self.inner.handle_request(request)
        finally:
            with self.cond:
                self.in_flight -= 1

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("limit", [1, 3])
def test_no_more_requests_than_the_concurrency_are_in_flight(
    engine: RunningEngine, api: Api, limit: int
) -> None:
    api.mkdir("gitsync")
    first = Tree.of([replace(flow(f"f{i:02d}"), description="one") for i in range(24)])
    second = Tree.of([replace(w, description="two") for w in first.workflows])  # updates
    for tree in (first, second):
        gate = Gate(limit)
        with (
            Client(engine.url, SPEC_ORG, SPEC_USER) as reader,
            Client(
                engine.url, SPEC_ORG, SPEC_USER, transport=gate, max_concurrency=limit
            ) as writer,
        ):
            state = remote.read_state(reader, ROOT)
            plan = planner.compute(tree, state)
            result = remote.apply(writer, plan, state)
        assert result.failed == []
        assert gate.peak == limit
        assert gate.sent == 48  # Import + Enable each; then Load For Edit + Save each


def test_the_concurrency_comes_from_the_target(
    tmp_path: Path, engine: RunningEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_target(tmp_path, engine.url, "gitsync")
    settings = load(tmp_path, {})
    with sync.connect(settings, settings.target("test")) as client:
        assert client.max_concurrency == 8
    with (tmp_path / "gitsync.yaml").open("a") as f:
        f.write("    concurrency: 3\n")
    settings = load(tmp_path, {})
    assert settings.target("test").concurrency == 3
    with sync.connect(settings, settings.target("test")) as client:
        assert client.max_concurrency == 3


# -- Ctrl-C mid-apply --------------------------------------------------------------------------


def test_ctrl_c_mid_apply_lets_the_writes_in_flight_end_then_unlocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGINT to `gitsync apply` while it writes: no new write starts, those in flight are
    answered before the lock's Delete is sent, the exit code is 130, and a rerun converges."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo / "flows")
    for i in range(40):
        (repo / "flows" / "more").mkdir(exist_ok=True)
        (repo / "flows" / "more" / f"m{i:02d}.yaml").write_text(
            "schedule: {cycle: day, cron: '0 0 2 * * ? *'}\n"
            f"tasks: [{{name: a, command: echo {i}}}]\n"
        )
    log = tmp_path / "requests.jsonl"
    victim: dict[str, subprocess.Popen[str]] = {}

    def ctrl_c_at_20(n: int, request: Any) -> None:
        if n == 20:
            victim["proc"].send_signal(signal.SIGINT)

    options = EngineOptions(tmp_path / "engine", request_log=log, users=[User(SPEC_USER, SPEC_ORG)])
    with (
        RunningEngine(options) as engine,
        RunningProxy(engine.url, Faults(on_request=ctrl_c_at_20)) as proxy,
    ):
        write_config(repo, proxy.url, engine.url)
        victim["proc"] = apply_through_proxy(repo)
        out, err = victim["proc"].communicate(timeout=120)
        assert victim["proc"].returncode == 130, err
        assert "Traceback" not in err
        sent = requests(log)
        lock = next(r for r in sent if r.get("flowName", "").startswith("__gitsync_lock__"))
        assert sent[-1]["action"] == "delete" and sent[-1]["flowId"] == lock["made"]["flowId"]
        assert sent[-1]["seen"] == sent[-1]["answered"] - 1  # nothing was in flight
        imports = [r for r in sent if r["action"] == "import"]
        assert len(imports) < 40  # it stopped early
        # one write per change here (directories, imports, enables), and every write that
        # was sent, in flight at the stop included, has its outcome in the report
        writes = [r for r in sent if r["method"] == "POST" and r["answered"] > lock["answered"]]
        # counted against all the plan's changes, as the stop message counts them
        stopped = re.search(r"Stopped before (\d+) of (\d+) changes", err)
        assert stopped is not None, err
        left, total = int(stopped[1]), int(stopped[2])
        assert left > 0 and f"Applied {len(writes)} of {total} changes." in out
        monkeypatch.chdir(repo)
        monkeypatch.setenv("GITSYNC_TARGET", "direct")
        rerun = run_cli("apply", "--auto-approve")  # no lock left behind
        assert rerun.exit_code == 0, rerun.output
        assert run_cli("plan", "--detailed-exitcode").exit_code == 0

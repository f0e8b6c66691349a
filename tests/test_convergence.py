"""Convergence, property-based: random trees and random edits, each applied, always leave a
remote that equals the files and a plan that is empty."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitsync import plan as planner
from gitsync import remote
from gitsync.client import Client
from gitsync.codec import document
from gitsync.engine.server import EngineOptions, RunningEngine
from gitsync.model import Dependency, Schedule, Task, Tree, Workflow

DIRS = [(), ("a",), ("a", "b"), ("c",), ("c", "d", "e")]
CRONS = {
    "minute": "0 0/5 * * * ? *",
    "hour": "0 7 * * * ? *",
    "day": "0 0 2 * * ? *",
    "week": "0 0 3 ? * MON *",
    "month": "0 0 6 1 * ? *",
}
task_names = st.sampled_from(["extract", "load", "clean", "join", "report", "notify"])


@st.composite
def workflow(draw: st.DrawFn, name: str) -> Workflow:
    names = draw(st.lists(task_names, min_size=1, max_size=4, unique=True))
    tasks = []
    for i, task in enumerate(names):
        ups = draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        tasks.append(
            Task(
                name=task,
                command=f"echo {draw(st.integers(0, 9))}",
                timeout=draw(st.sampled_from([60, 300, 900])),
                retries=draw(st.integers(0, 3)),
                depends_on=document.canonical_dependencies(
                    [Dependency(task=u, rerun=draw(st.booleans())) for u in ups]
                ),
            )
        )
    periodic = draw(st.booleans())
    cycle = draw(st.sampled_from(sorted(CRONS)))
    schedule = (
        Schedule("periodic", cycle, CRONS[cycle], "2024-01-01", draw(st.booleans()))
        if periodic
        else Schedule()
    )
    return Workflow(
        name=name,
        directory=draw(st.sampled_from(DIRS)),
        description=draw(st.sampled_from(["", "nightly", "owned by data"])),
        owners=tuple(sorted(draw(st.sets(st.sampled_from(["alice", "bob"]))))),
        parameters=tuple(
            draw(st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["1", "x"]))).items()
        ),
        schedule=schedule,
        tasks=tuple(tasks),
    )


@st.composite
def trees(draw: st.DrawFn) -> list[Workflow]:
    count = draw(st.integers(1, 4))
    return [draw(workflow(f"wf{i}")) for i in range(count)]


def _edit(draw: st.DrawFn, flows: list[Workflow]) -> list[Workflow]:
    kind = draw(
        st.sampled_from(
            [
                "command",
                "timeout",
                "add_task",
                "drop_task",
                "cron",
                "enabled",
                "move",
                "delete",
                "create",
                "describe",
            ]
        )
    )
    if kind == "create" or not flows:
        taken = {w.name for w in flows}
        name = next(f"wf{i}" for i in itertools.count() if f"wf{i}" not in taken)
        return [*flows, draw(workflow(name))]
    i = draw(st.integers(0, len(flows) - 1))
    wf = flows[i]
    if kind == "delete":
        return flows[:i] + flows[i + 1 :]
    if kind == "move":
        wf = replace(wf, directory=draw(st.sampled_from(DIRS)))
    elif kind == "describe":
        wf = replace(wf, description=wf.description + " changed")
    elif kind == "cron" and wf.schedule.type == "periodic":
        cycle = draw(st.sampled_from(sorted(CRONS)))
        wf = replace(wf, schedule=replace(wf.schedule, cycle=cycle, cron=CRONS[cycle]))
    elif kind == "enabled" and wf.schedule.type == "periodic":
        wf = replace(wf, schedule=replace(wf.schedule, enabled=not wf.schedule.enabled))
    elif kind in ("command", "timeout"):
        t = draw(st.integers(0, len(wf.tasks) - 1))
        task = wf.tasks[t]
        task = (
            replace(task, command=task.command + " again")
            if kind == "command"
            else replace(task, timeout=task.timeout + 1)
        )
        wf = replace(wf, tasks=(*wf.tasks[:t], task, *wf.tasks[t + 1 :]))
    elif kind == "add_task":
        used = {t.name for t in wf.tasks}
        new = next(n for n in ("extra", "extra2", "extra3", "extra4") if n not in used)
        wf = replace(
            wf,
            tasks=(
                *wf.tasks,
                Task(name=new, command="true", depends_on=(Dependency(task=wf.tasks[0].name),)),
            ),
        )
    elif kind == "drop_task" and len(wf.tasks) > 1:
        gone = wf.tasks[-1].name
        kept = tuple(
            replace(t, depends_on=tuple(d for d in t.depends_on if d.task != gone))
            for t in wf.tasks[:-1]
        )
        wf = replace(wf, tasks=kept)
    return [*flows[:i], wf, *flows[i + 1 :]]


@st.composite
def histories(draw: st.DrawFn) -> list[list[Workflow]]:
    states = [draw(trees())]
    for _ in range(draw(st.integers(1, 4))):
        states.append(_edit(draw, states[-1]))
    return states


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data: Path = tmp_path_factory.mktemp("convergence")
    with (
        RunningEngine(EngineOptions(data)) as engine,
        Client(engine.url, "o_local", "u_local") as c,
    ):
        yield c


ROOTS = itertools.count()


def _remote_equals(client: Client, root: tuple[str, ...], flows: list[Workflow]) -> None:
    state = remote.read_state(client, root)
    live = [f for f in state.flows if f.retired is None]  # retired copies keep the history
    got = {f.workflow.name: f.workflow for f in live}
    assert set(got) == {w.name for w in flows}
    assert all(f.managed for f in live)
    for wf in flows:
        assert got[wf.name] == wf


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(history=histories())
def test_any_history_of_edits_converges(client: Client, history: list[list[Workflow]]) -> None:
    n = next(ROOTS)
    root = ("prop", f"r{n}")
    for generated in history:  # names are unique per organization: each example its own
        flows = [replace(w, name=f"r{n}_{w.name}") for w in generated]
        tree = Tree.of(flows)
        state = remote.read_state(client, root)
        plan = planner.compute(tree, state, prune=True, allow_mass_delete=True)
        result = remote.apply(client, plan, state)
        assert result.failed == [], [
            (o.change.kind, o.change.name, o.message) for o in result.failed
        ]
        after = planner.compute(
            tree, remote.read_state(client, root), prune=True, allow_mass_delete=True
        )
        assert not after.has_changes, [(c.kind, c.name, c.lines) for c in after.changes]
        _remote_equals(client, root, flows)

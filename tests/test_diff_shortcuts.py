"""diff's shortcuts against their definitions, on generated pairs of workflows: the lines of
differences() with every task's view built, and replace_reasons() with task bodies compared
as copies without dependencies (``dataclasses.replace``), as they were first written."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from gitsync import diff
from gitsync.model import Dependency, RunMode, Schedule, Task, Workflow


def full_differences(actual: Workflow, desired: Workflow, with_local: bool) -> list[str]:
    old, new = diff._view(actual, with_local), diff._view(desired, with_local)
    lines = list(diff._compare(old, new, ()))
    before, after = [t.name for t in actual.tasks], [t.name for t in desired.tasks]
    if set(before) == set(after) and before != after:
        lines.append(f"task order: {', '.join(before)} -> {', '.join(after)}")
    return sorted(lines)


def bodies_differ(old: Task, new: Task) -> bool:
    def body(task: Task) -> Task:
        return replace(task, depends_on=(), local=None)

    return body(old) != body(new)


def task(rng: random.Random, name: str, names: list[str]) -> Task:
    ups = rng.sample(names, k=min(len(names), rng.randint(0, 2)))
    deps = tuple(Dependency(task=u, rerun=rng.random() < 0.8) for u in ups)
    if rng.random() < 0.2:
        deps += (Dependency(flow="up", task=rng.choice(["", "t"])),)
    return Task(
        name=name,
        command=rng.choice(["echo a", "echo b"]),
        timeout=rng.choice([300, 600]),
        retries=rng.choice([0, 3]),
        depends_on=deps,
        run_mode=RunMode(cpu=rng.choice([0.5, 1.0])),
        local=rng.choice([None, None, "make"]),
    )


def workflow(rng: random.Random) -> Workflow:
    names = rng.sample(["a", "b", "c", "d", "e"], k=rng.randint(0, 5))
    if names and rng.random() < 0.1:
        names.append(names[0])  # a repeated task name, as a remote flow could have
    return Workflow(
        name="w",
        description=rng.choice(["", "x"]),
        schedule=Schedule(type=rng.choice(["manual", "periodic"]), enabled=rng.random() < 0.5),
        tasks=tuple(task(rng, n, names[:i]) for i, n in enumerate(names)),
    )


def mutated(rng: random.Random, wf: Workflow) -> Workflow:
    """Most pairs differ in little: the shortcuts are for tasks that did not change."""
    tasks = list(wf.tasks)
    for i in range(len(tasks)):
        if rng.random() < 0.25:
            tasks[i] = replace(
                tasks[i],
                **rng.choice(
                    [
                        {"command": "echo z"},
                        {"timeout": 900},
                        {"local": "other"},
                        {"depends_on": ()},
                        {"run_mode": RunMode(cpu=4.0)},
                    ]
                ),
            )
    if tasks and rng.random() < 0.2:
        tasks.reverse()
    if rng.random() < 0.1:
        tasks.append(Task(name="new"))
    return replace(wf, description=rng.choice(["", "x", "y"]), tasks=tuple(tasks))


PAIRS = 3000


@pytest.mark.parametrize("with_local", [False, True])
def test_differences_and_replace_reasons_match_their_definitions(with_local: bool) -> None:
    rng = random.Random(12)
    kinds = set()
    for _ in range(PAIRS):
        actual = workflow(rng)
        desired = mutated(rng, actual) if rng.random() < 0.8 else workflow(rng)
        got = diff.differences(actual, desired, with_local)
        assert got == full_differences(actual, desired, with_local), (actual, desired)
        changed = [
            t.name
            for t in desired.tasks
            if (old := actual.task(t.name)) is not None and bodies_differ(old, t)
        ]
        reasons = diff.replace_reasons(actual, desired, with_local)
        assert any("task bodies change" in r for r in reasons) == bool(changed)
        kinds.add((bool(got), bool(changed)))
    assert {(False, False), (True, False), (True, True)} <= kinds  # every case was met

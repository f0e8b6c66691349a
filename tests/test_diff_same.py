"""diff.same compares without copies when nothing is to be left out; its answer must be the
one of the definition: equal, scheduling state aside, and ``local`` only for the engine."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from gitsync.diff import same
from gitsync.model import Schedule, Task, Workflow


def by_definition(actual: Workflow, desired: Workflow, with_local: bool) -> bool:
    strip = [t if with_local else replace(t, local=None) for t in desired.tasks]
    a = replace(actual, schedule=replace(actual.schedule, enabled=False))
    d = replace(desired, tasks=tuple(strip), schedule=replace(desired.schedule, enabled=False))
    return a == d


def variant(enabled: bool, local: str | None, command: str) -> Workflow:
    return Workflow(
        name="w",
        schedule=Schedule(type="periodic", cron="0 0 1 * * ? *", enabled=enabled),
        tasks=(Task(name="a"), Task(name="b", command=command, local=local)),
    )


VARIANTS = [
    variant(enabled, local, command)
    for enabled, local, command in itertools.product(
        (False, True), (None, "", "make"), ("echo", "echo 2")
    )
]


@pytest.mark.parametrize("with_local", [False, True])
def test_same_answers_as_its_definition(with_local: bool) -> None:
    compared = 0
    for actual, desired in itertools.product(VARIANTS, repeat=2):
        assert same(actual, desired, with_local) == by_definition(actual, desired, with_local)
        compared += by_definition(actual, desired, with_local)
    assert compared > len(VARIANTS)  # pairs found the same beyond identical ones


def test_scheduling_state_and_local_are_left_out_where_they_should_be() -> None:
    on, off = variant(True, None, "echo"), variant(False, "make", "echo")
    assert same(on, off)  # the engine's local command is not EnOS's business
    assert not same(on, off, with_local=True)
    assert same(variant(True, "make", "echo"), variant(False, "make", "echo"), with_local=True)

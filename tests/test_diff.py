"""The plan's field-level lines, exactly (diff.differences): what the reviewer of a plan reads."""

from __future__ import annotations

from dataclasses import replace

from gitsync.diff import differences
from gitsync.model import Dependency, RunMode, Schedule, Task, Workflow

BASE = Workflow(
    "etl",
    owners=("alice",),
    parameters=(("REGION", "emea"), ("DAYS", "7")),
    schedule=Schedule("periodic", "day", "0 0 2 * * ? *", "2024-01-01", True),
    tasks=(
        Task("extract", command="echo e"),
        Task("load", command="echo l", depends_on=(Dependency(task="extract"),)),
    ),
)


def test_each_kind_of_difference_has_its_line() -> None:
    desired = replace(
        BASE,
        owners=("bob",),
        parameters=(("REGION", "apac"), ("MODE", "full")),
        schedule=replace(BASE.schedule, cron="0 0 3 * * ? *", enabled=False),
        tasks=(
            replace(BASE.tasks[0], timeout=600, run_mode=RunMode(cpu=2.0)),
            replace(BASE.tasks[1], depends_on=(Dependency(flow="up", task="t", rerun=True),)),
            Task("report", command="echo r"),
        ),
    )
    assert differences(BASE, desired) == [
        "dependency added: up.t (rerun: true) -> load",
        "dependency removed: extract -> load",
        'owners: + "bob"',
        'owners: - "alice"',
        'parameters.DAYS: removed "7"',
        'parameters.MODE: added "full"',
        'parameters.REGION: "emea" -> "apac"',
        'schedule.cron: "0 0 2 * * ? *" -> "0 0 3 * * ? *"',
        "task added: report",
        "tasks[extract].run_mode.cpu: 0.5 -> 2.0",
        "tasks[extract].timeout: 300 -> 600",
    ]
    assert differences(BASE, BASE) == []


def test_a_mostly_rewritten_part_is_still_listed_key_by_key() -> None:
    """Every parameter gone, every task renamed: one line each, never the whole part dumped."""
    desired = replace(
        BASE, parameters=(), tasks=(Task("a", command="echo e"), Task("b", command="echo l"))
    )
    assert differences(BASE, desired) == [
        'parameters.DAYS: removed "7"',
        'parameters.REGION: removed "emea"',
        "task added: a",
        "task added: b",
        "task removed: extract",
        "task removed: load",
    ]


def test_task_order_and_the_engine_only_local_command() -> None:
    desired = replace(BASE, tasks=(BASE.tasks[1], replace(BASE.tasks[0], local="echo here")))
    assert differences(BASE, desired) == ["task order: extract, load -> load, extract"]
    assert differences(BASE, desired, with_local=True) == [
        "task order: extract, load -> load, extract",
        'tasks[extract].local: null -> "echo here"',
    ]

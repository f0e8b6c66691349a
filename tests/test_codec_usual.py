"""The Flow Struct decoder reads the usual task (every field under its own key, with its own
JSON type) without the lenient Reader; whatever it reads that way must be exactly what the
Reader reads, and anything else must go to the Reader."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from gitsync.codec import flow_struct
from gitsync.codec.flow_struct import _read_task, _relation, _usual_task
from gitsync.errors import CodecError
from gitsync.model import Dependency, RunMode, Task, Workflow

USUAL: dict[str, Any] = flow_struct.flow_struct_from_workflow(
    Workflow(
        name="w",
        tasks=(
            Task(name="a", command="echo a", run_mode=RunMode(cpu=2)),
            Task(name="b", depends_on=(Dependency(task="a"),), wait_code="3", local="x"),
        ),
    ),
    extensions=True,
)["tasks"][1]

ODD_VALUES: list[Any] = [
    None,
    "",
    "7",
    "1.0",
    7,
    1,
    0,
    2,
    True,
    False,
    1.5,
    [],
    {},
    '{"taskMode":2}',
]
FIELDS = sorted({*USUAL, "taskName", "waitCode", "localCmd"})


def mutations() -> list[dict[str, Any]]:
    """The usual task with one field changed, removed, or spelt in snake_case."""
    out = []
    for key, value in itertools.product(FIELDS, ODD_VALUES):
        item = copy.deepcopy(USUAL)
        item[key] = value
        out.append(item)
    for key in FIELDS:
        gone = {k: v for k, v in USUAL.items() if k != key}
        out.append(gone)
        snake = {**gone, "".join("_" + c.lower() if c.isupper() else c for c in key): "s"}
        out.append(snake)
    return out


def outcome(read: Any, item: Any) -> Task | str | None:
    """What ``read`` makes of ``item``: a task, None (left to the Reader), or its error."""
    try:
        task: Task | None = read(item, 0, {"b": [Dependency(task="a")]})
    except CodecError as e:
        return f"error: {e}"
    return task


def reader_result(item: Any) -> Task | str | None:
    return outcome(_read_task, item)


def test_the_usual_task_is_read_by_the_fast_path() -> None:
    fast = _usual_task(USUAL, 0, {"b": [Dependency(task="a")]})
    assert fast is not None
    assert fast == reader_result(USUAL)
    assert fast.local == "x" and fast.wait_code == "3" and fast.depends_on == (Dependency("a"),)


@pytest.mark.parametrize("item", mutations())
def test_the_fast_path_reads_what_reader_reads_or_leaves_it(item: dict[str, Any]) -> None:
    fast = outcome(_usual_task, item)
    if fast is not None:
        assert fast == reader_result(item)


def test_odd_values_do_reach_the_reader() -> None:
    left = [item for item in mutations() if outcome(_usual_task, item) is None]
    assert len(left) > len(FIELDS) * 5  # the check above compared more than the usual case


@pytest.mark.parametrize(
    "rel",
    [
        {"sourceTaskName": "a", "targetTaskName": "b", "rerun": False},
        {"sourceTaskName": "a", "targetTaskName": "b"},
        {"sourceTaskName": "a", "targetTaskName": "b", "rerun": "false"},
        {"source_task_name": "a", "targetTaskName": "b", "rerun": True},
        {"sourceTaskName": 5, "targetTaskName": "b", "rerun": 1},
    ],
)
def test_relations_read_as_reader_reads_them(rel: dict[str, Any]) -> None:
    reader = flow_struct.Reader(rel, "r")
    expected = (
        reader.text("targetTaskName"),
        Dependency(task=reader.text("sourceTaskName"), rerun=reader.flag("rerun", True)),
    )
    assert _relation(rel, 0) == expected


def test_a_bad_relation_names_its_target_first() -> None:
    with pytest.raises(CodecError, match=r"relations\[3\]\.targetTaskName"):
        _relation({"sourceTaskName": [], "targetTaskName": {}}, 3)

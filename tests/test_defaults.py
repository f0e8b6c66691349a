"""Each default is one fact: the schema's ``default`` (what editors show) and the model's
(what a left-out field means) agree, because writing the schema's default into a file must
give the same workflow as leaving the field out."""

from __future__ import annotations

from typing import Any

import pytest

from gitsync.codec.document import workflow_from_document
from gitsync.schema_check import schema


def _defaults(where: str) -> dict[str, Any]:
    node = schema() if where == "top" else schema()["$defs"][where]
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v}


def _doc(where: str, extra: dict[str, Any]) -> dict[str, Any]:
    """A small valid document with ``extra`` written into the part ``where``."""
    task: dict[str, Any] = {"name": "t", "command": "true"}
    doc: dict[str, Any] = {"tasks": [task]}
    if where == "top":
        doc.update(extra)
    elif where == "schedule":  # periodic unless said: cycle and cron always there
        doc["schedule"] = {"cycle": "day", "cron": "0 0 1 * * ? *", **extra}
    elif where == "task":
        task.update(extra)
    else:  # runMode
        task["run_mode"] = dict(extra)
    return doc


CASES = [
    (where, key) for where in ("top", "schedule", "task", "runMode") for key in _defaults(where)
]


@pytest.mark.parametrize(("where", "key"), CASES, ids=[f"{w}.{k}" for w, k in CASES])
def test_the_schema_default_means_what_leaving_it_out_means(where: str, key: str) -> None:
    written = workflow_from_document(_doc(where, {key: _defaults(where)[key]}), "w")
    left_out = workflow_from_document(_doc(where, {}), "w")
    assert written == left_out, (where, key)


def test_every_default_is_covered() -> None:
    assert len(CASES) >= 27

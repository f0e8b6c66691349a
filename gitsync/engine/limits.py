"""What Import refuses in a Flow Struct's tasks before decoding them: numbers the service
keeps as a Java ``Integer`` (SPEC §2.1) out of its range, and tasks without a name. The codec
reads leniently; without this, 10**30 would be stored and reach SQLite or a timer."""

from __future__ import annotations

from typing import Any

from gitsync.engine.answers import bad

INTEGER_FIELDS = ("timeout", "retryLimit", "retryInterval", "priorityLevel")
JAVA_INT_MIN, JAVA_INT_MAX = -(2**31), 2**31 - 1


def check_tasks(flow_json: dict[str, Any]) -> None:
    """Raise 62102 naming the first task field that is missing or out of range."""
    tasks = flow_json.get("tasks")
    if not isinstance(tasks, list):
        return  # the codec names what is wrong with it
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        if task.get("name") is None and task.get("taskName") is None:
            raise bad(f"Workflow validation failed: flowJson.tasks[{i}].name is missing")
        for field in INTEGER_FIELDS:
            value = task.get(field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not JAVA_INT_MIN <= value <= JAVA_INT_MAX:
                raise bad(
                    f"Invalid parameter: flowJson.tasks[{i}].{field} must be an integer in "
                    f"range {JAVA_INT_MIN}..{JAVA_INT_MAX}"
                )

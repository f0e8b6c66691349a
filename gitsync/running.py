"""Running one workflow on the target and reading its runs: trigger, follow, list, logs.

What the service says about runs is untrusted input like everything else it says: the
instance rows and the task nodes of an instance's graph are read field by field
(``answers``), so a missing or mistyped field is one clear error, never a crash.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from gitsync import answers
from gitsync.client import Client
from gitsync.codec import marker
from gitsync.errors import AnswerError, GitsyncError, RemoteError
from gitsync.statuses import Status

DONE = {s.name for s in Status if s.finished}
_FAILED = {s.name for s in Status if s.failed}


@dataclass(frozen=True)
class TaskEvent:
    task: str
    status: str
    seconds: float | None = None  # set when the task has finished
    within: float | None = None  # it started and ended between two polls: under this long


@dataclass(frozen=True)
class RunEnd:
    instance_id: str
    status: str
    logs: tuple[tuple[str, str], ...]  # (task, log) of every task that failed


@dataclass(frozen=True)
class Instance:
    """One row of ``gitsync instances``."""

    instance_id: str
    status: str
    trigger_time: str
    start_time: str
    end_time: str
    version: str = "current"  # or "retired <date> (flow <id>)"

    @property
    def finished(self) -> bool:
        return self.status in DONE

    @property
    def seconds(self) -> float | None:
        """How long it ran, from its start and end times; None until it has ended."""
        try:
            start = dt.datetime.fromisoformat(self.start_time)
            end = dt.datetime.fromisoformat(self.end_time)
        except ValueError:  # not started, not ended, or a time the service spells otherwise
            return None
        return max(0.0, (end - start).total_seconds())


@dataclass(frozen=True)
class Version:
    """A flow that is, or was, the workflow: the current one or a retired predecessor."""

    flow_id: int
    label: str


@dataclass(frozen=True)
class TaskNode:
    name: str
    status: str
    task_instance_id: str


def _optional_text(value: Any, what: str) -> str:
    return "" if value is None else answers.text(value, what)


def task_nodes(instance: dict[str, Any]) -> list[TaskNode]:
    """The task nodes of a Get Flow Instance answer's ``graph`` (a JSON string)."""
    what = "Get Flow Instance: graph"
    try:
        graph = json.loads(answers.text(instance.get("graph"), what))
    except (ValueError, RecursionError):
        raise AnswerError(f"{what}: the service answered text that is not JSON") from None
    nodes = answers.objects(answers.mapping(graph, what).get("tasks") or [], f"{what}.tasks")
    return [
        TaskNode(
            answers.text(n.get("taskName", n.get("task_name")), f"{what}.tasks: taskName"),
            answers.text(n.get("status", "INIT"), f"{what}.tasks: status"),
            _optional_text(n.get("taskInstId"), f"{what}.tasks: taskInstId"),
        )
        for n in nodes
    ]


def status_of(instance: dict[str, Any]) -> str:
    code = answers.integer(instance.get("status"), "Get Flow Instance: status")
    return Status.named(code)


def trigger(
    client: Client, name: str, params: dict[str, str], from_task: str | None, now_ms: int
) -> str:
    flow_id = client.find_flow_id(name)
    if flow_id is None:
        raise GitsyncError(f"workflow '{name}' is not on the target")
    if from_task is not None:
        from gitsync.codec import edit_view

        nodes = edit_view.graph_from_detail(client.load_flow_for_edit(flow_id)).tasks
        if from_task not in nodes:
            raise GitsyncError(
                f"workflow '{name}' has no task '{from_task}' (it has: {', '.join(nodes)})"
            )
        task_id = answers.integer(nodes[from_task].get("taskId"), "Load Flow For Edit: taskId")
        return client.trigger_flow_from_task(flow_id, task_id, now_ms)
    if params:
        return client.update_and_trigger_flow(
            flow_id, now_ms, [{"key": k, "value": v} for k, v in params.items()]
        )
    return client.trigger_flow(flow_id, now_ms)


def follow(
    client: Client,
    instance_id: str,
    interval: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[TaskEvent | RunEnd]:
    """Poll an instance until it ends: an event for each task state change (with the
    task's duration as seen from here when it ends), then the end with failed tasks' logs."""
    seen: dict[str, str] = {}
    started: dict[str, float] = {}
    while True:
        instance = client.get_flow_instance(instance_id)
        nodes = task_nodes(instance)
        for node in nodes:
            if seen.get(node.name) == node.status:
                continue
            seen[node.name] = node.status
            if node.status == "RUNNING":
                started.setdefault(node.name, clock())
            finished = node.status in DONE
            seconds = clock() - started[node.name] if finished and node.name in started else None
            within = interval if finished and seconds is None and node.status != "SKIP" else None
            yield TaskEvent(node.name, node.status, seconds, within)
        status = status_of(instance)
        if status in DONE:
            logs = tuple(
                (n.name, client.get_task_instance_log(n.task_instance_id))
                for n in nodes
                if n.status in _FAILED and n.task_instance_id
            )
            yield RunEnd(instance_id, status, logs)
            return
        sleep(interval)


def _instance(row: dict[str, Any], version: str) -> Instance:
    what = "List Flow Instances: flowInsts"
    return Instance(
        answers.text(row.get("instanceId"), f"{what}: instanceId"),
        _optional_text(row.get("statusDesc"), f"{what}: statusDesc"),
        _optional_text(row.get("triggerTime"), f"{what}: triggerTime"),
        _optional_text(row.get("startTime"), f"{what}: startTime"),
        _optional_text(row.get("endTime"), f"{what}: endTime"),
        version,
    )


def versions_of(client: Client, name: str) -> list[Version]:
    """The workflow ``name`` now, and the retired copies a replace kept of it
    (``<name>__retired_<id>``, with the retirement date from their marker), newest first."""
    pattern = re.compile(re.escape(name + marker.RETIRED_INFIX) + r"(\d+)")
    current: list[Version] = []
    retired: list[tuple[str, Version]] = []
    for item in client.search_flow_all(name):
        flow_name = item.get("flowName")
        flow_id = answers.integer(item.get("flowId"), "Search Flow: flowId")
        if flow_name == name:
            current.append(Version(flow_id, "current"))
        elif isinstance(flow_name, str) and pattern.fullmatch(flow_name):
            info = marker.retirement(str(client.export_flow(flow_id).get("desc") or ""))
            if info is not None and info.successor == name:
                stamp = info.when.strftime("%Y-%m-%d %H:%M")
                retired.append((stamp, Version(flow_id, f"retired {stamp} (flow {flow_id})")))
    return current + [v for _, v in sorted(retired, key=lambda r: r[0], reverse=True)]


def instances_of(client: Client, name: str, now_ms: int) -> list[Instance]:
    """Every instance of the workflow ``name`` and of its retired predecessors, newest
    first. Runs are found by flow id: a run keeps the name its flow had when it ran."""
    found: list[Instance] = []
    for version in versions_of(client, name):
        found.extend(_instances_of_flow(client, version, now_ms))
    return sorted(found, key=lambda i: (i.trigger_time, i.instance_id), reverse=True)


def _instances_of_flow(client: Client, version: Version, now_ms: int) -> list[Instance]:
    found: list[Instance] = []
    for flow_type in (0, 1, 2):
        page = 1
        while True:
            data = client.list_flow_instances(
                {
                    "type": flow_type,
                    "expression": f"{version.flow_id}-",  # instance ids: <flowId>-<suffix>
                    "owner": "",
                    "fromTriggerTime": 0,
                    "toTriggerTime": now_ms + 366 * 86_400_000,
                    "status": ",".join(str(int(s)) for s in Status),
                    "pagination": {
                        "pageNo": page,
                        "pageSize": 50,
                        "sorters": [{"field": "trigger_time", "order": "DESC"}],
                    },
                }
            )
            rows = answers.objects(data.get("flowInsts") or [], "List Flow Instances: flowInsts")
            found.extend(
                _instance(r, version.label)
                for r in rows
                if str(r.get("flowId")) == str(version.flow_id)
            )
            if len(rows) < 50:
                break
            page += 1
    return found


def logs_of(
    client: Client, instance_id: str, task: str | None = None
) -> list[tuple[str, str, str]]:
    """(task, status, log) for each task of the instance that has a log, or the one named."""
    nodes = task_nodes(client.get_flow_instance(instance_id))
    names = [n.name for n in nodes]
    if task is not None and task not in names:
        raise GitsyncError(
            f"instance {instance_id} has no task '{task}' (it has: {', '.join(names)})"
        )
    out = []
    for node in nodes:
        if task is not None and node.name != task:
            continue
        try:
            if not node.task_instance_id:
                raise RemoteError("the task has not started")
            text = client.get_task_instance_log(node.task_instance_id)
        except RemoteError:
            if task is not None:
                raise
            continue  # a task that never started has no log
        out.append((node.name, node.status, text))
    return out

"""The id-based edit view (SPEC §3.7): what Load For Edit gives and Save Flow takes.

Save cannot add tasks or change a task's body; it renames, re-wires and re-describes what
exists, by ids. The client builds Save's body here and the engine reads it with the same
rules: node ids, the virtual nodes of task references, and where new nodes are placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gitsync.codec.flow_struct import managed_flow_struct
from gitsync.codec.reader import Reader
from gitsync.errors import CodecError
from gitsync.model import Workflow

# The edit view's naming and layout rules, shared by the client's Save and the engine.
VIRTUAL_FLOW_BASE = 1_000_000_000  # a task reference's virtual flow id = this + task id
TASK_X = TASK_Y = 0.002  # where a node without a position stands
REFERENCE_X = 0.0005  # references to other workflows stand in a column on the left


def task_node(task_id: int | str) -> str:
    return f"t_{task_id}"


def flow_node(flow_id: int | str) -> str:
    return f"f_{flow_id}"


def virtual_flow(task_id: int, task_name: str) -> tuple[int, str]:
    """The virtual flow node that stands for a reference to another workflow's task."""
    return VIRTUAL_FLOW_BASE + task_id, f"{task_id}({task_name})"


def virtual_task_name(flow_name: str) -> str:
    """The task name a virtual flow node's name carries: ``12(load)`` -> ``load``."""
    return flow_name.partition("(")[2].removesuffix(")")


def virtual_task_id(flow_id: int, flow_name: str) -> int:
    """The referenced task's id: from the name ``12(load)`` if it has one, else the id."""
    digits = flow_name.partition("(")[0]
    return int(digits) if digits.isdigit() else flow_id - VIRTUAL_FLOW_BASE


def task_position(index: int) -> tuple[float, float]:
    """Where the index-th task of an imported workflow stands: rows of eight."""
    return round(TASK_X + 0.01 * (index % 8), 4), round(TASK_Y + 0.01 * (index // 8), 4)


def reference_position(index: int) -> tuple[float, float]:
    """Where the index-th reference node of a workflow stands."""
    return REFERENCE_X, round(TASK_Y + 0.01 * index, 4)


@dataclass(frozen=True)
class Graph:
    """What Save needs from Load For Edit: ids and positions of the nodes that exist."""

    flow_id: int
    active: int
    do_as: str
    queue: str
    tasks: Mapping[str, Mapping[str, Any]]  # task name -> node
    flow_refs: Mapping[str, Mapping[str, Any]]  # upstream flow name -> node
    task_refs: Mapping[str, Mapping[str, Any]]  # upstream task name -> virtual node
    gaps: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (source, target) node


def graph_from_detail(detail: Mapping[str, Any]) -> Graph:
    r = Reader(detail, "flowDetail")
    graph = Reader(r.json("graph", {}), "flowDetail.graph")
    tasks, flow_refs, task_refs = {}, {}, {}
    for i, node in enumerate(graph.items("tasks")):
        nr = Reader(node, f"flowDetail.graph.tasks[{i}]")
        task_id = nr.integer("taskId")
        tasks[nr.text("taskName")] = {
            "taskId": str(task_id),
            "nodeId": nr.text("nodeId") or task_node(task_id),
            "x": nr.number("x", TASK_X),
            "y": nr.number("y", TASK_Y),
        }
    for i, node in enumerate(graph.items("flows")):
        nr = Reader(node, f"flowDetail.graph.flows[{i}]")
        flow_id = nr.integer("flowId")
        entry = {
            "flowId": str(flow_id),
            "flowName": nr.text("flowName"),
            "isVirtual": nr.flag("isVirtual"),
            "nodeId": nr.text("nodeId") or flow_node(flow_id),
            "x": nr.number("x", REFERENCE_X),
            "y": nr.number("y", TASK_Y),
        }
        if entry["isVirtual"]:
            task_refs[virtual_task_name(str(entry["flowName"]))] = entry
        else:
            flow_refs[str(entry["flowName"])] = entry
    gaps = {}
    for i, edge in enumerate(graph.items("relations")):
        er = Reader(edge, f"flowDetail.graph.relations[{i}]")
        gaps[(er.text("source"), er.text("target"))] = er.text("cycleGap")
    return Graph(
        flow_id=r.integer("flowId"),
        active=r.integer("active"),
        do_as=r.text("doAs"),
        queue=r.text("queue"),
        tasks=tasks,
        flow_refs=flow_refs,
        task_refs=task_refs,
        gaps=gaps,
    )


def retire_body(detail: Mapping[str, Any], name: str, desc: str) -> dict[str, Any]:
    """Save Flow's body that keeps a flow exactly as Load For Edit gave it (its graph too),
    under another name and description, and paused: how a flow is retired."""
    r = Reader(detail, "flowDetail")
    graph = Reader(r.json("graph", {}), "flowDetail.graph")
    flows = []
    for node in graph.items("flows"):
        entry = dict(node)
        if "flow_name" in entry:  # Load For Edit's spelling (SPEC §2.3); Save's is flowName
            entry["flowName"] = entry.pop("flow_name")
        flows.append(entry)
    return {
        "id": r.integer("flowId"),
        "type": r.integer("type"),
        "name": name,
        "freq": r.text("freq"),
        "cycle": r.text("cycle"),
        "alertMode": r.integer("alertMode"),
        "doAs": r.text("doAs"),
        "owners": r.text("owner"),
        "visitors": r.text("visitor"),
        "startTime": r.text("startTime"),
        "active": 0,
        "parameters": r.text("parameters") or "[]",
        "desc": desc,
        "queue": r.text("queue"),
        "tasks": list(graph.items("tasks")),
        "flows": flows,
        "relations": list(graph.items("relations")),
    }


def _task_reference(task: str, task_id: int, graph: Graph, index: int) -> dict[str, Any]:
    """The node of a reference to the task ``task_id``: the graph's own if it has one."""
    for node in graph.task_refs.values():
        if edit_view_task_id(node) == task_id:
            return dict(node)
    flow_id, name = virtual_flow(task_id, task)
    return _new_reference_node(flow_id, name, True, index)


def _new_reference_node(flow_id: int, name: str, virtual: bool, index: int) -> dict[str, Any]:
    """A reference node the graph does not have yet, placed as the index-th reference."""
    x, y = reference_position(index)
    return {
        "flowId": str(flow_id),
        "flowName": name,
        "isVirtual": virtual,
        "nodeId": flow_node(flow_id),
        "x": x,
        "y": y,
    }


def edit_view_task_id(node: Mapping[str, Any]) -> int:
    """The referenced task's id of a virtual node."""
    return virtual_task_id(int(str(node["flowId"])), str(node["flowName"]))


class NotSaveable(CodecError):
    """The change cannot be expressed by Save Flow; the flow must be replaced."""


def save_body(
    wf: Workflow,
    graph: Graph,
    flow_ids: Mapping[str, int],
    active: int | None = None,
    task_ids: Mapping[tuple[str, str], int] | None = None,
) -> dict[str, Any]:
    """Save Flow's body for ``wf`` over an existing flow: only tasks it already has, their
    existing ids, and references by the ids the service knows (``task_ids``: the current
    ids of referenced tasks, so that a reference follows a replaced upstream). Raises
    NotSaveable."""
    struct = managed_flow_struct(wf)
    cycle = struct["cycle"]
    tasks = []
    for task in wf.tasks:
        node = graph.tasks.get(task.name)
        if node is None:
            raise NotSaveable(f"task '{task.name}' is new: Save cannot add tasks")
        tasks.append({"taskName": task.name, **node})
    refs: dict[tuple[str, str], dict[str, Any]] = {}
    relations = []
    for task in wf.tasks:
        target = graph.tasks[task.name]["nodeId"]
        for dep in task.depends_on:
            if dep.is_local:
                source = graph.tasks[dep.task]["nodeId"]
            else:
                key = (dep.flow, dep.task)
                if key not in refs:
                    refs[key] = _reference(
                        dep.flow, dep.task, graph, flow_ids, len(refs), task_ids or {}
                    )
                source = refs[key]["nodeId"]
            relations.append(
                {
                    "source": source,
                    "target": target,
                    "cycleGap": _gap(graph, source, target, cycle),
                    "rerun": dep.rerun,
                }
            )
    return {
        "id": graph.flow_id,
        "type": struct["type"],
        "name": wf.name,
        "freq": struct["cron"],
        "cycle": cycle,
        "alertMode": struct["alertMode"],
        "doAs": graph.do_as,
        "owners": struct["owners"],
        "visitors": struct["visitors"],
        "startTime": struct["startTime"],
        "active": graph.active if active is None else active,
        "parameters": struct["parameters"],
        "desc": struct["desc"],
        "queue": graph.queue,
        "tasks": tasks,
        "flows": list(refs.values()),
        "relations": relations,
    }


def _gap(graph: Graph, source: str, target: str, cycle: str) -> str:
    """The edge's cycle gap as the service has it (the model has none: a gap set in the
    console stays), or the cycle's own when the edge is new or the cycle changed."""
    gap = graph.gaps.get((source, target), "")
    offset = gap[len(cycle) :]
    return gap if gap.startswith(cycle) and offset.isdigit() else f"{cycle}0"


def _reference(
    flow: str,
    task: str,
    graph: Graph,
    flow_ids: Mapping[str, int],
    index: int,
    task_ids: Mapping[tuple[str, str], int],
) -> dict[str, Any]:
    if task and (flow, task) in task_ids:
        return _task_reference(task, task_ids[(flow, task)], graph, index)
    if task:
        node = graph.task_refs.get(task)
        if node is None:
            raise NotSaveable(
                f"the reference to task '{flow}.{task}' is new: only Import can "
                "create task references"
            )
        return dict(node)
    node = graph.flow_refs.get(flow)
    if node is not None:
        return dict(node)
    if flow not in flow_ids:
        raise NotSaveable(f"upstream workflow '{flow}' does not exist")
    return _new_reference_node(flow_ids[flow], flow, False, index)

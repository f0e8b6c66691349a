"""Reading Save Flow's edit view (SPEC §3.7) back into a Flow Struct: the tasks it keeps
(existing ids only; a task may be renamed, its body stays), and the relations and links by
name. The node ids and virtual nodes follow ``codec.edit_view``, the same rules the client
writes them by."""

from __future__ import annotations

import math
import re
from typing import Any

from gitsync import protocol
from gitsync.codec import edit_view, reader
from gitsync.engine.answers import bad
from gitsync.engine.definitions import GAP, POSITION
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow, TaskRow

Kept = list[tuple[int, str, float, float]]  # (task id, name, x, y) of the tasks that stay
_Node = tuple[str, str, str]  # ("task" | "link", flow name, task name)
_GAP_SYNTAX = re.compile(r"(mi|[MWDH])[0-9]{1,4}")


def read_graph(
    store: Store, org_id: str, row: FlowRow, p: dict[str, Any], struct: dict[str, Any]
) -> Kept:
    """Fill ``struct``'s tasks, relations and links from Save's ``p``; the tasks kept. Every
    reference node becomes a link, with its position, even one no relation uses yet."""
    kept, nodes, tasks = _tasks(store, row, p)
    refs = _references(store, org_id, p)
    link_ids = {ref: str(i) for i, ref in enumerate(dict.fromkeys(r for r, _ in refs.values()))}
    nodes.update({node: ref for node, (ref, _) in refs.items()})
    relations, link_relations = _relations(p, nodes, link_ids)
    places = {ref: place for ref, place in refs.values()}
    struct["tasks"] = tasks
    struct["relations"] = relations
    struct["linkRelations"] = link_relations
    struct["flowLinks"] = [
        {"linkId": i, "sourceFlowName": f, **places[(k, f, t)]}
        for (k, f, t), i in link_ids.items()
        if not t
    ]
    struct["taskLinks"] = [
        {"linkId": i, "sourceFlowName": f, "sourceTaskName": t, **places[(k, f, t)]}
        for (k, f, t), i in link_ids.items()
        if t
    ]
    return kept


def _tasks(
    store: Store, row: FlowRow, p: dict[str, Any]
) -> tuple[Kept, dict[str, _Node], list[dict[str, Any]]]:
    by_id = {t.id: t for t in store.tasks(row.id)}
    bodies = {t["name"]: t for t in row.definition["tasks"]}
    kept: Kept = []
    nodes: dict[str, _Node] = {}
    tasks = []
    for i, item in enumerate(_objects(p["tasks"], "tasks")):
        task_id = _int(_key(item, "taskId"), f"tasks[{i}].taskId")
        task = by_id.get(task_id)
        if task is None:
            raise bad(f"Incorrect parameter: task {task_id} does not belong to workflow {row.id}")
        name = str(_key(item, "taskName") or task.name)
        x, y = (_place(item, axis, f"tasks[{i}].{axis}") for axis in POSITION)
        kept.append((task.id, name, task.x if x is None else x, task.y if y is None else y))
        tasks.append(dict(bodies[task.name], name=name))
        nodes[str(item.get("nodeId") or edit_view.task_node(task.id))] = ("task", "", name)
        nodes[edit_view.task_node(task.id)] = ("task", "", name)
    return kept, nodes, tasks


def _references(
    store: Store, org_id: str, p: dict[str, Any]
) -> dict[str, tuple[_Node, dict[str, float]]]:
    """Node id -> (the reference, where its node stands if ``x``/``y`` were given)."""
    nodes: dict[str, tuple[_Node, dict[str, float]]] = {}
    for i, item in enumerate(_objects(p.get("flows") or [], "flows")):
        flow_id = _int(_key(item, "flowId"), f"flows[{i}].flowId")
        flow_name = str(_key(item, "flowName") or "")
        if item.get("isVirtual") or flow_id >= edit_view.VIRTUAL_FLOW_BASE:
            upstream_task = _virtual_target(store, flow_id, flow_name)
            up_flow = store.flow(org_id, upstream_task.flow_id)
            if up_flow is None:
                raise bad(f"Incorrect parameter: flows[{i}] refers to an unknown task")
            ref = ("link", up_flow.name, upstream_task.name)
        else:
            up = store.flow(org_id, flow_id)
            if up is None:
                raise bad(f"Incorrect parameter: flows[{i}]: workflow {flow_id} not found")
            ref = ("link", up.name, "")
        place = {
            axis: _coordinate(item[axis], f"flows[{i}].{axis}")
            for axis in POSITION
            if item.get(axis) is not None
        }
        nodes[str(item.get("nodeId") or edit_view.flow_node(flow_id))] = (ref, place)
        nodes[edit_view.flow_node(flow_id)] = (ref, place)
    return nodes


def _relations(
    p: dict[str, Any], nodes: dict[str, _Node], link_ids: dict[_Node, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    relations, link_relations = [], []
    for i, rel in enumerate(_objects(p.get("relations") or [], "relations")):
        source, target = nodes.get(str(rel.get("source"))), nodes.get(str(rel.get("target")))
        if source is None or target is None or target[0] != "task":
            raise bad(f"Incorrect parameter: relations[{i}] names an unknown node")
        rerun = bool(rel.get("rerun", source[0] == "task"))
        gap = _gap(rel.get(GAP), f"relations[{i}].{GAP}")
        if source[0] == "task":
            relation = {"sourceTaskName": source[2], "targetTaskName": target[2], "rerun": rerun}
            relations.append(relation)
        else:
            relation = {"linkId": link_ids[source], "targetTaskName": target[2], "rerun": rerun}
            link_relations.append(relation)
        if gap is not None:
            relation[GAP] = gap
    return relations, link_relations


def _gap(value: Any, where: str) -> str | None:
    """A relation's ``cycleGap``: ``{cycle}{offset}`` (SPEC §2.1, Q12), or None if not given."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _GAP_SYNTAX.fullmatch(value):
        raise bad(f"Incorrect parameter: {where} must be a cycle and an offset, like D0 or D1")
    return value


def _coordinate(value: Any, where: str) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise bad(f"Incorrect parameter: {where} must be a number") from None
    if not math.isfinite(number):
        raise bad(f"Incorrect parameter: {where} must be a number")
    return number


def _virtual_target(store: Store, flow_id: int, flow_name: str) -> TaskRow:
    task = store.task(edit_view.virtual_task_id(flow_id, flow_name))
    if task is None:
        raise bad(f"Incorrect parameter: task reference {flow_name or flow_id} not found")
    return task


def _objects(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise bad(f"Incorrect parameter: {where} must be a list of objects")
    return value


def _key(item: dict[str, Any], key: str) -> Any:
    return item[key] if key in item else item.get(reader.snake_case(key))


def _int(value: Any, where: str) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value))
    except (TypeError, ValueError):
        raise bad(f"Incorrect parameter: {where} must be an integer") from None
    if not protocol.INT64_MIN <= number <= protocol.INT64_MAX:
        raise bad(f"Incorrect parameter: {where} must be an integer in range")
    return number


def _place(item: dict[str, Any], axis: str, where: str) -> float | None:
    """A task node's coordinate, or None when not given (it stays where it stood): SPEC says
    x and y are numbers, so anything else (text, NaN, null, a boolean) is refused."""
    if axis not in item:
        return None
    return _coordinate(item[axis], where)

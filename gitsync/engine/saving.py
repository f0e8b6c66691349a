"""Reading Save Flow's edit view (SPEC §3.7) back into a Flow Struct: the tasks it keeps
(existing ids only; a task may be renamed, its body stays), and the relations and links by
name. The node ids and virtual nodes follow ``codec.edit_view``, the same rules the client
writes them by."""

from __future__ import annotations

from typing import Any

from gitsync.codec import edit_view, reader
from gitsync.engine.answers import bad
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow, TaskRow

Kept = list[tuple[int, str, float, float]]  # (task id, name, x, y) of the tasks that stay
_Node = tuple[str, str, str]  # ("task" | "link", flow name, task name)


def read_graph(
    store: Store, org_id: str, row: FlowRow, p: dict[str, Any], struct: dict[str, Any]
) -> Kept:
    """Fill ``struct``'s tasks, relations and links from Save's ``p``; the tasks kept."""
    kept, nodes, tasks = _tasks(store, row, p)
    nodes.update(_references(store, org_id, p))
    relations, link_relations, link_ids = _relations(p, nodes)
    struct["tasks"] = tasks
    struct["relations"] = relations
    struct["linkRelations"] = link_relations
    struct["flowLinks"] = [
        {"linkId": i, "sourceFlowName": f} for (f, t), i in link_ids.items() if not t
    ]
    struct["taskLinks"] = [
        {"linkId": i, "sourceFlowName": f, "sourceTaskName": t}
        for (f, t), i in link_ids.items()
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
        kept.append((task.id, name, _float(item.get("x"), task.x), _float(item.get("y"), task.y)))
        tasks.append(dict(bodies[task.name], name=name))
        nodes[str(item.get("nodeId") or edit_view.task_node(task.id))] = ("task", "", name)
        nodes[edit_view.task_node(task.id)] = ("task", "", name)
    return kept, nodes, tasks


def _references(store: Store, org_id: str, p: dict[str, Any]) -> dict[str, _Node]:
    nodes: dict[str, _Node] = {}
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
        nodes[str(item.get("nodeId") or edit_view.flow_node(flow_id))] = ref
        nodes[edit_view.flow_node(flow_id)] = ref
    return nodes


def _relations(
    p: dict[str, Any], nodes: dict[str, _Node]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[tuple[str, str], str]]:
    relations, link_relations = [], []
    link_ids: dict[tuple[str, str], str] = {}
    for i, rel in enumerate(_objects(p.get("relations") or [], "relations")):
        source, target = nodes.get(str(rel.get("source"))), nodes.get(str(rel.get("target")))
        if source is None or target is None or target[0] != "task":
            raise bad(f"Incorrect parameter: relations[{i}] names an unknown node")
        rerun = bool(rel.get("rerun", source[0] == "task"))
        if source[0] == "task":
            relations.append(
                {"sourceTaskName": source[2], "targetTaskName": target[2], "rerun": rerun}
            )
        else:
            link_id = link_ids.setdefault((source[1], source[2]), str(len(link_ids)))
            link_relations.append({"linkId": link_id, "targetTaskName": target[2], "rerun": rerun})
    return relations, link_relations, link_ids


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
        return int(str(value))
    except (TypeError, ValueError):
        raise bad(f"Incorrect parameter: {where} must be an integer") from None


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default

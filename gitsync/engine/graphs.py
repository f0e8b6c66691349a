"""The graph of a flow (Get Flow, Load For Edit) and of a new instance (SPEC §2.3, §2.4),
drawn by the edit view's rules (``codec.edit_view``): node ids, virtual nodes for task
references, and where reference nodes stand."""

from __future__ import annotations

from typing import Any

from gitsync.codec import edit_view
from gitsync.engine import definitions, links
from gitsync.engine.access import Access
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow, TaskRow


class Graphs:
    def __init__(self, store: Store, access: Access) -> None:
        self.store = store
        self.access = access

    def _references(
        self, org_id: str, row: FlowRow, for_edit: bool
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """The reference nodes, and link id -> node id."""
        d = links.current(self.store, org_id, row.definition)
        nodes, node_of_link = [], {}
        for i, link in enumerate(d.get("flowLinks", []) + d.get("taskLinks", [])):
            up_id = link.get(links.FLOW_ID)
            if up_id is None:  # stored before links kept ids
                upstream = self.store.flow_by_name(org_id, link["sourceFlowName"])
                up_id = upstream.id if upstream else 0
            if "sourceTaskName" in link:
                task_id = link.get(links.TASK_ID)
                if task_id is None:
                    up_task = next(
                        (t for t in self.store.tasks(up_id) if t.name == link["sourceTaskName"]),
                        None,
                    )
                    task_id = up_task.id if up_task else 0
                flow_id, name = edit_view.virtual_flow(task_id, link["sourceTaskName"])
                entry: dict[str, Any] = {"flowId": str(flow_id), "flowName": name}
                entry["isVirtual"] = True
            else:
                flow_id = up_id
                entry = {"flowId": str(flow_id), "flowName": link["sourceFlowName"]}
                entry["isVirtual"] = False
            if for_edit:  # the Load For Edit sample spells it flow_name (SPEC §2.3)
                entry["flow_name"] = entry.pop("flowName")
            node = edit_view.flow_node(flow_id)
            node_of_link[link["linkId"]] = node
            x, y = edit_view.reference_position(i)  # unless Save placed it
            nodes.append({**entry, "nodeId": node, "x": link.get("x", x), "y": link.get("y", y)})
        return nodes, node_of_link

    def of_flow(
        self, org_id: str, row: FlowRow, for_edit: bool, tasks: list[TaskRow] | None = None
    ) -> dict[str, Any]:
        d = row.definition
        if tasks is None:
            tasks = self.store.tasks(row.id)
        node_of = {t.name: edit_view.task_node(t.id) for t in tasks}
        flows, node_of_link = self._references(org_id, row, for_edit)
        gap = f"{d['cycle']}0"
        relations = [
            {
                "source": node_of[r["sourceTaskName"]],
                "target": node_of[r["targetTaskName"]],
                "cycleGap": r.get(definitions.GAP, gap),
                "rerun": r["rerun"],
            }
            for r in d.get("relations", [])
        ]
        relations += [
            {
                "source": node_of_link[r["linkId"]],
                "target": node_of[r["targetTaskName"]],
                "cycleGap": r.get(definitions.GAP, gap),
                "rerun": r["rerun"],
            }
            for r in d.get("linkRelations", [])
        ]
        return {
            "name": row.name,
            "creator": row.creator,
            "freq": d["cron"],
            "cycle": d["cycle"],
            "type": d["type"],
            "alertMode": d["alertMode"],
            "active": row.active,
            "owners": d["owners"],
            "visitors": d["visitors"],
            "startTime": d["startTime"],
            "doAs": self.access.submitter(row),
            "syncType": d["syncType"],
            "parameters": d["parameters"],
            "queue": row.queue,
            "desc": d["desc"],
            "tasks": [
                {
                    "taskName": t.name,
                    "taskId": str(t.id),
                    "nodeId": edit_view.task_node(t.id),
                    "x": t.x,
                    "y": t.y,
                }
                for t in tasks
            ],
            "flows": flows,
            "relations": relations,
        }

    def of_instance(self, row: FlowRow, instance_id: str, tasks: list[TaskRow]) -> dict[str, Any]:
        """The InstanceGraph of a new instance (SPEC §2.4); statuses are added when read."""
        suffix = instance_id.split("-", 1)[1]
        graph = self.of_flow(row.org_id, row, for_edit=False, tasks=tasks)
        nodes = [
            {
                "taskName": t["taskName"],
                "taskInstId": f"{t['taskId']}-{suffix}",
                "taskId": int(t["taskId"]),
                "nodeId": t["nodeId"],
                "x": t["x"],
                "y": t["y"],
            }
            for t in graph["tasks"]
        ]
        return {
            "creator": row.creator,
            "freq": graph["freq"],
            "alertMode": graph["alertMode"],
            "owners": graph["owners"],
            "cycle": graph["cycle"],
            "doAs": graph["doAs"],
            "name": row.name,
            "instId": instance_id,
            "id": row.id,
            "parameters": graph["parameters"],
            "flows": graph["flows"],
            "relations": graph["relations"],
            "tasks": nodes,
        }

"""The service's behaviour behind the HTTP API: one method per operation, over the store.

Each method takes the checked parameters of ``protocol`` and returns the envelope's ``data``
or raises ServiceError with the documented code. Where SPEC.md is silent, the choice made is
in ``docs/engine.md``; the constants below keep those choices in one place.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitsync.codec import flow_struct, reader
from gitsync.engine.answers import ServiceError, bad, paginate
from gitsync.engine.store import Store
from gitsync.engine.store_flows import FlowRow, TaskRow
from gitsync.errors import CodecError
from gitsync.model import Workflow
from gitsync.protocol import BY_NAME, Code
from gitsync.schema_check import name_problem
from gitsync.validate import check_workflow

if TYPE_CHECKING:
    from gitsync.engine.runs import Runs

# Choices where SPEC.md is silent (docs/engine.md explains each).
TIME_ZONE = "GMT+0"
VIRTUAL_FLOW_BASE = 1_000_000_000  # a task reference's virtual flow id = this + task id
ENTRY_API = 1
RUN_OPERATIONS = frozenset(
    {
        "trigger_flow",
        "trigger_flow_from_task",
        "update_and_trigger_flow",
        "list_flow_instances",
        "get_flow_instance",
        "get_task_instance",
        "get_task_instance_log",
        "cancel_flow_instance",
    }
)


NO_PRIVILEGE = "User has no privilege."


@dataclass(frozen=True)
class Caller:
    user_id: str
    org_id: str
    name: str
    locked: bool


def _stamp(moment: dt.datetime) -> str:
    """Java ``Timestamp.toString()`` style: ``2019-08-08 09:34:36.0``."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + str(moment.microsecond // 100000)


def _users(text: str) -> set[str]:
    return {u for u in text.split(";") if u}


class Service:
    def __init__(
        self, store: Store, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    ) -> None:
        self.store = store
        self.clock = clock
        self.runs: Runs | None = None  # set by the engine when it runs workflows
        self.on_change: Callable[[str, int], None] | None = None  # (org, flow id): scheduler
        self._models: dict[int, tuple[tuple[int, str, str], Workflow]] = {}

    # -- dispatch ------------------------------------------------------------------------------

    def caller(self, user_id: str, org_id: str) -> Caller:
        user = self.store.user(user_id)
        if user is None or not self.store.is_member(org_id, user_id):
            raise ServiceError(
                Code.BAD_USER, "userId does not exist, or it does not match to orgId."
            )
        return Caller(user_id, org_id, str(user["name"]), bool(user["locked"]))

    def call(self, operation: str, caller: Caller | None, params: dict[str, Any]) -> Any:
        if operation in RUN_OPERATIONS:
            if self.runs is None:
                title = BY_NAME[operation].title
                raise ServiceError(Code.INTERNAL, f"{title}: this engine runs no workflows")
            handler: Callable[..., Any] = getattr(self.runs, operation)
        else:
            handler = getattr(self, operation)
        if caller is None:
            return handler(params)
        return handler(caller, params)

    # -- helpers ---------------------------------------------------------------------------------

    def _flow(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self.store.flow(caller.org_id, flow_id)
        if row is None:
            raise bad(f"Flow not found: {flow_id}")
        return row

    @staticmethod
    def _is_owner(caller: Caller, row: FlowRow) -> bool:
        return caller.name in _users(row.definition.get("owners", "")) or caller.name == row.creator

    def _editable(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self._flow(caller, flow_id)
        if not self._is_owner(caller, row):
            raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
        return row

    def _operable(self, caller: Caller, flow_id: int) -> FlowRow:
        row = self._editable(caller, flow_id)
        if caller.locked or row.locked:
            raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
        return row

    def model(self, row: FlowRow) -> Workflow:
        """The stored flow as a model, decoded once per version (a 1,000-task flow takes a
        noticeable time to decode, and every trigger needs it)."""
        key = (row.id, row.update_time, row.name)
        cached = self._models.get(row.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        wf = flow_struct.workflow_from_flow_struct(row.definition, name=row.name)
        self._models[row.id] = (key, wf)
        return wf

    def _check(self, caller: Caller, wf: Workflow, self_id: int | None) -> None:
        """What Import and Save refuse with 'Workflow validation failed' (SPEC §3.3 [I])."""
        problems = [i.message for i in check_workflow(wf)]
        for task in wf.tasks:
            for dep in task.depends_on:
                if dep.is_local:
                    continue
                upstream = self.store.flow_by_name(caller.org_id, dep.flow)
                if upstream is None or upstream.id == self_id:
                    problems.append(
                        f"task '{task.name}' depends on workflow '{dep.flow}', which does not exist"
                    )
                    continue
                if dep.task:
                    up_task = self.model(upstream).task(dep.task)
                    if up_task is None:
                        problems.append(
                            f"task '{task.name}' depends on '{dep.flow}.{dep.task}',"
                            " which does not exist"
                        )
                    elif not up_task.allow_reference:
                        problems.append(
                            f"task '{dep.flow}.{dep.task}' does not allow "
                            "references (allow_reference / asLink)"
                        )
        if problems:
            raise bad("Workflow validation failed: " + "; ".join(problems))

    def _dependents(self, caller: Caller, name: str, exclude: int) -> list[str]:
        found = []
        for row in self.store.flows(caller.org_id):
            if row.id == exclude:
                continue
            links = row.definition.get("flowLinks", []) + row.definition.get("taskLinks", [])
            if any(link.get("sourceFlowName") == name for link in links):
                found.append(row.name)
        return found

    # -- directories -----------------------------------------------------------------------------

    def create_directory(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        name, parent = p.get("dirName", ""), p.get("parentId", "")
        if not name.strip():
            raise bad("param: dirName cannot be empty")
        if not parent.strip():
            raise bad("param: parentId cannot be empty")
        reason = name_problem(name)
        if reason:
            raise bad(f"Invalid parameter: dirName {reason}")
        with self.store.transaction():
            if self.store.directory(caller.org_id, parent) is None:
                raise bad("parentId not found")
            dir_id = self.store.create_directory(caller.org_id, parent, name)
        if dir_id is None:
            raise bad("A directory of the same name already exists")
        return {"dirId": dir_id}

    def list_workflow_directories(self, caller: Caller, p: dict[str, Any]) -> list[Any]:
        dirs = self.store.directories(caller.org_id)
        flows = self.store.flows(caller.org_id)
        nodes: dict[str, dict[str, Any]] = {
            d["id"]: {
                "title": d["name"],
                "type": 1,
                "key": d["id"],
                "isDirectory": True,
                "children": [],
            }
            for d in dirs
        }
        roots = []
        for d in dirs:
            if d["parent_id"] is None:
                roots.append(nodes[d["id"]])
            else:
                nodes[d["parent_id"]]["children"].append(nodes[d["id"]])
        for row in flows:
            nodes[row.dir_id]["children"].append(
                {
                    "editable": self._is_owner(caller, row),
                    "title": row.name,
                    "type": 1,
                    "key": row.id,
                    "isDirectory": False,
                }
            )
        return roots

    # -- flows -------------------------------------------------------------------------------------

    def import_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        name = p.get("flowName", "")
        if not name.strip():
            raise bad("param: flowName cannot be empty")
        reason = name_problem(name)
        if reason:
            raise bad(f"Invalid parameter: flowName {reason}")
        flow_json = dict(p["flowJson"])
        if "tasks" not in flow_json:
            raise bad("Workflow validation failed: flowJson.tasks is missing")
        if not flow_json.get("desc") and p.get("desc"):
            flow_json["desc"] = p["desc"]
        try:
            wf = flow_struct.workflow_from_flow_struct(flow_json, name=name)
        except CodecError as e:
            raise bad(f"Workflow validation failed: {e}") from None
        now = _stamp(self.clock())
        with self.store.transaction():
            if self.store.directory(caller.org_id, p.get("dirId", "")) is None:
                raise bad("Directory does not exist")
            self._check(caller, wf, None)
            flow_id = self.store.insert_flow(
                org_id=caller.org_id,
                dir_id=p["dirId"],
                name=name,
                definition=_stored(wf, flow_json.get("desc")),
                user=caller.name,
                now=now,
                wished_id=p.get("flowId"),
                task_names=[t.name for t in wf.tasks],
            )
        if flow_id is None:
            raise bad(f"Invalid parameter: flowName (a workflow named '{name}' already exists)")
        self._models[flow_id] = ((flow_id, now, name), wf)  # what model() would decode
        self._changed(caller, flow_id)
        return {"flowId": flow_id}

    def export_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        row = self._flow(caller, p["flowId"])
        do_as = self._do_as(caller)
        data = dict(row.definition, name=row.name, submitter=do_as)
        data["tasks"] = [dict(t, submitter="") for t in data["tasks"]]
        data["active"] = row.active  # extension: saves a Get Flow per flow (docs/engine.md)
        return data

    def _do_as(self, caller: Caller) -> str:
        return self._do_as_org(caller.org_id)

    def _do_as_org(self, org_id: str) -> str:
        org = self.store.org(org_id)
        return str(org["do_as"]) if org else ""

    def _graph_for_instance(
        self, row: FlowRow, instance_id: str, tasks: list[TaskRow]
    ) -> dict[str, Any]:
        """The InstanceGraph of a new instance (SPEC §2.4); statuses are added when read."""
        suffix = instance_id.split("-", 1)[1]
        caller = Caller("", row.org_id, row.creator, False)
        graph = self._graph(caller, row, for_edit=False, tasks=tasks)
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

    def get_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._detail(caller, self._flow(caller, p["flowId"]))

    def load_flow_for_edit(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        return self._detail(caller, self._flow(caller, p["flowId"]), for_edit=True)

    def _graph(
        self, caller: Caller, row: FlowRow, for_edit: bool, tasks: list[TaskRow] | None = None
    ) -> dict[str, Any]:
        d = row.definition
        if tasks is None:
            tasks = self.store.tasks(row.id)
        node_of = {t.name: f"t_{t.id}" for t in tasks}
        gap = f"{d['cycle']}0"
        links: dict[str, str] = {}
        flows = []
        for i, link in enumerate(d.get("flowLinks", []) + d.get("taskLinks", [])):
            upstream = self.store.flow_by_name(caller.org_id, link["sourceFlowName"])
            up_id = upstream.id if upstream else 0
            if "sourceTaskName" in link:
                up_task = next(
                    (t for t in self.store.tasks(up_id) if t.name == link["sourceTaskName"]), None
                )
                task_id = up_task.id if up_task else 0
                flow_id = VIRTUAL_FLOW_BASE + task_id
                entry = {
                    "flowId": str(flow_id),
                    "flowName": f"{task_id}({link['sourceTaskName']})",
                    "isVirtual": True,
                }
            else:
                flow_id = up_id
                entry = {
                    "flowId": str(flow_id),
                    "flowName": link["sourceFlowName"],
                    "isVirtual": False,
                }
            if for_edit:  # the Load For Edit sample spells it flow_name (SPEC §2.3)
                entry["flow_name"] = entry.pop("flowName")
            links[link["linkId"]] = f"f_{flow_id}"
            flows.append(
                {**entry, "nodeId": f"f_{flow_id}", "x": 0.0005, "y": round(0.002 + 0.01 * i, 4)}
            )
        relations = [
            {
                "source": node_of[r["sourceTaskName"]],
                "target": node_of[r["targetTaskName"]],
                "cycleGap": gap,
                "rerun": r["rerun"],
            }
            for r in d.get("relations", [])
        ]
        relations += [
            {
                "source": links[r["linkId"]],
                "target": node_of[r["targetTaskName"]],
                "cycleGap": gap,
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
            "doAs": self._do_as(caller),
            "syncType": d["syncType"],
            "parameters": d["parameters"],
            "queue": row.queue,
            "desc": d["desc"],
            "tasks": [
                {"taskName": t.name, "taskId": str(t.id), "nodeId": f"t_{t.id}", "x": t.x, "y": t.y}
                for t in tasks
            ],
            "flows": flows,
            "relations": relations,
        }

    def _detail(self, caller: Caller, row: FlowRow, for_edit: bool = False) -> dict[str, Any]:
        d = row.definition
        owner = self._is_owner(caller, row)
        detail = {
            "flowId": row.id,
            "flowName": row.name,
            "active": row.active,
            "creator": row.creator,
            "createTime": row.create_time,
            "updateUser": row.update_user,
            "updateTime": row.update_time,
            "freq": d["cron"],
            "cycle": d["cycle"],
            "parameters": d["parameters"],
            "owner": d["owners"],
            "visitor": d["visitors"],
            "doAs": self._do_as(caller),
            "alertMode": d["alertMode"],
            "graph": json.dumps(
                self._graph(caller, row, for_edit), separators=(",", ":"), ensure_ascii=False
            ),
            "entry": row.entry,
            "type": d["type"],
            "syncType": d["syncType"],
            "desc": d["desc"],
            "startTime": d["startTime"],
            "virtual": False,
            "locked": row.locked,
            "hasEditPri": owner,
            "hasReadPri": True,
            "isUserLocked": caller.locked,
        }
        if for_edit:
            detail["queue"] = row.queue
        return detail

    def save_flow(self, caller: Caller, p: dict[str, Any]) -> dict[str, Any]:
        with self.store.transaction():
            row = self._flow(caller, p["id"])
            if not self._is_owner(caller, row):
                raise ServiceError(Code.NO_PRIVILEGE, NO_PRIVILEGE)
            if caller.locked:
                raise ServiceError(Code.ACCOUNT_LOCKED, "Your account has been locked")
            name = p["name"]
            reason = name_problem(name)
            if reason:
                raise bad(f"Incorrect parameter: name {reason}")
            old = row.definition
            struct = {
                "cycle": p["cycle"],
                "cron": p["freq"],
                "type": p["type"],
                "alertMode": p["alertMode"],
                "owners": p["owners"],
                "visitors": p["visitors"],
                "startTime": p.get("startTime") or old["startTime"],
                "parameters": p["parameters"]
                if p.get("parameters") is not None
                else old["parameters"],
                "desc": p["desc"] if p.get("desc") is not None else old["desc"],
                "syncType": old["syncType"],
            }
            if p.get("tasks") is None:
                kept = [(t.id, t.name, t.x, t.y) for t in self.store.tasks(row.id)]
                struct.update(
                    {
                        k: old[k]
                        for k in ("tasks", "relations", "flowLinks", "taskLinks", "linkRelations")
                    }
                )
            else:
                kept = self._apply_graph(caller, row, p, struct)
            try:
                wf = flow_struct.workflow_from_flow_struct(struct, name=name)
            except CodecError as e:
                raise bad(f"Incorrect parameter: {e}") from None
            self._check(caller, wf, row.id)
            if name != row.name and self._dependents(caller, row.name, row.id):
                raise bad(
                    "Incorrect parameter: other workflows reference this workflow by "
                    "name; it cannot be renamed"
                )
            now = _stamp(self.clock())
            saved = self.store.update_flow(
                row.id,
                name=name,
                definition=_stored(wf, struct.get("desc")),
                active=1 if p["active"] else 0,
                user=caller.name,
                now=now,
                queue=p.get("queue") or row.queue,
                tasks=kept,
            )
        if not saved:
            raise bad(f"Incorrect parameter: a workflow named '{name}' already exists")
        self._models[row.id] = ((row.id, now, name), wf)
        self._changed(caller, row.id)
        return {"flowId": row.id}

    def _apply_graph(
        self, caller: Caller, row: FlowRow, p: dict[str, Any], struct: dict[str, Any]
    ) -> list[tuple[int, str, float, float]]:
        """Save's graph -> tasks kept (existing ids only), relations and links by name."""
        by_id = {t.id: t for t in self.store.tasks(row.id)}
        bodies = {t["name"]: t for t in row.definition["tasks"]}
        kept: list[tuple[int, str, float, float]] = []
        nodes: dict[str, tuple[str, str, str]] = {}  # nodeId -> (kind, flow, task)
        tasks = []
        for i, item in enumerate(_objects(p["tasks"], "tasks")):
            task_id = _int(_key(item, "taskId"), f"tasks[{i}].taskId")
            task = by_id.get(task_id)
            if task is None:
                raise bad(
                    f"Incorrect parameter: task {task_id} does not belong to workflow {row.id}"
                )
            name = str(_key(item, "taskName") or task.name)
            kept.append(
                (task.id, name, _float(item.get("x"), task.x), _float(item.get("y"), task.y))
            )
            tasks.append(dict(bodies[task.name], name=name))
            nodes[str(item.get("nodeId") or f"t_{task.id}")] = ("task", "", name)
            nodes[f"t_{task.id}"] = ("task", "", name)
        for i, item in enumerate(_objects(p.get("flows") or [], "flows")):
            flow_id = _int(_key(item, "flowId"), f"flows[{i}].flowId")
            flow_name = str(_key(item, "flowName") or "")
            if item.get("isVirtual") or flow_id >= VIRTUAL_FLOW_BASE:
                upstream_task = self._virtual_target(flow_id, flow_name)
                up_flow = self.store.flow(caller.org_id, upstream_task.flow_id)
                if up_flow is None:
                    raise bad(f"Incorrect parameter: flows[{i}] refers to an unknown task")
                ref = ("link", up_flow.name, upstream_task.name)
            else:
                up = self.store.flow(caller.org_id, flow_id)
                if up is None:
                    raise bad(f"Incorrect parameter: flows[{i}]: workflow {flow_id} not found")
                ref = ("link", up.name, "")
            node = str(item.get("nodeId") or f"f_{flow_id}")
            nodes[node] = ref
            nodes[f"f_{flow_id}"] = ref
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
                link_id = link_ids.setdefault(source[1:], str(len(link_ids)))
                link_relations.append(
                    {"linkId": link_id, "targetTaskName": target[2], "rerun": rerun}
                )
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

    def _virtual_target(self, flow_id: int, flow_name: str) -> TaskRow:
        match = re.match(r"^(\d+)\(", flow_name)
        task_id = int(match.group(1)) if match else flow_id - VIRTUAL_FLOW_BASE
        task = self.store.task(task_id)
        if task is None:
            raise bad(f"Incorrect parameter: task reference {flow_name or flow_id} not found")
        return task

    def delete_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        with self.store.transaction():
            row = self._editable(caller, p["flowId"])
            if self._dependents(caller, row.name, row.id):
                raise ServiceError(
                    Code.IN_USE,
                    "This workflow is relied on by other workflows and cannot be deleted.",
                )
            if self.runs is not None:  # Delete also removes the flow's instances (SPEC §4.2)
                self.runs.cancel_all(row.id, caller.org_id)
            self.store.delete_instances(row.id)
            self.store.delete_flow(row.id)
        self._changed(caller, row.id)
        return ""

    def enable_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        return self._set_active(caller, p["flowId"], 1)

    def disable_flow(self, caller: Caller, p: dict[str, Any]) -> str:
        return self._set_active(caller, p["flowId"], 0)

    def _set_active(self, caller: Caller, flow_id: int, active: int) -> str:
        row = self._operable(caller, flow_id)
        self.store.set_active(row.id, active)
        self._changed(caller, row.id)
        return ""

    def _changed(self, caller: Caller, flow_id: int) -> None:
        """Tell the scheduler, after the commit, that a flow's schedule may have changed."""
        if self.on_change is not None:
            self.on_change(caller.org_id, flow_id)

    def get_my_flow(self, caller: Caller, p: dict[str, Any]) -> list[dict[str, Any]]:
        expression = p.get("expression") or ""
        out = []
        for row in self.store.flows(caller.org_id):
            related = _users(row.definition["owners"]) | _users(row.definition["visitors"])
            if caller.name not in related and caller.name != row.creator:
                continue
            if expression and expression not in row.name and expression not in str(row.id):
                continue
            out.append(
                {
                    "flowId": str(row.id),
                    "editable": self._is_owner(caller, row),
                    "flowName": row.name,
                    "cycle": row.definition["cycle"],
                }
            )
        return out

    def search_flow(self, caller: Caller, p: dict[str, Any]) -> list[dict[str, Any]]:
        expression = p.get("expression") or ""
        rows = [
            r
            for r in self.store.flows(caller.org_id)
            if not expression or expression in r.name or expression in str(r.id)
        ]
        rows = paginate(
            rows,
            p.get("pagination"),
            {
                "create_time": lambda r: (r.create_time, r.id),
                "update_time": lambda r: (r.update_time, r.id),
                "start_time": lambda r: (r.definition["startTime"], r.id),
            },
        )
        return [{"flowId": str(r.id), "flowName": r.name} for r in rows]

    # -- time ----------------------------------------------------------------------------------

    def get_current_time(self, p: dict[str, Any]) -> int:
        return int(self.clock().timestamp() * 1000)

    def get_time_zone(self, p: dict[str, Any]) -> dict[str, str]:
        return {"timezone": TIME_ZONE}


def _stored(wf: Workflow, desc: Any) -> dict[str, Any]:
    """The canonical Flow Struct, with the description exactly as sent (the service keeps
    what it is given; gitsync's ownership marker lives there)."""
    definition = flow_struct.flow_struct_from_workflow(wf, extensions=True)
    definition["desc"] = str(desc or "")
    return definition


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
